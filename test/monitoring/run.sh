#!/usr/bin/env bash
# Tests of monitoring/ with the real programs of Debian's packages: promtool (prometheus) checks
# the alerting rules and runs their unit tests; prometheus-postgres-exporter runs the query file
# against a cluster of its own with the State Grid pipeline, and its /metrics is read with curl.
#
#   bash test/monitoring/run.sh
#
# Needs the extension installed into $PG_BINDIR's PostgreSQL (scripts/build-install.sh). The
# cluster: scripts/lib.sh's settings, unix socket only, port $SGIVM_TEST_PORT (default 54331),
# removed at the end. The exporter listens on 127.0.0.1, on the first free port from
# $SGIVM_EXPORTER_PORT (default: the cluster's port + 1000), never on the packaged service's 9187.
# Prints one "ok N - ..." / "not ok N - ..." line per check, then "N passed, N failed"; exits
# non-zero if a check failed. Run by scripts/test.sh (suite "monitoring").
# shellcheck disable=SC2317  # the checks' functions run through check(), which shellcheck cannot see
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$SG_ROOT" || exit 1

PORT=${SGIVM_TEST_PORT:-54331}
PROMTOOL=${SGIVM_PROMTOOL:-/usr/bin/promtool}
EXPORTER=${SGIVM_EXPORTER:-/usr/bin/prometheus-postgres-exporter}
QUERIES=${SGIVM_QUERIES:-$SG_ROOT/monitoring/queries.yaml}
DB=stategrid
MONITOR=sgivm_monitor   # the exporter's role: LOGIN and pg_monitor, no superuser
PIPE=stategrid

N=0
PASS=0
FAIL=0
# check DESCRIPTION COMMAND...: one numbered check
check() {
    local what=$1
    shift
    N=$((N + 1))
    if "$@"; then
        echo "ok $N - $what"
        PASS=$((PASS + 1))
    else
        echo "not ok $N - $what"
        FAIL=$((FAIL + 1))
    fi
}

finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
    exit
}

# ---- the alerting rules -------------------------------------------------------------------------
check "promtool check rules monitoring/alerts.yml" "$PROMTOOL" check rules monitoring/alerts.yml
check "promtool test rules monitoring/alerts_test.yml" "$PROMTOOL" test rules monitoring/alerts_test.yml
# Every alert has unit tests (at least one time where it must fire and one where it must not):
# its name in two or more alert_rule_test entries.
while read -r alert; do
    check "alert $alert has unit tests" \
        test "$(grep -cE "^ *alertname: $alert\$" monitoring/alerts_test.yml)" -ge 2
done < <(sed -nE 's/^ *- alert: ([A-Za-z]+)$/\1/p' monitoring/alerts.yml)

# ---- a cluster with the State Grid pipeline ----------------------------------------------------
if sg_is_root; then TMP_BASE=/tmp; else TMP_BASE=${TMPDIR:-/tmp}; fi
TMP=$(mktemp -d "$TMP_BASE/sgivm-monitoring.XXXXXX")
chmod 755 "$TMP"
EXPORTER_PID=""
cleanup() {
    if [ -n "$EXPORTER_PID" ]; then kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null; fi
    if [ -f "$TMP/pg/data/postmaster.pid" ]; then sg_pg_stop "$TMP/pg/data" immediate || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

sg_mkdir_owned "$TMP/pg"
chmod 755 "$TMP/pg"   # the exporter (this user) reaches the socket in it
if ! { sg_initdb "$TMP/pg/data" "fsync = off
log_min_messages = warning" && sg_pg_start "$TMP/pg/data" "$PORT" "$TMP/pg" "$TMP/pg/server.log" ""; }; then
    check "cluster with the extension's settings starts" false
    finish
fi

# psql as the superuser (-X: no psqlrc; -At: bare values; stops at the first error)
sql() { "$PG_BINDIR/psql" -X -At -v ON_ERROR_STOP=1 -h "$TMP/pg" -p "$PORT" -U postgres "$@" </dev/null; }

setup() {
    sql -d postgres -q -c "CREATE DATABASE $DB" -c "CREATE ROLE $MONITOR LOGIN IN ROLE pg_monitor" &&
        sql -d "$DB" -q -f examples/stategrid/schema.sql &&
        sql -d "$DB" -q -c 'CREATE EXTENSION stategrid_ivm' \
            -c 'SELECT stategrid_ivm.generate_sample_data()' \
            -c "SELECT stategrid_ivm.create_stategrid_pipeline('$PIPE')" \
            -c "SELECT stategrid_ivm.sync('$PIPE')" \
            -c 'SELECT stategrid_ivm.generate_follow_up_changes()' \
            -c "SELECT stategrid_ivm.sync('$PIPE')" \
            -c "GRANT SELECT ON public.ods_power_user TO $MONITOR" >/dev/null
}
if ! check "database $DB with the State Grid pipeline, source rows applied" setup; then
    tail -n 30 "$TMP/pg/server.log"
    finish
fi

# ---- the exporter -------------------------------------------------------------------------------
# Something answers on 127.0.0.1:$1 (bash's /dev/tcp).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts the exporter on the first free port from $1; sets EXPORTER_PID and URL. It also finds the
# database postgres (--auto-discover-databases), where the queries must not run (master: true).
start_exporter() {
    local p=$1 tries=0 i
    while [ "$tries" -lt 20 ]; do
        if ! port_busy "$p"; then
            DATA_SOURCE_NAME="host=$TMP/pg port=$PORT user=$MONITOR dbname=$DB sslmode=disable" \
                "$EXPORTER" --web.listen-address="127.0.0.1:$p" --extend.query-path="$QUERIES" \
                --auto-discover-databases \
                --log.level=warn >>"$TMP/exporter.log" 2>&1 </dev/null &
            EXPORTER_PID=$!
            URL=http://127.0.0.1:$p/metrics
            for i in $(seq 1 50); do
                if ! kill -0 "$EXPORTER_PID" 2>/dev/null; then break; fi   # the port was taken meanwhile
                if curl -sf -o /dev/null "$URL"; then return 0; fi
                sleep 0.2
            done
            kill "$EXPORTER_PID" 2>/dev/null
            wait "$EXPORTER_PID" 2>/dev/null
            EXPORTER_PID=""
        fi
        p=$((p + 1))
        tries=$((tries + 1))
    done
    return 1
}

if [ ! -x "$EXPORTER" ] || ! command -v curl >/dev/null; then
    check "$EXPORTER and curl are installed (scripts/install-deps.sh)" false
    finish
fi
if ! check "prometheus-postgres-exporter serves /metrics" start_exporter "${SGIVM_EXPORTER_PORT:-$((PORT + 1000))}"; then
    tail -n 20 "$TMP/exporter.log"
    finish
fi
echo "# exporter on $URL"

# scrape FILE: one scrape of /metrics
scrape() { curl -sf --max-time 30 "$URL" >"$1"; }

# value FILE METRIC [LABEL="VALUE"...]: the value of the one series of METRIC with these labels
# (and pipeline="$PIPE"); nothing if there is none
value() {
    local file=$1 metric=$2
    shift 2
    awk -v m="$metric" -v want="pipeline=\"$PIPE\" $*" '
        BEGIN { n = split(want, w, " ") }
        index($0, m "{") == 1 {
            for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) next
            print $NF; exit
        }' "$file"
}

# holds EXPR: an awk condition on the numbers v1, v2... given after it (NaN and empty fail);
# prints them when it does not hold
holds() {
    local expr=$1
    shift
    local a vars=() i=1
    for a in "$@"; do
        case $a in '' | NaN | *[!0-9.e+-]*) vars=() && break ;; esac
        vars+=(-v "v$i=$a")
        i=$((i + 1))
    done
    if [ ${#vars[@]} -eq 0 ] || ! awk "${vars[@]}" "BEGIN { exit !($expr) }"; then
        echo "# $expr does not hold for: $(printf '[%s] ' "$@")"
        return 1
    fi
}

# The pipeline's figures as the superuser reads them, to compare with the scrape.
catalog() { sql -d "$DB" -c "SELECT $1 FROM stategrid_ivm.pipelines WHERE name = '$PIPE'"; }

S1=$TMP/scrape1
check "scrape 1 (running)" scrape "$S1"
check "pg_up 1 and no scrape error (the query file loaded, ran as $MONITOR, not in postgres)" \
    holds 'v1 == 1 && v2 == 0 && v3 == 0' \
    "$(awk '$1 == "pg_up" { print $2 }' "$S1")" \
    "$(awk '$1 == "pg_exporter_last_scrape_error" { print $2 }' "$S1")" \
    "$(sed -nE 's/^pg_exporter_user_queries_load_error\{.*\} ([^ ]+)$/\1/p' "$S1")"
check "state: running 1, the other four states 0" holds 'v1 == 1 && v2 + v3 + v4 + v5 == 0' \
    "$(value "$S1" stategrid_ivm_pipeline_state 'state="running"')" \
    "$(value "$S1" stategrid_ivm_pipeline_state 'state="created"')" \
    "$(value "$S1" stategrid_ivm_pipeline_state 'state="backfilling"')" \
    "$(value "$S1" stategrid_ivm_pipeline_state 'state="paused"')" \
    "$(value "$S1" stategrid_ivm_pipeline_state 'state="error"')"
check "worker_running 1" holds 'v1 == 1' "$(value "$S1" stategrid_ivm_pipeline_worker_running)"
check "lag_seconds and lag_bytes present, caught up (>= 0, small)" holds 'v1 >= 0 && v1 < 30 && v2 >= 0' \
    "$(value "$S1" stategrid_ivm_pipeline_lag_seconds)" "$(value "$S1" stategrid_ivm_pipeline_lag_bytes)"
check "retained_wal_bytes > 0" holds 'v1 > 0' "$(value "$S1" stategrid_ivm_pipeline_retained_wal_bytes)"
check "transactions_applied_total and rows_applied_total as in stategrid_ivm.pipelines" \
    holds 'v1 > 0 && v1 == v3 && v2 > 0 && v2 == v4' \
    "$(value "$S1" stategrid_ivm_pipeline_transactions_applied_total)" \
    "$(value "$S1" stategrid_ivm_pipeline_rows_applied_total)" \
    "$(catalog transactions_applied)" "$(catalog rows_applied)"
check "errors_total 0" holds 'v1 == 0' "$(value "$S1" stategrid_ivm_pipeline_errors_total)"
check "freshness: transactions > 0, 0 < p50 <= p99 <= max (seconds)" \
    holds 'v1 > 0 && v2 > 0 && v2 <= v3 && v3 <= v4 && v4 < 60' \
    "$(value "$S1" stategrid_ivm_pipeline_freshness_transactions)" \
    "$(value "$S1" stategrid_ivm_pipeline_freshness_p50_seconds)" \
    "$(value "$S1" stategrid_ivm_pipeline_freshness_p99_seconds)" \
    "$(value "$S1" stategrid_ivm_pipeline_freshness_max_seconds)"
check "last_batch and applied_commit timestamps: Unix time of the last minutes" \
    holds 'v1 > v3 - 300 && v1 <= v3 + 5 && v2 > v3 - 300 && v2 <= v3 + 5' \
    "$(value "$S1" stategrid_ivm_pipeline_last_batch_timestamp_seconds)" \
    "$(value "$S1" stategrid_ivm_pipeline_applied_commit_timestamp_seconds)" "$(date +%s)"
check "slot wal_status: reserved 1, the others 0" holds 'v1 == 1 && v2 + v3 + v4 + v5 == 0' \
    "$(value "$S1" stategrid_ivm_slot_wal_status 'status="reserved"')" \
    "$(value "$S1" stategrid_ivm_slot_wal_status 'status="extended"')" \
    "$(value "$S1" stategrid_ivm_slot_wal_status 'status="unreserved"')" \
    "$(value "$S1" stategrid_ivm_slot_wal_status 'status="lost"')" \
    "$(value "$S1" stategrid_ivm_slot_wal_status 'status="missing"')"
check "view_rows: six tables; a figure for ods_power_user (granted to $MONITOR), NaN for the others" \
    holds 'v1 == 6 && v2 >= 0 && v3 == 5' \
    "$(grep -c "^stategrid_ivm_view_rows{.*pipeline=\"$PIPE\"" "$S1")" \
    "$(value "$S1" stategrid_ivm_view_rows 'view="public.ods_power_user"' 'kind="ods"')" \
    "$(grep -c "^stategrid_ivm_view_rows{.*pipeline=\"$PIPE\".*} NaN\$" "$S1")"

# ---- paused: the lag rises ----------------------------------------------------------------------
# pause_pipeline returns once the state is paused; the worker leaves at its next look.
sql -d "$DB" -q -c "SELECT stategrid_ivm.pause_pipeline('$PIPE')" \
    -c 'SELECT stategrid_ivm.generate_follow_up_changes()' >/dev/null
# paused_scrape FILE: a scrape once the worker has gone (at most 30 s)
paused_scrape() {
    local i
    for i in $(seq 1 60); do
        scrape "$1" || return 1
        [ "$(value "$1" stategrid_ivm_pipeline_worker_running)" != 0 ] || return 0
        sleep 0.5
    done
    return 1
}
S2=$TMP/scrape2
S3=$TMP/scrape3
check "scrape 2 (paused, source rows written): worker gone" paused_scrape "$S2"
check "state: paused 1, running 0" holds 'v1 == 1 && v2 == 0' \
    "$(value "$S2" stategrid_ivm_pipeline_state 'state="paused"')" \
    "$(value "$S2" stategrid_ivm_pipeline_state 'state="running"')"
check "lag_seconds > 0 and lag_bytes > 0 while rows wait" holds 'v1 > 0 && v2 > 0' \
    "$(value "$S2" stategrid_ivm_pipeline_lag_seconds)" "$(value "$S2" stategrid_ivm_pipeline_lag_bytes)"
sleep 2
check "scrape 3, two seconds later" scrape "$S3"
check "lag_seconds rises (scrape 3 at least 1.5 s more than scrape 2)" holds 'v2 >= v1 + 1.5' \
    "$(value "$S2" stategrid_ivm_pipeline_lag_seconds)" "$(value "$S3" stategrid_ivm_pipeline_lag_seconds)"
check "retained_wal_bytes and counters do not fall" holds 'v2 >= v1 && v4 == v3' \
    "$(value "$S2" stategrid_ivm_pipeline_retained_wal_bytes)" "$(value "$S3" stategrid_ivm_pipeline_retained_wal_bytes)" \
    "$(value "$S1" stategrid_ivm_pipeline_rows_applied_total)" "$(value "$S3" stategrid_ivm_pipeline_rows_applied_total)"

# ---- resumed: caught up again -------------------------------------------------------------------
sql -d "$DB" -q -c "SELECT stategrid_ivm.resume_pipeline('$PIPE')" -c "SELECT stategrid_ivm.sync('$PIPE')" >/dev/null
S4=$TMP/scrape4
check "scrape 4 (resumed, synced)" scrape "$S4"
check "lag_seconds falls below the paused figure; rows_applied_total grew" holds 'v1 < v2 && v4 > v3' \
    "$(value "$S4" stategrid_ivm_pipeline_lag_seconds)" "$(value "$S3" stategrid_ivm_pipeline_lag_seconds)" \
    "$(value "$S3" stategrid_ivm_pipeline_rows_applied_total)" "$(value "$S4" stategrid_ivm_pipeline_rows_applied_total)"

if [ "$FAIL" -ne 0 ]; then
    echo "---- last scrape (stategrid_ivm series)"
    grep -h '^stategrid_ivm' "$TMP"/scrape* | tail -n 40
    echo "---- exporter log"
    tail -n 20 "$TMP/exporter.log"
fi
finish
