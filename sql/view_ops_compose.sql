-- Issue 16: compositions on the differential engine, one view per construct, each compared
-- after every change with the query as the user wrote it, run on the mirrors.
--
-- Views: UNION ALL (of a join and a table, of three branches, the same table in two branches
-- with different conditions), UNION (DISTINCT over the UNION ALL, through a view of its own),
-- DISTINCT over a join and over EXISTS, aggregates over a join (GROUP BY with HAVING, and
-- without GROUP BY: one row also over no rows), a subquery with aggregates joined to a table,
-- a WITH query over a join read with a condition, a subquery of one table with conditions on an
-- outer join's nullable side, a nested WITH that reads an outer WITH, pg_ivm's column list
-- (add_view('p', 'mv(a, b)', ...)) on a FULL JOIN selecting the same column twice, and an
-- aggregate over a UNION ALL.
--
-- A stream of changes, each its own source transaction (and one paused batch of several): rows
-- moving between UNION branches (the same table under two conditions), duplicates across
-- branches (UNION keeps one), groups emptied and refilled, every row deleted (the single-row
-- aggregate shows count 0), TRUNCATE. After every step, step() waits for the worker and compares
-- each view's own columns (not the added sgivm_* ones) with the original query over the mirrors,
-- as text, a multiset both ways, and runs verify().
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_ops_compose;
SET search_path = view_ops_compose, public;

CREATE TABLE checked (view_name text PRIMARY KEY, query text NOT NULL);

CREATE FUNCTION differing_rows(v regclass, query text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    n bigint;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = v AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'sgivm\_%';
    -- (positional: the query's column names may differ from the view's, as with a column list)
    EXECUTE format('SELECT count(*) FROM ((SELECT ROW(%1$s)::text FROM %2$s EXCEPT ALL SELECT q::text FROM (%3$s) q)'
                   ' UNION ALL (SELECT q::text FROM (%3$s) q EXCEPT ALL SELECT ROW(%1$s)::text FROM %2$s)) d',
                   cols, v, query)
    INTO n;
    RETURN n;
END
$$;

CREATE FUNCTION step(label text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    PERFORM stategrid_ivm.sync('vcomp');
    SELECT string_agg(format('%s differs in %s rows', view_name, n), '; ' ORDER BY view_name)
    INTO bad
    FROM (SELECT c.view_name, differing_rows(c.view_name::regclass, c.query) AS n FROM checked c) d
    WHERE n <> 0;
    SELECT concat_ws('; ', bad, string_agg(format('verify: %s (missing %s, extra %s)',
                                                  regexp_replace(view_name, '^view_ops_compose\.', ''), missing_rows, extra_rows),
                                           '; ' ORDER BY view_name))
    INTO bad FROM stategrid_ivm.verify('vcomp') WHERE NOT ok;
    RETURN label || ': ' || CASE WHEN bad = '' THEN 'ok' ELSE 'NOT OK: ' || bad END;
END
$$;

-- meters (m) and readings (r, a meter's readings: r.meter is not m's key), feeders (f) a meter
-- belongs to, and alarms (al) raised for meters
CREATE TABLE m (id int PRIMARY KEY, feeder int, kind text);
CREATE TABLE r (id int PRIMARY KEY, meter int, kwh numeric(10,2), day int);
CREATE TABLE f (id int PRIMARY KEY, region text);
CREATE TABLE al (id int PRIMARY KEY, meter int, level int);
INSERT INTO m VALUES (1, 10, 'res'), (2, 10, 'ind'), (3, 20, 'res'), (4, NULL, 'res'), (5, 30, NULL);
INSERT INTO r VALUES (1, 1, 1.50, 1), (2, 1, 2.00, 1), (3, 2, 7.25, 1), (4, 3, 0.50, 2), (5, NULL, 3.00, 2),
                     (6, 9, 1.00, 1), (7, 1, 1.50, 2);
INSERT INTO f VALUES (10, 'north'), (20, 'south'), (40, 'east');
INSERT INTO al VALUES (1, 1, 2), (2, 3, 1), (3, 3, 5), (4, NULL, 1);

SELECT stategrid_ivm.create_pipeline('vcomp');
SELECT count(stategrid_ivm.add_source('vcomp', t)) AS sources FROM unnest(ARRAY['m', 'r', 'f', 'al']) t;
-- (the views are added while the worker backfills: add_view's update of the pipeline's row
-- may collide with the worker's, which retries at once, without an error a sync would report)
SELECT stategrid_ivm.start_pipeline('vcomp');

CREATE FUNCTION add(name text, query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v regclass := stategrid_ivm.add_view('vcomp', name, query);
BEGIN
    INSERT INTO checked VALUES (v::text, query);
    RETURN v::text;
END
$$;

-- set operations
SELECT add('u_all', $q$SELECT r.id, m.kind, r.kwh FROM ods_r r JOIN ods_m m ON m.id = r.meter
    UNION ALL SELECT al.id, 'alarm', al.level FROM ods_al al$q$);
SELECT add('u_three', $q$SELECT id, kwh FROM ods_r WHERE kwh < 2 UNION ALL SELECT id, kwh FROM ods_r WHERE kwh >= 2
    UNION ALL SELECT id, level FROM ods_al WHERE level > 1$q$);
SELECT add('u_distinct', $q$SELECT meter FROM ods_r UNION SELECT meter FROM ods_al$q$);
-- DISTINCT and aggregates over joins
SELECT add('d_join', $q$SELECT DISTINCT m.kind, f.region FROM ods_m m JOIN ods_f f ON f.id = m.feeder$q$);
SELECT add('d_exists', $q$SELECT DISTINCT m.feeder FROM ods_m m WHERE EXISTS (SELECT 1 FROM ods_al a WHERE a.meter = m.id)$q$);
SELECT add('g_join', $q$SELECT f.region, count(*) AS readings, sum(r.kwh) AS kwh, max(r.day) AS last_day
    FROM ods_r r JOIN ods_m m ON m.id = r.meter LEFT JOIN ods_f f ON f.id = m.feeder
    GROUP BY f.region HAVING count(*) > 1$q$);
SELECT add('g_total', $q$SELECT count(*) AS readings, sum(r.kwh) AS kwh, min(m.kind) AS first_kind
    FROM ods_r r JOIN ods_m m ON m.id = r.meter$q$);
-- subqueries and WITH
SELECT add('s_agg_join', $q$SELECT t.meter, t.n, m.kind
    FROM (SELECT meter, count(*) AS n FROM ods_r GROUP BY meter) t JOIN ods_m m ON m.id = t.meter$q$);
SELECT add('s_cte_join', $q$WITH x AS (SELECT r.id, r.kwh, m.feeder FROM ods_r r JOIN ods_m m ON m.id = r.meter)
    SELECT x.id, x.kwh FROM x WHERE x.feeder = 10$q$);
SELECT add('s_nullable', $q$SELECT m.id, hi.id AS reading FROM ods_m m
    LEFT JOIN (SELECT * FROM ods_r WHERE kwh > 1) hi ON hi.meter = m.id$q$);
SELECT add('s_nested_with', $q$WITH big AS (SELECT * FROM ods_r WHERE kwh >= 1)
    SELECT v.id, v.kind FROM (WITH mm AS (SELECT * FROM ods_m) SELECT big.id, mm.kind FROM big, mm WHERE big.meter = mm.id) v$q$);
SELECT add('s_union_agg', $q$SELECT x.meter, count(*) AS events
    FROM (SELECT meter FROM ods_r UNION ALL SELECT meter FROM ods_al) x GROUP BY x.meter$q$);
-- pg_ivm's column list: the same column twice
SELECT stategrid_ivm.add_view('vcomp', 'c_list(meter_id, reading_meter, kwh)',
    $q$SELECT m.id, r.meter, r.kwh FROM ods_m m FULL JOIN ods_r r ON r.meter = m.id$q$);
INSERT INTO checked VALUES ('view_ops_compose.c_list', $q$SELECT m.id, r.meter, r.kwh FROM ods_m m FULL JOIN ods_r r ON r.meter = m.id$q$);

SELECT view_name, strategy FROM stategrid_ivm.views WHERE pipeline = 'vcomp' AND kind <> 'ods' ORDER BY view_name;
SELECT attname FROM pg_attribute WHERE attrelid = 'c_list'::regclass AND attnum > 0 ORDER BY attnum;
SELECT step('initial');

-- a reading moves from one branch of u_three to the other, and becomes a duplicate meter
UPDATE r SET kwh = 2.50 WHERE id = 1;
SELECT step('a reading moves between branches');
INSERT INTO al VALUES (5, 2, 3), (6, 2, 3);
SELECT step('duplicate rows across branches');
DELETE FROM al WHERE meter = 3;
SELECT step('a meter''s last alarm leaves');
UPDATE m SET feeder = 20 WHERE id = 1;
SELECT step('a meter moves to another feeder');
UPDATE m SET kind = 'ind' WHERE kind = 'res';
SELECT step('every residential meter becomes industrial');
INSERT INTO r VALUES (8, 4, 9.99, 3), (9, 4, 0.01, 3), (10, NULL, NULL, 3);
SELECT step('readings with NULLs');
UPDATE r SET meter = 5 WHERE meter = 4;
SELECT step('readings move to another meter');
SELECT stategrid_ivm.pause_pipeline('vcomp');
BEGIN;
DELETE FROM r WHERE day = 1;
INSERT INTO f VALUES (30, 'west');
COMMIT;
BEGIN;
UPDATE al SET level = level + 1;
INSERT INTO r VALUES (11, 2, 4.00, 4);
COMMIT;
SELECT stategrid_ivm.resume_pipeline('vcomp');
SELECT step('a paused batch of several transactions');
DELETE FROM r;
SELECT step('every reading deleted');
INSERT INTO r VALUES (1, 1, 1.00, 5), (2, 2, 2.00, 5), (3, 2, 2.00, 5);
SELECT step('readings again');
TRUNCATE al;
SELECT step('alarms truncated');
DELETE FROM m WHERE id IN (1, 2);
INSERT INTO m VALUES (1, 40, 'res');
SELECT step('meters replaced');
SELECT * FROM g_total;

-- dropping a view drops the view of its input
SELECT stategrid_ivm.drop_view('g_join', true);
SELECT to_regclass('view_ops_compose.g_join_sgivm_in') AS input_table_left,
       (SELECT count(*) FROM stategrid_ivm.views WHERE view_name LIKE 'view_ops_compose.g_join%') AS views_left;
SELECT stategrid_ivm.drop_view('d_join');
SELECT to_regclass('view_ops_compose.d_join_sgivm_in') IS NOT NULL AS kept_as_a_table,
       (SELECT count(*) FROM stategrid_ivm.views WHERE view_name LIKE 'view_ops_compose.d_join%') AS views_left;

SELECT stategrid_ivm.drop_pipeline('vcomp', true);
DROP SCHEMA view_ops_compose CASCADE;
