-- Row-level security of source tables (issue 13, item 1): a pipeline copies and streams every
-- row of its sources into its owner's tables, unfiltered by the sources' policies. So its owner
-- must bypass them -- be a superuser, have BYPASSRLS, or own the table without FORCE ROW LEVEL
-- SECURITY, as PostgreSQL decides it (check_enable_rls) -- at add_source, at start and rebuild,
-- in refresh_view and verify, and again in the worker before each batch: a policy enabled
-- later, or BYPASSRLS taken away, puts the pipeline in error before any row of the batch lands.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
DROP SCHEMA IF EXISTS sgivm_rls CASCADE;
DO $$
DECLARE r text;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_sgivm_rls%' LOOP
        EXECUTE format('DROP OWNED BY %I CASCADE', r);
        EXECUTE format('DROP ROLE %I', r);
    END LOOP;
END $$;
RESET client_min_messages;
\set SHOW_CONTEXT never

CREATE ROLE regress_sgivm_rls NOLOGIN;
CREATE SCHEMA sgivm_rls;
GRANT USAGE, CREATE ON SCHEMA sgivm_rls TO regress_sgivm_rls;
GRANT EXECUTE ON FUNCTION
    stategrid_ivm.create_pipeline(text), stategrid_ivm.add_source(text, regclass, text),
    stategrid_ivm.add_view(text, text, text), stategrid_ivm.start_pipeline(text),
    stategrid_ivm.pause_pipeline(text), stategrid_ivm.resume_pipeline(text),
    stategrid_ivm.drop_pipeline(text, boolean), stategrid_ivm.sync(text, interval),
    stategrid_ivm.verify(text), stategrid_ivm.refresh_view(regclass),
    stategrid_ivm.rebuild_pipeline(text)
    TO regress_sgivm_rls;
-- Waits (up to 30 s) until a boolean query is true; returns its last value.
CREATE FUNCTION sgivm_rls.wait_until(cond text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '30 s';
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

-- Meter readings of two regions, owned by the superuser; the pipeline's owner may read those
-- of region 1 only, once row-level security is enabled.
CREATE TABLE sgivm_rls.readings (id int PRIMARY KEY, region int NOT NULL, kwh numeric NOT NULL);
GRANT SELECT ON sgivm_rls.readings TO regress_sgivm_rls;
CREATE POLICY region_1_only ON sgivm_rls.readings FOR SELECT TO regress_sgivm_rls USING (region = 1);
INSERT INTO sgivm_rls.readings VALUES (1, 1, 10), (2, 2, 20);
ALTER TABLE sgivm_rls.readings ENABLE ROW LEVEL SECURITY;

-- ---------------------------------------------------------------------------------------------
-- Enabled before add_source: refused, naming the table, the owner and what to do.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_rls;
SELECT count(*) AS rows_the_owner_sees FROM sgivm_rls.readings;
SELECT stategrid_ivm.create_pipeline('rls');
SELECT stategrid_ivm.add_source('rls', 'sgivm_rls.readings');
RESET ROLE;
SELECT to_regclass('sgivm_rls.ods_readings') AS no_mirror_created;

-- With BYPASSRLS the owner reads every row: allowed, and every row streams.
ALTER ROLE regress_sgivm_rls BYPASSRLS;
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.add_source('rls', 'sgivm_rls.readings');
SELECT stategrid_ivm.add_view('rls', 'sgivm_rls.kwh_by_region',
    'SELECT region, sum(kwh) AS kwh, count(*) AS readings FROM sgivm_rls.ods_readings GROUP BY region');
SELECT stategrid_ivm.start_pipeline('rls');
RESET ROLE;
INSERT INTO sgivm_rls.readings VALUES (3, 2, 30);
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.sync('rls') IS NOT NULL AS synced;
SELECT * FROM sgivm_rls.ods_readings ORDER BY id;
SELECT view_name, ok FROM stategrid_ivm.verify('rls');
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- The owner loses BYPASSRLS while the pipeline runs: the next batch puts it in error, naming
-- the table; the hidden row reaches neither the mirror nor the view.
-- ---------------------------------------------------------------------------------------------
ALTER ROLE regress_sgivm_rls NOBYPASSRLS;
INSERT INTO sgivm_rls.readings VALUES (4, 2, 40), (5, 1, 50);
SELECT sgivm_rls.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'rls'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'rls';
SELECT * FROM sgivm_rls.ods_readings ORDER BY id;
SELECT * FROM sgivm_rls.kwh_by_region ORDER BY region;
-- verify and refresh_view read what the owner may not: refused too
SET ROLE regress_sgivm_rls;
SELECT view_name, ok FROM stategrid_ivm.verify('rls');
SELECT stategrid_ivm.refresh_view('sgivm_rls.kwh_by_region');
RESET ROLE;
-- BYPASSRLS back, resume: the batch is applied whole, nothing lost.
ALTER ROLE regress_sgivm_rls BYPASSRLS;
SELECT stategrid_ivm.resume_pipeline('rls');
SELECT stategrid_ivm.sync('rls') IS NOT NULL AS synced;
SELECT name, state FROM stategrid_ivm.pipelines WHERE name = 'rls';
SELECT * FROM sgivm_rls.ods_readings ORDER BY id;
SELECT view_name, ok FROM stategrid_ivm.verify('rls');

-- ---------------------------------------------------------------------------------------------
-- Row-level security enabled after add_source, while the pipeline runs (owner without
-- BYPASSRLS, RLS off at add_source): the same.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.drop_pipeline('rls', true);
ALTER ROLE regress_sgivm_rls NOBYPASSRLS;
ALTER TABLE sgivm_rls.readings DISABLE ROW LEVEL SECURITY;
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.create_pipeline('rls');
SELECT stategrid_ivm.add_source('rls', 'sgivm_rls.readings');
SELECT stategrid_ivm.add_view('rls', 'sgivm_rls.kwh_by_region',
    'SELECT region, sum(kwh) AS kwh, count(*) AS readings FROM sgivm_rls.ods_readings GROUP BY region');
SELECT stategrid_ivm.start_pipeline('rls');
SELECT stategrid_ivm.sync('rls') IS NOT NULL AS synced;
RESET ROLE;
ALTER TABLE sgivm_rls.readings ENABLE ROW LEVEL SECURITY;
INSERT INTO sgivm_rls.readings VALUES (6, 2, 60), (7, 1, 70);
SELECT sgivm_rls.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'rls'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'rls';
SELECT count(*) FILTER (WHERE id >= 6) AS rows_since_rls_in_mirror FROM sgivm_rls.ods_readings;
SELECT * FROM sgivm_rls.kwh_by_region ORDER BY region;
-- a rebuild would copy the sources again: refused as well
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.rebuild_pipeline('rls');
RESET ROLE;
-- RLS off again, resume: everything arrives.
ALTER TABLE sgivm_rls.readings DISABLE ROW LEVEL SECURITY;
SELECT stategrid_ivm.resume_pipeline('rls');
SELECT stategrid_ivm.sync('rls') IS NOT NULL AS synced;
SELECT name, state FROM stategrid_ivm.pipelines WHERE name = 'rls';
SELECT view_name, ok FROM stategrid_ivm.verify('rls');

-- Enabled between add_source and start_pipeline: start_pipeline refuses.
SELECT stategrid_ivm.drop_pipeline('rls', true);
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.create_pipeline('rls');
SELECT stategrid_ivm.add_source('rls', 'sgivm_rls.readings');
RESET ROLE;
ALTER TABLE sgivm_rls.readings ENABLE ROW LEVEL SECURITY;
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.start_pipeline('rls');
SELECT stategrid_ivm.drop_pipeline('rls', true);
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- The table's owner is not subject to its policies unless FORCE ROW LEVEL SECURITY (as for
-- any query of hers): allowed without FORCE; with FORCE refused, also once running.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_rls;
CREATE TABLE sgivm_rls.own_readings (id int PRIMARY KEY, region int NOT NULL, kwh numeric NOT NULL);
CREATE POLICY region_1_only ON sgivm_rls.own_readings FOR SELECT USING (region = 1);
ALTER TABLE sgivm_rls.own_readings ENABLE ROW LEVEL SECURITY;
INSERT INTO sgivm_rls.own_readings VALUES (1, 1, 10), (2, 2, 20);
SELECT count(*) AS rows_the_owner_sees FROM sgivm_rls.own_readings;
SELECT stategrid_ivm.create_pipeline('rls_own');
SELECT stategrid_ivm.add_source('rls_own', 'sgivm_rls.own_readings');
SELECT stategrid_ivm.start_pipeline('rls_own');
INSERT INTO sgivm_rls.own_readings VALUES (3, 2, 30);
SELECT stategrid_ivm.sync('rls_own') IS NOT NULL AS synced;
SELECT * FROM sgivm_rls.ods_own_readings ORDER BY id;
SELECT view_name, ok FROM stategrid_ivm.verify('rls_own');
-- FORCE: now the policy filters her own queries, and the pipeline stops before the next row
ALTER TABLE sgivm_rls.own_readings FORCE ROW LEVEL SECURITY;
SELECT count(*) AS rows_the_owner_sees FROM sgivm_rls.own_readings;
RESET ROLE;
INSERT INTO sgivm_rls.own_readings VALUES (4, 2, 40);
SELECT sgivm_rls.wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'rls_own'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'rls_own';
SELECT max(id) AS last_id_in_mirror FROM sgivm_rls.ods_own_readings;
SET ROLE regress_sgivm_rls;
SELECT stategrid_ivm.drop_pipeline('rls_own', true);
-- and refused at add_source
SELECT stategrid_ivm.create_pipeline('rls_own');
SELECT stategrid_ivm.add_source('rls_own', 'sgivm_rls.own_readings');
SELECT stategrid_ivm.drop_pipeline('rls_own');
RESET ROLE;

-- A superuser owner bypasses row-level security, FORCE or not.
SELECT stategrid_ivm.create_pipeline('rls_super');
SELECT stategrid_ivm.add_source('rls_super', 'sgivm_rls.own_readings') AS added;
SELECT stategrid_ivm.drop_pipeline('rls_super', true);

SELECT count(*) AS pipelines_left FROM stategrid_ivm.pipelines WHERE name LIKE 'rls%';
SET client_min_messages = warning;
DROP SCHEMA sgivm_rls CASCADE;
DROP OWNED BY regress_sgivm_rls;
DROP ROLE regress_sgivm_rls;
RESET client_min_messages;
