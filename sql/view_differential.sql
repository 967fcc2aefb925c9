-- Issue 15, item 4: the aggregate operator's delta rules against scoped recomputation. Every
-- aggregate query is maintained twice over the same input: once planned with
-- stategrid_ivm.view_strategy = 'recompute' (name ending _r: the touched groups recomputed from
-- the input, the engine before delta rules) and once with 'auto' (ending _a: kept state and
-- signed deltas). After each change -- its own source transaction -- step() waits for the worker,
-- runs verify() (every view against a full recomputation) and compares each pair of views row
-- for row as text (EXCEPT ALL both ways); it prints 'ok' or what differs.
--
-- Covered: count(*), count(x), sum/avg of int2/int4/int8 and numeric(p,s), round(avg), min/max
-- of numeric(p,s)/int/text/date, count(DISTINCT x), HAVING (also on an aggregate it does not
-- show), expressions over aggregates and group columns, a GROUP BY expression, NULL group keys
-- and arguments, WHERE, an aggregate over a projection view (DWD-like); duplicates, groups
-- emptied and refilled, extremes deleted (and their ties), rows moving between groups, distinct
-- values leaving and coming back, HAVING flipping, sums back to zero, NaN, avg rounding, a batch
-- of several transactions with a TRUNCATE between inserts, TRUNCATE; the fallbacks and their
-- reasons; refresh_view of a damaged state; drop_view dropping the kept state.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_differential;
SET search_path = view_differential, public;

CREATE FUNCTION step(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
    r record;
    n bigint;
BEGIN
    PERFORM stategrid_ivm.sync(p);
    SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '
                      ORDER BY view_name)
    INTO bad FROM stategrid_ivm.verify(p) WHERE NOT ok;
    FOR r IN SELECT left(v.view_name, -2) AS base FROM stategrid_ivm.views v
             WHERE v.pipeline = p AND v.view_name LIKE '%\_a'
               AND to_regclass(left(v.view_name, -2) || '_r') IS NOT NULL ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM ((SELECT t::text FROM %1$s_r t EXCEPT ALL SELECT t::text FROM %1$s_a t)'
                       ' UNION ALL (SELECT t::text FROM %1$s_a t EXCEPT ALL SELECT t::text FROM %1$s_r t)) d', r.base)
        INTO n;
        IF n <> 0 THEN
            bad := concat_ws('; ', bad, format('%s_r and _a differ in %s rows', r.base, n));
        END IF;
    END LOOP;
    RETURN coalesce('NOT OK: ' || bad, 'ok');
END
$$;

CREATE TABLE reading (
    id int PRIMARY KEY,
    meter int,
    grp text,
    qty int,
    small int2,
    big bigint,
    amount numeric(10,2),
    tag text,
    at date,
    ratio float8
);
CREATE TABLE dev (id int PRIMARY KEY, region int, name text);
INSERT INTO dev VALUES (1, 10, 'north'), (2, 10, 'south'), (3, 20, 'east');
INSERT INTO reading VALUES
    (1, 1, 'a',    5,  1, 9000000000000000000, 10.00, 't1', '2024-07-01', 0.5),
    (2, 1, 'a',    5,  1, 9000000000000000000, 10.00, 't1', '2024-07-01', 0.5),  -- a duplicate of 1
    (3, 2, 'a',    7,  2, 1,                     3.50, 't2', '2024-07-01', 1.25),
    (4, 2, 'b',    1,  3, 2,                     3.50, NULL, '2024-07-02', 2),
    (5, 3, NULL,   2, -4, -3,                    7.25, 't3', '2024-07-02', NULL),  -- a NULL group
    (6, NULL, 'b', NULL, NULL, NULL,             NULL, 't1', NULL, 0),
    (7, 9, 'c',    4,  5, 4,                     1.00, 't4', '2024-07-03', -1);    -- meter 9: no dev

SELECT stategrid_ivm.create_pipeline('vdiff');
SELECT stategrid_ivm.add_source('vdiff', 'reading') IS NOT NULL AS added;
SELECT stategrid_ivm.add_source('vdiff', 'dev') IS NOT NULL AS added;
-- the DWD-like projection the last pair aggregates over, in a table made beforehand with a primary
-- key (a view grouped by it may read the other columns: functionally dependent)
CREATE TABLE d_reading (id int PRIMARY KEY, meter int, region int, dev_name text, amount numeric(10,2), qty int, tag text);
SELECT stategrid_ivm.add_view('vdiff', 'd_reading', $q$
    SELECT r.id, r.meter, coalesce(d.region, 0) AS region, coalesce(d.name, '?') AS dev_name, r.amount, r.qty, r.tag
    FROM ods_reading r LEFT JOIN ods_dev d ON d.id = r.meter$q$) IS NOT NULL AS added;

-- Each query twice: add_pair(name, query) adds name_r under 'recompute' and name_a under 'auto'.
CREATE FUNCTION add_pair(name text, query text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('stategrid_ivm.view_strategy', 'recompute', true);
    PERFORM stategrid_ivm.add_view('vdiff', name || '_r', query);
    PERFORM set_config('stategrid_ivm.view_strategy', 'auto', true);
    PERFORM stategrid_ivm.add_view('vdiff', name || '_a', query);
END
$$;
-- counts, sums and averages of every exact type; NULL group keys
SELECT add_pair('agg_sums', $q$
    SELECT grp, count(*) AS n, count(qty) AS n_qty, sum(qty) AS s_qty, sum(small) AS s_small, sum(big) AS s_big,
           sum(amount) AS s_amount, avg(qty) AS a_qty, avg(small) AS a_small, avg(big) AS a_big,
           avg(amount) AS a_amount, round(avg(amount), 2) AS r_amount
    FROM ods_reading GROUP BY grp$q$);
-- extremes over two group columns (either may be NULL), of several types
SELECT add_pair('agg_extremes', $q$
    SELECT meter, at, min(amount) AS lo, max(amount) AS hi, min(qty) AS lo_qty, max(tag) AS last_tag,
           min(at) AS first_at, count(*) AS n
    FROM ods_reading GROUP BY meter, at$q$);
SELECT add_pair('agg_distinct', $q$
    SELECT grp, count(DISTINCT tag) AS tags, count(DISTINCT qty) AS qtys, count(DISTINCT amount) AS amounts, count(*) AS n
    FROM ods_reading GROUP BY grp$q$);
-- HAVING, also over an aggregate the view does not show
SELECT add_pair('agg_having', $q$
    SELECT meter, sum(qty) AS total, count(*) AS n
    FROM ods_reading GROUP BY meter HAVING sum(qty) > 10 OR count(DISTINCT tag) >= 3$q$);
-- expressions over aggregates and group columns, a GROUP BY expression
SELECT add_pair('agg_exprs', $q$
    SELECT qty % 3 AS bucket, grp, upper(grp) || '/' || (qty % 3)::text AS label, sum(amount) * 2 + count(*) AS score,
           coalesce(max(amount) - min(amount), -1) AS spread,
           CASE WHEN count(tag) = 0 THEN 'none' ELSE 'some' END AS tagged
    FROM ods_reading GROUP BY qty % 3, grp$q$);
SELECT add_pair('agg_where', $q$
    SELECT grp, count(*) AS n, sum(qty) AS s, min(amount) AS lo, count(DISTINCT tag) AS tags
    FROM ods_reading WHERE qty > 0 AND tag IS DISTINCT FROM 't4' GROUP BY grp$q$);
-- over a view
SELECT add_pair('agg_dwd', $q$
    SELECT region, dev_name, count(*) AS n, sum(amount) AS total, max(amount) AS hi, min(qty) AS lo,
           count(DISTINCT meter) AS meters, avg(qty) AS a_qty
    FROM d_reading GROUP BY region, dev_name$q$);

-- Without a delta rule: recomputed under 'auto' too, and add_view says why in a NOTICE.
SET client_min_messages = notice;
SELECT stategrid_ivm.add_view('vdiff', 'fb_rank_a', $q$
    SELECT grp, at, sum(qty) AS total, rank() OVER (PARTITION BY at ORDER BY sum(qty) DESC NULLS LAST) AS rk
    FROM ods_reading GROUP BY grp, at$q$) IS NOT NULL AS added;
SET client_min_messages = warning;
SELECT stategrid_ivm.add_view('vdiff', 'fb_filter_a',
    'SELECT grp, count(*) FILTER (WHERE qty > 2) AS big_ones FROM ods_reading GROUP BY grp') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vdiff', 'fb_float_a',
    'SELECT grp, sum(ratio) AS s FROM ods_reading GROUP BY grp') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vdiff', 'fb_numeric_a',
    'SELECT grp, sum(amount * 1.5) AS s FROM ods_reading GROUP BY grp') IS NOT NULL AS added;
-- (a column functionally dependent on the grouped primary key has no delta rule either, but such a
-- view is refused today: its recomputation reads the input through a CTE, which has no key)
SELECT stategrid_ivm.add_view('vdiff', 'fb_dependent_a',
    'SELECT id, dev_name, count(*) AS n FROM d_reading GROUP BY id') IS NOT NULL AS added;
-- equal values that print differently (0 and -0): a kept extreme or key would keep an old image
SELECT stategrid_ivm.add_view('vdiff', 'fb_image_a',
    'SELECT grp, min(ratio) AS lo, max(ratio) AS hi FROM ods_reading GROUP BY grp') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vdiff', 'fb_image_key_a',
    'SELECT ratio, count(*) AS n FROM ods_reading GROUP BY ratio') IS NOT NULL AS added;

SELECT regexp_replace(view_name, '^view_differential\.', '') AS view_name, strategy, strategy_reason
FROM stategrid_ivm.views WHERE pipeline = 'vdiff' AND kind <> 'ods' ORDER BY 1;

SELECT stategrid_ivm.start_pipeline('vdiff');
SELECT count(*) AS compared_pairs FROM stategrid_ivm.views
WHERE pipeline = 'vdiff' AND view_name LIKE '%\_a' AND to_regclass(left(view_name, -2) || '_r') IS NOT NULL;
SELECT step('vdiff');
SELECT * FROM agg_sums_a ORDER BY grp;

-- ---- the stream: each statement is its own source transaction --------------------------------
-- duplicates: two more rows equal to 1 and 2 but for their key, then one of the three goes
INSERT INTO reading SELECT 10 + id, meter, grp, qty, small, big, amount, tag, at, ratio FROM reading WHERE id IN (1, 2);
SELECT step('vdiff');
DELETE FROM reading WHERE id = 11;
SELECT step('vdiff');
-- NULL arguments: a group whose values are all NULL (sums and averages NULL, counts 0)
INSERT INTO reading (id, meter, grp, at) VALUES (20, 3, 'n', '2024-07-04'), (21, 3, 'n', '2024-07-04');
SELECT step('vdiff');
SELECT grp, n, n_qty, s_qty, s_amount, a_qty, r_amount FROM agg_sums_a WHERE grp = 'n';
-- a value comes to the all-NULL group, and goes again
UPDATE reading SET qty = 3, amount = 2.00 WHERE id = 20;
SELECT step('vdiff');
UPDATE reading SET qty = NULL, amount = NULL WHERE id = 20;
SELECT step('vdiff');
-- the minimum has a tie (3.50 twice in meter 2 / 2024-07-01 after this): one of them goes, then the other
INSERT INTO reading VALUES (30, 2, 'a', 9, 1, 1, 3.50, 't5', '2024-07-01', 0.25), (31, 2, 'a', 8, 1, 1, 4.75, 't5', '2024-07-01', 0.25);
SELECT step('vdiff');
DELETE FROM reading WHERE id = 3;
SELECT step('vdiff');
SELECT meter, at, lo, hi, lo_qty, last_tag FROM agg_extremes_a WHERE meter = 2 ORDER BY at;
DELETE FROM reading WHERE id = 30;
SELECT step('vdiff');
SELECT meter, at, lo, hi, lo_qty, last_tag FROM agg_extremes_a WHERE meter = 2 ORDER BY at;
-- the maximum is lowered in place, then deleted
UPDATE reading SET amount = 0.50 WHERE id = 31;
SELECT step('vdiff');
DELETE FROM reading WHERE id = 31;
SELECT step('vdiff');
-- rows move between groups: to another group, to the NULL group, from it, and both keys at once
UPDATE reading SET grp = 'c' WHERE id = 4;
SELECT step('vdiff');
UPDATE reading SET grp = NULL, meter = NULL WHERE id = 7;
SELECT step('vdiff');
UPDATE reading SET grp = 'a' WHERE id = 5;
SELECT step('vdiff');
UPDATE reading SET meter = 1, at = '2024-07-02', grp = 'b' WHERE id = 7;
SELECT step('vdiff');
-- a group emptied (its rows deleted or moved away) and refilled
DELETE FROM reading WHERE grp = 'c';
SELECT step('vdiff');
SELECT count(*) AS c_rows FROM agg_sums_a WHERE grp = 'c';
INSERT INTO reading VALUES (40, 3, 'c', 6, 2, 5, 6.00, 't1', '2024-07-03', 1);
SELECT step('vdiff');
-- a distinct value leaves its group (the last row of it) and comes back; one goes and returns by update
DELETE FROM reading WHERE id = 6;
SELECT step('vdiff');
SELECT grp, tags, qtys, amounts, n FROM agg_distinct_a ORDER BY grp;
INSERT INTO reading VALUES (6, NULL, 'b', NULL, NULL, NULL, NULL, 't1', NULL, 0);
SELECT step('vdiff');
UPDATE reading SET tag = 't9' WHERE id = 40;
SELECT step('vdiff');
UPDATE reading SET tag = 't1' WHERE id = 40;
SELECT step('vdiff');
SELECT grp, tags, qtys, amounts, n FROM agg_distinct_a ORDER BY grp;
-- HAVING flips: meter 3's total crosses 10 upwards, then down again; three tags also pass it
SELECT meter, total, n FROM agg_having_a ORDER BY meter;
UPDATE reading SET qty = 12 WHERE id = 21;
SELECT step('vdiff');
SELECT meter, total, n FROM agg_having_a ORDER BY meter;
UPDATE reading SET qty = NULL WHERE id = 21;
SELECT step('vdiff');
UPDATE reading SET tag = 't7' WHERE id = 20;
SELECT step('vdiff');
SELECT meter, total, n FROM agg_having_a ORDER BY meter;
UPDATE reading SET tag = NULL WHERE id = 20;
SELECT step('vdiff');
-- sums back to zero (0, not NULL), avg rounding (1/3, and a half cent)
INSERT INTO reading VALUES (50, 4, 'z', 5, 7, -8, 1.25, NULL, '2024-07-05', 1), (51, 4, 'z', -5, -7, 8, -1.25, NULL, '2024-07-05', 1);
SELECT step('vdiff');
SELECT grp, s_qty, s_small, s_big, s_amount, a_qty, a_amount, r_amount FROM agg_sums_a WHERE grp = 'z';
UPDATE reading SET amount = 1.00, qty = 1 WHERE id = 50;
SELECT step('vdiff');
UPDATE reading SET amount = 1.00, qty = 1 WHERE id = 51;
SELECT step('vdiff');
INSERT INTO reading VALUES (52, 4, 'z', 2, 0, 0, 2.00, NULL, '2024-07-05', 1);
SELECT step('vdiff');
SELECT grp, s_qty, a_qty, a_amount, r_amount FROM agg_sums_a WHERE grp = 'z';
UPDATE reading SET amount = 0.01 WHERE id = 50;
UPDATE reading SET amount = 0.02 WHERE id = 51;
DELETE FROM reading WHERE id = 52;
SELECT step('vdiff');
SELECT grp, a_amount, r_amount FROM agg_sums_a WHERE grp = 'z';
-- NaN in a numeric(10,2): sums and averages are NaN while it is held, and not after
INSERT INTO reading VALUES (53, 4, 'z', 1, 1, 1, 'NaN', NULL, '2024-07-05', 1);
SELECT step('vdiff');
SELECT grp, s_amount, a_amount FROM agg_sums_a WHERE grp = 'z';
DELETE FROM reading WHERE id = 53;
SELECT step('vdiff');
SELECT grp, s_amount, a_amount FROM agg_sums_a WHERE grp = 'z';
-- 0, then -0 (equal, printed apart): the query prints the one it reads last as min() or max(),
-- and as the key of group 0 the one it reads first, which kept state would not follow
INSERT INTO reading VALUES (55, 4, 'z', 1, 1, 1, 1.00, NULL, '2024-07-05', 0);
SELECT step('vdiff');
INSERT INTO reading VALUES (54, 4, 'z', 1, 1, 1, 1.00, NULL, '2024-07-05', '-0');
SELECT step('vdiff');
BEGIN;
UPDATE reading SET ratio = 1 WHERE id = 6;
DELETE FROM reading WHERE id = 55;
COMMIT;
SELECT step('vdiff');
SELECT ratio, n FROM fb_image_key_a WHERE ratio = 0;
DELETE FROM reading WHERE id = 54;
SELECT step('vdiff');
-- several changes in one transaction: insert, update, delete of the same rows
BEGIN;
INSERT INTO reading VALUES (60, 1, 'y', 3, 1, 1, 9.99, 't1', '2024-07-06', 1);
UPDATE reading SET amount = 0.01, grp = 'a' WHERE id = 60;
INSERT INTO reading VALUES (61, 1, 'y', 4, 1, 1, 8.88, 't2', '2024-07-06', 1);
DELETE FROM reading WHERE id = 61;
UPDATE reading SET qty = qty + 1 WHERE grp = 'a';
COMMIT;
SELECT step('vdiff');
-- a dimension change moves readings between the groups of the view over the view
UPDATE dev SET region = 20, name = 'east' WHERE id = 1;
SELECT step('vdiff');
DELETE FROM dev WHERE id = 3;
SELECT step('vdiff');
INSERT INTO dev VALUES (3, 30, 'west'), (9, 30, 'west');
SELECT step('vdiff');
SELECT region, dev_name, n, total, hi, lo, meters FROM agg_dwd_a ORDER BY region, dev_name;
-- one batch of several transactions (paused, then resumed): a new group gets rows, loses them
-- to a TRUNCATE, and gets others; an existing group is emptied and refilled the same way
SELECT stategrid_ivm.pause_pipeline('vdiff');
INSERT INTO reading VALUES (70, 5, 'new', 1, 1, 1, 0.10, 't1', '2024-07-07', 1);
INSERT INTO reading VALUES (71, 5, 'new', 2, 1, 1, 0.20, 't2', '2024-07-07', 1);
TRUNCATE reading;
INSERT INTO reading VALUES (72, 5, 'new', 3, 1, 1, 0.30, 't3', '2024-07-07', 1), (1, 1, 'a', 5, 1, 1, 10.00, 't1', '2024-07-01', 0.5);
SELECT stategrid_ivm.resume_pipeline('vdiff');
SELECT step('vdiff');
SELECT meter, at, lo, hi, lo_qty, last_tag, first_at, n FROM agg_extremes_a ORDER BY meter, at;
-- TRUNCATE alone: every group goes; then rows come back
TRUNCATE reading;
SELECT step('vdiff');
SELECT (SELECT count(*) FROM agg_sums_a) AS sums_rows, (SELECT count(*) FROM agg_dwd_a) AS dwd_rows;
INSERT INTO reading SELECT i, i % 4, CASE WHEN i % 5 = 0 THEN NULL ELSE 'g' || (i % 3) END, i % 7 - 3, i % 5, i,
                           (i % 11) * 1.25, 't' || (i % 4), date '2024-07-01' + i % 3, i % 2
FROM generate_series(1, 60) i;
SELECT step('vdiff');
DELETE FROM reading WHERE id % 3 = 0;
SELECT step('vdiff');
UPDATE reading SET grp = CASE WHEN grp IS NULL THEN 'g9' WHEN id % 2 = 0 THEN NULL ELSE grp END, amount = amount + 1;
SELECT step('vdiff');

-- ---- refresh_view fills the kept state again --------------------------------------------------
-- damage a differential view and its state the way only a superuser can (guard triggers off)
DO $$
BEGIN
    SET LOCAL session_replication_role = replica;
    EXECUTE format('UPDATE %I.%I SET sgivm_n = sgivm_n + 5',
                   'view_differential', 'sgivm_state_' || 'agg_sums_a'::regclass::oid);
    UPDATE agg_sums_a SET n = n + 5;
END
$$;
SELECT view_name, ok FROM stategrid_ivm.verify('vdiff') WHERE NOT ok;
SELECT stategrid_ivm.refresh_view('agg_sums_a') > 0 AS refreshed;
SELECT step('vdiff');
-- and the next changes are folded into the refilled state
DELETE FROM reading WHERE id % 4 = 1;
SELECT step('vdiff');

-- ---- drop_view(..., true) drops the kept state with the view ----------------------------------
SELECT 'agg_where_a'::regclass::oid AS dropped \gset
CREATE VIEW engine_relations AS
SELECT regexp_replace(c.relname, :'dropped', '<view>') AS relation, c.relkind, n.nspname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname ~ ('^sgivm_.*_' || :'dropped' || '(_|$)') AND n.nspname !~ '^pg_temp';
SELECT * FROM engine_relations ORDER BY relation;
SELECT stategrid_ivm.drop_view('agg_where_a', true);
SELECT count(*) AS left_behind FROM engine_relations;
SELECT to_regclass('agg_where_a') IS NULL AS dropped;
INSERT INTO reading VALUES (100, 1, 'g1', 5, 1, 1, 2.00, 't1', '2024-07-01', 1);
SELECT step('vdiff');

SELECT stategrid_ivm.drop_pipeline('vdiff', true);
SELECT count(*) AS state_tables_left FROM pg_class WHERE relname LIKE 'sgivm%' AND relnamespace = 'view_differential'::regnamespace;
DROP SCHEMA view_differential CASCADE;
