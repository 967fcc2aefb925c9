-- DESIGN.md §2 invariant 3 (issue 4 deliverable 3): maintenance reads the engine's own tables
-- (ODS mirrors, views), never the live sources, which may already be ahead of the transaction
-- being applied. While the pipeline is paused: a reading is inserted for a user of region 1,
-- then that user moves to region 2, then another user who has readings is deleted (each in its
-- own transaction). After resume and sync, every table equals a full recomputation, and the
-- per-region totals are those of a recomputation over the sources themselves.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_reordering;
SET search_path = view_reordering, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set warehouse_file :abs_srcdir '/examples/stategrid/warehouse.sql'
\set ECHO none
\i :schema_file
\set ECHO all
-- a deleted user's readings stay (and fall back to the LEFT JOIN defaults)
ALTER TABLE power_consumption DROP CONSTRAINT power_consumption_user_id_fkey;

-- The DWS per-region totals as a full recomputation over the live sources (DESIGN.md §1).
CREATE VIEW expected_region_totals AS
SELECT COALESCE(u.region_id, 0) AS region_id, COALESCE(u.region_name, '未知地区') AS region_name,
       c.consumption_date::date AS stat_date,
       SUM(c.consumption_amount) AS total_consumption, COUNT(DISTINCT c.user_id) AS user_count
FROM power_consumption c LEFT JOIN power_user u ON c.user_id = u.user_id
GROUP BY 1, 2, 3;

-- Waits until the pipeline's worker has exited (a paused pipeline has none).
CREATE FUNCTION wait_for_no_worker(p text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        IF (SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = p) IS NULL THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RETURN false;
END
$$;

INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name) VALUES
    (7, '张三', '居民', 1, '北京'),
    (8, '李四', '商业', 1, '北京'),
    (9, '王五', '工业', 2, '上海');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date) VALUES
    (1, 7, 10.00, 5.00, '2024-06-01 08:00'),
    (2, 8, 20.00, 9.00, '2024-06-01 09:00'),
    (3, 8,  5.00, 2.00, '2024-06-02 09:00'),
    (4, 9, 40.00, 20.00, '2024-06-01 10:00');

SELECT stategrid_ivm.create_pipeline('vreo');
SELECT stategrid_ivm.add_source('vreo', 'power_user');
SELECT stategrid_ivm.add_source('vreo', 'power_consumption');
\set pipeline vreo
\set ECHO none
\o /dev/null
\i :warehouse_file
\o
\set ECHO all
SELECT stategrid_ivm.start_pipeline('vreo');
SELECT stategrid_ivm.sync('vreo') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('vreo') ORDER BY view_name;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date;

-- ---- three transactions while the pipeline is paused -----------------------------------------
SELECT stategrid_ivm.pause_pipeline('vreo');
SELECT wait_for_no_worker('vreo') AS worker_gone;
-- T1: a reading for 张三 (user 7), who is in region 1
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (5, 7, 100.00, 50.00, '2024-06-01 12:00');
-- T2: 张三 moves to region 2
UPDATE power_user SET region_id = 2, region_name = '上海' WHERE user_id = 7;
-- T3: 李四 (user 8), who has readings 2 and 3, is deleted
DELETE FROM power_user WHERE user_id = 8;
-- nothing applied yet: the mirrors and the views still show the state before T1
SELECT count(*) AS reading_5_in_ods FROM ods_power_consumption WHERE consumption_id = 5;
SELECT user_id, region_id FROM ods_power_user ORDER BY user_id;
SELECT consumption_id, user_id, region_id FROM dwd_power_consumption_detail ORDER BY consumption_id;

SELECT stategrid_ivm.resume_pipeline('vreo');
SELECT stategrid_ivm.sync('vreo') IS NOT NULL AS synced;
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vreo') ORDER BY view_name;

-- reading 5 is filed under region 2 once (with 张三's reading 1), 李四's readings under the
-- defaults of an unknown user
SELECT consumption_id, user_id, user_name, consumption_amount, region_id, region_name
FROM dwd_power_consumption_detail ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
SELECT user_id, user_name, region_id, stat_date, total_consumption, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;
-- the same totals as a recomputation over the sources, both ways
SELECT count(*) AS missing FROM (
    SELECT * FROM expected_region_totals
    EXCEPT ALL
    SELECT region_id, region_name, stat_date, total_consumption, user_count FROM dws_region_daily_stats) m;
SELECT count(*) AS extra FROM (
    SELECT region_id, region_name, stat_date, total_consumption, user_count FROM dws_region_daily_stats
    EXCEPT ALL
    SELECT * FROM expected_region_totals) e;

-- ---- more reorderings in one pause -----------------------------------------------------------
SELECT stategrid_ivm.pause_pipeline('vreo');
SELECT wait_for_no_worker('vreo') AS worker_gone;
-- a reading of a user who does not exist yet, then the user
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (6, 10, 3.00, '2024-06-02 08:00');
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
VALUES (10, '赵六', '居民', 3, '广州');
-- 李四 comes back in region 3; his reading 3 is moved to 06-01, then corrected
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
VALUES (8, '李四', '商业', 3, '广州');
UPDATE power_consumption SET consumption_date = '2024-06-01 21:00' WHERE consumption_id = 3;
UPDATE power_consumption SET consumption_amount = 6.00 WHERE consumption_id = 3;
-- 王五 changes key (9 -> 19) and his reading follows in a later transaction
UPDATE power_user SET user_id = 19 WHERE user_id = 9;
UPDATE power_consumption SET user_id = 19 WHERE consumption_id = 4;
-- 张三 moves back to region 1, and his big reading 5 is deleted, in one transaction
BEGIN;
UPDATE power_user SET region_id = 1, region_name = '北京' WHERE user_id = 7;
DELETE FROM power_consumption WHERE consumption_id = 5;
COMMIT;
-- a transaction that rolls back leaves no trace
BEGIN;
UPDATE power_user SET region_id = 99 WHERE user_id = 10;
ROLLBACK;
SELECT stategrid_ivm.resume_pipeline('vreo');
SELECT stategrid_ivm.sync('vreo') IS NOT NULL AS synced;
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vreo') ORDER BY view_name;
SELECT consumption_id, user_id, user_name, consumption_amount, consumption_date, region_id, region_name
FROM dwd_power_consumption_detail ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
SELECT user_id, user_name, region_id, stat_date, total_consumption, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;
SELECT count(*) AS missing FROM (
    SELECT * FROM expected_region_totals
    EXCEPT ALL
    SELECT region_id, region_name, stat_date, total_consumption, user_count FROM dws_region_daily_stats) m;
SELECT count(*) AS extra FROM (
    SELECT region_id, region_name, stat_date, total_consumption, user_count FROM dws_region_daily_stats
    EXCEPT ALL
    SELECT * FROM expected_region_totals) e;

SELECT stategrid_ivm.drop_pipeline('vreo', drop_tables => true);
DROP SCHEMA view_reordering CASCADE;
