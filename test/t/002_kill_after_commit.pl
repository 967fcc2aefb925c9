# Exactly once across crashes that land between an apply commit and the slot's confirmation,
# and backfill under concurrent writes (issue 3, deliverables 4 and 7; DESIGN.md §2 inv. 2, §5).
#
# 1. Backfill while writers write: start_pipeline on tables that hold rows while two writers
#    keep inserting, updating (primary keys too) and deleting; after sync() the mirrors equal
#    the sources.
# 2. Backfill under one snapshot: the copy of a second source is held back (a lock on the first
#    source) while a transaction updates a row of the second source without touching its
#    TOASTed column and a later one deletes the row. The stream replays both; the copy must
#    be the one of the recorded snapshot, or the update finds no old row to take the unchanged
#    TOASTed value from.
# 3. Kill between commit and confirmation: with the pipeline paused, a known workload is
#    written (every transaction and row counted); the pipeline is resumed and, each time the
#    catalog shows that a batch committed (applied_lsn moved), its worker is SIGKILLed at once,
#    or the server is stopped in immediate mode. There is no hook to stop the worker between
#    its commit and the slot's confirmation, and the in-memory confirmation follows the commit
#    within microseconds (how many kills still landed before it is reported, not asserted);
#    but the slot's position reaches the disk only lazily (checkpoints), so after each crash
#    the slot restarts behind what the replication origin says is applied: the worker decodes
#    applied transactions again and must skip exactly those. Asserted: such restarts happened;
#    after sync(), transactions_applied and rows_applied (both updated in the apply
#    transaction) grew by exactly the workload's transactions and rows, so none was applied
#    twice or lost (the mirrors alone could not tell: re-applying row images is idempotent);
#    mirrors equal sources; the pipeline runs without error.
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

my $node = stategrid_node('kac', conf => q{
restart_after_crash = on
log_statement = none
log_min_messages = warning
# many small apply transactions: many commit/confirm windows to land in
stategrid_ivm.batch_size = 50
});

$node->safe_psql('postgres', q{
CREATE EXTENSION stategrid_ivm;

} . $schema_sql . q{
-- an insert-mostly ledger: no constraint but its primary key
CREATE TABLE meter_ledger (
    event_id  bigint PRIMARY KEY,
    user_id   bigint,
    amount    numeric(10,2),
    note      text
);

CREATE SEQUENCE w_uid START 1000000;
CREATE FUNCTION w_pick_user() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT user_id FROM power_user WHERE user_id < 900000000
    OFFSET floor(random() * 3000) LIMIT 1
$$;
CREATE FUNCTION w_pick_reading() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT consumption_id FROM power_consumption
    WHERE consumption_id >= (SELECT min(consumption_id) + floor(random() * (max(consumption_id) - min(consumption_id) + 1))::bigint FROM power_consumption)
    ORDER BY consumption_id LIMIT 1
$$;

INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
SELECT i, '用户' || i, (ARRAY['居民', '商业', '工业'])[1 + i % 3], 1 + i % 10, '地区' || (1 + i % 10),
       'address ' || i, '138' || lpad(i::text, 8, '0')
FROM generate_series(1, 3000) i;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 1 + i % 3000, (i % 500) / 10.0, (i % 500) / 20.0, timestamp '2024-01-01' + (i % 90) * interval '1 day',
       i % 1000, i % 1000 + (i % 500) / 10.0, 'reading ' || i
FROM generate_series(1, 200000) i;
INSERT INTO meter_ledger SELECT i, 1 + i % 3000, i % 100, 'initial' FROM generate_series(1, 1000) i;

-- Waits until the catalog shows a batch of pipeline pname committed past "after", then says at
-- once which worker committed it and where the slot and the origin stand; 'done' when nothing
-- is left to apply (the worker has read past "target" and applied nothing after "after").
CREATE FUNCTION sgt_wait_applied(after pg_lsn, target pg_lsn, pname text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    deadline timestamptz := clock_timestamp() + interval '60 s';
BEGIN
    LOOP
        SELECT p.applied_lsn, s.worker_pid, s.caught_up_lsn, sl.confirmed_flush_lsn,
               pg_replication_origin_progress(p.origin_name, false) AS origin
        INTO r
        FROM stategrid_ivm.pipeline p
        LEFT JOIN stategrid_ivm._runtime_status() s ON s.pipeline_id = p.pipeline_id
        LEFT JOIN pg_replication_slots sl ON sl.slot_name = p.slot_name
        WHERE p.name = pname;
        IF r.applied_lsn > coalesce(after, '0/0') AND r.worker_pid IS NOT NULL THEN
            RETURN concat_ws(' ', r.worker_pid, r.applied_lsn, coalesce(r.confirmed_flush_lsn::text, '-'),
                             coalesce(r.origin::text, '-'));
        END IF;
        IF r.caught_up_lsn >= target THEN
            RETURN 'done';
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN 'timeout';
        END IF;
        PERFORM pg_sleep(0.001);
    END LOOP;
END
$$;
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $connstr = $node->connstr('postgres');

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

# sync() as an assertion; on failure shows the pipeline's status.
sub sync_ok
{
	my ($pipeline, $timeout, $what) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT stategrid_ivm.sync('$pipeline', '$timeout')");
	my $ok = is($rc, 0, $what);
	if (!$ok)
	{
		diag $err;
		diag $node->safe_psql('postgres',
			"SELECT * FROM stategrid_ivm.pipelines WHERE name = '$pipeline'", extra_params => ['-x']);
	}
	return $ok;
}

# Ends the test early (after a failed assertion) when what follows could only time out.
sub give_up
{
	my ($why) = @_;
	diag "giving up: $why";
	my ($rc, $out, $err) = $node->psql('postgres', 'SELECT * FROM stategrid_ivm.pipelines', extra_params => ['-x']);
	diag $out;
	$node->stop('immediate');
	done_testing();
	exit 1;
}

sub mirrors_equal
{
	my ($what, @pairs) = @_;
	for my $pair (@pairs)
	{
		my ($src, $ods) = @$pair;
		my ($missing, $extra, $nsrc, $nods) = split /\|/, $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) FROM (SELECT * FROM $src EXCEPT ALL SELECT * FROM $ods) a),
			       (SELECT count(*) FROM (SELECT * FROM $ods EXCEPT ALL SELECT * FROM $src) b),
			       (SELECT count(*) FROM $src), (SELECT count(*) FROM $ods)});
		is("$missing $extra", '0 0', "$what: $ods equals $src (missing, extra)");
		is($nods, $nsrc, "$what: $ods has as many rows as $src ($nsrc)");
	}
}

sub status_ok
{
	my ($pipeline, $what) = @_;
	my $s = $node->safe_psql('postgres',
		"SELECT state || ' ' || coalesce(last_error, '<none>') FROM stategrid_ivm.pipelines WHERE name = '$pipeline'");
	is($s, 'running <none>', "$what: pipeline $pipeline is running, no error");
}

# ---- 1. backfill while writers write ---------------------------------------------------------
my $writer_sql = <<'EOSQL';
\set ON_ERROR_STOP 0
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
SELECT nextval('w_uid'), 'w' || r, (ARRAY['居民', '商业', '工业'])[1 + r % 3], 1 + r % 10, '地区' || (1 + r % 10), 'new address', '139' || lpad(r::text, 8, '0')
FROM (SELECT floor(random() * 1000000)::int AS r) s;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, meter_reading_before, meter_reading_after, remark)
SELECT w_pick_user(), round((random() * 100)::numeric, 2), round((random() * 50)::numeric, 2), timestamp '2024-01-01' + floor(random() * 90) * interval '1 day', 100, 100 + round((random() * 100)::numeric, 2), 'live ' || g
FROM generate_series(1, 1 + floor(random() * 4)::int) g;
UPDATE power_consumption SET consumption_amount = consumption_amount + 1, remark = 'corrected'
WHERE consumption_id = (SELECT w_pick_reading());
UPDATE power_user SET region_id = 1 + floor(random() * 10)::int, region_name = '迁移', update_time = now()
WHERE user_id = (SELECT w_pick_user());
UPDATE power_consumption SET consumption_id = nextval('power_consumption_consumption_id_seq'), remark = 'rekeyed'
WHERE consumption_id = (SELECT w_pick_reading());
UPDATE power_user SET user_id = nextval('w_uid'), user_name = left(user_name, 80) || ' (rekeyed)'
WHERE user_id = (SELECT u.user_id FROM power_user u
                 WHERE u.user_id < 900000000 AND NOT EXISTS (SELECT 1 FROM power_consumption c WHERE c.user_id = u.user_id)
                 OFFSET floor(random() * 10) LIMIT 1);
DELETE FROM power_consumption WHERE consumption_id = (SELECT w_pick_reading());
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, remark)
SELECT w_pick_user(), 1.25, 0.6, now(), 'in a transaction';
SAVEPOINT s1;
DELETE FROM power_consumption WHERE consumption_id = (SELECT w_pick_reading());
ROLLBACK TO SAVEPOINT s1;
UPDATE power_consumption SET meter_reading_after = meter_reading_after + 2 WHERE consumption_id = (SELECT w_pick_reading());
COMMIT;
BEGIN;
SELECT w_pick_user() AS del_user \gset
DELETE FROM power_consumption WHERE user_id = :del_user;
DELETE FROM power_user WHERE user_id = :del_user;
COMMIT;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, remark)
SELECT w_pick_user(), g % 50, g % 25, timestamp '2024-03-01' + g * interval '1 minute', 'bulk ' || g
FROM generate_series(1, 50) g;
EOSQL
my $sql_file = "$tmp/writer.sql";
open my $fh, '>', $sql_file or die "cannot write $sql_file: $!";
print $fh $writer_sql;
close $fh;
my $stop_file = "$tmp/stop";

sub start_writer
{
	my ($n) = @_;
	local $ENV{STOP}  = $stop_file;
	local $ENV{CONN}  = $connstr;
	local $ENV{SQL}   = $sql_file;
	local $ENV{COUNT} = "$tmp/count$n";
	return IPC::Run::start(
		[ 'bash', '-c', q{
			while [ ! -e "$STOP" ] && [ -d "$(dirname "$STOP")" ] && [ "$SECONDS" -lt 900 ]; do
				if psql -X -q -d "$CONN" -f "$SQL" >/dev/null 2>&1; then echo >>"$COUNT"; else sleep 0.1; fi
			done } ],
		'<', \undef, '>', "$tmp/writer$n.out", '2>&1');
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

$node->safe_psql('postgres', q{
SELECT stategrid_ivm.create_pipeline('p');
SELECT stategrid_ivm.add_source('p', 'power_user');
SELECT stategrid_ivm.add_source('p', 'power_consumption');
SELECT stategrid_ivm.add_source('p', 'meter_ledger');
});
my @writers = map { start_writer($_) } (1, 2);
# whatever way the test ends, the writers end with it
END
{
	if (open my $stop, '>', $stop_file) { close $stop; }
	for my $w (@writers) { eval { $w->kill_kill(grace => 2) if $w->pumpable; 1 }; }
}
usleep(500_000);
my $runs_at_start = writer_runs();
$node->safe_psql('postgres', q{SELECT stategrid_ivm.start_pipeline('p')});
$node->poll_query_until('postgres',
	q{SELECT backfill_lsn IS NOT NULL FROM stategrid_ivm.pipeline WHERE name = 'p'})
  or die 'the backfill did not finish';
my $runs_at_backfill = writer_runs();
usleep(1_000_000);
open my $sf, '>', $stop_file or die;
close $sf;
$_->finish for @writers;
note sprintf('writer runs: %d before start, %d when the backfill was recorded, %d in all',
	$runs_at_start, $runs_at_backfill, writer_runs());
cmp_ok($runs_at_backfill, '>', $runs_at_start, 'writers committed while the backfill ran');
sync_ok('p', '120 s', 'backfill under writes: sync returns') or give_up('pipeline p does not catch up');
mirrors_equal('backfill under writes',
	[ 'power_user', 'ods_power_user' ], [ 'power_consumption', 'ods_power_consumption' ],
	[ 'meter_ledger', 'ods_meter_ledger' ]);
status_ok('p', 'backfill under writes');

# ---- 2. the whole copy under the recorded snapshot -------------------------------------------
# big_a is created first: the worker copies sources in OID order, so doc_b comes after it.
$node->safe_psql('postgres', q{
CREATE TABLE snap_a (id bigint PRIMARY KEY, v int);
CREATE TABLE snap_b (id bigint PRIMARY KEY, n int, body text);
INSERT INTO snap_a SELECT i, i FROM generate_series(1, 1000) i;
-- 12.8 kB of text per row: stored out of line (TOAST)
INSERT INTO snap_b SELECT i, 0, (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g)
FROM generate_series(1, 5) i;
SELECT stategrid_ivm.create_pipeline('s');
SELECT stategrid_ivm.add_source('s', 'snap_a');
SELECT stategrid_ivm.add_source('s', 'snap_b');
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK snap_a IN ACCESS EXCLUSIVE MODE');
$node->safe_psql('postgres', q{SELECT stategrid_ivm.start_pipeline('s')});
# the worker has taken its snapshot and waits for the lock to copy snap_a
my $waiting = $node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity
	WHERE backend_type = 'stategrid_ivm worker' AND wait_event_type = 'Lock'});
ok($waiting, 'backfill of pipeline s waits for the lock on snap_a');
# X: an update that leaves the TOASTed body alone; 100 more rows so that X is applied in a
# batch of its own (batch_size = 50); Y: the row is deleted.
$node->safe_psql('postgres', q{
UPDATE snap_b SET n = n + 1 WHERE id = 3;
INSERT INTO snap_b SELECT i, 0, 'small' FROM generate_series(100, 199) i;
DELETE FROM snap_b WHERE id = 3;
});
$locker->query_safe('COMMIT');
$locker->quit;
sync_ok('s', '60 s', 'backfill under one snapshot: sync returns');
mirrors_equal('backfill under one snapshot', [ 'snap_a', 'ods_snap_a' ], [ 'snap_b', 'ods_snap_b' ]);
status_ok('s', 'backfill under one snapshot');
$node->safe_psql('postgres', q{SELECT stategrid_ivm.drop_pipeline('s', true)});

# ---- 3. kills right after an apply commit ----------------------------------------------------
# Users only this part touches (the writers of part 1 picked among the others).
$node->safe_psql('postgres', q{
INSERT INTO power_user (user_id, user_name, region_id, region_name)
SELECT 900000000 + i, 'ledger user ' || i, 1 + i % 10, '地区' || (1 + i % 10) FROM generate_series(1, 100) i;
});
sync_ok('p', '60 s', 'kills: pipeline caught up before the workload') or give_up('pipeline p does not catch up');

my ($base_txns, $base_rows) = split /\|/, $node->safe_psql('postgres',
	q{SELECT transactions_applied, rows_applied FROM stategrid_ivm.pipelines WHERE name = 'p'});

my $next_event = 10_000_000;
my $next_reading = 2_000_000_000;
my @live;    # ledger rows this part inserted and that still exist
my ($exp_txns, $exp_rows) = (0, 0);

# A workload of $n transactions, each counted: how many commit with changes, how many rows.
sub workload
{
	my ($n, $big) = @_;
	my @sql;
	for my $i (1 .. $n)
	{
		my $u = 900000000 + 1 + $i % 100;
		if ($i % 50 == 0)
		{
			# rolled back: nothing to apply
			push @sql, "BEGIN; INSERT INTO meter_ledger VALUES ($next_event, $u, 1, 'rolled back'); ROLLBACK;";
			$next_event++;
		}
		elsif ($i % 25 == 0 && @live > 10)
		{
			my $id = splice(@live, int(rand(@live)), 1);
			push @sql, "DELETE FROM meter_ledger WHERE event_id = $id;";
			($exp_txns, $exp_rows) = ($exp_txns + 1, $exp_rows + 1);
		}
		elsif ($i % 3 == 0 && @live > 10)
		{
			# update, a rolled-back subtransaction, a primary-key change
			my $a = $live[ int(rand(@live)) ];
			my $k = int(rand(@live));
			my $b = $live[$k];
			my $nb = $b + 1_000_000_000;
			$nb += 1_000_000_000 while grep { $_ == $nb } @live;
			push @sql, "BEGIN;",
			  "UPDATE meter_ledger SET amount = amount + 1, note = 'updated' WHERE event_id = $a;",
			  "SAVEPOINT s;",
			  "DELETE FROM meter_ledger WHERE event_id = $a;",
			  "ROLLBACK TO SAVEPOINT s;",
			  "UPDATE meter_ledger SET event_id = $nb WHERE event_id = $b;",
			  "COMMIT;";
			$live[$k] = $nb;
			($exp_txns, $exp_rows) = ($exp_txns + 1, $exp_rows + 2);
		}
		elsif ($i % 3 == 1)
		{
			push @sql, "BEGIN;",
			  "INSERT INTO meter_ledger VALUES ($next_event, $u, " . ($i % 97) . ", 'with reading');",
			  "INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date, remark)"
			  . " VALUES ($next_reading, $u, " . ($i % 89) . ", 1.5, timestamp '2024-05-01' + $i * interval '1 minute', 'ledger');",
			  "UPDATE power_user SET region_id = region_id % 10 + 1, update_time = now() WHERE user_id = $u;",
			  "COMMIT;";
			push @live, $next_event;
			$next_event++;
			$next_reading++;
			($exp_txns, $exp_rows) = ($exp_txns + 1, $exp_rows + 3);
		}
		else
		{
			push @sql, "INSERT INTO meter_ledger VALUES ($next_event, $u, " . ($i % 101) . ", 'single');";
			push @live, $next_event;
			$next_event++;
			($exp_txns, $exp_rows) = ($exp_txns + 1, $exp_rows + 1);
		}
	}
	if ($big)
	{
		# one transaction far larger than a batch
		push @sql, "INSERT INTO meter_ledger SELECT g, 0, g % 100, 'big' FROM generate_series($next_event, "
		  . ($next_event + $big - 1) . ") g;";
		push @live, $next_event .. $next_event + $big - 1;
		$next_event += $big;
		($exp_txns, $exp_rows) = ($exp_txns + 1, $exp_rows + $big);
	}
	$node->safe_psql('postgres', join("\n", @sql));
}

sub worker_gone
{
	return $node->poll_query_until('postgres',
		q{SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'p'});
}

sub lsn_num
{
	my ($hi, $lo) = split m{/}, shift;
	return hex($hi) * 4294967296 + hex($lo);
}

# After a restart: is the slot's confirmed position behind what the origin says is applied?
# Then the worker decodes applied transactions again and must skip them.
my ($crashes, $in_window, $slot_behind) = (0, 0, 0);
sub after_restart
{
	my $behind = query_retry(q{
		SELECT sl.confirmed_flush_lsn < pg_replication_origin_progress(p.origin_name, false)
		FROM stategrid_ivm.pipeline p JOIN pg_replication_slots sl ON sl.slot_name = p.slot_name
		WHERE p.name = 'p'});
	$slot_behind++ if $behind eq 't';
	$crashes++;
}

my @rounds = (
	{ txns => 600, kills => 3, stops => 0, big => 0 },
	{ txns => 600, kills => 1, stops => 2, big => 0 },
	{ txns => 400, kills => 2, stops => 1, big => 3000 },
);
my $r = 0;
for my $round (@rounds)
{
	$r++;
	$node->safe_psql('postgres', q{SELECT stategrid_ivm.pause_pipeline('p')});
	ok(worker_gone(), "round $r: the worker stops when the pipeline is paused");
	my $applied = $node->safe_psql('postgres',
		q{SELECT coalesce(applied_lsn, '0/0') FROM stategrid_ivm.pipeline WHERE name = 'p'});
	workload($round->{txns}, $round->{big});
	my $target = $node->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');

	my @plan = ((('kill') x $round->{kills}), (('stop') x $round->{stops}));
	my $first = 1;
	for my $how (@plan)
	{
		# the waiter polls inside the server; for the first crash of the round it is started
		# before the pipeline resumes, so that it cannot miss the first batch
		my ($info, $err) = ('', '');
		my $waiter = IPC::Run::start(
			[ 'psql', '-XAtq', '-d', $connstr, '-c', "SELECT sgt_wait_applied('$applied', '$target', 'p')" ],
			'<', \undef, '>', \$info, '2>', \$err);
		if ($first)
		{
			usleep(300_000);
			$node->safe_psql('postgres', q{SELECT stategrid_ivm.resume_pipeline('p')});
			$first = 0;
		}
		$waiter->finish;
		chomp $info;
		if ($info eq 'done')
		{
			note "round $r: all applied before the next crash";
			last;
		}
		if ($info eq 'timeout' || $info eq '')
		{
			fail("round $r: a batch was applied after $applied");
			give_up("no batch was applied after $applied: $err");
		}
		my ($pid, $lsn, $confirmed, $origin) = split / /, $info;
		if ($how eq 'kill')
		{
			kill('KILL', $pid);
			# gone = reaped by the postmaster, which then restarts every backend
			for (1 .. 200)
			{
				last unless kill(0, $pid);
				usleep(50_000);
			}
		}
		else
		{
			$node->stop('immediate');
			$node->start;
		}
		my $window = $confirmed ne '-' && lsn_num($confirmed) < lsn_num($lsn);
		$in_window++ if $window;
		note sprintf('round %d: %s worker %d at %.1f s, applied %s, slot confirmed %s%s', $r, $how, $pid,
			time() - $t0, $lsn, $confirmed, $window ? ' (before the slot was confirmed)' : '');
		after_restart();
		$applied = $lsn;
	}
	$node->safe_psql('postgres', q{SELECT stategrid_ivm.resume_pipeline('p')}) if $first;
	sync_ok('p', '120 s', "round $r: sync returns after the crashes") or give_up('pipeline p does not catch up');
	my ($txns, $rows) = split /\|/, $node->safe_psql('postgres',
		q{SELECT transactions_applied, rows_applied FROM stategrid_ivm.pipelines WHERE name = 'p'});
	is($txns - $base_txns, $exp_txns, "round $r: every committed transaction applied exactly once ($exp_txns)");
	is($rows - $base_rows, $exp_rows, "round $r: every row change applied exactly once ($exp_rows)");
	mirrors_equal("round $r", [ 'meter_ledger', 'ods_meter_ledger' ],
		[ 'power_consumption', 'ods_power_consumption' ], [ 'power_user', 'ods_power_user' ]);
	status_ok('p', "round $r");
}
note "$crashes crashes, $in_window of them between an apply commit and the slot confirmation (seen just before), "
  . "$slot_behind restarts found the slot behind the origin";
cmp_ok($crashes, '>=', scalar(@rounds), 'at least one crash per round right after an apply commit');
cmp_ok($slot_behind, '>', 0, 'some restarts decoded already applied transactions again (and skipped them)');

my $log = slurp_file($node->logfile);
my $aborts = () = $log =~ /was terminated by signal (?!9)/g;
is($aborts, 0, 'no process died of another signal than our SIGKILLs');

$node->stop;
note sprintf('test took %.1f s', time() - $t0);
done_testing();
