-- WAL records larger than the WAL reader's buffer (here 1 MB logical messages of any
-- database), read between and after applied transactions: the worker's long-lived decoding
-- context must keep its buffers across apply transactions (a crash would end this session).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA pipeline_large_record;
SET search_path = pipeline_large_record, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

SELECT stategrid_ivm.generate_sample_data(5, 1) AS readings;
SELECT stategrid_ivm.create_pipeline('big');
SELECT stategrid_ivm.add_source('big', 'power_user') IS NOT NULL AS added;
SELECT stategrid_ivm.add_source('big', 'power_consumption') IS NOT NULL AS added;
SELECT stategrid_ivm.start_pipeline('big');
SELECT stategrid_ivm.sync('big') IS NOT NULL AS synced;

SELECT stategrid_ivm.pause_pipeline('big');
INSERT INTO power_consumption (user_id, consumption_amount) VALUES (1, 1.00);
SELECT pg_logical_emit_message(false, 'sgivm-test', repeat('x', 1000000)) IS NOT NULL AS big_record;
INSERT INTO power_consumption (user_id, consumption_amount) VALUES (2, 2.00);
SELECT stategrid_ivm.resume_pipeline('big');
SELECT stategrid_ivm.sync('big') IS NOT NULL AS synced;
-- more large records after the batch that read the first one
SELECT pg_logical_emit_message(false, 'sgivm-test', repeat('y', 3000000)) IS NOT NULL AS big_record;
INSERT INTO power_consumption (user_id, consumption_amount) VALUES (3, 3.00);
SELECT pg_logical_emit_message(true, 'sgivm-test', repeat('z', 2000000)) IS NOT NULL AS big_record;
INSERT INTO power_consumption (user_id, consumption_amount) VALUES (4, 4.00);
SELECT stategrid_ivm.sync('big') IS NOT NULL AS synced;
SELECT (SELECT count(*) FROM ((TABLE power_consumption EXCEPT ALL TABLE ods_power_consumption)
                              UNION ALL (TABLE ods_power_consumption EXCEPT ALL TABLE power_consumption)) d) = 0 AS same,
       (SELECT count(*) FROM ods_power_consumption) AS mirrored;
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'big';

SELECT stategrid_ivm.drop_pipeline('big', drop_tables => true);
DROP SCHEMA pipeline_large_record CASCADE;
