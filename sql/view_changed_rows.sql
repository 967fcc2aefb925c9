-- Issue 6 (ranking scenario) and the pipelines view's freshness figures. A keyed view writes
-- only the rows that changed: an unchanged row keeps its audit time (update_time / etl_time),
-- a ranking rewrites the rows whose rank moved and not its whole partition. Every step is
-- checked against a full recomputation with verify().
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_changed_rows;
SET search_path = view_changed_rows, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set warehouse_file :abs_srcdir '/examples/stategrid/warehouse.sql'
\set ECHO none
\i :schema_file
\set ECHO all

-- ten users in region 1, one reading each on 2024-07-01: user k consumed 10*k kWh
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
SELECT k, 'u' || k, '居民', 1, '北京' FROM generate_series(1, 10) k;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT k, 10 * k, k, '2024-07-01 08:00' FROM generate_series(1, 10) k;

SELECT stategrid_ivm.create_pipeline('vchg');
SELECT stategrid_ivm.add_source('vchg', 'power_user');
SELECT stategrid_ivm.add_source('vchg', 'power_consumption');
\set pipeline vchg
\set ECHO none
\o /dev/null
\i :warehouse_file
\o
\set ECHO all
SELECT stategrid_ivm.start_pipeline('vchg');
SELECT stategrid_ivm.sync('vchg') IS NOT NULL AS synced;
SELECT user_id, total_consumption, ranking FROM dws_user_ranking ORDER BY ranking;

-- Mark every maintained row: the rows a batch rewrites get a new audit time.
CREATE TABLE marks AS
SELECT 'ranking' AS v, user_id AS k, update_time AS t FROM dws_user_ranking
UNION ALL SELECT 'stats', region_id, update_time FROM dws_region_daily_stats
UNION ALL SELECT 'detail', consumption_id, etl_time FROM dwd_power_consumption_detail;
CREATE FUNCTION rewritten() RETURNS TABLE (v text, k bigint) LANGUAGE sql AS $$
    SELECT m.v, m.k FROM marks m
    WHERE (m.v = 'ranking' AND m.t IS DISTINCT FROM (SELECT update_time FROM dws_user_ranking WHERE user_id = m.k))
       OR (m.v = 'stats' AND m.t IS DISTINCT FROM (SELECT update_time FROM dws_region_daily_stats WHERE region_id = m.k))
       OR (m.v = 'detail' AND m.t IS DISTINCT FROM (SELECT etl_time FROM dwd_power_consumption_detail WHERE consumption_id = m.k))
    ORDER BY 1, 2
$$;
SELECT pg_sleep(0.05);

-- 1. User 10 (rank 1) consumes 5 kWh more: no rank moves. Only user 10's ranking row, the
--    region's stats row and the new detail row are written.
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (10, 5, 1, '2024-07-01 20:00');
SELECT stategrid_ivm.sync('vchg') IS NOT NULL AS synced;
SELECT * FROM rewritten();
SELECT count(*) AS new_detail_rows FROM dwd_power_consumption_detail d
WHERE NOT EXISTS (SELECT 1 FROM marks m WHERE m.v = 'detail' AND m.k = d.consumption_id);
SELECT view_name, ok FROM stategrid_ivm.verify('vchg') ORDER BY view_name;

-- 2. User 3 (rank 8, 30 kWh) consumes 45 kWh more (75 kWh): they overtake users 7, 6, 5 and 4.
--    Rewritten: user 3 and the four users whose rank moved down; users 1, 2, 8, 9, 10 stay.
TRUNCATE marks;
INSERT INTO marks
SELECT 'ranking', user_id, update_time FROM dws_user_ranking
UNION ALL SELECT 'stats', region_id, update_time FROM dws_region_daily_stats
UNION ALL SELECT 'detail', consumption_id, etl_time FROM dwd_power_consumption_detail;
SELECT pg_sleep(0.05);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (3, 45, 1, '2024-07-01 21:00');
SELECT stategrid_ivm.sync('vchg') IS NOT NULL AS synced;
SELECT * FROM rewritten() WHERE v = 'ranking';
SELECT user_id, total_consumption, ranking FROM dws_user_ranking ORDER BY ranking;
SELECT view_name, ok FROM stategrid_ivm.verify('vchg') ORDER BY view_name;

-- 3. A change that leaves every output value as it was (a remark): nothing is rewritten.
TRUNCATE marks;
INSERT INTO marks
SELECT 'ranking', user_id, update_time FROM dws_user_ranking
UNION ALL SELECT 'stats', region_id, update_time FROM dws_region_daily_stats
UNION ALL SELECT 'detail', consumption_id, etl_time FROM dwd_power_consumption_detail;
SELECT pg_sleep(0.05);
UPDATE power_consumption SET remark = 'checked' WHERE user_id = 5;
SELECT stategrid_ivm.sync('vchg') IS NOT NULL AS synced;
SELECT count(*) AS rewritten FROM rewritten();

-- Freshness: the worker counted the applied source transactions and their commit-to-visible
-- times (a histogram: each figure is the upper bound of a 10% bucket).
SELECT freshness_transactions >= 3 AS counted,
       freshness_p50_ms > 0 AND freshness_p50_ms <= freshness_p99_ms
           AND freshness_p99_ms <= freshness_max_ms AS ordered,
       freshness_max_ms < 60000 AS within_a_minute
FROM stategrid_ivm.pipelines WHERE name = 'vchg';

SELECT stategrid_ivm.drop_pipeline('vchg', drop_tables => true);
DROP SCHEMA view_changed_rows CASCADE;
