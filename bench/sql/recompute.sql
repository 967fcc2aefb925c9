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

-- A copy of one maintained table: same columns, and the same unique key index (what a sink
-- table of a batch job has). The engine's other sgivm_* indexes serve incremental maintenance
-- only and are left out.
CREATE OR REPLACE FUNCTION bench.recompute_copy(p_name text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    i record;
BEGIN
    CREATE SCHEMA IF NOT EXISTS bench_recompute;
    EXECUTE format('CREATE TABLE bench_recompute.%I (LIKE public.%I INCLUDING DEFAULTS)', p_name, p_name);
    FOR i IN SELECT pg_get_indexdef(x.indexrelid) AS def, c.relname
             FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
             WHERE x.indrelid = format('public.%I', p_name)::regclass AND x.indisunique LOOP
        EXECUTE replace(replace(i.def, 'INDEX ' || quote_ident(i.relname), 'INDEX'),
                        ' ON public.', ' ON bench_recompute.');
    END LOOP;
END
$$;

-- Copies of the tables rebuilt (bench.recompute_copy), in a fresh schema bench_recompute.
CREATE OR REPLACE FUNCTION bench.recompute_prepare(p_views text[] DEFAULT NULL, p_with_ods boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v record;
BEGIN
    DROP SCHEMA IF EXISTS bench_recompute CASCADE;
    FOR v IN SELECT * FROM bench.recompute_tables(p_views, p_with_ods) LOOP
        PERFORM bench.recompute_copy(v.name);
    END LOOP;
END
$$;

-- One table refilled: TRUNCATE its copy, then INSERT ... SELECT of p_query (the columns the
-- copy and the query share by name: a view table's own sgivm_* columns are the engine's).
-- Returns the milliseconds, on the server's clock; the caller's transaction.
CREATE OR REPLACE FUNCTION bench.recompute_one(p_name text, p_query text)
RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    cols text;
BEGIN
    EXECUTE format('TRUNCATE bench_recompute.%I', p_name);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = format('bench_recompute.%I', p_name)::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attname NOT LIKE 'sgivm\_%';
    EXECUTE format('INSERT INTO bench_recompute.%I (%s) SELECT %s FROM (%s) q', p_name, cols, cols, p_query);
    RETURN round((extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric, 1);
END
$$;

-- One transaction (the caller's statement): each copy refilled by bench.recompute_one (TRUNCATE,
-- INSERT ... SELECT of the table's query), in dependency order. The DWD and DWS queries name ods_* and
-- dwd_power_consumption_detail: with bench_recompute first on the search_path they read the
-- copies just rebuilt, as a batch job does (the ODS ones only with p_with_ods). Returns the
-- milliseconds of each table, e.g. "dwd_power_user_info=120.5 ...".
CREATE OR REPLACE FUNCTION bench.recompute(p_views text[] DEFAULT NULL, p_with_ods boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v record;
    report text := '';
BEGIN
    PERFORM set_config('search_path', 'bench_recompute, public', true);
    FOR v IN SELECT * FROM bench.recompute_tables(p_views, p_with_ods) LOOP
        report := report || format('%s=%s ', v.name, bench.recompute_one(v.name, v.query));
    END LOOP;
    RETURN rtrim(report);
END
$$;
