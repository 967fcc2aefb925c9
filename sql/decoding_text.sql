-- The output plugin's text form, read with pg_logical_slot_peek_changes(..., 'format', 'text'),
-- on the State Grid source tables (created by setup.sql). Transaction ids, commit times and LSNs
-- change from run to run: the view below masks them. Every step peeks what it produced, then
-- consumes it, so the next step starts from an empty stream.
TRUNCATE power_consumption, power_user RESTART IDENTITY;
SELECT 'init' FROM pg_create_logical_replication_slot('sg_text', 'stategrid_ivm');

CREATE TEMP VIEW stream AS
SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(data,
         '^BEGIN \d+', 'BEGIN <xid>'),
         'commit_time ''[^'']*''', 'commit_time <time>'),
         'lsn [0-9A-F]+/[0-9A-F]+', 'lsn <lsn>', 'g'),
         '''[0-9a-f]{200,}''', '<long text>', 'g') AS change
FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL, 'format', 'text');

CREATE FUNCTION pg_temp.consume() RETURNS bigint LANGUAGE sql
AS $$ SELECT count(*) FROM pg_logical_slot_get_changes('sg_text', NULL, NULL, 'format', 'text') $$;

-- Single-statement transactions: Chinese text, NULLs, numeric and timestamp values.
INSERT INTO power_user VALUES
    (1001, '张伟', '居民', 110000, '北京市', '北京市朝阳区建国路88号', '13800138001',
     '2024-01-01 08:00:00', '2024-01-01 08:00:00');
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, create_time, update_time)
    VALUES (1002, '李娜', '商业', 310000, '上海市', '2024-01-02 09:30:00.123456', NULL);
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
    VALUES (1001, 256.50, 138.51, '2024-03-01 00:00:00', 1000.00, 1256.50, '正常抄表');
SELECT * FROM stream;
SELECT pg_temp.consume();

-- A multi-statement transaction: one BEGIN, every row in order, one COMMIT.
BEGIN;
INSERT INTO power_user VALUES
    (1003, '王芳', '工业', 440300, '深圳市', '深圳市南山区科技园南区', '13900139003',
     '2024-01-03 10:00:00', '2024-01-03 10:00:00');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
    VALUES (1003, 12500.00, 10625.00, '2024-03-01 00:00:00', 880000.00, 892500.00, NULL),
           (1002, 1830.25, 1482.50, '2024-03-01 00:00:00', 52000.00, 53830.25, '商铺月结');
UPDATE power_user SET phone = '13700137002', update_time = '2024-03-02 12:00:00' WHERE user_id = 1002;
COMMIT;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- A rolled-back transaction emits nothing at all.
BEGIN;
INSERT INTO power_user (user_id, user_name) VALUES (1999, '回滚用户');
UPDATE power_user SET region_name = '不应出现' WHERE user_id = 1001;
ROLLBACK;
SELECT count(*) AS changes FROM stream;

-- Subtransactions: only the rows that survive ROLLBACK TO SAVEPOINT are emitted.
BEGIN;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after)
    VALUES (1001, 198.00, 106.92, '2024-03-02 00:00:00', 1256.50, 1454.50);
SAVEPOINT s1;
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
    VALUES (1001, 9999.99, 9999.99, '2024-03-02 00:00:00', 0, 9999.99, '误录');
UPDATE power_user SET region_name = '不应出现' WHERE user_id = 1001;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, create_time, update_time)
    VALUES (1004, '赵强', '居民', 510100, '成都市', '2024-01-04 11:00:00', '2024-01-04 11:00:00');
RELEASE SAVEPOINT s2;
COMMIT;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- An UPDATE that keeps the key carries only the new row; one that changes it carries the old key.
UPDATE power_user SET address = '成都市武侯区天府大道1号', update_time = '2024-03-03 08:00:00'
    WHERE user_id = 1004;
UPDATE power_user SET user_id = 1005 WHERE user_id = 1004;
UPDATE power_consumption SET consumption_id = 100 WHERE consumption_id = 4;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- A long, incompressible remark is stored out of line (TOAST). varchar(200) cannot hold it, so
-- the test widens the column. An UPDATE that does not touch it says unchanged-toast-datum.
ALTER TABLE power_consumption ALTER COLUMN remark TYPE varchar(20000);
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost,
                               consumption_date, meter_reading_before, meter_reading_after, remark)
    VALUES (200, 1003, 11800.00, 10030.00, '2024-03-02 00:00:00', 892500.00, 904300.00,
            (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i));
SELECT pg_column_size(remark) > 8000 AS not_compressed,
       (SELECT count(*) > 0 FROM pg_class c
        JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relname = 'power_consumption') AS has_toast_table
FROM power_consumption WHERE consumption_id = 200;
UPDATE power_consumption SET consumption_cost = 10030.50 WHERE consumption_id = 200;
SELECT * FROM stream;
-- the INSERT carried the whole value
SELECT count(*) AS inserts_with_full_remark
FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL, 'format', 'text')
WHERE data LIKE '%INSERT%' || (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i) || '%';
SELECT pg_temp.consume();

-- DELETE carries the old key.
DELETE FROM power_consumption WHERE consumption_id = 100;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- REPLICA IDENTITY FULL: UPDATE and DELETE carry the whole old row.
ALTER TABLE power_user REPLICA IDENTITY FULL;
UPDATE power_user SET region_id = 440100, region_name = '广州市', update_time = '2024-03-04 09:00:00'
    WHERE user_id = 1003;
DELETE FROM power_user WHERE user_id = 1005;
ALTER TABLE power_user REPLICA IDENTITY DEFAULT;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- TRUNCATE is a change like any other.
TRUNCATE power_consumption;
TRUNCATE power_consumption, power_user RESTART IDENTITY;
SELECT * FROM stream;
SELECT pg_temp.consume();

-- One message is one line: a backslash and the ASCII control characters in values and names
-- are written as backslash escapes (\\ \n \r \t, else \xNN), a quote is doubled. The plugin's
-- text format and change_to_text() of the binary message write the same bytes.
CREATE TABLE odd_text (id int PRIMARY KEY, note text, label varchar(40), tags text[],
                       U&"two\000Alines" text);
INSERT INTO odd_text VALUES
    (1, E'first line\nsecond line', E'cr\r\nlf', ARRAY[E'a\tb', 'c'], E'tab\tend'),
    (2, E'back\\slash, \\n is not a newline, trailing \\', 'O''Brien', NULL, NULL),
    (3, E'nul-free controls: \x01 \x1b \x7f \x1f', E'\u2028 is not escaped', ARRAY[E'x\ny'], '');
UPDATE odd_text SET note = E'\n\n', label = E'\\' WHERE id = 2;
DELETE FROM odd_text WHERE id = 3;
SELECT * FROM stream;
-- no control characters, and the same bytes as the binary message's change_to_text()
SELECT count(*) AS messages,
       count(*) FILTER (WHERE change ~ '[\x01-\x1f\x7f]') AS with_control_characters
FROM stream;
SELECT n, t.data = stategrid_ivm.change_to_text(b.data) AS same
FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL, 'format', 'text') WITH ORDINALITY AS t(l, x, data, n)
FULL JOIN (SELECT row_number() OVER (ORDER BY o) AS n, data
           FROM pg_logical_slot_peek_binary_changes('sg_text', NULL, NULL) WITH ORDINALITY AS b(l, x, data, o)
           WHERE get_byte(data, 1) <> ascii('R')) b USING (n)
ORDER BY n;
-- the RELATION line of change_to_text escapes the column name too
SELECT stategrid_ivm.change_to_text(data)
FROM pg_logical_slot_peek_binary_changes('sg_text', NULL, NULL)
WHERE get_byte(data, 1) = ascii('R');
SELECT pg_temp.consume();
DROP TABLE odd_text;

-- With the tables option, other tables are skipped entirely: a transaction that touches only
-- them emits nothing, not even BEGIN/COMMIT; a mixed one emits only the chosen tables.
CREATE TABLE meter_device (device_id int PRIMARY KEY, model text);
INSERT INTO meter_device VALUES (1, 'DDZY-71');
BEGIN;
INSERT INTO meter_device VALUES (2, 'DTZY-341');
INSERT INTO power_user (user_id, user_name, create_time, update_time)
    VALUES (1006, '孙丽', '2024-03-05 10:00:00', '2024-03-05 10:00:00');
COMMIT;
SELECT regexp_replace(regexp_replace(regexp_replace(data, '^BEGIN \d+', 'BEGIN <xid>'),
         'commit_time ''[^'']*''', 'commit_time <time>'), 'lsn [0-9A-F]+/[0-9A-F]+', 'lsn <lsn>', 'g') AS change
FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL, 'format', 'text',
                                  'tables', 'power_user,public.power_consumption');
-- without the option every table is emitted
SELECT * FROM stream;
SELECT pg_temp.consume();
DROP TABLE meter_device;
DELETE FROM power_user;
ALTER TABLE power_consumption ALTER COLUMN remark TYPE varchar(200);  -- as setup.sql made it

-- The plugin's default output is binary: the text function refuses it.
SELECT data FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL);
SELECT data FROM pg_logical_slot_peek_changes('sg_text', NULL, NULL, 'format', 'binary');

DROP VIEW stream;
SELECT pg_drop_replication_slot('sg_text');
