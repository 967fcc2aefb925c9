# WAL safety (issue 7, deliverable 5), on a server whose settings a regression test cannot change:
#
# 1. The launcher's warning. A paused pipeline keeps its slot's WAL. With
#    stategrid_ivm.wal_warning_size = 0 nothing is logged; at 1MB (a reload) the launcher logs
#    "replication slot ... retains N MB of WAL" for the pipeline's slot, with the hint, and the
#    pipelines view shows the same figure as pg_replication_slots.
# 2. A slot invalidated by max_slot_wal_keep_size. With the pipeline paused, more WAL than the
#    limit is written (readings among it) and a checkpoint removes it: the slot is lost
#    (pipelines.slot_wal_status = 'lost', retained_wal_bytes NULL). Resumed, the pipeline goes
#    to error with a message naming the cause and rebuild_pipeline(); sync() reports it; the
#    worker does not crash. rebuild_pipeline() brings it back: every reading of the meantime is
#    in the warehouse, verify() is clean, and it streams again.
#
# The node has 1 MB WAL segments, so that a few MB of WAL go past the limit.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $schema_sql = source_file('examples/stategrid/schema.sql');

my $node = stategrid_node('wal_safety', initdb => ['--wal-segsize=1'], conf => q{
min_wal_size = 2MB
max_wal_size = 64MB
wal_keep_size = 0
log_min_messages = warning
stategrid_ivm.wal_warning_size = 0
});

$node->safe_psql('postgres', "CREATE EXTENSION stategrid_ivm;\n" . $schema_sql . q{
CREATE TABLE filler (x text);
SELECT stategrid_ivm.generate_sample_data(20, 2);
SELECT stategrid_ivm.create_stategrid_pipeline();
});
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});
my $slot = $node->safe_psql('postgres', q{SELECT slot_name FROM stategrid_ivm.pipelines WHERE name = 'stategrid'});
like($slot, qr/^sgivm_/, 'the pipeline has its slot');

sub verify_bad {
	return $node->safe_psql('postgres',
		q{SELECT coalesce(string_agg(view_name, ', '), 'none') FROM stategrid_ivm.verify('stategrid') WHERE NOT ok});
}

# Writes about $mb MB of WAL outside the pipeline's sources.
sub write_wal {
	my ($mb) = @_;
	$node->safe_psql('postgres',
		"INSERT INTO filler SELECT repeat(md5(g::text), 32) FROM generate_series(1, 900 * $mb) g");
}

# ---- 1. the launcher's warning -----------------------------------------------------------------
$node->safe_psql('postgres', q{SELECT stategrid_ivm.pause_pipeline('stategrid')});
$node->poll_query_until('postgres',
	q{SELECT worker_pid IS NULL AND NOT s.active FROM stategrid_ivm.pipelines p JOIN pg_replication_slots s USING (slot_name)})
  or die 'the worker did not stop';
my $log_offset = -s $node->logfile;
write_wal(3);
sleep 3;    # the launcher looks every second
ok(!$node->log_contains(qr/retains \d+ MB of WAL/, $log_offset),
	'wal_warning_size = 0: no warning however much WAL the paused pipeline keeps');

my ($retained, $same) = split /\|/, $node->safe_psql('postgres', q{
	SELECT p.retained_wal_bytes, p.retained_wal_bytes = pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)
	FROM stategrid_ivm.pipelines p JOIN pg_replication_slots s USING (slot_name)});
cmp_ok($retained, '>', 3 * 1024 * 1024, "the paused pipeline retains the WAL written since ($retained bytes)");
is($same, 't', 'pipelines.retained_wal_bytes is the WAL from the slot\'s restart point');

$node->safe_psql('postgres', q{ALTER SYSTEM SET stategrid_ivm.wal_warning_size = '1MB'; SELECT pg_reload_conf();});
$node->wait_for_log(qr/WARNING:  stategrid_ivm: replication slot "\Q$slot\E" retains \d+ MB of WAL/, $log_offset);
my $log = slurp_file($node->logfile, $log_offset);
my ($warned_mb) = $log =~ /replication slot "\Q$slot\E" retains (\d+) MB of WAL/;
cmp_ok($warned_mb, '>=', 3, "the launcher warns past wal_warning_size = 1MB ($warned_mb MB)");
like($log, qr/HINT:  SELECT \* FROM stategrid_ivm.pipelines shows which; resume or repair it/,
	'the warning says where to look and what to do');
my $warnings = () = $log =~ /retains \d+ MB of WAL/g;
sleep 2;
$log = slurp_file($node->logfile, $log_offset);
my $warnings_later = () = $log =~ /retains \d+ MB of WAL/g;
is($warnings_later, $warnings, 'the warning is not repeated every second');

# ---- 2. the slot invalidated by max_slot_wal_keep_size ------------------------------------------
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET stategrid_ivm.wal_warning_size = 0;
	ALTER SYSTEM SET max_slot_wal_keep_size = '2MB';
	SELECT pg_reload_conf();
});
# readings and a moved user while the pipeline is paused: they must reach the warehouse in the end
$node->safe_psql('postgres', q{
	INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
	SELECT user_id, 11.11, 6.22, '2024-02-01 08:00' FROM power_user;
	UPDATE power_user SET region_id = 99, region_name = '新区' WHERE user_id = (SELECT min(user_id) FROM power_user);
});
write_wal(6);
$node->safe_psql('postgres', q{SELECT pg_switch_wal(); CHECKPOINT;});
$node->poll_query_until('postgres',
	q{SELECT wal_status = 'lost' FROM pg_replication_slots WHERE slot_name = '} . $slot . q{'})
  or die 'the slot was not invalidated';
is($node->safe_psql('postgres',
		q{SELECT slot_wal_status || ' ' || coalesce(retained_wal_bytes::text, 'NULL') FROM stategrid_ivm.pipelines}),
	'lost NULL', 'pipelines shows the slot lost, with no retained WAL');

$log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT stategrid_ivm.resume_pipeline('stategrid')});
$node->poll_query_until('postgres', q{SELECT state = 'error' FROM stategrid_ivm.pipelines})
  or die 'the pipeline did not go to error';
my $error = $node->safe_psql('postgres', q{SELECT last_error FROM stategrid_ivm.pipelines});
like($error, qr/replication slot \Q$slot\E of pipeline "stategrid" was invalidated/, 'the error names the lost slot');
like($error, qr/max_slot_wal_keep_size/, 'and the cause');
like($error, qr/SELECT stategrid_ivm\.rebuild_pipeline\('stategrid'\)/, 'and the call that rebuilds the pipeline');
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});
like($err, qr/pipeline "stategrid" is in error: replication slot .* was invalidated/, 'sync() reports it');
ok(!$node->log_contains(qr/terminated by signal|server process .* was terminated/, $log_offset),
	'no process crashed');

$node->safe_psql('postgres', q{SELECT stategrid_ivm.rebuild_pipeline('stategrid')});
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid', '60 s')});
is($node->safe_psql('postgres', q{SELECT state || ' ' || slot_wal_status FROM stategrid_ivm.pipelines}),
	'running reserved', 'rebuilt: running on a new slot');
isnt($node->safe_psql('postgres', q{SELECT slot_name FROM stategrid_ivm.pipelines}), $slot, 'the slot is a new one');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'}),
	'0', 'the lost slot is gone');
is(verify_bad(), 'none', 'verify() is clean after the rebuild');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM dwd_power_consumption_detail WHERE consumption_amount = 11.11)
	     = (SELECT count(*) FROM power_consumption WHERE consumption_amount = 11.11)
	   AND (SELECT count(*) FROM dwd_power_consumption_detail WHERE region_id = 99) > 0}),
	't', 'the readings written while the slot was lost are in the warehouse');

$node->safe_psql('postgres', q{
	INSERT INTO power_consumption (user_id, consumption_amount, consumption_date)
	SELECT min(user_id), 22.22, '2024-02-02 08:00' FROM power_user;
});
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('stategrid')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM dws_user_ranking WHERE stat_date = '2024-02-02'}),
	'1', 'and it streams again');
is(verify_bad(), 'none', 'verify() is clean');

$node->stop;
done_testing();
