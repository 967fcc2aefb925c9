-- The roll-up scenario of bench/run (bench/scenarios/rollup.sh): two provinces, each with its
-- own warehouse, published to a national cluster that runs national views over the subscribed
-- tables (docs/scale-out.md, "Roll-up"). Loaded into every benchmark database; only the
-- roll-up scenario calls these. Not part of the extension.
CREATE SCHEMA IF NOT EXISTS bench;

-- A province's sources: `users` users of province p (1, 2, ...) over `days` days ending today,
-- one reading per user and day. Keys and regions are the province's own, as docs/scale-out.md
-- sets them up: user_id from p * 10^8, consumption_id from p * 10^11 (CHECK constraints refuse
-- any other), regions those of sample_regions() whose position is p modulo `provinces`.
-- user_id and consumption_date NOT NULL, so every warehouse table gets a primary key.
CREATE OR REPLACE FUNCTION bench.rollup_province_data(p int, provinces int, users int, days int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_user_base bigint := p * 100000000::bigint;
    v_reading_base bigint := p * 100000000000::bigint;
    v_regions int[];
    v_names text[];
    n bigint;
BEGIN
    SELECT array_agg(region_id ORDER BY region_id), array_agg(region_name ORDER BY region_id)
    INTO v_regions, v_names
    FROM (SELECT r.*, row_number() OVER (ORDER BY region_id) AS i FROM stategrid_ivm.sample_regions() r) r
    WHERE i % provinces = p % provinces;
    ALTER TABLE power_consumption ALTER user_id SET NOT NULL, ALTER consumption_date SET NOT NULL;
    EXECUTE format('ALTER SEQUENCE power_consumption_consumption_id_seq RESTART WITH %s', v_reading_base);
    -- generate_sample_data numbers users from max(user_id) + 1: the province's first user first
    INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name)
    VALUES (v_user_base, 'province ' || p, '居民', v_regions[1], v_names[1]);
    n := stategrid_ivm.generate_sample_data(users => users, days => days, start_date => current_date - (days - 1),
                                            seed => p / 10.0);
    -- (it spreads users over all regions: into the province's)
    UPDATE power_user
    SET region_id = v_regions[1 + user_id % array_length(v_regions, 1)],
        region_name = v_names[1 + user_id % array_length(v_regions, 1)]
    WHERE user_id > v_user_base;
    EXECUTE format('ALTER TABLE power_user ADD CONSTRAINT province_users CHECK (user_id BETWEEN %s AND %s),
                        ADD CONSTRAINT province_regions CHECK (region_id = ANY (%L))',
                   v_user_base, v_user_base + 99999999, v_regions);
    EXECUTE format('ALTER TABLE power_consumption ADD CONSTRAINT province_readings CHECK (consumption_id BETWEEN %s AND %s)',
                   v_reading_base, v_reading_base + 99999999999);
    RETURN n;
END
$$;

-- The national views, over the ODS mirrors of the subscribed DWD detail and DWS ranking:
-- national totals per day and usage type, and the national top 100 users per day.
CREATE OR REPLACE FUNCTION bench.rollup_views(OUT view_name text, OUT query text)
RETURNS SETOF record LANGUAGE sql IMMUTABLE AS $views$
VALUES
('nat_daily_usage', $q$SELECT consumption_date::date AS stat_date, usage_type,
       SUM(consumption_amount) AS total_consumption, SUM(consumption_cost) AS total_cost,
       COUNT(*) AS readings, COUNT(DISTINCT user_id) AS users
FROM ods_dwd_power_consumption_detail
GROUP BY consumption_date::date, usage_type$q$),
('nat_user_top100', $q$SELECT * FROM (
    SELECT user_id, user_name, region_id, stat_date, SUM(total_consumption) AS total_consumption,
           ROW_NUMBER() OVER (PARTITION BY stat_date ORDER BY SUM(total_consumption) DESC, user_id) AS rn
    FROM ods_dws_user_ranking
    GROUP BY user_id, user_name, region_id, stat_date) r
WHERE rn <= 100$q$)
$views$;

-- Markers of national freshness, committed in a province: a probe user of usage type `probe`
-- (created here, after the steady stream has chosen its users), then one reading of it every
-- interval_ms for `seconds`, each its own transaction, dated 2000-01-01 (a day nothing else
-- has). The national cluster counts them in nat_daily_usage (bench.rollup_watch). Commit times
-- (clock_timestamp() right after COMMIT returned) go to bench.rollup_marker.
CREATE TABLE IF NOT EXISTS bench.rollup_marker (run int, probe text, marker int, committed_at timestamptz);

CREATE OR REPLACE PROCEDURE bench.rollup_markers(run int, probe text, seconds int, interval_ms int,
                                                 probe_user bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_end timestamptz;
    v_next timestamptz;
    i int := 0;
    a_commit timestamptz[] := '{}';
BEGIN
    INSERT INTO public.power_user (user_id, user_name, usage_type, region_id, region_name)
    SELECT probe_user, probe, probe, region_id, region_name FROM public.power_user
    ORDER BY user_id LIMIT 1
    ON CONFLICT (user_id) DO NOTHING;
    COMMIT;
    v_end := clock_timestamp() + make_interval(secs => seconds);
    WHILE clock_timestamp() < v_end LOOP
        i := i + 1;
        v_next := clock_timestamp() + make_interval(secs => interval_ms / 1000.0);
        INSERT INTO public.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                              meter_reading_before, meter_reading_after, remark)
        VALUES (probe_user, 1.00, 0.56, timestamp '2000-01-01 12:00', 0, 1.00, 'roll-up probe');
        COMMIT;
        a_commit := a_commit || clock_timestamp();
        PERFORM pg_sleep(greatest(0, extract(epoch FROM v_next - clock_timestamp())));
    END LOOP;
    INSERT INTO bench.rollup_marker
    SELECT run, probe, g + coalesce((SELECT max(marker) FROM bench.rollup_marker m
                                     WHERE m.probe = rollup_markers.probe), 0), a_commit[g]
    FROM generate_subscripts(a_commit, 1) g;
END
$$;

-- On the national cluster: polls the markers' count per probe in nat_daily_usage every
-- poll_ms and records when it grew (marker k is first seen when the count reaches k), until
-- every probe of bench.rollup_expect has reached its count or `seconds` have passed.
CREATE TABLE IF NOT EXISTS bench.rollup_seen (run int, probe text, readings bigint, seen_at timestamptz);
CREATE TABLE IF NOT EXISTS bench.rollup_expect (probe text PRIMARY KEY, markers bigint);

CREATE OR REPLACE PROCEDURE bench.rollup_watch(run int, seconds int, poll_ms int)
LANGUAGE plpgsql AS $$
DECLARE
    v_end timestamptz := clock_timestamp() + make_interval(secs => seconds);
    v_last jsonb := '{}';
    r record;
    a_probe text[] := '{}';
    a_count bigint[] := '{}';
    a_seen timestamptz[] := '{}';
BEGIN
    WHILE clock_timestamp() < v_end LOOP
        FOR r IN SELECT usage_type, readings FROM public.nat_daily_usage
                 WHERE stat_date = date '2000-01-01' LOOP
            IF (v_last ->> r.usage_type) IS DISTINCT FROM r.readings::text THEN
                a_probe := a_probe || r.usage_type;
                a_count := a_count || r.readings;
                a_seen := a_seen || clock_timestamp();
                v_last := v_last || jsonb_build_object(r.usage_type, r.readings::text);
            END IF;
        END LOOP;
        COMMIT;
        EXIT WHEN EXISTS (SELECT 1 FROM bench.rollup_expect)
              AND NOT EXISTS (SELECT 1 FROM bench.rollup_expect e
                              WHERE coalesce((v_last ->> e.probe)::bigint, 0) < e.markers);
        PERFORM pg_sleep(poll_ms / 1000.0);
    END LOOP;
    INSERT INTO bench.rollup_seen SELECT run, a_probe[g], a_count[g], a_seen[g] FROM generate_subscripts(a_probe, 1) g;
END
$$;

-- Latency of every marker of a run: first seen (the first count that reached it) - committed.
CREATE OR REPLACE FUNCTION bench.rollup_latency(p_run int)
RETURNS TABLE (probe text, marker int, latency_ms float8) LANGUAGE sql AS $$
    SELECT m.probe, m.marker,
           extract(epoch FROM (SELECT min(s.seen_at) FROM bench.rollup_seen s
                               WHERE s.probe = m.probe AND s.readings >= m.marker) - m.committed_at) * 1000
    FROM bench.rollup_marker m WHERE m.run = p_run
$$;
