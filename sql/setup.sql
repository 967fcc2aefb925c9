-- The extension installs, the server is set up for it, and the State Grid source tables exist.
-- Later files (decoding_*) use the database this file leaves behind.
CREATE EXTENSION stategrid_ivm;
SELECT extname, extversion, extnamespace::regnamespace AS schema
FROM pg_extension WHERE extname = 'stategrid_ivm';

-- One row per server requirement; the test cluster meets them all.
SELECT requirement, ok, fix FROM stategrid_ivm.check_setup() ORDER BY requirement;
SELECT count(*) AS requirements, bool_and(ok) AS all_ok FROM stategrid_ivm.check_setup();

-- The schema and the catalog tables and views the extension owns in it: everyone may read
-- them (so that an owner can pg_dump its pipelines), only the extension's functions write.
SELECT nspname FROM pg_namespace WHERE nspname = 'stategrid_ivm';
SELECT c.relname, c.relkind, has_table_privilege('public', c.oid, 'SELECT') AS public_select,
       has_table_privilege('public', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS public_write
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'stategrid_ivm' AND c.relkind IN ('r', 'p', 'v', 'm')
ORDER BY c.relname COLLATE "C";

-- Functions of the extension that PUBLIC may execute (every other one needs a grant).
SELECT p.oid::regprocedure AS function
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'stategrid_ivm' AND has_function_privilege('public', p.oid, 'EXECUTE')
ORDER BY p.oid::regprocedure::text COLLATE "C";

-- The State Grid source tables, from the same file the demo uses.
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all
\d power_user
\d power_consumption
