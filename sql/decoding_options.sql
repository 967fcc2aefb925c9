-- Options of the output plugin: format, tables, relids, skip-origin, and the errors for bad ones.
-- Uses the State Grid source tables created by setup.sql.
TRUNCATE power_consumption, power_user RESTART IDENTITY;
SELECT 'init' FROM pg_create_logical_replication_slot('sg_opt', 'stategrid_ivm');

-- The text form of what is pending in the slot, with the given options (xids, commit times and
-- LSNs masked).
CREATE FUNCTION pg_temp.peek(VARIADIC options text[] DEFAULT '{}') RETURNS SETOF text LANGUAGE sql
AS $$
    SELECT regexp_replace(regexp_replace(regexp_replace(data,
             '^BEGIN \d+', 'BEGIN <xid>'),
             'commit_time ''[^'']*''', 'commit_time <time>'),
             'lsn [0-9A-F]+/[0-9A-F]+', 'lsn <lsn>', 'g')
    FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, VARIADIC ARRAY['format', 'text'] || options)
$$;
CREATE FUNCTION pg_temp.consume() RETURNS bigint LANGUAGE sql
AS $$ SELECT count(*) FROM pg_logical_slot_get_changes('sg_opt', NULL, NULL, 'format', 'text') $$;

-- Bad options are refused by name, before anything is decoded.
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'colour', 'red');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'include-xids', '0');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'json');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'tables', '"power_user');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'relids', 'power_user');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'relids', '0');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'skip-origin', '');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'skip-origin', 'no_such_origin');
-- An empty list selects nothing: it is refused rather than streaming nothing. (An option without
-- any value, pg_recvlogical -o format, cannot be given here: t/070_recvlogical.pl tries it.)
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'tables', '');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'tables', '  ');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text', 'relids', '');
SELECT data FROM pg_logical_slot_peek_changes('sg_opt', NULL, NULL, 'format', 'text',
                                              'tables', 'power_user', 'relids', '');
-- 'binary' is the default, and is accepted by name.
SELECT count(*) FROM pg_logical_slot_peek_binary_changes('sg_opt', NULL, NULL, 'format', 'binary');

-- Three transactions: one on each State Grid table, one on another table only.
CREATE TABLE tariff (usage_type varchar(50) PRIMARY KEY, yuan_per_kwh numeric(6,4));
INSERT INTO power_user VALUES
    (2001, '周杰', '居民', 330100, '杭州市', '杭州市西湖区文三路10号', '13600136001',
     '2024-02-01 08:00:00', '2024-02-01 08:00:00');
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
    VALUES (2001, 320.00, 172.80, '2024-03-01 00:00:00', 5000.00, 5320.00, NULL);
INSERT INTO tariff VALUES ('居民', 0.5400), ('商业', 0.8100), ('工业', 0.8500);

-- No filter: every table.
SELECT * FROM pg_temp.peek();
-- tables: names, optionally schema-qualified; unquoted names fold to lower case as in SQL.
SELECT * FROM pg_temp.peek('tables', 'power_user');
SELECT * FROM pg_temp.peek('tables', 'public.power_consumption');
SELECT * FROM pg_temp.peek('tables', 'POWER_USER, "power_consumption"');
SELECT * FROM pg_temp.peek('tables', 'other_schema.power_user');
SELECT * FROM pg_temp.peek('tables', 'no_such_table');
-- relids: relation OIDs; together with tables, the union is emitted.
SELECT * FROM pg_temp.peek('relids', 'power_consumption'::regclass::oid::text);
SELECT * FROM pg_temp.peek('relids', 'tariff'::regclass::oid::text, 'tables', 'power_user');
SELECT * FROM pg_temp.peek('relids', concat_ws(',', 'power_user'::regclass::oid, 'tariff'::regclass::oid));
SELECT pg_temp.consume();

-- skip-origin: changes written under a replication origin are dropped (filter_by_origin_cb).
SELECT pg_replication_origin_create('o1') > 0 AS created;
SELECT pg_replication_origin_create('o2') > 0 AS created;
SELECT pg_replication_origin_session_setup('o1');
INSERT INTO power_user (user_id, user_name, create_time, update_time)
    VALUES (2002, '写入来自 o1', '2024-02-02 08:00:00', '2024-02-02 08:00:00');
SELECT pg_replication_origin_session_reset();
INSERT INTO power_user (user_id, user_name, create_time, update_time)
    VALUES (2003, '本地写入', '2024-02-03 08:00:00', '2024-02-03 08:00:00');
-- without the option both appear
SELECT * FROM pg_temp.peek();
-- skipping o1, or any origin: only the second
SELECT * FROM pg_temp.peek('skip-origin', 'o1');
SELECT * FROM pg_temp.peek('skip-origin', 'any');
-- skipping another origin skips nothing
SELECT * FROM pg_temp.peek('skip-origin', 'o2');
-- options combine: the origin filter and the table filter
SELECT * FROM pg_temp.peek('skip-origin', 'o1', 'tables', 'power_user');
SELECT * FROM pg_temp.peek('skip-origin', 'any', 'tables', 'power_consumption');
SELECT pg_temp.consume();

SELECT pg_replication_origin_drop('o1');
SELECT pg_replication_origin_drop('o2');
SELECT pg_drop_replication_slot('sg_opt');
DROP TABLE tariff;
DELETE FROM power_consumption;
DELETE FROM power_user;
