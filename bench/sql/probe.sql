-- The freshness probe of bench/run: commits a marker reading every interval_ms and waits until
-- its effect is visible in DWS (dws_user_ranking's total of the probe user for the marker's day),
-- recording the commit time (clock_timestamp() right after COMMIT returned) and the time it was
-- first seen. A procedure, so that each marker is its own source transaction and every poll
-- (a new statement under READ COMMITTED) sees the latest applied state. Not part of the extension.
CREATE SCHEMA IF NOT EXISTS bench;

CREATE TABLE IF NOT EXISTS bench.freshness_sample (
    run int, marker int, committed_at timestamptz, seen_at timestamptz, latency_ms float8);

-- The probe user is created here, after the steady stream has chosen its users
-- (simulate_readings picks them when it starts), so that only the markers count for it.
CREATE OR REPLACE PROCEDURE bench.freshness_probe(run int, seconds int, interval_ms int, probe_user bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_end timestamptz;
    v_at timestamp := date_trunc('day', localtimestamp) + interval '12 hours';
    v_base numeric := 0;
    v_next timestamptz;
    v_commit timestamptz;
    i int := 0;
    a_commit timestamptz[] := '{}';
    a_seen timestamptz[] := '{}';
BEGIN
    INSERT INTO public.power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
    VALUES (probe_user, '探针', '居民', 11, '北京', 'freshness probe', '13800000000');
    COMMIT;
    v_end := clock_timestamp() + make_interval(secs => seconds);
    WHILE clock_timestamp() < v_end LOOP
        i := i + 1;
        v_next := clock_timestamp() + make_interval(secs => interval_ms / 1000.0);
        INSERT INTO public.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                              meter_reading_before, meter_reading_after, remark)
        VALUES (probe_user, 1.00, 0.56, v_at, 0, 1.00, 'freshness probe');
        COMMIT;
        v_commit := clock_timestamp();
        LOOP
            PERFORM 1 FROM public.dws_user_ranking
            WHERE user_id = probe_user AND stat_date = v_at::date AND total_consumption >= v_base + i;
            EXIT WHEN FOUND;
            IF clock_timestamp() > v_commit + interval '60 s' THEN
                RAISE EXCEPTION 'freshness probe: marker % not visible in dws_user_ranking 60 s after its commit', i;
            END IF;
            PERFORM pg_sleep(0.002);
        END LOOP;
        a_commit := a_commit || v_commit;
        a_seen := a_seen || clock_timestamp();
        COMMIT;
        PERFORM pg_sleep(greatest(0, extract(epoch FROM v_next - clock_timestamp())));
    END LOOP;
    INSERT INTO bench.freshness_sample
    SELECT run, g, a_commit[g], a_seen[g], extract(epoch FROM a_seen[g] - a_commit[g]) * 1000
    FROM generate_subscripts(a_commit, 1) g;
END
$$;
