#!/usr/bin/env bash
# The warehouse at work, live in the terminal (what users of the original example watched in the
# Flink UI): keeps inserting meter readings at a steady rate and prints, every second, what the
# pipeline applied and what the DWS layer shows.
#
#   bash scripts/stategrid/live.sh [--rate N] [--seconds S]
#
#   --rate N      readings per second (default 200), committed ten times a second
#   --seconds S   how long (default 30); Ctrl-C stops earlier
#
# The readings come from CALL stategrid_ivm.simulate_readings(N, S), run in the background on
# its own connection; they are dated now, so they show up under today's date. Each line:
#   time        wall clock
#   state       the pipeline's state (stategrid_ivm.pipelines.state)
#   rows        rows applied so far (pipelines.rows_applied) and rows/s over the last second
#   txns        source transactions applied (pipelines.transactions_applied)
#   lag_s       lag_seconds: now minus the commit time of the oldest source transaction not yet
#               applied (0 when caught up)
#   lag_bytes   WAL between the pipeline's position and the end of the WAL
#   today_kWh   today's total consumption over all regions (dws_region_daily_stats)
#   readings    today's readings in power_consumption (the source) / in dwd_power_consumption_detail
#   top regions today's top 3 regions by consumption: name, kWh, readings (DWS and DWD read in
#               the same snapshot: they always agree)
# At the end (or on Ctrl-C) the simulator is stopped, the pipeline synced and verified.
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RATE=200
SECONDS_TO_RUN=30
usage() { echo "usage: $0 [--rate N] [--seconds S]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --rate) RATE=${2:-}; shift 2 || usage ;;
        --rate=*) RATE=${1#--rate=}; shift ;;
        --seconds) SECONDS_TO_RUN=${2:-}; shift 2 || usage ;;
        --seconds=*) SECONDS_TO_RUN=${1#--seconds=}; shift ;;
        -h | --help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) usage ;;
    esac
done
case "$RATE$SECONDS_TO_RUN" in *[!0-9]* | "") usage ;; esac
if [ "$RATE" -eq 0 ] || [ "$SECONDS_TO_RUN" -eq 0 ]; then usage; fi

sg_require_pipeline
state=$(sg_value "$SG_DB" "SELECT state FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'")
if [ "$state" != running ]; then
    echo "pipeline $SG_PIPELINE is $state; the live view will show it not applying (bash scripts/stategrid/status.sh explains)" >&2
fi
if [ "$(sg_value "$SG_DB" "SELECT count(*) FROM (SELECT 1 FROM power_user LIMIT 1) u")" = 0 ]; then
    echo "power_user is empty: add users first with  bash scripts/stategrid/insert-more-data.sh" >&2
    exit 1
fi

# The simulator's connection is named, so that it can be cancelled; if this script dies, the
# server notices the lost client within a second (client_connection_check_interval) and stops.
SIM_APP="stategrid_ivm live $$"
SIM_LOG=$(mktemp "${TMPDIR:-/tmp}/sgivm-live.XXXXXX")
SIM_PID=""
STOPPING=0

stop_simulator() {
    [ -n "$SIM_PID" ] || return 0
    sg_value "$SG_DB" "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '$SIM_APP'" >/dev/null 2>&1 || true
    wait "$SIM_PID" 2>/dev/null || true
    SIM_PID=""
}
cleanup() {
    stop_simulator
    rm -f "$SIM_LOG"
}
trap cleanup EXIT
trap 'STOPPING=1' INT TERM

"${SG_PSQL_CMD[@]}" -X -q -d "dbname=$SG_DB application_name='$SIM_APP' options='-c client_connection_check_interval=1000'" \
    -c "CALL stategrid_ivm.simulate_readings($RATE, $SECONDS_TO_RUN)" </dev/null >"$SIM_LOG" 2>&1 &
SIM_PID=$!

echo "inserting about $RATE readings/s for $SECONDS_TO_RUN s into power_consumption (CALL stategrid_ivm.simulate_readings($RATE, $SECONDS_TO_RUN)); Ctrl-C stops"
HEADER=$(printf '%-8s %-8s %9s %7s %6s %6s %9s %11s %13s  %s' \
    time state rows rows/s txns lag_s lag_bytes today_kWh readings "top regions today: kWh (readings)")

LINE_SQL="
    SELECT concat_ws('|', to_char(clock_timestamp(), 'HH24:MI:SS'), p.state, p.rows_applied,
                     p.transactions_applied, round(p.lag_seconds::numeric, 2), coalesce(p.lag_bytes, 0),
                     (SELECT coalesce(sum(total_consumption), 0) FROM dws_region_daily_stats
                      WHERE stat_date = current_date),
                     (SELECT count(*) FROM power_consumption WHERE consumption_date >= current_date),
                     (SELECT count(*) FROM dwd_power_consumption_detail WHERE consumption_date >= current_date),
                     (SELECT string_agg(format('%s %s (%s)', region_name, total_consumption, n), ', '
                                        ORDER BY total_consumption DESC)
                      FROM (SELECT s.region_name, s.total_consumption,
                                   (SELECT count(*) FROM dwd_power_consumption_detail d
                                    WHERE d.region_id = s.region_id AND d.consumption_date >= current_date) AS n
                            FROM dws_region_daily_stats s WHERE s.stat_date = current_date
                            ORDER BY s.total_consumption DESC LIMIT 3) t))
    FROM stategrid_ivm.pipelines p WHERE p.name = '$SG_PIPELINE'"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
prev_rows=""
n=0
next_ms=$(now_ms)
while :; do
    line=$(sg_value "$SG_DB" "$LINE_SQL" 2>/dev/null) || line=""
    if [ -n "$line" ]; then
        IFS='|' read -r t st rows txns lag lagb kwh src dwd top <<<"$line"
        rate="-"
        [ -z "$prev_rows" ] || rate=$((rows - prev_rows))
        prev_rows=$rows
        if [ $((n % 20)) -eq 0 ]; then echo "$HEADER"; fi
        n=$((n + 1))
        printf '%-8s %-8s %9s %7s %6s %6s %9s %11s %13s  %s\n' \
            "$t" "$st" "$rows" "$rate" "$txns" "$lag" "$lagb" "$kwh" "$src/$dwd" "$top"
    fi
    if [ $STOPPING -eq 1 ] || ! kill -0 "$SIM_PID" 2>/dev/null; then break; fi
    # one line a second, on the second
    next_ms=$((next_ms + 1000))
    wait_ms=$((next_ms - $(now_ms)))
    if [ $wait_ms -le 0 ]; then next_ms=$(now_ms); wait_ms=0; fi
    sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))" || true
done

if [ $STOPPING -eq 1 ]; then echo "stopping the simulator (Ctrl-C)"; fi
stop_simulator
if grep -qv -e 'canceling statement due to user request' -e '^Cancel request sent' -e '^CONTEXT' -e '^PL/pgSQL' -e '^$' "$SIM_LOG"; then
    echo "the simulator said:"
    grep -v '^$' "$SIM_LOG" | head -n 10
fi
trap - INT TERM

sg_title "after the last reading"
sg_sync "120 s" || exit 1
line=$(sg_value "$SG_DB" "$LINE_SQL")
IFS='|' read -r t st rows txns lag lagb kwh src dwd top <<<"$line"
echo "$HEADER"
printf '%-8s %-8s %9s %7s %6s %6s %9s %11s %13s  %s\n' "$t" "$st" "$rows" "-" "$txns" "$lag" "$lagb" "$kwh" "$src/$dwd" "$top"
sg_title "SELECT * FROM stategrid_ivm.verify('$SG_PIPELINE')"
sgq "$SG_DB" -c "SELECT * FROM stategrid_ivm.verify('$SG_PIPELINE')"
