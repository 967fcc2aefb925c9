-- Readings of existing users for bench/run's scenarios of issue 15 (small changes, backlog,
-- memory): unlike generate_sample_data, which always adds new users, these land in the groups
-- and ranking partitions the warehouse already has. Not part of the extension.
CREATE SCHEMA IF NOT EXISTS bench;

-- per_day readings for every user of slice p_slice of p_slices (user_id % p_slices = p_slice)
-- on each of p_days days from p_start: amounts of 2 to 30 kWh at 0.56 yuan. One statement,
-- so one source transaction when called alone. Returns the rows written.
CREATE OR REPLACE FUNCTION bench.add_readings(p_start date, p_days int, p_slices int DEFAULT 1,
                                              p_slice int DEFAULT 0, p_per_day int DEFAULT 1)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO public.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                          meter_reading_before, meter_reading_after, remark)
    SELECT u.user_id, a.amount, round(a.amount * 0.56, 2),
           p_start + d + make_interval(secs => floor(random() * 86400)), 0, a.amount, 'bench'
    FROM public.power_user u
    CROSS JOIN generate_series(0, p_days - 1) d
    CROSS JOIN generate_series(1, p_per_day) k
    CROSS JOIN LATERAL (SELECT round((2 + random() * 28 + k * 0)::numeric, 2) AS amount) a
    WHERE u.user_id % p_slices = p_slice;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- p_rows readings of random users among user ids 1 .. p_users (the users of a fresh benchmark
-- database), on day p_day: the small change of a commit. A procedure: CALL prints nothing.
CREATE OR REPLACE PROCEDURE bench.small_change(p_rows int, p_users bigint, p_day date)
LANGUAGE sql AS $$
    INSERT INTO public.power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                          meter_reading_before, meter_reading_after, remark)
    SELECT 1 + floor(random() * p_users)::bigint, a, round(a * 0.56, 2),
           p_day + time '18:00' + g * interval '1 s', 0, a, 'small change'
    FROM generate_series(1, p_rows) g, LATERAL (SELECT round((2 + random() * 28 + g * 0)::numeric, 2) AS a) x
$$;
