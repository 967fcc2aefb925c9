-- ALTER EXTENSION stategrid_ivm UPDATE from 0.1.0, the first released version (issue 7,
-- deliverable 7): a pipeline created under 0.1.0 keeps running through the update and is
-- managed with 0.2.0's functions afterwards; and an updated install has exactly the objects of
-- a fresh one (every member of the extension with its definition, grants and dump settings).
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sgivm_fresh WITH (FORCE);
DROP DATABASE IF EXISTS regress_sgivm_updated WITH (FORCE);
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE DATABASE regress_sgivm_fresh;
CREATE DATABASE regress_sgivm_updated;

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

ALTER EXTENSION stategrid_ivm UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'stategrid_ivm';

-- The worker never stopped: changes made after the update flow in.
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 12.00, 6.72, '2024-03-02 08:00');
UPDATE power_user SET region_id = 44, region_name = '广东' WHERE user_id = 2;
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced;
SELECT name, state, owner = current_user::regrole AS owned_by_me, transactions_applied
FROM stategrid_ivm.pipelines WHERE name = 'updated';
SELECT region_id, stat_date, total_consumption, user_count FROM dws_region_daily_stats ORDER BY stat_date, region_id;
SELECT view_name, ok FROM stategrid_ivm.verify('updated');
-- 0.2.0's functions manage the pipeline 0.1.0 created
SELECT stategrid_ivm.pause_pipeline('updated');
SELECT stategrid_ivm.refresh_view('dws_user_ranking') AS refreshed_rows;
SELECT stategrid_ivm.resume_pipeline('updated');
SELECT stategrid_ivm.sync('updated') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('updated');

-- The updated install is the fresh one.
:objects_query \gset updated_
SELECT :'fresh_objects' = :'updated_objects' AS same_objects_as_fresh_install,
       array_length(string_to_array(:'updated_objects', E'\n'), 1) > 50 AS compared_many_objects;
SELECT o AS only_in_fresh_install FROM unnest(string_to_array(:'fresh_objects', E'\n')) o
EXCEPT SELECT unnest(string_to_array(:'updated_objects', E'\n'));
SELECT o AS only_in_updated_install FROM unnest(string_to_array(:'updated_objects', E'\n')) o
EXCEPT SELECT unnest(string_to_array(:'fresh_objects', E'\n'));

SELECT stategrid_ivm.drop_pipeline('updated', true);
SELECT count(*) AS slots FROM pg_replication_slots WHERE database = current_database();

\c :orig_db
SET client_min_messages = warning;
DROP DATABASE regress_sgivm_fresh WITH (FORCE);
DROP DATABASE regress_sgivm_updated WITH (FORCE);
RESET client_min_messages;
