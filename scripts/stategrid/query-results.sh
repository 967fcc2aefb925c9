#!/usr/bin/env bash
# Prints the warehouse's results (the original example's query-results.sh), after waiting for
# the pipeline to apply everything committed so far:
#
#   bash scripts/stategrid/query-results.sh [--no-sync]
#
#   1. row counts of the source tables and of every ODS, DWD and DWS table
#   2. the newest rows of dwd_power_consumption_detail
#   3. SELECT * FROM dws_region_daily_stats ORDER BY stat_date, region_id
#   4. the top 3 users per day and region (dws_user_ranking, ranking <= 3)
#   5. SELECT * FROM stategrid_ivm.verify('stategrid'): every table against a full recomputation
#   6. the pipeline's state and lag (stategrid_ivm.pipelines)
#
# --no-sync shows the tables as they are now, without waiting (they are always consistent with
# one another: each apply transaction updates ODS, DWD and DWS together).
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SYNC=1
case "${1:-}" in
    "") ;;
    --no-sync) SYNC=0 ;;
    *)
        echo "usage: $0 [--no-sync]" >&2
        exit 2
        ;;
esac

sg_require_pipeline
if [ $SYNC -eq 1 ]; then sg_sync "60 s" || echo "(showing the tables as they are)"; fi

sg_title "1. row counts: sources (the OLTP side) and the warehouse layers"
sgq "$SG_DB" -c "
    SELECT layer, table_name, rows
    FROM (SELECT 1 AS o, 'source' AS layer, 'power_user' AS table_name, (SELECT count(*) FROM power_user) AS rows
          UNION ALL
          SELECT 2, 'source', 'power_consumption', (SELECT count(*) FROM power_consumption)
          UNION ALL
          SELECT 3, CASE WHEN kind = 'ods' THEN 'ODS' WHEN view_name LIKE '%.dwd\_%' THEN 'DWD'
                         WHEN view_name LIKE '%.dws\_%' THEN 'DWS' ELSE kind END,
                 view_name, stategrid_ivm.view_rows(view_name::regclass)
          FROM stategrid_ivm.views WHERE pipeline = '$SG_PIPELINE') t
    ORDER BY o, CASE layer WHEN 'ODS' THEN 1 WHEN 'DWD' THEN 2 ELSE 3 END, table_name"

sg_title "2. the newest rows of the DWD layer: dwd_power_consumption_detail (consumption LEFT JOIN user)"
sgq "$SG_DB" -c "
    SELECT consumption_id, user_id, user_name, usage_type, region_id, region_name, consumption_date,
           consumption_amount, consumption_cost, etl_time
    FROM dwd_power_consumption_detail
    ORDER BY consumption_id DESC
    LIMIT 10"

sg_title "3. DWS: SELECT * FROM dws_region_daily_stats ORDER BY stat_date, region_id"
sgq "$SG_DB" -c "SELECT * FROM dws_region_daily_stats ORDER BY stat_date, region_id"

sg_title "4. DWS: the top 3 users per day and region (dws_user_ranking, ranking <= 3)"
sgq "$SG_DB" -c "
    SELECT stat_date, region_id, region_name,
           string_agg(format('%s. %s %s kWh', ranking, user_name, total_consumption), ', '
                      ORDER BY ranking) AS top_users
    FROM dws_user_ranking
    WHERE ranking <= 3
    GROUP BY stat_date, region_id, region_name
    ORDER BY stat_date, region_id"

sg_title "5. SELECT * FROM stategrid_ivm.verify('$SG_PIPELINE')  (each table against a full recomputation)"
sgq "$SG_DB" -c "SELECT * FROM stategrid_ivm.verify('$SG_PIPELINE')"

sg_title "6. the pipeline: SELECT ... FROM stategrid_ivm.pipelines"
sgq "$SG_DB" -c "
    SELECT name, state, worker_pid, round(lag_seconds::numeric, 3) AS lag_seconds, lag_bytes,
           retained_wal_bytes, transactions_applied, rows_applied, last_error
    FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'"
