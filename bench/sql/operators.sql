-- Sources and changes of bench/run's "operators" scenario (issue 16): a many-to-many join and a
-- DISTINCT view over the DWD detail. Not part of the extension.
CREATE SCHEMA IF NOT EXISTS bench;

-- The tariff plans on offer: for every region and usage type of the sample data, p_plans plans
-- (标准 standard, 峰谷 time-of-use, 阶梯 tiered, ...) priced around the usage type's tariff.
-- Joined with the readings on (region_id, usage_type), a key of neither side: many readings and
-- several plans per value.
-- Creates public.tariff_plan (a source table of the pipeline); returns its rows.
CREATE OR REPLACE FUNCTION bench.create_tariff_plans(p_plans int DEFAULT 2)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    CREATE TABLE public.tariff_plan (
        plan_id    int PRIMARY KEY,
        region_id  int NOT NULL,
        usage_type varchar(50) NOT NULL,
        plan_name  text NOT NULL,
        price      numeric(6,3) NOT NULL
    );
    INSERT INTO public.tariff_plan
    SELECT row_number() OVER (ORDER BY r.region_id, t.usage_type, k), r.region_id, t.usage_type,
           (ARRAY['标准', '峰谷', '阶梯', '季节', '绿电'])[1 + (k - 1) % 5] || CASE WHEN k > 5 THEN k::text ELSE '' END,
           round(t.tariff * (0.9 + 0.05 * k), 3)
    FROM stategrid_ivm.sample_regions() r
    CROSS JOIN stategrid_ivm.sample_tariffs() t
    CROSS JOIN generate_series(1, p_plans) k;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- One source transaction of p_rows changed readings on day p_day: p_rows / 2 of that day's
-- readings deleted (chosen at random), the rest new readings of random users among 1 .. p_users
-- (bench.small_change). Both directions reach the operators: rows retracted and added.
CREATE OR REPLACE PROCEDURE bench.op_change(p_rows int, p_users bigint, p_day date)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM public.power_consumption
    WHERE consumption_id IN (SELECT consumption_id FROM public.power_consumption
                             WHERE consumption_date >= p_day AND consumption_date < p_day + 1
                             ORDER BY random() LIMIT p_rows / 2);
    CALL bench.small_change(p_rows - p_rows / 2, p_users, p_day);
END
$$;
