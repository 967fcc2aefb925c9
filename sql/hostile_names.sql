-- Odd and hostile names (issue 7, deliverable 3): quoted, mixed-case and Chinese identifiers for
-- schemas, tables, columns, views and pipelines; names that try SQL injection; names longer than
-- PostgreSQL's 63 bytes. Each either works (the pipeline runs over them and verify() is clean)
-- or is refused with an error; nothing is executed that the name smuggles in (the table
-- "victim" survives every attempt).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA hostile_names;
CREATE SCHEMA "仓库 ""Ware""house";
SET search_path = "仓库 ""Ware""house", hostile_names, public;
CREATE TABLE hostile_names.victim (id int PRIMARY KEY);

CREATE FUNCTION hostile_names.settle(p text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    PERFORM stategrid_ivm.sync(p);
    SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), '; '
                      ORDER BY view_name)
    INTO bad FROM stategrid_ivm.verify(p) WHERE NOT ok;
    RETURN coalesce('NOT OK: ' || bad, 'ok');
END
$$;

-- ---- quoted, mixed-case and Chinese identifiers ------------------------------------------------
CREATE TABLE "电力用户" ("用户ID" bigint PRIMARY KEY, "用户Name" text, "区域" int, "Region Name" text);
CREATE TABLE "MixedCase Readings" (
    "Reading Id" bigint PRIMARY KEY,
    "用户ID" bigint,
    "kWh" numeric(10,2),
    "day" date,
    "x""y" text,                        -- a double quote in a column name
    "select" text                       -- a reserved word
);
INSERT INTO "电力用户" VALUES (1, '张三', 11, '北京'), (2, 'O''Brien', 31, 'Shang"hai');
INSERT INTO "MixedCase Readings" VALUES
    (1, 1, 5.00, '2024-03-01', 'q"q', 'from'),
    (2, 2, 7.50, '2024-03-01', NULL, ';'),
    (3, 3, 9.25, '2024-03-02', '''', NULL);

-- a pipeline whose name tries to close a string and a quoted identifier
SELECT stategrid_ivm.create_pipeline($n$管道 "x"; DROP TABLE hostile_names.victim; --'); DROP TABLE hostile_names.victim; --$n$);
SELECT name FROM stategrid_ivm.pipelines WHERE name LIKE '管道%';
\set p '管道 "x"; DROP TABLE hostile_names.victim; --''); DROP TABLE hostile_names.victim; --'
SELECT stategrid_ivm.add_source(:'p', '"电力用户"');
SELECT stategrid_ivm.add_source(:'p', '"MixedCase Readings"');
-- DWD: a join over the quoted names, output columns named like injections
SELECT stategrid_ivm.add_view(:'p', '"明细 ""视图"""', $q$
    SELECT r."Reading Id", r."用户ID", coalesce(u."区域", 0) AS "区域",
           coalesce(u."Region Name", '未知') AS "Region Name", r."kWh", r."day",
           r."x""y" AS "x""; DROP TABLE hostile_names.victim; --", r."select" AS "'); DROP TABLE hostile_names.victim; --"
    FROM "ods_MixedCase Readings" r LEFT JOIN "ods_电力用户" u ON r."用户ID" = u."用户ID" $q$);
-- DWS over it, ranked, in a table whose name is an injection attempt in quotes
SELECT stategrid_ivm.add_view(:'p', $v$hostile_names."汇总'); DROP TABLE hostile_names.victim; --"$v$, $q$
    SELECT "区域", "Region Name", "day", sum("kWh") AS "总量", count(*) AS "Count",
           rank() OVER (PARTITION BY "day" ORDER BY sum("kWh") DESC) AS "Rank"
    FROM "明细 ""视图""" GROUP BY "区域", "Region Name", "day" $q$);
SELECT stategrid_ivm.start_pipeline(:'p');
SELECT hostile_names.settle(:'p');

-- changes stream through: inserts, a user moving region, a reading moving day, deletes
INSERT INTO "MixedCase Readings" VALUES (4, 1, 1.00, '2024-03-02', 'z', 'z');
INSERT INTO "电力用户" VALUES (3, '王五', 44, '广东');
UPDATE "电力用户" SET "区域" = 45, "Region Name" = '广西' WHERE "用户ID" = 2;
UPDATE "MixedCase Readings" SET "day" = '2024-03-03' WHERE "Reading Id" = 1;
DELETE FROM "MixedCase Readings" WHERE "Reading Id" = 2;
SELECT hostile_names.settle(:'p');
SELECT * FROM "明细 ""视图""" ORDER BY 1;
SELECT * FROM hostile_names."汇总'); DROP TABLE hostile_names.victim; --" ORDER BY "day", "Rank";
SELECT view_name, kind, stategrid_ivm.view_rows(view_name::regclass) AS rows FROM stategrid_ivm.views WHERE pipeline = :'p' ORDER BY view_name;
SELECT to_regclass('hostile_names.victim') IS NOT NULL AS victim_alive;

-- ---- names that are not identifiers are refused, never spliced into SQL ------------------------
-- view names: parsed as (schema.)name like any identifier
SELECT stategrid_ivm.add_view(:'p', 'v; DROP TABLE hostile_names.victim', 'SELECT "用户ID" FROM "ods_电力用户"');
SELECT stategrid_ivm.add_view(:'p', $v$v'); DROP TABLE hostile_names.victim; --$v$, 'SELECT "用户ID" FROM "ods_电力用户"');
SELECT stategrid_ivm.add_view(:'p', 'a.b.c', 'SELECT "用户ID" FROM "ods_电力用户"');
SELECT stategrid_ivm.add_view(:'p', '', 'SELECT "用户ID" FROM "ods_电力用户"');
-- unquoted names fold to lower case, as in SQL: Upper.Case is the schema "upper"
SELECT stategrid_ivm.add_view(:'p', 'Upper.Case', 'SELECT "用户ID" FROM "ods_电力用户"');
-- mirror names (ods_table) the same way
SELECT stategrid_ivm.create_pipeline('hostile_mirrors');
SELECT stategrid_ivm.add_source('hostile_mirrors', '"电力用户"', 'm (id int); DROP TABLE hostile_names.victim; --');
SELECT stategrid_ivm.add_source('hostile_mirrors', '"电力用户"', 'hostile_names.m; DROP TABLE hostile_names.victim');
SELECT stategrid_ivm.add_source('hostile_mirrors', '"电力用户"', 'hostile_names.');
SELECT stategrid_ivm.add_source('hostile_mirrors', '"电力用户"', 'no_such_schema.m');
-- ...a quoted name is taken literally
SELECT stategrid_ivm.add_source('hostile_mirrors', '"电力用户"', $m$hostile_names."m""; DROP TABLE hostile_names.victim; --"$m$);
-- the source argument is a regclass: not a table name, no table
SELECT stategrid_ivm.add_source('hostile_mirrors', 'hostile_names.victim; DROP TABLE hostile_names.victim');
SELECT view_name, kind FROM stategrid_ivm.views WHERE pipeline = 'hostile_mirrors';
SELECT stategrid_ivm.drop_pipeline('hostile_mirrors', drop_tables => true);
-- a SELECT with a second statement is refused (one statement only)
SELECT stategrid_ivm.add_view(:'p', 'v_two', 'SELECT "用户ID" FROM "ods_电力用户"; DROP TABLE hostile_names.victim');
SELECT to_regclass('hostile_names.victim') IS NOT NULL AS victim_alive;

-- ---- names longer than 63 bytes -----------------------------------------------------------------
-- PostgreSQL truncates identifiers to 63 bytes, at a character boundary. A table name of 21
-- Chinese characters is 63 bytes: its default mirror name "ods_" + name is truncated.
CREATE TABLE hostile_names."长表名长表名长表名长表名长表名长表名长表甲" (id bigint PRIMARY KEY, v int);
CREATE TABLE hostile_names."长表名长表名长表名长表名长表名长表名长表乙" (id bigint PRIMARY KEY, v int);
SELECT relname, octet_length(relname) AS bytes FROM pg_class
WHERE relnamespace = 'hostile_names'::regnamespace AND relname LIKE '长表名%' AND relkind = 'r' ORDER BY relname;
-- a pipeline name of 150 characters (the worker's name keeps whole characters)
SELECT repeat('长', 100) || repeat('x', 50) AS long_pipeline \gset
SELECT stategrid_ivm.create_pipeline(:'long_pipeline');
SELECT stategrid_ivm.add_source(:'long_pipeline', 'hostile_names."长表名长表名长表名长表名长表名长表名长表甲"');
-- the second table's mirror name truncates to the same name: refused, with the way out
SELECT stategrid_ivm.add_source(:'long_pipeline', 'hostile_names."长表名长表名长表名长表名长表名长表名长表乙"');
SELECT stategrid_ivm.add_source(:'long_pipeline', 'hostile_names."长表名长表名长表名长表名长表名长表名长表乙"', 'hostile_names."ods_长表乙"');
-- view names longer than 63 bytes are truncated like any table name; a second view whose name
-- truncates to the same table is refused
SELECT stategrid_ivm.add_view(:'long_pipeline', 'hostile_names.' || repeat('视', 30), $q$
    SELECT id, v FROM hostile_names."ods_长表名长表名长表名长表名长表名长表名长表甲" $q$) AS long_view;
SELECT stategrid_ivm.add_view(:'long_pipeline', 'hostile_names.' || repeat('视', 21) || '另一个', $q$
    SELECT id, v FROM hostile_names."ods_长表乙" $q$);
SELECT stategrid_ivm.add_view(:'long_pipeline', 'hostile_names.' || repeat('视', 20) || '合计', $q$
    SELECT v, sum(id) AS total, count(*) AS n FROM hostile_names."ods_长表乙" GROUP BY v $q$) AS long_aggregate;
SELECT stategrid_ivm.start_pipeline(:'long_pipeline');
INSERT INTO hostile_names."长表名长表名长表名长表名长表名长表名长表甲" SELECT g, g % 3 FROM generate_series(1, 20) g;
INSERT INTO hostile_names."长表名长表名长表名长表名长表名长表名长表乙" SELECT g, g % 4 FROM generate_series(1, 20) g;
UPDATE hostile_names."长表名长表名长表名长表名长表名长表名长表乙" SET v = 9 WHERE id < 5;
SELECT hostile_names.settle(:'long_pipeline');
SELECT count(*) AS long_view_rows FROM hostile_names."视视视视视视视视视视视视视视视视视视视视视";
SELECT * FROM hostile_names."视视视视视视视视视视视视视视视视视视视视合计" ORDER BY v;
SELECT state, octet_length(name) AS name_bytes FROM stategrid_ivm.pipelines WHERE name = :'long_pipeline';
-- every maintained table, however named, refuses direct writes (sql/direct_writes.sql)
SELECT p.name = :'long_pipeline' AS long_pipeline, count(*) AS tables, count(t.oid) AS guarded
FROM stategrid_ivm.pipeline p
JOIN (SELECT pipeline_id, ods_relid AS rel FROM stategrid_ivm.source
      UNION ALL SELECT pipeline_id, relid FROM stategrid_ivm.view) m USING (pipeline_id)
LEFT JOIN pg_trigger t ON t.tgrelid = m.rel AND t.tgname = 'sgivm_refuse_direct_writes'
WHERE p.name IN (:'p', :'long_pipeline') GROUP BY 1 ORDER BY 1;
-- the worker's application_name is cut at a character boundary (63 bytes)
SELECT application_name = 'stategrid_ivm pipeline ' || repeat('长', 13) AS worker_name_ok
FROM pg_stat_activity WHERE backend_type = 'stategrid_ivm worker'
  AND application_name LIKE 'stategrid_ivm pipeline 长%';

SELECT stategrid_ivm.drop_pipeline(:'long_pipeline', drop_tables => true);
SELECT stategrid_ivm.drop_pipeline(:'p', drop_tables => true);
SELECT to_regclass('hostile_names.victim') IS NOT NULL AS victim_alive;
SELECT count(*) AS leftover_tables FROM pg_class
WHERE relnamespace IN ('hostile_names'::regnamespace, '"仓库 ""Ware""house"'::regnamespace)
  AND relkind = 'r' AND (relname LIKE 'ods%' OR relname LIKE '%视%' OR relname LIKE '汇总%');
DROP SCHEMA hostile_names CASCADE;
DROP SCHEMA "仓库 ""Ware""house" CASCADE;
