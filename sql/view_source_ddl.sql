-- Source DDL under a running warehouse (DESIGN.md §5): an added column is tolerated (the mirror
-- gains it), a column a view reads that the source drops puts the pipeline in error naming the
-- column and the view, and nothing is applied half-way.
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

-- a column the detail view reads is dropped: error, naming the column and the view
ALTER TABLE power_consumption DROP COLUMN consumption_cost;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_date) VALUES (2, 6.00, '2024-01-16 13:00');
SELECT wait_until($$SELECT state = 'error' FROM stategrid_ivm.pipelines WHERE name = 'ddl'$$) AS in_error;
SELECT last_error FROM stategrid_ivm.pipelines WHERE name = 'ddl';
-- the reading was not applied anywhere
SELECT count(*) AS mirrored FROM ods_power_consumption WHERE consumption_amount = 6.00;
SELECT count(*) AS detailed FROM dwd_power_consumption_detail WHERE consumption_amount = 6.00;

SELECT stategrid_ivm.drop_pipeline('ddl', drop_tables => true);
DROP SCHEMA view_source_ddl CASCADE;
