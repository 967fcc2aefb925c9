-- The ODS, DWD and DWS tables are written by their pipeline only (issue 7, deliverable 3).
-- Every maintained table carries the statement trigger sgivm_refuse_direct_writes: INSERT,
-- UPDATE, DELETE, TRUNCATE and COPY by anyone else are refused with a hint, while the worker,
-- add_view and refresh_view go on writing. drop_pipeline hands the tables back as ordinary
-- tables. Damage done past the trigger (a superuser with session_replication_role = replica)
-- is found by verify() and repaired by refresh_view().
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'direct_writes_analyst') THEN
        EXECUTE 'DROP OWNED BY direct_writes_analyst';
        EXECUTE 'DROP ROLE direct_writes_analyst';
    END IF;
END $$;
CREATE SCHEMA direct_writes;
SET search_path = direct_writes, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

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

-- Runs a statement; 'ok' or its SQLSTATE and message.
CREATE FUNCTION try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION try(text) TO PUBLIC;

SELECT stategrid_ivm.generate_sample_data(5, 2) AS readings;
SELECT stategrid_ivm.create_stategrid_pipeline('dw');
SELECT settle('dw');
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) LIKE '%BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE%FOR EACH STATEMENT%' AS every_write
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'direct_writes'::regnamespace AND NOT t.tgisinternal ORDER BY c.relname;

-- ---- every kind of write, on every layer, is refused with a hint ------------------------------
INSERT INTO dws_region_daily_stats (region_id, region_name, stat_date, total_consumption) VALUES (99, 'x', '2024-01-15', 1);
UPDATE dwd_power_consumption_detail SET consumption_amount = 0;
DELETE FROM ods_power_user;
TRUNCATE dws_user_ranking;
COPY ods_power_consumption (consumption_id) FROM stdin;
424242
\.
-- INSERT ... ON CONFLICT, MERGE and writes through a CTE go the same way
SELECT try($$INSERT INTO dwd_power_user_info (user_id) VALUES (1) ON CONFLICT DO NOTHING$$) AS upsert;
SELECT try($$MERGE INTO dwd_power_user_info t USING (VALUES (1)) s(id) ON t.user_id = s.id
             WHEN MATCHED THEN DELETE$$) AS merge;
SELECT try($$WITH d AS (DELETE FROM dwd_power_user_info RETURNING 1) SELECT count(*) FROM d$$) AS cte;
-- a statement that would change no row is refused as well: the trigger is per statement
SELECT try($$DELETE FROM ods_power_user WHERE false$$) AS no_rows;
-- nothing changed
SELECT settle('dw');
SELECT view_name, stategrid_ivm.view_rows(view_name::regclass) AS rows FROM stategrid_ivm.views WHERE pipeline = 'dw' ORDER BY view_name;

-- a role that was granted every privilege on the tables is refused too: the guard is not about
-- privileges, but about the tables following their sources
CREATE ROLE direct_writes_analyst NOLOGIN;
GRANT USAGE ON SCHEMA direct_writes TO direct_writes_analyst;
GRANT ALL ON ALL TABLES IN SCHEMA direct_writes TO direct_writes_analyst;
SET ROLE direct_writes_analyst;
SELECT count(*) > 0 AS can_read FROM dws_region_daily_stats;
SELECT try($$UPDATE direct_writes.dws_region_daily_stats SET total_consumption = 0$$) AS analyst_update;
-- ...and cannot open a table for writing without INSERT and DELETE rights on it
RESET ROLE;
REVOKE DELETE ON dws_user_ranking FROM direct_writes_analyst;
SET ROLE direct_writes_analyst;
SELECT try($$SELECT stategrid_ivm._allow_direct_write('direct_writes.dws_user_ranking'::regclass)$$) AS allow_without_delete;
RESET ROLE;

-- ---- the pipeline's own writers go on ------------------------------------------------------------
-- the worker
SELECT stategrid_ivm.generate_follow_up_changes(8) AS changes;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 12.50, 7.00, '2024-01-15 12:00');
SELECT settle('dw');
-- refresh_view, also inside a transaction that then tries to write another maintained table
SELECT stategrid_ivm.refresh_view('dws_region_daily_stats') > 0 AS refreshed;
BEGIN;
SELECT stategrid_ivm.refresh_view('dws_user_ranking') > 0 AS refreshed;
SELECT try($$DELETE FROM direct_writes.dws_region_daily_stats$$) AS other_table;
COMMIT;
-- add_view on the running pipeline fills its new table, which is guarded from then on
SELECT stategrid_ivm.add_view('dw', 'region_totals', $q$
    SELECT region_id, sum(total_consumption) AS kwh FROM dws_region_daily_stats GROUP BY region_id $q$);
SELECT count(*) > 0 AS filled FROM region_totals;
SELECT try($$DELETE FROM direct_writes.region_totals$$) AS region_totals_delete;
-- a pipeline whose table was filled in the same transaction as other writes: the transaction
-- may fill only the new table
BEGIN;
SELECT stategrid_ivm.add_view('dw', 'user_totals', $q$
    SELECT user_id, sum(total_consumption) AS kwh FROM dws_user_ranking GROUP BY user_id $q$) IS NOT NULL AS added;
SELECT try($$DELETE FROM direct_writes.region_totals$$) AS other_table;
ROLLBACK;
SELECT to_regclass('direct_writes.user_totals') IS NULL AS rolled_back;
-- pause and resume keep the guard; the backfill of a rebuilt pipeline writes past it
SELECT stategrid_ivm.pause_pipeline('dw');
SELECT try($$DELETE FROM direct_writes.ods_power_user$$) AS paused_delete;
SELECT stategrid_ivm.resume_pipeline('dw');
SELECT stategrid_ivm.rebuild_pipeline('dw');
SELECT settle('dw');

-- ---- damage past the trigger: verify finds it, refresh_view repairs it ----------------------------
BEGIN;
SET LOCAL session_replication_role = replica;   -- a superuser switching triggers off
DELETE FROM dws_region_daily_stats WHERE region_id = (SELECT min(region_id) FROM dws_region_daily_stats);
UPDATE dwd_power_consumption_detail SET consumption_amount = consumption_amount + 1
WHERE consumption_id = (SELECT min(consumption_id) FROM dwd_power_consumption_detail);
COMMIT;
SELECT view_name, missing_rows > 0 OR extra_rows > 0 AS damaged, ok FROM stategrid_ivm.verify('dw')
WHERE NOT ok ORDER BY view_name;
-- repair bottom-up: the DWD first, then what is computed from it
SELECT stategrid_ivm.refresh_view('dwd_power_consumption_detail') > 0 AS refreshed;
SELECT stategrid_ivm.refresh_view('dws_region_daily_stats') > 0 AS refreshed;
SELECT stategrid_ivm.refresh_view('dws_user_ranking') > 0 AS refreshed;
SELECT stategrid_ivm.refresh_view('region_totals') > 0 AS refreshed;
SELECT settle('dw');

-- ---- drop_pipeline hands the tables back as ordinary, writable tables ----------------------------
SELECT stategrid_ivm.drop_pipeline('dw');
SELECT count(*) AS triggers_left FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'direct_writes'::regnamespace AND t.tgname = 'sgivm_refuse_direct_writes';
DELETE FROM region_totals;
TRUNCATE dws_user_ranking;
-- and a new pipeline adopting them guards them again
SELECT stategrid_ivm.create_stategrid_pipeline('dw');
SELECT settle('dw');
SELECT try($$TRUNCATE direct_writes.dws_user_ranking$$) AS adopted_truncate;
SELECT stategrid_ivm.drop_pipeline('dw', drop_tables => true);
DROP TABLE region_totals;
SELECT count(*) AS tables_left FROM pg_class
WHERE relnamespace = 'direct_writes'::regnamespace AND relkind = 'r' AND relname LIKE 'd%';

DROP OWNED BY direct_writes_analyst;
DROP ROLE direct_writes_analyst;
DROP SCHEMA direct_writes CASCADE;
