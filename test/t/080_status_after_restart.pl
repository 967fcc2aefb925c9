# pipelines.lag_seconds after a server restart (issue 18, deliverable 2): the worker's shared
# state starts empty, so until the new worker has looked, nothing it publishes says what waits.
# Rows committed and not applied must not read 0 then.
#
# 1. Restarted without room for a worker (max_worker_processes = 2: the launcher and
#    PostgreSQL's logical replication launcher, no probe and no pipeline worker can start): rows
#    committed now wait as long as the test likes. lag_seconds > 0; it read 0.
# 2. Restarted with room again: from the first query on, polled until the rows are applied,
#    lag_seconds is never 0 before they are (the lag read first, the applied count after it).
# 3. Caught up and idle after the restart: 0.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SgivmTap;

my $node = stategrid_node('status_restart', conf => "log_min_messages = warning\n");
my $db = 'postgres';

$node->safe_psql($db, q{
	CREATE EXTENSION stategrid_ivm;
	CREATE TABLE reading (id bigint PRIMARY KEY, meter int NOT NULL, amount numeric NOT NULL);
	INSERT INTO reading SELECT i, i % 10, i FROM generate_series(1, 100) i;
	SELECT stategrid_ivm.create_pipeline('p');
	SELECT stategrid_ivm.add_source('p', 'reading');
	SELECT stategrid_ivm.start_pipeline('p');
	SELECT stategrid_ivm.sync('p');
});
is($node->safe_psql($db, q{SELECT lag_seconds FROM stategrid_ivm.pipelines WHERE name = 'p'}),
	'0.000', 'caught up before the restart: 0');

# ---- 1. no worker after the restart ----------------------------------------------------------
$node->stop('fast');
$node->append_conf('postgresql.conf', "max_worker_processes = 2\n");
$node->start;
$node->safe_psql($db, q{INSERT INTO reading SELECT i, i % 10, i FROM generate_series(101, 200100) i});
my $rows_before = $node->safe_psql($db, q{SELECT rows_applied FROM stategrid_ivm.pipelines WHERE name = 'p'});
# (a second is long enough for a worker to have started, were there room for one)
$node->safe_psql($db, q{SELECT pg_sleep(1)});
is( $node->safe_psql($db, q{
		SELECT state, worker_pid IS NULL, lag_bytes > 0, lag_seconds >= 1, rows_applied
		FROM stategrid_ivm.pipelines WHERE name = 'p'}),
	"running|t|t|t|$rows_before",
	'restarted without a worker: the rows committed since wait, and lag_seconds says so');

# ---- 2. the worker starts after the restart --------------------------------------------------
$node->stop('fast');
$node->append_conf('postgresql.conf', "max_worker_processes = 16\n");
$node->start;
my $polls = $node->safe_psql($db, qq{
	CREATE TEMP TABLE polls (lag numeric, applied boolean);
	DO \$\$
	DECLARE
		v_lag numeric;
		v_applied boolean;
		v_deadline timestamptz := clock_timestamp() + interval '60 s';
	BEGIN
		LOOP
			SELECT lag_seconds INTO v_lag FROM stategrid_ivm.pipelines WHERE name = 'p';
			SELECT rows_applied - $rows_before >= 200000 INTO v_applied
			FROM stategrid_ivm.pipelines WHERE name = 'p';
			INSERT INTO polls VALUES (v_lag, v_applied);
			EXIT WHEN v_applied OR clock_timestamp() > v_deadline;
		END LOOP;
	END
	\$\$;
	SELECT count(*) FILTER (WHERE NOT applied) > 0, count(*) FILTER (WHERE lag = 0 AND NOT applied),
	       bool_or(applied)
	FROM polls;
});
my ($waited, $zeros, $applied) = split /\|/, $polls;
is($applied, 't', 'the worker applies the rows after the restart');
is($zeros, '0', 'lag_seconds never read 0 while they waited');
note "polls before the rows were applied: " . ($waited eq 't' ? 'some' : 'none (the worker was quicker)');

# ---- 3. idle afterwards ----------------------------------------------------------------------
$node->safe_psql($db, q{SELECT stategrid_ivm.sync('p')});
is($node->safe_psql($db, q{SELECT lag_seconds FROM stategrid_ivm.pipelines WHERE name = 'p'}),
	'0.000', 'caught up after the restart: 0');
is( $node->safe_psql($db, q{SELECT view_name, ok FROM stategrid_ivm.verify('p')}),
	'public.ods_reading|t', 'the mirror equals its source');

$node->stop;
done_testing();
