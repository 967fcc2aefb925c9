-- Odd values in the sources (issue 7, deliverable 3), under the whole State Grid warehouse: NULL
-- in every column, negative, zero and huge amounts, NaN, readings of users that do not exist
-- (the DWD's LEFT JOIN defaults), TRUNCATE of one source or both, and a SUM too big for a
-- narrower pre-created DWS column. After every step verify() (a full recomputation) is the
-- oracle; the one thing that cannot be applied stops the pipeline with an error naming the table.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA hostile_values;
SET search_path = hostile_values, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all
-- readings of users that do not exist must be possible (the OLTP side may not enforce it)
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

SELECT stategrid_ivm.create_stategrid_pipeline('hv');
-- the warehouse's sums are numeric without a precision: they cannot overflow
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'dws_region_daily_stats'::regclass AND attname IN ('total_consumption', 'total_cost', 'user_count')
ORDER BY attnum;

-- ---- NULL in every column ----------------------------------------------------------------------
INSERT INTO power_user (user_id) VALUES (1);                           -- a user with nothing but a key
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone,
                        create_time, update_time)
VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO power_consumption (consumption_id) VALUES (1);             -- a reading with nothing but a key
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
VALUES (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
       (3, 1, NULL, NULL, NULL, NULL, NULL, NULL),                     -- known user, no date, no amount
       (4, 2, 5.00, NULL, '2024-03-01 08:00', NULL, NULL, NULL),
       (5, NULL, 7.00, 3.00, '2024-03-01 09:00', NULL, NULL, NULL);
SELECT settle('hv');
SELECT consumption_id, user_id, user_name, consumption_amount, consumption_date, region_id, region_name, usage_type
FROM dwd_power_consumption_detail ORDER BY consumption_id;
SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count, avg_consumption,
       max_consumption, min_consumption
FROM dws_region_daily_stats ORDER BY region_id, stat_date NULLS FIRST;
SELECT user_id, stat_date, total_consumption, ranking FROM dws_user_ranking
ORDER BY stat_date NULLS FIRST, region_id, ranking;
SELECT user_id, user_name, usage_type, region_id, region_name, phone FROM dwd_power_user_info ORDER BY user_id;
-- NULLs become values and back, in every column a view groups, joins or ranks by
UPDATE power_consumption SET user_id = 1, consumption_date = '2024-03-01 10:00' WHERE consumption_id = 1;
UPDATE power_user SET region_id = 11, region_name = '北京', usage_type = '居民' WHERE user_id = 1;
UPDATE power_consumption SET consumption_amount = 2.00 WHERE consumption_id = 3;
SELECT settle('hv');
UPDATE power_consumption SET consumption_date = NULL, consumption_amount = NULL WHERE consumption_id = 4;
UPDATE power_user SET region_id = NULL WHERE user_id = 1;
UPDATE power_consumption SET user_id = NULL WHERE consumption_id = 3;
SELECT settle('hv');
SELECT count(*) AS groups_with_null_day FROM dws_region_daily_stats WHERE stat_date IS NULL;

-- ---- negative, zero, huge amounts and NaN --------------------------------------------------------
INSERT INTO power_user (user_id, user_name, region_id, region_name) VALUES (3, '负数', 12, '天津');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date) VALUES
    (10, 3, -50.00, -28.00, '2024-03-02 08:00'),                       -- a correction booked as negative
    (11, 3, 0.00, 0.00, '2024-03-02 09:00'),
    (12, 3, 99999999.99, 99999999.99, '2024-03-02 10:00'),              -- the largest decimal(10,2)
    (13, 3, -99999999.99, -99999999.99, '2024-03-02 11:00');
-- a thousand of the largest readings in one day and region: 10^11, past any decimal(10,2)
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
SELECT 1000 + g, 3, 99999999.99, 0.01, '2024-03-03 00:00'::timestamp + g * interval '1 second'
FROM generate_series(1, 1000) g;
-- NaN is a numeric value too
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (14, 3, 1.00, 'NaN', '2024-03-04 08:00');
SELECT settle('hv');
SELECT stat_date, total_consumption, total_cost, user_count, avg_consumption, max_consumption, min_consumption
FROM dws_region_daily_stats WHERE region_id = 12 ORDER BY stat_date;
-- the extreme goes: MIN and MAX follow
DELETE FROM power_consumption WHERE consumption_id IN (12, 13);
UPDATE power_consumption SET consumption_cost = 1.00 WHERE consumption_id = 14;
SELECT settle('hv');
SELECT stat_date, total_consumption, total_cost, max_consumption, min_consumption
FROM dws_region_daily_stats WHERE region_id = 12 ORDER BY stat_date;

-- ---- readings of users that do not exist (yet, or any more) -------------------------------------
-- unknown user 77: the DWD's defaults ('未知用户', region 0 '未知地区', '未知')
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (20, 77, 3.00, 1.50, '2024-03-05 08:00'), (21, 77, 4.00, 2.00, '2024-03-05 09:00');
SELECT settle('hv');
SELECT consumption_id, user_name, region_id, region_name, usage_type FROM dwd_power_consumption_detail
WHERE user_id = 77 ORDER BY consumption_id;
-- the user arrives: the readings move to the user's region, in the DWD and the DWS
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name) VALUES (77, '迟到', '商业', 44, '广东');
SELECT settle('hv');
SELECT consumption_id, user_name, region_id, region_name, usage_type FROM dwd_power_consumption_detail
WHERE user_id = 77 ORDER BY consumption_id;
SELECT region_id, stat_date, total_consumption, user_count FROM dws_region_daily_stats
WHERE stat_date = '2024-03-05' ORDER BY region_id;
-- the user goes again: back to the defaults
DELETE FROM power_user WHERE user_id = 77;
SELECT settle('hv');
SELECT region_id, stat_date, total_consumption, user_count FROM dws_region_daily_stats
WHERE stat_date = '2024-03-05' ORDER BY region_id;
-- a reading re-assigned from an unknown user to a known one, and to NULL
UPDATE power_consumption SET user_id = 3 WHERE consumption_id = 20;
UPDATE power_consumption SET user_id = NULL WHERE consumption_id = 21;
SELECT settle('hv');

-- ---- TRUNCATE of one source, of the other, of both ---------------------------------------------
SELECT count(*) AS readings_before FROM dwd_power_consumption_detail;
TRUNCATE power_user;                       -- every reading becomes one of an unknown user
SELECT settle('hv');
SELECT (SELECT count(*) FROM dwd_power_user_info) AS users,
       (SELECT count(*) FROM dwd_power_consumption_detail) AS readings,
       (SELECT count(DISTINCT region_id) FROM dwd_power_consumption_detail) AS regions;
INSERT INTO power_user (user_id, user_name, region_id, region_name) VALUES (3, '负数', 12, '天津');
SELECT settle('hv');
TRUNCATE power_consumption;                -- the detail and both DWS tables empty, the users stay
SELECT settle('hv');
SELECT (SELECT count(*) FROM dwd_power_user_info) AS users,
       (SELECT count(*) FROM dwd_power_consumption_detail) AS readings,
       (SELECT count(*) FROM dws_region_daily_stats) AS daily_stats,
       (SELECT count(*) FROM dws_user_ranking) AS rankings;
-- TRUNCATE and new rows in one transaction, then both tables at once
BEGIN;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES (30, 3, 1.00, '2024-03-06');
TRUNCATE power_consumption;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date) VALUES (31, 3, 2.00, '2024-03-06');
COMMIT;
SELECT settle('hv');
SELECT consumption_id, consumption_amount FROM dwd_power_consumption_detail;
TRUNCATE power_consumption, power_user;
SELECT settle('hv');
SELECT view_name, stategrid_ivm.view_rows(view_name::regclass) AS rows FROM stategrid_ivm.views WHERE pipeline = 'hv' ORDER BY view_name;

-- ---- a SUM too big for a narrower pre-created DWS column ----------------------------------------
-- The original example's sink tables were created first, with fixed precisions; adopted tables
-- keep their types. Overflowing one stops the pipeline with an error that names the table,
-- applies nothing, and the pipeline goes on once the column is widened.
INSERT INTO power_user (user_id, user_name, region_id, region_name) VALUES (5, '大户', 21, '辽宁');
CREATE TABLE daily_total (
    stats_id bigserial PRIMARY KEY,
    stat_date date,
    total_consumption decimal(10,2),   -- room for 99999999.99 a day
    readings int
);
SELECT stategrid_ivm.add_view('hv', 'daily_total', $q$
    SELECT consumption_date::date AS stat_date, sum(consumption_amount) AS total_consumption, count(*) AS readings
    FROM dwd_power_consumption_detail GROUP BY consumption_date::date $q$);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (40, 5, 60000000.00, '2024-03-07 08:00');
SELECT settle('hv');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (41, 5, 60000000.00, '2024-03-07 09:00');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'hv'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'hv';
-- nothing of the failing transaction was applied, not even to the tables below the view
SELECT count(*) AS mirrored FROM ods_power_consumption WHERE consumption_id = 41;
SELECT count(*) AS detailed FROM dwd_power_consumption_detail WHERE consumption_id = 41;
SELECT stat_date, total_consumption, readings FROM daily_total;
-- widen the column: the next attempt applies it
ALTER TABLE daily_total ALTER total_consumption TYPE decimal(15,2);
SELECT stategrid_ivm.resume_pipeline('hv');
SELECT settle('hv');
SELECT stat_date, total_consumption, readings FROM daily_total;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'hv';

-- The same overflow met by the initial copy (backfill) names the view too.
CREATE TABLE narrow_copy (stat_date date, total_consumption decimal(10,2));
SELECT stategrid_ivm.create_pipeline('hv_backfill');
SELECT stategrid_ivm.add_source('hv_backfill', 'power_consumption', 'hostile_values.backfill_consumption');
SELECT stategrid_ivm.add_view('hv_backfill', 'narrow_copy', $q$
    SELECT consumption_date::date AS stat_date, sum(consumption_amount) AS total_consumption
    FROM backfill_consumption GROUP BY consumption_date::date $q$);
SELECT stategrid_ivm.start_pipeline('hv_backfill');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'hv_backfill'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'hv_backfill';
ALTER TABLE narrow_copy ALTER total_consumption TYPE numeric;
SELECT stategrid_ivm.resume_pipeline('hv_backfill');
SELECT settle('hv_backfill');
SELECT * FROM narrow_copy;

SELECT stategrid_ivm.drop_pipeline('hv_backfill', drop_tables => true);
SELECT stategrid_ivm.drop_pipeline('hv', drop_tables => true);
DROP SCHEMA hostile_values CASCADE;
