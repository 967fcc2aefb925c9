-- stategrid_ivm 0.1.0 -> 0.2.0 (ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0').
--
-- 0.1.0 is the first released version and its script, stategrid_ivm--0.1.0.sql, is frozen:
-- CREATE EXTENSION stategrid_ivm installs 0.1.0 and then runs this script, so a fresh install
-- and an updated one run the same statements. Every change of the SQL interface after 0.1.0
-- goes here (or into a later update script), never into stategrid_ivm--0.1.0.sql.

\echo Use "ALTER EXTENSION stategrid_ivm UPDATE TO '0.2.0'" to load this file. \quit

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
LEFT JOIN pg_replication_slots s ON s.slot_name = p.slot_name;
GRANT SELECT ON pipelines TO PUBLIC;
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

-- refresh_view (as in 0.1.0) opens its table for the recomputation.
CREATE OR REPLACE FUNCTION refresh_view(view_name regclass) RETURNS bigint
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
    PERFORM stategrid_ivm._allow_direct_write(view_name);
    EXECUTE format('DELETE FROM %s', view_name);
    EXECUTE v.plan->>'populate';
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

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
    -- A worker that holds the old slot (running, or stopping after a pause) is stopped and
    -- waited for; the launcher starts a new one, which waits for this transaction and then
    -- backfills. A worker in error holds no slot and reads the new one at its next attempt.
    SELECT s.active_pid INTO v_pid FROM pg_replication_slots s
    JOIN pg_stat_activity a ON a.pid = s.active_pid AND a.backend_type = 'stategrid_ivm worker'
    WHERE s.slot_name = p.slot_name;
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

REVOKE ALL ON FUNCTION _refuse_direct_write(), _guard_table(oid, text), _guard_registered_table(),
    _unguard_unregistered_table(), rebuild_pipeline(text) FROM PUBLIC;
-- checks the caller's rights on the table itself
GRANT EXECUTE ON FUNCTION _allow_direct_write(oid) TO PUBLIC;
