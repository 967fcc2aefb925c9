-- The State Grid warehouse of DESIGN.md §1 as add_view calls: ODS -> DWD -> DWS, the intent of
-- the original Flink jobs. Copy and change freely: each view is a plain SELECT.
-- Expects a pipeline :'pipeline' with power_user and power_consumption as sources.

-- DWD: the user dimension, cleaned, phone masked for analysts.
SELECT stategrid_ivm.add_view(:'pipeline', 'dwd_power_user_info', $q$
    SELECT u.user_id,
           COALESCE(u.user_name, '未知用户') AS user_name,
           COALESCE(u.usage_type, '未知') AS usage_type,
           COALESCE(u.region_id, 0) AS region_id,
           COALESCE(u.region_name, '未知地区') AS region_name,
           u.address,
           CASE WHEN length(u.phone) >= 7
                THEN left(u.phone, 3) || '****' || right(u.phone, 4)
                ELSE u.phone END AS phone,
           u.create_time,
           u.update_time,
           now() AS etl_time
    FROM ods_power_user u
$q$);

-- DWD: every reading with its user's attributes; readings of unknown users get defaults.
SELECT stategrid_ivm.add_view(:'pipeline', 'dwd_power_consumption_detail', $q$
    SELECT c.consumption_id,
           c.user_id,
           COALESCE(u.user_name, '未知用户') AS user_name,
           c.consumption_amount,
           c.consumption_cost,
           c.consumption_date,
           COALESCE(u.region_id, 0) AS region_id,
           COALESCE(u.region_name, '未知地区') AS region_name,
           COALESCE(u.usage_type, '未知') AS usage_type,
           now() AS etl_time
    FROM ods_power_consumption c
    LEFT JOIN ods_power_user u ON c.user_id = u.user_id
$q$);

-- DWS: per region and day.
SELECT stategrid_ivm.add_view(:'pipeline', 'dws_region_daily_stats', $q$
    SELECT region_id,
           region_name,
           consumption_date::date AS stat_date,
           SUM(consumption_amount) AS total_consumption,
           SUM(consumption_cost) AS total_cost,
           COUNT(DISTINCT user_id) AS user_count,
           ROUND(AVG(consumption_amount), 2) AS avg_consumption,
           MAX(consumption_amount) AS max_consumption,
           MIN(consumption_amount) AS min_consumption,
           now() AS update_time
    FROM dwd_power_consumption_detail
    GROUP BY region_id, region_name, consumption_date::date
$q$);

-- DWS: each user's daily total, ranked within the region and day.
SELECT stategrid_ivm.add_view(:'pipeline', 'dws_user_ranking', $q$
    SELECT user_id,
           user_name,
           region_id,
           region_name,
           consumption_date::date AS stat_date,
           SUM(consumption_amount) AS total_consumption,
           SUM(consumption_cost) AS total_cost,
           ROW_NUMBER() OVER (PARTITION BY consumption_date::date, region_id
                              ORDER BY SUM(consumption_amount) DESC, user_id) AS ranking,
           now() AS update_time
    FROM dwd_power_consumption_detail
    GROUP BY user_id, user_name, region_id, region_name, consumption_date::date
$q$);
