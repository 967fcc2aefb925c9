-- Baseline "batch ETL": a full recomputation of the warehouse's DWD and DWS tables from scratch
-- with INSERT ... SELECT, using the very view SQL of stategrid_warehouse_views(), into empty
-- copies of the maintained tables (schema bench_recompute). Installed by bench/run into each
-- benchmark database; not part of the extension.
--   p_views:    the views to recompute (NULL: all four of the warehouse), e.g. only the DWD
--               detail and the region statistics of a pipeline without the ranking;
--   p_with_ods: also rebuild the ODS layer first: copies of the ODS mirrors filled from the
--               source tables, which the DWD queries then read (the whole warehouse, issue 15's
--               batch ETL), instead of reading the pipeline's ODS mirrors as they are.
CREATE SCHEMA IF NOT EXISTS bench;

-- The tables rebuilt, in order: the ODS mirrors (p_with_ods) with the source each is filled
-- from, then the views.
CREATE OR REPLACE FUNCTION bench.recompute_tables(p_views text[], p_with_ods boolean,
                                                  OUT name text, OUT query text)
RETURNS SETOF record
LANGUAGE sql STABLE AS $$
    SELECT name, query FROM (
        SELECT c.relname::text AS name,
               format('SELECT * FROM %s', s.source_relid::regclass) AS query, 0 AS ord
        FROM stategrid_ivm.source s JOIN pg_class c ON c.oid = s.ods_relid
        WHERE p_with_ods
        UNION ALL
        SELECT v.view_name, v.query, v.ord
        FROM stategrid_ivm.stategrid_warehouse_views() v
        WHERE p_views IS NULL OR v.view_name = ANY (p_views)) t
    ORDER BY ord, name
$$;

-- Copies of the tables rebuilt: same columns, and the same unique key index (what a sink table
-- of a batch job has). The engine's other sgivm_* indexes serve incremental maintenance only
-- and are left out.
CREATE OR REPLACE FUNCTION bench.recompute_prepare(p_views text[] DEFAULT NULL, p_with_ods boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    i record;
BEGIN
    DROP SCHEMA IF EXISTS bench_recompute CASCADE;
    CREATE SCHEMA bench_recompute;
    FOR v IN SELECT * FROM bench.recompute_tables(p_views, p_with_ods) LOOP
        EXECUTE format('CREATE TABLE bench_recompute.%I (LIKE public.%I INCLUDING DEFAULTS)', v.name, v.name);
        FOR i IN SELECT pg_get_indexdef(x.indexrelid) AS def, c.relname
                 FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
                 WHERE x.indrelid = format('public.%I', v.name)::regclass AND x.indisunique LOOP
            EXECUTE replace(replace(i.def, 'INDEX ' || quote_ident(i.relname), 'INDEX'),
                            ' ON public.', ' ON bench_recompute.');
        END LOOP;
    END LOOP;
END
$$;

-- One transaction (the caller's statement): TRUNCATE the copies, then INSERT ... SELECT each
-- table's query in dependency order. The DWD and DWS queries name ods_* and
-- dwd_power_consumption_detail: with bench_recompute first on the search_path they read the
-- copies just rebuilt, as a batch job does (the ODS ones only with p_with_ods). Returns the
-- milliseconds of each table, e.g. "dwd_power_user_info=120.5 ...".
CREATE OR REPLACE FUNCTION bench.recompute(p_views text[] DEFAULT NULL, p_with_ods boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    t0 timestamptz;
    cols text;
    report text := '';
BEGIN
    PERFORM set_config('search_path', 'bench_recompute, public', true);
    FOR v IN SELECT * FROM bench.recompute_tables(p_views, p_with_ods) LOOP
        EXECUTE format('TRUNCATE bench_recompute.%I', v.name);
    END LOOP;
    FOR v IN SELECT * FROM bench.recompute_tables(p_views, p_with_ods) LOOP
        t0 := clock_timestamp();
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
        FROM pg_attribute a
        WHERE a.attrelid = format('bench_recompute.%I', v.name)::regclass AND a.attnum > 0 AND NOT a.attisdropped;
        EXECUTE format('INSERT INTO bench_recompute.%I (%s) SELECT %s FROM (%s) q', v.name, cols, cols, v.query);
        report := report || format('%s=%s ', v.name,
                                   round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1));
    END LOOP;
    RETURN rtrim(report);
END
$$;
