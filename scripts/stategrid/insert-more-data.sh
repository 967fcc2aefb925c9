#!/usr/bin/env bash
# Writes more State Grid data into the source tables (the original example's
# insert-test-data.sh), then waits for the warehouse and shows what changed:
#
#   bash scripts/stategrid/insert-more-data.sh [USERS [DAYS [START_DATE]]]
#
#   USERS        new users (default 10), across the 31 provincial regions, with 居民/商业/工业/农业
#                usage types and their tariffs
#   DAYS         days of readings for each new user, one a day (default 3)
#   START_DATE   the first day (default: the first day that already has readings, else 2024-03-01),
#                so the new readings land on the days the warehouse already shows
#
# Transactions (each a separate commit, as OLTP writers would):
#   1. SELECT stategrid_ivm.generate_sample_data(users => USERS, days => DAYS, start_date => ...)
#   2. SELECT stategrid_ivm.generate_follow_up_changes(8): corrected readings, users moving to
#      another region, late readings for past days, erroneous readings deleted
# Then stategrid_ivm.sync('stategrid') and the totals per day before and after.
# Random data each run (a fresh seed); bigger loads: USERS=100000 DAYS=10 is a million readings.
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

USERS=${1:-10}
DAYS=${2:-3}
START=${3:-}
case "$USERS$DAYS" in
    *[!0-9]*)
        echo "usage: $0 [USERS [DAYS [START_DATE]]]  (USERS and DAYS are numbers)" >&2
        exit 2
        ;;
esac

sg_require_pipeline
if [ -z "$START" ]; then
    START=$(sg_value "$SG_DB" "SELECT coalesce(min(consumption_date)::date, date '2024-03-01') FROM power_consumption")
fi

totals() {
    sg_value "$SG_DB" "SELECT stat_date || ': ' || sum(total_consumption) || ' kWh, ' || sum(user_count) || ' user-days'
                       FROM dws_region_daily_stats GROUP BY stat_date ORDER BY stat_date" | sed 's/^/  /'
}

echo "DWS totals per day before (dws_region_daily_stats):"
totals

sg_title "transaction 1: $USERS new users with $DAYS days of readings from $START"
sgq "$SG_DB" -At -c "SELECT 'inserted ' || stategrid_ivm.generate_sample_data(users => $USERS, days => $DAYS,
                                   start_date => '$START', seed => random()) || ' readings'"
sg_title "transaction 2: follow-up changes (corrections, moves, late readings, deletions)"
sgq "$SG_DB" -At -c "SELECT stategrid_ivm.generate_follow_up_changes(8, seed => random()) || ' changes'"

sg_title "the warehouse"
sg_sync "300 s"
echo "DWS totals per day after:"
totals
echo
echo "more:  bash scripts/stategrid/query-results.sh"
