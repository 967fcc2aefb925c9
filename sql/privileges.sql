-- Privileges (issue 7, deliverable 4): a non-superuser who owns the source tables runs the State
-- Grid warehouse; the worker and the SQL functions touch the user's tables only as the
-- pipeline's owner; a role cannot read, write or manage through a pipeline what it could not
-- otherwise; every SECURITY DEFINER function pins its search_path.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
DO $$
DECLARE r text;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_sgivm_%' LOOP
        EXECUTE format('DROP OWNED BY %I CASCADE', r);
        EXECUTE format('DROP ROLE %I', r);
    END LOOP;
END $$;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- ---------------------------------------------------------------------------------------------
-- Every SECURITY DEFINER function of the extension pins search_path (a caller's schema must
-- not be able to put a function or operator in front of pg_catalog's).
-- ---------------------------------------------------------------------------------------------
SELECT p.oid::regprocedure AS security_definer_function,
       coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false) AS search_path_pinned
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'stategrid_ivm'
WHERE p.prosecdef
ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT count(*) AS definer_functions_without_pinned_search_path
FROM pg_proc p
JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'stategrid_ivm'
WHERE p.prosecdef AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
-- the functions that run SQL as another role, or take the caller's stamp, are nobody's but ours
SELECT f, has_function_privilege('public', f, 'EXECUTE') AS public_may_execute
FROM unnest(ARRAY['stategrid_ivm._run_as(oid,text,text)', 'stategrid_ivm._take_caller_stamp(oid)',
                  'stategrid_ivm._caller(oid)', 'stategrid_ivm._slot_created(name)',
                  'stategrid_ivm.rebuild_pipeline(text)']::regprocedure[]) f;

-- ---------------------------------------------------------------------------------------------
-- The roles: alice owns the State Grid source tables; bob is somebody else; member inherits
-- alice's rights; carol is a member of alice without inheriting her rights (NOINHERIT).
-- ---------------------------------------------------------------------------------------------
CREATE ROLE regress_sgivm_alice NOLOGIN;
CREATE ROLE regress_sgivm_bob NOLOGIN;
CREATE ROLE regress_sgivm_member NOLOGIN IN ROLE regress_sgivm_alice;
CREATE ROLE regress_sgivm_carol NOLOGIN NOINHERIT IN ROLE regress_sgivm_alice;
CREATE SCHEMA sgivm_priv;
GRANT USAGE, CREATE ON SCHEMA sgivm_priv TO regress_sgivm_alice, regress_sgivm_bob;
GRANT USAGE ON SCHEMA sgivm_priv TO regress_sgivm_carol;
-- what a DBA grants to the roles that may run pipelines (README, Privileges)
GRANT EXECUTE ON FUNCTION
    stategrid_ivm.create_pipeline(text), stategrid_ivm.add_source(text, regclass, text),
    stategrid_ivm.add_view(text, text, text), stategrid_ivm.start_pipeline(text),
    stategrid_ivm.pause_pipeline(text), stategrid_ivm.resume_pipeline(text),
    stategrid_ivm.drop_pipeline(text, boolean), stategrid_ivm.sync(text, interval),
    stategrid_ivm.verify(text), stategrid_ivm.refresh_view(regclass),
    stategrid_ivm.rebuild_pipeline(text), stategrid_ivm.create_stategrid_pipeline(text)
    TO regress_sgivm_alice, regress_sgivm_bob, regress_sgivm_carol;

-- Runs a statement; 'ok', or its SQLSTATE and message.
CREATE FUNCTION sgivm_priv.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- Waits (up to the timeout) until a boolean query is true; returns its last value.
CREATE FUNCTION sgivm_priv.wait_until(cond text, timeout interval DEFAULT '30 s') RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + timeout;
    ok boolean;
BEGIN
    LOOP
        EXECUTE cond INTO ok;
        IF ok OR clock_timestamp() > deadline THEN
            RETURN coalesce(ok, false);
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA sgivm_priv TO PUBLIC;

-- ---------------------------------------------------------------------------------------------
-- alice, no superuser, runs the whole State Grid warehouse over her own tables.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_alice;
SET search_path = sgivm_priv;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all
-- a sink table created first, as the original example did, with a column of its own that
-- records who wrote each row
CREATE TABLE dws_region_daily_stats (
    stats_id bigserial PRIMARY KEY,
    region_id int, region_name varchar(100), stat_date date,
    total_consumption decimal(15,2), total_cost decimal(15,2), user_count int,
    avg_consumption decimal(10,2), max_consumption decimal(10,2), min_consumption decimal(10,2),
    update_time timestamp DEFAULT now(),
    written_by name DEFAULT current_user
);
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, phone)
VALUES (1, '张伟', '居民', 11, '北京', '13800138001'), (2, '李娜', '商业', 31, '上海', '13900139002');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 10.50, 5.88, '2024-03-01 08:00'), (2, 120.00, 102.00, '2024-03-01 09:00'),
       (1, 11.25, 6.30, '2024-03-02 08:00');
SELECT stategrid_ivm.create_stategrid_pipeline('alice_grid');
SELECT stategrid_ivm.sync('alice_grid') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('alice_grid');
RESET ROLE;
SELECT name, state, owner FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
-- every table the pipeline created belongs to alice, none to the superuser (the kept state of
-- the differential views too, named after the views' OIDs)
SELECT regexp_replace(c.relname, '^sgivm_state_[0-9]+', 'sgivm_state_<view>') AS relname, c.relowner::regrole AS owner
FROM pg_class c WHERE c.relnamespace = 'sgivm_priv'::regnamespace AND c.relkind = 'r'
ORDER BY relname COLLATE "C";
-- add_view filled the adopted table as alice
SELECT DISTINCT written_by FROM sgivm_priv.dws_region_daily_stats;

-- The worker applies as alice: rows it writes record her.
SET ROLE regress_sgivm_alice;
INSERT INTO sgivm_priv.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (2, 99.00, 84.15, '2024-03-03 10:00');
SELECT stategrid_ivm.sync('alice_grid') IS NOT NULL AS synced;
RESET ROLE;
SELECT stat_date, written_by FROM sgivm_priv.dws_region_daily_stats WHERE stat_date = '2024-03-03';
-- refresh_view, called by the superuser, recomputes as alice too (a view's functions are her
-- code: they never run with the caller's rights)
SELECT stategrid_ivm.refresh_view('sgivm_priv.dws_region_daily_stats') AS refreshed_rows;
SELECT DISTINCT written_by FROM sgivm_priv.dws_region_daily_stats;
-- verify, called by the superuser, compares as alice
SELECT view_name, ok FROM stategrid_ivm.verify('alice_grid');

-- ---------------------------------------------------------------------------------------------
-- A table the owner may not write is an error of the pipeline, not a superuser's write.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_alice;
REVOKE INSERT ON sgivm_priv.dwd_power_user_info FROM regress_sgivm_alice;
INSERT INTO sgivm_priv.power_user (user_id, user_name, region_id, region_name) VALUES (3, '王强', 44, '广东');
RESET ROLE;
SELECT sgivm_priv.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'alice_grid'$$) AS went_to_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
-- nothing of the batch was applied, not even to the mirror alice may write
SELECT count(*) AS user_3_mirrored FROM sgivm_priv.ods_power_user WHERE user_id = 3;
SET ROLE regress_sgivm_alice;
GRANT INSERT ON sgivm_priv.dwd_power_user_info TO regress_sgivm_alice;
SELECT stategrid_ivm.resume_pipeline('alice_grid');
SELECT stategrid_ivm.sync('alice_grid') IS NOT NULL AS synced;
SELECT user_id, user_name FROM sgivm_priv.dwd_power_user_info WHERE user_id = 3;
SELECT view_name, ok FROM stategrid_ivm.verify('alice_grid');
RESET ROLE;

-- A deferred trigger of the owner's would fire at commit, when the worker is the superuser
-- again: PostgreSQL refuses to queue it in the owner's restricted context, so the pipeline
-- goes to error; without the trigger it goes on.
SET ROLE regress_sgivm_alice;
CREATE FUNCTION sgivm_priv.note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'written by %', current_user;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER note_writer AFTER INSERT ON sgivm_priv.dws_region_daily_stats
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sgivm_priv.note_writer();
INSERT INTO sgivm_priv.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 20.00, 11.20, '2024-03-04 08:00');
RESET ROLE;
SELECT sgivm_priv.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'alice_grid'$$) AS went_to_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
SELECT sgivm_priv.try($$SELECT stategrid_ivm.refresh_view('sgivm_priv.dws_region_daily_stats')$$) AS refresh_as_superuser;
SET ROLE regress_sgivm_alice;
DROP TRIGGER note_writer ON sgivm_priv.dws_region_daily_stats;
SELECT stategrid_ivm.resume_pipeline('alice_grid');
SELECT stategrid_ivm.sync('alice_grid') IS NOT NULL AS synced;
SELECT count(*) AS readings_on_march_4 FROM sgivm_priv.dwd_power_consumption_detail WHERE consumption_date::date = '2024-03-04';
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- A source the owner may no longer read stops the pipeline: the stream carries rows past any
-- privilege check, so the worker checks the owner's SELECT itself, every batch.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_bob;
CREATE TABLE sgivm_priv.bob_meter (meter_id int PRIMARY KEY, reading numeric);
INSERT INTO sgivm_priv.bob_meter VALUES (1, 100.0);
GRANT SELECT ON sgivm_priv.bob_meter TO regress_sgivm_alice;
SET ROLE regress_sgivm_alice;
SELECT stategrid_ivm.create_pipeline('alice_meters');
SELECT stategrid_ivm.add_source('alice_meters', 'sgivm_priv.bob_meter');
SELECT stategrid_ivm.start_pipeline('alice_meters');
SELECT stategrid_ivm.sync('alice_meters') IS NOT NULL AS synced;
SET ROLE regress_sgivm_bob;
REVOKE SELECT ON sgivm_priv.bob_meter FROM regress_sgivm_alice;
INSERT INTO sgivm_priv.bob_meter VALUES (2, 200.0);
RESET ROLE;
SELECT sgivm_priv.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'alice_meters'$$) AS went_to_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'alice_meters';
SELECT count(*) AS mirrored FROM sgivm_priv.ods_bob_meter;
SET ROLE regress_sgivm_bob;
GRANT SELECT ON sgivm_priv.bob_meter TO regress_sgivm_alice;
SET ROLE regress_sgivm_alice;
SELECT stategrid_ivm.resume_pipeline('alice_meters');
SELECT stategrid_ivm.sync('alice_meters') IS NOT NULL AS synced;
SELECT count(*) AS mirrored FROM sgivm_priv.ods_bob_meter;
SELECT stategrid_ivm.drop_pipeline('alice_meters', true);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- bob: no rights on alice's tables, so no pipeline over them, none into them, and none of hers
-- to manage.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_alice;
CREATE TABLE sgivm_priv.alice_target (meter_id int, reading numeric);
GRANT ALL ON sgivm_priv.alice_target TO regress_sgivm_bob;  -- writable by bob: still not his
RESET ROLE;
SET ROLE regress_sgivm_bob;
SELECT stategrid_ivm.create_pipeline('bob_p');
-- a source bob may not read
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_source('bob_p', 'sgivm_priv.power_user')$$) AS source_not_readable;
-- a mirror, or a view table, that is alice's
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_source('bob_p', 'sgivm_priv.bob_meter', 'sgivm_priv.alice_target')$$) AS mirror_of_alice;
SELECT stategrid_ivm.add_source('bob_p', 'sgivm_priv.bob_meter', 'bob_ods_meter');
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_view('bob_p', 'sgivm_priv.alice_target',
    'SELECT meter_id, reading FROM sgivm_priv.bob_ods_meter')$$) AS view_into_alice_table;
-- a view over alice's mirror: not bob's pipeline's, and not readable by him
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_view('bob_p', 'bob_v',
    'SELECT user_id, user_name FROM sgivm_priv.ods_power_user')$$) AS view_over_alice_mirror;
-- alice's pipeline: bob may look, not touch
SELECT sgivm_priv.try($$SELECT stategrid_ivm.pause_pipeline('alice_grid')$$) AS pause;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.resume_pipeline('alice_grid')$$) AS resume;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.drop_pipeline('alice_grid', true)$$) AS drop_pipeline;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.start_pipeline('alice_grid')$$) AS start_pipeline;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_source('alice_grid', 'sgivm_priv.bob_meter')$$) AS add_source;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_view('alice_grid', 'bob_v', 'SELECT 1 AS x')$$) AS add_view;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.refresh_view('sgivm_priv.dwd_power_user_info')$$) AS refresh_view;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.rebuild_pipeline('alice_grid')$$) AS rebuild_pipeline;
SELECT sgivm_priv.try($$SELECT * FROM stategrid_ivm.verify('alice_grid')$$) AS verify;
SELECT name, state, owner FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
-- row counts of tables bob may not read are not his to see
SELECT view_name, rows FROM stategrid_ivm.views WHERE pipeline = 'alice_grid' ORDER BY view_name COLLATE "C";
-- the SECURITY DEFINER implementations take the caller only from the public functions' stamp
SELECT sgivm_priv.try($$SELECT stategrid_ivm._pause_pipeline('regress_sgivm_alice'::regrole, 'alice_grid')$$) AS forged_caller;
SELECT sgivm_priv.try($$SELECT stategrid_ivm._pause_pipeline(stategrid_ivm._stamp_caller(), 'alice_grid')$$) AS own_stamp;
SELECT sgivm_priv.try($$SELECT stategrid_ivm._run_as('regress_sgivm_alice'::regrole, 'SELECT 1')$$) AS run_as;
-- bob's SECURITY DEFINER function acts with bob's pipelines, not with its caller's
CREATE FUNCTION sgivm_priv.bob_pauses(p text) RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$ SELECT sgivm_priv.try(format('SELECT stategrid_ivm.pause_pipeline(%L)', p)) $$;
CREATE FUNCTION sgivm_priv.bob_pauses_inside(p text) RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$
    SELECT sgivm_priv.try(format('SELECT stategrid_ivm._pause_pipeline(%L::regrole, %L)', 'regress_sgivm_alice', p)) $$;
GRANT EXECUTE ON FUNCTION sgivm_priv.bob_pauses(text), sgivm_priv.bob_pauses_inside(text) TO regress_sgivm_alice;
SET ROLE regress_sgivm_alice;
SELECT sgivm_priv.bob_pauses('alice_grid') AS alice_calls_bobs_function;
SELECT sgivm_priv.bob_pauses_inside('alice_grid') AS alice_calls_bobs_function_inside;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
-- alice's own SECURITY DEFINER function lends her pipeline to whom she grants it, like her tables
CREATE FUNCTION sgivm_priv.alice_pauses(p text) RETURNS text LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog AS $$ SELECT sgivm_priv.try(format('SELECT stategrid_ivm.pause_pipeline(%L)', p)) $$;
GRANT EXECUTE ON FUNCTION sgivm_priv.alice_pauses(text) TO regress_sgivm_bob;
SET ROLE regress_sgivm_bob;
SELECT sgivm_priv.alice_pauses('alice_grid') AS bob_calls_alices_function;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'alice_grid';
-- bob's own pipeline runs; a first view over a mirror, added while it runs, makes the worker
-- create that mirror's working table: as bob, who must write it (it was the superuser's once)
SELECT stategrid_ivm.start_pipeline('bob_p');
SELECT stategrid_ivm.sync('bob_p') IS NOT NULL AS synced;
SELECT stategrid_ivm.add_view('bob_p', 'sgivm_priv.bob_double', 'SELECT meter_id, reading * 2 AS doubled FROM sgivm_priv.bob_ods_meter');
INSERT INTO sgivm_priv.bob_meter VALUES (3, 300.0);
SELECT stategrid_ivm.sync('bob_p') IS NOT NULL AS synced;
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'bob_p';
SELECT view_name, ok FROM stategrid_ivm.verify('bob_p');
SELECT stategrid_ivm.drop_pipeline('bob_p', true);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- Members of alice act for her when they have her rights; a NOINHERIT member only after SET ROLE.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_member;
SELECT stategrid_ivm.resume_pipeline('alice_grid');
SELECT stategrid_ivm.sync('alice_grid') IS NOT NULL AS synced;
SET ROLE regress_sgivm_carol;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_view('alice_grid', 'sgivm_priv.carol_v',
    'SELECT user_id, user_name FROM sgivm_priv.ods_power_user')$$) AS carol_without_alices_rights;
SET ROLE regress_sgivm_alice;  -- carol may become alice (SET ROLE), and then has her rights
SELECT stategrid_ivm.add_view('alice_grid', 'sgivm_priv.carol_v',
    'SELECT user_id, user_name FROM sgivm_priv.ods_power_user')::text AS carol_as_alice;
-- and alice's tables stay alice's, whoever of her members added them
RESET ROLE;
SELECT relowner::regrole AS carol_v_owner FROM pg_class WHERE oid = 'sgivm_priv.carol_v'::regclass;
-- an adopted table the owner may not fully write is refused at once
SET ROLE regress_sgivm_alice;
CREATE TABLE sgivm_priv.alice_readonly (user_id bigint, user_name varchar(100));
REVOKE DELETE ON sgivm_priv.alice_readonly FROM regress_sgivm_alice;
SELECT sgivm_priv.try($$SELECT stategrid_ivm.add_view('alice_grid', 'sgivm_priv.alice_readonly',
    'SELECT user_id, user_name FROM sgivm_priv.ods_power_user')$$) AS adopt_without_delete;

-- ---------------------------------------------------------------------------------------------
-- alice drops her pipeline with its tables; nothing is left behind.
-- ---------------------------------------------------------------------------------------------
SELECT slot_name AS alice_slot FROM stategrid_ivm.pipelines WHERE name = 'alice_grid' \gset
SELECT stategrid_ivm.drop_pipeline('alice_grid', true);
RESET ROLE;
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name = :'alice_slot';
SELECT count(*) AS origins FROM pg_replication_origin WHERE roname = :'alice_slot';
SELECT count(*) AS pipelines FROM stategrid_ivm.pipelines;
SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'sgivm_priv'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C";

SET client_min_messages = warning;
DROP SCHEMA sgivm_priv CASCADE;
DROP OWNED BY regress_sgivm_alice, regress_sgivm_bob, regress_sgivm_member, regress_sgivm_carol;
DROP ROLE regress_sgivm_carol, regress_sgivm_member, regress_sgivm_bob, regress_sgivm_alice;
RESET client_min_messages;
