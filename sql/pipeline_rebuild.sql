-- rebuild_pipeline() (issue 7, deliverable 7) in one database: a pipeline whose slot was
-- dropped by hand is put in error by the launcher, naming the call; the call gives it a new slot
-- and origin and starts it over from a backfill. A healthy pipeline can be rebuilt as well
-- (the way out of a slot invalidated by max_slot_wal_keep_size); created and paused pipelines
-- stay so. (After pg_restore: test/t/030_dump_restore.pl.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE SCHEMA pipeline_rebuild;
SET search_path = pipeline_rebuild, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all
CREATE FUNCTION wait_until(cond text, timeout interval DEFAULT '30 s') RETURNS boolean
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
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, phone)
VALUES (1, '张伟', '居民', 11, '北京', '13800138001'), (2, '李娜', '商业', 31, '上海', '13900139002');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 10.50, 5.88, '2024-03-01 08:00'), (2, 120.00, 102.00, '2024-03-01 09:00');
SELECT stategrid_ivm.create_stategrid_pipeline('rb');
SELECT stategrid_ivm.sync('rb') IS NOT NULL AS synced;

-- ---- a healthy, running pipeline ---------------------------------------------------------------
SELECT slot_name AS old_slot FROM stategrid_ivm.pipelines WHERE name = 'rb' \gset
-- not inside a transaction that has written (a slot is created first)
BEGIN;
INSERT INTO power_user (user_id, user_name) VALUES (3, '王强');
SELECT stategrid_ivm.rebuild_pipeline('rb');
ROLLBACK;
SELECT stategrid_ivm.rebuild_pipeline('rb');
SELECT stategrid_ivm.sync('rb') IS NOT NULL AS synced;
SELECT state, slot_name <> :'old_slot' AS new_slot, slot_wal_status FROM stategrid_ivm.pipelines WHERE name = 'rb';
SELECT count(*) AS old_slot_left FROM pg_replication_slots WHERE slot_name = :'old_slot';
SELECT count(*) AS old_origin_left FROM pg_replication_origin WHERE roname = :'old_slot';
SELECT view_name, ok FROM stategrid_ivm.verify('rb');
-- the views' indexes are there once, named after the views' OIDs
SELECT count(*) AS sgivm_indexes,
       count(*) FILTER (WHERE substring(c.relname FROM '^sgivm_[a-z]+_([0-9]+)_')::oid
                              IN (SELECT relid FROM stategrid_ivm.view)) AS named_after_current_views
FROM pg_class c
WHERE c.relname LIKE 'sgivm\_%' AND c.relkind = 'i' AND c.relnamespace = 'pipeline_rebuild'::regnamespace;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 11.00, 6.16, '2024-03-02 08:00');
UPDATE power_user SET region_id = 44, region_name = '广东' WHERE user_id = 2;
SELECT stategrid_ivm.sync('rb') IS NOT NULL AS synced;
SELECT region_id, stat_date, total_consumption FROM dws_region_daily_stats ORDER BY stat_date, region_id;
SELECT view_name, ok FROM stategrid_ivm.verify('rb');

-- ---- the launcher looks while a rebuild has not committed ---------------------------------------
-- rebuild_pipeline drops the old slot before it commits the row that names the new one, and asks
-- the launcher to look at the database. The launcher's probe then sees a pipeline without its
-- slot, waits for the row, and must look again after the commit: the pipeline is not in error.
BEGIN;
SELECT stategrid_ivm.rebuild_pipeline('rb');
CREATE FUNCTION probe_waits_for_me() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_stat_clear_snapshot();   -- pg_stat_activity is otherwise read once per transaction
    RETURN EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                   WHERE a.backend_type = 'stategrid_ivm probe' AND l.locktype = 'transactionid'
                     AND NOT l.granted AND l.transactionid = pg_current_xact_id()::xid);
END
$$;
SELECT wait_until('SELECT probe_waits_for_me()') AS probe_waits;
COMMIT;
SELECT stategrid_ivm.sync('rb') IS NOT NULL AS synced;
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'rb';

-- ---- its slot dropped by hand ------------------------------------------------------------------
SELECT stategrid_ivm.pause_pipeline('rb');
SELECT slot_name AS old_slot FROM stategrid_ivm.pipelines WHERE name = 'rb' \gset
-- the worker gone, and with it its hold on the slot
SELECT wait_until(format($$SELECT NOT active FROM pg_replication_slots WHERE slot_name = %L$$, :'old_slot')) AS slot_released;
SELECT pg_drop_replication_slot(:'old_slot');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (2, 50.00, 42.50, '2024-03-03 08:00');
SELECT stategrid_ivm.resume_pipeline('rb');
-- the launcher looks at the database (resume asked it to): error, no worker, the call named
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'rb'$$) AS went_to_error;
SELECT state, worker_pid, regexp_replace(last_error, 'sgivm_[0-9a-f]+', 'sgivm_<slot>') AS last_error,
       slot_wal_status
FROM stategrid_ivm.pipelines WHERE name = 'rb';
-- Without its slot here, its catalog is taken for one restored from a dump, whose OIDs are the
-- dumped cluster's and may be any object's here (an index, say): verify() finds the tables by
-- name (the reading inserted above waits for the rebuild).
UPDATE stategrid_ivm.source SET ods_relid = 'power_consumption_pkey'::regclass WHERE ods_name LIKE '%.ods_power_consumption';
UPDATE stategrid_ivm.view SET relid = 'power_user_pkey'::regclass WHERE view_name LIKE '%.dwd_power_user_info';
SELECT view_name, missing_rows, extra_rows FROM stategrid_ivm.verify('rb');
SELECT stategrid_ivm.rebuild_pipeline('rb');
SELECT stategrid_ivm.sync('rb') IS NOT NULL AS synced;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'rb';
SELECT count(*) AS readings_in_dwd FROM dwd_power_consumption_detail;
SELECT view_name, ok FROM stategrid_ivm.verify('rb');
SELECT stategrid_ivm.drop_pipeline('rb', true);

-- ---- created and paused pipelines stay so --------------------------------------------------------
SELECT stategrid_ivm.create_pipeline('rb_created');
SELECT stategrid_ivm.add_source('rb_created', 'power_user');
SELECT stategrid_ivm.rebuild_pipeline('rb_created');
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'rb_created';
SELECT stategrid_ivm.start_pipeline('rb_created');
SELECT stategrid_ivm.sync('rb_created') IS NOT NULL AS synced;
SELECT stategrid_ivm.pause_pipeline('rb_created');
SELECT stategrid_ivm.rebuild_pipeline('rb_created');
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'rb_created';
SELECT stategrid_ivm.resume_pipeline('rb_created');
SELECT stategrid_ivm.sync('rb_created') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('rb_created');
SELECT stategrid_ivm.drop_pipeline('rb_created', true);
SELECT stategrid_ivm.rebuild_pipeline('rb_created');

SELECT count(*) AS slots FROM pg_replication_slots WHERE database = current_database();
SET client_min_messages = warning;
DROP SCHEMA pipeline_rebuild CASCADE;
RESET client_min_messages;
