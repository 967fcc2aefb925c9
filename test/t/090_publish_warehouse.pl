# A publication of the warehouse tables, subscribed by another cluster whose copies were made
# with pg_dump -s (issue 17, item 1; docs/replication.md).
#
# Two State Grid pipelines in one database: one over the example's sources (user_id and
# consumption_date may be NULL, so the DWS tables are identified by all their columns, REPLICA
# IDENTITY FULL), one over sources that declare them NOT NULL (every table has a primary key).
# All twelve tables are published with every operation. The worker keeps running through
# inserts, updates, deletes, NULL keys and a TRUNCATE of a source; the subscriber's copies,
# whose identity came with pg_dump -s, equal the publisher's tables exactly (as text), and the
# subscriber finds the rows of replicated updates by index where the table has a primary key.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $schema = source_file('examples/stategrid/schema.sql');
my $tmp = PostgreSQL::Test::Utils::tempdir();
my @tables = qw(ods_power_user ods_power_consumption dwd_power_user_info dwd_power_consumption_detail
  dws_region_daily_stats dws_user_ranking);
my @qualified = map { my $s = $_; map { "$s.$_" } @tables } qw(public strict);

# ---- the publisher: two pipelines, and a publication of all their tables -----------------------
my $pub = stategrid_node('publisher', conf => "log_min_messages = warning\n");
$pub->safe_psql('postgres', 'CREATE DATABASE grid');
$pub->safe_psql('grid', 'CREATE EXTENSION stategrid_ivm');
$pub->safe_psql('grid', $schema);
$pub->safe_psql('grid', "CREATE SCHEMA strict; SET search_path = strict; $schema
ALTER TABLE power_consumption ALTER user_id SET NOT NULL, ALTER consumption_date SET NOT NULL;");
$pub->safe_psql('grid', q{
SELECT stategrid_ivm.generate_sample_data(users => 30, days => 3, start_date => '2024-03-01');
SELECT stategrid_ivm.create_stategrid_pipeline();
SET search_path = strict;
SELECT stategrid_ivm.generate_sample_data(users => 30, days => 3, start_date => '2024-03-01');
SELECT stategrid_ivm.create_stategrid_pipeline('strict');
});
is( $pub->safe_psql('grid', q{
	SELECT string_agg(format('%s %s', c.oid::regclass,
	                         CASE WHEN c.relreplident = 'f' THEN 'full'
	                              WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) THEN 'primary key'
	                              ELSE 'none' END), ', ' ORDER BY c.oid::regclass::text)
	FROM pg_class c WHERE c.oid IN (SELECT relid FROM stategrid_ivm.view)}),
	'dwd_power_consumption_detail primary key, dwd_power_user_info primary key, dws_region_daily_stats full, '
	  . 'dws_user_ranking full, strict.dwd_power_consumption_detail primary key, strict.dwd_power_user_info primary key, '
	  . 'strict.dws_region_daily_stats primary key, strict.dws_user_ranking primary key',
	'view tables: a primary key where no key part can be NULL, else REPLICA IDENTITY FULL');
$pub->safe_psql('grid', 'CREATE PUBLICATION warehouse FOR TABLE ' . join(', ', @qualified));

# ---- the subscriber: the tables from pg_dump -s, and a subscription ----------------------------
my $sub = stategrid_node('subscriber', conf => "log_min_messages = warning\n");
$sub->safe_psql('postgres', 'CREATE DATABASE grid');
# (the extension for the guard triggers' function, which the dump names; no pipeline here)
$sub->safe_psql('grid', 'CREATE EXTENSION stategrid_ivm; CREATE SCHEMA strict');
command_ok([ 'pg_dump', '-s', (map { ('-t', $_) } @qualified), '-f', "$tmp/warehouse.sql", '-d', $pub->connstr('grid') ],
	'pg_dump -s of the warehouse tables');
my $ddl = slurp_file("$tmp/warehouse.sql");
like($ddl, qr/ADD CONSTRAINT sgivm_k_\d+_0 PRIMARY KEY \(user_id\)/, 'the dump carries a view\'s primary key');
like($ddl, qr/ALTER TABLE ONLY public\.dws_user_ranking REPLICA IDENTITY FULL/, 'and a view\'s REPLICA IDENTITY FULL');
$sub->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-f', "$tmp/warehouse.sql", '-d', $sub->connstr('grid') ],
	'the subscriber\'s tables made from the dump');
is( $sub->safe_psql('grid', q{
	SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname = 'strict' AND c.relkind = 'r'
	  AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)}),
	'6', 'every copy of a table with a primary key has it on the subscriber');
my $connstr = $pub->connstr . ' dbname=grid';
$sub->safe_psql('grid', "CREATE SUBSCRIPTION warehouse CONNECTION '$connstr' PUBLICATION warehouse");
$sub->wait_for_subscription_sync($pub, 'warehouse', 'grid');

# ---- changes on the sources: updates in place, NULL keys, deletes, a TRUNCATE -------------------
for my $path ('public', 'strict')
{
	$pub->safe_psql('grid', "SET search_path = $path;
SELECT stategrid_ivm.generate_follow_up_changes(20);
UPDATE power_consumption SET consumption_amount = consumption_amount + 1 WHERE consumption_id % 4 = 0;
UPDATE power_user SET user_name = user_name || '*', region_id = region_id + 1 WHERE user_id % 5 = 0;
DELETE FROM power_consumption WHERE consumption_id % 9 = 0;");
}
$pub->safe_psql('grid', q{
UPDATE power_consumption SET consumption_date = NULL WHERE consumption_id % 7 = 0;
UPDATE power_consumption SET user_id = NULL WHERE consumption_id % 11 = 0;
TRUNCATE strict.power_consumption;
SET search_path = strict;
SELECT stategrid_ivm.generate_sample_data(users => 30, days => 2, start_date => '2024-04-01');
SELECT stategrid_ivm.generate_follow_up_changes(20);
});
$pub->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '120 s'), stategrid_ivm.sync('strict', '120 s')});
is( $pub->safe_psql('grid', q{
	SELECT string_agg(name || ' ' || state, ', ' ORDER BY name) FROM stategrid_ivm.pipelines}),
	'stategrid running, strict running', 'both pipelines run with their tables published');
is( $pub->safe_psql('grid', q{
	SELECT count(*) FROM (SELECT * FROM stategrid_ivm.verify('stategrid') UNION ALL SELECT * FROM stategrid_ivm.verify('strict')) v
	WHERE ok IS NOT TRUE}),
	'0', 'verify() is clean');
$pub->wait_for_catchup('warehouse');

for my $t (@qualified)
{
	my $rows = "SELECT count(*) || E'\\n' || coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') FROM $t t";
	is($sub->safe_psql('grid', $rows), $pub->safe_psql('grid', $rows), "subscriber's $t equals the publisher's");
}
# The subscriber found the rows of replicated updates and deletes by the primary key's index.
# (An apply worker sends its statistics after a commit at most once a second: one more
# replicated commit a second later sends the rest.)
my $by_index = q{
	SELECT string_agg(relname || ' ' || (idx_scan > 0), ', ' ORDER BY relname) FROM pg_stat_user_tables
	WHERE schemaname = 'strict' AND relname IN ('dwd_power_user_info', 'dwd_power_consumption_detail', 'dws_user_ranking')};
my $expected = 'dwd_power_consumption_detail true, dwd_power_user_info true, dws_user_ranking true';
my $seen = '';
for my $try (1 .. 20)
{
	$seen = $sub->safe_psql('grid', $by_index);
	last if $seen eq $expected;
	sleep 1;
	$pub->safe_psql('grid', 'UPDATE strict.power_user SET address = address WHERE user_id = 1');
	$pub->wait_for_catchup('warehouse');
}
is($seen, $expected, 'the subscriber applies updates to tables with a primary key by index');

$sub->stop;
$pub->stop;
done_testing();
