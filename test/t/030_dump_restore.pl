# pg_dump / pg_restore of a database with a running State Grid pipeline (issue 7, deliverable 7).
#
# The database is dumped while the pipeline runs and a writer writes. Restored into another
# cluster (whose OIDs differ: other tables are created first), the catalog and every table
# are back, consistent with each other; the launcher starts no worker for the pipeline, whose
# slot and origin were not dumped, and shows it in error with the one call that rebuilds it;
# rebuild_pipeline() finds the tables again by name, backfills from the sources, and then
# verify() is clean and new source changes flow. Restored into another database of the same
# cluster, the copy names the original's slot and origin: the original keeps running, and
# neither rebuilding nor dropping the copy touches what is the original's.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use IPC::Run;
use Time::HiRes qw(usleep time);

my $t0 = time();
my $schema = source_file('examples/stategrid/schema.sql');
my $tmp = PostgreSQL::Test::Utils::tempdir();

sub new_node
{
	my ($name) = @_;
	return stategrid_node($name, conf => "log_min_messages = warning\n");
}

# Polls a boolean query until it is true (or the timeout passes); returns the last value.
sub wait_for
{
	my ($node, $db, $sql, $seconds) = @_;
	my $deadline = time() + ($seconds // 90);
	while (1)
	{
		my $v = $node->safe_psql($db, $sql);
		return 1 if $v eq 't';
		return 0 if time() > $deadline;
		usleep(200_000);
	}
}

# Rows of verify() that are not ok, as text ('' when all are ok); without the ODS rows when
# the sources may be ahead of the pipeline (a restored dump: the worker lagged behind the
# writer when the dump was taken).
sub not_ok
{
	my ($node, $db, $with_ods) = @_;
	my $filter = $with_ods ? '' : q{AND view_name NOT LIKE '%.ods\_%'};
	return $node->safe_psql($db, qq{
		SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
		FROM stategrid_ivm.verify('stategrid') WHERE ok IS NOT TRUE $filter});
}

# the end of last_error, as an SQL literal
my $rebuild_hint = q{'rebuild the pipeline with SELECT stategrid_ivm.rebuild_pipeline(''stategrid'')'};

# ---- the original: a running warehouse, dumped while a writer writes ---------------------------
my $orig = new_node('dump_source');
$orig->safe_psql('postgres', 'CREATE DATABASE grid');
$orig->safe_psql('grid', 'CREATE EXTENSION stategrid_ivm');
$orig->safe_psql('grid', $schema);
$orig->safe_psql('grid', q{
SELECT stategrid_ivm.generate_sample_data(users => 40, days => 3, start_date => '2024-03-01');
SELECT stategrid_ivm.create_stategrid_pipeline();
});
$orig->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
$orig->safe_psql('grid', q{SELECT stategrid_ivm.generate_follow_up_changes(12)});
$orig->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is(not_ok($orig, 'grid', 1), '', 'the original pipeline is consistent before the dump');

my $writer = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $orig->connstr('grid'), '-c', 'CALL stategrid_ivm.simulate_readings(200, 3)' ],
	'<', \undef, '>', "$tmp/writer.out", '2>&1');
usleep(500_000);
my $dump = "$tmp/grid.dump";
command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $orig->connstr('grid') ],
	'pg_dump of a database whose pipeline runs under a writer');
$writer->finish;
is($?, 0, 'the writer ran through the dump') or diag(slurp_file("$tmp/writer.out"));
my ($orig_pipeline_seq) = $orig->safe_psql('grid', 'SELECT last_value FROM stategrid_ivm.pipeline_pipeline_id_seq');

# ---- restored into another cluster --------------------------------------------------------------
my $other = new_node('restore_target');
# other objects first: the restored tables get other OIDs than in the dumped cluster
$other->safe_psql('postgres', q{
DO $$ BEGIN FOR i IN 1 .. 40 LOOP EXECUTE format('CREATE TABLE shift_oids_%s (a int PRIMARY KEY)', i); END LOOP; END $$;
});
$other->safe_psql('postgres', 'CREATE DATABASE grid');
command_ok([ 'pg_restore', '-d', $other->connstr('grid'), $dump ], 'pg_restore into another cluster');
# and into two other databases of the dumped cluster (looked at below; the launchers' next look
# at their databases is due meanwhile)
$orig->safe_psql('postgres', 'CREATE DATABASE grid_copy');
$orig->safe_psql('postgres', 'CREATE DATABASE grid_copy2');
command_ok([ 'pg_restore', '-d', $orig->connstr('grid_copy'), $dump ], 'pg_restore into another database of the same cluster');
command_ok([ 'pg_restore', '-d', $orig->connstr('grid_copy2'), $dump ], 'and into a third one');

is($other->safe_psql('grid', q{SELECT string_agg(name || ':' || array_to_string(sources, ','), ' ') FROM stategrid_ivm.pipelines}),
	'stategrid:public.power_consumption,public.power_user', 'the catalog is restored: the pipeline and its sources');
is($other->safe_psql('grid', q{SELECT string_agg(view_name, ',' ORDER BY view_id) FROM stategrid_ivm.view}),
	'public.dwd_power_user_info,public.dwd_power_consumption_detail,public.dws_region_daily_stats,public.dws_user_ranking',
	'the catalog is restored: the views');
is($other->safe_psql('grid', 'SELECT last_value FROM stategrid_ivm.pipeline_pipeline_id_seq'), $orig_pipeline_seq,
	'the catalog sequences are restored');
ok($other->safe_psql('grid', q{SELECT count(*) FROM dws_region_daily_stats}) > 0
	  && $other->safe_psql('grid', q{SELECT count(*) FROM dwd_power_consumption_detail}) > 0,
	'the warehouse tables are restored with their rows');
is($other->safe_psql('grid', q{SELECT count(*) FROM stategrid_ivm.view v WHERE to_regclass(v.view_name) <> v.relid}) > 0 ? 'differ' : 'same',
	'differ', 'the restored catalog holds the dumped cluster\'s OIDs (this test means something)');

# the launcher looks at every database every 5 s: then the pipeline is in error, naming the call
ok(wait_for($other, 'grid', qq{SELECT state = 'error' AND strpos(last_error, $rebuild_hint) > 0 FROM stategrid_ivm.pipelines}),
	'the restored pipeline is in error, and the error names rebuild_pipeline()');
my $launcher = $other->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'stategrid_ivm launcher'});
sleep(3);
is($other->safe_psql('grid', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'stategrid_ivm worker'}), '0',
	'no worker runs for a pipeline without its slot');
is($other->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'stategrid_ivm launcher'}), $launcher,
	'the launcher keeps running (no crash loop)');
my ($rc, $out, $err) = $other->psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '2 s')});
like($err, qr/is in error: .*rebuild_pipeline\('stategrid'\)/, 'sync says so, naming the call');
is(not_ok($other, 'grid', 0), '', 'the restored DWD and DWS tables agree with the restored mirrors');

$other->safe_psql('grid', q{SELECT stategrid_ivm.rebuild_pipeline('stategrid')});
$other->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is($other->safe_psql('grid', q{SELECT state FROM stategrid_ivm.pipelines}), 'running', 'rebuilt, it runs');
is($other->safe_psql('grid', q{
	SELECT count(*) FROM stategrid_ivm.view v WHERE to_regclass(v.view_name) IS DISTINCT FROM v.relid
	UNION ALL SELECT count(*) FROM stategrid_ivm.source s
	WHERE to_regclass(s.source_name) IS DISTINCT FROM s.source_relid OR to_regclass(s.ods_name) IS DISTINCT FROM s.ods_relid}),
	"0\n0", 'rebuilt, its catalog names this cluster\'s tables');
is(not_ok($other, 'grid', 1), '', 'rebuilt, verify() is clean (mirrors equal the restored sources)');

# new source changes flow
my ($applied) = $other->safe_psql('grid', q{SELECT transactions_applied FROM stategrid_ivm.pipelines});
$other->safe_psql('grid', q{
SELECT stategrid_ivm.generate_sample_data(users => 5, days => 2, start_date => '2024-03-02');
SELECT stategrid_ivm.generate_follow_up_changes(20, 0.3);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT min(user_id), 77.77, 43.55, '2024-03-05 12:00' FROM power_user;
});
$other->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
ok($other->safe_psql('grid', q{SELECT transactions_applied FROM stategrid_ivm.pipelines}) > $applied,
	'new source transactions are applied after the rebuild');
is($other->safe_psql('grid', q{SELECT count(*) FROM dwd_power_consumption_detail WHERE consumption_amount = 77.77}), '1',
	'a new reading reached the DWD table');
is(not_ok($other, 'grid', 1), '', 'verify() is clean after new changes');
# the restored sequence: a new pipeline gets a new id
$other->safe_psql('grid', q{SELECT stategrid_ivm.create_pipeline('second')});
is($other->safe_psql('grid', q{SELECT count(DISTINCT pipeline_id) FROM stategrid_ivm.pipeline}), '2',
	'a pipeline created after the restore does not reuse a restored id');
$other->safe_psql('grid', q{SELECT stategrid_ivm.drop_pipeline('second')});

# ---- restored into other databases of the same cluster ------------------------------------------
my $orig_slot = $orig->safe_psql('grid', q{SELECT slot_name FROM stategrid_ivm.pipelines});
is($orig->safe_psql('grid_copy', q{SELECT slot_name FROM stategrid_ivm.pipelines}), $orig_slot,
	'the copies name the original\'s slot');
ok(wait_for($orig, 'grid_copy', qq{SELECT state = 'error' AND strpos(last_error, $rebuild_hint) > 0 FROM stategrid_ivm.pipelines})
	  && wait_for($orig, 'grid_copy2', qq{SELECT state = 'error' FROM stategrid_ivm.pipelines}),
	'the copies are in error: the slot of that name is another database\'s');
is($orig->safe_psql('grid', q{SELECT state FROM stategrid_ivm.pipelines}), 'running', 'the original runs on');

# a copy dropped before any rebuild takes its own tables, and nothing of the original's
$orig->safe_psql('grid_copy2', q{SELECT stategrid_ivm.drop_pipeline('stategrid', true)});
is($orig->safe_psql('grid_copy2', q{SELECT count(*) FROM pg_class WHERE relname ~ '^(ods|dwd|dws)_'}), '0',
	'the dropped copy\'s tables are gone');
is($orig->safe_psql('postgres', qq{
	SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$orig_slot')
	     + (SELECT count(*) FROM pg_replication_origin WHERE roname = '$orig_slot')}), '2',
	'the original\'s slot and origin survive the copy\'s drop');

# a copy rebuilt gets its own slot and origin
$orig->safe_psql('grid_copy', q{SELECT stategrid_ivm.rebuild_pipeline('stategrid')});
$orig->safe_psql('grid_copy', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
my $copy_slot = $orig->safe_psql('grid_copy', q{SELECT slot_name FROM stategrid_ivm.pipelines});
isnt($copy_slot, $orig_slot, 'the rebuilt copy has a slot of its own');
is($orig->safe_psql('postgres', qq{SELECT database FROM pg_replication_slots WHERE slot_name = '$copy_slot'}), 'grid_copy',
	'in its own database');
is(not_ok($orig, 'grid_copy', 1), '', 'the rebuilt copy verifies clean');
$orig->safe_psql('grid_copy', q{
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT min(user_id), 66.66, 37.33, '2024-03-06 12:00' FROM power_user;
});
$orig->safe_psql('grid', q{
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT max(user_id), 55.55, 31.11, '2024-03-06 13:00' FROM power_user;
});
$orig->safe_psql('grid_copy', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
$orig->safe_psql('grid', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is($orig->safe_psql('grid_copy', q{SELECT count(*) FILTER (WHERE consumption_amount = 66.66) || '/' || count(*) FILTER (WHERE consumption_amount = 55.55) FROM dwd_power_consumption_detail}),
	'1/0', 'the copy follows its own sources');
is($orig->safe_psql('grid', q{SELECT count(*) FILTER (WHERE consumption_amount = 66.66) || '/' || count(*) FILTER (WHERE consumption_amount = 55.55) FROM dwd_power_consumption_detail}),
	'0/1', 'the original follows its own');
$orig->safe_psql('grid_copy', q{SELECT stategrid_ivm.drop_pipeline('stategrid', true)});
is(not_ok($orig, 'grid', 1), '', 'the original verifies clean after its copies came and went');
is($orig->safe_psql('postgres', qq{SELECT count(*) FROM pg_replication_slots}), '1', 'only the original\'s slot is left');

$orig->stop;
$other->stop;
note(sprintf('030_dump_restore took %.0f s', time() - $t0));
done_testing();
