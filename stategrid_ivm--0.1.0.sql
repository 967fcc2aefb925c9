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
           'max_replication_slots = ' || greatest(10, (SELECT count(*) FROM pg_replication_slots) + 4)
           || '  (one slot per pipeline; needs a restart)'
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
