-- stategrid_ivm 0.3.0: catalog and SQL interface of the in-database State Grid warehouse.
--
-- The complete install script of 0.3.0: CREATE EXTENSION stategrid_ivm runs this file alone.
-- Installs of 0.1.0 and 0.2.0 reach the same objects with ALTER EXTENSION stategrid_ivm UPDATE
-- (stategrid_ivm--0.1.0--0.2.0.sql, then stategrid_ivm--0.2.0--0.3.0.sql); sql/extension_update.sql
-- checks that both ways give the same objects. Released scripts are frozen: a change of the SQL
-- interface goes here and into the update script from the last released version.
\echo Use "CREATE EXTENSION stategrid_ivm" to load this file. \quit

-- One row per requirement of the server configuration, with the setting that fixes it (only
-- where something must change: fix agrees with ok).
CREATE FUNCTION check_setup(
    OUT requirement text, OUT current_value text, OUT ok boolean, OUT fix text)
RETURNS SETOF record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH s AS (
        SELECT name, setting FROM pg_settings
        WHERE name IN ('wal_level', 'shared_preload_libraries', 'output_plugin_libraries',
                       'max_replication_slots', 'max_worker_processes')
    ),
    libs AS (
        SELECT name, array(SELECT btrim(x) FROM unnest(string_to_array(setting, ',')) x) AS list
        FROM s WHERE name IN ('shared_preload_libraries', 'output_plugin_libraries')
    ),
    used AS (SELECT count(*)::int AS slots FROM pg_replication_slots),
    checked AS (
        SELECT 1 AS ord, 'wal_level' AS requirement, s.setting AS current_value,
               s.setting = 'logical' AS ok,
               'wal_level = logical  (postgresql.conf; needs a restart)' AS fix
        FROM s WHERE name = 'wal_level'
        UNION ALL
        SELECT 2, 'shared_preload_libraries', s.setting, 'stategrid_ivm' = ANY (l.list),
               format('shared_preload_libraries = %L  (stategrid_ivm added to the existing list; needs a restart)',
                      array_to_string(array_remove(l.list, '') || 'stategrid_ivm'::text, ', '))
        FROM s JOIN libs l USING (name) WHERE name = 'shared_preload_libraries'
        UNION ALL
        SELECT 3, 'output_plugin_libraries', s.setting, 'stategrid_ivm' = ANY (l.list),
               format('output_plugin_libraries = %L  (PostgreSQL 15.19 and later refuse unlisted plugins; reload)',
                      array_to_string(array_remove(l.list, '') || 'stategrid_ivm'::text, ', '))
        FROM s JOIN libs l USING (name) WHERE name = 'output_plugin_libraries'
        UNION ALL
        -- one slot per pipeline, and a free one for the next pipeline (or a rebuild)
        SELECT 4, 'max_replication_slots', s.setting, s.setting::int > u.slots,
               format('max_replication_slots = %s  (%s slots are in use: one per pipeline, and free ones for new pipelines; needs a restart)',
                      greatest(10, u.slots + 2), u.slots)
        FROM s CROSS JOIN used u WHERE name = 'max_replication_slots'
        UNION ALL
        SELECT 5, 'max_worker_processes', s.setting, s.setting::int >= 8,
               'max_worker_processes = 16  (a launcher plus one worker per running pipeline; needs a restart)'
        FROM s WHERE name = 'max_worker_processes'
    )
    SELECT requirement, current_value, ok, CASE WHEN ok THEN NULL ELSE fix END
    FROM checked ORDER BY ord
$$;

-- The text form of one binary message of the output plugin (relations named from the catalog).
CREATE FUNCTION change_to_text(message bytea) RETURNS text
LANGUAGE c STRICT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'sgivm_change_to_text';

-- ---------------------------------------------------------------------------------------
-- Catalog: the source of truth the launcher and the workers read.
-- ---------------------------------------------------------------------------------------

CREATE TABLE pipeline (
    pipeline_id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    owner oid NOT NULL,                    -- the role the worker applies as
    state text NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'backfilling', 'running', 'paused', 'error')),
    slot_name name NOT NULL UNIQUE,
    origin_name text NOT NULL UNIQUE,
    backfill_snapshot pg_snapshot,         -- snapshot the initial copy was taken under
    backfill_lsn pg_lsn,                   -- WAL insert position read right after it
    applied_lsn pg_lsn,                    -- end of the last applied source commit
    applied_commit_time timestamptz,       -- its commit time
    transactions_applied bigint NOT NULL DEFAULT 0,
    rows_applied bigint NOT NULL DEFAULT 0,
    last_error text,
    last_error_at timestamptz,
    error_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    views_version integer NOT NULL DEFAULT 0  -- bumped by add_view: a running batch restarts
);

CREATE TABLE source (
    pipeline_id integer NOT NULL REFERENCES pipeline ON DELETE CASCADE,
    source_relid oid NOT NULL,             -- not regclass: must survive the table's drop
    source_name text NOT NULL,             -- qualified name when added, for messages
    ods_relid oid NOT NULL,
    ods_name text NOT NULL,
    key_columns name[] NOT NULL,
    PRIMARY KEY (pipeline_id, source_relid),
    UNIQUE (ods_relid)
);

-- Maintained tables defined by a SELECT (DWD, DWS), in dependency order (view_id).
CREATE TABLE view (
    view_id serial PRIMARY KEY,
    pipeline_id integer NOT NULL REFERENCES pipeline ON DELETE CASCADE,
    view_name text NOT NULL,               -- qualified name when added
    relid oid NOT NULL UNIQUE,
    query text NOT NULL,                   -- as the user wrote it
    plan jsonb NOT NULL,                   -- analysed shape and maintenance statements
    created_at timestamptz NOT NULL DEFAULT now()
);

-- pg_dump keeps the catalog's rows and its sequences' state (or the next pipeline or view of a
-- restored database would reuse an id). A dump keeps the pipelines of the roles the dumping
-- role is a member of: all of them for a superuser, its own for a pipeline's owner (not a
-- superuser), who may read the whole catalog (GRANT below): it holds nothing the public views
-- pipelines and views do not already show, and only the SECURITY DEFINER functions write it.
SELECT pg_catalog.pg_extension_config_dump('pipeline',
    'WHERE pg_catalog.pg_has_role(owner, ''MEMBER'')');
SELECT pg_catalog.pg_extension_config_dump('source',
    'WHERE pipeline_id IN (SELECT p.pipeline_id FROM stategrid_ivm.pipeline p WHERE pg_catalog.pg_has_role(p.owner, ''MEMBER''))');
SELECT pg_catalog.pg_extension_config_dump('view',
    'WHERE pipeline_id IN (SELECT p.pipeline_id FROM stategrid_ivm.pipeline p WHERE pg_catalog.pg_has_role(p.owner, ''MEMBER''))');
SELECT pg_catalog.pg_extension_config_dump('pipeline_pipeline_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('view_view_id_seq', '');
GRANT SELECT ON pipeline, source, view TO PUBLIC;
GRANT SELECT ON SEQUENCE pipeline_pipeline_id_seq, view_view_id_seq TO PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Internal C functions (not for PUBLIC).
-- ---------------------------------------------------------------------------------------

-- Asks the launcher, when the calling transaction commits, to look at this database again.
CREATE FUNCTION _notify_launcher() RETURNS void
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_notify_launcher';

-- Wakes the worker of a pipeline now (sync, pause).
CREATE FUNCTION _wake_pipeline(pipeline_id integer) RETURNS void
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_wake_pipeline';

-- The end of the WAL every commit so far is in, flushed (sync's target; async commits included).
CREATE FUNCTION _flush_commits() RETURNS pg_lsn
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_flush_commits';

-- Notes a slot create_pipeline made: if the transaction rolls back, the launcher drops it.
CREATE FUNCTION _slot_created(slot name) RETURNS void
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_slot_created';

-- The role a session runs as (SET ROLE), also inside SECURITY DEFINER functions.
CREATE FUNCTION _calling_role() RETURNS oid
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'sgivm_calling_role';

-- What the workers of this database keep in shared memory, with the freshness figures of each
-- pipeline (pipelines, below).
CREATE FUNCTION _runtime_status(
    OUT pipeline_id integer, OUT worker_pid integer, OUT caught_up_lsn pg_lsn,
    OUT oldest_unapplied_commit timestamptz, OUT last_batch_at timestamptz,
    OUT freshness_transactions bigint, OUT freshness_p50_ms double precision,
    OUT freshness_p99_ms double precision, OUT freshness_max_ms double precision)
RETURNS SETOF record
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_runtime_status';

-- Analyses a view's SELECT and returns its shape and maintenance statements (jsonb text).
CREATE FUNCTION _plan_view(query text, view_relid oid, view_table text) RETURNS text
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_plan_view';
-- add_view's split of a query maintained over a view of its own input (view_analyzer.cpp)
CREATE FUNCTION _split_view(query text, input oid) RETURNS text
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_split_view';

-- Runs one statement as a role in a security-restricted operation; the first row of its result
-- as text, or the number of rows it processed. Internal: superusers (our SECURITY DEFINER
-- functions) only.
CREATE FUNCTION _run_as(role oid, sql text, search_path text DEFAULT NULL) RETURNS text[]
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_run_as';

-- Drops a view's kept state (the tables its plan names), as `p_role`.
CREATE FUNCTION _drop_state(p_role oid, p_plan jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text;
BEGIN
    FOR v_table IN SELECT jsonb_array_elements_text(coalesce(p_plan->'state_tables', '[]')) LOOP
        IF to_regclass(v_table) IS NOT NULL THEN
            PERFORM stategrid_ivm._run_as(p_role, format('DROP TABLE %s', v_table));
        END IF;
    END LOOP;
END
$$;

-- add_view's proof that a view's maintenance statements plan and run (src/pg/view_dry_run.cpp).
-- Internal: superusers (our SECURITY DEFINER functions) only.
CREATE FUNCTION _try_view_statements(role oid, view_name text, plan jsonb) RETURNS void
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_try_view_statements';

-- ---------------------------------------------------------------------------------------
-- Helpers.
-- ---------------------------------------------------------------------------------------

-- Finds a pipeline and checks that the calling role may change it. SECURITY DEFINER so that the
-- owner check, not a missing grant on the catalog, is what a non-owner runs into.
CREATE FUNCTION _pipeline(p_name text, p_for_change boolean DEFAULT true)
RETURNS pipeline
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
BEGIN
    IF p_for_change THEN
        SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name FOR UPDATE;
    ELSE
        SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM stategrid_ivm.pipelines lists the pipelines.';
    END IF;
    IF p_for_change AND NOT pg_has_role(stategrid_ivm._calling_role(), p.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be the owner of pipeline "%" (%)', p_name, p.owner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN p;
END
$$;

-- Refuses to go on when the server cannot run pipelines; the hint names the setting.
CREATE FUNCTION _require_setup() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM stategrid_ivm.check_setup() WHERE NOT ok
             AND requirement IN ('wal_level', 'shared_preload_libraries', 'output_plugin_libraries')
    LOOP
        RAISE EXCEPTION 'stategrid_ivm needs % (now "%")', r.requirement, r.current_value
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Set ' || r.fix || '. SELECT * FROM stategrid_ivm.check_setup() shows every requirement.';
    END LOOP;
END
$$;

-- Who called a public function. Each public function is a SECURITY INVOKER wrapper that passes
-- _stamp_caller() -- its current_user, which that C function also remembers -- to its SECURITY
-- DEFINER implementation; there, inside SECURITY DEFINER, current_user is the extension's owner,
-- and the session's role (after SET ROLE) is not the caller either when a SECURITY DEFINER
-- function of another role calls us. The implementation takes the caller only if it is what
-- was stamped last (once: the stamp is used up): a direct call cannot name anybody but itself,
-- so a role's SECURITY DEFINER function acts with that role's pipelines, exactly as it acts
-- with that role's tables.
CREATE FUNCTION _stamp_caller() RETURNS oid
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_stamp_caller';
CREATE FUNCTION _take_caller_stamp(role oid) RETURNS boolean
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_take_caller_stamp';

CREATE FUNCTION _caller(p_caller oid) RETURNS oid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_caller IS NULL OR NOT stategrid_ivm._take_caller_stamp(p_caller) THEN
        RAISE EXCEPTION 'permission denied: the internal functions of stategrid_ivm are called by its public functions only'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Call stategrid_ivm.create_pipeline, add_view, ... instead.';
    END IF;
    RETURN p_caller;
END
$$;

-- A pipeline to change, locked (the worker finishes its batch first), if the caller may.
CREATE FUNCTION _owned_pipeline(p_caller oid, p_name text) RETURNS pipeline
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
BEGIN
    SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM stategrid_ivm.pipelines lists the pipelines.';
    END IF;
    IF NOT pg_has_role(p_caller, p.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be the owner of pipeline "%" (%)', p_name, p.owner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN p;
END
$$;

-- Privileges a role needs on a table a pipeline maintains and lacks; NULL if none.
CREATE FUNCTION _missing_write_privileges(p_role oid, p_table oid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(m, ', ' ORDER BY n) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) WITH ORDINALITY AS x(m, n)
    WHERE NOT has_table_privilege(p_role, p_table, m)
$$;

-- The checks of an existing table that a pipeline is to maintain (to adopt): add_source's ODS
-- mirror (p_from 'source': the source's columns, of exactly its types, and its primary key
-- p_key) or add_view's table (p_from 'view': the view's columns, of types of the same kind).
-- The table must be no pipeline's yet, belong to the pipeline's owner, be writable by the
-- owner and by the caller, and have the columns the pipeline writes; its other NOT NULL
-- columns need defaults. p_way_out (lower case) says how to name another table, in the hints.
CREATE FUNCTION _check_adoption(p_table regclass, p_pipeline stategrid_ivm.pipeline, p_caller oid,
                                p_from text, p_columns text[], p_types text[], p_key name[],
                                p_way_out text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_way_out text := upper(left(p_way_out, 1)) || substr(p_way_out, 2);
    v_owner oid := (SELECT relowner FROM pg_class WHERE oid = p_table);
    v_missing text;
    v_key name[];
BEGIN
    IF EXISTS (SELECT 1 FROM stategrid_ivm.view v WHERE v.relid = p_table)
       OR EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = p_table OR s.source_relid = p_table) THEN
        RAISE EXCEPTION 'table % is already part of a pipeline', p_table
            USING ERRCODE = 'duplicate_table', HINT = v_way_out || '.';
    END IF;
    -- a pipeline writes only tables of its owner (never the caller's rights, nor ours)
    IF NOT pg_has_role(p_pipeline.owner, v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'table % is owned by %, not by the owner of pipeline "%" (%)', p_table, v_owner::regrole,
                p_pipeline.name, p_pipeline.owner::regrole
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('A pipeline maintains only tables its owner owns: %s, or change the table''s owner.', p_way_out);
    END IF;
    v_missing := coalesce(stategrid_ivm._missing_write_privileges(p_pipeline.owner, p_table),
                          stategrid_ivm._missing_write_privileges(p_caller, p_table));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'permission denied for table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The owner of pipeline "%s" (%s) and the caller (%s) need %s on it.', p_pipeline.name,
                                  p_pipeline.owner::regrole, p_caller::regrole, v_missing);
    END IF;
    SELECT string_agg(quote_ident(c), ', ' ORDER BY n) INTO v_missing
    FROM unnest(p_columns) WITH ORDINALITY AS x(c, n)
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = p_table AND a.attname = c
                      AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % already exists and lacks the %''s columns %', p_table, p_from, v_missing
            USING ERRCODE = 'duplicate_table',
                  HINT = v_way_out || ', add the columns, or drop the table.';
    END IF;
    -- a mirror holds the source's values as they are; a view's values are cast to the table's
    -- types, of the same kind (an INT column for a bigint count is accepted, text for a number not)
    SELECT string_agg(format('%I (%s, the %s gives %s)', x.c, format_type(a.atttypid, a.atttypmod), p_from, x.t),
                      ', ' ORDER BY x.n)
    INTO v_missing
    FROM unnest(p_columns, p_types) WITH ORDINALITY AS x(c, t, n)
    JOIN pg_attribute a ON a.attrelid = p_table AND a.attname = x.c AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type ta ON ta.oid = a.atttypid
    JOIN pg_type tv ON tv.oid = to_regtype(x.t)
    WHERE CASE p_from WHEN 'source' THEN ta.oid <> tv.oid ELSE ta.typcategory <> tv.typcategory END;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % already exists with columns of other types: %', p_table, v_missing
            USING ERRCODE = 'datatype_mismatch',
                  HINT = v_way_out || ', or change the column types.';
    END IF;
    SELECT array_agg(a.attname ORDER BY a.attnum) INTO v_key
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = p_table AND i.indisprimary;
    IF p_key IS NOT NULL AND v_key IS DISTINCT FROM p_key THEN
        RAISE EXCEPTION 'table % already exists with another primary key', p_table
            USING ERRCODE = 'duplicate_table',
                  DETAIL = format('Its primary key is (%s), the %s''s is (%s).',
                                  array_to_string(v_key, ', '), p_from, array_to_string(p_key, ', ')),
                  HINT = v_way_out || ', or drop or rename the existing table.';
    END IF;
    -- (a publication of it could not replicate the pipeline's updates and deletes: the worker
    -- would fail at its first; _identify_rows gives a table without an identity one)
    IF (SELECT relreplident FROM pg_class WHERE oid = p_table) = 'n' THEN
        RAISE EXCEPTION 'table % has REPLICA IDENTITY NOTHING', p_table
            USING ERRCODE = 'invalid_table_definition',
                  DETAIL = 'A publication of the table could not replicate the pipeline''s updates and deletes of its rows.',
                  HINT = format('ALTER TABLE %s REPLICA IDENTITY DEFAULT (or USING INDEX, or FULL), or %s.', p_table, p_way_out);
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_missing
    FROM pg_attribute a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
      AND a.attidentity = '' AND a.attname::text <> ALL (p_columns);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % has NOT NULL columns without defaults that the % does not fill: %', p_table, p_from, v_missing
            USING ERRCODE = 'not_null_violation', HINT = 'Give them a default or drop NOT NULL.';
    END IF;
END
$$;

-- The output columns of a view's query proven never NULL (src/pg/not_null_columns.cpp). Parse
-- analysis only; open to PUBLIC because it runs as the pipeline's owner (_run_as).
CREATE FUNCTION _not_null_columns(query text) RETURNS name[]
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'sgivm_not_null_columns';

-- How a publication identifies a view table's rows (docs/replication.md): a table that
-- PostgreSQL's logical replication publishes needs a replica identity, or the worker's first
-- UPDATE or DELETE of it fails; and a subscriber finds each replicated row by its copy's
-- identity index. ODS mirrors have the source's primary key. A view table gets, after its
-- indexes (plan->'indexes') and while it is empty:
-- * a PRIMARY KEY on the view's key (the unique index sgivm_k_<relid>_0 becomes the
--   constraint) when every key column is proven never NULL (_not_null_columns) or declared
--   NOT NULL; a table add_view created (p_created) declares every proven column NOT NULL, so
--   that a view reading it proves its key in turn;
-- * REPLICA IDENTITY FULL otherwise (a key part that may be NULL: a NULL group, a
--   null-extended row of an outer join; or no key at all, rows that may repeat): publishable,
--   but a PostgreSQL 15 subscriber finds each replicated row by scanning its copy.
-- A table with an identity of its own (an adopted table's primary key, replica identity index
-- or FULL) keeps it. Runs as the pipeline's owner, who owns the table.
CREATE FUNCTION _identify_rows(p_owner oid, p_table regclass, p_plan jsonb, p_created boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key name[] := ARRAY(SELECT jsonb_array_elements_text(coalesce(p_plan->'key', '[]')))::name[];
    v_proven name[];
    v_index text := 'sgivm_k_' || p_table::oid || '_0';
    v_primary boolean;
    v_set text;
    v_ident "char" := (SELECT relreplident FROM pg_class WHERE oid = p_table);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p_table
               AND (v_ident = 'f'
                    OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisvalid
                               AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident END))) THEN
        RETURN;
    END IF;
    v_proven := (stategrid_ivm._run_as(p_owner, format('SELECT stategrid_ivm._not_null_columns(%L)', p_plan->>'deparsed')))[1]::name[];
    v_primary := cardinality(v_key) > 0
        AND EXISTS (SELECT 1 FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
                    WHERE i.indrelid = p_table AND x.relname = v_index AND i.indisunique)
        AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = p_table AND a.attname = ANY (v_key)
                        AND NOT a.attnotnull AND a.attname <> ALL (v_proven));
    -- (of an adopted table, only the key's columns: the rest of its definition is its owner's)
    SELECT string_agg(format('ALTER COLUMN %I SET NOT NULL', a.attname), ', ' ORDER BY a.attnum) INTO v_set
    FROM pg_attribute a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attnotnull AND a.attname = ANY (v_proven)
      AND (p_created OR (v_primary AND a.attname = ANY (v_key)));
    PERFORM stategrid_ivm._run_as(p_owner, format('ALTER TABLE %s %s', p_table,
        concat_ws(', ', v_set,
                  CASE WHEN NOT v_primary THEN 'REPLICA IDENTITY FULL'
                       ELSE format('ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I', v_index, v_index) END,
                  CASE WHEN v_primary AND v_ident <> 'd' THEN 'REPLICA IDENTITY DEFAULT' END)));
END
$$;

-- Row-level security (issue 13): a pipeline copies and streams every row of its sources into
-- its owner's tables, where no policy of the source filters them. So its owner must bypass
-- the sources' row-level security, as PostgreSQL's own apply workers must: be a superuser or
-- have BYPASSRLS, or own the table without FORCE ROW LEVEL SECURITY (check_enable_rls).
-- add_source, start_pipeline, rebuild_pipeline, refresh_view and verify check it; the worker
-- checks it again before each batch (src/pg/worker.cpp, become_owner).
CREATE FUNCTION _row_security_applies(rel oid, role oid) RETURNS boolean
LANGUAGE c STABLE STRICT AS 'MODULE_PATHNAME', 'sgivm_row_security_applies';

CREATE FUNCTION _refuse_row_security(p_pipeline text, p_owner oid, p_sources regclass[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_source regclass;
BEGIN
    SELECT s INTO v_source FROM unnest(p_sources) s
    WHERE s IS NOT NULL AND stategrid_ivm._row_security_applies(s, p_owner) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'row-level security of table % applies to the owner of pipeline "%" (%)', v_source, p_pipeline, p_owner::regrole
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A pipeline copies and streams every row of its sources, unfiltered by their policies: its owner must bypass row-level security (be a superuser, have BYPASSRLS, or own the table without FORCE ROW LEVEL SECURITY).',
                  HINT = format('ALTER ROLE %s BYPASSRLS, or ALTER TABLE %s DISABLE ROW LEVEL SECURITY.', p_owner::regrole, v_source);
    END IF;
END
$$;

-- Is the pipeline's slot in this database? If not (restored from a dump and not rebuilt yet),
-- the OIDs in its catalog rows are the dumped cluster's, and the slot and origin of its name,
-- if any, are another database's.
CREATE FUNCTION _has_local_slot(p stategrid_ivm.pipeline) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_replication_slots s
                   WHERE s.slot_name = p.slot_name AND s.database = current_database())
$$;

-- A table of a pipeline's catalog, or NULL. The catalog's OIDs are this database's while the
-- pipeline has its slot here (p_local: a renamed table is still the pipeline's); a catalog
-- restored from a dump holds the dumped cluster's OIDs, which may name other relations here,
-- until rebuild_pipeline: then, or when the OID is gone, go by name.
CREATE FUNCTION _catalog_table(p_local boolean, p_relid oid, p_name text) RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_local AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p_relid) THEN p_relid::regclass
                ELSE to_regclass(p_name) END
$$;

-- Stops the worker of a pipeline and waits until it has exited, before its slot and origin are
-- dropped or replaced: the one the launcher knows, and one that is stopping (paused, say),
-- which has cleared its pid but holds the slot and the origin until it exits.
CREATE FUNCTION _stop_worker(p stategrid_ivm.pipeline) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = error  -- a worker that exits meanwhile is no news
AS $$
DECLARE
    v_pid integer;
BEGIN
    FOR v_pid IN SELECT s.worker_pid FROM stategrid_ivm._runtime_status() s
                 WHERE s.pipeline_id = p.pipeline_id AND s.worker_pid IS NOT NULL
                 UNION SELECT a.pid FROM pg_stat_activity a
                 WHERE a.backend_type = 'stategrid_ivm worker' AND a.datname = current_database()
                   AND a.application_name = 'stategrid_ivm pipeline ' || p.name
                 UNION SELECT r.active_pid FROM pg_replication_slots r
                 WHERE r.slot_name = p.slot_name AND r.database = current_database() AND r.active_pid IS NOT NULL LOOP
        IF EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = v_pid AND a.backend_type = 'stategrid_ivm worker') THEN
            PERFORM pg_terminate_backend(v_pid, 10000);
        END IF;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------
-- The SQL interface (DESIGN.md section 3; README "Privileges").
--
-- The public functions are thin SECURITY INVOKER wrappers that pass on who called them (and
-- add_view the search_path the query is analysed with) to a SECURITY DEFINER function named
-- after them with a leading underscore, which does the work with the extension owner's rights:
-- only those functions write the catalog, create slots and origins. They take the caller only
-- as the wrapper stamped it (_caller), and change a pipeline only for a member of its owner
-- (_owned_pipeline). Whatever touches the user's tables -- CREATE TABLE of a mirror or view,
-- LOCK, a view's populate, verify's comparisons -- runs as the pipeline's owner in a
-- security-restricted operation (_run_as, src/pg/owner_role.cpp), like the worker's batches:
-- PostgreSQL checks the owner's privileges, the tables belong to the owner, and the owner's
-- code cannot take over the caller's session.
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION _create_pipeline(p_caller oid, p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    v_slot text;
BEGIN
    -- a slot costs WAL and a slot of max_replication_slots: only for roles granted this
    IF NOT has_function_privilege(v_caller, 'stategrid_ivm.create_pipeline(text)', 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied for function create_pipeline' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_name IS NULL OR btrim(p_name) = '' THEN
        RAISE EXCEPTION 'a pipeline needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM stategrid_ivm.pipeline p WHERE p.name = p_name) THEN
        RAISE EXCEPTION 'pipeline "%" already exists', p_name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Choose another name, or drop it first with stategrid_ivm.drop_pipeline().';
    END IF;
    PERFORM stategrid_ivm._require_setup();
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'create_pipeline must run in a transaction that has not written anything yet'
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'A replication slot can only be created before the transaction writes: call create_pipeline in its own transaction.';
    END IF;
    -- The slot comes first: it cannot be created once this transaction has written.
    v_slot := 'sgivm_' || substr(md5(p_name || clock_timestamp()::text || random()::text), 1, 24);
    BEGIN
        PERFORM pg_create_logical_replication_slot(v_slot, 'stategrid_ivm');
        PERFORM stategrid_ivm._slot_created(v_slot);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create the replication slot of pipeline "%": %', p_name, SQLERRM
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'output_plugin_libraries must list stategrid_ivm exactly (PostgreSQL 15.19 and later), max_replication_slots must leave a free slot, and wal_level must be logical. See SELECT * FROM stategrid_ivm.check_setup().';
    END;
    BEGIN
        PERFORM pg_replication_origin_create(v_slot);
        INSERT INTO stategrid_ivm.pipeline (name, owner, slot_name, origin_name)
        VALUES (p_name, v_caller, v_slot, v_slot);
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_drop_replication_slot(v_slot);
        RAISE;
    END;
END
$$;

CREATE FUNCTION create_pipeline(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._create_pipeline(stategrid_ivm._stamp_caller(), name) $$;

CREATE FUNCTION _add_source(p_caller oid, pipeline text, source regclass, ods_table text) RETURNS regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    p stategrid_ivm.pipeline;
    v_nsp name;
    v_rel name;
    v_key name[];
    v_ods regclass;
    v_ods_name text;
    v_ods_nsp name;
    v_ods_rel name;
    v_missing text;
BEGIN
    p := stategrid_ivm._owned_pipeline(v_caller, pipeline);
    IF p.state <> 'created' THEN
        RAISE EXCEPTION 'cannot add a source to pipeline "%" in state %', pipeline, p.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Sources are added before start_pipeline(); for another table, create another pipeline.';
    END IF;
    SELECT n.nspname, c.relname INTO v_nsp, v_rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = source AND c.relkind IN ('r', 'p');
    IF NOT FOUND THEN
        RAISE EXCEPTION '"%" is not a table', source USING ERRCODE = 'wrong_object_type';
    END IF;
    -- Rows of inheritance children are logged as the children's, and a query of the parent
    -- reads them: the mirror could never equal it (the worker also stops on a child added later).
    -- Partitions are followed: their changes arrive as the partitioned table's.
    SELECT i.inhrelid::regclass::text INTO v_missing
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = source AND NOT c.relispartition ORDER BY 1 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % has inheritance children (%), which a pipeline cannot follow', source, v_missing
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Use declarative partitioning (CREATE TABLE ... PARTITION BY), whose partitions a pipeline follows, or add the tables that hold the rows (without children) as sources of their own.';
    END IF;
    -- one table of a partition tree per pipeline: its partitions' changes arrive as the tree's
    SELECT s.source_name INTO v_missing
    FROM stategrid_ivm.source s
    WHERE s.pipeline_id = p.pipeline_id AND s.source_relid <> source
      AND (s.source_relid IN (SELECT pg_partition_ancestors(source))
           OR source IN (SELECT pg_partition_ancestors(s.source_relid)))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % and source % of pipeline "%" are in the same partition tree', source, v_missing, pipeline
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add only the partitioned table: the rows of all its partitions arrive in its mirror.';
    END IF;
    -- The worker streams the source into the mirror without a SELECT on it: the owner (and the
    -- caller, who sees the mirror) must be allowed to read it. The worker checks again per batch.
    IF NOT has_table_privilege(v_caller, source, 'SELECT') OR NOT has_table_privilege(p.owner, source, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', source
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The pipeline''s owner (%s) and the caller (%s) must both have SELECT on it.', p.owner::regrole, v_caller::regrole);
    END IF;
    PERFORM stategrid_ivm._refuse_row_security(pipeline, p.owner, ARRAY[source]);
    SELECT array_agg(a.attname ORDER BY a.attnum) INTO v_key
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = source AND i.indisprimary;
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', source
            USING ERRCODE = 'invalid_table_definition',
                  HINT = format('Add one, e.g. ALTER TABLE %s ADD PRIMARY KEY (...): the mirror is kept by key.', source);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = source AND i.indisprimary AND NOT i.indimmediate) THEN
        RAISE EXCEPTION 'the primary key of table % is deferrable', source
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'A deferrable key cannot identify rows in the WAL (replica identity): make it NOT DEFERRABLE.';
    END IF;
    IF (SELECT relreplident FROM pg_class WHERE oid = source) = 'n' THEN
        RAISE EXCEPTION 'table % has REPLICA IDENTITY NOTHING', source
            USING ERRCODE = 'invalid_table_definition',
                  HINT = format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', source);
    END IF;
    IF EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id AND s.source_relid = source) THEN
        RAISE EXCEPTION 'table % is already a source of pipeline "%"', source, pipeline
            USING ERRCODE = 'duplicate_object';
    END IF;

    -- an unqualified mirror name goes next to the source
    IF ods_table IS NULL THEN
        v_ods_name := format('%I.%I', v_nsp, 'ods_' || v_rel);
    ELSIF array_length(parse_ident(ods_table), 1) = 1 THEN
        v_ods_name := format('%I.%I', v_nsp, (parse_ident(ods_table))[1]);
    ELSE
        v_ods_name := ods_table;
    END IF;
    v_ods := to_regclass(v_ods_name);
    IF v_ods IS NULL THEN
        -- same columns (generated ones stay generated), same primary key, owned by the owner
        PERFORM stategrid_ivm._run_as(p.owner,
            format('CREATE TABLE %s (LIKE %s INCLUDING GENERATED, PRIMARY KEY (%s))', v_ods_name, source,
                   (SELECT string_agg(quote_ident(k), ', ') FROM unnest(v_key) k)));
        v_ods := to_regclass(v_ods_name);
    ELSE
        IF v_ods = source THEN
            RAISE EXCEPTION 'the ODS mirror of % cannot be the table itself', source
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        PERFORM stategrid_ivm._check_adoption(v_ods, p, v_caller, 'source', c.names, c.types, v_key,
                                              'pass another name as ods_table')
        FROM (SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
                     array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types
              FROM pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped) c;
    END IF;
    SELECT n.nspname, c.relname INTO v_ods_nsp, v_ods_rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_ods;
    INSERT INTO stategrid_ivm.source (pipeline_id, source_relid, source_name, ods_relid, ods_name, key_columns)
    VALUES (p.pipeline_id, source, format('%I.%I', v_nsp, v_rel), v_ods, format('%I.%I', v_ods_nsp, v_ods_rel), v_key);
    RETURN v_ods;
END
$$;

CREATE FUNCTION add_source(pipeline text, source regclass, ods_table text DEFAULT NULL) RETURNS regclass
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._add_source(stategrid_ivm._stamp_caller(), pipeline, source, ods_table) $$;

-- add_view's work, for a caller already checked (also for the view of a view's own input).
CREATE FUNCTION _add_view_as(v_caller oid, pipeline text, view_name text, query text, p_search_path text)
RETURNS regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    v_analysed text[];
    v_plan jsonb;
    v_parts text[];
    v_nsp text;
    v_rel text;
    v_qualified text;
    v_relid oid;
    v_input oid;
    v_src record;
    v_stmt text;
    v_created boolean;
    v_named integer;
    v_counts integer[];
BEGIN
    p := stategrid_ivm._owned_pipeline(v_caller, pipeline);
    IF view_name IS NULL OR query IS NULL THEN
        RAISE EXCEPTION 'add_view needs a view name and a query' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- pg_ivm's form of a name with a column list, mv(a, b): the query's columns renamed, as
    -- SELECT * FROM (query) AS sgivm_columns(a, b) (the analyser keeps the inner query)
    IF view_name ~ '\([^()]*\)\s*$' THEN
        SELECT string_agg(format('%I', (parse_ident(btrim(c)))[1]), ', '), count(*)
        INTO v_stmt, v_named
        FROM unnest(string_to_array(substring(view_name FROM '\(([^()]*)\)\s*$'), ',')) AS c;
        IF v_stmt IS NULL THEN
            RAISE EXCEPTION 'invalid view name "%": the column list is empty', view_name USING ERRCODE = 'invalid_name';
        END IF;
        view_name := btrim(substring(view_name FROM '^(.*)\([^()]*\)\s*$'));
        query := format('SELECT * FROM (%s) AS sgivm_columns(%s)', query, v_stmt);
    END IF;
    -- A query maintained over a view of its own input (aggregates, DISTINCT or a ranking over a
    -- join; a subquery in FROM that is not one table): that view first, <name>_sgivm_in, then
    -- the query over it.
    BEGIN
        v_analysed := stategrid_ivm._run_as(v_caller,
            format('SELECT stategrid_ivm._split_view(%L, 0), pg_catalog.current_schema()', query), p_search_path);
    EXCEPTION WHEN invalid_column_reference THEN
        -- the column list longer than the query's columns, said in the user's terms. PostgreSQL's
        -- message may be translated (lc_messages), but it names sgivm_columns and holds two
        -- counts: the list's, and the query's (the other one).
        IF v_stmt IS NOT NULL AND strpos(SQLERRM, '"sgivm_columns"') > 0 THEN
            v_counts := ARRAY(SELECT m[1]::integer FROM regexp_matches(SQLERRM, '(\d+)', 'g') AS m);
            IF cardinality(v_counts) = 2 AND v_named = ANY (v_counts) AND v_counts[1] <> v_counts[2] THEN
                RAISE EXCEPTION 'the column list of view "%" names % columns, but its query has %', view_name, v_named,
                        CASE WHEN v_counts[1] = v_named THEN v_counts[2] ELSE v_counts[1] END
                    USING ERRCODE = 'invalid_column_reference',
                          HINT = 'Name at most as many columns as the query selects; columns not named keep the query''s names.';
            END IF;
        END IF;
        RAISE;
    END;
    v_parts := parse_ident(view_name);
    IF v_analysed[1] IS NOT NULL AND array_length(v_parts, 1) IN (1, 2) THEN
        v_input := stategrid_ivm._add_view_as(v_caller, pipeline,
            format('%I.%I', CASE WHEN array_length(v_parts, 1) = 2 THEN v_parts[1] ELSE v_analysed[2] END,
                   v_parts[array_length(v_parts, 1)] || '_sgivm_in'), v_analysed[1], p_search_path);
        query := (stategrid_ivm._run_as(v_caller,
            format('SELECT stategrid_ivm._split_view(%L, %s)', query, v_input), p_search_path))[1];
    END IF;
    -- analysed as the caller, with the caller's search_path, like any query they run
    v_analysed := stategrid_ivm._run_as(v_caller,
        format('SELECT stategrid_ivm._plan_view(%L, 0, %L), pg_catalog.current_schema()', query, 'x'), p_search_path);
    v_plan := v_analysed[1]::jsonb;
    v_parts := parse_ident(view_name);
    IF array_length(v_parts, 1) = 1 THEN
        v_nsp := v_analysed[2];
        v_rel := v_parts[1];
        IF v_nsp IS NULL THEN
            RAISE EXCEPTION 'no schema has been selected to create view "%" in', view_name
                USING ERRCODE = 'invalid_schema_name', HINT = 'Qualify the view name, or set search_path.';
        END IF;
    ELSIF array_length(v_parts, 1) = 2 THEN
        v_nsp := v_parts[1];
        v_rel := v_parts[2];
    ELSE
        RAISE EXCEPTION 'invalid view name "%"', view_name USING ERRCODE = 'invalid_name';
    END IF;
    v_qualified := format('%I.%I', v_nsp, v_rel);

    -- Inputs must be this pipeline's ODS mirrors or maintained views, readable by its owner
    -- and by the caller.
    FOR v_input IN SELECT x::oid FROM jsonb_array_elements_text(v_plan->'input_relids') x LOOP
        SELECT s.* INTO v_src FROM stategrid_ivm.source s WHERE s.source_relid = v_input;
        IF FOUND THEN
            RAISE EXCEPTION 'view "%" reads the source table % directly', view_name, v_input::regclass
                USING ERRCODE = 'feature_not_supported',
                      HINT = format('Read its ODS mirror %s instead: views are kept consistent with the mirrors, which follow the source transaction by transaction.', v_src.ods_name);
        END IF;
        IF NOT EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id AND s.ods_relid = v_input)
           AND NOT EXISTS (SELECT 1 FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id AND v.relid = v_input) THEN
            RAISE EXCEPTION 'view "%" reads %, which pipeline "%" does not maintain', view_name, v_input::regclass, pipeline
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Views read the pipeline''s ODS mirrors (add_source) and its other views (add_view).';
        END IF;
        IF NOT has_table_privilege(v_caller, v_input, 'SELECT') OR NOT has_table_privilege(p.owner, v_input, 'SELECT') THEN
            RAISE EXCEPTION 'permission denied for table %', v_input::regclass
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('View "%s" reads it: the pipeline''s owner (%s) and the caller (%s) must both have SELECT on it.',
                                      view_name, p.owner::regrole, v_caller::regrole);
        END IF;
    END LOOP;

    -- Wait for the worker to finish its batch, and keep it from writing the inputs until this
    -- commits: the new table is filled at the pipeline's current position.
    FOR v_input IN SELECT x::oid FROM jsonb_array_elements_text(v_plan->'input_relids') x LOOP
        PERFORM stategrid_ivm._run_as(p.owner, format('LOCK TABLE %s IN SHARE MODE', v_input::regclass));
    END LOOP;

    v_relid := to_regclass(v_qualified);
    v_created := v_relid IS NULL;
    IF NOT v_created THEN
        PERFORM stategrid_ivm._check_adoption(v_relid, p, v_caller, 'view',
            ARRAY(SELECT jsonb_array_elements_text(v_plan->'columns')),
            ARRAY(SELECT jsonb_array_elements_text(v_plan->'types')), NULL, 'choose another view name');
    ELSE
        SELECT format('CREATE TABLE %s (%s)', v_qualified,
                      string_agg(format('%I %s', c, t), ', ' ORDER BY n))
        INTO v_stmt
        FROM jsonb_array_elements_text(v_plan->'columns') WITH ORDINALITY AS c(c, n)
        JOIN jsonb_array_elements_text(v_plan->'types') WITH ORDINALITY AS t(t, m) ON m = n;
        -- created by the owner; type names as the analysis printed them, on the caller's path
        PERFORM stategrid_ivm._run_as(p.owner, v_stmt, p_search_path);
        v_relid := to_regclass(v_qualified);
    END IF;

    v_plan := (stategrid_ivm._run_as(v_caller,
        format('SELECT stategrid_ivm._plan_view(%L, %s, %L)', query, v_relid, v_qualified), p_search_path))[1]::jsonb;
    FOR v_stmt IN SELECT jsonb_array_elements_text(v_plan->'indexes') LOOP
        PERFORM stategrid_ivm._run_as(p.owner, v_stmt);
    END LOOP;
    -- Its kept state (differential plans), made and filled from the inputs as the view is.
    FOR v_stmt IN SELECT jsonb_array_elements_text(coalesce(v_plan->'state_setup', '[]') || coalesce(v_plan->'state_fill', '[]')) LOOP
        PERFORM stategrid_ivm._run_as(p.owner, v_stmt);
    END LOOP;
    IF v_plan->>'strategy' = 'recompute' THEN
        RAISE NOTICE 'view % is maintained by scoped recomputation: %', v_qualified, v_plan->>'strategy_reason'
            USING DETAIL = 'Each change recomputes the groups or ranking partitions it touches from the view''s input; other views apply delta rules to kept state.';
    END IF;
    INSERT INTO stategrid_ivm.view (pipeline_id, view_name, relid, query, plan)
    VALUES (p.pipeline_id, v_qualified, v_relid, query, v_plan);
    UPDATE stategrid_ivm.pipeline SET views_version = views_version + 1 WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._run_as(p.owner, format('DELETE FROM %s', v_qualified));
    PERFORM stategrid_ivm._identify_rows(p.owner, v_relid, v_plan, v_created);
    PERFORM stategrid_ivm._run_as(p.owner, v_plan->>'populate');
    -- The statements that keep the view current, run once on an empty change: one the worker
    -- could not run fails add_view now, instead of the whole pipeline at its first change.
    PERFORM stategrid_ivm._try_view_statements(p.owner, v_qualified, v_plan);
    RETURN v_relid;
END
$$;

CREATE FUNCTION _add_view(p_caller oid, pipeline text, view_name text, query text, p_search_path text)
RETURNS regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN stategrid_ivm._add_view_as(stategrid_ivm._caller(p_caller), pipeline, view_name, query, p_search_path);
END
$$;

CREATE FUNCTION add_view(pipeline text, view_name text, query text) RETURNS regclass
LANGUAGE sql
-- no SET search_path: the view's query is analysed with the caller's, like any query they run
AS $$ SELECT stategrid_ivm._add_view(stategrid_ivm._stamp_caller(), pipeline, view_name, query, pg_catalog.current_setting('search_path')) $$;

-- Removes one view from its pipeline, which keeps running: the worker takes the new view set at
-- its next batch (views_version). For a view that fails: the worker's error names this call.
CREATE FUNCTION _drop_view_as(v_caller oid, p_view regclass, drop_table boolean) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v stategrid_ivm.view;
    p stategrid_ivm.pipeline;
    v_local boolean;
    v_reader text;
    r record;
    v_input_name text;
    v_input oid;
BEGIN
    -- by OID, or by name for a pipeline restored from a dump and not rebuilt yet
    SELECT * INTO v FROM stategrid_ivm.view x WHERE x.relid = p_view;
    IF NOT FOUND THEN
        SELECT * INTO v FROM stategrid_ivm.view x
        WHERE to_regclass(x.view_name) = p_view AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.relid);
    END IF;
    IF v.view_id IS NULL THEN
        RAISE EXCEPTION '% is not a maintained view', p_view
            USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM stategrid_ivm.views lists them.';
    END IF;
    -- (waits for the worker's batch, and keeps the next one from starting until this commits)
    p := stategrid_ivm._owned_pipeline(v_caller, (SELECT name FROM stategrid_ivm.pipeline WHERE pipeline_id = v.pipeline_id));
    SELECT x.view_name INTO v_reader FROM stategrid_ivm.view x
    WHERE x.pipeline_id = v.pipeline_id AND x.view_id <> v.view_id AND (x.plan->'input_relids') @> to_jsonb(v.relid::bigint)
    ORDER BY x.view_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'view % of pipeline "%" reads view %', v_reader, p.name, v.view_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('Drop %s first: SELECT stategrid_ivm.drop_view(%L).', v_reader, v_reader);
    END IF;
    -- the view of its input add_view made for it (<name>_sgivm_in), dropped with it
    SELECT format('%I.%I', n.nspname, c.relname || '_sgivm_in') INTO v_input_name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_view;
    v_local := stategrid_ivm._has_local_slot(p);
    DELETE FROM stategrid_ivm.view WHERE view_id = v.view_id;
    -- a pipeline in error retries at once (as resume_pipeline does): the error may have been this view's
    UPDATE stategrid_ivm.pipeline
    SET views_version = views_version + 1,
        state = CASE WHEN state <> 'error' THEN state WHEN backfill_lsn IS NULL THEN 'backfilling' ELSE 'running' END,
        error_count = 0
    WHERE pipeline_id = p.pipeline_id;
    -- The indexes its statements needed on its inputs (those on its own table go with the table).
    FOR r IN SELECT i.indexrelid::regclass AS idx
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relname ~ ('^sgivm_[a-z]+_' || v.relid || '_[0-9]+$') AND i.indrelid <> v.relid
               AND i.indrelid IN (SELECT x::oid FROM jsonb_array_elements_text(v.plan->'input_relids') x) LOOP
        PERFORM stategrid_ivm._run_as(p.owner, format('DROP INDEX %s', r.idx));
    END LOOP;
    PERFORM stategrid_ivm._drop_state(CASE WHEN v_local THEN p.owner ELSE v_caller END, v.plan);
    IF drop_table THEN
        PERFORM stategrid_ivm._run_as(CASE WHEN v_local THEN p.owner ELSE v_caller END, format('DROP TABLE %s', p_view));
    END IF;
    SELECT x.relid INTO v_input FROM stategrid_ivm.view x
    WHERE x.pipeline_id = v.pipeline_id AND x.view_name = v_input_name
      AND NOT EXISTS (SELECT 1 FROM stategrid_ivm.view y
                      WHERE y.pipeline_id = v.pipeline_id AND (y.plan->'input_relids') @> to_jsonb(x.relid::bigint));
    IF v_input IS NOT NULL THEN
        PERFORM stategrid_ivm._drop_view_as(v_caller, v_input::regclass, drop_table);
    END IF;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION _drop_view(p_caller oid, p_view regclass, drop_table boolean) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM stategrid_ivm._drop_view_as(stategrid_ivm._caller(p_caller), p_view, drop_table);
END
$$;

CREATE FUNCTION drop_view(view regclass, drop_table boolean DEFAULT false) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._drop_view(stategrid_ivm._stamp_caller(), view, drop_table) $$;

CREATE FUNCTION _start_pipeline(p_caller oid, p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline := stategrid_ivm._owned_pipeline(stategrid_ivm._caller(p_caller), p_name);
    v_source text;
BEGIN
    PERFORM stategrid_ivm._require_setup();
    IF NOT EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id) THEN
        RAISE EXCEPTION 'pipeline "%" has no source tables', p_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add them with stategrid_ivm.add_source() first.';
    END IF;
    IF p.state <> 'created' THEN
        RAISE EXCEPTION 'pipeline "%" was already started (state %)', p_name, p.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Use resume_pipeline() to continue a paused pipeline.';
    END IF;
    -- the worker copies the sources as the owner
    SELECT s.source_name INTO v_source FROM stategrid_ivm.source s
    WHERE s.pipeline_id = p.pipeline_id AND NOT has_table_privilege(p.owner, s.source_relid, 'SELECT') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'permission denied for table %', v_source
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The owner of pipeline "%s" (%s) may not read it.', p_name, p.owner::regrole);
    END IF;
    PERFORM stategrid_ivm._refuse_row_security(p_name, p.owner,
        ARRAY(SELECT s.source_relid::regclass FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id));
    UPDATE stategrid_ivm.pipeline SET state = 'backfilling', started_at = now()
    WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION start_pipeline(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._start_pipeline(stategrid_ivm._stamp_caller(), name) $$;

CREATE FUNCTION _pause_pipeline(p_caller oid, p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline := stategrid_ivm._owned_pipeline(stategrid_ivm._caller(p_caller), p_name);
BEGIN
    IF p.state = 'created' THEN
        RAISE EXCEPTION 'pipeline "%" has not been started', p_name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE stategrid_ivm.pipeline SET state = 'paused' WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION pause_pipeline(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._pause_pipeline(stategrid_ivm._stamp_caller(), name) $$;

CREATE FUNCTION _resume_pipeline(p_caller oid, p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline := stategrid_ivm._owned_pipeline(stategrid_ivm._caller(p_caller), p_name);
BEGIN
    PERFORM stategrid_ivm._require_setup();
    IF p.state = 'created' THEN
        RAISE EXCEPTION 'pipeline "%" has not been started', p_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Use start_pipeline() the first time.';
    END IF;
    UPDATE stategrid_ivm.pipeline
    SET state = CASE WHEN backfill_lsn IS NULL THEN 'backfilling' ELSE 'running' END,
        error_count = 0
    WHERE pipeline_id = p.pipeline_id AND state IN ('paused', 'error');
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION resume_pipeline(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._resume_pipeline(stategrid_ivm._stamp_caller(), name) $$;

CREATE FUNCTION _drop_pipeline(p_caller oid, p_name text, drop_tables boolean) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    p stategrid_ivm.pipeline := stategrid_ivm._owned_pipeline(v_caller, p_name);
    v_local boolean := stategrid_ivm._has_local_slot(p);
    r record;
BEGIN
    -- Transactional steps first: if a table cannot be dropped (a view of the user depends on
    -- it), nothing is lost. The slot, which no rollback brings back, goes last. Tables are
    -- dropped by the pipeline's owner; those of a pipeline restored from a dump and not rebuilt
    -- are found by name and dropped by the caller (its catalog's OIDs, of tables and of the
    -- owner, are the dumped cluster's: here they may be anybody's).
    -- the views' kept state is the engine's: it goes in any case
    FOR r IN SELECT v.plan FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id LOOP
        PERFORM stategrid_ivm._drop_state(CASE WHEN v_local THEN p.owner ELSE v_caller END, r.plan);
    END LOOP;
    IF drop_tables THEN
        FOR r IN SELECT x.rel FROM (
                     SELECT CASE WHEN v_local THEN v.relid ELSE to_regclass(v.view_name) END AS rel, v.view_id
                     FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id) x
                 WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.rel)
                 ORDER BY x.view_id DESC LOOP
            PERFORM stategrid_ivm._run_as(CASE WHEN v_local THEN p.owner ELSE v_caller END, format('DROP TABLE %s', r.rel::regclass));
        END LOOP;
        FOR r IN SELECT x.rel FROM (
                     SELECT CASE WHEN v_local THEN s.ods_relid ELSE to_regclass(s.ods_name) END AS rel
                     FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id) x
                 WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.rel) LOOP
            PERFORM stategrid_ivm._run_as(CASE WHEN v_local THEN p.owner ELSE v_caller END, format('DROP TABLE %s', r.rel::regclass));
        END LOOP;
    END IF;
    DELETE FROM stategrid_ivm.pipeline WHERE pipeline_id = p.pipeline_id;
    -- the worker holds the slot and the origin: stop it before dropping them
    PERFORM stategrid_ivm._stop_worker(p);
    -- A copy restored into another database of this cluster names the original's slot and
    -- origin: those stay.
    IF EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = p.origin_name)
       AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.slot_name = p.slot_name AND s.database <> current_database()) THEN
        PERFORM pg_replication_origin_drop(p.origin_name);
    END IF;
    FOR r IN SELECT 1 FROM pg_replication_slots s WHERE s.slot_name = p.slot_name AND s.database = current_database() LOOP
        PERFORM pg_drop_replication_slot(p.slot_name);
    END LOOP;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION drop_pipeline(name text, drop_tables boolean DEFAULT false) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._drop_pipeline(stategrid_ivm._stamp_caller(), name, drop_tables) $$;

CREATE FUNCTION sync(name text, timeout interval DEFAULT '30 s') RETURNS pg_lsn
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    -- (every transaction committed before this call, synchronous_commit = off included)
    v_target pg_lsn := stategrid_ivm._flush_commits();
    v_deadline timestamptz := clock_timestamp() + timeout;
    v_caught pg_lsn;
BEGIN
    LOOP
        p := stategrid_ivm._pipeline(name, false);
        IF p.state IN ('created', 'paused') THEN
            RAISE EXCEPTION 'pipeline "%" is %', name, p.state
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = CASE p.state WHEN 'created' THEN 'Start it with start_pipeline().'
                                          ELSE 'Resume it with resume_pipeline().' END;
        ELSIF p.state = 'error' THEN
            RAISE EXCEPTION 'pipeline "%" is in error: %', name, p.last_error
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'SELECT * FROM stategrid_ivm.pipelines shows the error; the worker keeps retrying.';
        END IF;
        SELECT s.caught_up_lsn INTO v_caught FROM stategrid_ivm._runtime_status() s
        WHERE s.pipeline_id = p.pipeline_id;
        IF p.state = 'running' AND v_caught >= v_target THEN
            RETURN coalesce(p.applied_lsn, v_caught);
        END IF;
        IF clock_timestamp() > v_deadline THEN
            RAISE EXCEPTION 'pipeline "%" did not catch up with % within %', name, v_target, timeout
                USING ERRCODE = 'query_canceled',
                      HINT = 'SELECT * FROM stategrid_ivm.pipelines shows its state and lag.';
        END IF;
        PERFORM stategrid_ivm._wake_pipeline(p.pipeline_id);
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;

CREATE FUNCTION _refresh_view(p_caller oid, p_view regclass) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    v stategrid_ivm.view;
    p stategrid_ivm.pipeline;
    r record;
BEGIN
    SELECT * INTO v FROM stategrid_ivm.view WHERE relid = p_view;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a maintained view', p_view
            USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM stategrid_ivm.views lists them.';
    END IF;
    p := stategrid_ivm._owned_pipeline(v_caller, (SELECT name FROM stategrid_ivm.pipeline WHERE pipeline_id = v.pipeline_id));
    IF NOT stategrid_ivm._has_local_slot(p) AND to_regclass(v.view_name) IS DISTINCT FROM v.relid THEN
        RAISE EXCEPTION 'the catalog of pipeline "%" does not match its tables', p.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('After a restore, SELECT stategrid_ivm.rebuild_pipeline(%L) first.', p.name);
    END IF;
    -- (its inputs hold what the owner streamed from the sources: only while it may)
    PERFORM stategrid_ivm._refuse_row_security(p.name, p.owner,
        ARRAY(SELECT s.source_relid::regclass FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id));
    -- The worker writes this table only inside its apply transactions: wait for it, then
    -- recompute from the inputs as of its last commit. As the owner, like the worker.
    PERFORM stategrid_ivm._run_as(p.owner, format('LOCK TABLE %s IN EXCLUSIVE MODE', v.relid::regclass));
    -- the guard against direct writes lets this transaction write the table
    PERFORM stategrid_ivm._allow_direct_write(v.relid);
    PERFORM stategrid_ivm._run_as(p.owner, format('DELETE FROM %s', v.relid::regclass));
    -- (and its kept state, from the same inputs; made only where a table of it is missing:
    -- CREATE ... IF NOT EXISTS would tell the caller of each one that exists, in a NOTICE)
    IF EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(v.plan->'state_tables', '[]')) t WHERE to_regclass(t) IS NULL) THEN
        FOR r IN SELECT jsonb_array_elements_text(v.plan->'state_setup') AS stmt LOOP
            PERFORM stategrid_ivm._run_as(p.owner, r.stmt);
        END LOOP;
    END IF;
    FOR r IN SELECT jsonb_array_elements_text(coalesce(v.plan->'state_fill', '[]')) AS stmt LOOP
        PERFORM stategrid_ivm._run_as(p.owner, r.stmt);
    END LOOP;
    RETURN (stategrid_ivm._run_as(p.owner, v.plan->>'populate'))[1]::bigint;
END
$$;

CREATE FUNCTION refresh_view(view_name regclass) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._refresh_view(stategrid_ivm._stamp_caller(), view_name) $$;

-- The statement that compares a maintained table with the rows it should hold (expected: a
-- query whose columns include p_columns): one row, how many expected rows the table lacks
-- (missing_rows) and how many it has beyond them (extra_rows), as EXCEPT ALL both ways would
-- count them, but by binary image (record image equality, *=), as the worker decides that a row
-- changed (src/core/view_plan.cpp): 1.0 and 1.00, 0 and -0 differ, and json, xml and point
-- compare. Rows sorted by image are image-equal where they are peers (dense_rank). The
-- expected values are cast to the table's column types as they are now, as writing them would
-- cast them (a numeric(15,2) column of an adopted table holds a sum as 3.50).
CREATE FUNCTION _compare_by_image(p_expected text, p_columns text[], p_table regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT format('SELECT coalesce(sum(greatest(d, 0)), 0) AS missing_rows, coalesce(sum(greatest(-d, 0)), 0) AS extra_rows'
              ' FROM (SELECT sum(d) AS d FROM (SELECT d, dense_rank() OVER (ORDER BY r USING OPERATOR(pg_catalog.*<)) AS g'
              ' FROM (SELECT 1 AS d, ROW(%s)::record AS r FROM (%s) q UNION ALL SELECT -1, ROW(%s)::record FROM %s t) x) y'
              ' GROUP BY g) z',
              string_agg(format('q.%I', c) || coalesce('::' || format_type(a.atttypid, a.atttypmod), ''), ', ' ORDER BY n),
              p_expected, string_agg(format('t.%I', c), ', ' ORDER BY n), p_table)
FROM unnest(p_columns) WITH ORDINALITY AS x(c, n)
-- (a column the table lacks is named all the same: the comparison fails, naming it)
LEFT JOIN pg_attribute a ON a.attrelid = p_table AND a.attname = x.c AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- Anybody who may read the tables compared may compare them; the comparisons run as the
-- pipeline's owner, never with the caller's rights (a view's functions are the owner's code).
CREATE FUNCTION _verify(p_caller oid, p_name text)
RETURNS TABLE (view_name text, missing_rows bigint, extra_rows bigint, ok boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    p stategrid_ivm.pipeline;
    r record;
    v_cols text[];
    v_view regclass;
    v_counts text[];
    v_denied regclass;
    v_src regclass;
    v_ods regclass;
    v_local boolean;
BEGIN
    SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM stategrid_ivm.pipelines lists the pipelines.';
    END IF;
    v_local := stategrid_ivm._has_local_slot(p);
    SELECT t INTO v_denied
    FROM (SELECT x.k, x.n, stategrid_ivm._catalog_table(v_local, x.relid, x.rel_name) AS t
          FROM (SELECT 1 AS k, s.source_name AS n, s.source_relid AS relid, s.source_name AS rel_name
                FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
                UNION ALL SELECT 2, s.ods_name, s.ods_relid, s.ods_name FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
                UNION ALL SELECT 3, v.view_id::text, v.relid, v.view_name FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id) x) y
    WHERE t IS NOT NULL AND NOT has_table_privilege(v_caller, t, 'SELECT')
    ORDER BY k, n COLLATE "C"
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'permission denied for table %', v_denied
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('verify(%L) compares it.', p_name);
    END IF;
    -- ODS mirrors against their sources (meaningful after sync, with writers quiet).
    FOR r IN SELECT s.* FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id ORDER BY s.ods_name LOOP
        view_name := r.ods_name;
        v_src := stategrid_ivm._catalog_table(v_local, r.source_relid, r.source_name);
        v_ods := stategrid_ivm._catalog_table(v_local, r.ods_relid, r.ods_name);
        IF v_src IS NULL OR v_ods IS NULL THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- the owner reads the source: all of its rows, or the comparison means nothing
        PERFORM stategrid_ivm._refuse_row_security(p.name, p.owner, ARRAY[v_src]);
        SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO v_cols
        FROM pg_attribute a WHERE a.attrelid = v_src AND a.attnum > 0 AND NOT a.attisdropped;
        v_counts := stategrid_ivm._run_as(p.owner,
            stategrid_ivm._compare_by_image(format('SELECT * FROM %s', v_src), v_cols, v_ods));
        missing_rows := v_counts[1]::bigint;
        extra_rows := v_counts[2]::bigint;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
    FOR r IN SELECT v.* FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id ORDER BY v.view_id LOOP
        view_name := r.view_name;
        v_view := stategrid_ivm._catalog_table(v_local, r.relid, r.view_name);
        IF v_view IS NULL THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        -- the view's columns but its audit (clock) columns
        SELECT array_agg(c ORDER BY n) INTO v_cols
        FROM jsonb_array_elements_text(r.plan->'columns') WITH ORDINALITY AS x(c, n)
        WHERE NOT r.plan->'audit_columns' ? c;
        v_counts := stategrid_ivm._run_as(p.owner, stategrid_ivm._compare_by_image(r.plan->>'deparsed', v_cols, v_view));
        missing_rows := v_counts[1]::bigint;
        extra_rows := v_counts[2]::bigint;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE FUNCTION verify(name text)
RETURNS TABLE (view_name text, missing_rows bigint, extra_rows bigint, ok boolean)
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM stategrid_ivm._verify(stategrid_ivm._stamp_caller(), name) $$;

-- One call that makes a pipeline whole again after its slot was lost: the database restored
-- from a dump (slots and origins are not dumped, and the catalog's OIDs are the dumped
-- cluster's), a slot dropped by hand, or invalidated by max_slot_wal_keep_size. Finds the
-- pipeline's tables again by the names they were added under, gives it a new slot and origin
-- and the owner of its tables, and starts it over from a backfill (mirrors copied from the
-- sources, views recomputed), as start_pipeline does.
CREATE FUNCTION _rebuild_pipeline(p_caller oid, p_name text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    p stategrid_ivm.pipeline;
    r record;
    v_owners oid[];
    v_owner oid;
    v_slot text;
    v_plan jsonb;
    v_stmt text;
    v_old_slot_here boolean;
BEGIN
    IF NOT has_function_privilege(v_caller, 'stategrid_ivm.rebuild_pipeline(text)', 'EXECUTE') THEN
        RAISE EXCEPTION 'permission denied for function rebuild_pipeline' USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM stategrid_ivm.pipelines lists the pipelines.';
    END IF;
    PERFORM stategrid_ivm._require_setup();
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'rebuild_pipeline must run in a transaction that has not written anything yet'
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'A replication slot can only be created before the transaction writes: call rebuild_pipeline in its own transaction.';
    END IF;

    -- Read-only checks first (nothing is created for a caller who may not).
    FOR r IN SELECT 'source table' AS what, s.source_name AS rel FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
             UNION ALL SELECT 'ODS mirror', s.ods_name FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
             UNION ALL SELECT 'maintained table', v.view_name FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id LOOP
        IF to_regclass(r.rel) IS NULL THEN
            RAISE EXCEPTION '% % of pipeline "%" does not exist', r.what, r.rel, p_name
                USING ERRCODE = 'undefined_table',
                      HINT = 'Restore or rename it back, or drop the pipeline and create it again.';
        END IF;
    END LOOP;
    -- The owner is the owner of its tables (a restore keeps table owners by name; role OIDs
    -- differ between clusters).
    SELECT array_agg(DISTINCT c.relowner) INTO v_owners
    FROM pg_class c
    WHERE c.oid IN (SELECT to_regclass(s.ods_name) FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
                    UNION SELECT to_regclass(v.view_name) FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id);
    IF array_length(v_owners, 1) > 1 THEN
        RAISE EXCEPTION 'the tables of pipeline "%" belong to different roles (%)', p_name,
                (SELECT string_agg(o::regrole::text, ', ') FROM unnest(v_owners) o)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Give them one owner (ALTER TABLE ... OWNER TO ...): the pipeline runs as that role.';
    END IF;
    v_owner := coalesce(v_owners[1],
                        (SELECT oid FROM pg_roles WHERE oid = p.owner),
                        v_caller);
    IF NOT pg_has_role(v_caller, v_owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be the owner of pipeline "%" (%)', p_name, v_owner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR r IN SELECT s.source_name FROM stategrid_ivm.source s
             WHERE s.pipeline_id = p.pipeline_id AND NOT has_table_privilege(v_owner, to_regclass(s.source_name), 'SELECT') LOOP
        RAISE EXCEPTION 'permission denied for table %', r.source_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The owner of pipeline "%s" (%s) may not read it.', p_name, v_owner::regrole);
    END LOOP;
    PERFORM stategrid_ivm._refuse_row_security(p_name, v_owner,
        ARRAY(SELECT to_regclass(s.source_name) FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id));

    -- The new slot, before this transaction writes.
    v_slot := 'sgivm_' || substr(md5(p_name || clock_timestamp()::text || random()::text), 1, 24);
    BEGIN
        PERFORM pg_create_logical_replication_slot(v_slot, 'stategrid_ivm');
        PERFORM stategrid_ivm._slot_created(v_slot);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create the replication slot of pipeline "%": %', p_name, SQLERRM
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'output_plugin_libraries must list stategrid_ivm exactly (PostgreSQL 15.19 and later), max_replication_slots must leave a free slot, and wal_level must be logical. See SELECT * FROM stategrid_ivm.check_setup().';
    END;

    -- Wait for a worker's batch, then rewrite the catalog.
    SELECT * INTO p FROM stategrid_ivm.pipeline WHERE pipeline_id = p.pipeline_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" was dropped meanwhile', p_name USING ERRCODE = 'undefined_object';
    END IF;
    v_old_slot_here := stategrid_ivm._has_local_slot(p);

    -- Table OIDs from the names, for this pipeline and for every other one of this database
    -- that has no slot here either (restored with it): their old OIDs may now be the OIDs of
    -- this pipeline's tables, and the catalog's unique keys would trip over them.
    WITH stale AS (
        SELECT q.pipeline_id FROM stategrid_ivm.pipeline q
        WHERE q.pipeline_id = p.pipeline_id OR NOT stategrid_ivm._has_local_slot(q)
    ), gone AS (
        DELETE FROM stategrid_ivm.source s USING stale WHERE s.pipeline_id = stale.pipeline_id RETURNING s.*
    )
    INSERT INTO stategrid_ivm.source (pipeline_id, source_relid, source_name, ods_relid, ods_name, key_columns)
    SELECT g.pipeline_id, coalesce(to_regclass(g.source_name)::oid, g.source_relid), g.source_name,
           coalesce(to_regclass(g.ods_name)::oid, g.ods_relid), g.ods_name, g.key_columns
    FROM gone g;
    WITH stale AS (
        SELECT q.pipeline_id FROM stategrid_ivm.pipeline q
        WHERE q.pipeline_id = p.pipeline_id OR NOT stategrid_ivm._has_local_slot(q)
    ), gone AS (
        DELETE FROM stategrid_ivm.view v USING stale WHERE v.pipeline_id = stale.pipeline_id RETURNING v.*
    )
    INSERT INTO stategrid_ivm.view (view_id, pipeline_id, view_name, relid, query, plan, created_at)
    SELECT g.view_id, g.pipeline_id, g.view_name, coalesce(to_regclass(g.view_name)::oid, g.relid), g.query, g.plan,
           g.created_at
    FROM gone g;

    -- Its indexes named after old OIDs go; the views are planned again for the new OIDs (from
    -- the analysed query, whose names are schema-qualified), with their indexes.
    -- (a view's key index is its primary key: the constraint goes, _identify_rows makes it again)
    FOR r IN SELECT i.indexrelid::regclass AS idx, i.indrelid::regclass AS tab, k.conname
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             LEFT JOIN pg_constraint k ON k.conrelid = i.indrelid AND k.conindid = i.indexrelid AND k.contype = 'p'
             WHERE c.relname ~ '^sgivm_[a-z]+_[0-9]+_[0-9]+$'
               AND i.indrelid IN (SELECT s.ods_relid FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
                                  UNION SELECT v.relid FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id) LOOP
        PERFORM stategrid_ivm._run_as(v_owner, CASE WHEN r.conname IS NULL THEN format('DROP INDEX %s', r.idx)
                                                    ELSE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tab, r.conname) END);
    END LOOP;
    FOR r IN SELECT v.* FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id ORDER BY v.view_id LOOP
        -- (kept state named after old OIDs goes too: the worker makes and fills it again)
        PERFORM stategrid_ivm._drop_state(v_owner, r.plan);
        v_plan := (stategrid_ivm._run_as(v_owner,
            format('SELECT stategrid_ivm._plan_view(%L, %s, %L)', r.plan->>'deparsed', r.relid, r.view_name)))[1]::jsonb;
        UPDATE stategrid_ivm.view SET plan = v_plan WHERE view_id = r.view_id;
        FOR v_stmt IN SELECT jsonb_array_elements_text(v_plan->'indexes') LOOP
            PERFORM stategrid_ivm._run_as(v_owner, v_stmt);
        END LOOP;
        PERFORM stategrid_ivm._identify_rows(v_owner, r.relid, v_plan, false);
    END LOOP;

    -- A worker uses the old slot and origin: stop it (the launcher starts one for the new slot).
    PERFORM stategrid_ivm._stop_worker(p);
    -- The old origin, unless the old slot lives in another database (this is a copy restored
    -- into another database of the same cluster: the original still uses it).
    IF EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = p.origin_name)
       AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.slot_name = p.slot_name AND s.database <> current_database()) THEN
        PERFORM pg_replication_origin_drop(p.origin_name);
    END IF;
    PERFORM pg_replication_origin_create(v_slot);
    UPDATE stategrid_ivm.pipeline
    SET slot_name = v_slot, origin_name = v_slot, owner = v_owner,
        state = CASE WHEN state IN ('created', 'paused') THEN state ELSE 'backfilling' END,
        backfill_snapshot = NULL, backfill_lsn = NULL, applied_lsn = NULL, applied_commit_time = NULL,
        error_count = 0, views_version = views_version + 1
    WHERE pipeline_id = p.pipeline_id;
    -- The old slot last: no rollback brings it back.
    IF v_old_slot_here THEN
        PERFORM pg_drop_replication_slot(p.slot_name);
    END IF;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION rebuild_pipeline(name text) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._rebuild_pipeline(stategrid_ivm._stamp_caller(), name) $$;

-- ---------------------------------------------------------------------------------------
-- The State Grid warehouse out of the box (DESIGN.md section 1).
-- ---------------------------------------------------------------------------------------

-- The warehouse's views, in dependency order: plain SELECTs over the ODS mirrors, as the
-- original Flink jobs read ods_* tables. Copy and change them for your own pipelines.
CREATE FUNCTION stategrid_warehouse_views(OUT ord integer, OUT layer text, OUT view_name text, OUT query text)
RETURNS SETOF record
LANGUAGE sql IMMUTABLE
AS $views$
VALUES
(1, 'DWD', 'dwd_power_user_info', $q$SELECT u.user_id,
       COALESCE(u.user_name, '未知用户') AS user_name,
       COALESCE(u.usage_type, '未知') AS usage_type,
       COALESCE(u.region_id, 0) AS region_id,
       COALESCE(u.region_name, '未知地区') AS region_name,
       u.address,
       CASE WHEN length(u.phone) >= 7
            THEN left(u.phone, 3) || '****' || right(u.phone, 4)
            ELSE u.phone END AS phone,
       u.create_time,
       u.update_time,
       now() AS etl_time
FROM ods_power_user u$q$),
(2, 'DWD', 'dwd_power_consumption_detail', $q$SELECT c.consumption_id,
       c.user_id,
       COALESCE(u.user_name, '未知用户') AS user_name,
       c.consumption_amount,
       c.consumption_cost,
       c.consumption_date,
       COALESCE(u.region_id, 0) AS region_id,
       COALESCE(u.region_name, '未知地区') AS region_name,
       COALESCE(u.usage_type, '未知') AS usage_type,
       now() AS etl_time
FROM ods_power_consumption c
LEFT JOIN ods_power_user u ON c.user_id = u.user_id$q$),
(3, 'DWS', 'dws_region_daily_stats', $q$SELECT region_id,
       region_name,
       consumption_date::date AS stat_date,
       SUM(consumption_amount) AS total_consumption,
       SUM(consumption_cost) AS total_cost,
       COUNT(DISTINCT user_id) AS user_count,
       ROUND(AVG(consumption_amount), 2) AS avg_consumption,
       MAX(consumption_amount) AS max_consumption,
       MIN(consumption_amount) AS min_consumption,
       now() AS update_time
FROM dwd_power_consumption_detail
GROUP BY region_id, region_name, consumption_date::date$q$),
(4, 'DWS', 'dws_user_ranking', $q$SELECT user_id,
       user_name,
       region_id,
       region_name,
       consumption_date::date AS stat_date,
       SUM(consumption_amount) AS total_consumption,
       SUM(consumption_cost) AS total_cost,
       ROW_NUMBER() OVER (PARTITION BY consumption_date::date, region_id
                          ORDER BY SUM(consumption_amount) DESC, user_id) AS ranking,
       now() AS update_time
FROM dwd_power_consumption_detail
GROUP BY user_id, user_name, region_id, region_name, consumption_date::date$q$)
$views$;

-- One call: the whole warehouse over power_user / power_consumption (found on the caller's
-- search_path), made of the same add_source/add_view calls a user would make, then started.
-- Tables the user created first (as the original example did) are adopted.
-- A failing call drops its slot through _drop_pipeline (the caller may not drop slots itself).
CREATE FUNCTION create_stategrid_pipeline(name text DEFAULT 'stategrid') RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_user regclass := to_regclass('power_user');
    v_cons regclass := to_regclass('power_consumption');
    v record;
BEGIN
    IF v_user IS NULL OR v_cons IS NULL THEN
        RAISE EXCEPTION 'create_stategrid_pipeline needs the source tables power_user and power_consumption'
            USING ERRCODE = 'undefined_table',
                  HINT = 'Create them first (examples/stategrid/schema.sql), in a schema on your search_path.';
    END IF;
    PERFORM stategrid_ivm.create_pipeline(name);
    BEGIN
        PERFORM stategrid_ivm.add_source(name, v_user);
        PERFORM stategrid_ivm.add_source(name, v_cons);
        FOR v IN SELECT * FROM stategrid_ivm.stategrid_warehouse_views() ORDER BY ord LOOP
            PERFORM stategrid_ivm.add_view(name, v.view_name, v.query);
        END LOOP;
        PERFORM stategrid_ivm.start_pipeline(name);
    EXCEPTION WHEN OTHERS THEN
        -- the slot is not transactional: do not leave it behind when this call fails
        PERFORM stategrid_ivm._drop_pipeline(stategrid_ivm._stamp_caller(), name, false);
        RAISE;
    END;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Sample State Grid data (demo and benchmarks). They write the caller's power_user and
-- power_consumption (search_path), never anything else.
-- ---------------------------------------------------------------------------------------

-- The 31 provincial-level regions (administrative division codes) and tariffs per usage type.
CREATE FUNCTION sample_regions(OUT region_id integer, OUT region_name text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
VALUES (11,'北京'),(12,'天津'),(13,'河北'),(14,'山西'),(15,'内蒙古'),(21,'辽宁'),(22,'吉林'),
       (23,'黑龙江'),(31,'上海'),(32,'江苏'),(33,'浙江'),(34,'安徽'),(35,'福建'),(36,'江西'),
       (37,'山东'),(41,'河南'),(42,'湖北'),(43,'湖南'),(44,'广东'),(45,'广西'),(46,'海南'),
       (50,'重庆'),(51,'四川'),(52,'贵州'),(53,'云南'),(54,'西藏'),(61,'陕西'),(62,'甘肃'),
       (63,'青海'),(64,'宁夏'),(65,'新疆')
$$;

CREATE FUNCTION sample_tariffs(OUT usage_type text, OUT tariff numeric, OUT min_kwh numeric,
                               OUT max_kwh numeric, OUT share numeric)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $$
VALUES ('居民', 0.56, 2, 30, 0.70), ('商业', 0.85, 30, 300, 0.15),
       ('工业', 0.65, 200, 2000, 0.10), ('农业', 0.48, 10, 150, 0.05)
$$;

-- Adds `users` users across the regions and, for every user, readings_per_day readings on each
-- of `days` days from start_date, with cost = amount x tariff and consecutive meter readings.
-- Returns the number of readings. Deterministic for a given seed and starting state.
CREATE FUNCTION generate_sample_data(users integer DEFAULT 30, days integer DEFAULT 3,
                                     readings_per_day integer DEFAULT 1,
                                     start_date date DEFAULT '2024-01-15',
                                     seed double precision DEFAULT 0.42)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_first bigint;
    n bigint;
BEGIN
    PERFORM setseed(seed);
    SELECT coalesce(max(user_id), 0) + 1 INTO v_first FROM power_user;
    INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone,
                            create_time, update_time)
    SELECT v_first + g,
           (ARRAY['张','王','李','赵','刘','陈','杨','黄','周','吴','徐','孙'])[1 + floor(random() * 12)::int]
             || (ARRAY['伟','芳','娜','敏','静','强','磊','洋','艳','勇','军','杰'])[1 + floor(random() * 12)::int],
           t.usage_type, r.region_id, r.region_name,
           r.region_name || (ARRAY['东城','西城','朝阳','海淀','南山','福田'])[1 + floor(random() * 6)::int]
             || '区' || (1 + floor(random() * 300)::int) || '号',
           '1' || (ARRAY['38','39','50','86','88'])[1 + floor(random() * 5)::int]
             || lpad(floor(random() * 100000000)::text, 8, '0'),
           start_date - 30, start_date - 30
    FROM generate_series(0, users - 1) g
    CROSS JOIN LATERAL (SELECT random() + g * 0 AS u, random() + g * 0 AS v) x
    CROSS JOIN LATERAL (SELECT * FROM stategrid_ivm.sample_regions() ORDER BY region_id
                        OFFSET floor(x.v * 31)::int LIMIT 1) r
    CROSS JOIN LATERAL (SELECT tt.usage_type FROM (
                            SELECT s.usage_type, sum(s.share) OVER (ORDER BY s.usage_type) AS upto
                            FROM stategrid_ivm.sample_tariffs() s) tt
                        WHERE tt.upto >= x.u ORDER BY tt.upto LIMIT 1) t;

    INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                   meter_reading_before, meter_reading_after, remark)
    SELECT user_id, amount, round(amount * tariff, 2), at,
           base + total - amount, base + total,
           CASE WHEN random() < 0.05 THEN '估抄' END
    FROM (
        SELECT u.user_id, a.amount, t.tariff, a.at,
               round((u.user_id % 1000) * 10.0, 2) AS base,
               sum(a.amount) OVER (PARTITION BY u.user_id ORDER BY a.at, a.k) AS total
        FROM power_user u
        JOIN stategrid_ivm.sample_tariffs() t ON t.usage_type = u.usage_type
        CROSS JOIN generate_series(0, days - 1) d
        CROSS JOIN generate_series(1, readings_per_day) k
        CROSS JOIN LATERAL (SELECT round((t.min_kwh + random()::numeric * (t.max_kwh - t.min_kwh)) / readings_per_day, 2) AS amount,
                                   start_date + d + make_interval(secs => floor((k - 1 + random()) * 86400.0 / readings_per_day)) AS at,
                                   k) a
        WHERE u.user_id >= v_first
    ) r;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- What real data does after the fact: corrected readings, users who move to another region,
-- late readings for past days, readings deleted as erroneous. Returns the number of changes.
CREATE FUNCTION generate_follow_up_changes(changes integer DEFAULT 10, seed double precision DEFAULT 0.7)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    i integer;
    v_id bigint;
    v_user bigint;
BEGIN
    PERFORM setseed(seed);
    FOR i IN 1 .. changes LOOP
        CASE i % 4
        WHEN 0 THEN  -- a corrected reading: amount, cost and meter after change together
            SELECT consumption_id INTO v_id FROM power_consumption ORDER BY random() LIMIT 1;
            UPDATE power_consumption c
            SET consumption_amount = round(c.consumption_amount * (0.8 + random()::numeric * 0.4), 2),
                remark = '更正'
            WHERE c.consumption_id = v_id;
            UPDATE power_consumption c
            SET consumption_cost = round(c.consumption_amount * t.tariff, 2),
                meter_reading_after = c.meter_reading_before + c.consumption_amount
            FROM power_user u JOIN stategrid_ivm.sample_tariffs() t ON t.usage_type = u.usage_type
            WHERE c.consumption_id = v_id AND u.user_id = c.user_id;
        WHEN 1 THEN  -- a user moves to another region
            UPDATE power_user u SET region_id = r.region_id, region_name = r.region_name, update_time = now()
            FROM (SELECT * FROM stategrid_ivm.sample_regions() ORDER BY random() LIMIT 1) r
            WHERE u.user_id = (SELECT user_id FROM power_user ORDER BY random() LIMIT 1);
        WHEN 2 THEN  -- a late reading for a past day
            SELECT user_id INTO v_user FROM power_user ORDER BY random() LIMIT 1;
            INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                           meter_reading_before, meter_reading_after, remark)
            SELECT v_user, a, round(a * t.tariff, 2),
                   (SELECT min(consumption_date) FROM power_consumption) + interval '3 hours',
                   0, a, '补录'
            FROM power_user u JOIN stategrid_ivm.sample_tariffs() t ON t.usage_type = u.usage_type
            CROSS JOIN LATERAL (SELECT round(t.min_kwh + random()::numeric * (t.max_kwh - t.min_kwh), 2) AS a) x
            WHERE u.user_id = v_user;
        ELSE         -- an erroneous reading removed
            DELETE FROM power_consumption
            WHERE consumption_id = (SELECT consumption_id FROM power_consumption ORDER BY random() LIMIT 1);
        END CASE;
    END LOOP;
    RETURN changes;
END
$$;

-- Inserts readings at about `rate` per second for `seconds` seconds, committing ten times a
-- second: a steady stream like meters reporting (the live view and the freshness benchmark).
CREATE PROCEDURE simulate_readings(rate integer DEFAULT 100, seconds integer DEFAULT 60)
LANGUAGE plpgsql
AS $$
DECLARE
    v_start timestamptz := clock_timestamp();
    v_tick integer := 0;
    v_per_tick integer := greatest(1, rate / 10);
    v_users bigint[];
BEGIN
    SELECT array_agg(user_id) INTO v_users FROM (SELECT user_id FROM power_user ORDER BY random() LIMIT 1000) u;
    IF v_users IS NULL THEN
        RAISE EXCEPTION 'simulate_readings needs users in power_user'
            USING HINT = 'SELECT stategrid_ivm.generate_sample_data() adds some.';
    END IF;
    WHILE clock_timestamp() < v_start + make_interval(secs => seconds) LOOP
        INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                       meter_reading_before, meter_reading_after)
        SELECT v_users[1 + floor(random() * array_length(v_users, 1))::int], a, round(a * 0.56, 2),
               localtimestamp, 0, a
        FROM generate_series(1, v_per_tick) g, LATERAL (SELECT round((1 + random() * 20)::numeric, 2) AS a) x;
        COMMIT;
        v_tick := v_tick + 1;
        PERFORM pg_sleep(greatest(0, extract(epoch FROM v_start + v_tick * interval '100 ms' - clock_timestamp())));
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------
-- Maintained tables refuse direct writes. Every ODS mirror and maintained view gets a
-- statement trigger, sgivm_refuse_direct_writes, that lets through only the pipeline's worker
-- and add_view / refresh_view filling the table; any other INSERT, UPDATE, DELETE or TRUNCATE
-- fails with a hint. The trigger comes and goes with the table's catalog row (add_source,
-- add_view, drop_pipeline), so the functions that write the catalog need not know about it.
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION _refuse_direct_write() RETURNS trigger
LANGUAGE c AS 'MODULE_PATHNAME', 'sgivm_refuse_direct_write';

-- Lets the calling transaction write one maintained table (add_view, refresh_view). Checks
-- itself that the role may insert into and delete from the table.
CREATE FUNCTION _allow_direct_write(rel oid) RETURNS void
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_allow_direct_write';

-- Puts the trigger on a maintained table (or replaces it: the pipeline's name is its argument).
CREATE FUNCTION _guard_table(rel oid, pipeline text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER sgivm_refuse_direct_writes'
                   ' BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION stategrid_ivm._refuse_direct_write(%L)',
                   rel::regclass, pipeline);
END
$$;

-- Catalog trigger: a table that becomes a mirror (source row) or a view (view row) is guarded.
-- add_view fills the new view in the same transaction: that one table stays writable until
-- the transaction ends. A row whose OID is not the table it names (a catalog restored by
-- pg_restore names the tables of another cluster) is left alone.
CREATE FUNCTION _guard_registered_table() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel oid;
    v_name text;
BEGIN
    IF TG_TABLE_NAME = 'source' THEN
        v_rel := NEW.ods_relid;
        v_name := NEW.ods_name;
    ELSE
        v_rel := NEW.relid;
        v_name := NEW.view_name;
    END IF;
    IF to_regclass(v_name) = v_rel THEN
        PERFORM stategrid_ivm._guard_table(v_rel, (SELECT p.name FROM stategrid_ivm.pipeline p
                                                   WHERE p.pipeline_id = NEW.pipeline_id));
        IF TG_TABLE_NAME = 'view' THEN
            PERFORM stategrid_ivm._allow_direct_write(v_rel);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- Catalog trigger: a table that stops being maintained (drop_pipeline without drop_tables)
-- becomes an ordinary table again.
CREATE FUNCTION _unguard_unregistered_table() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel oid;
BEGIN
    IF TG_TABLE_NAME = 'source' THEN
        v_rel := OLD.ods_relid;
    ELSE
        v_rel := OLD.relid;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger t
               WHERE t.tgrelid = v_rel AND t.tgname = 'sgivm_refuse_direct_writes'
                 AND t.tgfoid = 'stategrid_ivm._refuse_direct_write()'::regprocedure) THEN
        EXECUTE format('DROP TRIGGER sgivm_refuse_direct_writes ON %s', v_rel::regclass);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER guard_mirror AFTER INSERT ON source
FOR EACH ROW EXECUTE FUNCTION _guard_registered_table();
CREATE TRIGGER guard_view AFTER INSERT ON view
FOR EACH ROW EXECUTE FUNCTION _guard_registered_table();
CREATE TRIGGER unguard_mirror AFTER DELETE ON source
FOR EACH ROW EXECUTE FUNCTION _unguard_unregistered_table();
CREATE TRIGGER unguard_view AFTER DELETE ON view
FOR EACH ROW EXECUTE FUNCTION _unguard_unregistered_table();

-- ---------------------------------------------------------------------------------------
-- Status views.
-- ---------------------------------------------------------------------------------------

-- One row per pipeline: its state, lag and progress. Freshness: the worker keeps, per
-- pipeline, how long source transactions took from their commit to the commit that made them
-- visible in the maintained tables, over the transactions applied in the last one to two
-- minutes (a histogram with 10% wide buckets: each figure is the upper bound of its bucket).
-- A slot of the same name in another database (the original of a copy restored into this
-- cluster) is not this pipeline's.
-- lag_seconds counts from the oldest commit known to wait: one the worker left behind, or a
-- commit in this database since its last look (src/pg/shared_state.cpp). Where nobody knows
-- what waits -- no worker runs (paused, error), or one that has not been caught up since it
-- started (after resume_pipeline or a server restart) -- WAL past what it applied counts from
-- the last moment the pipeline is known to have been caught up: its last batch, else its last
-- applied commit. Figures are rounded: the lag up to milliseconds (a wait never reads 0),
-- freshness to tenths of milliseconds (its buckets are 10% wide).
-- On a hot standby the worker does not run (it runs on the primary, whose catalog and tables
-- the standby replays) and the WAL position functions are not allowed: lag and retained WAL are
-- NULL there; the standby's own delay is PostgreSQL's (pg_last_xact_replay_timestamp()).
CREATE VIEW pipelines AS
SELECT p.name,
       p.state,
       r.worker_pid,
       p.applied_lsn,
       CASE WHEN p.state IN ('created') OR pg_is_in_recovery() THEN NULL
            ELSE greatest(0, pg_wal_lsn_diff(pg_current_wal_flush_lsn(),
                               greatest(r.caught_up_lsn, p.applied_lsn, s.confirmed_flush_lsn)))::bigint
       END AS lag_bytes,
       (ceil(1000 * CASE WHEN pg_is_in_recovery() THEN NULL
                WHEN r.oldest_unapplied_commit IS NOT NULL
                THEN greatest(0, extract(epoch FROM clock_timestamp() - r.oldest_unapplied_commit))
            WHEN (p.state IN ('error', 'paused') OR (p.state = 'running' AND r.caught_up_lsn IS NULL))
                 AND pg_wal_lsn_diff(pg_current_wal_flush_lsn(),
                     greatest(r.caught_up_lsn, p.applied_lsn, s.confirmed_flush_lsn)) > 0
                THEN greatest(0, extract(epoch FROM clock_timestamp()
                                         - coalesce(r.last_batch_at, p.applied_commit_time, p.last_error_at, p.started_at)))
            ELSE 0
       END) / 1000)::numeric(15,3) AS lag_seconds,
       CASE WHEN NOT pg_is_in_recovery()
            THEN pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)::bigint END AS retained_wal_bytes,
       p.transactions_applied,
       r.freshness_transactions,
       r.freshness_p50_ms::numeric(15,1) AS freshness_p50_ms,
       r.freshness_p99_ms::numeric(15,1) AS freshness_p99_ms,
       r.freshness_max_ms::numeric(15,1) AS freshness_max_ms,
       p.rows_applied,
       p.last_error,
       p.last_error_at,
       p.applied_commit_time,
       r.last_batch_at,
       p.slot_name,
       s.wal_status AS slot_wal_status,
       p.owner::regrole AS owner,
       (SELECT array_agg(src.source_name ORDER BY src.source_name) FROM source src
        WHERE src.pipeline_id = p.pipeline_id) AS sources
FROM pipeline p
LEFT JOIN _runtime_status() r ON r.pipeline_id = p.pipeline_id
LEFT JOIN pg_replication_slots s ON s.slot_name = p.slot_name AND s.database = current_database();

-- A table the reader may not read has no row count.
CREATE FUNCTION _count_rows(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = rel) OR NOT has_table_privilege(rel, 'SELECT') THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', rel::regclass) INTO n;
    RETURN n;
END
$$;

-- views.rows: an estimate that reads no table, summed over the partitions of a partitioned
-- one. The statistics' live row count (pg_stat_user_tables.n_live_tup, as autovacuum uses it:
-- the count of the last VACUUM or ANALYZE plus every committed change since, reported by the
-- worker after each batch) where the statistics have seen the table vacuumed or analyzed, or
-- it never was; else (the statistics were reset since: a crash, pg_stat_reset) the count of
-- its last VACUUM or ANALYZE (pg_class.reltuples). A table the reader may not read has none.
CREATE FUNCTION _estimated_rows(rel oid) RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT sum(CASE WHEN c.reltuples < 0
                     OR coalesce(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid),
                                 pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)) IS NOT NULL
                THEN pg_stat_get_live_tuples(c.oid)
                ELSE c.reltuples::bigint
           END)::bigint
FROM pg_class c
WHERE (c.oid = rel OR c.oid IN (SELECT t.relid FROM pg_partition_tree(rel) t WHERE t.isleaf))
  AND c.relkind = 'r' AND has_table_privilege(rel, 'SELECT')
$$;

-- The exact row count of a table a pipeline maintains (count(*): reads the whole table).
CREATE FUNCTION view_rows(view_name regclass) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = view_rows.view_name)
       AND NOT EXISTS (SELECT 1 FROM stategrid_ivm.view v WHERE v.relid = view_rows.view_name) THEN
        RAISE EXCEPTION '% is not a table a pipeline maintains', view_name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM stategrid_ivm.views lists them.';
    END IF;
    RETURN stategrid_ivm._count_rows(view_name);
END
$$;

CREATE VIEW views AS
SELECT p.name AS pipeline,
       s.ods_name AS view_name,
       'ods' AS kind,
       format('mirror of %s', s.source_name) AS query,
       _estimated_rows(s.ods_relid) AS rows,
       p.state,
       'mirror' AS strategy,
       NULL::text AS strategy_reason
FROM source s JOIN pipeline p USING (pipeline_id)
UNION ALL
SELECT p.name, v.view_name, v.plan->>'kind', v.query, _estimated_rows(v.relid), p.state,
       coalesce(v.plan->>'strategy', 'recompute'),
       CASE WHEN v.plan->>'strategy' = 'differential' THEN NULL
            ELSE coalesce(nullif(v.plan->>'strategy_reason', ''), 'planned by an earlier version') END
FROM view v JOIN pipeline p USING (pipeline_id);

-- ---------------------------------------------------------------------------------------
-- Privileges: only what is meant for everyone stays executable by PUBLIC. The public
-- wrappers are granted per role (GRANT EXECUTE ON FUNCTION stategrid_ivm.create_pipeline(text)
-- ...); the SECURITY DEFINER implementations are open to PUBLIC: they check the caller
-- themselves (ownership; EXECUTE on create_pipeline / rebuild_pipeline for what creates a slot).
-- ---------------------------------------------------------------------------------------

REVOKE ALL ON ALL ROUTINES IN SCHEMA stategrid_ivm FROM PUBLIC;
GRANT USAGE ON SCHEMA stategrid_ivm TO PUBLIC;
-- generate_sample_data and generate_follow_up_changes run as their caller and read
-- sample_regions and sample_tariffs: whoever may call them may read those
GRANT EXECUTE ON FUNCTION check_setup(), change_to_text(bytea), stategrid_warehouse_views(),
    sample_regions(), sample_tariffs(), view_rows(regclass) TO PUBLIC;
GRANT SELECT ON pipelines, views TO PUBLIC;
GRANT EXECUTE ON FUNCTION _runtime_status(), _count_rows(oid), _estimated_rows(oid), _pipeline(text, boolean), _calling_role() TO PUBLIC;
GRANT EXECUTE ON FUNCTION _create_pipeline(oid, text), _add_source(oid, text, regclass, text),
    _add_view(oid, text, text, text, text), _drop_view(oid, regclass, boolean), _start_pipeline(oid, text),
    _pause_pipeline(oid, text), _resume_pipeline(oid, text), _drop_pipeline(oid, text, boolean),
    _refresh_view(oid, regclass), _verify(oid, text), _rebuild_pipeline(oid, text) TO PUBLIC;
-- sync wakes the worker; add_view's analysis runs as the caller; _allow_direct_write checks
-- the caller's rights on the table itself
GRANT EXECUTE ON FUNCTION _stamp_caller(), _wake_pipeline(integer), _flush_commits(), _plan_view(text, oid, text), _split_view(text, oid),
    _not_null_columns(text), _allow_direct_write(oid) TO PUBLIC;
