-- drop_view removes one view from its pipeline while the pipeline keeps running (issue 13, item 5):
-- the way out for a view that fails in the worker, whose error names the view and drop_view.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'view_drop_other') THEN
        EXECUTE 'DROP OWNED BY view_drop_other';
        EXECUTE 'DROP ROLE view_drop_other';
    END IF;
END $$;
CREATE SCHEMA view_drop;
SET search_path = view_drop, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

SELECT stategrid_ivm.create_pipeline('vdrop');
SELECT stategrid_ivm.add_source('vdrop', 'power_user');
SELECT stategrid_ivm.add_source('vdrop', 'power_consumption');
-- two healthy views, one over the other
SELECT stategrid_ivm.add_view('vdrop', 'detail', $q$
    SELECT c.consumption_id, c.user_id, c.consumption_amount, c.consumption_date,
           COALESCE(u.region_id, 0) AS region_id
    FROM ods_power_consumption c LEFT JOIN ods_power_user u ON c.user_id = u.user_id
$q$);
SELECT stategrid_ivm.add_view('vdrop', 'daily', $q$
    SELECT region_id, consumption_date::date AS day, SUM(consumption_amount) AS total, COUNT(*) AS readings
    FROM detail GROUP BY region_id, consumption_date::date
$q$);
-- and one the worker cannot write once a user's day reaches 100: it adopts a table with a CHECK
CREATE TABLE small_days (user_id bigint, day date, total numeric, CONSTRAINT below_100 CHECK (total < 100));
-- (recomputed by group, so that it has an index of its own on its input: drop_view drops it)
SET stategrid_ivm.view_strategy = 'recompute';
SELECT stategrid_ivm.add_view('vdrop', 'small_days', $q$
    SELECT user_id, consumption_date::date AS day, SUM(consumption_amount) AS total
    FROM ods_power_consumption GROUP BY user_id, consumption_date::date
$q$);
RESET stategrid_ivm.view_strategy;
SELECT stategrid_ivm.start_pipeline('vdrop');
INSERT INTO power_user (user_id, user_name, region_id) VALUES (1, 'u1', 7);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (1, 1, 60.00, '2024-05-01 08:00');
SELECT stategrid_ivm.sync('vdrop') IS NOT NULL AS synced;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (2, 1, 50.00, '2024-05-01 09:00');

-- ---- the failing view stops the pipeline, and its error says which view and how to remove it ----
SELECT stategrid_ivm.sync('vdrop');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'vdrop';
-- the healthy views wait with it
SELECT consumption_id FROM detail ORDER BY consumption_id;

-- ---- what drop_view refuses --------------------------------------------------------------------
-- a table that is not a maintained view
SELECT stategrid_ivm.drop_view('power_user');
SELECT stategrid_ivm.drop_view('ods_power_user');
-- a view that another view of the pipeline reads: the error names the reader
SELECT stategrid_ivm.drop_view('detail');
-- a role that does not own the pipeline
CREATE ROLE view_drop_other NOLOGIN;
GRANT USAGE ON SCHEMA stategrid_ivm, view_drop TO view_drop_other;
GRANT EXECUTE ON FUNCTION stategrid_ivm.drop_view(regclass, boolean) TO view_drop_other;
SET ROLE view_drop_other;
SELECT stategrid_ivm.drop_view('view_drop.small_days');
RESET ROLE;
-- nothing changed meanwhile
SELECT view_name FROM stategrid_ivm.views WHERE pipeline = 'vdrop' ORDER BY view_name;

-- ---- the failing view goes; the pipeline continues without being stopped -----------------------
SELECT worker_pid AS pid_before FROM stategrid_ivm.pipelines WHERE name = 'vdrop' \gset
SELECT 'before' AS drop_view, indexrelid::regclass::text ~ ('_' || 'small_days'::regclass::oid || '_') AS of_small_days, count(*)
FROM pg_index WHERE indrelid = 'ods_power_consumption'::regclass AND indexrelid::regclass::text LIKE 'sgivm\_%'
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT stategrid_ivm.drop_view('small_days');
SELECT stategrid_ivm.sync('vdrop') IS NOT NULL AS synced;
SELECT state, worker_pid = :pid_before AS same_worker FROM stategrid_ivm.pipelines WHERE name = 'vdrop';
SELECT * FROM stategrid_ivm.verify('vdrop');
SELECT * FROM daily ORDER BY region_id, day;
SELECT view_name FROM stategrid_ivm.views WHERE pipeline = 'vdrop' ORDER BY view_name;
-- its table stays, as an ordinary table again (writable, with the rows it had)
SELECT * FROM small_days ORDER BY user_id, day;
INSERT INTO small_days VALUES (9, '2024-01-01', 1);
-- the indexes its statements needed on its input went with it; the other views' stay
SELECT 'after' AS drop_view, indexrelid::regclass::text ~ ('_' || 'small_days'::regclass::oid || '_') AS of_small_days, count(*)
FROM pg_index WHERE indrelid = 'ods_power_consumption'::regclass AND indexrelid::regclass::text LIKE 'sgivm\_%'
GROUP BY 1, 2 ORDER BY 1, 2;

-- ---- changes keep flowing; views are dropped with their tables, a reader before what it reads ----
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (3, 1, 70.00, '2024-05-02 08:00');
UPDATE power_user SET region_id = 8 WHERE user_id = 1;
SELECT stategrid_ivm.sync('vdrop') IS NOT NULL AS synced;
SELECT * FROM stategrid_ivm.verify('vdrop');
SELECT stategrid_ivm.drop_view('daily', drop_table => true);
SELECT to_regclass('daily') IS NULL AS daily_table_dropped;
-- a view added while the pipeline runs, then dropped: the worker follows both
SELECT stategrid_ivm.add_view('vdrop', 'per_user', $q$
    SELECT user_id, SUM(consumption_amount) AS total FROM detail GROUP BY user_id
$q$);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (4, 1, 1.00, '2024-05-03 08:00');
SELECT stategrid_ivm.sync('vdrop') IS NOT NULL AS synced;
SELECT * FROM per_user;
SELECT stategrid_ivm.drop_view('per_user', true);
SELECT stategrid_ivm.drop_view('detail');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_date)
VALUES (5, 1, 2.00, '2024-05-03 09:00');
SELECT stategrid_ivm.sync('vdrop') IS NOT NULL AS synced;
SELECT * FROM stategrid_ivm.verify('vdrop');
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'vdrop';
-- the table of a dropped view without drop_table is its owner's, unmaintained
SELECT count(*) AS detail_rows_kept FROM detail;

SELECT slot_name AS slot FROM stategrid_ivm.pipeline WHERE name = 'vdrop' \gset
SELECT stategrid_ivm.drop_pipeline('vdrop', drop_tables => true);
SELECT count(*) AS slots_left FROM pg_replication_slots WHERE slot_name = :'slot';
SELECT count(*) AS origins_left FROM pg_replication_origin WHERE roname = :'slot';
DROP OWNED BY view_drop_other;
DROP ROLE view_drop_other;
DROP SCHEMA view_drop CASCADE;
