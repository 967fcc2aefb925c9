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
