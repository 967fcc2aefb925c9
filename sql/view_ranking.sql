-- Issue 15, item 4: rankings and top-N maintained by delta rules (the range between a changed
-- group's old and new positions, re-ranked over the aggregate's kept state; a top-N's first N
-- read from that state per touched partition) agree with scoped recomputation over the same
-- stream, and with a full recomputation (verify()).
--
-- Every ranking and top-N is added twice: `_r` planned with stategrid_ivm.view_strategy =
-- 'recompute' (the touched partitions recomputed from the input), `_a` with the default (delta
-- rules). Over a projection (v_detail, DWD-like) and over an aggregate view (v_total): row_number
-- with a unique tiebreak, row_number without one (only over max(id), which never ties: with
-- ties, row_number's numbering is arbitrary in PostgreSQL itself, so no two computations need
-- agree), rank() with many ties, ASC / DESC, NULLS FIRST / LAST, NULL sums (groups whose values
-- are all NULL), NULL partitions and NULL group columns, two partition columns, an expression
-- over aggregates as a key; top-N with row_number and rank, N = 1 and N = 3, by <= and by <.
-- Then a stream of changes, each its own transaction; after each one: sync, verify() of every
-- table, and each `_a` view against its `_r` twin (EXCEPT ALL both ways, without the audit
-- column). Only counts and booleans are printed.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_ranking;
SET search_path = view_ranking, public;

-- sync, then verify(): 'ok', or the tables that differ from their recomputation
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

-- Each `_a` view against its `_r` twin, rows as jsonb without the audit column: 'agree', or the
-- pairs that differ (rows only in one, only in the other).
CREATE FUNCTION twins() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    only_a bigint;
    only_r bigint;
    bad text := '';
BEGIN
    FOR r IN SELECT left(c.relname, -2) AS base FROM pg_class c
             WHERE c.relnamespace = 'view_ranking'::regnamespace AND c.relkind = 'r' AND c.relname LIKE '%\_a'
             ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT to_jsonb(t) - ''etl_time'' FROM %1$I t'
                       ' EXCEPT ALL SELECT to_jsonb(t) - ''etl_time'' FROM %2$I t) d', r.base || '_a', r.base || '_r')
        INTO only_a;
        EXECUTE format('SELECT count(*) FROM (SELECT to_jsonb(t) - ''etl_time'' FROM %2$I t'
                       ' EXCEPT ALL SELECT to_jsonb(t) - ''etl_time'' FROM %1$I t) d', r.base || '_a', r.base || '_r')
        INTO only_r;
        IF only_a + only_r > 0 THEN
            bad := bad || format(' %s (%s only in _a, %s only in _r)', r.base, only_a, only_r);
        END IF;
    END LOOP;
    RETURN coalesce(nullif('differ:' || bad, 'differ:'), 'agree');
END
$$;

-- One line per step: the oracle and the twins.
CREATE FUNCTION step(label text) RETURNS TABLE (step text, verify text, twins text) LANGUAGE sql AS $$
    SELECT label, settle('vrk'), twins()
$$;

CREATE TABLE reading (
    id int PRIMARY KEY,
    area int,              -- the ranking's partition (NULL: a partition too)
    cust int,              -- the ranked group (NULL: a group too)
    day int,
    amount numeric(12,2)   -- sums tie often, and are NULL where all of a group's are
);
-- Areas 1..3 and NULL, customers 1..8 and NULL, two readings each; totals 0, 20, 40, 60 repeat
-- (every total is tied), customer 7's amounts are all NULL in area 1.
INSERT INTO reading
SELECT row_number() OVER (ORDER BY a, c, k), a, c, 1 + k, CASE WHEN a = 1 AND c = 7 THEN NULL ELSE (c % 4) * 10 END
FROM (VALUES (1), (2), (3), (NULL)) va(a), (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (NULL)) vc(c),
     generate_series(0, 1) k;

SELECT stategrid_ivm.create_pipeline('vrk');
SELECT stategrid_ivm.add_source('vrk', 'reading') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vrk', 'v_detail',
    'SELECT id, area, cust, day, amount FROM ods_reading') IS NOT NULL AS added;
SELECT stategrid_ivm.add_view('vrk', 'v_total',
    'SELECT area, cust, sum(amount)::numeric(14,2) AS total, count(*) AS readings, max(id) AS last_id FROM v_detail GROUP BY area, cust')
    IS NOT NULL AS added;

-- The pairs: each query added as <name>_r (recompute) and <name>_a (auto); {t} is the suffix
-- (views over a ranking come after it).
CREATE TABLE pair (name text PRIMARY KEY, query text NOT NULL);
INSERT INTO pair VALUES
    -- row_number, DESC (NULLS FIRST), a unique tiebreak (cust, NULL last), an audit column
    ('rn_desc', 'SELECT area, cust, sum(amount) AS total,
                 row_number() OVER (PARTITION BY area ORDER BY sum(amount) DESC, cust) AS rn, now() AS etl_time
                 FROM v_detail GROUP BY area, cust'),
    -- row_number, ASC NULLS LAST, tiebreak DESC NULLS FIRST
    ('rn_asc', 'SELECT area, cust, sum(amount) AS total,
                row_number() OVER (PARTITION BY area ORDER BY sum(amount) NULLS LAST, cust DESC NULLS FIRST) AS rn
                FROM v_detail GROUP BY area, cust'),
    -- row_number without a tiebreak: max(id) never ties (ids are unique)
    ('rn_notie', 'SELECT area, cust, max(id) AS last_id,
                  row_number() OVER (PARTITION BY area ORDER BY max(id) DESC) AS rn
                  FROM v_detail GROUP BY area, cust'),
    -- rank, ASC NULLS FIRST, many ties
    ('rk_asc', 'SELECT area, cust, sum(amount) AS total,
                rank() OVER (PARTITION BY area ORDER BY sum(amount) ASC NULLS FIRST) AS rk
                FROM v_detail GROUP BY area, cust'),
    -- rank, DESC NULLS LAST
    ('rk_desc', 'SELECT area, cust, sum(amount) AS total,
                 rank() OVER (PARTITION BY area ORDER BY sum(amount) DESC NULLS LAST) AS rk
                 FROM v_detail GROUP BY area, cust'),
    -- rank over two keys, two partition columns (a NULL day, a NULL area)
    ('rk_multi', 'SELECT area, day, cust, count(*) AS n, sum(amount) AS total,
                  rank() OVER (PARTITION BY area, day ORDER BY count(*) DESC, sum(amount) NULLS FIRST) AS rk
                  FROM v_detail GROUP BY area, day, cust'),
    -- rank over an expression of aggregates (a boolean first key), then a count
    ('rk_expr', 'SELECT area, cust, count(amount) AS counted,
                 rank() OVER (PARTITION BY area ORDER BY sum(amount) IS NULL, count(amount) - count(*) DESC) AS rk
                 FROM v_detail GROUP BY area, cust'),
    -- rank over avg(), ties broken by a count(DISTINCT ...) and a min() (re-read when retracted)
    ('rk_avg', 'SELECT area, cust, avg(amount) AS mean, count(DISTINCT day) AS days, min(amount) AS least,
                rank() OVER (PARTITION BY area ORDER BY avg(amount) DESC NULLS LAST, count(DISTINCT day), min(amount) NULLS FIRST) AS rk
                FROM v_detail GROUP BY area, cust'),
    -- rank by a group column (NULL days: last), partitions by area
    ('rk_day', 'SELECT area, day, count(*) AS n,
                rank() OVER (PARTITION BY area ORDER BY day DESC NULLS LAST) AS rk
                FROM v_detail GROUP BY area, day'),
    -- over the aggregate view: areas ranked per customer (NULL customers: a partition)
    ('rn_total', 'SELECT cust, area, sum(total) AS total,
                  row_number() OVER (PARTITION BY cust ORDER BY sum(total) DESC NULLS LAST, area) AS rn
                  FROM v_total GROUP BY cust, area'),
    -- top-N: row_number N = 1 by <=, N = 3 by <; rank N = 1 by <, N = 3 by <=
    ('top_rn1', 'SELECT * FROM (SELECT area, cust, sum(amount) AS total,
                 row_number() OVER (PARTITION BY area ORDER BY sum(amount) DESC NULLS LAST, cust) AS rn
                 FROM v_detail GROUP BY area, cust) r WHERE rn <= 1'),
    ('top_rn3', 'SELECT * FROM (SELECT area, cust, sum(amount) AS total,
                 row_number() OVER (PARTITION BY area ORDER BY sum(amount) ASC NULLS FIRST, cust DESC) AS rn
                 FROM v_detail GROUP BY area, cust) r WHERE rn < 4'),
    ('top_rk1', 'SELECT * FROM (SELECT area, cust, sum(amount) AS total,
                 rank() OVER (PARTITION BY area ORDER BY sum(amount) DESC) AS rk
                 FROM v_detail GROUP BY area, cust) r WHERE rk < 2'),
    ('top_rk3', 'SELECT * FROM (SELECT area, cust, sum(amount) AS total,
                 rank() OVER (PARTITION BY area ORDER BY sum(amount)) AS rk
                 FROM v_detail GROUP BY area, cust) r WHERE rk <= 3'),
    -- a view over a ranking (its first two, as a plain filter): reads the rows whose rank moved
    ('over_rn', 'SELECT area, cust, total, rn FROM rn_desc{t} WHERE rn <= 2'),
    -- top-N over the aggregate view, rank N = 3 (DESC NULLS LAST)
    ('top_total', 'SELECT * FROM (SELECT area, cust, sum(total) AS total,
                   rank() OVER (PARTITION BY area ORDER BY sum(total) DESC NULLS LAST) AS rk
                   FROM v_total GROUP BY area, cust) r WHERE rk <= 3');
SET stategrid_ivm.view_strategy = 'recompute';
SELECT count(*) AS added FROM (SELECT * FROM pair ORDER BY query LIKE '%{t}%', name) p, stategrid_ivm.add_view('vrk', name || '_r', replace(query, '{t}', '_r'));
RESET stategrid_ivm.view_strategy;
SELECT count(*) AS added FROM (SELECT * FROM pair ORDER BY query LIKE '%{t}%', name) p, stategrid_ivm.add_view('vrk', name || '_a', replace(query, '{t}', '_a'));
-- every _a is maintained by delta rules, every _r by recomputation (but over_rn_r: a projection
-- passes its changes through under both)
SELECT right(v.view_name, 1) AS twin, v.strategy, v.strategy_reason, count(*)
FROM stategrid_ivm.views v JOIN pair ON v.view_name IN ('view_ranking.' || name || '_a', 'view_ranking.' || name || '_r')
GROUP BY 1, 2, 3 ORDER BY 1;
SELECT stategrid_ivm.start_pipeline('vrk');
SELECT * FROM step('after the backfill');
-- the data has what the test is about: ties, NULL sums, NULL partitions and groups
SELECT count(*) FILTER (WHERE rk > 1 AND rk = lag_rk) AS tied_ranks, count(*) FILTER (WHERE total IS NULL) AS null_totals,
       count(*) FILTER (WHERE area IS NULL) AS null_area_rows, count(*) FILTER (WHERE cust IS NULL) AS null_cust_rows
FROM (SELECT *, lag(rk) OVER (PARTITION BY area ORDER BY rk) AS lag_rk FROM rk_asc_r) r;

-- ---- the stream ---------------------------------------------------------------------------------
-- a group moves up past many (area 1, customer 4: 0 -> 200, first)
UPDATE reading SET amount = 100 WHERE area = 1 AND cust = 4;
SELECT * FROM step('a group moves up past many');
-- a group moves down (area 1, customer 3: 60 -> 2)
UPDATE reading SET amount = 1 WHERE area = 1 AND cust = 3;
SELECT * FROM step('a group moves down');
-- to the top of area 2, then to the bottom (a negative total), then to NULL (all NULL)
INSERT INTO reading VALUES (1001, 2, 1, 1, 1000);
SELECT * FROM step('a group to the top');
UPDATE reading SET amount = -1000 WHERE area = 2 AND cust = 1;
SELECT * FROM step('a group to the bottom');
UPDATE reading SET amount = NULL WHERE area = 2 AND cust = 1;
SELECT * FROM step('a group''s total becomes NULL');
-- new groups in the middle: every rank after them shifts
INSERT INTO reading VALUES (1002, 1, 20, 1, 25), (1003, 3, 20, 2, 35);
SELECT * FROM step('new groups in the middle');
-- in one transaction, a new group with a NULL total and one with a total, in one partition; a
-- new group in the NULL area
INSERT INTO reading VALUES (1004, 1, 21, 1, NULL), (1005, 1, 22, 1, 15), (1006, NULL, 23, NULL, 5);
SELECT * FROM step('new groups, one of a NULL total');
-- a group disappears
DELETE FROM reading WHERE area = 1 AND cust = 20;
SELECT * FROM step('a group disappears');
-- a group with a NULL total disappears while another comes
BEGIN;
DELETE FROM reading WHERE area = 1 AND cust = 21;
INSERT INTO reading VALUES (1007, 1, 24, 2, 45);
COMMIT;
SELECT * FROM step('a group goes, another comes');
-- rows move between partitions (the partition column updated at the source)
UPDATE reading SET area = 2 WHERE area = 1 AND cust IN (1, 2);
SELECT * FROM step('rows move to another partition');
UPDATE reading SET area = NULL WHERE area = 3 AND cust = 5;
SELECT * FROM step('rows move to the NULL partition');
UPDATE reading SET area = 3 WHERE area IS NULL AND cust IN (6, 23);
SELECT * FROM step('rows move out of the NULL partition');
-- a group column becomes NULL (the rows join the NULL customer's group)
UPDATE reading SET cust = NULL WHERE area = 2 AND cust = 5;
SELECT * FROM step('rows move to the NULL group');
-- a total becomes equal to another's (a tie), then moves off it again
UPDATE reading SET amount = 10 WHERE area = 3 AND cust = 3;   -- 60 -> 20, as customers 1 and 5's
SELECT * FROM step('a total ties with others');
UPDATE reading SET amount = 11 WHERE area = 3 AND cust = 3;
SELECT * FROM step('the tie is broken');
-- the 3rd place changes hands: in each area, the first group after the 3rd (rn_asc's order,
-- ascending) goes below the 3rd's total; then (rk_desc's order, descending) the first group
-- ranked after 3rd reaches the 3rd's total: rank gives both the 3rd place. One reading of the
-- group takes the difference.
CREATE FUNCTION shift(p_area int, p_cust int, by_amount numeric) RETURNS int LANGUAGE sql AS $$
    WITH u AS (
        UPDATE reading SET amount = amount + by_amount
        WHERE id = (SELECT min(id) FROM reading WHERE area IS NOT DISTINCT FROM p_area AND cust IS NOT DISTINCT FROM p_cust
                                                  AND amount IS NOT NULL)
        RETURNING 1)
    SELECT count(*)::int FROM u
$$;
SELECT sum(shift(f.area, f.cust, t.total - f.total - 0.01)) AS groups_moved
FROM rn_asc_r f JOIN rn_asc_r t ON t.area IS NOT DISTINCT FROM f.area AND t.rn = 3
WHERE f.rn = 4 AND f.total IS NOT NULL AND t.total IS NOT NULL;
SELECT * FROM step('the 3rd place changes hands');
SELECT sum(shift(f.area, f.cust, t.total - f.total)) AS groups_moved
FROM rk_desc_r t JOIN LATERAL (SELECT * FROM rk_desc_r f WHERE f.area IS NOT DISTINCT FROM t.area AND f.rk > 3
                               AND f.total IS NOT NULL ORDER BY f.rk, f.cust LIMIT 1) f ON true
WHERE t.rk = 3;
SELECT * FROM step('a tie at the 3rd place');
SELECT count(*) AS tied_at_3rd FROM rk_desc_r WHERE rk = 3;
-- the first place changes hands (the 2nd overtakes), then a new group ties with the first
-- (top-N with N = 1)
SELECT sum(shift(f.area, f.cust, t.top - f.total + 500)) AS groups_moved
FROM (SELECT area, max(total) AS top FROM rk_desc_r GROUP BY area) t
JOIN LATERAL (SELECT * FROM rk_desc_r f WHERE f.area IS NOT DISTINCT FROM t.area AND f.total < t.top
              ORDER BY f.total DESC, f.cust LIMIT 1) f ON true;
SELECT * FROM step('the first place changes hands');
INSERT INTO reading SELECT 2000 + row_number() OVER (ORDER BY area), area, 30, 1, total
FROM top_rn1_r WHERE total IS NOT NULL;
SELECT * FROM step('the first place tied');
SELECT count(*) AS tied_first FROM top_rk1_a WHERE rk = 1;
-- many changes in one transaction, in several partitions
BEGIN;
UPDATE reading SET amount = amount * 2 WHERE cust % 3 = 0;
DELETE FROM reading WHERE id % 7 = 0;
INSERT INTO reading SELECT 3000 + i, 1 + i % 3, 40 + i % 5, i % 2, (i % 4) * 10 FROM generate_series(1, 12) i;
UPDATE reading SET area = 1 + (area % 3) WHERE cust = 8;
COMMIT;
SELECT * FROM step('many changes in one transaction');
-- two groups swap their totals
BEGIN;
UPDATE reading SET amount = 333 WHERE area = 1 AND cust = 40 + 1;
UPDATE reading SET amount = 0 WHERE area = 1 AND cust = 4;
COMMIT;
SELECT * FROM step('two groups swap places');
-- a delete and the same row inserted again (no change), and a group's other values only
BEGIN;
DELETE FROM reading WHERE id = 3001;
INSERT INTO reading SELECT 3001, 2, 41, 1, 10;
COMMIT;
UPDATE reading SET day = 5 WHERE area = 3 AND cust = 6;
SELECT * FROM step('no change, then a day moved');
-- a whole partition emptied, then refilled
DELETE FROM reading WHERE area = 2;
SELECT * FROM step('a partition emptied');
SELECT count(*) AS area_2_rows FROM rn_desc_a WHERE area = 2;
INSERT INTO reading SELECT 4000 + i, 2, i % 6, 1, CASE WHEN i % 6 = 0 THEN NULL ELSE (i % 3) * 10 END FROM generate_series(1, 18) i;
SELECT * FROM step('the partition refilled');
-- every group of a partition to one total (all tied), then a NULL total for all
UPDATE reading SET amount = 5 WHERE area = 2;
SELECT * FROM step('a partition all tied');
UPDATE reading SET amount = NULL WHERE area = 2;
SELECT * FROM step('a partition all NULL');
-- kept state found missing by a batch (as after an update from 0.2.0, which plans the views
-- anew: the worker makes and fills their state): filled from the inputs as they were before the
-- batch, which then folds in (here, made to miss while paused, with changes waiting)
SELECT stategrid_ivm.pause_pipeline('vrk');
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT jsonb_array_elements_text(v.plan->'state_tables') FROM stategrid_ivm.view v
             WHERE v.view_name IN ('view_ranking.v_total', 'view_ranking.rn_desc_a', 'view_ranking.top_rk3_a',
                                   'view_ranking.rk_avg_a') LOOP
        EXECUTE 'DROP TABLE ' || t;
    END LOOP;
END
$$;
UPDATE reading SET amount = 7 WHERE area = 1 AND cust = 1;
INSERT INTO reading VALUES (4100, 1, 50, 2, 12), (4101, 3, 50, 3, 40);
SELECT stategrid_ivm.resume_pipeline('vrk');
SELECT * FROM step('kept state missing, made before the batch');
-- TRUNCATE, then data again
TRUNCATE reading;
SELECT * FROM step('TRUNCATE');
SELECT count(*) AS rows_left FROM rn_desc_a;
INSERT INTO reading
SELECT 5000 + i, nullif(i % 4, 3), nullif(i % 7, 6), i % 3, CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 5) * 10 END
FROM generate_series(1, 80) i;
SELECT * FROM step('refilled after the TRUNCATE');
-- A batch of more than 5,000 changed groups ranks its touched partitions whole, from the state
-- (the range statements then find no keys); then a small batch by range again.
INSERT INTO reading
SELECT 20000 + i, nullif(i % 4, 3), 100 + i, i % 3, CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 7) * 10 END
FROM generate_series(1, 6000) i;
SELECT * FROM step('6,000 new groups in one batch');
UPDATE reading SET amount = 1000 WHERE id IN (20007, 20100);
SELECT * FROM step('then two groups move by range');
DELETE FROM reading WHERE id > 20000 AND id % 2 = 0;
SELECT * FROM step('3,000 groups gone in one batch');

SELECT stategrid_ivm.drop_pipeline('vrk', true);
DROP SCHEMA view_ranking CASCADE;
