-- stategrid_ivm 0.1.0 -> 0.2.0 (ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0').
--
-- 0.1.0 is the first released version and its script, stategrid_ivm--0.1.0.sql, is frozen:
-- CREATE EXTENSION stategrid_ivm installs 0.1.0 and then runs this script, so a fresh install
-- and an updated one run the same statements. Every change of the SQL interface after 0.1.0
-- goes here (or into a later update script), never into stategrid_ivm--0.1.0.sql.

\echo Use "ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0'" to load this file. \quit

-- =======================================================================================
-- Hostile input and WAL safety (issue 7, deliverables 3 and 5).
-- =======================================================================================

-- ---------------------------------------------------------------------------------------
-- verify (as in 0.1.0) finds a source and a maintained table by OID, so a renamed source
-- table is still compared with its mirror; a table that is gone is reported, not an error.
-- ---------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION verify(name text)
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
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r.source_relid)
           OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r.ods_relid) THEN
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
        IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = r.relid) THEN
            missing_rows := NULL; extra_rows := NULL; ok := false;
            RETURN NEXT;
            CONTINUE;
        END IF;
        EXECUTE r.plan->>'verify' INTO missing_rows, extra_rows;
        ok := missing_rows = 0 AND extra_rows = 0;
        RETURN NEXT;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------------------
-- rebuild_pipeline: a new replication slot, and the backfill again (every mirror copied from
-- its source under one snapshot, every view recomputed), keeping the pipeline's sources,
-- views, tables and owner. The way back when the slot cannot be read any more: invalidated
-- by max_slot_wal_keep_size, dropped by hand, missing after a restore from a dump; or when a
-- DELETE without a key (REPLICA IDENTITY NOTHING) stopped the pipeline.
-- ---------------------------------------------------------------------------------------
CREATE FUNCTION rebuild_pipeline(name text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p stategrid_ivm.pipeline;
    v_slot text;
    v_pid integer;
BEGIN
    -- Read without locking: locking the row would start a write, and the slot must come first.
    p := stategrid_ivm._pipeline(name, false);
    IF NOT pg_has_role(stategrid_ivm._calling_role(), p.owner, 'MEMBER') THEN
        RAISE EXCEPTION 'must be the owner of pipeline "%" (%)', name, p.owner::regrole
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM stategrid_ivm._require_setup();
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'rebuild_pipeline must run in a transaction that has not written anything yet'
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'A replication slot can only be created before the transaction writes: call rebuild_pipeline in its own transaction.';
    END IF;
    v_slot := 'sgivm_' || substr(md5(name || clock_timestamp()::text || random()::text), 1, 24);
    BEGIN
        PERFORM pg_create_logical_replication_slot(v_slot, 'stategrid_ivm');
        PERFORM stategrid_ivm._slot_created(v_slot);
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create the replication slot of pipeline "%": %', name, SQLERRM
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'max_replication_slots must leave a free slot. See SELECT * FROM stategrid_ivm.check_setup().';
    END;
    -- a database restored from a dump has no origin yet
    IF NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = p.origin_name) THEN
        PERFORM pg_replication_origin_create(p.origin_name);
    END IF;
    -- Waits for a batch under way. A paused pipeline backfills when resumed, a created one
    -- when started.
    UPDATE stategrid_ivm.pipeline
    SET slot_name = v_slot,
        state = CASE WHEN state IN ('created', 'paused') THEN state ELSE 'backfilling' END,
        backfill_snapshot = NULL, backfill_lsn = NULL, error_count = 0
    WHERE pipeline_id = p.pipeline_id;
    -- The worker reads the old slot: stop it; the launcher starts a new one, which waits for
    -- this transaction and then backfills.
    SELECT s.worker_pid INTO v_pid FROM stategrid_ivm._runtime_status() s
    JOIN pg_stat_activity a ON a.pid = s.worker_pid AND a.backend_type = 'stategrid_ivm worker'
    WHERE s.pipeline_id = p.pipeline_id;
    IF v_pid IS NOT NULL THEN
        PERFORM pg_terminate_backend(v_pid, 10000);
    END IF;
    -- The old slot goes last: nothing brings it back if this transaction fails after it.
    FOR v_pid IN SELECT 1 FROM pg_replication_slots WHERE slot_name = p.slot_name LOOP
        PERFORM pg_drop_replication_slot(p.slot_name);
    END LOOP;
    PERFORM stategrid_ivm._notify_launcher();
END
$$;

REVOKE ALL ON FUNCTION rebuild_pipeline(text) FROM PUBLIC;
