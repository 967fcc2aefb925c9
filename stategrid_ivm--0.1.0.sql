-- stategrid_ivm 0.1.0: catalog and SQL interface of the in-database State Grid warehouse.
\echo Use "CREATE EXTENSION stategrid_ivm" to load this file. \quit

-- One row per requirement of the server configuration, with the setting that fixes it.
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
    )
    SELECT 'wal_level', s.setting, s.setting = 'logical',
           'wal_level = logical  (postgresql.conf; needs a restart)'
    FROM s WHERE name = 'wal_level'
    UNION ALL
    SELECT 'shared_preload_libraries', s.setting, 'stategrid_ivm' = ANY (l.list),
           'shared_preload_libraries = ''stategrid_ivm''  (add to the existing list; needs a restart)'
    FROM s JOIN libs l USING (name) WHERE name = 'shared_preload_libraries'
    UNION ALL
    SELECT 'output_plugin_libraries', s.setting, 'stategrid_ivm' = ANY (l.list),
           'output_plugin_libraries = ''pgoutput, test_decoding, stategrid_ivm''  (PostgreSQL 15.19 and later refuse unlisted plugins; reload)'
    FROM s JOIN libs l USING (name) WHERE name = 'output_plugin_libraries'
    UNION ALL
    SELECT 'max_replication_slots', s.setting,
           s.setting::int > (SELECT count(*) FROM pg_replication_slots),
           'max_replication_slots = ' || greatest(10, s.setting::int + 1)
           || '  (one slot per pipeline, and free ones for new pipelines; needs a restart)'
    FROM s WHERE name = 'max_replication_slots'
    UNION ALL
    SELECT 'max_worker_processes', s.setting, s.setting::int >= 8,
           'max_worker_processes = 16  (a launcher plus one worker per running pipeline; needs a restart)'
    FROM s WHERE name = 'max_worker_processes'
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

SELECT pg_catalog.pg_extension_config_dump('pipeline', '');
SELECT pg_catalog.pg_extension_config_dump('view', '');
SELECT pg_catalog.pg_extension_config_dump('source', '');

-- ---------------------------------------------------------------------------------------
-- Internal C functions (not for PUBLIC).
-- ---------------------------------------------------------------------------------------

-- Asks the launcher, when the calling transaction commits, to look at this database again.
CREATE FUNCTION _notify_launcher() RETURNS void
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_notify_launcher';

-- Wakes the worker of a pipeline now (sync, pause).
CREATE FUNCTION _wake_pipeline(pipeline_id integer) RETURNS void
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_wake_pipeline';

-- Notes a slot create_pipeline made: if the transaction rolls back, the launcher drops it.
CREATE FUNCTION _slot_created(slot name) RETURNS void
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_slot_created';

-- The role a session runs as (SET ROLE), also inside SECURITY DEFINER functions.
CREATE FUNCTION _calling_role() RETURNS oid
LANGUAGE c STABLE AS 'MODULE_PATHNAME', 'sgivm_calling_role';

-- What the workers of this database keep in shared memory.
CREATE FUNCTION _runtime_status(
    OUT pipeline_id integer, OUT worker_pid integer, OUT caught_up_lsn pg_lsn,
    OUT oldest_unapplied_commit timestamptz, OUT last_batch_at timestamptz)
RETURNS SETOF record
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_runtime_status';

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

-- ---------------------------------------------------------------------------------------
-- The SQL interface (DESIGN.md section 3).
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION create_pipeline(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_slot text;
BEGIN
    IF name IS NULL OR btrim(name) = '' THEN
        RAISE EXCEPTION 'a pipeline needs a name' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM stategrid_ivm.pipeline p WHERE p.name = create_pipeline.name) THEN
        RAISE EXCEPTION 'pipeline "%" already exists', name
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
    v_slot := 'sgivm_' || substr(md5(name || clock_timestamp()::text || random()::text), 1, 24);
    BEGIN
        PERFORM pg_create_logical_replication_slot(v_slot, 'stategrid_ivm');
        PERFORM stategrid_ivm._slot_created(v_slot);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create the replication slot of pipeline "%": %', name, SQLERRM
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'output_plugin_libraries must list stategrid_ivm exactly (PostgreSQL 15.19 and later), max_replication_slots must leave a free slot, and wal_level must be logical. See SELECT * FROM stategrid_ivm.check_setup().';
    END;
    BEGIN
        PERFORM pg_replication_origin_create(v_slot);
        INSERT INTO stategrid_ivm.pipeline (name, owner, slot_name, origin_name)
        VALUES (name, (SELECT oid FROM pg_roles WHERE rolname = current_user), v_slot, v_slot);
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_drop_replication_slot(v_slot);
        RAISE;
    END;
END
$$;

CREATE FUNCTION add_source(pipeline text, source regclass, ods_table text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    v_nsp name;
    v_rel name;
    v_key name[];
    v_ods regclass;
    v_ods_name text;
    v_ods_nsp name;
    v_ods_rel name;
    v_missing text;
    v_ods_key name[];
BEGIN
    p := stategrid_ivm._pipeline(pipeline);
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
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = source), 'MEMBER')
       AND NOT has_table_privilege(source, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', source USING ERRCODE = 'insufficient_privilege';
    END IF;
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
        -- same columns (generated ones stay generated), same primary key, owned by the caller
        EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING GENERATED, PRIMARY KEY (%s))',
                       v_ods_name, source,
                       (SELECT string_agg(quote_ident(k), ', ') FROM unnest(v_key) k));
        v_ods := to_regclass(v_ods_name);
    ELSE
        IF v_ods = source THEN
            RAISE EXCEPTION 'the ODS mirror of % cannot be the table itself', source
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = v_ods) THEN
            RAISE EXCEPTION 'table % is already the ODS mirror of another source', v_ods
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Pass another name as ods_table.';
        END IF;
        SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ')
        INTO v_missing
        FROM pg_attribute a
        WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
          AND NOT EXISTS (SELECT 1 FROM pg_attribute o
                          WHERE o.attrelid = v_ods AND o.attname = a.attname AND NOT o.attisdropped
                            AND o.atttypid = a.atttypid);
        SELECT array_agg(a.attname ORDER BY a.attnum) INTO v_ods_key
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = v_ods AND i.indisprimary;
        IF v_missing IS NOT NULL OR v_ods_key IS DISTINCT FROM v_key THEN
            RAISE EXCEPTION 'table % already exists and is not a mirror of %', v_ods, source
                USING ERRCODE = 'duplicate_table',
                      DETAIL = CASE WHEN v_missing IS NOT NULL
                                    THEN 'It lacks columns: ' || v_missing || '.'
                                    ELSE format('Its primary key is (%s), the source''s is (%s).',
                                                array_to_string(v_ods_key, ', '), array_to_string(v_key, ', ')) END,
                      HINT = 'Pass another name as ods_table, or drop or rename the existing table.';
        END IF;
    END IF;
    SELECT n.nspname, c.relname INTO v_ods_nsp, v_ods_rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_ods;
    INSERT INTO stategrid_ivm.source (pipeline_id, source_relid, source_name, ods_relid, ods_name, key_columns)
    VALUES (p.pipeline_id, source, format('%I.%I', v_nsp, v_rel), v_ods, format('%I.%I', v_ods_nsp, v_ods_rel), v_key);
    RETURN v_ods;
END
$$;

CREATE FUNCTION start_pipeline(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
BEGIN
    p := stategrid_ivm._pipeline(name);
    PERFORM stategrid_ivm._require_setup();
    IF NOT EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id) THEN
        RAISE EXCEPTION 'pipeline "%" has no source tables', name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add them with stategrid_ivm.add_source() first.';
    END IF;
    IF p.state <> 'created' THEN
        RAISE EXCEPTION 'pipeline "%" was already started (state %)', name, p.state
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Use resume_pipeline() to continue a paused pipeline.';
    END IF;
    UPDATE stategrid_ivm.pipeline SET state = 'backfilling', started_at = now()
    WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION pause_pipeline(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
BEGIN
    p := stategrid_ivm._pipeline(name);
    IF p.state = 'created' THEN
        RAISE EXCEPTION 'pipeline "%" has not been started', name
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    UPDATE stategrid_ivm.pipeline SET state = 'paused' WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION resume_pipeline(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
BEGIN
    p := stategrid_ivm._pipeline(name);
    PERFORM stategrid_ivm._require_setup();
    IF p.state = 'created' THEN
        RAISE EXCEPTION 'pipeline "%" has not been started', name
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

CREATE FUNCTION drop_pipeline(name text, drop_tables boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    r record;
    v_pid integer;
BEGIN
    p := stategrid_ivm._pipeline(name);
    -- Transactional steps first: if a table cannot be dropped (a view of the user depends on
    -- it), nothing is lost. The slot, which no rollback brings back, goes last.
    IF drop_tables THEN
        FOR r IN SELECT v.relid FROM stategrid_ivm.view v
                 WHERE v.pipeline_id = p.pipeline_id AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = v.relid)
                 ORDER BY v.view_id DESC LOOP
            EXECUTE format('DROP TABLE %s', r.relid::regclass);
        END LOOP;
        FOR r IN SELECT s.ods_relid FROM stategrid_ivm.source s
                 WHERE s.pipeline_id = p.pipeline_id AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.ods_relid) LOOP
            EXECUTE format('DROP TABLE %s', r.ods_relid::regclass);
        END LOOP;
    END IF;
    DELETE FROM stategrid_ivm.pipeline WHERE pipeline_id = p.pipeline_id;
    -- the worker holds the slot while it decodes: stop it before dropping the slot
    SELECT s.worker_pid INTO v_pid FROM stategrid_ivm._runtime_status() s
    JOIN pg_stat_activity a ON a.pid = s.worker_pid AND a.backend_type = 'stategrid_ivm worker'
    WHERE s.pipeline_id = p.pipeline_id;
    IF v_pid IS NOT NULL THEN
        PERFORM pg_terminate_backend(v_pid, 10000);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = p.origin_name) THEN
        PERFORM pg_replication_origin_drop(p.origin_name);
    END IF;
    FOR r IN SELECT 1 FROM pg_replication_slots WHERE slot_name = p.slot_name LOOP
        PERFORM pg_drop_replication_slot(p.slot_name);
    END LOOP;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE FUNCTION sync(name text, timeout interval DEFAULT '30 s') RETURNS pg_lsn
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    v_target pg_lsn := pg_current_wal_flush_lsn();
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

-- Analyses a view's SELECT and returns its shape and maintenance statements (jsonb text).
CREATE FUNCTION _plan_view(query text, view_relid oid, view_table text) RETURNS text
LANGUAGE c VOLATILE STRICT AS 'MODULE_PATHNAME', 'sgivm_plan_view';

CREATE FUNCTION add_view(pipeline text, view_name text, query text) RETURNS regclass
LANGUAGE plpgsql
-- no SET search_path: the view's query is analysed with the caller's, like any query they run
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    v_plan jsonb;
    v_parts text[];
    v_nsp text;
    v_rel text;
    v_qualified text;
    v_relid oid;
    v_input oid;
    v_src record;
    v_missing text;
    v_stmt text;
BEGIN
    p := stategrid_ivm._pipeline(pipeline);
    IF view_name IS NULL OR query IS NULL THEN
        RAISE EXCEPTION 'add_view needs a view name and a query' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_plan := stategrid_ivm._plan_view(query, 0, 'x')::jsonb;
    v_parts := parse_ident(view_name);
    IF array_length(v_parts, 1) = 1 THEN
        v_nsp := current_schema();
        v_rel := v_parts[1];
    ELSIF array_length(v_parts, 1) = 2 THEN
        v_nsp := v_parts[1];
        v_rel := v_parts[2];
    ELSE
        RAISE EXCEPTION 'invalid view name "%"', view_name USING ERRCODE = 'invalid_name';
    END IF;
    v_qualified := format('%I.%I', v_nsp, v_rel);

    -- Inputs must be this pipeline's ODS mirrors or maintained views.
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
    END LOOP;

    -- Wait for the worker to finish its batch, and keep it from writing the inputs until this
    -- commits: the new table is filled at the pipeline's current position.
    FOR v_input IN SELECT x::oid FROM jsonb_array_elements_text(v_plan->'input_relids') x LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_input::regclass);
    END LOOP;

    v_relid := to_regclass(v_qualified);
    IF v_relid IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM stategrid_ivm.view v WHERE v.relid = v_relid)
           OR EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = v_relid OR s.source_relid = v_relid) THEN
            RAISE EXCEPTION 'table % is already part of a pipeline', v_qualified
                USING ERRCODE = 'duplicate_table', HINT = 'Choose another view name.';
        END IF;
        SELECT string_agg(quote_ident(c), ', ') INTO v_missing
        FROM jsonb_array_elements_text(v_plan->'columns') c
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = v_relid AND a.attname = c
                          AND a.attnum > 0 AND NOT a.attisdropped);
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'table % already exists and lacks the view''s columns %', v_qualified, v_missing
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Choose another view name, add the columns, or drop the table.';
        END IF;
        -- the same kind of type (an INT column for a bigint count is accepted, text for a number not)
        SELECT string_agg(format('%I (%s, the view gives %s)', c, format_type(a.atttypid, a.atttypmod), t), ', ')
        INTO v_missing
        FROM jsonb_array_elements_text(v_plan->'columns') WITH ORDINALITY AS c(c, n)
        JOIN jsonb_array_elements_text(v_plan->'types') WITH ORDINALITY AS t(t, m) ON m = n
        JOIN pg_attribute a ON a.attrelid = v_relid AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_type ta ON ta.oid = a.atttypid
        JOIN pg_type tv ON tv.oid = to_regtype(t)
        WHERE ta.typcategory <> tv.typcategory;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'table % already exists with columns of other types: %', v_qualified, v_missing
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Choose another view name, or change the column types.';
        END IF;
        SELECT string_agg(quote_ident(a.attname), ', ') INTO v_missing
        FROM pg_attribute a
        WHERE a.attrelid = v_relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef
          AND a.attidentity = '' AND a.attname::text NOT IN (SELECT jsonb_array_elements_text(v_plan->'columns'));
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'table % has NOT NULL columns without defaults that the view does not fill: %', v_qualified, v_missing
                USING ERRCODE = 'not_null_violation', HINT = 'Give them a default or drop NOT NULL.';
        END IF;
    ELSE
        SELECT format('CREATE TABLE %s (%s)', v_qualified,
                      string_agg(format('%I %s', c, t), ', ' ORDER BY n))
        INTO v_stmt
        FROM jsonb_array_elements_text(v_plan->'columns') WITH ORDINALITY AS c(c, n)
        JOIN jsonb_array_elements_text(v_plan->'types') WITH ORDINALITY AS t(t, m) ON m = n;
        EXECUTE v_stmt;
        v_relid := to_regclass(v_qualified);
    END IF;

    v_plan := stategrid_ivm._plan_view(query, v_relid, v_qualified)::jsonb;
    FOR v_stmt IN SELECT jsonb_array_elements_text(v_plan->'indexes') LOOP
        EXECUTE v_stmt;
    END LOOP;
    INSERT INTO stategrid_ivm.view (pipeline_id, view_name, relid, query, plan)
    VALUES (p.pipeline_id, v_qualified, v_relid, query, v_plan);
    UPDATE stategrid_ivm.pipeline SET views_version = views_version + 1 WHERE pipeline_id = p.pipeline_id;
    EXECUTE format('DELETE FROM %s', v_qualified);
    EXECUTE v_plan->>'populate';
    RETURN v_relid;
END
$$;

CREATE FUNCTION refresh_view(view_name regclass) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v stategrid_ivm.view;
    n bigint;
BEGIN
    SELECT * INTO v FROM stategrid_ivm.view WHERE relid = refresh_view.view_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a maintained view', view_name
            USING ERRCODE = 'undefined_object', HINT = 'SELECT * FROM stategrid_ivm.views lists them.';
    END IF;
    PERFORM stategrid_ivm._pipeline((SELECT name FROM stategrid_ivm.pipeline WHERE pipeline_id = v.pipeline_id));
    -- The worker writes this table only inside its apply transactions: wait for it, then
    -- recompute from the inputs as of its last commit.
    EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', view_name);
    EXECUTE format('DELETE FROM %s', view_name);
    EXECUTE v.plan->>'populate';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE FUNCTION verify(name text)
RETURNS TABLE (view_name text, missing_rows bigint, extra_rows bigint, ok boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    r record;
    v_cols text;
BEGIN
    p := stategrid_ivm._pipeline(name, false);
    -- ODS mirrors against their sources (meaningful after sync, with writers quiet).
    FOR r IN SELECT s.* FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id ORDER BY s.ods_name LOOP
        view_name := r.ods_name;
        IF to_regclass(r.source_name) IS NULL OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r.ods_relid) THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_cols
        FROM pg_attribute a WHERE a.attrelid = r.source_relid AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('SELECT (SELECT count(*) FROM (SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM %3$s) m),'
                       ' (SELECT count(*) FROM (SELECT %1$s FROM %3$s EXCEPT ALL SELECT %1$s FROM %2$s) e)',
                       v_cols, r.source_relid::regclass, r.ods_relid::regclass)
        INTO missing_rows, extra_rows;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
    FOR r IN SELECT v.* FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id ORDER BY v.view_id LOOP
        view_name := r.view_name;
        EXECUTE r.plan->>'verify' INTO missing_rows, extra_rows;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
END
$$;

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
        PERFORM pg_drop_replication_slot(p.slot_name)
        FROM stategrid_ivm.pipeline p JOIN pg_replication_slots s USING (slot_name)
        WHERE p.name = create_stategrid_pipeline.name;
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
-- Status views.
-- ---------------------------------------------------------------------------------------

CREATE VIEW pipelines AS
SELECT p.name,
       p.state,
       r.worker_pid,
       p.applied_lsn,
       CASE WHEN p.state IN ('created') THEN NULL
            ELSE greatest(0, pg_wal_lsn_diff(pg_current_wal_flush_lsn(),
                               greatest(r.caught_up_lsn, p.applied_lsn, s.confirmed_flush_lsn)))::bigint
       END AS lag_bytes,
       CASE WHEN r.oldest_unapplied_commit IS NOT NULL
                THEN greatest(0, extract(epoch FROM clock_timestamp() - r.oldest_unapplied_commit))
            -- a failing worker cannot say what waits: count from its last good batch
            -- without a running worker nobody knows what waits: count from its last good batch
            WHEN p.state IN ('error', 'paused') AND pg_wal_lsn_diff(pg_current_wal_flush_lsn(),
                     greatest(r.caught_up_lsn, p.applied_lsn, s.confirmed_flush_lsn)) > 0
                THEN greatest(0, extract(epoch FROM clock_timestamp()
                                         - coalesce(r.last_batch_at, p.applied_commit_time, p.last_error_at, p.started_at)))
            ELSE 0
       END::double precision AS lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes,
       p.transactions_applied,
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
LEFT JOIN pg_replication_slots s ON s.slot_name = p.slot_name;

CREATE FUNCTION _count_rows(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = rel) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', rel::regclass) INTO n;
    RETURN n;
END
$$;

CREATE VIEW views AS
SELECT p.name AS pipeline,
       s.ods_name AS view_name,
       'ods' AS kind,
       format('mirror of %s', s.source_name) AS query,
       _count_rows(s.ods_relid) AS rows,
       p.state
FROM source s JOIN pipeline p USING (pipeline_id)
UNION ALL
SELECT p.name, v.view_name, v.plan->>'kind', v.query, _count_rows(v.relid), p.state
FROM view v JOIN pipeline p USING (pipeline_id);

-- ---------------------------------------------------------------------------------------
-- Privileges: only what is meant for everyone stays executable by PUBLIC.
-- ---------------------------------------------------------------------------------------

REVOKE ALL ON ALL ROUTINES IN SCHEMA stategrid_ivm FROM PUBLIC;
GRANT EXECUTE ON FUNCTION check_setup(), change_to_text(bytea), stategrid_warehouse_views() TO PUBLIC;
GRANT USAGE ON SCHEMA stategrid_ivm TO PUBLIC;
GRANT SELECT ON pipelines, views TO PUBLIC;
GRANT EXECUTE ON FUNCTION _runtime_status(), _count_rows(oid), _pipeline(text, boolean), _calling_role() TO PUBLIC;
