-- stategrid_ivm 0.1.0 -> 0.2.0 (ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0').
--
-- 0.1.0 is the first released version and its script, stategrid_ivm--0.1.0.sql, is frozen:
-- CREATE EXTENSION stategrid_ivm installs 0.1.0 and then runs this script, so a fresh install
-- and an updated one run the same statements. Every change of the SQL interface after 0.1.0
-- goes here (or into a later update script), never into stategrid_ivm--0.1.0.sql.

\echo Use "ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0'" to load this file. \quit

-- =========================================================================================
-- Privileges, dump/restore and rebuild (issue 7, deliverables 4 and 7). README "Privileges"
-- and "Upgrades, dump and restore" describe what this section promises.
--
-- The public functions are thin SECURITY INVOKER wrappers that pass on who called them (and
-- add_view the search_path the query is analysed with) to a SECURITY DEFINER function named
-- after them with a leading underscore, which does the work with the extension owner's rights:
-- only those functions write the catalog, create slots and origins. They take the caller only
-- as the wrapper stamped it (_caller), and change a pipeline only for a member of its owner
-- (_owned_pipeline). Whatever touches the user's tables --
-- CREATE TABLE of a mirror or view, LOCK, a view's populate, verify's comparisons -- runs as
-- the pipeline's owner in a security-restricted operation (_run_as, src/pg/owner_role.cpp),
-- like the worker's batches: PostgreSQL checks the owner's privileges, the tables belong to
-- the owner, and the owner's code cannot take over the caller's session.
-- =========================================================================================

-- Runs one statement as a role in a security-restricted operation; the first row of its result
-- as text, or the number of rows it processed. Internal: superusers (our SECURITY DEFINER
-- functions) only.
CREATE FUNCTION _run_as(role oid, sql text, search_path text DEFAULT NULL) RETURNS text[]
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_run_as';

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

CREATE OR REPLACE FUNCTION create_pipeline(name text) RETURNS void
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
    v_ods_key name[];
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
    -- The worker streams the source into the mirror without a SELECT on it: the owner (and the
    -- caller, who sees the mirror) must be allowed to read it. The worker checks again per batch.
    IF NOT has_table_privilege(v_caller, source, 'SELECT') OR NOT has_table_privilege(p.owner, source, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for table %', source
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('The pipeline''s owner (%s) and the caller (%s) must both have SELECT on it.', p.owner::regrole, v_caller::regrole);
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
        IF EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = v_ods) THEN
            RAISE EXCEPTION 'table % is already the ODS mirror of another source', v_ods
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Pass another name as ods_table.';
        END IF;
        -- a pipeline writes only tables of its owner (never the caller's rights, nor ours)
        IF NOT pg_has_role(p.owner, (SELECT relowner FROM pg_class WHERE oid = v_ods), 'USAGE') THEN
            RAISE EXCEPTION 'table % is owned by %, not by the owner of pipeline "%" (%)', v_ods,
                    (SELECT relowner FROM pg_class WHERE oid = v_ods)::regrole, pipeline, p.owner::regrole
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A pipeline maintains only tables its owner owns: pass another name as ods_table, or change the table''s owner.';
        END IF;
        v_missing := coalesce(stategrid_ivm._missing_write_privileges(p.owner, v_ods),
                              stategrid_ivm._missing_write_privileges(v_caller, v_ods));
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'permission denied for table %', v_ods
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('The owner of pipeline "%s" (%s) and the caller (%s) need %s on it.', pipeline,
                                      p.owner::regrole, v_caller::regrole, v_missing);
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

CREATE OR REPLACE FUNCTION add_source(pipeline text, source regclass, ods_table text DEFAULT NULL) RETURNS regclass
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._add_source(stategrid_ivm._stamp_caller(), pipeline, source, ods_table) $$;

CREATE FUNCTION _add_view(p_caller oid, pipeline text, view_name text, query text, p_search_path text)
RETURNS regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
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
    v_missing text;
    v_stmt text;
BEGIN
    p := stategrid_ivm._owned_pipeline(v_caller, pipeline);
    IF view_name IS NULL OR query IS NULL THEN
        RAISE EXCEPTION 'add_view needs a view name and a query' USING ERRCODE = 'null_value_not_allowed';
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
    IF v_relid IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM stategrid_ivm.view v WHERE v.relid = v_relid)
           OR EXISTS (SELECT 1 FROM stategrid_ivm.source s WHERE s.ods_relid = v_relid OR s.source_relid = v_relid) THEN
            RAISE EXCEPTION 'table % is already part of a pipeline', v_qualified
                USING ERRCODE = 'duplicate_table', HINT = 'Choose another view name.';
        END IF;
        -- an adopted table must be the owner's, writable by the owner
        IF NOT pg_has_role(p.owner, (SELECT relowner FROM pg_class WHERE oid = v_relid), 'USAGE') THEN
            RAISE EXCEPTION 'table % is owned by %, not by the owner of pipeline "%" (%)', v_qualified,
                    (SELECT relowner FROM pg_class WHERE oid = v_relid)::regrole, pipeline, p.owner::regrole
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'A pipeline maintains only tables its owner owns: choose another view name, or change the table''s owner.';
        END IF;
        v_missing := coalesce(stategrid_ivm._missing_write_privileges(p.owner, v_relid),
                              stategrid_ivm._missing_write_privileges(v_caller, v_relid));
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION 'permission denied for table %', v_qualified
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('The owner of pipeline "%s" (%s) and the caller (%s) need %s on it.', pipeline,
                                      p.owner::regrole, v_caller::regrole, v_missing);
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
        -- created by the owner; type names as the analysis printed them, on the caller's path
        PERFORM stategrid_ivm._run_as(p.owner, v_stmt, p_search_path);
        v_relid := to_regclass(v_qualified);
    END IF;

    v_plan := (stategrid_ivm._run_as(v_caller,
        format('SELECT stategrid_ivm._plan_view(%L, %s, %L)', query, v_relid, v_qualified), p_search_path))[1]::jsonb;
    FOR v_stmt IN SELECT jsonb_array_elements_text(v_plan->'indexes') LOOP
        PERFORM stategrid_ivm._run_as(p.owner, v_stmt);
    END LOOP;
    INSERT INTO stategrid_ivm.view (pipeline_id, view_name, relid, query, plan)
    VALUES (p.pipeline_id, v_qualified, v_relid, query, v_plan);
    UPDATE stategrid_ivm.pipeline SET views_version = views_version + 1 WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._run_as(p.owner, format('DELETE FROM %s', v_qualified));
    PERFORM stategrid_ivm._run_as(p.owner, v_plan->>'populate');
    RETURN v_relid;
END
$$;

CREATE OR REPLACE FUNCTION add_view(pipeline text, view_name text, query text) RETURNS regclass
LANGUAGE sql
-- no SET search_path: the view's query is analysed with the caller's, like any query they run
AS $$ SELECT stategrid_ivm._add_view(stategrid_ivm._stamp_caller(), pipeline, view_name, query, pg_catalog.current_setting('search_path')) $$;

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
    UPDATE stategrid_ivm.pipeline SET state = 'backfilling', started_at = now()
    WHERE pipeline_id = p.pipeline_id;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

CREATE OR REPLACE FUNCTION start_pipeline(name text) RETURNS void
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

CREATE OR REPLACE FUNCTION pause_pipeline(name text) RETURNS void
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

CREATE OR REPLACE FUNCTION resume_pipeline(name text) RETURNS void
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

CREATE OR REPLACE FUNCTION drop_pipeline(name text, drop_tables boolean DEFAULT false) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._drop_pipeline(stategrid_ivm._stamp_caller(), name, drop_tables) $$;

CREATE FUNCTION _refresh_view(p_caller oid, p_view regclass) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller oid := stategrid_ivm._caller(p_caller);
    v stategrid_ivm.view;
    p stategrid_ivm.pipeline;
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
    -- The worker writes this table only inside its apply transactions: wait for it, then
    -- recompute from the inputs as of its last commit. As the owner, like the worker.
    PERFORM stategrid_ivm._run_as(p.owner, format('LOCK TABLE %s IN EXCLUSIVE MODE', v.relid::regclass));
    -- the guard against direct writes lets this transaction write the table
    PERFORM stategrid_ivm._allow_direct_write(v.relid);
    PERFORM stategrid_ivm._run_as(p.owner, format('DELETE FROM %s', v.relid::regclass));
    RETURN (stategrid_ivm._run_as(p.owner, v.plan->>'populate'))[1]::bigint;
END
$$;

CREATE OR REPLACE FUNCTION refresh_view(view_name regclass) RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT stategrid_ivm._refresh_view(stategrid_ivm._stamp_caller(), view_name) $$;

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
    v_cols text;
    v_counts text[];
    v_denied regclass;
    v_src regclass;
    v_ods regclass;
BEGIN
    SELECT * INTO p FROM stategrid_ivm.pipeline WHERE name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pipeline "%" does not exist', p_name
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT name FROM stategrid_ivm.pipelines lists the pipelines.';
    END IF;
    SELECT t INTO v_denied
    FROM (SELECT 1 AS k, s.source_name AS n, s.source_relid AS t FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
          UNION ALL SELECT 2, s.ods_name, s.ods_relid FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
          UNION ALL SELECT 3, v.view_id::text, v.relid FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id) x
    WHERE EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = x.t) AND NOT has_table_privilege(v_caller, x.t, 'SELECT')
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
        -- by OID (a renamed source is still its source), else by name (a restored catalog
        -- holds the dumped cluster's OIDs until rebuild_pipeline)
        v_src := CASE WHEN EXISTS (SELECT 1 FROM pg_class WHERE oid = r.source_relid) THEN r.source_relid::regclass
                      ELSE to_regclass(r.source_name) END;
        v_ods := CASE WHEN EXISTS (SELECT 1 FROM pg_class WHERE oid = r.ods_relid) THEN r.ods_relid::regclass
                      ELSE to_regclass(r.ods_name) END;
        IF v_src IS NULL OR v_ods IS NULL THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_cols
        FROM pg_attribute a WHERE a.attrelid = v_src AND a.attnum > 0 AND NOT a.attisdropped;
        v_counts := stategrid_ivm._run_as(p.owner,
            format('SELECT (SELECT count(*) FROM (SELECT %1$s FROM %2$s EXCEPT ALL SELECT %1$s FROM %3$s) m),'
                   ' (SELECT count(*) FROM (SELECT %1$s FROM %3$s EXCEPT ALL SELECT %1$s FROM %2$s) e)',
                   v_cols, v_src, v_ods));
        missing_rows := v_counts[1]::bigint;
        extra_rows := v_counts[2]::bigint;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
    FOR r IN SELECT v.* FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id ORDER BY v.view_id LOOP
        view_name := r.view_name;
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r.relid) AND to_regclass(r.view_name) IS NULL THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        v_counts := stategrid_ivm._run_as(p.owner, r.plan->>'verify');
        missing_rows := v_counts[1]::bigint;
        extra_rows := v_counts[2]::bigint;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION verify(name text)
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
    FOR r IN SELECT i.indexrelid::regclass AS idx
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relname ~ '^sgivm_[a-z]+_[0-9]+_[0-9]+$'
               AND i.indrelid IN (SELECT s.ods_relid FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id
                                  UNION SELECT v.relid FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id) LOOP
        PERFORM stategrid_ivm._run_as(v_owner, format('DROP INDEX %s', r.idx));
    END LOOP;
    FOR r IN SELECT v.* FROM stategrid_ivm.view v WHERE v.pipeline_id = p.pipeline_id ORDER BY v.view_id LOOP
        v_plan := (stategrid_ivm._run_as(v_owner,
            format('SELECT stategrid_ivm._plan_view(%L, %s, %L)', r.plan->>'deparsed', r.relid, r.view_name)))[1]::jsonb;
        UPDATE stategrid_ivm.view SET plan = v_plan WHERE view_id = r.view_id;
        FOR v_stmt IN SELECT jsonb_array_elements_text(v_plan->'indexes') LOOP
            PERFORM stategrid_ivm._run_as(v_owner, v_stmt);
        END LOOP;
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

-- create_stategrid_pipeline: a failing call drops its slot through _drop_pipeline (the caller
-- may not drop slots itself).
CREATE OR REPLACE FUNCTION create_stategrid_pipeline(name text DEFAULT 'stategrid') RETURNS void
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

-- The views: a table the reader may not read has no row count. (pipelines, which must not
-- take a slot of the same name in another database for this pipeline's, is re-created with the
-- freshness columns below.)
CREATE OR REPLACE FUNCTION _count_rows(rel oid) RETURNS bigint
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

-- pg_dump keeps the catalog's rows (0.1.0 marked the tables); their sequences too, or the
-- next pipeline or view of a restored database would reuse an id.
SELECT pg_catalog.pg_extension_config_dump('pipeline_pipeline_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('view_view_id_seq', '');

-- Who may call what. The public wrappers keep 0.1.0's grants (none for PUBLIC but check_setup,
-- change_to_text, stategrid_warehouse_views); rebuild_pipeline joins them. The SECURITY DEFINER
-- functions are open to PUBLIC: they check the caller themselves (ownership; EXECUTE on
-- create_pipeline / rebuild_pipeline for what creates a slot).
REVOKE ALL ON FUNCTION _run_as(oid, text, text), _caller(oid), _take_caller_stamp(oid), _owned_pipeline(oid, text),
    _stop_worker(pipeline),
    _missing_write_privileges(oid, oid), _has_local_slot(pipeline), rebuild_pipeline(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _create_pipeline(oid, text), _add_source(oid, text, regclass, text),
    _add_view(oid, text, text, text, text), _start_pipeline(oid, text), _pause_pipeline(oid, text),
    _resume_pipeline(oid, text), _drop_pipeline(oid, text, boolean), _refresh_view(oid, regclass),
    _verify(oid, text), _rebuild_pipeline(oid, text) TO PUBLIC;
-- sync wakes the worker; add_view's analysis runs as the caller
GRANT EXECUTE ON FUNCTION _stamp_caller(), _wake_pipeline(integer), _plan_view(text, oid, text) TO PUBLIC;

-- =======================================================================================
-- Hostile input and WAL safety (issue 7, deliverables 3 and 5).
-- =======================================================================================

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

-- Tables of pipelines created before this version get their trigger now.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT s.ods_relid AS rel, p.name FROM stategrid_ivm.source s JOIN stategrid_ivm.pipeline p USING (pipeline_id)
             WHERE to_regclass(s.ods_name) = s.ods_relid
             UNION ALL
             SELECT v.relid, p.name FROM stategrid_ivm.view v JOIN stategrid_ivm.pipeline p USING (pipeline_id)
             WHERE to_regclass(v.view_name) = v.relid LOOP
        PERFORM stategrid_ivm._guard_table(r.rel, r.name);
    END LOOP;
END
$$;

-- refresh_view, verify and rebuild_pipeline: see the privileges section above (_refresh_view
-- opens its table with _allow_direct_write; _verify finds tables by OID).

REVOKE ALL ON FUNCTION _refuse_direct_write(), _guard_table(oid, text), _guard_registered_table(),
    _unguard_unregistered_table() FROM PUBLIC;
-- checks the caller's rights on the table itself
GRANT EXECUTE ON FUNCTION _allow_direct_write(oid) TO PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Freshness (issue 6): the worker keeps, per pipeline, how long source transactions took from
-- their commit to the commit that made them visible in the maintained tables, over the
-- transactions applied in the last one to two minutes (a histogram with 10% wide buckets:
-- each figure is the upper bound of its bucket). `pipelines` shows them.
-- ---------------------------------------------------------------------------------------
DROP VIEW pipelines;
DROP FUNCTION _runtime_status();
CREATE FUNCTION _runtime_status(
    OUT pipeline_id integer, OUT worker_pid integer, OUT caught_up_lsn pg_lsn,
    OUT oldest_unapplied_commit timestamptz, OUT last_batch_at timestamptz,
    OUT freshness_transactions bigint, OUT freshness_p50_ms double precision,
    OUT freshness_p99_ms double precision, OUT freshness_max_ms double precision)
RETURNS SETOF record
LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'sgivm_runtime_status';
REVOKE ALL ON FUNCTION _runtime_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _runtime_status() TO PUBLIC;

-- A slot of the same name in another database (the original of a copy restored into this
-- cluster) is not this pipeline's.
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
            -- without a running worker nobody knows what waits: count from its last good batch
            WHEN p.state IN ('error', 'paused') AND pg_wal_lsn_diff(pg_current_wal_flush_lsn(),
                     greatest(r.caught_up_lsn, p.applied_lsn, s.confirmed_flush_lsn)) > 0
                THEN greatest(0, extract(epoch FROM clock_timestamp()
                                         - coalesce(r.last_batch_at, p.applied_commit_time, p.last_error_at, p.started_at)))
            ELSE 0
       END::double precision AS lag_seconds,
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)::bigint AS retained_wal_bytes,
       p.transactions_applied,
       r.freshness_transactions,
       r.freshness_p50_ms,
       r.freshness_p99_ms,
       r.freshness_max_ms,
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
GRANT SELECT ON pipelines TO PUBLIC;
