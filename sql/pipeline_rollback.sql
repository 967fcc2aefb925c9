-- A replication slot is not transactional, the pipeline catalog is: a create_pipeline whose
-- transaction rolls back, or a create_stategrid_pipeline that fails half-way, leaves no slot.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA pipeline_rollback;
SET search_path = pipeline_rollback, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

CREATE FUNCTION our_slots() RETURNS bigint LANGUAGE sql AS
$$SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'sgivm\_%' AND database = current_database()$$;
CREATE FUNCTION wait_for_slots(n bigint) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    deadline timestamptz := clock_timestamp() + interval '20 s';
BEGIN
    WHILE our_slots() <> n AND clock_timestamp() < deadline LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
    RETURN our_slots() = n;
END
$$;
SELECT our_slots() AS slots_before \gset

BEGIN;
SELECT stategrid_ivm.create_pipeline('rolled_back');
SELECT our_slots() - :slots_before AS new_slots_inside;
ROLLBACK;
-- the launcher drops the slot of the rolled-back transaction
SELECT wait_for_slots(:slots_before) AS slot_gone;
SELECT count(*) AS pipelines FROM stategrid_ivm.pipelines WHERE name = 'rolled_back';

-- a warehouse whose views cannot be created (an unrelated table has a view's name)
CREATE TABLE dwd_power_user_info (user_id text, note int NOT NULL);
SELECT stategrid_ivm.create_stategrid_pipeline('half');
SELECT our_slots() = :slots_before AS no_slot_left;
SELECT count(*) AS pipelines FROM stategrid_ivm.pipelines WHERE name = 'half';
DROP TABLE dwd_power_user_info;

DROP SCHEMA pipeline_rollback CASCADE;
