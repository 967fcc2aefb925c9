-- Issue 16: aggregates without GROUP BY (one row, also over an empty input) and DISTINCT over one
-- input (GROUP BY the columns, a row while its count is positive), on the differential engine.
-- Every view is registered with the query it must equal (over the ODS mirror, or the view it
-- reads); after each change -- its own source transaction -- step() waits for the worker, runs
-- verify() and compares every view with its query run now, row for row AS TEXT (EXCEPT ALL both
-- ways): 'ok' or what differs.
--
-- Covered: count(*), count(x), sum/avg of int and numeric(p,s), min/max of int/numeric/text/date,
-- count(DISTINCT x) without GROUP BY, with WHERE, with HAVING (shown and not shown aggregates),
-- expressions over them; DISTINCT of one column, several, with NULLs, of expressions, with
-- WHERE, over a view. Edges: duplicates, NULLs, the extreme deleted (and its tie), a distinct
-- value's last copy leaving and coming back, every row deleted then refilled, a batch with a
-- TRUNCATE between inserts, TRUNCATE; the refusals of what stays unsupported.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_ops_aggregate;
SET search_path = view_ops_aggregate, public;

CREATE TABLE item (id int PRIMARY KEY, k int, x int, amount numeric(10,2), tag text, at date, cat int, ratio float8);
CREATE TABLE cat (id int PRIMARY KEY, name text);
INSERT INTO cat VALUES (1, 'red'), (2, 'blue'), (3, NULL);
INSERT INTO item VALUES
    (1, 1, 5,    10.00, 'a',  '2024-07-01', 1, 0.5),
    (2, 1, 5,    10.00, 'a',  '2024-07-01', 1, 0.5),   -- a duplicate of 1 but for its key
    (3, 2, 7,     3.50, 'b',  '2024-07-02', 2, 1.25),
    (4, NULL, -2, 7.25, NULL, '2024-07-03', 3, 2),
    (5, 3, NULL,  NULL, 'c',  NULL,         NULL, NULL);

SELECT stategrid_ivm.create_pipeline('vops_agg');
SELECT stategrid_ivm.add_source('vops_agg', 'item') IS NOT NULL AS added;
SELECT stategrid_ivm.add_source('vops_agg', 'cat') IS NOT NULL AS added;

-- Each view and the query it must equal.
CREATE TABLE expectation (view_name text PRIMARY KEY, query text NOT NULL);
CREATE FUNCTION add(name text, query text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM stategrid_ivm.add_view('vops_agg', name, query);
    INSERT INTO expectation VALUES (name, query);
END
$$;

CREATE FUNCTION step() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
    r record;
    n bigint;
BEGIN
    PERFORM stategrid_ivm.sync('vops_agg');
    SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '
                      ORDER BY view_name)
    INTO bad FROM stategrid_ivm.verify('vops_agg') WHERE NOT ok;
    FOR r IN SELECT * FROM expectation ORDER BY view_name LOOP
        EXECUTE format('SELECT count(*) FROM ((SELECT v::text FROM %1$I v EXCEPT ALL SELECT q::text FROM (%2$s) q)'
                       ' UNION ALL (SELECT q::text FROM (%2$s) q EXCEPT ALL SELECT v::text FROM %1$I v)) d',
                       r.view_name, r.query)
        INTO n;
        IF n <> 0 THEN
            bad := concat_ws('; ', bad, format('%s differs from its query in %s rows', r.view_name, n));
        END IF;
    END LOOP;
    RETURN coalesce('NOT OK: ' || bad, 'ok');
END
$$;

-- a projection view (fact to dimension) for the operators over a view
SELECT add('item_cat', $q$
    SELECT i.id, i.x, i.tag, c.name FROM ods_item i LEFT JOIN ods_cat c ON c.id = i.cat$q$);

-- ---- aggregates without GROUP BY ---------------------------------------------------------------
SELECT add('agg_all', $q$
    SELECT count(*) AS n, count(x) AS n_x, sum(x) AS s, avg(x) AS a, min(x) AS lo, max(x) AS hi,
           count(DISTINCT tag) AS d, sum(amount) AS s_amount, avg(amount) AS a_amount,
           min(amount) AS lo_amount, max(tag) AS last_tag, min(at) AS first_at
    FROM ods_item$q$);
SELECT add('agg_count', 'SELECT count(*) AS n FROM ods_item');
SELECT add('agg_where', $q$
    SELECT count(*) AS n, sum(x) AS s, min(amount) AS lo, max(amount) AS hi, count(DISTINCT k) AS d
    FROM ods_item WHERE x > 0 AND tag IS DISTINCT FROM 'skip'$q$);
SELECT add('agg_having', 'SELECT count(*) AS n, sum(x) AS s FROM ods_item HAVING count(*) > 0');
-- HAVING over an aggregate the view does not show
SELECT add('agg_having_hidden', 'SELECT max(x) - min(x) AS spread FROM ods_item HAVING sum(x) > 10');
SELECT add('agg_exprs', $q$
    SELECT coalesce(sum(x), 0) * 2 + count(*) AS score, CASE WHEN count(*) = 0 THEN 'empty' ELSE 'rows' END AS state,
           round(avg(amount), 1) AS r_avg, count(*) > 3 AS many, max(x) - min(x) AS spread
    FROM ods_item$q$);
SELECT add('agg_over_view', 'SELECT count(*) AS n, count(DISTINCT name) AS names, max(x) AS hi FROM item_cat');

-- ---- DISTINCT ----------------------------------------------------------------------------------
SELECT add('dist_one', 'SELECT DISTINCT k FROM ods_item');
SELECT add('dist_two', 'SELECT DISTINCT k, tag FROM ods_item');
SELECT add('dist_expr', 'SELECT DISTINCT x % 3 AS r, upper(tag) AS t FROM ods_item');
SELECT add('dist_where', 'SELECT DISTINCT tag FROM ods_item WHERE x > 0');
SELECT add('dist_over_view', 'SELECT DISTINCT name FROM item_cat');

-- ---- without a delta rule: every change recomputes the one row, and add_view says so ------------
SET client_min_messages = notice;
SELECT add('agg_float', 'SELECT sum(ratio) AS s, count(*) AS n FROM ods_item');
SET client_min_messages = warning;

SELECT regexp_replace(view_name, '^view_ops_aggregate\.', '') AS view_name, kind, strategy, strategy_reason
FROM stategrid_ivm.views WHERE pipeline = 'vops_agg' AND kind <> 'ods' ORDER BY 1;
-- the view's key: the distinct columns (and none for a single row)
SELECT c.relname, pg_get_indexdef(i.indexrelid) ~ 'UNIQUE' AS is_unique,
       array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             ORDER BY array_position(i.indkey::int2[], a.attnum)) AS key
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'view_ops_aggregate'::regnamespace AND (c.relname LIKE 'dist\_%' OR c.relname LIKE 'agg\_%')
  AND i.indisunique ORDER BY 1;

SELECT stategrid_ivm.start_pipeline('vops_agg');
SELECT step();
SELECT * FROM agg_all;
SELECT * FROM dist_two ORDER BY k, tag;

-- ---- the stream: each statement is its own source transaction -----------------------------------
-- duplicates: a third copy of rows 1/2, then two of the three go
INSERT INTO item VALUES (6, 1, 5, 10.00, 'a', '2024-07-01', 1, 0.5);
SELECT step();
DELETE FROM item WHERE id IN (1, 6);
SELECT step();
SELECT * FROM dist_one ORDER BY k;
-- NULLs: a row of NULLs, a NULL key and tag beside existing ones
INSERT INTO item (id) VALUES (7);
SELECT step();
INSERT INTO item VALUES (8, NULL, 9, 1.00, NULL, '2024-06-30', 2, 1);
SELECT step();
SELECT * FROM dist_two ORDER BY k, tag;
-- the extremes: the maximum gets a tie, one copy goes, then the other; the minimum is raised
INSERT INTO item VALUES (9, 4, 9, 11.00, 'z', '2024-07-09', 1, 1);
SELECT step();
DELETE FROM item WHERE id = 8;
SELECT step();
SELECT lo, hi, lo_amount, last_tag, first_at FROM agg_all;
DELETE FROM item WHERE id = 9;
SELECT step();
SELECT lo, hi, lo_amount, last_tag, first_at FROM agg_all;
UPDATE item SET x = 6 WHERE id = 4;
SELECT step();
SELECT lo, hi FROM agg_all;
-- a distinct value's last copy leaves (by update, then by delete) and comes back
UPDATE item SET tag = 'b2' WHERE id = 3;
SELECT step();
SELECT d FROM agg_all;
SELECT * FROM dist_where ORDER BY tag;
UPDATE item SET tag = 'b' WHERE id = 3;
SELECT step();
DELETE FROM item WHERE id = 5;
SELECT step();
SELECT * FROM dist_one ORDER BY k;
INSERT INTO item VALUES (5, 3, NULL, NULL, 'c', NULL, NULL, NULL);
SELECT step();
-- HAVING flips: the hidden sum crosses 10 downwards, then upwards
SELECT * FROM agg_having_hidden;
UPDATE item SET x = -20 WHERE id = 4;
SELECT step();
SELECT count(*) AS rows_having_hidden FROM agg_having_hidden;
UPDATE item SET x = 6 WHERE id = 4;
SELECT step();
SELECT * FROM agg_having_hidden;
-- a row leaves the WHERE and comes back
UPDATE item SET tag = 'skip' WHERE id = 2;
SELECT step();
SELECT * FROM agg_where;
UPDATE item SET tag = 'a' WHERE id = 2;
SELECT step();
-- the dimension changes under the view over a view
UPDATE cat SET name = 'blue' WHERE id = 1;
SELECT step();
SELECT * FROM dist_over_view ORDER BY name;
UPDATE cat SET name = 'red' WHERE id = 1;
SELECT step();
-- every row deleted: one row of count 0 and NULL sums, no row under HAVING, no distinct row
DELETE FROM item;
SELECT step();
SELECT * FROM agg_all;
SELECT * FROM agg_exprs;
SELECT (SELECT count(*) FROM agg_having) AS having_rows, (SELECT count(*) FROM dist_one) AS distinct_rows;
-- and refilled
INSERT INTO item VALUES (1, 1, 3, 2.50, 'a', '2024-07-01', 1, 0.25), (2, 1, 3, 2.50, 'a', '2024-07-01', 1, 0.25),
                        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
SELECT step();
SELECT * FROM agg_all;
SELECT * FROM agg_having;
-- several changes in one transaction: insert, update, delete of the same rows
BEGIN;
INSERT INTO item VALUES (10, 7, 100, 99.99, 'q', '2024-08-01', 2, 1);
UPDATE item SET x = -100, tag = 'r' WHERE id = 10;
INSERT INTO item VALUES (11, 8, 200, 0.01, 'q', '2024-08-02', 2, 1);
DELETE FROM item WHERE id = 11;
UPDATE item SET x = x + 1 WHERE k = 1;
COMMIT;
SELECT step();
SELECT lo, hi, d FROM agg_all;
-- one batch of several transactions (paused, then resumed): rows come, a TRUNCATE takes them
-- (the extremes with them), and others come
SELECT stategrid_ivm.pause_pipeline('vops_agg');
INSERT INTO item VALUES (20, 9, 1000, 500.00, 'zz', '2030-01-01', 3, 1);
INSERT INTO item VALUES (21, 9, -1000, 0.00, 'aa', '2000-01-01', 3, 1);
TRUNCATE item;
INSERT INTO item VALUES (22, 5, 4, 4.00, 'm', '2024-07-05', 1, 1), (23, 5, 4, 4.00, 'm', '2024-07-05', 1, 1);
SELECT stategrid_ivm.resume_pipeline('vops_agg');
SELECT step();
SELECT * FROM agg_all;
-- TRUNCATE alone, then rows come back in bulk and change
TRUNCATE item;
SELECT step();
SELECT n, s, lo, hi, d FROM agg_all;
SELECT (SELECT count(*) FROM agg_having) AS having_rows, (SELECT count(*) FROM dist_two) AS distinct_rows;
INSERT INTO item SELECT i, i % 5, CASE WHEN i % 7 = 0 THEN NULL ELSE i % 11 - 4 END, (i % 13) * 1.25,
                        CASE WHEN i % 6 = 0 THEN NULL ELSE 't' || (i % 4) END, date '2024-07-01' + i % 9, i % 4, i % 3
FROM generate_series(1, 80) i;
SELECT step();
DELETE FROM item WHERE id % 3 = 0;
SELECT step();
UPDATE item SET k = CASE WHEN k IS NULL THEN 9 WHEN id % 2 = 0 THEN NULL ELSE k END, x = x - 1, tag = upper(tag);
SELECT step();
SELECT * FROM agg_all;
-- a batch large against the views (10,000 rows and more) replaces their rows instead of diffing them
INSERT INTO item SELECT i, i % 50, i % 1000 - 500, (i % 400) * 0.25, 'b' || (i % 30), date '2024-01-01' + i % 200, i % 4, 1
FROM generate_series(1000, 11999) i;
SELECT step();
SELECT n, s, lo, hi, d FROM agg_all;
DELETE FROM item WHERE id >= 1000;
SELECT step();
SELECT n, s, lo, hi, d FROM agg_all;
-- the state of a view without GROUP BY stays one row; a DISTINCT view's holds its rows
CREATE FUNCTION state_rows(v regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM view_ops_aggregate.%I', 'sgivm_state_' || v::oid) INTO n;
    RETURN n;
END
$$;
SELECT state_rows('agg_all') AS agg_all, state_rows('agg_having_hidden') AS agg_having_hidden,
       state_rows('dist_two') = (SELECT count(*) FROM dist_two) AS dist_two;

-- ---- what stays refused, naming the construct -------------------------------------------------
SELECT stategrid_ivm.add_view('vops_agg', 'r_1', 'SELECT DISTINCT sum(x) AS s FROM ods_item GROUP BY k');
SELECT stategrid_ivm.add_view('vops_agg', 'r_2', 'SELECT DISTINCT count(*) AS n FROM ods_item');
-- (DISTINCT over a join: over a view of its own input, sql/view_ops_compose.sql)
SELECT stategrid_ivm.add_view('vops_agg', 'r_5', 'SELECT DISTINCT tag, now() AS etl_time FROM ods_item');

SELECT stategrid_ivm.drop_pipeline('vops_agg', true);
SELECT count(*) AS state_tables_left FROM pg_class WHERE relname LIKE 'sgivm%' AND relnamespace = 'view_ops_aggregate'::regnamespace;
DROP SCHEMA view_ops_aggregate CASCADE;
