-- Source DDL under a running warehouse (DESIGN.md §5, issue 7 deliverable 3): an added column is
-- tolerated (the mirror gains it); a column a view reads that the source drops or retypes puts
-- the pipeline in error naming the column and the view; a retyped column no view reads stops it
-- with the ALTER that lets the mirror follow; a renamed source table is followed; a DELETE
-- without a key (REPLICA IDENTITY NOTHING) stops it. Nothing is applied half-way, and
-- rebuild_pipeline() is the way back where the error says so.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA view_source_ddl;
SET search_path = view_source_ddl, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

CREATE FUNCTION wait_until(cond text, timeout interval DEFAULT '20 s') RETURNS boolean
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

SELECT stategrid_ivm.generate_sample_data(10, 2) AS readings;
SELECT stategrid_ivm.create_stategrid_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;

-- an added column: the mirror gets it, the views go on
ALTER TABLE power_consumption ADD COLUMN meter_no text;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, meter_no)
VALUES (1, 5.00, 2.80, '2024-01-16 12:00', 'M-001');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT meter_no FROM ods_power_consumption WHERE meter_no IS NOT NULL;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');
-- ...and dropped again: no view reads it, the mirror keeps the column, the views go on
ALTER TABLE power_consumption DROP COLUMN meter_no;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
VALUES (1, 5.50, 3.08, '2024-01-16 12:30');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT count(*) AS mirrored, count(meter_no) AS with_meter_no FROM ods_power_consumption WHERE consumption_amount IN (5.00, 5.50);
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');

-- a column the detail view reads is dropped: error, naming the column and the view
ALTER TABLE power_consumption DROP COLUMN consumption_cost;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (2, 6.00, '2024-01-16 13:00');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'ddl'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'ddl';
-- the reading was not applied anywhere
SELECT count(*) AS mirrored FROM ods_power_consumption WHERE consumption_amount = 6.00;
SELECT count(*) AS detailed FROM dwd_power_consumption_detail WHERE consumption_amount = 6.00;

-- the way back, as the error says: restore the column and rebuild (a new slot, the sources
-- copied again under one snapshot, the views recomputed)
ALTER TABLE power_consumption ADD COLUMN consumption_cost decimal(10,2);
SELECT stategrid_ivm.rebuild_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'ddl';
SELECT count(*) AS detailed FROM dwd_power_consumption_detail WHERE consumption_amount = 6.00;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');

-- ---- a column no view reads changes type: the mirror would round or refuse its values -------------
ALTER TABLE power_consumption ALTER remark TYPE varchar(300);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date, remark)
VALUES (3, 7.00, '2024-01-16 14:00', repeat('长', 250));
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'ddl'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'ddl';
SELECT count(*) AS mirrored FROM ods_power_consumption WHERE consumption_amount = 7.00;
-- the mirror follows, as the error says; the pipeline goes on from where it stopped
ALTER TABLE ods_power_consumption ALTER COLUMN remark TYPE character varying(300);
SELECT stategrid_ivm.resume_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT char_length(remark) AS remark_length FROM ods_power_consumption WHERE consumption_amount = 7.00;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');

-- ---- a column a view reads changes type: error naming the column and the view ---------------------
ALTER TABLE power_consumption ALTER consumption_amount TYPE decimal(12,3);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (3, 8.125, '2024-01-16 15:00');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'ddl'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'ddl';
-- not rounded into the mirror, not applied anywhere
SELECT count(*) AS mirrored FROM ods_power_consumption WHERE consumption_amount BETWEEN 8.12 AND 8.13;
-- the way back: the old type again (ALTER rounds 8.125 in the source), and a rebuild
ALTER TABLE power_consumption ALTER consumption_amount TYPE decimal(10,2);
SELECT stategrid_ivm.rebuild_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT consumption_amount FROM dwd_power_consumption_detail WHERE consumption_amount BETWEEN 8.12 AND 8.13;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');

-- ---- a renamed source table: the pipeline follows it (tables are known by OID) ---------------------
ALTER TABLE power_consumption RENAME TO meter_readings;
INSERT INTO meter_readings (user_id, consumption_amount, consumption_date) VALUES (4, 9.00, '2024-01-16 16:00');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT count(*) AS detailed FROM dwd_power_consumption_detail WHERE consumption_amount = 9.00;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');
ALTER TABLE meter_readings RENAME TO power_consumption;

-- ---- a DELETE without a key: the stream cannot say which row went ----------------------------------
INSERT INTO power_user (user_id, user_name) VALUES (900, '临时');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
ALTER TABLE power_user REPLICA IDENTITY NOTHING;
DELETE FROM power_user WHERE user_id = 900;
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'ddl'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'ddl';
SELECT count(*) AS still_mirrored FROM ods_power_user WHERE user_id = 900;
ALTER TABLE power_user REPLICA IDENTITY DEFAULT;
SELECT stategrid_ivm.rebuild_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT count(*) AS still_mirrored FROM ods_power_user WHERE user_id = 900;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl');

-- ---- a renamed column that no view reads: the mirror gains the new name, empty for the rows it
-- already had (verify shows it); a rebuild copies the values ---------------------------------------
ALTER TABLE power_consumption RENAME remark TO note;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date, note) VALUES (4, 10.00, '2024-01-16 17:00', '改名');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl') WHERE NOT ok;
SELECT stategrid_ivm.rebuild_pipeline('ddl');
SELECT stategrid_ivm.sync('ddl') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('ddl') WHERE NOT ok;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'ddl';

SELECT stategrid_ivm.drop_pipeline('ddl', drop_tables => true);
DROP SCHEMA view_source_ddl CASCADE;
