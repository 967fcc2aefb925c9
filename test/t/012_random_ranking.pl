# Randomized test of rankings and top-N under both strategies (issue 15, item 4).
#
# Every ranking and top-N view is added twice over the same stream: `_r` planned with
# stategrid_ivm.view_strategy = 'recompute' (its touched partitions recomputed from the input),
# `_a` by delta rules (a ranking re-ranked over the range between a changed group's old and new
# positions, a top-N's first N read from the aggregate's kept state). A seeded random workload:
# inserts, deletes, updates of amounts (many ties: amounts come from a few values, NULL among
# them), of the partition column and of the group column (to and from NULL), groups appearing
# and vanishing, whole groups moving between partitions, ties made on purpose, a dimension
# whose region partitions two of the views (a customer moving all his rows), transactions of
# random size, rollbacks, pauses, one TRUNCATE, a refresh_view of `_a` views, a bulk load of
# 12,000 readings and its deletion. In the middle, the worker is killed twice: at the crash
# point after its views were maintained (before the commit: the kept state's fold is rolled
# back with the batch) and by SIGKILL at a random moment while it applies a backlog. After every
# round: sync, verify() of every table, and each `_a` view equals its `_r` twin (EXCEPT ALL
# both ways).
#
# Reproducible: the workload depends on the seed only (printed; SGIVM_TAP_SEED repeats it) and
# is written to the test's log directory. SGIVM_RANDOM_OPS sets its size (default 1400).
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use Time::HiRes qw(time usleep);

my $seed = $ENV{SGIVM_TAP_SEED} // int(time() * 1000) % 1000000;
srand($seed);
diag "random seed $seed (set SGIVM_TAP_SEED=$seed to repeat)";
my $t0 = time();
my $ops_target = $ENV{SGIVM_RANDOM_OPS} // 1400;
my $rounds = 7;

my @batch_sizes = (4, 50, 10000);
my $batch_size = $batch_sizes[ int(rand(@batch_sizes)) ];
note "stategrid_ivm.batch_size = $batch_size, $ops_target operations in $rounds rounds";

my $node = stategrid_node('random_ranking', conf => qq{
log_min_messages = warning
log_statement = none
restart_after_crash = on
stategrid_ivm.batch_size = $batch_size
});
my $connstr = $node->connstr('postgres');

# psql that tolerates a server in the middle of a restart: retries until it gets an answer.
sub query_retry
{
	my ($sql) = @_;
	for (1 .. 600)
	{
		my ($out, $err) = ('', '');
		my $ok = IPC::Run::run([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-c', $sql ],
			'<', \undef, '>', \$out, '2>', \$err);
		if ($ok)
		{
			chomp $out;
			return $out;
		}
		die "query failed: $sql: $err" unless $err =~ /terminating connection|server closed the connection|could not connect|the database system is|connection to server/;
		usleep(50_000);
	}
	die "query kept failing: $sql";
}

# ---- setup ---------------------------------------------------------------------------------------
$node->safe_psql('postgres', q{
CREATE EXTENSION stategrid_ivm;
CREATE TABLE reading (id int PRIMARY KEY, area int, cust int, day int, amount numeric(12,2));
CREATE TABLE customer (cust int PRIMARY KEY, region int);   -- a dimension: the region of a customer
INSERT INTO customer SELECT c, 1 + c % 3 FROM generate_series(1, 12) c;

-- Each `_a` view against its `_r` twin, rows as jsonb: '' or the pairs that differ.
CREATE FUNCTION twins() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    only_a bigint;
    only_r bigint;
    bad text := '';
BEGIN
    FOR r IN SELECT left(c.relname, -2) AS base FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname LIKE '%\_a'
             ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT to_jsonb(t) FROM %1$I t EXCEPT ALL SELECT to_jsonb(t) FROM %2$I t) d',
                       r.base || '_a', r.base || '_r') INTO only_a;
        EXECUTE format('SELECT count(*) FROM (SELECT to_jsonb(t) FROM %2$I t EXCEPT ALL SELECT to_jsonb(t) FROM %1$I t) d',
                       r.base || '_a', r.base || '_r') INTO only_r;
        IF only_a + only_r > 0 THEN
            bad := bad || format('%s (%s only in _a, %s only in _r) ', r.base, only_a, only_r);
        END IF;
    END LOOP;
    RETURN bad;
END
$$;
});

# the pairs: name => query (over the projection v_detail or the aggregate v_total)
my %pairs = (
	rn_desc => q{SELECT area, cust, sum(amount) AS total,
	             row_number() OVER (PARTITION BY area ORDER BY sum(amount) DESC, cust) AS rn
	             FROM v_detail GROUP BY area, cust},
	rn_asc => q{SELECT area, cust, sum(amount) AS total, count(*) AS n,
	            row_number() OVER (PARTITION BY area ORDER BY sum(amount) NULLS LAST, count(*) DESC, cust DESC NULLS FIRST) AS rn
	            FROM v_detail GROUP BY area, cust},
	# no tiebreak: max(id) never ties (with ties, row_number's numbering is arbitrary)
	rn_notie => q{SELECT area, cust, max(id) AS last_id,
	              row_number() OVER (PARTITION BY area ORDER BY max(id) DESC) AS rn
	              FROM v_detail GROUP BY area, cust},
	rk_asc => q{SELECT area, cust, sum(amount) AS total,
	            rank() OVER (PARTITION BY area ORDER BY sum(amount) ASC NULLS FIRST) AS rk
	            FROM v_detail GROUP BY area, cust},
	rk_desc => q{SELECT area, cust, sum(amount) AS total, min(amount) AS least,
	             rank() OVER (PARTITION BY area ORDER BY sum(amount) DESC NULLS LAST, min(amount)) AS rk
	             FROM v_detail GROUP BY area, cust},
	rk_day => q{SELECT area, day, cust, count(*) AS n, avg(amount) AS mean,
	            rank() OVER (PARTITION BY area, day ORDER BY count(*) DESC, avg(amount) NULLS FIRST) AS rk
	            FROM v_detail GROUP BY area, day, cust},
	rn_total => q{SELECT cust, area, sum(total) AS total,
	              row_number() OVER (PARTITION BY cust ORDER BY sum(total) DESC NULLS LAST, area) AS rn
	              FROM v_total GROUP BY cust, area},
	top_rn1 => q{SELECT * FROM (SELECT area, cust, sum(amount) AS total,
	             row_number() OVER (PARTITION BY area ORDER BY sum(amount) DESC NULLS LAST, cust) AS rn
	             FROM v_detail GROUP BY area, cust) r WHERE rn <= 1},
	top_rn3 => q{SELECT * FROM (SELECT area, cust, sum(amount) AS total,
	             row_number() OVER (PARTITION BY area ORDER BY sum(amount) NULLS FIRST, cust DESC) AS rn
	             FROM v_detail GROUP BY area, cust) r WHERE rn < 4},
	top_rk1 => q{SELECT * FROM (SELECT area, cust, sum(amount) AS total,
	             rank() OVER (PARTITION BY area ORDER BY sum(amount) DESC) AS rk
	             FROM v_detail GROUP BY area, cust) r WHERE rk < 2},
	top_rk3 => q{SELECT * FROM (SELECT area, cust, sum(amount) AS total,
	             rank() OVER (PARTITION BY area ORDER BY sum(amount)) AS rk
	             FROM v_detail GROUP BY area, cust) r WHERE rk <= 3},
	# partitioned by a column of the dimension: a customer who changes region moves all his rows
	rk_region => q{SELECT region, cust, sum(amount) AS total,
	               rank() OVER (PARTITION BY region ORDER BY sum(amount) DESC NULLS LAST) AS rk
	               FROM v_detail GROUP BY region, cust},
	top_region => q{SELECT * FROM (SELECT region, cust, sum(amount) AS total,
	                row_number() OVER (PARTITION BY region ORDER BY sum(amount) DESC NULLS LAST, cust) AS rn
	                FROM v_detail GROUP BY region, cust) r WHERE rn <= 3},
	top_total => q{SELECT * FROM (SELECT area, cust, sum(total) AS total,
	               rank() OVER (PARTITION BY area ORDER BY sum(total) DESC NULLS LAST) AS rk
	               FROM v_total GROUP BY area, cust) r WHERE rk <= 3});

sub lit { my $s = shift; $s =~ s/'/''/g; return "'$s'" }

sub add_pairs
{
	my ($suffix) = @_;
	return join("\n", map { "SELECT stategrid_ivm.add_view('p', '${_}_$suffix', " . lit($pairs{$_}) . ');' } sort keys %pairs);
}

# ---- the deterministic workload ------------------------------------------------------------------
my @ids;          # reading ids present (as far as the model follows: multi-row statements are not)
my %pos;
my $next_id = 1;

sub add_id { my $id = shift; return if exists $pos{$id}; $pos{$id} = @ids; push @ids, $id; }
sub remove_id
{
	my $id = shift;
	my $p = delete $pos{$id};
	return unless defined $p;
	my $last = pop @ids;
	if ($p < @ids) { $ids[$p] = $last; $pos{$last} = $p; }
}
sub pick_id { return @ids ? $ids[ int(rand(@ids)) ] : undef }
sub chance { return rand() < $_[0] }
sub one_of { return $_[ int(rand(@_)) ] }

# few values: totals tie often; NULL amounts make NULL totals
sub amount { return chance(0.1) ? 'NULL' : one_of(0, 5, 10, 15, 20, 25, 30, 7.5) }
sub area { return chance(0.06) ? 'NULL' : 1 + int(rand(4)) }
sub cust { return chance(0.05) ? 'NULL' : chance(0.05) ? 100 + int(rand(400)) : 1 + int(rand(12)) }
sub day { return chance(0.04) ? 'NULL' : 1 + int(rand(3)) }

sub insert_reading
{
	my $id = $next_id++;
	add_id($id);
	return sprintf('INSERT INTO reading VALUES (%d, %s, %s, %s, %s);', $id, area(), cust(), day(), amount());
}

sub random_op
{
	my $r = rand();
	my $id = pick_id();
	return insert_reading() if $r < 0.30 || !defined $id;
	return sprintf('UPDATE reading SET amount = %s WHERE id = %d;', amount(), $id) if $r < 0.45;
	# a group's total moves by a step (every reading of it)
	return sprintf('UPDATE reading SET amount = amount + %s WHERE area = %d AND cust = %d;',
		one_of(-10, -5, 5, 10, 40), 1 + int(rand(4)), 1 + int(rand(12)))
	  if $r < 0.52;
	# a reading moves to another partition, or group
	return sprintf('UPDATE reading SET area = %s WHERE id = %d;', area(), $id) if $r < 0.60;
	return sprintf('UPDATE reading SET cust = %s WHERE id = %d;', cust(), $id) if $r < 0.66;
	return sprintf('UPDATE reading SET day = %s WHERE id = %d;', day(), $id) if $r < 0.69;
	if ($r < 0.79)
	{
		remove_id($id);
		return "DELETE FROM reading WHERE id = $id;";
	}
	# a whole group vanishes, or moves to another partition
	return sprintf('DELETE FROM reading WHERE area %s AND cust = %d;',
		chance(0.2) ? 'IS NULL' : '= ' . (1 + int(rand(4))), 1 + int(rand(12)))
	  if $r < 0.83;
	return sprintf('UPDATE reading SET area = %s WHERE area = %d AND cust = %d;', area(), 1 + int(rand(4)), 1 + int(rand(12)))
	  if $r < 0.87;
	if ($r < 0.93)
	{
		# a new group whose total ties with an existing one (the amounts of that group's readings)
		my $new_cust = 1000 + int(rand(100000));
		my @new = map { $next_id++ } 1 .. 4;
		add_id($_) for @new;
		return sprintf('INSERT INTO reading SELECT %d + row_number() OVER (ORDER BY id), area, %d, day, amount FROM ('
			  . 'SELECT * FROM reading WHERE area = %d AND cust = %d ORDER BY id LIMIT 4) x;',
			$new[0] - 1, $new_cust, 1 + int(rand(4)), 1 + int(rand(12)));
	}
	# a customer changes region (all his readings change partition), goes, comes
	return sprintf('UPDATE customer SET region = %s WHERE cust = %d;', chance(0.1) ? 'NULL' : 1 + int(rand(4)), 1 + int(rand(12)))
	  if $r < 0.955;
	return sprintf('DELETE FROM customer WHERE cust = %d;', 1 + int(rand(12))) if $r < 0.965;
	return sprintf('INSERT INTO customer VALUES (%d, %d) ON CONFLICT (cust) DO UPDATE SET region = excluded.region;',
		1 + int(rand(12)), 1 + int(rand(4)))
	  if $r < 0.975;
	# several readings at once, in several partitions
	my @new = map { $next_id++ } 1 .. (2 + int(rand(10)));
	add_id($_) for @new;
	return sprintf('INSERT INTO reading SELECT i, nullif(i %% 5, 0), 1 + i %% 13, i %% 3, (i %% 4) * 5 FROM generate_series(%d, %d) i;',
		$new[0], $new[-1]);
}

# the readings before the pipeline starts (copied by the backfill)
my @initial = map { insert_reading() } 1 .. 150;
$node->safe_psql('postgres', join("\n", 'BEGIN;', @initial, 'COMMIT;'));
$node->safe_psql('postgres', q{
SELECT stategrid_ivm.create_pipeline('p');
SELECT stategrid_ivm.add_source('p', 'reading');
SELECT stategrid_ivm.add_source('p', 'customer');
SELECT stategrid_ivm.add_view('p', 'v_detail',
    'SELECT r.id, r.area, r.cust, r.day, r.amount, c.region FROM ods_reading r LEFT JOIN ods_customer c ON c.cust = r.cust');
SELECT stategrid_ivm.add_view('p', 'v_total',
    'SELECT area, cust, sum(amount)::numeric(14,2) AS total, count(*) AS readings FROM v_detail GROUP BY area, cust');
SET stategrid_ivm.view_strategy = 'recompute';
} . add_pairs('r') . q{
RESET stategrid_ivm.view_strategy;
} . add_pairs('a') . q{
SELECT stategrid_ivm.start_pipeline('p');
});
my $n_pairs = scalar keys %pairs;
is($node->safe_psql('postgres', q{
	SELECT string_agg(right(view_name, 1) || ' ' || strategy || ' ' || n, ', ' ORDER BY 1) FROM (
	    SELECT right(view_name, 2) AS view_name, strategy, count(*) AS n FROM stategrid_ivm.views
	    WHERE view_name ~ '_[ar]$' GROUP BY 1, 2) s}),
	"a differential $n_pairs, r recompute $n_pairs", 'every _a by delta rules, every _r by recomputation');

my $workload_file = "$PostgreSQL::Test::Utils::log_path/012_random_ranking_workload_$seed.sql";
open my $wl, '>', $workload_file or die "cannot write $workload_file: $!";
print $wl "-- seed $seed, batch_size $batch_size\n", join("\n", @initial), "\n";
my @failures;

# sync, then verify() and the twins
sub check
{
	my ($label) = @_;
	my $synced = eval { query_retry(q{SELECT stategrid_ivm.sync('p', '120 s') IS NOT NULL}) } // '';
	if ($synced ne 't')
	{
		fail("$label: sync");
		diag("seed $seed, $label: sync failed: $@ " . query_retry(q{SELECT state || ' ' || coalesce(last_error, '') FROM stategrid_ivm.pipelines}));
		push @failures, "$label: sync";
		return;
	}
	my $bad = query_retry(q{
		SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
		FROM stategrid_ivm.verify('p') WHERE ok IS NOT TRUE});
	my $twins = query_retry('SELECT twins()');
	my $ok = is($bad, '', "$label: verify is clean") & is($twins, '', "$label: every _a equals its _r twin");
	push @failures, "$label: $bad $twins" unless $ok;
	print $wl "-- check $label: " . ($ok ? 'ok' : "FAILED $bad $twins") . "\n";
}

# runs a round of statements (on_error_stop); returns whether they ran
sub run_round
{
	my ($sql) = @_;
	print $wl $sql, "\n";
	my ($rc, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 1);
	return 1 if $rc == 0;
	fail('workload statements run');
	diag("seed $seed: a workload statement failed: $err");
	push @failures, "workload: $err";
	return 0;
}

sub worker_pid { return query_retry(q{SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'p'}) }

sub crash_point_hits
{
	my $n = () = slurp_file($node->logfile) =~ /crash point "after_views" reached/g;
	return $n;
}

check('after the backfill');
my ($ops, $kills, $truncated) = (0, 0, 0);
my $per_round = int($ops_target / $rounds) + 1;
for my $round (1 .. $rounds)
{
	my @stmts;
	my $paused = 0;
	# rounds 2 and 5: a backlog, whose apply the worker is killed in
	my $backlog = $round == 2 || $round == 5;
	if ($backlog)
	{
		push @stmts, q{SELECT stategrid_ivm.pause_pipeline('p');};
		$paused = 1;
	}
	my $round_ops = 0;
	while ($round_ops < $per_round)
	{
		if (!$backlog && !$paused && chance(0.03))
		{
			push @stmts, q{SELECT stategrid_ivm.pause_pipeline('p');};
			$paused = 1;
		}
		elsif (!$backlog && $paused && chance(0.15))
		{
			push @stmts, q{SELECT stategrid_ivm.resume_pipeline('p');};
			$paused = 0;
		}
		if ($round == 4 && !$truncated && $round_ops > $per_round / 2)
		{
			push @stmts, 'TRUNCATE reading;';
			@ids = ();
			%pos = ();
			$truncated = 1;
		}
		my $n = chance(0.4) ? 1 : 1 + int(rand(6));
		my @tx = map { random_op() } 1 .. $n;
		$round_ops += $n;
		if ($n == 1) { push @stmts, @tx; }
		else
		{
			# (the model keeps a rolled-back transaction's ids: later picks of them find nothing)
			push @stmts, join("\n", 'BEGIN;', @tx, chance(0.07) ? 'ROLLBACK;' : 'COMMIT;');
		}
	}
	$ops += $round_ops;
	# a bulk load of 12,000 readings (large partitions; a top-N's work table replaces its touched
	# partitions), deleted again in the next round
	push @stmts, 'INSERT INTO reading SELECT 10000000 + i, 1 + i % 4, 2000 + i % 3000, i % 3, (i % 9) * 5'
	  . ' FROM generate_series(1, 12000) i;'
	  if $round == 6;
	push @stmts, 'DELETE FROM reading WHERE id > 10000000 AND id % 3 > 0;', 'DELETE FROM reading WHERE id > 10000000;'
	  if $round == 7;
	if ($round == 3)
	{
		# the `_a` views' state refilled by refresh_view, while paused
		push @stmts, q{SELECT stategrid_ivm.pause_pipeline('p');} unless $paused;
		push @stmts, q{SELECT stategrid_ivm.refresh_view('rn_desc_a'), stategrid_ivm.refresh_view('top_rk3_a'), stategrid_ivm.refresh_view('v_total');};
		$paused = 1;
	}
	push @stmts, q{SELECT stategrid_ivm.resume_pipeline('p');} if $paused && !$backlog;
	if ($round == 2)
	{
		# the worker kills itself after maintaining the views of a batch, before its commit
		run_round(join("\n", @stmts)) or last;
		my $before = crash_point_hits();
		query_retry(q{ALTER SYSTEM SET stategrid_ivm.debug_crash_at = 'after_views'});
		query_retry('SELECT pg_reload_conf()');
		query_retry(q{SELECT stategrid_ivm.resume_pipeline('p')});
		my $hit = 0;
		for (1 .. 300)
		{
			if (crash_point_hits() > $before) { $hit = 1; last; }
			usleep(100_000);
		}
		query_retry(q{ALTER SYSTEM RESET stategrid_ivm.debug_crash_at});
		query_retry('SELECT pg_reload_conf()');
		ok($hit, 'round 2: the worker killed itself after maintaining its views');
		$kills += $hit;
	}
	elsif ($round == 5)
	{
		run_round(join("\n", @stmts)) or last;
		query_retry(q{SELECT stategrid_ivm.resume_pipeline('p')});
		my $pid = '';
		for (1 .. 100)
		{
			$pid = worker_pid();
			last if $pid ne '';
			usleep(50_000);
		}
		usleep(int(rand(400_000)));
		if ($pid ne '' && kill('KILL', $pid))
		{
			$kills++;
			note "round 5: SIGKILL of worker $pid";
			for (1 .. 200) { last unless kill(0, $pid); usleep(50_000); }
		}
		query_retry('SELECT 1');
	}
	else
	{
		run_round(join("\n", @stmts)) or last;
	}
	check("round $round ($ops operations)");
}
close $wl;
is($kills, 2, 'the worker was killed twice');
note "workload: $ops operations, $kills kills; in $workload_file";
note 'rows: ' . query_retry(q{
	SELECT string_agg(format('%s %s', relname, (xpath('/row/n/text()',
	           query_to_xml(format('SELECT count(*) AS n FROM %I', relname), false, true, '')))[1]), ', ' ORDER BY relname)
	FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname ~ '(_a|^v_.*)$'});
diag("seed $seed failed: " . join('; ', @failures)) if @failures;

my $log = slurp_file($node->logfile);
my $crashes = () = $log =~ /was terminated by signal (?!9\b)\d+/g;
is($crashes, 0, 'no server process crashed (but for the kills)');
like(query_retry(q{SELECT state FROM stategrid_ivm.pipelines WHERE name = 'p'}), qr/^running$/, 'the pipeline runs');

$node->stop;
note sprintf('test took %.1f s', time() - $t0);
done_testing();
