-- add_view refuses what the view engine cannot maintain, at add_view and with an error that names
-- the construct (DESIGN.md §4, issue 4 deliverable 4), and leaves nothing behind when it does.
-- Each refusal is one add_view call on a pipeline over this file's own State Grid tables.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_refusals;
SET search_path = view_refusals, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

SELECT stategrid_ivm.create_pipeline('vref');
SELECT stategrid_ivm.add_source('vref', 'power_user');
SELECT stategrid_ivm.add_source('vref', 'power_consumption');
-- a view the refusals below may read
SELECT stategrid_ivm.add_view('vref', 'dwd_detail', $q$
    SELECT c.consumption_id, c.user_id, c.consumption_amount, c.consumption_date,
           COALESCE(u.region_id, 0) AS region_id
    FROM ods_power_consumption c LEFT JOIN ods_power_user u ON c.user_id = u.user_id
$q$);

-- ---- unknown pipeline -------------------------------------------------------------------------
SELECT stategrid_ivm.add_view('no_such_pipeline', 'v1', 'SELECT user_id FROM ods_power_user');

-- ---- invalid SQL: the parser's own message, with the position in the view's query ------------
SELECT stategrid_ivm.add_view('vref', 'v_bad', $q$SELECT user_id,
       count(* AS n
FROM ods_power_consumption GROUP BY user_id$q$);
SELECT stategrid_ivm.add_view('vref', 'v_bad', 'SELECT user_id, no_such_column FROM ods_power_user');
SELECT stategrid_ivm.add_view('vref', 'v_bad', 'SELECT user_id FROM no_such_table');
SELECT stategrid_ivm.add_view('vref', 'v_bad', 'SELECT 1 AS a; SELECT 2 AS b');
SELECT stategrid_ivm.add_view('vref', 'v_bad', 'DELETE FROM ods_power_user');
SELECT stategrid_ivm.add_view('vref', 'v_bad', NULL);

-- ---- window functions other than row_number, rank, dense_rank ----------------------------------
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, consumption_date::date AS d, SUM(consumption_amount) AS total,
           NTILE(4) OVER (PARTITION BY consumption_date::date ORDER BY SUM(consumption_amount)) AS quartile
    FROM dwd_detail GROUP BY user_id, consumption_date::date
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, consumption_date::date AS d, SUM(consumption_amount) AS total,
           LAG(SUM(consumption_amount)) OVER (PARTITION BY user_id ORDER BY consumption_date::date) AS previous
    FROM dwd_detail GROUP BY user_id, consumption_date::date
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, consumption_date::date AS d,
           SUM(SUM(consumption_amount)) OVER (PARTITION BY consumption_date::date) AS day_total
    FROM dwd_detail GROUP BY user_id, consumption_date::date
$q$);
-- a window function without GROUP BY
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT consumption_id, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY consumption_amount DESC) AS rn
    FROM ods_power_consumption
$q$);
-- PARTITION BY an expression that is not a GROUP BY expression
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, region_id, SUM(consumption_amount) AS total,
           ROW_NUMBER() OVER (PARTITION BY MAX(consumption_date) ORDER BY SUM(consumption_amount) DESC) AS rn
    FROM dwd_detail GROUP BY user_id, region_id
$q$);
-- a ranking over the whole table (no PARTITION BY)
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, SUM(consumption_amount) AS total,
           RANK() OVER (ORDER BY SUM(consumption_amount) DESC) AS rk
    FROM dwd_detail GROUP BY user_id
$q$);
-- two rankings partitioned differently
SELECT stategrid_ivm.add_view('vref', 'v_win', $q$
    SELECT user_id, region_id, consumption_date::date AS d, SUM(consumption_amount) AS total,
           RANK() OVER (PARTITION BY region_id ORDER BY SUM(consumption_amount) DESC) AS in_region,
           RANK() OVER (PARTITION BY consumption_date::date ORDER BY SUM(consumption_amount) DESC) AS in_day
    FROM dwd_detail GROUP BY user_id, region_id, consumption_date::date
$q$);

-- ---- aggregates other than sum, count, avg, min, max, grouping sets ----------------------------
SELECT stategrid_ivm.add_view('vref', 'v_agg', $q$
    SELECT user_id, string_agg(consumption_id::text, ',') AS ids FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_agg', $q$
    SELECT user_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY consumption_amount) AS median
    FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_agg', $q$
    SELECT region_id, SUM(consumption_amount) AS total FROM dwd_detail
    GROUP BY GROUPING SETS ((region_id), ())
$q$);

-- ---- ORDER BY, LIMIT / OFFSET, DISTINCT ON, DISTINCT over groups or a join ---------------------
SELECT stategrid_ivm.add_view('vref', 'v_ord', 'SELECT user_id, user_name FROM ods_power_user ORDER BY user_name');
SELECT stategrid_ivm.add_view('vref', 'v_lim', 'SELECT user_id, user_name FROM ods_power_user LIMIT 10');
SELECT stategrid_ivm.add_view('vref', 'v_lim', 'SELECT user_id, user_name FROM ods_power_user OFFSET 10');
SELECT stategrid_ivm.add_view('vref', 'v_don', $q$
    SELECT DISTINCT ON (user_id) user_id, consumption_id, consumption_amount FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_dis', $q$
    SELECT DISTINCT user_id, SUM(consumption_amount) AS total FROM dwd_detail GROUP BY user_id
$q$);

-- ---- set operations: UNION ALL and UNION are maintained (sql/view_ops_compose.sql) -------------
SELECT stategrid_ivm.add_view('vref', 'v_set', $q$
    SELECT user_id FROM ods_power_user EXCEPT SELECT user_id FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_set', $q$
    SELECT user_id FROM ods_power_user INTERSECT SELECT user_id FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_set', $q$
    SELECT user_id FROM ods_power_user UNION ALL SELECT user_id FROM ods_power_consumption GROUP BY user_id
$q$);

-- ---- subqueries and CTEs ----------------------------------------------------------------------
-- (EXISTS / IN / NOT EXISTS / NOT IN in WHERE are maintained: sql/view_ops_join.sql)
-- in the select list
SELECT stategrid_ivm.add_view('vref', 'v_sub', $q$
    SELECT c.consumption_id, (SELECT u.user_name FROM ods_power_user u WHERE u.user_id = c.user_id) AS user_name
    FROM ods_power_consumption c
$q$);
-- in HAVING
SELECT stategrid_ivm.add_view('vref', 'v_sub', $q$
    SELECT user_id, SUM(consumption_amount) AS total FROM dwd_detail GROUP BY user_id
    HAVING SUM(consumption_amount) > (SELECT AVG(consumption_amount) FROM ods_power_consumption)
$q$);
-- in FROM and WITH: a subquery of one table with conditions is inlined, any other is a view of
-- its own (sql/view_ops_join.sql): what that view cannot be is refused as such; recursive and
-- data-modifying WITH are refused
SELECT stategrid_ivm.add_view('vref', 'v_sub', $q$
    SELECT s.consumption_id, s.consumption_amount
    FROM (SELECT * FROM ods_power_consumption ORDER BY consumption_amount DESC LIMIT 5) s
    WHERE s.consumption_amount > 100
$q$);
SELECT to_regclass('view_refusals.v_sub_sgivm_in') AS no_input_view_left;
SELECT stategrid_ivm.add_view('vref', 'v_cte', $q$
    WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3)
    SELECT consumption_id, n FROM ods_power_consumption, r
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_cte', $q$
    WITH gone AS (DELETE FROM ods_power_consumption RETURNING consumption_id)
    SELECT consumption_id, consumption_amount FROM ods_power_consumption
$q$);
-- functions and VALUES in FROM, set-returning functions in the select list, no FROM at all
SELECT stategrid_ivm.add_view('vref', 'v_fn', 'SELECT g AS n FROM generate_series(1, 3) g');
SELECT stategrid_ivm.add_view('vref', 'v_fn', 'SELECT v.a FROM (VALUES (1), (2)) v(a)');
SELECT stategrid_ivm.add_view('vref', 'v_fn', $q$
    SELECT consumption_id, generate_series(1, 2) AS copy FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_fn', 'SELECT 1 AS one');
SELECT stategrid_ivm.add_view('vref', 'v_fn', 'SELECT consumption_id FROM ods_power_consumption FOR UPDATE');

-- ---- non-immutable functions: refused on data, accepted as audit columns -----------------------
SELECT stategrid_ivm.add_view('vref', 'v_vol', $q$
    SELECT consumption_id, consumption_amount * random() AS noisy FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol', $q$
    SELECT consumption_id, consumption_amount FROM ods_power_consumption WHERE random() < 0.5
$q$);
-- stable functions of the data depend on when they run: refused too
SELECT stategrid_ivm.add_view('vref', 'v_vol', $q$
    SELECT consumption_id, now() - consumption_date AS age FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol', $q$
    SELECT consumption_id, consumption_amount FROM ods_power_consumption
    WHERE consumption_date > now() - interval '30 days'
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol', $q$
    SELECT user_id, SUM(consumption_amount) AS total FROM dwd_detail GROUP BY user_id
    HAVING MAX(consumption_date) > CURRENT_TIMESTAMP - interval '1 day'
$q$);
-- now(), CURRENT_TIMESTAMP and clock_timestamp() alone are audit columns: accepted, and verify()
-- leaves them out of its comparison
SELECT stategrid_ivm.add_view('vref', 'v_audit', $q$
    SELECT consumption_id, consumption_amount, now() AS etl_time, CURRENT_TIMESTAMP AS seen_at,
           clock_timestamp() AS clock
    FROM ods_power_consumption
$q$);
SELECT plan->'audit_columns' AS audit_columns, plan->'columns' AS columns
FROM stategrid_ivm.view WHERE view_name = 'view_refusals.v_audit';

-- other non-immutable functions are not audit columns, even without data: refused, and nothing
-- calls them (the sequence is never advanced)
CREATE SEQUENCE view_seq;
SELECT stategrid_ivm.add_view('vref', 'v_vol2', $q$
    SELECT consumption_id, consumption_amount, random() AS lucky FROM ods_power_consumption
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol2', $q$
    SELECT consumption_id, nextval('view_refusals.view_seq') AS n FROM ods_power_consumption
$q$);
SELECT is_called AS view_seq_called FROM view_seq;

-- ---- joins: any joins of keyed tables are maintained (sql/view_ops_join.sql) -----------------
-- (GROUP BY over a join: its join is a view of its own, sql/view_ops_join.sql)

-- ---- inputs: only this pipeline's ODS mirrors and views ---------------------------------------
-- a raw source table: the hint names its ODS mirror
SELECT stategrid_ivm.add_view('vref', 'v_src', 'SELECT user_id, user_name FROM power_user');
SELECT stategrid_ivm.add_view('vref', 'v_src', $q$
    SELECT c.consumption_id, u.user_name
    FROM ods_power_consumption c LEFT JOIN power_user u ON c.user_id = u.user_id
$q$);
-- a table of no pipeline
CREATE TABLE tariff (tariff_id int PRIMARY KEY, price numeric);
SELECT stategrid_ivm.add_view('vref', 'v_other', 'SELECT tariff_id, price FROM tariff');
-- a plain (non-maintained) view
CREATE VIEW plain_users AS SELECT * FROM ods_power_user;
SELECT stategrid_ivm.add_view('vref', 'v_other', 'SELECT user_id FROM plain_users');
-- the ODS mirror of another pipeline
CREATE TABLE meter (meter_id int PRIMARY KEY, user_id bigint);
SELECT stategrid_ivm.create_pipeline('vref_other');
SELECT stategrid_ivm.add_source('vref_other', 'meter');
SELECT stategrid_ivm.add_view('vref', 'v_other', 'SELECT meter_id, user_id FROM ods_meter');

-- ---- the view's columns -----------------------------------------------------------------------
-- a column without a name
SELECT stategrid_ivm.add_view('vref', 'v_col', $q$
    SELECT consumption_id, consumption_amount * 2 FROM ods_power_consumption
$q$);
-- duplicate column names
SELECT stategrid_ivm.add_view('vref', 'v_col', $q$
    SELECT c.consumption_id, c.user_id, u.user_id
    FROM ods_power_consumption c LEFT JOIN ods_power_user u ON c.user_id = u.user_id
$q$);
-- a GROUP BY expression that is not a column of the view
SELECT stategrid_ivm.add_view('vref', 'v_col', $q$
    SELECT region_id, SUM(consumption_amount) AS total FROM dwd_detail
    GROUP BY region_id, consumption_date::date
$q$);
-- ---- the view's name --------------------------------------------------------------------------
-- an existing table without the view's columns
CREATE TABLE v_clash (user_id bigint, note text);
SELECT stategrid_ivm.add_view('vref', 'v_clash', $q$
    SELECT user_id, COUNT(*) AS readings FROM dwd_detail GROUP BY user_id
$q$);
-- an existing table with a NOT NULL column the view does not fill and no default for it
CREATE TABLE v_clash2 (user_id bigint, readings bigint, owner text NOT NULL);
SELECT stategrid_ivm.add_view('vref', 'v_clash2', $q$
    SELECT user_id, COUNT(*) AS readings FROM dwd_detail GROUP BY user_id
$q$);
-- an existing table whose columns have the view's names but types that do not compare with the
-- view's: refused at add_view, not found out by the worker or verify()
CREATE TABLE v_clash3 (user_id text, readings bigint);
SELECT stategrid_ivm.add_view('vref', 'v_clash3', $q$
    SELECT user_id, COUNT(*) AS readings FROM dwd_detail GROUP BY user_id
$q$);
-- an ODS mirror, a source table, a table of another pipeline, a view of this one
SELECT stategrid_ivm.add_view('vref', 'ods_power_user', 'SELECT consumption_id FROM ods_power_consumption');
SELECT stategrid_ivm.add_view('vref', 'power_user', 'SELECT consumption_id FROM ods_power_consumption');
SELECT stategrid_ivm.add_view('vref', 'ods_meter', 'SELECT consumption_id FROM ods_power_consumption');
SELECT stategrid_ivm.add_view('vref', 'dwd_detail', 'SELECT consumption_id FROM ods_power_consumption');
SELECT stategrid_ivm.add_view('vref', 'a.b.c', 'SELECT consumption_id FROM ods_power_consumption');

-- ---- issue 13: what passed add_view and then stopped the whole pipeline at its first change -----
-- system columns, in the select list, in WHERE, in a join view
SELECT stategrid_ivm.add_view('vref', 'v_sys_1', 'SELECT user_id, xmin AS x FROM ods_power_user');
SELECT stategrid_ivm.add_view('vref', 'v_sys_2', $q$
    SELECT consumption_id, consumption_amount FROM ods_power_consumption WHERE ctid > '(0,1)'
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_sys_3', $q$
    SELECT c.consumption_id, u.tableoid AS from_table
    FROM ods_power_consumption c LEFT JOIN ods_power_user u ON c.user_id = u.user_id
$q$);
-- TABLESAMPLE: a random sample, not a function of the data
SELECT stategrid_ivm.add_view('vref', 'v_sample', $q$
    SELECT consumption_id, consumption_amount FROM ods_power_consumption TABLESAMPLE BERNOULLI (50) REPEATABLE (1)
$q$);
-- SELECT INTO (it crashed the server)
SELECT stategrid_ivm.add_view('vref', 'v_into', 'SELECT user_id, user_name INTO v_into_copy FROM ods_power_user');
-- non-immutable functions wherever they decide rows, groups or ranks: a window's ORDER BY, a
-- GROUP BY key that is an audit column, a JOIN condition (a volatile = operator)
SELECT stategrid_ivm.add_view('vref', 'v_vol3_1', $q$
    SELECT user_id, SUM(consumption_amount) AS total,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY random()) AS rn
    FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol3_2', $q$
    SELECT region_id, now() AS seen_at, COUNT(*) AS readings FROM dwd_detail GROUP BY region_id, now()
$q$);
CREATE FUNCTION coin_eq(bigint, bigint) RETURNS boolean LANGUAGE sql VOLATILE AS 'SELECT $1 = $2 AND random() < 2';
CREATE OPERATOR view_refusals.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = coin_eq);
SELECT stategrid_ivm.add_view('vref', 'v_vol3_3', $q$
    SELECT c.consumption_id, u.user_name
    FROM ods_power_consumption c LEFT JOIN ods_power_user u ON c.user_id OPERATOR(view_refusals.=) u.user_id
$q$);
-- audit columns are the clock only: not CURRENT_USER, not a function of the user's named now()
SELECT stategrid_ivm.add_view('vref', 'v_vol3_4', $q$
    SELECT consumption_id, consumption_amount, CURRENT_USER AS written_by FROM ods_power_consumption
$q$);
CREATE FUNCTION view_refusals.now() RETURNS timestamptz LANGUAGE sql VOLATILE
AS $f$SELECT pg_catalog.now() + random() * interval '1 day'$f$;
SELECT stategrid_ivm.add_view('vref', 'v_vol3_5', $q$
    SELECT consumption_id, consumption_amount, view_refusals.now() AS etl_time FROM ods_power_consumption
$q$);
-- (refused before too: in an aggregate's argument, FILTER or ORDER BY, in a cast of the data)
SELECT stategrid_ivm.add_view('vref', 'v_vol3_6', $q$
    SELECT user_id, SUM(consumption_amount) FILTER (WHERE random() < 0.5) AS total FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol3_7', $q$
    SELECT user_id, MAX(consumption_amount ORDER BY random()) AS top FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_vol3_8', $q$
    SELECT consumption_id, consumption_date::timestamptz AS at FROM ods_power_consumption
$q$);
-- the clock stays allowed as audit columns, cast or not
SELECT stategrid_ivm.add_view('vref', 'v_audit2', $q$
    SELECT consumption_id, now()::text AS etl_text, CURRENT_DATE AS etl_day, LOCALTIMESTAMP AS etl_local,
           now() AT TIME ZONE 'UTC' AS etl_utc
    FROM ods_power_consumption
$q$);
SELECT plan->'audit_columns' AS audit_columns FROM stategrid_ivm.view WHERE view_name = 'view_refusals.v_audit2';
-- add_view runs the view's maintenance statements once before it commits: a table it adopts that
-- refuses them (a statement trigger that forbids UPDATE) fails add_view, not the pipeline later
CREATE TABLE v_no_update (user_id bigint, readings bigint);
CREATE FUNCTION forbid_update() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'v_no_update is append-only';
END
$f$;
CREATE TRIGGER forbid_update BEFORE UPDATE ON v_no_update FOR EACH STATEMENT EXECUTE FUNCTION forbid_update();
SELECT stategrid_ivm.add_view('vref', 'v_no_update', $q$
    SELECT user_id, COUNT(*) AS readings FROM dwd_detail GROUP BY user_id
$q$);

-- ---- issue 13: the first error names the construct that is really unsupported ------------------
-- not "must select the key column"
SELECT stategrid_ivm.add_view('vref', 'v_first_1', 'SELECT user_name FROM ods_power_user TABLESAMPLE SYSTEM (50)');
SELECT stategrid_ivm.add_view('vref', 'v_first_2', 'SELECT xmin AS version FROM ods_power_user');
SELECT stategrid_ivm.add_view('vref', 'v_first_3', 'SELECT FROM ods_power_user');
-- not "column 1 of the view has no name"
SELECT stategrid_ivm.add_view('vref', 'v_first_4', 'SELECT DISTINCT SUM(consumption_amount) * 0.5 FROM dwd_detail');
SELECT stategrid_ivm.add_view('vref', 'v_first_5', $q$
    SELECT user_id, SUM(consumption_amount) * 2, RANK() OVER (ORDER BY SUM(consumption_amount)) AS rk
    FROM dwd_detail GROUP BY user_id
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_first_6', $q$
    SELECT consumption_id * 2 FROM ods_power_consumption c
    WHERE NOT EXISTS (SELECT 1 FROM ods_power_user u WHERE u.user_id = c.user_id)
$q$);
SELECT stategrid_ivm.add_view('vref', 'v_first_7', $q$
    SELECT consumption_id FROM ods_power_consumption WHERE user_id NOT IN (SELECT user_id FROM ods_power_user)
$q$);
-- an unnamed aggregate, once nothing else is wrong: the message names the expression
SELECT stategrid_ivm.add_view('vref', 'v_first_8', $q$
    SELECT user_id, SUM(consumption_amount) * 0.5 FROM dwd_detail GROUP BY user_id
$q$);

-- ---- nothing was left behind ------------------------------------------------------------------
-- one view (dwd_detail) and the audit one; no table of a refused view; v_clash untouched
SELECT view_name, plan->>'kind' AS kind FROM stategrid_ivm.view v
JOIN stategrid_ivm.pipeline p USING (pipeline_id) WHERE p.name = 'vref' ORDER BY view_id;
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'view_refusals'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C";
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'view_refusals' AND table_name = 'v_clash' ORDER BY ordinal_position;

-- the pipeline still works
SELECT stategrid_ivm.start_pipeline('vref');
INSERT INTO power_user (user_id, user_name, region_id) VALUES (1, 'u1', 7);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (1, 1, 2.50, '2024-05-01 08:00'), (2, 1, 1.25, '2024-05-01 09:00');
SELECT stategrid_ivm.sync('vref') IS NOT NULL AS synced;
SELECT * FROM stategrid_ivm.verify('vref');
SELECT * FROM dwd_detail ORDER BY consumption_id;

DROP VIEW plain_users;
SELECT string_agg(quote_literal(slot_name), ', ') AS slots FROM stategrid_ivm.pipeline WHERE name LIKE 'vref%' \gset
SELECT stategrid_ivm.drop_pipeline('vref', drop_tables => true);
SELECT stategrid_ivm.drop_pipeline('vref_other', drop_tables => true);
SELECT count(*) AS slots_left FROM pg_replication_slots WHERE slot_name IN (:slots);
SELECT count(*) AS origins_left FROM pg_replication_origin WHERE roname IN (:slots);
DROP SCHEMA view_refusals CASCADE;
