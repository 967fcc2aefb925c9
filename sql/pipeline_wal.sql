-- WAL safety (issue 7, deliverable 5) and the way back from a slot that cannot be read.
-- A paused or failing pipeline keeps its slot's WAL: pipelines.retained_wal_bytes shows exactly
-- how much (the WAL from the slot's restart point), and it falls again once the pipeline has
-- caught up. A slot that is gone (dropped by hand here; invalidated by max_slot_wal_keep_size
-- in test/t/020_wal_safety.pl, which also checks the launcher's warning) puts the pipeline in
-- error with the call that rebuilds it: rebuild_pipeline(), which makes a new slot and copies
-- the sources again.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pipeline_wal_other') THEN
        EXECUTE 'DROP OWNED BY pipeline_wal_other';
        EXECUTE 'DROP ROLE pipeline_wal_other';
    END IF;
END $$;
CREATE SCHEMA pipeline_wal;
SET search_path = pipeline_wal, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

CREATE FUNCTION settle(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    PERFORM stategrid_ivm.sync(p);
    SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '
                      ORDER BY view_name)
    INTO bad FROM stategrid_ivm.verify(p) WHERE NOT ok;
    RETURN coalesce('NOT OK: ' || bad, 'ok');
END
$$;

CREATE FUNCTION wait_until(cond text, timeout interval DEFAULT '20 s') RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    ok boolean;
BEGIN
    LOOP
        EXECUTE cond INTO ok;
        IF ok OR clock_timestamp() > deadline THEN
            RETURN coalesce(ok, false);
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;

-- Catches a running pipeline up and lets its slot move on: a slot's restart point advances
-- when the decoder meets a snapshot of the running transactions (CHECKPOINT logs one).
CREATE PROCEDURE release_wal(p text, below bigint) LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    LOOP
        CHECKPOINT;
        INSERT INTO pipeline_wal.power_user (user_id) VALUES (-1) ON CONFLICT (user_id) DO NOTHING;
        DELETE FROM pipeline_wal.power_user WHERE user_id = -1;
        COMMIT;
        PERFORM stategrid_ivm.sync(p);
        EXIT WHEN (SELECT retained_wal_bytes FROM stategrid_ivm.pipelines WHERE name = p) < below
               OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.1);
    END LOOP;
END
$$;

-- WAL written by others while the pipeline waits (not its sources: any table of the database).
CREATE TABLE filler (x text);

SELECT stategrid_ivm.generate_sample_data(10, 2) AS readings;
SELECT stategrid_ivm.create_stategrid_pipeline('wal');
SELECT settle('wal');
SELECT setting, unit FROM pg_settings WHERE name = 'stategrid_ivm.wal_warning_size';

-- ---- paused: the slot keeps every byte of WAL written meanwhile ---------------------------------
SELECT stategrid_ivm.pause_pipeline('wal');
SELECT wait_until($$SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'wal'$$) AS stopped;
SELECT retained_wal_bytes AS retained_0, pg_current_wal_insert_lsn() AS lsn_0
FROM stategrid_ivm.pipelines WHERE name = 'wal' \gset
INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 3000);
SELECT stategrid_ivm.generate_sample_data(10, 2, start_date => '2024-02-01') AS more_readings;
-- (to within 64 kB: background processes may write WAL between the two readings of the position)
SELECT abs(p.retained_wal_bytes - :retained_0 - pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn_0')) < 65536 AS grew_by_the_wal_written,
       p.retained_wal_bytes - :retained_0 > 3000000 AS grew_past_3mb,
       abs(p.retained_wal_bytes - pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)) < 65536 AS from_the_restart_point,
       p.slot_wal_status, p.lag_bytes > 3000000 AS lag_grew
FROM stategrid_ivm.pipelines p JOIN pg_replication_slots s USING (slot_name) WHERE p.name = 'wal';
-- resumed and caught up, the WAL is released
SELECT retained_wal_bytes AS retained_paused FROM stategrid_ivm.pipelines WHERE name = 'wal' \gset
SELECT stategrid_ivm.resume_pipeline('wal');
CALL release_wal('wal', :retained_paused / 10);
SELECT retained_wal_bytes < :retained_paused / 10 AS released FROM stategrid_ivm.pipelines WHERE name = 'wal';
SELECT settle('wal');

-- ---- failing: the same, and the changes wait in the slot -------------------------------------------
ALTER TABLE dws_region_daily_stats ADD CONSTRAINT no_big_days CHECK (total_consumption < 100000);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (1, 99999.00, '2024-03-01 08:00');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (1, 99999.00, '2024-03-01 09:00');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'wal'$$) AS in_error;
-- (the failing row's update_time is now())
SELECT regexp_replace(last_error, ', [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+[+-][0-9]+\)', ', <update_time>)') AS last_error
FROM stategrid_ivm.pipelines WHERE name = 'wal';
SELECT retained_wal_bytes AS retained_0, pg_current_wal_insert_lsn() AS lsn_0
FROM stategrid_ivm.pipelines WHERE name = 'wal' \gset
INSERT INTO filler SELECT repeat('y', 1000) FROM generate_series(1, 3000);
SELECT abs(p.retained_wal_bytes - :retained_0 - pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn_0')) < 65536 AS grew_by_the_wal_written,
       p.retained_wal_bytes - :retained_0 > 3000000 AS grew_past_3mb, p.state, p.slot_wal_status
FROM stategrid_ivm.pipelines p WHERE p.name = 'wal';
ALTER TABLE dws_region_daily_stats DROP CONSTRAINT no_big_days;
SELECT stategrid_ivm.resume_pipeline('wal');
SELECT settle('wal');
SELECT count(*) AS big_readings FROM dwd_power_consumption_detail WHERE consumption_amount = 99999.00;

-- ---- a slot that is gone: error with the way back ---------------------------------------------------
SELECT slot_name AS old_slot FROM stategrid_ivm.pipelines WHERE name = 'wal' \gset
SELECT stategrid_ivm.pause_pipeline('wal');
SELECT wait_until($$SELECT NOT active FROM pg_replication_slots WHERE slot_name = '$$ || :'old_slot' || $$'$$) AS released;
SELECT pg_drop_replication_slot(:'old_slot');
-- changes made while there is no slot
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (2, 1.25, '2024-03-02 08:00');
UPDATE power_user SET region_id = 99, region_name = '新区' WHERE user_id = 3;
SELECT stategrid_ivm.resume_pipeline('wal');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'wal'$$) AS in_error;
SELECT regexp_replace(last_error, 'sgivm_[0-9a-f]+', 'sgivm_...') AS last_error,
       slot_wal_status, retained_wal_bytes
FROM stategrid_ivm.pipelines WHERE name = 'wal';
-- rebuild_pipeline: only in a transaction of its own (a slot cannot be made after a write) ...
BEGIN;
INSERT INTO filler VALUES ('z');
SELECT stategrid_ivm.rebuild_pipeline('wal');
ROLLBACK;
-- ... only by the owner, and only for a pipeline that exists
SELECT stategrid_ivm.rebuild_pipeline('no_such_pipeline');
CREATE ROLE pipeline_wal_other NOLOGIN;
GRANT EXECUTE ON FUNCTION stategrid_ivm.rebuild_pipeline(text) TO pipeline_wal_other;
SET ROLE pipeline_wal_other;
DO $$ BEGIN
    PERFORM stategrid_ivm.rebuild_pipeline('wal');
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING '%', replace(SQLERRM, session_user, '<owner>');
END $$;
RESET ROLE;
-- the owner rebuilds: a new slot, the sources copied again, the views recomputed
SELECT stategrid_ivm.rebuild_pipeline('wal');
SELECT slot_name <> :'old_slot' AS new_slot, state IN ('backfilling', 'running') AS started
FROM stategrid_ivm.pipelines WHERE name = 'wal';
SELECT settle('wal');
SELECT count(*) AS readings_while_slotless FROM dwd_power_consumption_detail WHERE consumption_amount = 1.25;
SELECT count(*) AS moved_user_readings FROM dwd_power_consumption_detail WHERE region_id = 99;
-- and it streams again
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (2, 2.50, '2024-03-02 09:00');
SELECT settle('wal');
SELECT state, slot_wal_status FROM stategrid_ivm.pipelines WHERE name = 'wal';
SELECT count(*) AS slots_of_the_pipeline FROM pg_replication_slots
WHERE slot_name = :'old_slot' OR slot_name = (SELECT slot_name FROM stategrid_ivm.pipelines WHERE name = 'wal');

-- ---- rebuilding a paused pipeline leaves it paused; resume backfills --------------------------------
-- (at once: the stopping worker may still hold the old slot; rebuild_pipeline waits for it)
SELECT stategrid_ivm.pause_pipeline('wal');
SELECT stategrid_ivm.rebuild_pipeline('wal');
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'wal';
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (2, 3.75, '2024-03-02 10:00');
SELECT stategrid_ivm.resume_pipeline('wal');
SELECT settle('wal');
SELECT count(*) AS readings_after_rebuild FROM dwd_power_consumption_detail WHERE consumption_amount = 3.75;

SELECT stategrid_ivm.drop_pipeline('wal', drop_tables => true);
SELECT count(*) AS slots_left FROM pg_replication_slots WHERE slot_name LIKE 'sgivm_%' AND database = current_database();
DROP OWNED BY pipeline_wal_other;
DROP ROLE pipeline_wal_other;
DROP SCHEMA pipeline_wal CASCADE;
