-- Status columns you can alert on (issue 18): lag_seconds is never 0 while source transactions
-- wait to be applied (right after resume_pipeline; a transaction that committed while the
-- worker had not yet applied it), figures are rounded, views.rows is an estimate that reads no
-- table and stategrid_ivm.view_rows() the exact count. (After a server restart:
-- test/t/080_status_after_restart.pl.) The worker is held back with a lock on its mirror, so
-- that the time it waits is as long as the test needs.
--
-- Self-contained: own schema and tables; nothing printed depends on the run.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE SCHEMA status_columns;
SET search_path = status_columns, public;

-- Waits (up to the timeout) until a boolean query is true; returns its last value. (Each time
-- with fresh statistics: a transaction keeps those it has read.)
CREATE FUNCTION wait_until(cond text, timeout interval DEFAULT '30 s') RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    ok boolean;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE cond INTO ok;
        IF ok OR clock_timestamp() > deadline THEN
            RETURN coalesce(ok, false);
        END IF;
        PERFORM pg_sleep(0.02);
    END LOOP;
END
$$;

-- The worker of pipeline 'status' waits for a lock.
CREATE VIEW worker_waits AS
SELECT EXISTS (SELECT FROM pg_locks l JOIN stategrid_ivm.pipelines p ON l.pid = p.worker_pid
               WHERE p.name = 'status' AND NOT l.granted) AS waits;

CREATE TABLE reading (id bigint PRIMARY KEY, meter int NOT NULL, amount numeric NOT NULL);
INSERT INTO reading SELECT i, i % 10, i FROM generate_series(1, 100) i;
SELECT stategrid_ivm.create_pipeline('status');
SELECT stategrid_ivm.add_source('status', 'reading') AS mirror;
SELECT stategrid_ivm.add_view('status', 'reading_by_meter',
    'SELECT meter, count(*) AS readings, sum(amount) AS total FROM ods_reading GROUP BY meter') AS view;
SELECT stategrid_ivm.start_pipeline('status');
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
-- caught up: 0
SELECT state, lag_seconds FROM stategrid_ivm.pipelines WHERE name = 'status';

-- ---------------------------------------------------------------------------------------------
-- 1. Right after resume_pipeline: 10,000 rows committed while paused wait. The new worker has
--    not looked at them yet (it waits for the lock on its mirror): the lag shows them. It read
--    0.00 until the first batch committed.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.pause_pipeline('status');
SELECT wait_until($$SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'status'$$) AS worker_stopped;
SELECT rows_applied AS rows_before FROM stategrid_ivm.pipelines WHERE name = 'status' \gset
INSERT INTO reading SELECT i, i % 10, i FROM generate_series(101, 10100) i;
SELECT stategrid_ivm.resume_pipeline('status');
BEGIN;
LOCK TABLE ods_reading IN ACCESS EXCLUSIVE MODE;
SELECT wait_until('SELECT waits FROM worker_waits') AS worker_waits;
SELECT state, lag_seconds > 0 AS lag_shown, lag_bytes > 0 AS lag_bytes_shown,
       rows_applied = :rows_before AS nothing_applied
FROM stategrid_ivm.pipelines WHERE name = 'status';
COMMIT;
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
SELECT state, lag_seconds, rows_applied - :rows_before AS rows_applied
FROM stategrid_ivm.pipelines WHERE name = 'status';

-- The same without a lock, polled as fast as a query can: the lag never reads 0 before the
-- rows are applied. (The lag is read before the applied count, by an earlier statement: a 0
-- read when the batch had already committed meets the new count.)
SELECT stategrid_ivm.pause_pipeline('status');
SELECT wait_until($$SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'status'$$) AS worker_stopped;
SELECT rows_applied AS rows_before FROM stategrid_ivm.pipelines WHERE name = 'status' \gset
INSERT INTO reading SELECT i, i % 10, i FROM generate_series(10101, 20100) i;
SELECT stategrid_ivm.resume_pipeline('status');
CREATE TEMP TABLE polls (lag numeric, applied boolean);
SELECT set_config('status.rows_before', :'rows_before', false) IS NOT NULL AS noted;
DO $$
DECLARE
    v_lag numeric;
    v_applied boolean;
    v_deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    LOOP
        SELECT lag_seconds INTO v_lag FROM stategrid_ivm.pipelines WHERE name = 'status';
        SELECT rows_applied - current_setting('status.rows_before')::bigint >= 10000 INTO v_applied
        FROM stategrid_ivm.pipelines WHERE name = 'status';
        INSERT INTO polls VALUES (v_lag, v_applied);
        EXIT WHEN v_applied OR clock_timestamp() > v_deadline;
    END LOOP;
END
$$;
SELECT count(*) > 0 AS polled, count(*) FILTER (WHERE lag = 0 AND NOT applied) AS zero_while_waiting,
       bool_or(applied) AS applied
FROM polls;

-- ---------------------------------------------------------------------------------------------
-- 2. A transaction that commits while the worker runs and is caught up: from its commit on it
--    waits, also while the worker decodes it (a large one takes long). The worker is held
--    between decoding and applying by a lock on the pipeline's catalog row, which it takes
--    before applying. It read 0 until the worker applied the transaction's first message.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
SELECT lag_seconds AS caught_up_lag FROM stategrid_ivm.pipelines WHERE name = 'status';
SELECT rows_applied AS rows_before FROM stategrid_ivm.pipelines WHERE name = 'status' \gset
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
BEGIN;
SELECT name AS locked FROM stategrid_ivm.pipeline WHERE name = 'status' FOR SHARE;
SELECT dblink_exec('other', $$INSERT INTO status_columns.reading
                              SELECT i, i % 10, i FROM generate_series(20101, 21100) i$$);
SELECT wait_until('SELECT waits FROM worker_waits') AS worker_waits;
SELECT pg_sleep(0.1);
SELECT state, lag_seconds >= 0.1 AS lag_shown, rows_applied = :rows_before AS nothing_applied
FROM stategrid_ivm.pipelines WHERE name = 'status';
COMMIT;
SELECT dblink_disconnect('other');
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
SELECT state, lag_seconds, rows_applied - :rows_before AS rows_applied
FROM stategrid_ivm.pipelines WHERE name = 'status';

-- Writes in the database that are not the pipeline's leave it caught up once its worker has
-- looked (and a sync makes it look).
CREATE TABLE unrelated (x int);
INSERT INTO unrelated VALUES (1);
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
SELECT lag_seconds AS idle_lag FROM stategrid_ivm.pipelines WHERE name = 'status';

-- ---------------------------------------------------------------------------------------------
-- 3. Rounded figures: milliseconds for the lag, tenths of milliseconds for freshness (its
--    buckets are 10% wide). They were double precision (97.01723378487254).
-- ---------------------------------------------------------------------------------------------
SELECT column_name, data_type, numeric_scale
FROM information_schema.columns
WHERE table_schema = 'stategrid_ivm' AND table_name = 'pipelines'
  AND column_name IN ('lag_seconds', 'freshness_p50_ms', 'freshness_p99_ms', 'freshness_max_ms')
ORDER BY column_name;
SELECT freshness_transactions > 0 AS measured, freshness_p50_ms > 0 AS p50_positive,
       freshness_p99_ms = round(freshness_p99_ms, 1) AS p99_rounded
FROM stategrid_ivm.pipelines WHERE name = 'status';

-- ---------------------------------------------------------------------------------------------
-- 4. views.rows is an estimate that reads no table (it counted every table on every read);
--    stategrid_ivm.view_rows() counts.
-- ---------------------------------------------------------------------------------------------
-- (pg_stat_get_xact_numscans: the scans this session has not yet reported to the statistics)
BEGIN;
CREATE TEMP TABLE scans_before AS
SELECT oid, pg_stat_get_xact_numscans(oid) AS n FROM pg_class
WHERE oid IN ('ods_reading'::regclass, 'reading_by_meter'::regclass);
SELECT view_name, kind, rows IS NOT NULL AS estimated FROM stategrid_ivm.views
WHERE pipeline = 'status' ORDER BY view_name;
-- reading the view scanned neither table
SELECT c.relname, pg_stat_get_xact_numscans(c.oid) - b.n AS scans
FROM pg_class c JOIN scans_before b USING (oid) ORDER BY c.relname;
COMMIT;
SELECT view_name, stategrid_ivm.view_rows(view_name::regclass) AS exact_rows
FROM stategrid_ivm.views WHERE pipeline = 'status' ORDER BY view_name;
-- the estimate follows the committed changes (the worker reports them after its batches)
SELECT wait_until($$SELECT bool_and(rows = stategrid_ivm.view_rows(view_name::regclass))
                    FROM stategrid_ivm.views WHERE pipeline = 'status'$$) AS estimate_meets_count;
DELETE FROM reading WHERE id > 10100;
SELECT stategrid_ivm.sync('status') IS NOT NULL AS synced;
SELECT wait_until($$SELECT bool_and(rows = stategrid_ivm.view_rows(view_name::regclass))
                    FROM stategrid_ivm.views WHERE pipeline = 'status'$$) AS estimate_follows_deletes;
SELECT view_name, rows FROM stategrid_ivm.views WHERE pipeline = 'status' ORDER BY view_name;
-- only tables a pipeline maintains
SELECT stategrid_ivm.view_rows('reading');
-- a reader who may not read the table gets no count, neither estimated nor exact
CREATE ROLE regress_status_reader;
GRANT USAGE ON SCHEMA status_columns TO regress_status_reader;
SET ROLE regress_status_reader;
SELECT view_name, rows, stategrid_ivm.view_rows(view_name::regclass) AS exact_rows
FROM stategrid_ivm.views WHERE pipeline = 'status' ORDER BY view_name;
RESET ROLE;
REVOKE USAGE ON SCHEMA status_columns FROM regress_status_reader;
DROP ROLE regress_status_reader;

SELECT view_name, ok FROM stategrid_ivm.verify('status') ORDER BY view_name;
SELECT stategrid_ivm.drop_pipeline('status', drop_tables => true);
DROP SCHEMA status_columns CASCADE;
DROP EXTENSION dblink;
