# Fan-in (issue 17, deliverable 2): two provincial clusters publish their source tables
# power_user and power_consumption (disjoint users, readings and regions); a national cluster
# subscribes both, one subscription per province, and runs create_stategrid_pipeline() over the
# subscribed tables. PostgreSQL's logical replication applies the provinces' transactions to
# the national tables; the pipeline decodes those writes like any other.
#
# Under writers in both provinces: the national cluster restarts, then one province crashes
# (-m immediate) and comes back. Afterwards the national warehouse has caught up and is exact:
# verify() is clean and both DWS tables equal a recomputation, by plain views, over the union of
# the two provinces' sources (compared as text).
#
# Then what happens when the provinces' keys collide (docs/scale-out.md): a user_id inserted in
# province 2 that province 1 already has stops province 2's subscription (duplicate key, the
# apply worker retries the transaction forever: nothing of province 2 arrives any more), while
# the national row stays province 1's; once that transaction is skipped (ALTER SUBSCRIPTION ...
# SKIP), an UPDATE of that key in province 2 overwrites province 1's row (last writer wins).
# The pipeline follows the national tables whatever they hold: verify() stays clean.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use SgivmScale;

my $schema = source_file('examples/stategrid/schema.sql');
my $conf = "log_min_messages = warning\n";

# ---- two provinces, each with its sources and a publication of them ------------------------------
my %base = (p1 => [ 1_000_000, 11 ], p2 => [ 2_000_000, 31 ]);
my %prov;
for my $p (qw(p1 p2))
{
	my $node = stategrid_node("fan_in_$p", conf => $conf);
	$node->safe_psql('postgres', $schema . writer_sql(@{ $base{$p} }) . q{
		CALL sg_write(100, 60);
		CREATE PUBLICATION province FOR TABLE power_user, power_consumption
			WITH (publish = 'insert, update, delete');
	});
	$prov{$p} = $node;
}

# ---- the national cluster: the same tables, the pipeline, then one subscription per province -----
my $national = stategrid_node('fan_in_national', conf => $conf . "wal_retrieve_retry_interval = '500ms'\n");
$national->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . $schema . q{
	SELECT stategrid_ivm.create_stategrid_pipeline();
});
for my $p (qw(p1 p2))
{
	my $conn = $prov{$p}->connstr('postgres') =~ s/'/''/gr;
	$national->safe_psql('postgres', "CREATE SUBSCRIPTION sub_$p CONNECTION '$conn' PUBLICATION province");
}

# Both provinces applied up to now, then the pipeline too.
sub catch_up
{
	for my $p (qw(p1 p2))
	{
		$national->wait_for_subscription_sync($prov{$p}, "sub_$p");
	}
	$national->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
}
catch_up();
is($national->safe_psql('postgres', q{SELECT count(*) FROM power_user}), '200',
	'the initial copies of both provinces arrived');

# ---- writers in both provinces; the national cluster restarts; province 2 crashes ----------------
writers_through_failures($national, \%prov);

catch_up();
is(not_ok($national, 'postgres', 'stategrid'), '', 'verify() is clean on the national cluster');

# ---- the national DWS against a recomputation over the union of the provinces' sources -----------
recompute_union($national, \%prov, $schema);
my $dws = dws_text($national, 'postgres', 'public');
is($dws, dws_text($national, 'recompute', 'union_of_provinces'),
	'the national DWS equal a recomputation over the union of both provinces');
like($dws, qr/^region\|11\|.*^region\|35\|/ms, 'with the regions of both provinces');

# ---- colliding keys ------------------------------------------------------------------------------------
my $offset = -s $national->logfile;
$prov{p2}->safe_psql('postgres', q{
	INSERT INTO power_user (user_id, user_name, region_id, region_name) VALUES (1000000, 'province 2''s user', 31, 'p2');
	INSERT INTO power_user (user_id, user_name, region_id, region_name) VALUES (2999999, 'after the collision', 31, 'p2');
});
$national->wait_for_log(qr/duplicate key value violates unique constraint "power_user_pkey"/, $offset);
my $log = slurp_file($national->logfile, $offset);
like($log, qr/Key \(user_id\)=\(1000000\) already exists/, 'a key of province 1 inserted in province 2: the apply fails');
ok( wait_for($national, 'postgres', q{SELECT apply_error_count > 0 FROM pg_stat_subscription_stats WHERE subname = 'sub_p2'}),
	'pg_stat_subscription_stats counts the failure');
sleep 2;
is( $national->safe_psql('postgres', q{SELECT user_name FROM power_user WHERE user_id IN (1000000, 2999999) ORDER BY 1}),
	'user 1000000',
	"the national row stays province 1's, and province 2's later transactions wait behind the failed one");

my ($finish) = $log =~ /in transaction \d+, finished at ([0-9A-F]+\/[0-9A-F]+)/;
ok(defined $finish, 'the log names the failed transaction\'s finish LSN') or diag $log;
$national->safe_psql('postgres', "ALTER SUBSCRIPTION sub_p2 SKIP (lsn = '$finish')");
$prov{p2}->safe_psql('postgres', q{UPDATE power_user SET user_name = 'updated in province 2' WHERE user_id = 1000000});
catch_up();
is( $national->safe_psql('postgres', q{SELECT user_id, user_name FROM power_user WHERE user_id IN (1000000, 2999999) ORDER BY 1}),
	"1000000|updated in province 2\n2999999|after the collision",
	'skipped, province 2 flows again, and its UPDATE of the shared key overwrites province 1\'s row');
is(not_ok($national, 'postgres', 'stategrid'), '', 'the pipeline follows the national tables: verify() is clean');

$national->stop;
$prov{$_}->stop for qw(p1 p2);
done_testing();
