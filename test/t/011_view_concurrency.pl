# The view engine between batches and next to concurrent callers (issue 4, deliverables 1 and 3;
# DESIGN.md §2 invariants 1 and 3).
#
# 1. Invariant 3 observed at every step. With one source transaction per batch
#    (stategrid_ivm.batch_size = 1, catchup_round = 0) and the pipeline paused, T1 inserts a reading of user 7
#    (region 1), T2 moves user 7 to region 2, T3 deletes user 8 who has readings. Row locks
#    that the test holds on the ODS mirror stop the worker before T2 and then before T3, so the
#    state it committed after T1 and after T2 can be read: each must equal a full recomputation
#    over the mirrors (verify), with the reading filed under region 1 after T1 (the user as of
#    T1, not the live source's region 2) and under region 2 after T2. Then the final state.
# 2. add_view and refresh_view while the worker is inside an apply transaction: the worker has
#    written the DWD and waits (on a lock the test holds) before it finishes the batch; add_view
#    of a view over the DWD, and refresh_view of the DWD, must wait for that batch and then
#    succeed, not deadlock with the worker's update of the pipeline's catalog row, and the
#    worker must not fail either.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use Time::HiRes qw(usleep time);

my $t0 = time();
my $warehouse = source_file('examples/stategrid/warehouse.sql');
my $schema    = source_file('examples/stategrid/schema.sql');
$warehouse =~ s/:'pipeline'/'p'/g;

my $node = stategrid_node('view_concurrency', conf => q{
log_min_messages = warning
# one source transaction per apply transaction
stategrid_ivm.batch_size = 1
stategrid_ivm.catchup_round = 0
deadlock_timeout = 1s
});

$node->safe_psql('postgres', 'CREATE EXTENSION stategrid_ivm');
$node->safe_psql('postgres', $schema);
$node->safe_psql('postgres', q{
ALTER TABLE power_consumption DROP CONSTRAINT power_consumption_user_id_fkey;
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name) VALUES
    (7, '张三', '居民', 1, '北京'), (8, '李四', '商业', 1, '北京'), (9, '王五', '工业', 2, '上海');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date) VALUES
    (1, 7, 10.00, 5.00, '2024-06-01 08:00'), (2, 8, 20.00, 9.00, '2024-06-01 09:00'),
    (3, 8, 5.00, 2.00, '2024-06-02 09:00'), (4, 9, 40.00, 20.00, '2024-06-01 10:00');
SELECT stategrid_ivm.create_pipeline('p');
SELECT stategrid_ivm.add_source('p', 'power_user');
SELECT stategrid_ivm.add_source('p', 'power_consumption');
} . $warehouse . q{
SELECT stategrid_ivm.start_pipeline('p');
});
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('p', '60 s')});

# every maintained table against a recomputation over the mirrors (ODS rows are left out when
# the sources are ahead of the pipeline on purpose)
sub views_not_ok
{
	my ($with_ods) = @_;
	my $filter = $with_ods ? '' : q{AND view_name NOT LIKE '%.ods\_%'};
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
		FROM stategrid_ivm.verify('p') WHERE ok IS NOT TRUE $filter});
}

sub worker_pid
{
	return $node->safe_psql('postgres', q{SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'p'});
}

# waits until the pipeline's worker waits for a lock held by session $pid
sub wait_worker_blocked_by
{
	my ($pid, $what) = @_;
	ok($node->poll_query_until('postgres', qq{
		SELECT $pid = ANY (pg_blocking_pids(worker_pid)) FROM stategrid_ivm.pipelines WHERE name = 'p'}),
		"the worker waits for $what");
}

is(views_not_ok(1), '', 'initial state: verify is clean');

# ---- 1. invariant 3, step by step -------------------------------------------------------------
$node->safe_psql('postgres', q{SELECT stategrid_ivm.pause_pipeline('p')});
ok($node->poll_query_until('postgres', q{SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'p'}),
	'paused: the worker is gone');
$node->safe_psql('postgres', q{
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (5, 7, 100.00, 50.00, '2024-06-01 12:00');
});
$node->safe_psql('postgres', q{UPDATE power_user SET region_id = 2, region_name = '上海' WHERE user_id = 7});
$node->safe_psql('postgres', q{DELETE FROM power_user WHERE user_id = 8});

# the mirror rows T2 and T3 change are locked by two sessions
my $hold7 = $node->background_psql('postgres');
my $hold8 = $node->background_psql('postgres');
my $pid7 = $hold7->query_safe('SELECT pg_backend_pid()');
my $pid8 = $hold8->query_safe('SELECT pg_backend_pid()');
$hold7->query_safe('BEGIN');
$hold7->query_safe('SELECT user_id FROM ods_power_user WHERE user_id = 7 FOR UPDATE');
$hold8->query_safe('BEGIN');
$hold8->query_safe('SELECT user_id FROM ods_power_user WHERE user_id = 8 FOR UPDATE');

$node->safe_psql('postgres', q{SELECT stategrid_ivm.resume_pipeline('p')});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM ods_power_consumption WHERE consumption_id = 5}),
	'T1 applied');
wait_worker_blocked_by($pid7, 'the row of user 7 (T2)');

# after T1: the reading belongs to region 1, where user 7 was when it was committed
is(views_not_ok(0), '', 'after T1: every view equals a recomputation over the mirrors');
is($node->safe_psql('postgres', q{SELECT region_id || ' ' || region_name FROM dwd_power_consumption_detail WHERE consumption_id = 5}),
	'1 北京', 'after T1: reading 5 is filed under region 1 (the user as of T1, not the live region 2)');
is($node->safe_psql('postgres', q{
	SELECT total_consumption || ' ' || user_count FROM dws_region_daily_stats
	WHERE region_id = 1 AND stat_date = '2024-06-01'}),
	'130.00 2', 'after T1: region 1 on 06-01 counts readings 1, 2 and 5');
is($node->safe_psql('postgres', q{SELECT region_id FROM power_user WHERE user_id = 7}),
	'2', '(meanwhile the live source already says region 2)');

$hold7->query_safe('COMMIT');
ok($node->poll_query_until('postgres', q{SELECT region_id = 2 FROM ods_power_user WHERE user_id = 7}), 'T2 applied');
wait_worker_blocked_by($pid8, 'the row of user 8 (T3)');

# after T2: user 7 and all his readings are in region 2; user 8 still exists
is(views_not_ok(0), '', 'after T2: every view equals a recomputation over the mirrors');
is($node->safe_psql('postgres', q{
	SELECT string_agg(consumption_id || ':' || region_id, ',' ORDER BY consumption_id) FROM dwd_power_consumption_detail}),
	'1:2,2:1,3:1,4:2,5:2', 'after T2: readings 1 and 5 moved to region 2, user 8 still in region 1');
is($node->safe_psql('postgres', q{
	SELECT string_agg(region_id || '/' || stat_date || '=' || total_consumption, ' ' ORDER BY region_id, stat_date)
	FROM dws_region_daily_stats}),
	'1/2024-06-01=20.00 1/2024-06-02=5.00 2/2024-06-01=150.00', 'after T2: per-region totals');

$hold8->query_safe('COMMIT');
$hold7->quit;
$hold8->quit;
$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('p', '60 s')});
is(views_not_ok(1), '', 'after T3: verify is clean');
is($node->safe_psql('postgres', q{
	SELECT string_agg(region_id || '/' || stat_date || '=' || total_consumption, ' ' ORDER BY region_id, stat_date)
	FROM dws_region_daily_stats}),
	'0/2024-06-01=20.00 0/2024-06-02=5.00 2/2024-06-01=150.00',
	'after T3: user 8\'s readings under the unknown region 0, the rest in region 2');

# ---- 2. add_view and refresh_view while a batch is half done ----------------------------------
# Runs $sql (in its own session) while the worker, in the middle of the batch that applies reading
# $reading, has written the DWD and waits for a lock on dws_user_ranking that the test holds; then
# lets the worker go on. $sql must wait for the batch and succeed, and the worker must not fail.
sub next_to_a_batch
{
	my ($label, $reading, $sql, $expect) = @_;
	my $errors_before = $node->safe_psql('postgres', q{SELECT error_count FROM stategrid_ivm.pipeline WHERE name = 'p'});
	my $blocker = $node->background_psql('postgres');
	my $blocker_pid = $blocker->query_safe('SELECT pg_backend_pid()');
	$blocker->query_safe('BEGIN');
	$blocker->query_safe('LOCK TABLE dws_user_ranking IN SHARE MODE');
	$node->safe_psql('postgres', qq{
		INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
		VALUES ($reading, 9, 1.00, '2024-06-03 08:00')});
	wait_worker_blocked_by($blocker_pid, "dws_user_ranking, in the middle of its batch ($label)");

	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	my $caller_pid = $caller->query_safe('SELECT pg_backend_pid()');
	$caller->query_until(qr/calling/, "\\echo calling\n$sql;\n");
	# it waits for a lock, or (wrongly) it is already done
	$node->poll_query_until('postgres', qq{
		SELECT wait_event_type = 'Lock' OR state <> 'active' FROM pg_stat_activity WHERE pid = $caller_pid});
	is($node->safe_psql('postgres', qq{SELECT wait_event_type FROM pg_stat_activity WHERE pid = $caller_pid}),
		'Lock', "$label waits for the worker's batch");
	# let the worker finish its batch
	$blocker->query_safe('COMMIT');
	$blocker->quit;
	my ($out, $failed) = $caller->query(q{SELECT 'done'});
	my $err = $caller->{stderr};
	$caller->quit;
	ok(!$failed && $out =~ $expect, "$label next to a running batch succeeds")
	  or diag("$label: $out $err");
	$node->safe_psql('postgres', q{SELECT stategrid_ivm.sync('p', '60 s')});
	is($node->safe_psql('postgres', q{SELECT error_count FROM stategrid_ivm.pipeline WHERE name = 'p'}),
		$errors_before, "$label: the worker did not fail either");
	is(views_not_ok(1), '', "$label: verify is clean");
}

next_to_a_batch('add_view', 6, q{SELECT stategrid_ivm.add_view('p', 'dws_user_readings',
    'SELECT user_id, COUNT(*) AS readings FROM dwd_power_consumption_detail GROUP BY user_id')},
	qr/^dws_user_readings$/m);
next_to_a_batch('refresh_view', 7, q{SELECT stategrid_ivm.refresh_view('dwd_power_consumption_detail')},
	qr/^7$/m);

my $deadlocks = () = slurp_file($node->logfile) =~ /deadlock detected/g;
is($deadlocks, 0, 'no deadlock in the server log');

$node->stop;
note sprintf('test took %.1f s', time() - $t0);
done_testing();
