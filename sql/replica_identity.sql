-- Every table a pipeline maintains has a replica identity (issue 17, item 1), so that a
-- publication of the warehouse tables does not stop the worker ("cannot update table ...
-- because it does not have a replica identity and publishes updates") and pg_dump -s carries
-- it: ODS mirrors the source's primary key; a view its key as primary key where no key part
-- can be NULL, else REPLICA IDENTITY FULL (docs/replication.md).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA replica_identity;
SET search_path = replica_identity, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

-- Per maintained table of this schema: its replica identity, the columns that identify a row
-- (the primary key's, or the identity index's), and its NOT NULL columns.
CREATE TEMP VIEW identities AS
SELECT c.relname AS table_name,
       CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'f' THEN 'full' WHEN 'i' THEN 'index' ELSE 'nothing' END AS identity,
       (SELECT CASE WHEN i.indisprimary THEN 'primary key (' ELSE 'index (' END
               || string_agg(a.attname, ', ' ORDER BY k.n) || ')'
        FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(att, n)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att
        WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident END
        GROUP BY i.indexrelid, i.indisprimary) AS identified_by,
       (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attnotnull) AS not_null
FROM pg_class c
WHERE c.relnamespace = 'replica_identity'::regnamespace
  AND c.oid IN (SELECT ods_relid FROM stategrid_ivm.source UNION ALL SELECT relid FROM stategrid_ivm.view);

-- 1. The State Grid pipeline over the example's sources, whose power_consumption.user_id and
-- consumption_date may be NULL: the DWS groups by them (a NULL group is a row), so the DWS
-- tables are identified by all their columns; mirrors and DWD by primary key.
SELECT stategrid_ivm.create_stategrid_pipeline('ri_grid');
SELECT * FROM identities ORDER BY table_name;

-- A publication of every warehouse table, all operations: the worker goes on through inserts,
-- updates (DWD in place by key, DWS rows whose key holds a NULL), deletes and a TRUNCATE.
CREATE PUBLICATION ri_grid_pub FOR TABLE ods_power_user, ods_power_consumption, dwd_power_user_info,
    dwd_power_consumption_detail, dws_region_daily_stats, dws_user_ranking;
SELECT stategrid_ivm.generate_sample_data(20, 3) AS readings;
SELECT stategrid_ivm.generate_follow_up_changes(10) AS changes;
UPDATE power_consumption SET consumption_date = NULL WHERE consumption_id % 7 = 0;
UPDATE power_consumption SET user_id = NULL WHERE consumption_id % 11 = 0;
UPDATE power_consumption SET consumption_amount = consumption_amount + 1 WHERE consumption_id % 5 = 0;
UPDATE power_user SET user_name = user_name || '*', region_id = region_id + 1 WHERE user_id % 4 = 0;
DELETE FROM power_consumption WHERE consumption_id % 9 = 0;
SELECT stategrid_ivm.sync('ri_grid') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_grid');
TRUNCATE power_consumption;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 1, 3.00, 1.50, '2024-05-01 08:00'), (2, NULL, 4.00, 2.00, NULL);
UPDATE power_consumption SET consumption_amount = 5.00;
SELECT stategrid_ivm.sync('ri_grid') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_grid');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'ri_grid';
SELECT count(*) AS ranking_rows FROM dws_user_ranking;
-- The kept state of the differentially maintained DWS views (sgivm_state_* tables beside them)
-- is published too by FOR TABLES IN SCHEMA, as by FOR ALL TABLES: each state table is identified
-- by all its columns (its key admits NULL groups), and the worker goes on.
CREATE TEMP VIEW state_identities AS
SELECT count(*) AS state_tables, count(*) FILTER (WHERE c.relreplident <> 'f') AS without_full_identity
FROM pg_class c
WHERE c.relnamespace = 'replica_identity'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'sgivm\_state\_%';
SELECT * FROM state_identities;
CREATE PUBLICATION ri_schema_pub FOR TABLES IN SCHEMA replica_identity;
SELECT stategrid_ivm.generate_sample_data(20, 3, start_date => '2024-05-02') AS readings;
UPDATE power_consumption SET consumption_amount = consumption_amount + 2 WHERE consumption_id % 3 = 0;
DELETE FROM power_consumption WHERE consumption_id % 4 = 0;
SELECT stategrid_ivm.sync('ri_grid') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_grid');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'ri_grid';
-- State tables made by an earlier build, without an identity: the worker gives them one when it
-- starts, before its first update of them.
SELECT stategrid_ivm.pause_pipeline('ri_grid');
DO $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'replica_identity'::regnamespace
             AND c.relkind = 'r' AND c.relname LIKE 'sgivm\_state\_%' LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', t);
    END LOOP;
END
$$;
SELECT * FROM state_identities;
SELECT stategrid_ivm.resume_pipeline('ri_grid');
UPDATE power_consumption SET consumption_amount = consumption_amount + 3 WHERE consumption_id % 5 = 1;
SELECT stategrid_ivm.sync('ri_grid') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_grid');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'ri_grid';
SELECT * FROM state_identities;
DROP PUBLICATION ri_schema_pub;
DROP PUBLICATION ri_grid_pub;
SELECT stategrid_ivm.drop_pipeline('ri_grid', drop_tables => true);
TRUNCATE power_consumption, power_user;

-- 2. User views over a source that declares its columns NOT NULL: keys proven never NULL get a
-- primary key, and a view table add_view creates declares every proven column NOT NULL (so the
-- view over it proves its key in turn). A nullable group, a group by a function (not proven),
-- and a null-extended column of an outer join are not NOT NULL; a view whose key may hold NULL
-- is identified by all its columns. (Every view has a key today, its fact's key or its GROUP
-- BY: one without, whose rows may repeat, would be identified by all its columns too.)
CREATE TABLE meter (meter_id bigint PRIMARY KEY, region int NOT NULL, day date NOT NULL, kwh numeric,
                    note text, owner_id bigint);
SELECT stategrid_ivm.create_pipeline('ri_user');
SELECT stategrid_ivm.add_source('ri_user', 'meter');
SELECT stategrid_ivm.add_source('ri_user', 'power_user');
SELECT stategrid_ivm.add_view('ri_user', 'region_day', $q$
    SELECT region, day, sum(kwh) AS kwh, count(*) AS readings FROM ods_meter GROUP BY region, day $q$);
SELECT stategrid_ivm.add_view('ri_user', 'by_day', $q$
    SELECT day, sum(kwh) AS kwh FROM region_day GROUP BY day $q$);
SELECT stategrid_ivm.add_view('ri_user', 'by_month', $q$
    SELECT extract(month FROM day) AS month, sum(kwh) AS kwh FROM ods_meter GROUP BY extract(month FROM day) $q$);
SELECT stategrid_ivm.add_view('ri_user', 'by_note', $q$
    SELECT note, count(*) AS n FROM ods_meter GROUP BY note $q$);
SELECT stategrid_ivm.add_view('ri_user', 'by_note_or_empty', $q$
    SELECT coalesce(note, '') AS note, count(*) AS n FROM ods_meter GROUP BY coalesce(note, '') $q$);
SELECT stategrid_ivm.add_view('ri_user', 'meter_owner', $q$
    SELECT m.meter_id, m.region::bigint AS region, u.user_id, u.user_name
    FROM ods_meter m LEFT JOIN ods_power_user u ON u.user_id = m.owner_id $q$);
SELECT view_name, plan->'key' AS key FROM stategrid_ivm.view
WHERE pipeline_id = (SELECT pipeline_id FROM stategrid_ivm.pipeline WHERE name = 'ri_user') ORDER BY view_id;

-- 3. Adopted (pre-created) tables: one without an identity gets the view's key as primary key
-- (its key columns made NOT NULL, nothing else of it changed); one with a primary key of its
-- own keeps it; one with REPLICA IDENTITY NOTHING is refused, as is such an ODS mirror.
CREATE TABLE adopted_plain (region int, day date, kwh numeric, comment text);
SELECT stategrid_ivm.add_view('ri_user', 'adopted_plain', $q$
    SELECT region, day, sum(kwh) AS kwh FROM ods_meter GROUP BY region, day $q$);
CREATE TABLE adopted_own_key (row_id serial PRIMARY KEY, region int, kwh numeric);
SELECT stategrid_ivm.add_view('ri_user', 'adopted_own_key', $q$
    SELECT region, sum(kwh) AS kwh FROM ods_meter GROUP BY region $q$);
CREATE TABLE adopted_nothing (region int, kwh numeric);
ALTER TABLE adopted_nothing REPLICA IDENTITY NOTHING;
SELECT stategrid_ivm.add_view('ri_user', 'adopted_nothing', $q$
    SELECT region, sum(kwh) AS kwh FROM ods_meter GROUP BY region $q$);
CREATE TABLE second_meter (LIKE meter INCLUDING ALL);
CREATE TABLE ods_second_meter (LIKE meter INCLUDING ALL);
ALTER TABLE ods_second_meter REPLICA IDENTITY NOTHING;
SELECT stategrid_ivm.add_source('ri_user', 'second_meter');
DROP TABLE adopted_nothing, second_meter, ods_second_meter;
SELECT * FROM identities ORDER BY table_name;

-- The publication of all of them, under changes, a TRUNCATE, and after rebuild_pipeline (which
-- makes the primary keys named after the views' OIDs again).
CREATE PUBLICATION ri_user_pub FOR TABLE ods_meter, ods_power_user, region_day, by_day, by_month, by_note,
    by_note_or_empty, meter_owner, adopted_plain, adopted_own_key;
SELECT stategrid_ivm.start_pipeline('ri_user');
INSERT INTO power_user (user_id, user_name) VALUES (1, 'a'), (2, 'b');
INSERT INTO meter SELECT g, g % 3, date '2024-05-01' + g % 4, g, CASE WHEN g % 2 = 0 THEN 'n' || g % 4 END, g % 3
FROM generate_series(1, 40) g;
UPDATE meter SET kwh = kwh + 1, note = NULL WHERE meter_id % 3 = 0;
UPDATE power_user SET user_name = 'c' WHERE user_id = 2;
DELETE FROM meter WHERE meter_id % 5 = 0;
SELECT stategrid_ivm.sync('ri_user') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_user');
TRUNCATE meter;
INSERT INTO meter VALUES (1, 1, '2024-05-01', 2, NULL, 1), (2, 1, '2024-05-01', 3, NULL, NULL);
SELECT stategrid_ivm.rebuild_pipeline('ri_user');
UPDATE meter SET kwh = kwh * 2;
SELECT stategrid_ivm.sync('ri_user') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ri_user');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'ri_user';
SELECT table_name, identity, identified_by FROM identities ORDER BY table_name;
-- (the primary key of a view is its key index, named after the view's OID)
SELECT count(*) AS keys_named_otherwise FROM pg_constraint k JOIN stategrid_ivm.view v ON v.relid = k.conrelid
WHERE k.contype = 'p' AND k.conname <> 'sgivm_k_' || v.relid || '_0' AND v.view_name <> 'replica_identity.adopted_own_key';

-- No maintained table of the database is without an identity.
SELECT count(*) AS without_identity FROM pg_class c
WHERE c.oid IN (SELECT ods_relid FROM stategrid_ivm.source UNION ALL SELECT relid FROM stategrid_ivm.view)
  AND NOT (c.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
           AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident END));

DROP PUBLICATION ri_user_pub;
SELECT stategrid_ivm.drop_pipeline('ri_user', drop_tables => true);
DROP SCHEMA replica_identity CASCADE;
