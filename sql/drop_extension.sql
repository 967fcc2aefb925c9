-- Dropping the extension, its schema, its owner's objects, a pipeline owner's objects or the
-- database (issue 13, item 9): a pipeline's replication slot and origin are not transactional
-- and are no objects of the database, so each of these is refused while pipelines exist,
-- naming them and drop_pipeline(). After drop_pipeline, DROP EXTENSION leaves no slot, no
-- origin and no worker. A worker whose extension is gone all the same exits for good.
-- (In a database of its own: the extension of the shared test database stays.)
\set orig_db :DBNAME
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_sgivm_drop WITH (FORCE);
DO $$
DECLARE r text;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_sgivm_drop%' LOOP
        EXECUTE format('DROP ROLE %I', r);
    END LOOP;
END $$;
RESET client_min_messages;
\set SHOW_CONTEXT never
CREATE DATABASE regress_sgivm_drop;
-- the extension's owner (a superuser, not the bootstrap one: DROP OWNED BY it is allowed), and
-- a role that owns a pipeline
CREATE ROLE regress_sgivm_drop_ext SUPERUSER NOLOGIN;
CREATE ROLE regress_sgivm_drop_owner NOLOGIN;

\c regress_sgivm_drop
SET ROLE regress_sgivm_drop_ext;
CREATE EXTENSION stategrid_ivm;
RESET ROLE;
GRANT CREATE ON SCHEMA public TO regress_sgivm_drop_owner;
GRANT EXECUTE ON FUNCTION stategrid_ivm.create_pipeline(text), stategrid_ivm.add_source(text, regclass, text),
    stategrid_ivm.start_pipeline(text), stategrid_ivm.drop_pipeline(text, boolean), stategrid_ivm.sync(text, interval)
    TO regress_sgivm_drop_owner;
CREATE FUNCTION wait_until(cond text) RETURNS boolean
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
CREATE TABLE slots_seen (slot name);
GRANT SELECT ON slots_seen TO PUBLIC;
-- What a drop might leave behind in this database: slots, origins of its pipelines, workers.
CREATE VIEW leftovers AS
SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) AS slots,
       (SELECT count(*) FROM pg_replication_origin o
        WHERE o.roname IN (SELECT slot_name FROM pg_replication_slots WHERE database = current_database())
           OR o.roname IN (SELECT slot FROM slots_seen)) AS origins,
       (SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'stategrid_ivm worker') AS workers;

CREATE TABLE readings (id int PRIMARY KEY, kwh numeric);
INSERT INTO readings VALUES (1, 10);
-- two pipelines: one of the superuser, running; one of another role, paused
SELECT stategrid_ivm.create_pipeline('running_one');
SELECT stategrid_ivm.add_source('running_one', 'readings');
SELECT stategrid_ivm.start_pipeline('running_one');
SELECT stategrid_ivm.sync('running_one') IS NOT NULL AS synced;
GRANT SELECT ON readings TO regress_sgivm_drop_owner;
SET ROLE regress_sgivm_drop_owner;
SELECT stategrid_ivm.create_pipeline('owned_one');
SELECT stategrid_ivm.add_source('owned_one', 'readings', 'ods_readings_owned');
SELECT stategrid_ivm.start_pipeline('owned_one');
SELECT stategrid_ivm.sync('owned_one') IS NOT NULL AS synced;
RESET ROLE;
SELECT stategrid_ivm.pause_pipeline('owned_one');
INSERT INTO slots_seen SELECT slot_name FROM stategrid_ivm.pipelines;
-- the paused pipeline's worker is on its way out: wait until it is gone
SELECT wait_until($$SELECT workers = 1 FROM leftovers$$) AS one_worker;
SELECT * FROM leftovers;

-- ---------------------------------------------------------------------------------------------
-- Each drop is refused, naming the pipelines, and changes nothing.
-- ---------------------------------------------------------------------------------------------
DROP EXTENSION stategrid_ivm;
DROP EXTENSION stategrid_ivm CASCADE;
DROP SCHEMA stategrid_ivm CASCADE;
DROP OWNED BY regress_sgivm_drop_ext;
DROP OWNED BY regress_sgivm_drop_ext CASCADE;
-- a pipeline's owner: its pipeline's tables would go, and DROP ROLE could follow
DROP OWNED BY regress_sgivm_drop_owner;
DROP OWNED BY regress_sgivm_drop_owner CASCADE;
-- (in a transaction that already changed things, with a savepoint: the refusal rolls back the
-- drop alone)
BEGIN;
INSERT INTO readings VALUES (2, 20);
SAVEPOINT s;
DROP EXTENSION stategrid_ivm CASCADE;
ROLLBACK TO SAVEPOINT s;
COMMIT;
\c :orig_db
DROP DATABASE regress_sgivm_drop;
DROP DATABASE regress_sgivm_drop WITH (FORCE);
\c regress_sgivm_drop
SELECT extname, extowner::regrole FROM pg_extension WHERE extname = 'stategrid_ivm';
SELECT name, state FROM stategrid_ivm.pipelines ORDER BY name;
SELECT * FROM leftovers;
-- the running pipeline runs on: the row inserted meanwhile arrives
SELECT stategrid_ivm.sync('running_one') IS NOT NULL AS synced;
SELECT * FROM ods_readings ORDER BY id;
SELECT view_name, ok FROM stategrid_ivm.verify('running_one');

-- ---------------------------------------------------------------------------------------------
-- After drop_pipeline, every drop works and leaves nothing.
-- ---------------------------------------------------------------------------------------------
SET ROLE regress_sgivm_drop_owner;
SELECT stategrid_ivm.drop_pipeline('owned_one', true);
RESET ROLE;
DROP OWNED BY regress_sgivm_drop_owner;  -- now allowed (its pipeline is gone)
SELECT stategrid_ivm.drop_pipeline('running_one');
DROP EXTENSION stategrid_ivm;
SELECT wait_until($$SELECT workers = 0 FROM leftovers$$) AS workers_gone;
SELECT * FROM leftovers;

-- ---------------------------------------------------------------------------------------------
-- A worker whose extension is gone all the same (its catalog emptied by hand first: the guard
-- sees no pipeline) exits and is not started again; it does not retry for ever.
-- ---------------------------------------------------------------------------------------------
CREATE EXTENSION stategrid_ivm;
SELECT stategrid_ivm.create_pipeline('orphaned');
SELECT stategrid_ivm.add_source('orphaned', 'readings', 'ods_readings_orphaned');
SELECT stategrid_ivm.start_pipeline('orphaned');
SELECT stategrid_ivm.sync('orphaned') IS NOT NULL AS synced;
INSERT INTO slots_seen SELECT slot_name FROM stategrid_ivm.pipelines;
BEGIN;
DELETE FROM stategrid_ivm.pipeline;
DROP EXTENSION stategrid_ivm CASCADE;
COMMIT;
INSERT INTO readings VALUES (3, 30);
SELECT wait_until($$SELECT workers = 0 FROM leftovers$$) AS worker_exited;
SELECT pg_sleep(3);  -- longer than the launcher's first restart delay
SELECT workers AS workers_after_a_while FROM leftovers;
-- what the hand-made drop left is dropped by hand
SELECT count(*) AS slots_dropped FROM (
    SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database()) d;
SELECT count(*) AS origins_dropped FROM (
    SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname IN (SELECT slot FROM slots_seen)) d;
SELECT * FROM leftovers;

-- ---------------------------------------------------------------------------------------------
-- With its pipelines dropped, the database can be dropped.
-- ---------------------------------------------------------------------------------------------
CREATE EXTENSION stategrid_ivm;
SELECT stategrid_ivm.create_pipeline('last_one');
SELECT stategrid_ivm.drop_pipeline('last_one');
\c :orig_db
DROP DATABASE regress_sgivm_drop;
SELECT count(*) AS slots_of_dropped_database FROM pg_replication_slots WHERE database = 'regress_sgivm_drop';
DROP ROLE regress_sgivm_drop_owner, regress_sgivm_drop_ext;
