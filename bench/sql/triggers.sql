-- Baseline "hand-written statement triggers": what a developer writes to keep the warehouse's
-- DWD and DWS tables current inside the writers' transactions, without the extension. Only the
-- writer-overhead scenario's load is covered (readings inserted into power_consumption: an
-- AFTER INSERT ... REFERENCING NEW TABLE statement trigger); a complete solution would also need
-- UPDATE and DELETE triggers on both source tables. Installed by bench/run into each benchmark
-- database (schema bench_trigger); the trigger itself is created only by bench.trigger_enable().
CREATE SCHEMA IF NOT EXISTS bench;
CREATE SCHEMA IF NOT EXISTS bench_trigger;

-- The warehouse's definitions over the source tables (what the triggers must keep equal).
CREATE OR REPLACE VIEW bench_trigger.detail_def AS
SELECT c.consumption_id, c.user_id,
       COALESCE(u.user_name, '未知用户')::varchar AS user_name,
       c.consumption_amount, c.consumption_cost, c.consumption_date,
       COALESCE(u.region_id, 0) AS region_id,
       COALESCE(u.region_name, '未知地区')::varchar AS region_name,
       COALESCE(u.usage_type, '未知')::varchar AS usage_type
FROM public.power_consumption c LEFT JOIN public.power_user u ON u.user_id = c.user_id;

CREATE OR REPLACE VIEW bench_trigger.region_def AS
SELECT region_id, region_name, consumption_date::date AS stat_date,
       sum(consumption_amount) AS total_consumption, sum(consumption_cost) AS total_cost,
       count(DISTINCT user_id) AS user_count, round(avg(consumption_amount), 2) AS avg_consumption,
       max(consumption_amount) AS max_consumption, min(consumption_amount) AS min_consumption,
       count(consumption_amount) AS reading_count
FROM bench_trigger.detail_def
GROUP BY region_id, region_name, consumption_date::date;

CREATE OR REPLACE VIEW bench_trigger.ranking_def AS
SELECT user_id, user_name, region_id, region_name, consumption_date::date AS stat_date,
       sum(consumption_amount) AS total_consumption, sum(consumption_cost) AS total_cost,
       row_number() OVER (PARTITION BY consumption_date::date, region_id
                          ORDER BY sum(consumption_amount) DESC, user_id) AS ranking
FROM bench_trigger.detail_def
GROUP BY user_id, user_name, region_id, region_name, consumption_date::date;

CREATE TABLE IF NOT EXISTS bench_trigger.dwd_power_consumption_detail (
    consumption_id bigint PRIMARY KEY, user_id bigint, user_name varchar, consumption_amount numeric(10,2),
    consumption_cost numeric(10,2), consumption_date timestamp, region_id int, region_name varchar,
    usage_type varchar, etl_time timestamptz);
CREATE TABLE IF NOT EXISTS bench_trigger.dws_region_daily_stats (
    region_id int, region_name varchar, stat_date date, total_consumption numeric, total_cost numeric,
    user_count bigint, avg_consumption numeric, max_consumption numeric, min_consumption numeric,
    reading_count bigint,           -- kept for the average
    update_time timestamptz,
    UNIQUE (region_id, region_name, stat_date));
CREATE TABLE IF NOT EXISTS bench_trigger.dws_user_ranking (
    user_id bigint, user_name varchar, region_id int, region_name varchar, stat_date date,
    total_consumption numeric, total_cost numeric, ranking bigint, update_time timestamptz,
    UNIQUE (user_id, user_name, region_id, region_name, stat_date));
CREATE INDEX IF NOT EXISTS dws_user_ranking_partition ON bench_trigger.dws_user_ranking (stat_date, region_id);

-- Fills the three tables from the sources (before the triggers take over).
CREATE OR REPLACE FUNCTION bench.trigger_populate() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE bench_trigger.dwd_power_consumption_detail, bench_trigger.dws_region_daily_stats,
             bench_trigger.dws_user_ranking;
    INSERT INTO bench_trigger.dwd_power_consumption_detail SELECT d.*, now() FROM bench_trigger.detail_def d;
    INSERT INTO bench_trigger.dws_region_daily_stats
    SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count, avg_consumption,
           max_consumption, min_consumption, reading_count, now()
    FROM bench_trigger.region_def;
    INSERT INTO bench_trigger.dws_user_ranking SELECT r.*, now() FROM bench_trigger.ranking_def r;
    ANALYZE bench_trigger.dwd_power_consumption_detail, bench_trigger.dws_region_daily_stats,
            bench_trigger.dws_user_ranking;
END
$$;

-- The trigger: inserts only. Order matters with concurrent writers: the region-day row is
-- locked first (upsert), which serialises writers of the same region and day before they touch
-- that day's ranking partition (otherwise two writers re-ranking one partition deadlock).
CREATE OR REPLACE FUNCTION bench_trigger.on_readings_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bench_trigger.dwd_power_consumption_detail
    SELECT c.consumption_id, c.user_id, COALESCE(u.user_name, '未知用户'), c.consumption_amount,
           c.consumption_cost, c.consumption_date, COALESCE(u.region_id, 0),
           COALESCE(u.region_name, '未知地区'), COALESCE(u.usage_type, '未知'), now()
    FROM new_rows c LEFT JOIN public.power_user u ON u.user_id = c.user_id;

    INSERT INTO bench_trigger.dws_region_daily_stats AS s
    SELECT COALESCE(u.region_id, 0), COALESCE(u.region_name, '未知地区'), c.consumption_date::date,
           sum(c.consumption_amount), sum(c.consumption_cost), 0, round(avg(c.consumption_amount), 2),
           max(c.consumption_amount), min(c.consumption_amount), count(c.consumption_amount), now()
    FROM new_rows c LEFT JOIN public.power_user u ON u.user_id = c.user_id
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (region_id, region_name, stat_date) DO UPDATE
    SET total_consumption = s.total_consumption + excluded.total_consumption,
        total_cost = s.total_cost + excluded.total_cost,
        reading_count = s.reading_count + excluded.reading_count,
        avg_consumption = round((s.total_consumption + excluded.total_consumption)
                                / nullif(s.reading_count + excluded.reading_count, 0), 2),
        max_consumption = greatest(s.max_consumption, excluded.max_consumption),
        min_consumption = least(s.min_consumption, excluded.min_consumption),
        update_time = now();

    INSERT INTO bench_trigger.dws_user_ranking AS r
    SELECT c.user_id, COALESCE(u.user_name, '未知用户'), COALESCE(u.region_id, 0),
           COALESCE(u.region_name, '未知地区'), c.consumption_date::date,
           sum(c.consumption_amount), sum(c.consumption_cost), NULL, now()
    FROM new_rows c LEFT JOIN public.power_user u ON u.user_id = c.user_id
    GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (user_id, user_name, region_id, region_name, stat_date) DO UPDATE
    SET total_consumption = r.total_consumption + excluded.total_consumption,
        total_cost = r.total_cost + excluded.total_cost,
        update_time = now();

    -- distinct users of the touched region-days, and their ranking partitions: only the rows
    -- whose rank changed are written
    UPDATE bench_trigger.dws_region_daily_stats s
    SET user_count = (SELECT count(*) FROM bench_trigger.dws_user_ranking r
                      WHERE r.stat_date = s.stat_date AND r.region_id = s.region_id
                        AND r.region_name = s.region_name)
    WHERE (s.region_id, s.region_name, s.stat_date) IN
          (SELECT COALESCE(u.region_id, 0), COALESCE(u.region_name, '未知地区'), c.consumption_date::date
           FROM new_rows c LEFT JOIN public.power_user u ON u.user_id = c.user_id);

    UPDATE bench_trigger.dws_user_ranking r
    SET ranking = x.rn
    FROM (SELECT user_id, user_name, region_id, region_name, stat_date,
                 row_number() OVER (PARTITION BY stat_date, region_id
                                    ORDER BY total_consumption DESC, user_id) AS rn
          FROM bench_trigger.dws_user_ranking
          WHERE (stat_date, region_id) IN
                (SELECT c.consumption_date::date, COALESCE(u.region_id, 0)
                 FROM new_rows c LEFT JOIN public.power_user u ON u.user_id = c.user_id)) x
    WHERE r.user_id = x.user_id AND r.user_name = x.user_name AND r.region_id = x.region_id
      AND r.region_name = x.region_name AND r.stat_date = x.stat_date
      AND r.ranking IS DISTINCT FROM x.rn;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION bench.trigger_enable() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TRIGGER IF EXISTS bench_readings_inserted ON public.power_consumption;
    CREATE TRIGGER bench_readings_inserted AFTER INSERT ON public.power_consumption
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION bench_trigger.on_readings_inserted();
END
$$;

CREATE OR REPLACE FUNCTION bench.trigger_disable() RETURNS void
LANGUAGE sql AS $$ DROP TRIGGER IF EXISTS bench_readings_inserted ON public.power_consumption $$;

-- Rows in which the trigger-kept tables differ from their definitions (0 = correct); audit
-- columns left out.
CREATE OR REPLACE FUNCTION bench.trigger_check() RETURNS bigint
LANGUAGE sql AS $$
SELECT (SELECT count(*) FROM (
            (SELECT consumption_id, user_id, user_name, consumption_amount, consumption_cost, consumption_date,
                    region_id, region_name, usage_type FROM bench_trigger.dwd_power_consumption_detail
             EXCEPT ALL SELECT * FROM bench_trigger.detail_def)
            UNION ALL
            (SELECT * FROM bench_trigger.detail_def
             EXCEPT ALL SELECT consumption_id, user_id, user_name, consumption_amount, consumption_cost,
                               consumption_date, region_id, region_name, usage_type
                        FROM bench_trigger.dwd_power_consumption_detail)) d)
     + (SELECT count(*) FROM (
            (SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count, avg_consumption,
                    max_consumption, min_consumption, reading_count FROM bench_trigger.dws_region_daily_stats
             EXCEPT ALL SELECT * FROM bench_trigger.region_def)
            UNION ALL
            (SELECT * FROM bench_trigger.region_def
             EXCEPT ALL SELECT region_id, region_name, stat_date, total_consumption, total_cost, user_count,
                               avg_consumption, max_consumption, min_consumption, reading_count
                        FROM bench_trigger.dws_region_daily_stats)) s)
     + (SELECT count(*) FROM (
            (SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption, total_cost, ranking
             FROM bench_trigger.dws_user_ranking
             EXCEPT ALL SELECT * FROM bench_trigger.ranking_def)
            UNION ALL
            (SELECT * FROM bench_trigger.ranking_def
             EXCEPT ALL SELECT user_id, user_name, region_id, region_name, stat_date, total_consumption,
                               total_cost, ranking FROM bench_trigger.dws_user_ranking)) r)
$$;
