-- Backfill and the stream around it (issue 3, deliverables 4 and 5): what the slot holds from
-- before start_pipeline, and a transaction that is still open while the backfill copies.
-- Changes the backfill's copy already contains must be skipped in the stream, those it could
-- not see must be applied, and neither may stall the pipeline.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
-- error context lines name plpgsql line numbers of the extension: leave them out
\set SHOW_CONTEXT never
CREATE SCHEMA pipeline_backfill;
SET search_path = pipeline_backfill, public;

CREATE TABLE power_user (
    user_id      bigint PRIMARY KEY,
    user_name    varchar(100),
    usage_type   varchar(50),
    region_id    int,
    region_name  varchar(100),
    address      varchar(200),
    phone        varchar(20),
    create_time  timestamp DEFAULT now(),
    update_time  timestamp DEFAULT now()
);
CREATE TABLE power_consumption (
    consumption_id       bigserial PRIMARY KEY,
    user_id              bigint REFERENCES power_user (user_id),
    consumption_amount   decimal(10,2),
    consumption_cost     decimal(10,2),
    consumption_date     timestamp,
    meter_reading_before decimal(10,2),
    meter_reading_after  decimal(10,2),
    remark               varchar(200)
);

CREATE FUNCTION compare(src regclass, mirror regclass,
                        OUT source_rows bigint, OUT mirror_rows bigint, OUT same boolean)
LANGUAGE plpgsql AS $$
DECLARE
    diff bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s', src) INTO source_rows;
    EXECUTE format('SELECT count(*) FROM %s', mirror) INTO mirror_rows;
    EXECUTE format('SELECT count(*) FROM ((TABLE %1$s EXCEPT ALL TABLE %2$s) UNION ALL (TABLE %2$s EXCEPT ALL TABLE %1$s)) d',
                   src, mirror) INTO diff;
    same := diff = 0 AND source_rows = mirror_rows;
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

INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
SELECT 1000 + i, '用户' || i, (ARRAY['居民', '商业', '工业'])[1 + i % 3], 110100 + i % 4, '地区' || i % 4
FROM generate_series(1, 50) i;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT 1001 + i % 50, i % 500, i % 500 * 0.54, timestamp '2024-03-01' + (i % 7) * interval '1 day'
FROM generate_series(1, 1000) i;

-- ---------------------------------------------------------------------------------------------
-- 1. A transaction open while the backfill copies: the copy cannot see it, the stream must
--    apply it once it commits. (A second session, through dblink.)
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.create_pipeline('backfill_open');
SELECT stategrid_ivm.add_source('backfill_open', 'power_user');
SELECT stategrid_ivm.add_source('backfill_open', 'power_consumption');
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s',
    split_part(current_setting('unix_socket_directories'), ',', 1), current_setting('port'), current_database()));
SELECT dblink_exec('other', 'BEGIN');
SELECT dblink_exec('other', $$INSERT INTO pipeline_backfill.power_consumption (consumption_id, user_id, consumption_amount)
                              VALUES (50001, 1001, 1.5), (50002, 1002, 2.5)$$);
SELECT dblink_exec('other', 'UPDATE pipeline_backfill.power_consumption SET consumption_amount = 0 WHERE consumption_id <= 10');
SELECT dblink_exec('other', 'DELETE FROM pipeline_backfill.power_consumption WHERE consumption_id BETWEEN 11 AND 20');
-- meanwhile, committed changes of this session (before the backfill: in the copy, skipped in the stream)
UPDATE power_consumption SET remark = '启动前' WHERE consumption_id BETWEEN 21 AND 30;
SELECT stategrid_ivm.start_pipeline('backfill_open');
SELECT wait_until($$SELECT state = 'running' FROM stategrid_ivm.pipelines WHERE name = 'backfill_open'$$) AS backfilled;
-- the open transaction is not in the mirror yet
SELECT count(*) AS not_yet FROM ods_power_consumption WHERE consumption_id IN (50001, 50002);
SELECT dblink_exec('other', 'COMMIT');
SELECT dblink_disconnect('other');
SELECT stategrid_ivm.sync('backfill_open') IS NOT NULL AS synced;
SELECT * FROM compare('power_user', 'ods_power_user');
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT count(*) FILTER (WHERE consumption_id IN (50001, 50002)) AS new_rows,
       count(*) FILTER (WHERE consumption_id <= 10 AND consumption_amount = 0) AS zeroed,
       count(*) FILTER (WHERE consumption_id BETWEEN 11 AND 20) AS deleted_left,
       count(*) FILTER (WHERE remark = '启动前') AS remarked
FROM ods_power_consumption;
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'backfill_open';
SELECT stategrid_ivm.drop_pipeline('backfill_open', true);

-- ---------------------------------------------------------------------------------------------
-- 2. Large transactions between create_pipeline and start_pipeline: the backfill's copy holds
--    them, so the stream skips them. More skipped changes than one batch (the default
--    stategrid_ivm.batch_size is 10000) must not stall the pipeline.
-- ---------------------------------------------------------------------------------------------
SELECT current_setting('stategrid_ivm.batch_size')::int < 25000 AS batch_smaller_than_the_load;
SELECT stategrid_ivm.create_pipeline('backfill_big');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
SELECT 100000 + i, 1001 + i % 50, i % 500, i % 500 * 0.54, timestamp '2024-03-01' + (i % 7) * interval '1 day'
FROM generate_series(1, 25000) i;
UPDATE power_consumption SET remark = '批量' WHERE consumption_id > 100000;
SELECT stategrid_ivm.add_source('backfill_big', 'power_user');
SELECT stategrid_ivm.add_source('backfill_big', 'power_consumption');
SELECT stategrid_ivm.start_pipeline('backfill_big');
SELECT stategrid_ivm.sync('backfill_big', '60 s') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
-- and the stream goes on after them
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount) VALUES (200001, 1001, 9.5);
DELETE FROM power_consumption WHERE consumption_id BETWEEN 100001 AND 100100;
SELECT stategrid_ivm.sync('backfill_big', '60 s') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT state, last_error, lag_seconds = 0 AS caught_up FROM stategrid_ivm.pipelines WHERE name = 'backfill_big';
SELECT stategrid_ivm.drop_pipeline('backfill_big', true);

DROP SCHEMA pipeline_backfill CASCADE;
DROP EXTENSION dblink;
