-- Pipelines end to end (issue 3, deliverables 1, 5 and 6): create_pipeline / add_source /
-- start_pipeline / pause_pipeline / resume_pipeline / drop_pipeline / sync, the views
-- `pipelines` and `views`, and the change semantics the ODS mirrors must follow: backfill,
-- INSERT/UPDATE/DELETE, primary-key updates, TRUNCATE, unchanged TOASTed values, rolled-back
-- transactions, subtransactions and a 1,000,000-row transaction.
--
-- Self-contained: own schema and own State Grid tables; nothing printed depends on the run
-- (no LSNs, pids, times, OIDs or slot names: only booleans and counts).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
RESET client_min_messages;
-- error context lines name plpgsql line numbers of the extension: leave them out
\set SHOW_CONTEXT never
CREATE SCHEMA pipeline_basic;
SET search_path = pipeline_basic, public;

-- The source tables (DESIGN.md section 1); remark is text here so that it can be TOASTed.
CREATE TABLE power_user (
    user_id      bigint PRIMARY KEY,
    user_name    varchar(100),
    usage_type   varchar(50),
    region_id    int,
    region_name  varchar(100),
    address      varchar(200),
    phone        varchar(20),
    create_time  timestamp DEFAULT now(),
    update_time  timestamp DEFAULT now()
);
CREATE TABLE power_consumption (
    consumption_id       bigserial PRIMARY KEY,
    user_id              bigint REFERENCES power_user (user_id),
    consumption_amount   decimal(10,2),
    consumption_cost     decimal(10,2),
    consumption_date     timestamp,
    meter_reading_before decimal(10,2),
    meter_reading_after  decimal(10,2),
    remark               text
);

-- Mirror versus source: rows of each side missing from the other (EXCEPT ALL both ways, over the
-- source's columns), and both counts.
CREATE FUNCTION compare(src regclass, mirror regclass,
                        OUT source_rows bigint, OUT mirror_rows bigint, OUT same boolean)
LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    diff bigint;
BEGIN
    SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_attribute WHERE attrelid = src AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('SELECT count(*) FROM %s', src) INTO source_rows;
    EXECUTE format('SELECT count(*) FROM %s', mirror) INTO mirror_rows;
    EXECUTE format('SELECT count(*) FROM ((SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM %3$s)'
                   ' UNION ALL (SELECT %1$s FROM %3$s EXCEPT ALL SELECT %1$s FROM %2$s)) d',
                   cols, src, mirror) INTO diff;
    same := diff = 0 AND source_rows = mirror_rows;
END
$$;

-- Waits (up to the timeout) until a boolean query is true; returns its last value.
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

-- A long remark: 12,800 characters of md5 hex do not compress, so it is stored out of line.
CREATE FUNCTION long_remark(seed int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT string_agg(md5((i + seed)::text), '') FROM generate_series(1, 400) i
$$;

-- ---------------------------------------------------------------------------------------------
-- Rows that exist before the pipeline does (the backfill copies them).
-- ---------------------------------------------------------------------------------------------
INSERT INTO power_user VALUES
    (1001, '张伟', '居民', 110100, '北京市', '北京市朝阳区建国路88号', '13800138001', '2024-01-01 08:00', '2024-01-01 08:00'),
    (1002, '李娜', '商业', 310100, '上海市', '上海市浦东新区世纪大道100号', '13900139002', '2024-01-02 09:00', '2024-01-02 09:00'),
    (1003, '王强', '工业', 440100, '广州市', '广州市天河区珠江新城1号', '13700137003', '2024-01-03 10:00', '2024-01-03 10:00'),
    (1004, '刘洋', '居民', 330100, '杭州市', '杭州市西湖区文三路10号', '13600136004', '2024-01-04 11:00', '2024-01-04 11:00'),
    (1005, '陈静', '商业', 510100, '成都市', '成都市锦江区春熙路5号', '13500135005', '2024-01-05 12:00', '2024-01-05 12:00');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 1001 + i % 5, 100 + i * 10.5, (100 + i * 10.5) * 0.54, timestamp '2024-03-01' + (i % 3) * interval '1 day',
       1000 * i, 1000 * i + 100 + i * 10.5, CASE WHEN i % 4 = 0 THEN NULL ELSE '正常抄表' END
FROM generate_series(1, 20) i;

-- ---------------------------------------------------------------------------------------------
-- create_pipeline, add_source: the mirrors and the catalog.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.create_pipeline('basic');
SELECT name, state, worker_pid IS NULL AS no_worker, applied_lsn IS NULL AS nothing_applied,
       lag_bytes IS NULL AS no_lag_yet, transactions_applied, rows_applied, last_error,
       owner = current_user::regrole AS owned_by_me, sources
FROM stategrid_ivm.pipelines WHERE name = 'basic';
-- a slot and an origin of their own
SELECT count(*) AS slots FROM pg_replication_slots s JOIN stategrid_ivm.pipelines p USING (slot_name)
WHERE p.name = 'basic' AND s.plugin = 'stategrid_ivm' AND s.slot_type = 'logical';
SELECT count(*) AS origins FROM pg_replication_origin o JOIN stategrid_ivm.pipelines p ON o.roname = p.slot_name
WHERE p.name = 'basic';

SELECT stategrid_ivm.add_source('basic', 'power_user');
SELECT stategrid_ivm.add_source('basic', 'power_consumption');
SELECT name, state, sources FROM stategrid_ivm.pipelines WHERE name = 'basic';

-- The mirrors have the sources' columns, in order, with the same types...
SELECT c.table_name, c.ordinal_position, c.column_name, c.data_type, c.character_maximum_length,
       c.numeric_precision, c.numeric_scale
FROM information_schema.columns c
WHERE c.table_schema = 'pipeline_basic' AND c.table_name IN ('ods_power_user', 'ods_power_consumption')
ORDER BY c.table_name, c.ordinal_position;
SELECT m.table_name AS mirror, count(*) AS columns,
       count(*) FILTER (WHERE s.column_name IS NOT NULL AND s.data_type = m.data_type
                          AND s.ordinal_position = m.ordinal_position
                          AND s.character_maximum_length IS NOT DISTINCT FROM m.character_maximum_length
                          AND s.numeric_precision IS NOT DISTINCT FROM m.numeric_precision
                          AND s.numeric_scale IS NOT DISTINCT FROM m.numeric_scale) AS same_as_source
FROM information_schema.columns m
LEFT JOIN information_schema.columns s
       ON s.table_schema = m.table_schema AND s.table_name = substr(m.table_name, 5) AND s.column_name = m.column_name
WHERE m.table_schema = 'pipeline_basic' AND m.table_name IN ('ods_power_user', 'ods_power_consumption')
GROUP BY m.table_name ORDER BY m.table_name;
-- ...and the same primary key.
SELECT i.indrelid::regclass AS mirror,
       array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n) AS primary_key
FROM pg_index i
WHERE i.indisprimary AND i.indrelid IN ('ods_power_user'::regclass, 'ods_power_consumption'::regclass)
ORDER BY 1::text;
-- the sources keep their default replica identity (FULL is not needed)
SELECT relname, relreplident FROM pg_class
WHERE oid IN ('power_user'::regclass, 'power_consumption'::regclass) ORDER BY relname;

-- The mirrors are registered in `views` (empty until the pipeline starts).
SELECT pipeline, view_name, query, rows, state
FROM stategrid_ivm.views WHERE pipeline = 'basic' ORDER BY view_name;

-- Changes between create_pipeline and start_pipeline are in the slot's stream AND in the
-- backfill's copy: they must count once.
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, remark)
VALUES (1003, 555.50, 471.68, '2024-03-02 00:00', '启动前写入');
UPDATE power_consumption SET consumption_amount = consumption_amount + 1 WHERE consumption_id = 1;
DELETE FROM power_consumption WHERE consumption_id = 2;

-- ---------------------------------------------------------------------------------------------
-- start_pipeline: backfill, then stream.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.start_pipeline('basic');
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT name, state, worker_pid > 0 AS has_worker, lag_bytes >= 0 AS lag_bytes_ok,
       lag_seconds >= 0 AS lag_seconds_ok, retained_wal_bytes >= 0 AS retained_ok,
       rows_applied >= 25 AS backfill_counted, last_error, last_error_at
FROM stategrid_ivm.pipelines WHERE name = 'basic';
SELECT * FROM compare('power_user', 'ods_power_user');
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT pipeline, view_name, stategrid_ivm.view_rows(view_name::regclass) AS rows, state FROM stategrid_ivm.views WHERE pipeline = 'basic' ORDER BY view_name;
-- the worker is visible, with a name that explains it
SELECT count(*) AS workers FROM pg_stat_activity a JOIN stategrid_ivm.pipelines p ON a.pid = p.worker_pid
WHERE p.name = 'basic' AND a.application_name LIKE '%basic%';

-- The status columns of DESIGN.md section 3 (more may exist).
SELECT r.col, c.data_type
FROM (VALUES (1, 'name'), (2, 'state'), (3, 'worker_pid'), (4, 'applied_lsn'), (5, 'lag_bytes'),
             (6, 'lag_seconds'), (7, 'retained_wal_bytes'), (8, 'transactions_applied'),
             (9, 'rows_applied'), (10, 'last_error'), (11, 'last_error_at')) r(n, col)
LEFT JOIN information_schema.columns c
       ON c.table_schema = 'stategrid_ivm' AND c.table_name = 'pipelines' AND c.column_name = r.col
ORDER BY r.n;
SELECT r.col, c.column_name IS NOT NULL AS present
FROM (VALUES (1, 'pipeline'), (2, 'query'), (3, 'rows'), (4, 'state')) r(n, col)
LEFT JOIN information_schema.columns c
       ON c.table_schema = 'stategrid_ivm' AND c.table_name = 'views' AND c.column_name = r.col
ORDER BY r.n;

SELECT transactions_applied AS txns0, rows_applied AS rows0 FROM stategrid_ivm.pipelines WHERE name = 'basic' \gset

-- ---------------------------------------------------------------------------------------------
-- INSERT, UPDATE, DELETE.
-- ---------------------------------------------------------------------------------------------
-- one transaction over both tables: a new user with two readings
BEGIN;
INSERT INTO power_user VALUES
    (1006, '赵敏', '工业', 420100, '武汉市', '武汉市江汉区解放大道6号', '13300133006', '2024-01-06 13:00', '2024-01-06 13:00');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date, meter_reading_before, meter_reading_after)
VALUES (1006, 800.00, 680.00, '2024-03-01', 5000, 5800), (1006, 820.00, 697.00, '2024-03-02', 5800, 6620);
COMMIT;
UPDATE power_user SET phone = '13300133999', update_time = '2024-02-01 00:00' WHERE user_id = 1006;
UPDATE power_consumption SET consumption_cost = consumption_cost * 2, remark = '更正' WHERE user_id = 1002;
UPDATE power_consumption SET remark = NULL WHERE consumption_id = 3;
DELETE FROM power_consumption WHERE consumption_id IN (4, 5);
-- many changes to the same row in one transaction
BEGIN;
UPDATE power_consumption SET consumption_amount = 1 WHERE consumption_id = 6;
UPDATE power_consumption SET consumption_amount = 2 WHERE consumption_id = 6;
DELETE FROM power_consumption WHERE consumption_id = 6;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, remark) VALUES (6, 1001, 3, '重新录入');
UPDATE power_consumption SET consumption_amount = 4 WHERE consumption_id = 6;
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_user', 'ods_power_user');
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT consumption_id, user_id, consumption_amount, remark FROM ods_power_consumption
WHERE consumption_id IN (3, 4, 5, 6) ORDER BY consumption_id;
SELECT user_id, phone, update_time FROM ods_power_user WHERE user_id = 1006;
SELECT name, state, applied_lsn IS NOT NULL AS applied, lag_seconds = 0 AS caught_up,
       transactions_applied - :txns0 AS new_transactions, rows_applied - :rows0 AS new_rows
FROM stategrid_ivm.pipelines WHERE name = 'basic';

-- ---------------------------------------------------------------------------------------------
-- sync() waits for commits made with synchronous_commit = off too (a subscription's apply
-- worker commits so): such a commit returns before its WAL is flushed, and the worker decodes
-- flushed WAL only. Twenty rounds of an asynchronous commit and a sync() right after it.
-- ---------------------------------------------------------------------------------------------
SET synchronous_commit = off;
DO $$
DECLARE
    missed int := 0;
BEGIN
    FOR i IN 1..20 LOOP
        UPDATE power_user SET address = 'async ' || i WHERE user_id = 1006;
        COMMIT;
        PERFORM stategrid_ivm.sync('basic');
        IF (SELECT address FROM ods_power_user WHERE user_id = 1006) IS DISTINCT FROM 'async ' || i THEN
            missed := missed + 1;
        END IF;
        COMMIT;
    END LOOP;
    RAISE NOTICE 'asynchronous commits sync() returned before: %', missed;
END
$$;
RESET synchronous_commit;
SELECT * FROM compare('power_user', 'ods_power_user');

-- ---------------------------------------------------------------------------------------------
-- Primary-key updates.
-- ---------------------------------------------------------------------------------------------
UPDATE power_consumption SET consumption_id = consumption_id + 1000 WHERE consumption_id IN (7, 8);
INSERT INTO power_user (user_id, user_name) VALUES (1099, '待改号');
UPDATE power_user SET user_id = 1098 WHERE user_id = 1099;
-- a chain 9 -> 2009 -> 3009, and a swap of two keys through a free one, in one transaction
BEGIN;
UPDATE power_consumption SET consumption_id = 2009 WHERE consumption_id = 9;
UPDATE power_consumption SET consumption_id = 3009 WHERE consumption_id = 2009;
UPDATE power_consumption SET consumption_id = -1 WHERE consumption_id = 10;
UPDATE power_consumption SET consumption_id = 10 WHERE consumption_id = 11;
UPDATE power_consumption SET consumption_id = 11 WHERE consumption_id = -1;
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_user', 'ods_power_user');
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT consumption_id FROM ods_power_consumption
WHERE consumption_id IN (7, 8, 9, 1007, 1008, 2009, 3009) ORDER BY 1;
SELECT user_id, user_name FROM ods_power_user WHERE user_id IN (1098, 1099) ORDER BY 1;

-- ---------------------------------------------------------------------------------------------
-- Unchanged TOASTed values: an UPDATE that does not touch the long remark does not carry it in
-- the WAL; the mirror must keep it.
-- ---------------------------------------------------------------------------------------------
UPDATE power_consumption SET remark = long_remark(0) WHERE consumption_id = 12;
UPDATE power_consumption SET remark = long_remark(1) WHERE consumption_id = 13;
SELECT consumption_id, length(remark), pg_column_size(remark) >= 12800 AS not_compressed
FROM power_consumption WHERE consumption_id IN (12, 13) ORDER BY 1;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
-- Proof that the WAL really leaves the value out (a test_decoding slot of this test's own).
SELECT 'init' FROM pg_create_logical_replication_slot('pipeline_basic_toast', 'test_decoding');
UPDATE power_consumption SET consumption_amount = 999.99 WHERE consumption_id = 12;
SELECT count(*) AS unchanged_toast_in_wal
FROM pg_logical_slot_get_changes('pipeline_basic_toast', NULL, NULL)
WHERE data LIKE 'table pipeline_basic.power_consumption: UPDATE:%remark[text]:unchanged-toast-datum%';
SELECT pg_drop_replication_slot('pipeline_basic_toast');
-- further forms: another column and the key changed; and in one transaction an update that
-- leaves the remark, then a key change, then another update
UPDATE power_consumption SET consumption_cost = 1.23, consumption_id = 5012 WHERE consumption_id = 13;
BEGIN;
INSERT INTO power_consumption (consumption_id, user_id, remark) VALUES (14000, 1001, long_remark(2));
UPDATE power_consumption SET consumption_amount = 7 WHERE consumption_id = 14000;
UPDATE power_consumption SET consumption_id = 14001 WHERE consumption_id = 14000;
UPDATE power_consumption SET consumption_amount = 8 WHERE consumption_id = 12;
UPDATE power_consumption SET consumption_id = 6012 WHERE consumption_id = 12;
UPDATE power_consumption SET meter_reading_after = 1 WHERE consumption_id = 6012;
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT m.consumption_id, m.consumption_amount, length(m.remark) AS remark_length,
       m.remark = s.remark AS same_remark
FROM ods_power_consumption m JOIN power_consumption s USING (consumption_id)
WHERE m.consumption_id IN (5012, 6012, 14001) ORDER BY 1;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');

-- ---------------------------------------------------------------------------------------------
-- A rolled-back transaction leaves no trace; neither do rolled-back subtransactions.
-- ---------------------------------------------------------------------------------------------
SELECT transactions_applied AS txns1 FROM stategrid_ivm.pipelines WHERE name = 'basic' \gset
BEGIN;
INSERT INTO power_user (user_id, user_name) VALUES (1100, '回滚用户');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount) VALUES (20000, 1100, 1);
UPDATE power_consumption SET consumption_amount = 0 WHERE user_id = 1001;
DELETE FROM power_consumption WHERE user_id = 1003;
ROLLBACK;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT transactions_applied - :txns1 AS new_transactions FROM stategrid_ivm.pipelines WHERE name = 'basic';
SELECT count(*) AS rolled_back_rows FROM ods_power_user WHERE user_id = 1100;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');

BEGIN;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, remark) VALUES (21000, 1004, 10, 'kept');
SAVEPOINT a;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, remark) VALUES (21001, 1004, 11, 'rolled back');
UPDATE power_consumption SET remark = 'rolled back too' WHERE consumption_id = 21000;
DELETE FROM power_consumption WHERE consumption_id = 14;
ROLLBACK TO SAVEPOINT a;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, remark) VALUES (21002, 1004, 12, 'after rollback to');
SAVEPOINT b;
UPDATE power_consumption SET remark = 'released' WHERE consumption_id = 21000;
SAVEPOINT c;
DELETE FROM power_consumption WHERE consumption_id = 15;
RELEASE SAVEPOINT c;
RELEASE SAVEPOINT b;
SAVEPOINT d;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount) VALUES (21003, 1004, 13);
ROLLBACK TO SAVEPOINT d;
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT consumption_id, consumption_amount, remark FROM ods_power_consumption
WHERE consumption_id IN (14, 15, 21000, 21001, 21002, 21003) ORDER BY 1;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');

-- ---------------------------------------------------------------------------------------------
-- TRUNCATE of a source is a change like any other.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE saved_consumption AS TABLE power_consumption;
BEGIN;
TRUNCATE power_consumption;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, remark)
VALUES (1, 1001, 1.5, 'after truncate'), (2, 1002, 2.5, long_remark(3));
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT * FROM compare('power_user', 'ods_power_user');
TRUNCATE power_consumption;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
INSERT INTO power_consumption SELECT * FROM saved_consumption;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');

-- ---------------------------------------------------------------------------------------------
-- pause_pipeline / resume_pipeline.
-- ---------------------------------------------------------------------------------------------
SELECT stategrid_ivm.pause_pipeline('basic');
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'basic';
-- the worker goes away
SELECT wait_until($$SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'basic'$$) AS worker_stopped;
SELECT transactions_applied AS txns2 FROM stategrid_ivm.pipelines WHERE name = 'basic' \gset
INSERT INTO power_user (user_id, user_name) VALUES (1200, '暂停期间');
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount) VALUES (30000, 1200, 30);
UPDATE power_consumption SET consumption_amount = 31 WHERE consumption_id = 1;
DELETE FROM power_consumption WHERE consumption_id = 16;
SELECT pg_sleep(1.5);
-- nothing of it is applied while paused; the lag shows it
SELECT count(*) AS paused_rows FROM ods_power_consumption WHERE consumption_id = 30000;
SELECT count(*) AS paused_users FROM ods_power_user WHERE user_id = 1200;
SELECT (SELECT consumption_amount FROM ods_power_consumption WHERE consumption_id = 1) =
       (SELECT consumption_amount FROM saved_consumption WHERE consumption_id = 1) AS old_amount,
       EXISTS (SELECT FROM ods_power_consumption WHERE consumption_id = 16) AS deleted_row_still_there;
SELECT state, worker_pid IS NULL AS no_worker, transactions_applied - :txns2 AS new_transactions,
       lag_bytes > 0 AS lag_bytes_positive, lag_seconds >= 1 AS lag_seconds_positive
FROM stategrid_ivm.pipelines WHERE name = 'basic';
-- sync refuses a paused pipeline
SELECT stategrid_ivm.sync('basic');
-- pausing twice is harmless
SELECT stategrid_ivm.pause_pipeline('basic');

SELECT stategrid_ivm.resume_pipeline('basic');
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT state, worker_pid > 0 AS has_worker, transactions_applied - :txns2 AS new_transactions, lag_seconds = 0 AS caught_up
FROM stategrid_ivm.pipelines WHERE name = 'basic';
SELECT consumption_id, user_id, consumption_amount FROM ods_power_consumption WHERE consumption_id IN (1, 16, 30000) ORDER BY 1;
SELECT * FROM compare('power_user', 'ods_power_user');
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
-- resuming a running pipeline changes nothing
SELECT stategrid_ivm.resume_pipeline('basic');
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT state FROM stategrid_ivm.pipelines WHERE name = 'basic';

-- ---------------------------------------------------------------------------------------------
-- Adopting an existing, compatible mirror: other column order, an extra column with a default,
-- the same primary key. Its stale rows are replaced by the backfill.
-- ---------------------------------------------------------------------------------------------
CREATE TABLE user_copy (
    note         text DEFAULT '由管道维护',
    phone        varchar(20),
    address      varchar(200),
    region_name  varchar(100),
    region_id    int,
    usage_type   varchar(50),
    user_name    varchar(100),
    update_time  timestamp,
    create_time  timestamp,
    user_id      bigint PRIMARY KEY
);
INSERT INTO user_copy (user_id, user_name, note) VALUES (1001, '过期的名字', 'stale'), (9999, '不存在的用户', 'stale');
SELECT stategrid_ivm.create_pipeline('basic_adopt');
SELECT stategrid_ivm.add_source('basic_adopt', 'power_user', 'pipeline_basic.user_copy');
SELECT pipeline, view_name, query FROM stategrid_ivm.views WHERE pipeline = 'basic_adopt';
SELECT stategrid_ivm.start_pipeline('basic_adopt');
UPDATE power_user SET user_name = '张伟（更名）' WHERE user_id = 1001;
SELECT stategrid_ivm.sync('basic_adopt') IS NOT NULL AS synced;
SELECT * FROM compare('power_user', 'user_copy');
SELECT note, count(*) FROM user_copy GROUP BY note ORDER BY note;
SELECT user_id, user_name FROM user_copy WHERE user_id IN (1001, 9999) ORDER BY 1;
-- the first pipeline is unaffected
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_user', 'ods_power_user');
-- dropping without drop_tables keeps the adopted table
SELECT slot_name AS adopt_slot FROM stategrid_ivm.pipelines WHERE name = 'basic_adopt' \gset
SELECT stategrid_ivm.drop_pipeline('basic_adopt');
SELECT to_regclass('pipeline_basic.user_copy') IS NOT NULL AS still_there,
       (SELECT count(*) FROM pg_replication_slots WHERE slot_name = :'adopt_slot') AS slots,
       (SELECT count(*) FROM pg_replication_origin WHERE roname = :'adopt_slot') AS origins;

-- ---------------------------------------------------------------------------------------------
-- One transaction of 1,000,000 rows, after the worker has applied a trickle of small ones (the
-- usual history of a worker: its prepared statements have run many times on a small mirror,
-- which autovacuum has analyzed while it was small; ANALYZE here makes that deterministic).
-- ---------------------------------------------------------------------------------------------
ANALYZE ods_power_consumption;
UPDATE power_consumption SET consumption_amount = consumption_amount + 0.01 WHERE consumption_id = 1;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
UPDATE power_consumption SET consumption_amount = consumption_amount + 0.01 WHERE consumption_id = 3;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount) VALUES (40000, 1001, 1);
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
UPDATE power_consumption SET consumption_amount = 2 WHERE consumption_id = 40000;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
DELETE FROM power_consumption WHERE consumption_id = 40000;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
UPDATE power_consumption SET remark = '抄表' WHERE consumption_id = 1;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
UPDATE power_consumption SET remark = '复核' WHERE consumption_id = 1;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
UPDATE power_consumption SET remark = '已核对' WHERE consumption_id = 1;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
CREATE TABLE saved_consumption_2 AS TABLE power_consumption;
SELECT count(*) AS before_rows, sum(consumption_amount) AS before_sum FROM power_consumption \gset
INSERT INTO power_consumption (consumption_id, user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 100000 + i, 1001 + i % 6, (i % 1000) / 10.0, (i % 1000) / 20.0, timestamp '2024-03-01' + (i % 31) * interval '1 day',
       i % 100000, i % 100000 + (i % 1000) / 10.0, CASE WHEN i % 10 = 0 THEN '批量' END
FROM generate_series(1, 1000000) i;
SELECT stategrid_ivm.sync('basic', '300 s') IS NOT NULL AS synced;
SELECT (SELECT count(*) FROM ods_power_consumption) - :before_rows AS new_mirror_rows,
       (SELECT count(*) FROM ods_power_consumption) = (SELECT count(*) FROM power_consumption) AS same_count,
       (SELECT sum(consumption_amount) FROM ods_power_consumption) = (SELECT sum(consumption_amount) FROM power_consumption) AS same_amount,
       (SELECT sum(consumption_cost) FROM ods_power_consumption) = (SELECT sum(consumption_cost) FROM power_consumption) AS same_cost,
       (SELECT sum(meter_reading_after) FROM ods_power_consumption) = (SELECT sum(meter_reading_after) FROM power_consumption) AS same_readings;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');
SELECT state, last_error FROM stategrid_ivm.pipelines WHERE name = 'basic';
-- back to the small table (one TRUNCATE, then the saved rows)
BEGIN;
TRUNCATE power_consumption;
INSERT INTO power_consumption SELECT * FROM saved_consumption_2;
COMMIT;
SELECT stategrid_ivm.sync('basic') IS NOT NULL AS synced;
SELECT * FROM compare('power_consumption', 'ods_power_consumption');

-- ---------------------------------------------------------------------------------------------
-- drop_pipeline: slot, origin, catalog rows and (drop_tables) the mirrors go away.
-- ---------------------------------------------------------------------------------------------
SELECT slot_name AS basic_slot FROM stategrid_ivm.pipelines WHERE name = 'basic' \gset
SELECT count(*) AS slots_before FROM pg_replication_slots WHERE slot_name = :'basic_slot';
SELECT stategrid_ivm.drop_pipeline('basic', true);
SELECT count(*) AS pipelines FROM stategrid_ivm.pipelines WHERE name LIKE 'basic%';
SELECT count(*) AS views FROM stategrid_ivm.views WHERE pipeline LIKE 'basic%';
SELECT count(*) AS slots FROM pg_replication_slots WHERE slot_name = :'basic_slot';
SELECT count(*) AS origins FROM pg_replication_origin WHERE roname = :'basic_slot';
SELECT to_regclass('pipeline_basic.ods_power_user') IS NULL AS ods_user_dropped,
       to_regclass('pipeline_basic.ods_power_consumption') IS NULL AS ods_consumption_dropped,
       to_regclass('pipeline_basic.power_user') IS NOT NULL AS source_kept;
-- its worker is gone
SELECT wait_until($$SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name LIKE 'stategrid_ivm pipeline basic%')$$) AS workers_gone;
-- the name can be used again
SELECT stategrid_ivm.create_pipeline('basic');
SELECT name, state FROM stategrid_ivm.pipelines WHERE name = 'basic';
SELECT stategrid_ivm.drop_pipeline('basic', true);

DROP SCHEMA pipeline_basic CASCADE;
