-- What each supported construct of a maintained view means, on small hand-checkable data, and how
-- it follows changes of its inputs (DESIGN.md §4, issue 4 deliverable 2): projection, computed
-- columns and WHERE; INNER and LEFT equi-joins with changes on both sides; GROUP BY columns and
-- expressions with SUM, COUNT(*), COUNT(col), COUNT(DISTINCT), AVG, ROUND(AVG), MIN, MAX and
-- HAVING; ROW_NUMBER, RANK and DENSE_RANK over a GROUP BY; views over views; an adopted
-- pre-created table; refresh_view and verify; add_view on a running pipeline; the four State
-- Grid tables of examples/stategrid/warehouse.sql.
--
-- After every step, settle() waits for the worker (sync) and runs verify(), the oracle: 'ok'
-- means every maintained table equals a full recomputation over the pipeline's state.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_semantics;
SET search_path = view_semantics, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set warehouse_file :abs_srcdir '/examples/stategrid/warehouse.sql'
\set ECHO none
\i :schema_file
\set ECHO all
-- readings of unknown users must be possible (a deleted user's readings stay)
ALTER TABLE power_consumption DROP CONSTRAINT power_consumption_user_id_fkey;

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

-- The pre-created sink table of the original example: surrogate key, audit column with a
-- default, unique (region_id, stat_date). add_view adopts it and maps the columns by name.
CREATE TABLE dws_region_daily_stats (
    stats_id          bigserial PRIMARY KEY,
    region_id         int,
    region_name       varchar(100),
    stat_date         date,
    total_consumption decimal(15,2),
    total_cost        decimal(15,2),
    user_count        bigint,
    avg_consumption   decimal(10,2),
    max_consumption   decimal(10,2),
    min_consumption   decimal(10,2),
    update_time       timestamp DEFAULT now(),
    UNIQUE (region_id, stat_date)
);

-- Data before the pipeline starts (the backfill copies it, the views start from it).
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone) VALUES
    (1, '张三', '居民', 1, '北京', '朝阳区1号', '13800138001'),
    (2, '李四', '商业', 1, '北京', '海淀区2号', '13900139002'),
    (3, '王五', '工业', 2, '上海', '浦东新区3号', '123'),
    (4, NULL,   '居民', 2, '上海', NULL, NULL);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost,
                               consumption_date, remark) VALUES
    (101, 1,  10.00,  5.00, '2024-03-01 08:00', NULL),
    (102, 2,  20.00, 10.00, '2024-03-01 09:00', '商户'),
    (103, 1,  30.00, 15.00, '2024-03-01 18:00', NULL),
    (104, 3, 120.00, 60.00, '2024-03-01 10:00', '工厂'),
    (105, 4,   5.00,  NULL, '2024-03-02 10:00', NULL),
    (106, 2,  30.00, 12.00, '2024-03-02 11:00', NULL);

SELECT stategrid_ivm.create_pipeline('vsem');
SELECT stategrid_ivm.add_source('vsem', 'power_user');
SELECT stategrid_ivm.add_source('vsem', 'power_consumption');
-- the four State Grid tables, exactly as examples/stategrid/warehouse.sql defines them (its
-- add_view calls print nothing here: the catalog query below lists the views)
\set pipeline vsem
\set ECHO none
\o /dev/null
\i :warehouse_file
\o
\set ECHO all

-- Projection with computed columns and a WHERE.
SELECT stategrid_ivm.add_view('vsem', 'v_proj', $q$
    SELECT consumption_id, user_id,
           consumption_amount * 2 AS double_amount,
           CASE WHEN consumption_amount >= 100 THEN 'high' ELSE 'normal' END AS level,
           consumption_date::date AS day,
           date_trunc('month', consumption_date) AS month,
           round(consumption_cost / NULLIF(consumption_amount, 0), 3) AS unit_price,
           COALESCE(remark, '-') AS remark
    FROM ods_power_consumption
    WHERE consumption_amount >= 10
$q$);
-- INNER join (written dimension = fact), with a WHERE on the dimension.
SELECT stategrid_ivm.add_view('vsem', 'v_inner', $q$
    SELECT c.consumption_id, c.consumption_amount, u.user_name, u.region_id
    FROM ods_power_consumption c JOIN ods_power_user u ON u.user_id = c.user_id
    WHERE u.usage_type <> '工业'
$q$);
-- GROUP BY a column and an expression, every supported aggregate, over a view.
SELECT stategrid_ivm.add_view('vsem', 'v_agg', $q$
    SELECT region_id, consumption_date::date AS day,
           SUM(consumption_amount) AS total,
           COUNT(*) AS readings,
           COUNT(consumption_cost) AS costed,
           COUNT(DISTINCT user_id) AS users,
           AVG(consumption_amount) AS avg_raw,
           ROUND(AVG(consumption_amount), 2) AS avg_amount,
           MIN(consumption_amount) AS min_amount,
           MAX(consumption_amount) AS max_amount,
           MAX(consumption_amount) - MIN(consumption_amount) AS spread
    FROM dwd_power_consumption_detail
    GROUP BY region_id, consumption_date::date
$q$);
-- HAVING, over an ODS mirror, grouped by a nullable column.
SELECT stategrid_ivm.add_view('vsem', 'v_having', $q$
    SELECT user_id, COUNT(*) AS readings, SUM(consumption_amount) AS total
    FROM ods_power_consumption
    GROUP BY user_id
    HAVING COUNT(*) >= 2
$q$);
-- The three ranking functions over one partition (region, day), ordered by an aggregate.
SELECT stategrid_ivm.add_view('vsem', 'v_rank', $q$
    SELECT region_id, consumption_date::date AS day, user_id,
           SUM(consumption_amount) AS total,
           ROW_NUMBER() OVER (PARTITION BY region_id, consumption_date::date
                              ORDER BY SUM(consumption_amount) DESC, user_id) AS row_number,
           RANK() OVER (PARTITION BY region_id, consumption_date::date
                        ORDER BY SUM(consumption_amount) DESC) AS rank,
           DENSE_RANK() OVER (PARTITION BY region_id, consumption_date::date
                              ORDER BY SUM(consumption_amount) DESC) AS dense_rank
    FROM dwd_power_consumption_detail
    GROUP BY region_id, consumption_date::date, user_id
$q$);
-- Views over views: a projection over the DWD, an aggregate over the (adopted) DWS table.
SELECT stategrid_ivm.add_view('vsem', 'v_big_detail', $q$
    SELECT consumption_id, user_name, region_name, consumption_amount
    FROM dwd_power_consumption_detail
    WHERE consumption_amount >= 30
$q$);
SELECT stategrid_ivm.add_view('vsem', 'v_region_summary', $q$
    SELECT region_id, COUNT(*) AS days, SUM(total_consumption) AS total, MAX(user_count) AS max_users
    FROM dws_region_daily_stats
    GROUP BY region_id
$q$);

-- The catalog: kinds, keys and audit columns, in dependency order.
SELECT view_name, plan->>'kind' AS kind, plan->'key' AS key, plan->'audit_columns' AS audit
FROM stategrid_ivm.view v JOIN stategrid_ivm.pipeline p USING (pipeline_id)
WHERE p.name = 'vsem' ORDER BY view_id;

SELECT stategrid_ivm.start_pipeline('vsem');
SELECT settle('vsem');

-- ---- the State Grid tables over the initial data ---------------------------------------------
SELECT user_id, user_name, usage_type, region_id, region_name, address, phone, etl_time IS NOT NULL AS etl
FROM dwd_power_user_info ORDER BY user_id;
SELECT consumption_id, user_id, user_name, consumption_amount, consumption_cost, consumption_date,
       region_id, region_name, usage_type, etl_time IS NOT NULL AS etl
FROM dwd_power_consumption_detail ORDER BY consumption_id;
-- region 1 on 03-01: 10 + 20 + 30 = 60, cost 30, 2 users, avg 20, max 30, min 10
SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count,
       avg_consumption, max_consumption, min_consumption
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
-- 03-01 region 1: 张三 40 before 李四 20
SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption, total_cost, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;

-- ---- the adopted dws_region_daily_stats ------------------------------------------------------
-- columns mapped by name; stats_id and update_time keep their defaults, the constraint stays
SELECT count(*) AS rows, count(DISTINCT stats_id) AS stats_ids, bool_and(update_time IS NOT NULL) AS update_time_set
FROM dws_region_daily_stats;
SELECT conname, contype FROM pg_constraint
WHERE conrelid = 'dws_region_daily_stats'::regclass ORDER BY conname COLLATE "C";
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = 'view_semantics' AND table_name = 'dws_region_daily_stats' ORDER BY ordinal_position;

-- ---- projection, computed columns, WHERE -----------------------------------------------------
SELECT * FROM v_proj ORDER BY consumption_id;
-- 107 is below the WHERE, 108 above it; then 107 grows into the view, 101 shrinks out of it,
-- 103's cost changes its unit price, 108 is deleted
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost,
                               consumption_date, remark) VALUES
    (107, 1,  8.00, 4.00, '2024-03-03 08:00', NULL),
    (108, 2, 50.00, 0.00, '2024-03-03 09:00', 'x');
SELECT settle('vsem');
SELECT * FROM v_proj ORDER BY consumption_id;
BEGIN;
UPDATE power_consumption SET consumption_amount = 80.00 WHERE consumption_id = 107;
UPDATE power_consumption SET consumption_amount = 9.00 WHERE consumption_id = 101;
UPDATE power_consumption SET consumption_cost = 6.00 WHERE consumption_id = 103;
DELETE FROM power_consumption WHERE consumption_id = 108;
COMMIT;
SELECT settle('vsem');
SELECT * FROM v_proj ORDER BY consumption_id;
-- a NULL amount fails the WHERE: the row leaves the view
UPDATE power_consumption SET consumption_amount = NULL WHERE consumption_id = 107;
SELECT settle('vsem');
SELECT consumption_id FROM v_proj ORDER BY consumption_id;

-- ---- INNER and LEFT joins: changes on the dimension side -------------------------------------
SELECT * FROM v_inner ORDER BY consumption_id;
-- 张三 moves from region 1 (北京) to region 2 (上海): every detail row of his moves, and the
-- regional and ranking aggregates with them
UPDATE power_user SET region_id = 2, region_name = '上海' WHERE user_id = 1;
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id, region_name
FROM dwd_power_consumption_detail WHERE user_id = 1 ORDER BY consumption_id;
SELECT * FROM v_inner ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
-- 王五 stops being industrial: his readings enter the INNER join's WHERE
UPDATE power_user SET usage_type = '居民' WHERE user_id = 3;
SELECT settle('vsem');
SELECT * FROM v_inner ORDER BY consumption_id;
-- 李四 is deleted: his readings leave the INNER join, and the LEFT join gives them the defaults
DELETE FROM power_user WHERE user_id = 2;
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id, region_name, usage_type
FROM dwd_power_consumption_detail WHERE user_id = 2 ORDER BY consumption_id;
SELECT consumption_id FROM v_inner ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
SELECT user_id FROM dwd_power_user_info ORDER BY user_id;
-- ... and reappears, in region 3 (广州): back in both joins, under the new region
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, phone)
VALUES (2, '李四', '商业', 3, '广州', '13900139002');
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id, region_name, usage_type
FROM dwd_power_consumption_detail WHERE user_id = 2 ORDER BY consumption_id;
SELECT consumption_id, user_name, region_id FROM v_inner ORDER BY consumption_id;
-- a reading of a user who never existed: LEFT JOIN defaults, not in the INNER join
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (109, 99, 7.00, 3.50, '2024-03-02 12:00');
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id, region_name, usage_type
FROM dwd_power_consumption_detail WHERE user_id = 99;
SELECT count(*) AS unknown_in_inner FROM v_inner WHERE consumption_id = 109;
-- the user's key changes (4 -> 40): reading 105 loses its user; then it is re-pointed to 40
UPDATE power_user SET user_id = 40 WHERE user_id = 4;
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id FROM dwd_power_consumption_detail WHERE consumption_id = 105;
SELECT user_id, user_name FROM dwd_power_user_info WHERE user_id IN (4, 40);
UPDATE power_consumption SET user_id = 40 WHERE consumption_id = 105;
SELECT settle('vsem');
SELECT consumption_id, user_id, user_name, region_id FROM dwd_power_consumption_detail WHERE consumption_id = 105;
-- the reading's key changes (104 -> 204): the old row goes, the new one comes
UPDATE power_consumption SET consumption_id = 204 WHERE consumption_id = 104;
SELECT settle('vsem');
SELECT consumption_id, user_id, consumption_amount FROM dwd_power_consumption_detail
WHERE consumption_id IN (104, 204) ORDER BY 1;
SELECT consumption_id, consumption_amount FROM v_inner WHERE consumption_id IN (104, 204) ORDER BY 1;
-- user and reading change in one transaction
BEGIN;
UPDATE power_user SET user_name = '王五五', region_id = 1, region_name = '北京' WHERE user_id = 3;
UPDATE power_consumption SET consumption_amount = 100.00 WHERE consumption_id = 204;
COMMIT;
SELECT settle('vsem');
SELECT consumption_id, user_name, consumption_amount, region_id, region_name
FROM dwd_power_consumption_detail WHERE user_id = 3;

-- ---- GROUP BY, aggregates, HAVING ------------------------------------------------------------
-- A clean slate for the aggregates: one region, one day, readings of known amounts.
BEGIN;
DELETE FROM power_consumption;
DELETE FROM power_user;
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name) VALUES
    (1, '张三', '居民', 1, '北京'), (2, '李四', '商业', 1, '北京'), (3, '王五', '工业', 1, '北京'),
    (4, '赵六', '居民', 2, '上海');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date) VALUES
    (1, 1, 10.00, 5.00, '2024-04-01 08:00'),
    (2, 1, 40.00, NULL, '2024-04-01 12:00'),
    (3, 2, 25.00, 9.00, '2024-04-01 09:00'),
    (4, 3, 40.00, 8.00, '2024-04-01 23:59:59'),
    (5, 3,  1.00, 0.50, '2024-04-02 00:00'),
    (6, 4,  7.00, 3.00, '2024-04-01 10:00');
COMMIT;
SELECT settle('vsem');
-- region 1 on 04-01: total 115, 4 readings, 3 with a cost, 3 users, avg 28.75, min 10, max 40
SELECT * FROM v_agg ORDER BY region_id, day;
SELECT * FROM v_having ORDER BY user_id;
-- the current maximum (40) exists twice: deleting one keeps 40, deleting the other gives 25
DELETE FROM power_consumption WHERE consumption_id = 2;
SELECT settle('vsem');
SELECT region_id, day, total, readings, costed, users, avg_amount, min_amount, max_amount, spread
FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
DELETE FROM power_consumption WHERE consumption_id = 4;
SELECT settle('vsem');
SELECT region_id, day, total, readings, costed, users, avg_amount, min_amount, max_amount, spread
FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
-- lowering the maximum (25 -> 5) makes 10 the maximum and 5 the minimum
UPDATE power_consumption SET consumption_amount = 5.00 WHERE consumption_id = 3;
SELECT settle('vsem');
SELECT region_id, day, total, readings, costed, users, avg_amount, min_amount, max_amount, spread
FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
-- raising a value above the maximum; a NULL cost does not count in COUNT(col)
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (7, 2, 99.99, NULL, '2024-04-01 20:00');
SELECT settle('vsem');
SELECT region_id, day, total, readings, costed, users, avg_raw, avg_amount, min_amount, max_amount
FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
-- COUNT(DISTINCT user_id): 李四 has two readings that day; one goes, he still counts
DELETE FROM power_consumption WHERE consumption_id = 3;
SELECT settle('vsem');
SELECT region_id, day, readings, users FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
DELETE FROM power_consumption WHERE consumption_id = 7;
SELECT settle('vsem');
SELECT region_id, day, readings, users FROM v_agg WHERE region_id = 1 AND day = '2024-04-01';
-- GROUP BY consumption_date::date: a reading moved to another day moves between groups
UPDATE power_consumption SET consumption_date = '2024-04-02 07:00' WHERE consumption_id = 1;
SELECT settle('vsem');
SELECT * FROM v_agg ORDER BY region_id, day;
-- a group that becomes empty disappears (region 2 on 04-01), in every aggregate above it
DELETE FROM power_consumption WHERE consumption_id = 6;
SELECT settle('vsem');
SELECT region_id, day, total FROM v_agg ORDER BY region_id, day;
SELECT region_id, stat_date FROM dws_region_daily_stats ORDER BY region_id, stat_date;
SELECT * FROM v_region_summary ORDER BY region_id;
-- HAVING COUNT(*) >= 2: 王五 has 1 reading (id 5) and 张三 1 (id 1); 张三 gets a second one
SELECT * FROM v_having ORDER BY user_id;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (8, 1, 2.00, '2024-04-03 08:00');
SELECT settle('vsem');
SELECT * FROM v_having ORDER BY user_id;
-- NULL groups: two readings without a user form the group user_id IS NULL, and two readings
-- without a date the group day IS NULL; removing readings empties them again
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (9, NULL, 3.00, '2024-04-03 09:00'),
    (10, NULL, 4.00, NULL),
    (11, 1, 6.00, NULL);
SELECT settle('vsem');
SELECT * FROM v_having ORDER BY user_id NULLS FIRST;
SELECT region_id, day, total, readings, users FROM v_agg ORDER BY region_id, day NULLS FIRST;
SELECT region_id, region_name, stat_date, total_consumption, user_count
FROM dws_region_daily_stats ORDER BY region_id, stat_date NULLS FIRST;
DELETE FROM power_consumption WHERE consumption_id IN (9, 11);
SELECT settle('vsem');
SELECT * FROM v_having ORDER BY user_id NULLS FIRST;
SELECT region_id, day, total, readings, users FROM v_agg ORDER BY region_id, day NULLS FIRST;
DELETE FROM power_consumption WHERE consumption_id = 10;
SELECT settle('vsem');
SELECT region_id, day, total, readings FROM v_agg ORDER BY region_id, day NULLS FIRST;

-- ---- ROW_NUMBER, RANK, DENSE_RANK over a GROUP BY --------------------------------------------
BEGIN;
DELETE FROM power_consumption;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (21, 1, 30.00, '2024-05-01 08:00'),
    (22, 2, 20.00, '2024-05-01 08:00'),
    (23, 2, 10.00, '2024-05-01 18:00'),   -- 李四 30 in all: tied with 张三
    (24, 3, 10.00, '2024-05-01 09:00'),
    (25, 4, 50.00, '2024-05-01 09:00');   -- region 2
COMMIT;
SELECT settle('vsem');
-- tie at 30: row_number 1, 2 (by user_id); rank 1, 1, 3; dense_rank 1, 1, 2
SELECT * FROM v_rank ORDER BY region_id, day, row_number;
SELECT user_id, region_id, stat_date, total_consumption, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;
-- 王五 overtakes both (10 -> 35): everyone below him moves down one
UPDATE power_consumption SET consumption_amount = 35.00 WHERE consumption_id = 24;
SELECT settle('vsem');
SELECT * FROM v_rank ORDER BY region_id, day, row_number;
-- the tie breaks (李四 loses 10): ranks and dense ranks separate
DELETE FROM power_consumption WHERE consumption_id = 23;
SELECT settle('vsem');
SELECT * FROM v_rank ORDER BY region_id, day, row_number;
-- three-way tie at 20
UPDATE power_consumption SET consumption_amount = 20.00 WHERE consumption_id IN (21, 24);
SELECT settle('vsem');
SELECT * FROM v_rank ORDER BY region_id, day, row_number;
-- 赵六 moves into region 1: the partition of region 1 grows, region 2's disappears
UPDATE power_user SET region_id = 1, region_name = '北京' WHERE user_id = 4;
SELECT settle('vsem');
SELECT * FROM v_rank ORDER BY region_id, day, row_number;
SELECT user_id, region_id, stat_date, total_consumption, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;

-- ---- verify finds hand-made damage, refresh_view repairs it ----------------------------------
-- (direct writes are refused, sql/direct_writes.sql: the damage is done the way only a superuser
-- can, with triggers off for the transaction)
BEGIN;
SET LOCAL session_replication_role = replica;
DELETE FROM dws_region_daily_stats WHERE region_id = 1;                       -- a missing row
UPDATE dwd_power_consumption_detail SET consumption_amount = 0 WHERE consumption_id = 21;  -- one changed
INSERT INTO v_agg (region_id, day, total, readings) VALUES (42, '2000-01-01', 1, 1);      -- an extra row
COMMIT;
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vsem') ORDER BY view_name;
-- (the DWS tables above the damaged DWD row differ from a recomputation over it, too)
SELECT stategrid_ivm.refresh_view('view_semantics.dwd_power_consumption_detail');
SELECT stategrid_ivm.refresh_view('dws_region_daily_stats');
SELECT stategrid_ivm.refresh_view('v_agg');
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vsem') ORDER BY view_name;
-- refresh_view recomputes from the pipeline's tables: a view above a repaired one that was
-- already right stays right; the pipeline goes on maintaining the repaired tables
UPDATE power_consumption SET consumption_amount = 21.00 WHERE consumption_id = 21;
SELECT settle('vsem');
SELECT consumption_id, consumption_amount FROM dwd_power_consumption_detail WHERE consumption_id = 21;
-- refresh_view of a table that is not a maintained view
SELECT stategrid_ivm.refresh_view('power_user');

-- ---- add_view on a running pipeline ----------------------------------------------------------
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (31, 1, 1.50, '2024-05-02 08:00'), (32, 99, 2.50, '2024-05-02 09:00');
SELECT stategrid_ivm.add_view('vsem', 'v_by_usage', $q$
    SELECT usage_type, COUNT(*) AS readings, SUM(consumption_amount) AS total
    FROM dwd_power_consumption_detail GROUP BY usage_type
$q$);
-- filled as of the pipeline's position, consistent with its inputs at once
SELECT view_name, missing_rows, extra_rows, ok FROM stategrid_ivm.verify('vsem')
WHERE view_name = 'view_semantics.v_by_usage';
SELECT settle('vsem');
SELECT * FROM v_by_usage ORDER BY usage_type;
-- and maintained from then on
UPDATE power_user SET usage_type = '商业' WHERE user_id = 1;
SELECT settle('vsem');
SELECT * FROM v_by_usage ORDER BY usage_type;

-- ---- NULL keys: a projection over an aggregate view -----------------------------------------
-- dws_user_ranking is keyed by its groups, and a group may hold NULLs (a reading without a date
-- or without a user): the projection above it must follow such rows too
SELECT stategrid_ivm.add_view('vsem', 'v_ranking_top', $q$
    SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption
    FROM dws_user_ranking WHERE ranking = 1
$q$);
SELECT plan->'key' AS key FROM stategrid_ivm.view WHERE view_name = 'view_semantics.v_ranking_top';
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (41, NULL, 3.00, NULL), (42, 2, 7.00, NULL);
SELECT settle('vsem');
SELECT * FROM v_ranking_top ORDER BY stat_date NULLS FIRST, region_id;
-- 王五 overtakes 李四 on the day without a date
BEGIN;
UPDATE power_consumption SET consumption_amount = 8.00 WHERE consumption_id = 42;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES (43, 3, 9.00, NULL);
COMMIT;
SELECT settle('vsem');
SELECT * FROM v_ranking_top ORDER BY stat_date NULLS FIRST, region_id;
DELETE FROM power_consumption WHERE consumption_id IN (41, 42, 43);
SELECT settle('vsem');
SELECT * FROM v_ranking_top ORDER BY stat_date NULLS FIRST, region_id;

-- ---- group columns named a1, a2 (the names the engine's helper columns once had) -------------
SELECT stategrid_ivm.add_view('vsem', 'v_a1', $q$
    SELECT user_id AS a1, consumption_date::date AS a2, COUNT(*) AS n
    FROM ods_power_consumption GROUP BY user_id, consumption_date::date
$q$);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (51, NULL, 1.00, '2024-05-03 08:00'), (52, NULL, 1.00, '2024-05-04 08:00');
SELECT settle('vsem');
SELECT * FROM v_a1 WHERE a1 IS NULL ORDER BY a2;
-- a second reading in group (NULL, 05-03) leaves group (NULL, 05-04) alone
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES
    (53, NULL, 1.00, '2024-05-03 09:00');
SELECT settle('vsem');
SELECT * FROM v_a1 WHERE a1 IS NULL ORDER BY a2;
DELETE FROM power_consumption WHERE consumption_id IN (51, 52, 53);
SELECT settle('vsem');
SELECT * FROM v_a1 ORDER BY a1, a2;

-- ---- a self-join ----------------------------------------------------------------------------
-- each user with the name of the user whose id is their region id: the same table twice, once
-- as the fact (restricted to the affected users) and once as the dimension (the whole table)
SELECT stategrid_ivm.add_view('vsem', 'v_self', $q$
    SELECT u.user_id, u.user_name, u.region_id, r.user_name AS region_user_name
    FROM ods_power_user u LEFT JOIN ods_power_user r ON u.region_id = r.user_id
$q$);
SELECT * FROM v_self ORDER BY user_id;
-- 王五 changes name: his own row, and no other (nobody lives in region 3)
UPDATE power_user SET user_name = '王五2' WHERE user_id = 3;
SELECT settle('vsem');
SELECT * FROM v_self ORDER BY user_id;
-- 张三 (user 1) changes name: every user of region 1 sees it
UPDATE power_user SET user_name = '张三丰' WHERE user_id = 1;
SELECT settle('vsem');
SELECT * FROM v_self ORDER BY user_id;
UPDATE power_user SET user_name = '张三' WHERE user_id = 1;
SELECT settle('vsem');

-- ---- the State Grid tables at the end --------------------------------------------------------
SELECT user_id, user_name, usage_type, region_id, region_name, address, phone
FROM dwd_power_user_info ORDER BY user_id;
SELECT consumption_id, user_id, user_name, consumption_amount, consumption_cost, consumption_date,
       region_id, region_name, usage_type
FROM dwd_power_consumption_detail ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count,
       avg_consumption, max_consumption, min_consumption
FROM dws_region_daily_stats ORDER BY region_id, stat_date;
SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption, total_cost, ranking
FROM dws_user_ranking ORDER BY stat_date, region_id, ranking;
SELECT pipeline, view_name, kind, stategrid_ivm.view_rows(view_name::regclass) AS rows, state FROM stategrid_ivm.views
WHERE pipeline = 'vsem' ORDER BY view_name COLLATE "C";

SELECT stategrid_ivm.drop_pipeline('vsem', drop_tables => true);
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'view_semantics'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C";
DROP SCHEMA view_semantics CASCADE;
