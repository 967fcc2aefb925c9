-- ALTER EXTENSION stategrid_ivm UPDATE from the released versions 0.1.0 and 0.2.0 to 0.3.0:
-- a pipeline created under 0.1.0 and one created under 0.2.0 keep running through the updates
-- and are managed with 0.3.0's functions afterwards; and an updated install, from 0.1.0 (through
-- 0.2.0) or from 0.2.0, has exactly the objects of a fresh install of 0.3.0 (every member of
-- the extension with its definition, grants and dump settings).
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sgivm_fresh WITH (FORCE);
DROP DATABASE IF EXISTS regress_sgivm_updated WITH (FORCE);
DROP DATABASE IF EXISTS regress_sgivm_from_020 WITH (FORCE);
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE DATABASE regress_sgivm_fresh;
CREATE DATABASE regress_sgivm_updated;
CREATE DATABASE regress_sgivm_from_020;

-- One line per member of the extension: what it is, and a digest of its definition (functions
-- with their attributes and grants, tables with columns, defaults, constraints, indexes and
-- grants, views with their query), plus the tables whose rows pg_dump keeps.
SELECT $q$
SELECT string_agg(line, E'\n' ORDER BY line COLLATE "C") AS objects FROM (
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' ' || md5(coalesce(
        CASE d.classid
        WHEN 'pg_proc'::regclass THEN
            (SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, '') FROM pg_proc p WHERE p.oid = d.objid)
        WHEN 'pg_class'::regclass THEN
            (SELECT c.relkind::text || ' acl ' || coalesce(c.relacl::text, '') || ' view ' || coalesce(pg_get_viewdef(c.oid), '')
                    || ' columns ' || coalesce((
                        SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                          || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                          || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''), ', ' ORDER BY a.attnum)
                        FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
                    || ' constraints ' || coalesce((
                        SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)
                        FROM pg_constraint k WHERE k.conrelid = c.oid), '')
                    || ' indexes ' || coalesce((
                        SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid))
                        FROM pg_index i WHERE i.indrelid = c.oid), '')
             FROM pg_class c WHERE c.oid = d.objid)
        ELSE '' END, '')) AS line
    FROM pg_depend d
    WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
      AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'stategrid_ivm')
    UNION ALL
    SELECT 'dumped rows of ' || x.c::regclass::text || ' where ' || quote_literal(x.f)
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, f)
    WHERE e.extname = 'stategrid_ivm'
) o
$q$ AS objects_query \gset

-- ---------------------------------------------------------------------------------------------
-- A fresh install of the default version.
-- ---------------------------------------------------------------------------------------------
\c regress_sgivm_fresh
CREATE EXTENSION stategrid_ivm;
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';
:objects_query \gset fresh_

-- ---------------------------------------------------------------------------------------------
-- 0.1.0, a State Grid pipeline running under it, then the update.
-- ---------------------------------------------------------------------------------------------
\c regress_sgivm_updated
CREATE EXTENSION stategrid_ivm VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, phone)
VALUES (1, '张伟', '居民', 11, '北京', '13800138001'), (2, '李娜', '商业', 31, '上海', '13900139002');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 10.50, 5.88, '2024-03-01 08:00'), (2, 120.00, 102.00, '2024-03-01 09:00');
SELECT stategrid_ivm.create_stategrid_pipeline('updated');
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('updated');

-- ---------------------------------------------------------------------------------------------
-- Updated to 0.2.0, and a second State Grid pipeline created under it, in schema s020.
-- ---------------------------------------------------------------------------------------------
ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';
CREATE SCHEMA s020;
SET search_path = s020, public;
\set ECHO none
\i :schema_file
\set ECHO all
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, phone)
VALUES (7, '王强', '工业', 32, '江苏', '13700137007');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (7, 800.00, 520.00, '2024-03-01 10:00');
SELECT stategrid_ivm.create_stategrid_pipeline('under_020');
RESET search_path;
SELECT stategrid_ivm.sync('under_020') IS NOT NULL AS synced;

-- ---------------------------------------------------------------------------------------------
-- The update to 0.3.0, both pipelines running.
-- ---------------------------------------------------------------------------------------------
ALTER EXTENSION stategrid_ivm UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';

-- The workers never stopped: changes made after the update flow in.
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 12.00, 6.72, '2024-03-02 08:00');
UPDATE power_user SET region_id = 44, region_name = '广东' WHERE user_id = 2;
INSERT INTO s020.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (7, 650.00, 422.50, '2024-03-02 10:00');
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced, stategrid_ivm.sync('under_020') IS NOT NULL AS synced_020;
SELECT name, state, owner = current_user::regrole AS owned_by_me, transactions_applied
FROM stategrid_ivm.pipelines ORDER BY name;
SELECT region_id, stat_date, total_consumption, user_count FROM dws_region_daily_stats ORDER BY stat_date, region_id;
SELECT region_id, stat_date, total_consumption, user_count FROM s020.dws_region_daily_stats ORDER BY stat_date, region_id;
SELECT p.name, v.view_name, v.ok FROM (VALUES ('updated'), ('under_020')) p(name), stategrid_ivm.verify(p.name) v;
-- The update gave the view tables of both pipelines the replica identity add_view gives them
-- (a primary key on the key, or FULL where a key part may be NULL; the mirrors have the
-- source's primary key): a publication of them no longer stops the workers.
SELECT n.nspname AS schema, c.relname AS table_name, c.relreplident AS identity,
       (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = c.oid AND i.indisprimary) AS primary_key
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid IN (SELECT ods_relid FROM stategrid_ivm.source UNION ALL SELECT relid FROM stategrid_ivm.view)
ORDER BY 1, 2;
CREATE PUBLICATION updated_pub FOR TABLE dwd_power_user_info, dwd_power_consumption_detail, dws_region_daily_stats,
    dws_user_ranking, s020.dwd_power_user_info, s020.dwd_power_consumption_detail;
UPDATE power_consumption SET consumption_amount = consumption_amount + 1;
UPDATE power_user SET user_name = user_name || '*';
UPDATE s020.power_user SET user_name = user_name || '*';
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced, stategrid_ivm.sync('under_020') IS NOT NULL AS synced_020;
SELECT p.name, v.view_name, v.ok FROM (VALUES ('updated'), ('under_020')) p(name), stategrid_ivm.verify(p.name) v;
DROP PUBLICATION updated_pub;
-- 0.3.0's functions manage the pipelines 0.1.0 and 0.2.0 created (drop_view is new in 0.3.0)
SELECT stategrid_ivm.pause_pipeline('updated');
SELECT stategrid_ivm.refresh_view('dws_user_ranking') AS refreshed_rows;
SELECT stategrid_ivm.resume_pipeline('updated');
SELECT stategrid_ivm.drop_view('s020.dws_user_ranking', true);
INSERT INTO s020.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (7, 10.00, 6.50, '2024-03-03 10:00');
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced, stategrid_ivm.sync('under_020') IS NOT NULL AS synced_020;
SELECT p.name, v.view_name, v.ok FROM (VALUES ('updated'), ('under_020')) p(name), stategrid_ivm.verify(p.name) v;

-- The updated install is the fresh one.
:objects_query \gset updated_
SELECT stategrid_ivm.drop_pipeline(name, true) FROM stategrid_ivm.pipelines;
SELECT count(*) AS slots FROM pg_replication_slots WHERE database = current_database();

-- ---------------------------------------------------------------------------------------------
-- 0.2.0 installed, then updated.
-- ---------------------------------------------------------------------------------------------
\c regress_sgivm_from_020
CREATE EXTENSION stategrid_ivm VERSION '0.2.0';
ALTER EXTENSION stategrid_ivm UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';
:objects_query \gset from_020_

-- The three installs have the same objects.
SELECT :'fresh_objects' = :'updated_objects' AS updated_from_010_as_fresh,
       :'fresh_objects' = :'from_020_objects' AS updated_from_020_as_fresh,
       array_length(string_to_array(:'fresh_objects', E'\n'), 1) > 50 AS compared_many_objects;
-- (what differs, if anything: one line per object)
SELECT i.name AS updated_install, d.side, d.o AS object
FROM (VALUES ('from 0.1.0', :'updated_objects'), ('from 0.2.0', :'from_020_objects')) i(name, objects),
     LATERAL (SELECT 'only in the fresh install', o FROM (
                  SELECT unnest(string_to_array(:'fresh_objects', E'\n'))
                  EXCEPT SELECT unnest(string_to_array(i.objects, E'\n'))) f(o)
              UNION ALL
              SELECT 'only in the updated install', o FROM (
                  SELECT unnest(string_to_array(i.objects, E'\n'))
                  EXCEPT SELECT unnest(string_to_array(:'fresh_objects', E'\n'))) u(o)) d(side, o)
ORDER BY 1, 2, 3;

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_sgivm_fresh WITH (FORCE);
DROP DATABASE regress_sgivm_updated WITH (FORCE);
DROP DATABASE regress_sgivm_from_020 WITH (FORCE);
RESET client_min_messages;
