# Crash matrix of the whole State Grid warehouse (issue 3 deliverable 7, issue 7 deliverable 1;
# DESIGN.md §2 invariant 2, §7).
#
# A pipeline over power_user and power_consumption with the four warehouse views (DWD, DWS and
# the ranking), started on tables that already hold rows, while two writers keep committing
# small transactions (inserts, updates, primary-key updates, deletes, subtransactions,
# rollbacks) on both tables. Meanwhile, each of these makes the postmaster restart every
# backend:
#   - the worker kills itself (SIGKILL, stategrid_ivm.debug_crash_at) at named points: during
#     the backfill after the copy (before its commit), mid-batch after the mirrors were written,
#     after the views were maintained (before the commit), right after the apply commit (before
#     the slot is confirmed), right after the confirmation;
#   - SIGKILL of the worker at random moments;
#   - SIGKILL of a backend running refresh_view;
#   - SIGKILL of the launcher;
#   - an immediate stop of the whole server.
# After sync(), verify() finds every mirror and view equal to a full recomputation, each ODS
# mirror equals its source exactly (EXCEPT ALL both ways, and counts), and the pipeline runs
# with no error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use IPC::Run;
use SgivmTap;

# The State Grid source tables, from the file the demo and the regression tests use.
my $schema_sql = source_file('examples/stategrid/schema.sql');

my $seed = $ENV{SGIVM_TAP_SEED} // int(time() * 1000) % 1000000;
srand($seed);
note "random seed $seed (set SGIVM_TAP_SEED to repeat)";
my $t0 = time();

my $node = stategrid_node('crash', conf => q{
# a SIGKILLed worker makes the postmaster restart every backend: let it
restart_after_crash = on
# the writers would flood the log otherwise
log_statement = none
log_min_messages = warning
# small batches: more apply transactions, so the kills land in more places
stategrid_ivm.batch_size = 200
# the server log tells when a crash point was reached (LOG lines are logged at this level too)
});

$node->safe_psql('postgres', q{
CREATE EXTENSION stategrid_ivm;

} . $schema_sql . q{

-- user ids handed out by the writers (existing users are 1..2000)
CREATE SEQUENCE w_uid START 1000000;

-- a random existing user / reading (NULL if there is none)
CREATE FUNCTION w_pick_user() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT user_id FROM power_user OFFSET floor(random() * (SELECT count(*) FROM power_user)) LIMIT 1
$$;
CREATE FUNCTION w_pick_reading() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT consumption_id FROM power_consumption
    WHERE consumption_id >= (SELECT min(consumption_id) + floor(random() * (max(consumption_id) - min(consumption_id) + 1))::bigint FROM power_consumption)
    ORDER BY consumption_id LIMIT 1
$$;

-- existing rows, before the pipeline starts (the backfill copies them)
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
SELECT i, '用户' || i, (ARRAY['居民', '商业', '工业'])[1 + i % 3], 1 + i % 10, '地区' || (1 + i % 10),
       'address ' || i, '138' || lpad(i::text, 8, '0')
FROM generate_series(1, 2000) i;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 1 + i % 2000, (i % 500) / 10.0, (i % 500) / 20.0, timestamp '2024-01-01' + (i % 90) * interval '1 day',
       i % 1000, i % 1000 + (i % 500) / 10.0, CASE WHEN i % 7 = 0 THEN NULL ELSE 'reading ' || i END
FROM generate_series(1, 20000) i;
});

# The writers' transactions. Every statement commits on its own unless inside BEGIN/COMMIT;
# errors (a random pick that found nothing, a foreign key, a connection lost in a restart) are
# ignored: psql goes on with the next statement.
my $writer_sql = <<'EOSQL';
\set ON_ERROR_STOP 0
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
SELECT nextval('w_uid'), 'w' || r, (ARRAY['居民', '商业', '工业'])[1 + r % 3], 1 + r % 10, '地区' || (1 + r % 10), 'new address', '139' || lpad(r::text, 8, '0')
FROM (SELECT floor(random() * 1000000)::int AS r) s;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, meter_reading_before, meter_reading_after, remark)
SELECT w_pick_user(), round((random() * 100)::numeric, 2), round((random() * 50)::numeric, 2), timestamp '2024-01-01' + floor(random() * 90) * interval '1 day', 100, 100 + round((random() * 100)::numeric, 2), 'live ' || g
FROM generate_series(1, 1 + floor(random() * 4)::int) g;
UPDATE power_consumption SET consumption_amount = consumption_amount + 1, consumption_cost = consumption_cost + 0.5, remark = 'corrected'
WHERE consumption_id = (SELECT w_pick_reading());
UPDATE power_user SET region_id = 1 + floor(random() * 10)::int, region_name = '迁移', update_time = now()
WHERE user_id = (SELECT w_pick_user());
UPDATE power_consumption SET consumption_id = nextval('power_consumption_consumption_id_seq'), remark = 'rekeyed'
WHERE consumption_id = (SELECT w_pick_reading());
UPDATE power_user SET user_id = nextval('w_uid'), user_name = left(user_name, 80) || ' (rekeyed)'
WHERE user_id = (SELECT u.user_id FROM power_user u
                 WHERE NOT EXISTS (SELECT 1 FROM power_consumption c WHERE c.user_id = u.user_id)
                 OFFSET floor(random() * 20) LIMIT 1);
DELETE FROM power_consumption WHERE consumption_id = (SELECT w_pick_reading());
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, remark)
SELECT w_pick_user(), 1.25, 0.6, now(), 'in a transaction';
UPDATE power_consumption SET meter_reading_after = meter_reading_after + 2 WHERE consumption_id = (SELECT w_pick_reading());
SAVEPOINT s1;
DELETE FROM power_consumption WHERE consumption_id = (SELECT w_pick_reading());
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
UPDATE power_user SET phone = '13700000000' WHERE user_id = (SELECT w_pick_user());
RELEASE SAVEPOINT s2;
COMMIT;
BEGIN;
DELETE FROM power_consumption WHERE consumption_id = (SELECT w_pick_reading());
INSERT INTO power_user (user_id, user_name) VALUES (nextval('w_uid'), 'rolled back');
ROLLBACK;
BEGIN;
SELECT w_pick_user() AS del_user \gset
DELETE FROM power_consumption WHERE user_id = :del_user;
DELETE FROM power_user WHERE user_id = :del_user;
COMMIT;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, remark)
SELECT w_pick_user(), g % 50, g % 25, timestamp '2024-03-01' + g * interval '1 minute', 'bulk ' || g
FROM generate_series(1, 50) g;
DELETE FROM power_consumption WHERE consumption_id IN (SELECT w_pick_reading() FROM generate_series(1, 3));
EOSQL

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $sql_file = "$tmp/writer.sql";
open my $fh, '>', $sql_file or die "cannot write $sql_file: $!";
print $fh $writer_sql;
close $fh;
my $stop_file = "$tmp/stop";
my $connstr = $node->connstr('postgres');

# One writer = a shell loop of short psql runs, so that it survives the restarts: a psql that
# lost its connection ends, and the next one connects again (after a short pause if the
# server is not up). Each run that got through appends a line to its counter file.
sub start_writer
{
	my ($n) = @_;
	my $loop = q{
		while [ ! -e "$STOP" ] && [ -d "$(dirname "$STOP")" ] && [ "$SECONDS" -lt 900 ]; do
			if psql -X -q -d "$CONN" -f "$SQL" >/dev/null 2>&1; then echo >>"$COUNT"; else sleep 0.1; fi
		done
	};
	local $ENV{STOP}  = $stop_file;
	local $ENV{CONN}  = $connstr;
	local $ENV{SQL}   = $sql_file;
	local $ENV{COUNT} = "$tmp/count$n";
	return IPC::Run::start([ 'bash', '-c', $loop ], '<', \undef, '>', "$tmp/writer$n.out", '2>&1');
}

sub writer_runs
{
	my $runs = 0;
	for my $f (glob("$tmp/count*"))
	{
		open my $c, '<', $f or next;
		$runs++ while <$c>;
		close $c;
	}
	return $runs;
}

# psql that tolerates a server in the middle of a restart: retries until it gets an answer.
sub query_retry
{
	my ($sql) = @_;
	for (1 .. 600)
	{
		# psql -c, not $node->psql: that one writes the query to psql's stdin, which dies of
		# a broken pipe when psql exits at once because the server is restarting
		my ($out, $err) = ('', '');
		my $ok = IPC::Run::run([ 'psql', '-XAtq', '-d', $connstr, '-c', $sql ],
			'<', \undef, '>', \$out, '2>', \$err);
		if ($ok)
		{
			chomp $out;
			return $out;
		}
		usleep(50_000);
	}
	die "query kept failing: $sql";
}

# The worker's pid, once there is one (after a restart the launcher starts it again).
sub wait_worker_pid
{
	for (1 .. 600)
	{
		my $pid = query_retry("SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'p' AND state = 'running'");
		return $pid if defined $pid && $pid =~ /^\d+$/;
		usleep(100_000);
	}
	die "the worker of pipeline p did not come back";
}

sub mirror_diff
{
	my ($src, $ods) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM (SELECT * FROM $src EXCEPT ALL SELECT * FROM $ods) a) || ' '
		    || (SELECT count(*) FROM (SELECT * FROM $ods EXCEPT ALL SELECT * FROM $src) b) || ' '
		    || (SELECT count(*) FROM $src) || ' ' || (SELECT count(*) FROM $ods)});
}

# ---- crash points -----------------------------------------------------------------------------
my %kill_points;  # what was exercised, and how often

# Sets stategrid_ivm.debug_crash_at (ALTER SYSTEM, reload): the worker reads it between batches.
sub set_crash_at
{
	my ($points) = @_;
	query_retry("ALTER SYSTEM SET stategrid_ivm.debug_crash_at = '$points'");
	query_retry('SELECT pg_reload_conf()');
}

sub crash_point_hits
{
	my ($point) = @_;
	my $log = slurp_file($node->logfile);
	my $n = () = $log =~ /crash point "\Q$point\E" reached/g;
	return $n;
}

# Arms one crash point, waits until the worker reached it (and the server came back), disarms it.
sub crash_at
{
	my ($point, $timeout_s) = @_;
	my $before = crash_point_hits($point);
	set_crash_at($point);
	my $hit = 0;
	for (1 .. $timeout_s * 10)
	{
		if (crash_point_hits($point) > $before) { $hit = 1; last; }
		usleep(100_000);
	}
	set_crash_at('');
	query_retry('SELECT 1');
	# The worker the crash restart started read the armed setting before the disarming reload,
	# and may reach the point once more before it reloads (between batches): wait until a worker
	# runs and the point stays unreached for a second.
	my $n = crash_point_hits($point);
	for (1 .. 60)
	{
		wait_worker_pid();
		usleep(1_000_000);
		my $now = crash_point_hits($point);
		last if $now == $n;
		note "crash point $point reached again by the worker the restart started";
		$n = $now;
		query_retry('SELECT 1');
	}
	ok($hit, "crash point $point: the worker killed itself there");
	$kill_points{"crash point $point"}++ if $hit;
}

# ---- the pipeline with the whole warehouse, started while the writers write ---------------------
$node->safe_psql('postgres', q{
SELECT stategrid_ivm.create_pipeline('p');
SELECT stategrid_ivm.add_source('p', 'power_user');
SELECT stategrid_ivm.add_source('p', 'power_consumption');
SELECT stategrid_ivm.add_view('p', view_name, query) FROM stategrid_ivm.stategrid_warehouse_views() ORDER BY ord;
});

my @writers = map { start_writer($_) } (1, 2);
# whatever way the test ends, the writers end with it
END
{
	if (open my $stop, '>', $stop_file) { close $stop; }
	for my $w (@writers) { eval { $w->kill_kill(grace => 2) if $w->pumpable; 1 }; }
}
usleep(300_000);
# the first backfill dies after its copy, before its commit; the next one completes
set_crash_at('backfill_copied');
$node->safe_psql('postgres', q{SELECT stategrid_ivm.start_pipeline('p')});
for (1 .. 300)
{
	last if crash_point_hits('backfill_copied') > 0;
	usleep(100_000);
}
set_crash_at('');
query_retry('SELECT 1');
ok(crash_point_hits('backfill_copied') > 0, 'crash point backfill_copied: the backfill was killed before its commit');
$kill_points{'crash point backfill_copied'}++ if crash_point_hits('backfill_copied') > 0;
{
	# the disarmed crash point may still fire once more, while the reload is on its way
	my ($rc, $out, $err);
	for (1 .. 5)
	{
		($rc, $out, $err) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('p', '60 s')});
		last if $rc == 0 || $err !~ /terminating connection|server closed the connection|could not connect/;
		query_retry('SELECT 1');
	}
	if (!is($rc, 0, 'pipeline started and caught up while the writers write'))
	{
		diag $err;
		diag $node->safe_psql('postgres', q{SELECT * FROM stategrid_ivm.pipelines}, extra_params => ['-x']);
		open my $sf, '>', $stop_file or die;
		close $sf;
		$_->finish for @writers;
		$node->stop('immediate');
		done_testing();
		exit 1;
	}
}

# ---- SIGKILL the worker several times ---------------------------------------------------------
# Waits until process $pid is gone (the postmaster reaped it; its crash handling has begun).
sub wait_gone
{
	my ($pid) = @_;
	for (1 .. 200)
	{
		return 1 unless kill(0, $pid);
		usleep(50_000);
	}
	return 0;
}

for my $point (qw(after_mirrors after_views after_commit after_confirm))
{
	wait_worker_pid();
	crash_at($point, 60);
}

my $kills = 4;
my %seen;
for my $k (1 .. $kills)
{
	wait_worker_pid();
	usleep(300_000 + int(rand(1_700_000)));
	# the worker that runs now
	my $pid = wait_worker_pid();
	my $before = writer_runs();
	ok(kill('KILL', $pid), "kill $k: SIGKILL sent to worker $pid");
	$seen{$pid} = 1;
	ok(wait_gone($pid), "kill $k: worker $pid is gone");
	# the postmaster restarts every backend; wait until the server answers again
	query_retry('SELECT 1');
	note sprintf('kill %d at %.1f s, writer runs so far %d', $k, time() - $t0, $before);
	$kill_points{'SIGKILL of the worker at a random moment'}++;
}
is(scalar(keys %seen), $kills, 'each kill hit a different worker process');

# ---- SIGKILL a backend in the middle of refresh_view -------------------------------------------
{
	wait_worker_pid();
	my $refresh = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $connstr, '-c',
		  "SELECT stategrid_ivm.refresh_view('dws_user_ranking'), pg_sleep(5)" ],
		'<', \undef, '>', "$tmp/refresh.out", '2>&1');
	my $pid;
	for (1 .. 100)
	{
		$pid = query_retry(q{SELECT pid FROM pg_stat_activity WHERE query LIKE '%refresh_view(''dws_user_ranking'')%'
		                     AND pid <> pg_backend_pid() LIMIT 1});
		last if $pid =~ /^\d+$/;
		usleep(20_000);
	}
	ok($pid =~ /^\d+$/ && kill('KILL', $pid), "SIGKILL sent to the backend running refresh_view ($pid)");
	$kill_points{'SIGKILL of a backend in refresh_view'}++;
	$refresh->finish;
	query_retry('SELECT 1');
}

# ---- SIGKILL the launcher ---------------------------------------------------------------------
{
	my $launcher = query_retry(q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'stategrid_ivm launcher'});
	ok($launcher =~ /^\d+$/ && kill('KILL', $launcher), "SIGKILL sent to the launcher ($launcher)");
	ok(wait_gone($launcher), 'the launcher is gone');
	$kill_points{'SIGKILL of the launcher'}++;
	query_retry('SELECT 1');
	wait_worker_pid();
}

# the writers went on after the restarts
my $runs_before = writer_runs();
for (1 .. 100)
{
	last if writer_runs() >= $runs_before + 3;
	usleep(100_000);
}
cmp_ok(writer_runs(), '>=', $runs_before + 3, 'writers survive the crash restarts');

# ---- then the whole server, in immediate mode ------------------------------------------------
wait_worker_pid();
usleep(300_000 + int(rand(700_000)));
$node->stop('immediate');
$node->start;
usleep(500_000);
$kill_points{'immediate stop of the server'}++;

# stop the writers
open my $sf, '>', $stop_file or die;
close $sf;
$_->finish for @writers;
my $total_runs = writer_runs();
cmp_ok($total_runs, '>', 10, "writers completed $total_runs runs of their script");

# ---- after sync, mirrors equal sources ----------------------------------------------------------
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT stategrid_ivm.sync('p', '120 s') IS NOT NULL});
is($rc, 0, 'sync returns after the crashes') or diag $err;

for my $pair ([ 'power_user', 'ods_power_user' ], [ 'power_consumption', 'ods_power_consumption' ])
{
	my ($src, $ods) = @$pair;
	my ($missing, $extra, $nsrc, $nods) = split / /, mirror_diff($src, $ods);
	is($missing, 0, "$ods: no source row missing");
	is($extra,   0, "$ods: no extra row");
	is($nods, $nsrc, "$ods: same count as $src ($nsrc)");
}

# ---- every mirror and view equals a full recomputation ------------------------------------------
my $verify = $node->safe_psql('postgres', q{
	SELECT string_agg(view_name || ': ' || missing_rows || ' missing, ' || extra_rows || ' extra', '; '
	                  ORDER BY view_name) FILTER (WHERE NOT ok),
	       count(*)
	FROM stategrid_ivm.verify('p')});
my ($bad, $checked) = split /\|/, $verify;
is($bad, '', "verify(): all $checked tables of the warehouse equal a full recomputation");
note sprintf('%d kinds of kill point exercised, %d kills in all: %s', scalar(keys %kill_points),
	eval { my $n = 0; $n += $_ for values %kill_points; $n },
	join(', ', map { "$_ x$kill_points{$_}" } sort keys %kill_points));
is(scalar(keys %kill_points), 9, 'all nine kinds of kill point were exercised');

my $status = $node->safe_psql('postgres', q{
	SELECT state, worker_pid IS NOT NULL, transactions_applied > 0, rows_applied > 0,
	       coalesce(last_error, '<none>')
	FROM stategrid_ivm.pipelines WHERE name = 'p'});
my ($state, $has_pid, $txns, $rows, $last_error) = split /\|/, $status;
is($state, 'running', 'pipeline is running after the crashes');
is($has_pid, 't', 'it has a worker');
is($txns, 't', 'transactions_applied > 0');
is($rows, 't', 'rows_applied > 0');
is($last_error, '<none>', 'no error recorded');
note 'pipelines: ' . $node->safe_psql('postgres', q{
	SELECT transactions_applied || ' transactions, ' || rows_applied || ' rows applied, lag ' || lag_bytes || ' bytes'
	FROM stategrid_ivm.pipelines WHERE name = 'p'});
note 'sources: ' . $node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM power_user) || ' users, ' || (SELECT count(*) FROM power_consumption) || ' readings'});

# nothing of ours crashed on its own (the only crashes are the kills above)
my $log = slurp_file($node->logfile);
my $aborts = () = $log =~ /was terminated by signal (?!9)/g;
is($aborts, 0, 'no process died of another signal than our SIGKILLs');

$node->stop;
note sprintf('test took %.1f s', time() - $t0);
done_testing();
