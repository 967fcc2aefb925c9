#!/usr/bin/env bash
# Catch-up benchmark of a stategrid_ivm pipeline (issue 3, deliverable 9).
#
#   bash bench/catchup.sh [--rows N] [--quick] [--txns T] [--users U] [--port P] [--keep]
#
# In its own throw-away cluster (as user postgres when run as root; port 54361 by default):
#  1. the State Grid source tables, U users, a pipeline over power_user and power_consumption,
#     started (backfill) and then paused; a test_decoding slot created at that same point;
#  2. N readings loaded into power_consumption in T transactions (default 1,000,000 in 10);
#  3. (a) decode-only baseline: SELECT count(*) FROM pg_logical_slot_peek_changes() on the
#         test_decoding slot, over exactly the WAL of the load;
#     (b) catch-up: resume_pipeline, then sync(); the time from resume to sync's return, while
#         the worker's RSS is sampled every 100 ms (VmRSS, and RssAnon = its private memory;
#         VmRSS also counts the shared buffers the worker touched);
#     and the CPU time of each: the peek's backend, the pipeline's worker (/proc/PID/stat);
#  4. checks that each mirror equals its source (EXCEPT ALL both ways, and counts).
# Prints seconds, rows/s, the ratio (b)/(a) (elapsed and CPU) and the peak RSS. Timing never
# fails the run: the exit status is non-zero only if the pipeline's result is wrong or a step
# could not run.
# --quick: 50,000 readings (a CI smoke run).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ROWS=1000000
TXNS=10
USERS=5000
PORT=54361
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS=$2; shift 2 ;;
        --txns) TXNS=$2; shift 2 ;;
        --users) USERS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --quick) ROWS=50000; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ "$ROWS" -lt "$TXNS" ]; then TXNS=1; fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/sgivm-bench.XXXXXX")
chmod 755 "$DIR"
PGD=$DIR/pg   # data/, server.log and the socket, owned by the cluster owner
sg_mkdir_owned "$PGD"
chmod 755 "$PGD"
DATA=$PGD/data
LOG=$PGD/server.log
SAMPLER_PID=""

cleanup() {
    if [ -n "$SAMPLER_PID" ]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
    if [ -f "$DATA/postmaster.pid" ]; then sg_pg_stop "$DATA" immediate || true; fi
    if [ "$KEEP" -eq 1 ]; then
        echo "kept $DIR (server log: $LOG; stopped)"
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT

# psql as the cluster owner; -At: bare values
sql() { sg_as_owner_in_root "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PGD" -p "$PORT" -U postgres -d postgres "$@"; }
now() { date +%s.%N; }
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
per_sec() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }

echo "== cluster in $DIR, port $PORT"
sg_initdb "$DATA" "max_wal_size = 4GB
log_min_messages = warning"
sg_pg_start "$DATA" "$PORT" "$PGD" "$LOG" ""

echo "== schema, $USERS users, pipeline 'bench' (started, then paused)"
# a copy the cluster owner can read, whatever the checkout's permissions
SCHEMA=$DIR/schema.sql
cp "$ROOT/examples/stategrid/schema.sql" "$SCHEMA"
chmod 644 "$SCHEMA"
sql -c "CREATE EXTENSION stategrid_ivm"
sql -f "$SCHEMA"
sql -c "INSERT INTO power_user (user_id, user_name, usage_type, region_id, region_name, address, phone)
        SELECT i, '用户' || i, (ARRAY['居民', '商业', '工业'])[1 + i % 3], 1 + i % 20, '地区' || (1 + i % 20),
               'address ' || i, '138' || lpad(i::text, 8, '0')
        FROM generate_series(1, $USERS) i"
sql -c "SELECT stategrid_ivm.create_pipeline('bench')" >/dev/null
sql -c "SELECT stategrid_ivm.add_source('bench', 'power_user')" >/dev/null
sql -c "SELECT stategrid_ivm.add_source('bench', 'power_consumption')" >/dev/null
sql -c "SELECT stategrid_ivm.start_pipeline('bench')" >/dev/null
sql -c "SELECT stategrid_ivm.sync('bench', '300 s')" >/dev/null
sql -c "SELECT stategrid_ivm.pause_pipeline('bench')" >/dev/null
for _ in $(seq 1 300); do
    [ "$(sql -c "SELECT worker_pid IS NULL FROM stategrid_ivm.pipelines WHERE name = 'bench'")" = t ] && break
    sleep 0.1
done
# the decode-only baseline starts at the same point
sql -c "SELECT pg_create_logical_replication_slot('bench_decode', 'test_decoding')" >/dev/null

echo "== loading $ROWS readings in $TXNS transactions"
LSN0=$(sql -c "SELECT pg_current_wal_lsn()")
T0=$(now)
per=$(( (ROWS + TXNS - 1) / TXNS ))
from=1
while [ "$from" -le "$ROWS" ]; do
    to=$(( from + per - 1 )); [ "$to" -le "$ROWS" ] || to=$ROWS
    sql -c "INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                           meter_reading_before, meter_reading_after, remark)
            SELECT 1 + g % $USERS, (g % 1000) / 10.0, (g % 1000) / 20.0,
                   timestamp '2024-01-01' + (g % 525600) * interval '1 minute',
                   g % 10000, g % 10000 + (g % 1000) / 10.0, 'reading ' || g
            FROM generate_series($from, $to) g"
    from=$(( to + 1 ))
done
T1=$(now)
LOAD_S=$(elapsed "$T0" "$T1")
WAL_BYTES=$(sql -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$LSN0')")
echo "   loaded in $LOAD_S s, $((WAL_BYTES / 1048576)) MB of WAL"
sql -c "CHECKPOINT"

echo "== (a) decode only: pg_logical_slot_peek_changes on the test_decoding slot"
# CPU time of the decoding backend itself (utime + stime of /proc/self/stat, in clock ticks)
CPU_SQL="SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint FROM pg_read_file('/proc/self/stat') s"
T0=$(now)
OUT=$(sql -c "$CPU_SQL" -c "SELECT count(*) FROM pg_logical_slot_peek_changes('bench_decode', NULL, NULL)" -c "$CPU_SQL")
T1=$(now)
DECODE_S=$(elapsed "$T0" "$T1")
read -r CPU_A0 DECODED CPU_A1 <<<"${OUT//$'\n'/ }"
DECODE_CPU=$(awk -v a="$CPU_A0" -v b="$CPU_A1" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }')
echo "   $DECODED messages in $DECODE_S s ($DECODE_CPU s of CPU)"

echo "== (b) catch-up: resume_pipeline, then sync"
SAMPLES=$DIR/rss.samples
PHASES=$DIR/phase.samples
: >"$SAMPLES"
: >"$PHASES"
(
    # the worker's process title is "postgres: stategrid_ivm pipeline bench"
    while :; do
        for pid in $(pgrep -f "^postgres: stategrid_ivm pipeline bench" 2>/dev/null || true); do
            rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
            # CPU: utime + stime (fields 14 and 15; the process name has no blank)
            cpu=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || true)
            [ -n "$rss" ] && echo "$pid $rss ${anon:-0} $(date +%s.%N) ${cpu:-0}" >>"$SAMPLES"
        done
        # what it is doing (its pg_stat_activity query: decoding / applying ...)
        sql -c "SELECT coalesce(nullif(query, ''), state) FROM pg_stat_activity
                WHERE backend_type = 'stategrid_ivm worker' AND application_name LIKE '%bench'" \
            >>"$PHASES" 2>/dev/null || true
        sleep 0.1
    done
) &
SAMPLER_PID=$!
T0=$(now)
sql -c "SELECT stategrid_ivm.resume_pipeline('bench')" >/dev/null
sql -c "SELECT stategrid_ivm.sync('bench', '3600 s')" >/dev/null
T1=$(now)
CATCHUP_S=$(elapsed "$T0" "$T1")
sleep 0.2
kill "$SAMPLER_PID" 2>/dev/null || true
wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=""
PEAK_RSS_KB=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$SAMPLES")
PEAK_ANON_KB=$(awk 'BEGIN { m = 0 } $3 > m { m = $3 } END { print m }' "$SAMPLES")
NSAMPLES=$(wc -l <"$SAMPLES")
# the worker was started by the resume: its CPU time so far is that of the catch-up
CATCHUP_CPU=$(awk -v hz="$HZ" '{ c[$1] = $5 } END { t = 0; for (p in c) t += c[p]; printf "%.2f", t / hz }' "$SAMPLES")
FIRST=$(awk 'NR == 1 { print $4 }' "$SAMPLES")
START_S=$([ -n "$FIRST" ] && elapsed "$T0" "$FIRST" || echo "-")
echo "   caught up in $CATCHUP_S s, $CATCHUP_CPU s of worker CPU ($NSAMPLES samples; the worker was up $START_S s after resume_pipeline)"

if [ -s "$PHASES" ]; then
    echo "   what the worker was doing (share of $(wc -l <"$PHASES") samples):"
    sort "$PHASES" | uniq -c | sort -rn | awk -v n="$(wc -l <"$PHASES")" '{ c = $1; $1 = ""; printf "   %5.1f%% %s\n", 100 * c / n, $0 }'
fi

echo "== checking the mirrors"
WRONG=0
for t in power_user power_consumption; do
    res=$(sql -c "SELECT (SELECT count(*) FROM (SELECT * FROM $t EXCEPT ALL SELECT * FROM ods_$t) a) || ' ' ||
                         (SELECT count(*) FROM (SELECT * FROM ods_$t EXCEPT ALL SELECT * FROM $t) b) || ' ' ||
                         (SELECT count(*) FROM $t) || ' ' || (SELECT count(*) FROM ods_$t)")
    read -r missing extra nsrc nods <<<"$res"
    if [ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$nsrc" = "$nods" ]; then
        echo "   ods_$t equals $t ($nods rows)"
    else
        echo "   WRONG: ods_$t: $missing rows missing, $extra extra, $nods rows vs $nsrc in $t"
        WRONG=1
    fi
done
STATUS=$(sql -c "SELECT state || ', ' || transactions_applied || ' transactions, ' || rows_applied || ' rows applied'
                 || coalesce(', last error: ' || last_error, '') FROM stategrid_ivm.pipelines WHERE name = 'bench'")
echo "   pipeline: $STATUS"
sql -c "SELECT pg_drop_replication_slot('bench_decode')" >/dev/null

RATIO=$(awk -v b="$CATCHUP_S" -v a="$DECODE_S" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
CPU_RATIO=$(awk -v b="$CATCHUP_CPU" -v a="$DECODE_CPU" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }')
PEAK_MB=$(awk -v k="$PEAK_RSS_KB" 'BEGIN { printf "%.0f", k / 1024 }')
ANON_MB=$(awk -v k="$PEAK_ANON_KB" 'BEGIN { printf "%.0f", k / 1024 }')
echo
echo "== results ($ROWS readings in $TXNS transactions, $(nproc) cores, PostgreSQL $(sql -c 'SHOW server_version'))"
printf '%-44s %10s s %12s rows/s\n' "load (10 INSERT ... SELECT transactions)" "$LOAD_S" "$(per_sec "$ROWS" "$LOAD_S")"
printf '%-44s %10s s %12s rows/s\n' "(a) decode only, test_decoding peek" "$DECODE_S" "$(per_sec "$ROWS" "$DECODE_S")"
printf '%-44s %10s s %12s rows/s\n' "(b) pipeline catch-up, resume -> sync" "$CATCHUP_S" "$(per_sec "$ROWS" "$CATCHUP_S")"
printf '%-44s %10s\n' "ratio (b)/(a), elapsed time" "$RATIO"
printf '%-44s %10s s / %s s = %s\n' "CPU time (b) worker / (a) decoding backend" "$CATCHUP_CPU" "$DECODE_CPU" "$CPU_RATIO"
printf '%-44s %10s MB\n' "worker peak RSS (VmRSS)" "$PEAK_MB"
printf '%-44s %10s MB\n' "worker peak private memory (RssAnon)" "$ANON_MB"
echo "| $ROWS | $TXNS | $LOAD_S | $DECODE_S | $CATCHUP_S | $(per_sec "$ROWS" "$CATCHUP_S") | $RATIO | $DECODE_CPU | $CATCHUP_CPU | $CPU_RATIO | $PEAK_MB | $ANON_MB |"
if [ "$WRONG" -ne 0 ]; then
    echo "FAILED: the mirrors do not equal their sources" >&2
    KEEP=1
    exit 1
fi
