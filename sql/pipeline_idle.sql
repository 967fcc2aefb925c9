-- An idle pipeline stays idle (issue 6): once it has caught up, its worker commits about once
-- per naptime and writes no WAL. It used to spin: every step locked the pipeline's catalog row
-- (an xid) and touched its temporary tables (whose ON COMMIT truncation is WAL-logged), so each
-- commit wrote WAL that the next step took for work, some 300 commits a second.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stategrid_ivm;
CREATE SCHEMA pipeline_idle;
SET search_path = pipeline_idle, public;
\getenv abs_srcdir PG_ABS_SRCDIR
\set schema_file :abs_srcdir '/examples/stategrid/schema.sql'
\set ECHO none
\i :schema_file
\set ECHO all

SELECT stategrid_ivm.generate_sample_data(users => 20, days => 2, start_date => '2024-03-01', seed => 0.3) IS NOT NULL AS loaded;
SELECT stategrid_ivm.create_stategrid_pipeline('pipeline_idle');
SELECT stategrid_ivm.sync('pipeline_idle') IS NOT NULL AS synced;
-- a batch with views (its commit writes WAL), then quiet
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT user_id, 12.5, 7.0, '2024-03-02 20:00' FROM power_user ORDER BY user_id LIMIT 5;
SELECT stategrid_ivm.sync('pipeline_idle') IS NOT NULL AS synced;
SELECT pg_sleep(0.5);

-- Over 3 s: the commits of the whole cluster (every pipeline's worker, of every database
-- pg_regress left running) and the WAL written. Idle workers commit once per naptime (1 s).
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT sum(xact_commit) AS commits_before FROM pg_stat_database \gset
SELECT pg_current_wal_lsn() AS lsn_before \gset
SELECT pg_sleep(3);
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT sum(xact_commit) - :commits_before < 200 AS few_commits,
       pg_wal_lsn_diff(pg_current_wal_lsn(), :'lsn_before') < 200000 AS little_wal
FROM pg_stat_database;

-- and it still wakes up for the next change
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
SELECT user_id, 3.5, 2.0, '2024-03-02 21:00' FROM power_user ORDER BY user_id LIMIT 1;
SELECT stategrid_ivm.sync('pipeline_idle') IS NOT NULL AS synced;
SELECT view_name, ok FROM stategrid_ivm.verify('pipeline_idle') ORDER BY view_name;

-- Resume starts the worker at once, whichever probe slot last looked at this database (a
-- finished probe used to keep its database "busy" until the launcher's next full probe, 5 s).
-- Three pauses and resumes, 5.3 s apart, so that a periodic probe of all databases (every 5 s)
-- falls in between each time: each resume until sync() returns.
CREATE TEMP TABLE resume_times (elapsed interval);
DO $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. 3 LOOP
        PERFORM stategrid_ivm.pause_pipeline('pipeline_idle');
        COMMIT;
        PERFORM pg_sleep(5.3);
        INSERT INTO pipeline_idle.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date)
        SELECT user_id, 1.5, 1.0, '2024-03-02 22:00' FROM pipeline_idle.power_user ORDER BY user_id LIMIT 1;
        PERFORM stategrid_ivm.resume_pipeline('pipeline_idle');
        COMMIT;
        t0 := clock_timestamp();
        PERFORM stategrid_ivm.sync('pipeline_idle');
        INSERT INTO resume_times VALUES (clock_timestamp() - t0);
        COMMIT;
    END LOOP;
END
$$;
SELECT count(*) AS resumes, max(elapsed) < interval '2 s' AS each_within_2s FROM resume_times;

SELECT stategrid_ivm.drop_pipeline('pipeline_idle', drop_tables => true);
DROP SCHEMA pipeline_idle CASCADE;
