# One large source transaction keeps the worker's private memory bounded, and stays atomic
# (issue 15, memory; DESIGN.md §2 invariants 1, 2 and 5).
#
# The worker applies a source transaction to the ODS mirrors in pieces, inside one apply
# transaction: a piece used to be stategrid_ivm.batch_size rows, whatever their width, so with a
# batch_size raised for throughput (here 10,000,000, the largest allowed) one INSERT was held
# whole in the worker: 300,000 readings took it to about 360 MB of private memory (RssAnon, as
# bench/run measures it), about 1 kB per row. A piece now also ends once it holds about work_mem.
#
# 1. One INSERT of 300,000 readings into a warehouse of 1,000 users, the pipeline running: the
#    worker's private memory, sampled every 50 ms from the INSERT until sync() returns, stays
#    under 200 MB (issue 15's target; the decoding's reorder buffer alone may hold
#    logical_decoding_work_mem = 64 MB); a reader polling the ODS mirror and the DWD meanwhile
#    sees the warehouse before the transaction or after it, never in between; verify() is clean.
# 2. The worker is killed in the middle of such a transaction's apply (crash point
#    after_mirrors: every piece in the mirror, nothing committed): after the restart the
#    transaction is applied once, not half and not twice.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;
use IPC::Run;
use Time::HiRes qw(usleep);

my $users  = 1000;
my $per    = 300;  # readings per user in the large INSERT
my $bound_kb = 200 * 1024;

my $node = stategrid_node('large_insert', conf => q{
log_min_messages = warning
stategrid_ivm.batch_size = 10000000
restart_after_crash = on
});
$node->safe_psql('postgres', source_file('examples/stategrid/schema.sql'));
$node->safe_psql('postgres', qq{
CREATE EXTENSION stategrid_ivm;
SELECT stategrid_ivm.generate_sample_data(users => $users, days => 1, start_date => '2024-01-01', seed => 0.3);
SELECT stategrid_ivm.create_stategrid_pipeline();
SELECT stategrid_ivm.sync('stategrid', '120 s');
-- \$2 readings of every user on day \$1, in one statement: one source transaction
CREATE FUNCTION add_readings(day date, per_user int) RETURNS bigint LANGUAGE sql AS \$\$
    WITH ins AS (
        INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                       meter_reading_before, meter_reading_after, remark)
        SELECT u.user_id, a, round(a * 0.56, 2), day + (k % 86400) * interval '1 s', 0, a, 'large insert'
        FROM power_user u CROSS JOIN generate_series(1, per_user) k,
             LATERAL (SELECT round((2 + random() * 28 + k * 0)::numeric, 2) AS a) x
        RETURNING 1)
    SELECT count(*) FROM ins
\$\$;
-- What a reader sees until the ODS mirror holds \$2 readings: every (ODS, DWD) count pair other
-- than (\$1, \$1) and (\$2, \$2), each statement with a snapshot of its own.
CREATE FUNCTION watch(before bigint, after bigint) RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
    o bigint; d bigint; seen text := ''; t0 timestamptz := clock_timestamp();
BEGIN
    LOOP
        SELECT (SELECT count(*) FROM ods_power_consumption), (SELECT count(*) FROM dwd_power_consumption_detail)
        INTO o, d;
        IF (o, d) IS DISTINCT FROM (before, before) AND (o, d) IS DISTINCT FROM (after, after) THEN
            seen := seen || format('(%s, %s) ', o, d);
        END IF;
        EXIT WHEN o = after;
        IF clock_timestamp() - t0 > interval '180 s' THEN
            RETURN seen || 'and never the end';
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
    RETURN seen;
END
\$\$;
});

sub readings { return $node->safe_psql('postgres', 'SELECT count(*) FROM power_consumption'); }

sub not_ok
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '), '')
		FROM stategrid_ivm.verify('stategrid') WHERE ok IS NOT TRUE});
}

sub rss_anon_kb
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/status" or return undef;
	my ($kb) = join('', <$fh>) =~ /^RssAnon:\s+(\d+) kB/m;
	close $fh;
	return $kb;
}

# ---- 1. memory and atomicity -----------------------------------------------------------------
my $before = readings();
my $after  = $before + $users * $per;
my $pid = $node->safe_psql('postgres', q{SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'stategrid'});
ok($pid =~ /^\d+$/, 'the pipeline has a worker');

my $connstr = $node->connstr('postgres');
my ($watch_out, $watch_err, $load_out, $load_err) = ('', '', '', '');
my $watcher = IPC::Run::start([ 'psql', '-XAtq', '-d', $connstr, '-c', "SELECT watch($before, $after)" ],
	'>', \$watch_out, '2>', \$watch_err);
my $load = IPC::Run::start([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $connstr,
		'-c', "SELECT add_readings('2024-01-02', $per)", '-c', q{SELECT stategrid_ivm.sync('stategrid', '180 s')} ],
	'>', \$load_out, '2>', \$load_err);
my $peak_kb = 0;
while ($load->pumpable)
{
	my $kb = rss_anon_kb($pid);
	$peak_kb = $kb if defined $kb && $kb > $peak_kb;
	usleep(50_000);
	$load->pump_nb;
}
$load->finish;
$watcher->finish;
s/\s+\z// for ($watch_out, $watch_err, $load_err);
is($load_err, '', 'the INSERT committed and sync() returned');
is(readings(), $after, "one source transaction of " . ($users * $per) . " readings");
is($node->safe_psql('postgres', q{SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'stategrid'}), $pid,
	'the same worker applied it throughout');
note sprintf('worker private memory (peak RssAnon): %.1f MB', $peak_kb / 1024);
cmp_ok($peak_kb, '>', 0, 'the worker\'s memory was sampled');
cmp_ok($peak_kb, '<', $bound_kb, 'the worker\'s private memory stayed under 200 MB (held whole: about 360 MB)');
is($watch_err, '', 'the reader ran to the end');
is($watch_out, '', 'a reader saw the warehouse before the transaction or after it, never in between');
is(not_ok(), '', 'verify() is clean after the large transaction');

# ---- 2. killed in the middle of one --------------------------------------------------------------
$node->safe_psql('postgres', q{SELECT stategrid_ivm.pause_pipeline('stategrid')});
$node->safe_psql('postgres', "SELECT add_readings('2024-01-03', 100)");
my $expected = readings();
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{
ALTER SYSTEM SET stategrid_ivm.debug_crash_at = 'after_mirrors';
SELECT pg_reload_conf();
SELECT stategrid_ivm.resume_pipeline('stategrid');
});
my $hit = 0;
for (1 .. 1200)
{
	if (slurp_file($node->logfile, $log_offset) =~ /crash point "after_mirrors" reached/) { $hit = 1; last; }
	usleep(100_000);
}
ok($hit, 'the worker was killed with the transaction in the mirrors, before its commit');
# the server restarts every backend; disarm once it answers again
my $disarmed = 0;
for (1 .. 600)
{
	my ($rc) = $node->psql('postgres', q{ALTER SYSTEM SET stategrid_ivm.debug_crash_at = ''});
	if ($rc == 0) { $disarmed = 1; last; }
	usleep(100_000);
}
ok($disarmed, 'the server came back after the kill');
$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
$node->poll_query_until('postgres', q{SELECT stategrid_ivm.sync('stategrid', '180 s') IS NOT NULL}, 't');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ods_power_consumption'), $expected,
	'after the restart the transaction is in the mirror once');
is(not_ok(), '', 'verify() is clean after the restart');

$node->stop;
done_testing();
