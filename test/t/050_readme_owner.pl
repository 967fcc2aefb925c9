# The README's path for a pipeline owner that is not a superuser, as written (issue 12,
# deliverable 4): the grants of the README's Privileges section (read from README.md, not
# copied here), the owner's own schema with the State Grid source tables, the whole warehouse,
# sample data and follow-up changes loaded by the owner, verify() clean; check_setup() with a
# fix only where something must change; and pg_dump run by the owner, which keeps its own
# pipeline and not a superuser's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $node = stategrid_node('readme_owner', conf => "log_min_messages = warning\n");
my $db = 'postgres';

# ---- the README's grants, as written --------------------------------------------------------
my $readme = source_file('README.md');
my ($tested) = $readme =~ /<!-- test\/t\/050_readme_owner\.pl runs the two sql blocks below as written -->\n(.*?)<!-- end of the tested blocks -->/s;
ok(defined $tested, 'README.md marks the grants this test runs');
my @blocks = ($tested // '') =~ /```sql\n(.*?)```/sg;
is(scalar @blocks, 2, 'two sql blocks: the pipeline interface, the sample-data routines');

$node->safe_psql($db, q{
	CREATE EXTENSION stategrid_ivm;
	CREATE ROLE grid_owner LOGIN;
	GRANT CREATE ON DATABASE postgres TO grid_owner;
});
for my $block (@blocks)
{
	my ($rc, $out, $err) = $node->psql($db, $block, on_error_stop => 1);
	is($rc, 0, 'README block runs: ' . (split /\n/, $block)[0]) or diag($err);
}

# ---- as the owner: its schema, the sources, the warehouse, sample data ----------------------
my $schema = source_file('examples/stategrid/schema.sql');
my $as_owner = "SET ROLE grid_owner;\nCREATE SCHEMA grid;\nSET search_path = grid, public;\n";
my ($rc, $out, $err) = $node->psql($db, $as_owner . $schema, on_error_stop => 1);
is($rc, 0, 'the owner creates the source tables in its own schema') or diag($err);

my $session = "SET ROLE grid_owner; SET search_path = grid, public;\n";
($rc, $out, $err) = $node->psql($db, $session . q{
	SELECT stategrid_ivm.create_stategrid_pipeline('grid');
}, on_error_stop => 1);
is($rc, 0, 'the owner creates the State Grid warehouse') or diag($err);

($rc, $out, $err) = $node->psql($db, $session . q{
	SELECT stategrid_ivm.generate_sample_data(users => 25, days => 2);
}, on_error_stop => 1);
is($rc, 0, 'the owner loads sample data (generate_sample_data)') or diag($err);
($rc, $out, $err) = $node->psql($db, $session . q{
	SELECT stategrid_ivm.generate_follow_up_changes(8);
}, on_error_stop => 1);
is($rc, 0, 'the owner makes follow-up changes (generate_follow_up_changes)') or diag($err);
($rc, $out, $err) = $node->psql($db, $session . q{
	CALL stategrid_ivm.simulate_readings(rate => 20, seconds => 1);
}, on_error_stop => 1);
is($rc, 0, 'the owner streams readings (simulate_readings)') or diag($err);

is($node->safe_psql($db, $session . q{
	SELECT stategrid_ivm.sync('grid', '60 s') IS NOT NULL;
	SELECT count(*) FILTER (WHERE ok) || '/' || count(*) FROM stategrid_ivm.verify('grid');
}), "t\n6/6", 'the warehouse equals a recomputation (verify)');
cmp_ok($node->safe_psql($db, 'SELECT count(*) FROM grid.dws_region_daily_stats'), '>', 0,
	'the region statistics have rows');

# ---- check_setup: a fix only where something must change -------------------------------------
is($node->safe_psql($db, q{
	SELECT count(*) FROM stategrid_ivm.check_setup() WHERE ok = (fix IS NOT NULL)}), '0',
	'check_setup: fix is NULL where ok, set where not ok');
# all 10 slots in use: max_replication_slots is not ok, and the fix asks for more than there are
$node->safe_psql($db, q{
	SELECT pg_create_logical_replication_slot('fill_' || g, 'test_decoding')
	FROM generate_series(1, 10 - (SELECT count(*) FROM pg_replication_slots)) g});
is($node->safe_psql($db, q{
	SELECT ok, fix LIKE 'max_replication_slots = 12 %'
	FROM stategrid_ivm.check_setup() WHERE requirement = 'max_replication_slots'}), 'f|t',
	'check_setup: all slots in use is not ok, and the fix names a larger setting');
$node->safe_psql($db, q{
	SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'fill\_%'});

# ---- pg_dump by the owner --------------------------------------------------------------------
# a superuser's pipeline beside the owner's: the owner's dump must not carry it
$node->safe_psql($db, q{SELECT stategrid_ivm.create_pipeline('superusers_own')});
my $tmp = PostgreSQL::Test::Utils::tempdir();
my ($stdout, $stderr);
my $dumped = $node->run_log([ 'pg_dump', '-d', $node->connstr($db) . ' user=grid_owner',
	'-f', "$tmp/owner.sql" ]);
ok($dumped, 'pg_dump as the pipeline owner succeeds');
my $dump = -r "$tmp/owner.sql" ? slurp_file("$tmp/owner.sql") : '';
like($dump, qr/^COPY stategrid_ivm\.pipeline .*\n\d+\tgrid\t/m, "the owner's dump keeps its pipeline");
unlike($dump, qr/superusers_own/, "the owner's dump leaves out a superuser's pipeline");
like($dump, qr/^COPY grid\.dws_user_ranking /m, "the owner's dump keeps its warehouse tables");

ok($node->run_log([ 'pg_dump', '-d', $node->connstr($db), '-f', "$tmp/superuser.sql" ]),
	"pg_dump as a superuser succeeds");
like(slurp_file("$tmp/superuser.sql"), qr/superusers_own/, "a superuser's dump keeps every pipeline");

$node->safe_psql($db, q{SELECT stategrid_ivm.drop_pipeline('superusers_own')});
$node->safe_psql($db, "SET ROLE grid_owner; SELECT stategrid_ivm.drop_pipeline('grid', true)");
$node->stop;
done_testing();
