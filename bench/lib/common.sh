# Shared helpers of bench/run (sourced): the benchmark's cluster, psql, clocks, the results
# file that bench/report.pl turns into report.md / report.json, and the worker's memory probe.
# shellcheck shell=bash

# ---- the cluster --------------------------------------------------------------------------------

# Settings on top of scripts/lib.sh's (the extension's requirements). Everything else keeps
# PostgreSQL's defaults, the same for the pipeline and for its baselines: durability as a
# production server has it (fsync, synchronous_commit, full_page_writes on), so writer overhead
# and freshness are measured with real commits; work_mem (4MB) and shared_buffers (128MB) at
# their defaults, so the worker's memory is what an untuned server shows (its RSS counts the
# shared buffers it touched) and comparable with bench/catchup.sh. Only checkpoints are pushed
# out of the measurements.
BENCH_PG_SETTINGS="max_wal_size = 16GB
min_wal_size = 1GB
checkpoint_timeout = 1h
log_min_messages = warning
log_checkpoints = off"

# bench_cluster_start DIR PORT: initdb + start, unix socket only, in DIR/pg.
bench_cluster_start() {
    local dir=$1 port=$2
    BENCH_PGD=$dir/pg
    BENCH_PORT=$port
    sg_mkdir_owned "$BENCH_PGD"
    chmod 755 "$BENCH_PGD"
    sg_initdb "$BENCH_PGD/data" "$BENCH_PG_SETTINGS"
    sg_pg_start "$BENCH_PGD/data" "$port" "$BENCH_PGD" "$BENCH_PGD/server.log" ""
}

bench_cluster_stop() {
    local d
    if [ -f "$BENCH_TMP/extra_clusters" ]; then
        while read -r d; do bench_data_stop "$d"; done <"$BENCH_TMP/extra_clusters"
    fi
    [ -z "${BENCH_PGD:-}" ] || bench_data_stop "$BENCH_PGD/data"
}
bench_data_stop() {
    if [ -f "$1/postmaster.pid" ]; then
        sg_pg_stop "$1" fast || sg_pg_stop "$1" immediate || true
    fi
}

# bench_extra_cluster_start NAME PORT: one more cluster of the run (the roll-up's provinces) in
# $BENCH_TMP/NAME, with the same settings, unix socket there. bench_cluster_stop stops it too
# (listed in a file: scenarios run in subshells). Run commands on it with
# BENCH_PGD=$BENCH_TMP/NAME BENCH_PORT=PORT q ... (or any helper that calls q).
bench_extra_cluster_start() {
    local dir=$BENCH_TMP/$1 port=$2
    sg_mkdir_owned "$dir"
    chmod 755 "$dir"
    sg_initdb "$dir/data" "$BENCH_PG_SETTINGS"
    echo "$dir/data" >>"$BENCH_TMP/extra_clusters"
    sg_pg_start "$dir/data" "$port" "$dir" "$dir/server.log" ""
}

# q DB ARGS...: psql as the cluster owner, bare values (-At), stop at the first error.
q() {
    local db=$1
    shift
    sg_as_owner_in_root env PGOPTIONS="-c client_min_messages=warning" \
        "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$BENCH_PGD" -p "$BENCH_PORT" -U postgres -d "$db" "$@"
}

# A file the cluster owner can read (the checkout may not be readable by postgres).
bench_readable() {
    local src=$1 dst
    dst=$BENCH_TMP/$(basename "$src")
    cp "$src" "$dst"
    chmod 644 "$dst"
    echo "$dst"
}

# bench_db_create DB: a fresh database with the extension, the State Grid source tables
# (examples/stategrid/schema.sql) and the bench's helper SQL (bench/sql/*.sql).
bench_db_create() {
    local db=$1 f
    bench_db_drop "$db"   # left over by a failed scenario: its slots go first
    q postgres -c "CREATE DATABASE $db"
    q "$db" -c "CREATE EXTENSION stategrid_ivm" -f "$(bench_readable "$SG_ROOT/examples/stategrid/schema.sql")" >/dev/null
    for f in "$SG_ROOT"/bench/sql/*.sql; do
        q "$db" -f "$(bench_readable "$f")" >/dev/null
    done
}

# bench_db_drop DB: drops its pipelines (slots), then the database.
bench_db_drop() {
    local db=$1
    q "$db" -c "SELECT stategrid_ivm.drop_pipeline(name) FROM stategrid_ivm.pipelines" >/dev/null 2>&1 || true
    q "$db" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                WHERE database = current_database() AND NOT active" >/dev/null 2>&1 || true
    q postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
}

# ---- the pipeline -------------------------------------------------------------------------------

# bench_pipeline_create DB: the whole warehouse (create_stategrid_pipeline), backfilled, synced.
bench_pipeline_create() {
    q "$1" -c "SELECT stategrid_ivm.create_stategrid_pipeline()" -c "SELECT stategrid_ivm.sync('stategrid', '3600 s')" >/dev/null
}

# bench_pipeline_create_views DB VIEW...: the pipeline 'stategrid' over power_user and
# power_consumption with only the named views of stategrid_warehouse_views() (in the order
# given), through the same create_pipeline / add_source / add_view calls a user makes; not
# started (more views may follow: bench_pipeline_start).
bench_pipeline_create_views() {
    local db=$1 v args=()
    shift
    args+=(-c "SELECT stategrid_ivm.create_pipeline('stategrid')")
    args+=(-c "SELECT stategrid_ivm.add_source('stategrid', 'power_user'), stategrid_ivm.add_source('stategrid', 'power_consumption')")
    for v in "$@"; do
        args+=(-c "SELECT stategrid_ivm.add_view('stategrid', view_name, query)
                   FROM stategrid_ivm.stategrid_warehouse_views() WHERE view_name = '$v'")
    done
    q "$db" "${args[@]}" >/dev/null
}
bench_pipeline_start() {
    q "$1" -c "SELECT stategrid_ivm.start_pipeline('stategrid')" -c "SELECT stategrid_ivm.sync('stategrid', '3600 s')" >/dev/null
}
bench_pipeline_drop() { q "$1" -c "SELECT stategrid_ivm.drop_pipeline('stategrid', true)" >/dev/null; }

bench_worker_pid() { q "$1" -c "SELECT worker_pid FROM stategrid_ivm.pipelines WHERE name = 'stategrid'"; }

# bench_pause DB: pause and wait until the worker has exited (its statistics are then flushed).
bench_pause() {
    local db=$1
    q "$db" -c "SELECT stategrid_ivm.pause_pipeline('stategrid')" >/dev/null
    for _ in $(seq 1 600); do
        [ -z "$(bench_worker_pid "$db")" ] && [ "$(q "$db" -c "SELECT count(*) FROM pg_stat_activity
            WHERE backend_type = 'stategrid_ivm worker' AND datname = current_database()")" = 0 ] && return 0
        sleep 0.05
    done
    echo "the worker of $db did not stop" >&2
    return 1
}

# bench_sync DB [TIMEOUT_S [PIPELINE]]
bench_sync() { q "$1" -c "SELECT stategrid_ivm.sync('${3:-stategrid}', '${2:-3600} s')" >/dev/null; }

# bench_verify DB [PIPELINE]: fails (and says which table) unless every table of the pipeline
# (default stategrid) is ok.
bench_verify() {
    local db=$1 bad
    bad=$(q "$db" -c "SELECT string_agg(format('%s (missing %s, extra %s)', view_name, missing_rows, extra_rows), ', ')
                      FROM stategrid_ivm.verify('${2:-stategrid}') WHERE NOT ok")
    if [ -n "$bad" ]; then
        echo "verify() is not clean in $db: $bad" >&2
        return 1
    fi
}

# The worker's memory and CPU time from /proc: VmHWM (peak RSS, kB), VmRSS, RssAnon (private),
# RssShmem (shared buffers it mapped), CPU s (utime + stime).
bench_proc_status() { # PID FIELD
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null
}
bench_proc_cpu_s() {
    awk -v hz="$BENCH_HZ" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null
}

# Samples a process's RssAnon every 100 ms into a file (kB per line), until killed.
bench_sample_rss() { # PID FILE
    local pid=$1 file=$2
    while [ -d "/proc/$pid" ]; do
        bench_proc_status "$pid" RssAnon >>"$file"
        sleep 0.1
    done
}

# bench_table_counts DB TABLE: "inserted updated deleted" of TABLE (pg_stat_user_tables) once
# the worker's statistics are flushed (it flushes after a commit at most once a second, and its
# idle loop commits every naptime): read until two reads 0.6 s apart agree.
bench_table_counts() {
    local db=$1 table=$2 a b sql
    sql="SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = '$table'::regclass"
    sleep 1.2
    a=$(q "$db" -F ' ' -c "$sql")
    for _ in $(seq 1 20); do
        sleep 0.6
        b=$(q "$db" -F ' ' -c "$sql")
        [ "$a" = "$b" ] && break
        a=$b
    done
    echo "$b"
}

# bench_resume_timed DB: resume_pipeline until sync() returns, timed, with the new worker's
# private memory (RssAnon) sampled every 100 ms meanwhile; then its VmHWM, RssShmem and CPU time
# (all the catch-up's: the resume starts the worker). Sets CU_CATCHUP_S, CU_HWM_KB,
# CU_SHMEM_KB, CU_WORKER_CPU, CU_ANON_PEAK_KB.
# shellcheck disable=SC2034  # the CU_* figures are read by the callers (bench/lib/catchup_run.sh)
bench_resume_timed() {
    local db=$1 t0 pid first_pid samples
    samples=$BENCH_TMP/rss.$db.samples
    : >"$samples"
    t0=$(now_s)
    q "$db" -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
    first_pid=""
    for _ in $(seq 1 400); do
        first_pid=$(bench_worker_pid "$db")
        [ -n "$first_pid" ] && break
        sleep 0.025
    done
    if [ -n "$first_pid" ]; then
        bench_sample_rss "$first_pid" "$samples" &
        bench_bg_add $!
    fi
    bench_sync "$db"
    CU_CATCHUP_S=$(calc "$(now_s) - $t0")
    pid=$(bench_worker_pid "$db")
    CU_HWM_KB=$(bench_proc_status "$pid" VmHWM)
    CU_SHMEM_KB=$(bench_proc_status "$pid" RssShmem)
    CU_WORKER_CPU=$(bench_proc_cpu_s "$pid")
    bench_bg_stop
    CU_ANON_PEAK_KB=$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$samples")
    if [ "$pid" != "$first_pid" ]; then
        echo "   note: the worker changed during the catch-up (pid $first_pid, then $pid): memory and CPU are the last one's" >&2
    fi
}

# ---- clocks and arithmetic ----------------------------------------------------------------------

now_s() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }

# ---- background processes that the run started (ended by pid in cleanup) --------------------

BENCH_BG_PIDS=()
bench_bg_add() { BENCH_BG_PIDS+=("$1"); }
bench_bg_stop() {
    local pid
    for pid in "${BENCH_BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_BG_PIDS=()
}

# ---- the results file ---------------------------------------------------------------------------
# One record per line, tab-separated, read by bench/report.pl:
#   scenario  SCEN  TITLE  DESCRIPTION
#   value     SCEN  METRIC  REP  VALUE  UNIT  LABEL        one measurement of one repetition
#   ratio     SCEN  ID  NUM_METRIC  DEN_METRIC  LABEL      per repetition NUM/DEN, then median
#   target    SCEN  ID  SUBJECT  OP  THRESHOLD  LABEL      SUBJECT: a metric or ratio; OP: le|ge
#   info      SCEN  KEY  VALUE                             sizes and settings of the scenario
#   note      SCEN  TEXT
#   status    SCEN  ok|failed|skipped  TEXT
#   unsupported SCEN  TEXT                              the engine refused what the scenario
#                                                      needs: its targets read NOT SUPPORTED

bench_rec() {
    local IFS=$'\t'
    # no tabs or newlines inside a field
    local out=() f
    for f in "$@"; do out+=("$(printf '%s' "$f" | tr '\t\n' '  ')"); done
    echo "${out[*]}" >>"$BENCH_RESULTS"
}
bench_scenario() { bench_rec scenario "$@"; echo; echo "==== $1: $2"; }
bench_value() { # SCEN METRIC REP VALUE UNIT LABEL
    bench_rec value "$@"
    printf '   %-28s run %s: %s %s\n' "$2" "$3" "$4" "$5"
}
bench_ratio() { bench_rec ratio "$@"; }
bench_target() { bench_rec target "$@"; }
bench_info() { bench_rec info "$@"; }
bench_note() { bench_rec note "$@"; }
bench_status() { bench_rec status "$@"; }
bench_unsupported() { bench_rec unsupported "$@"; echo "   NOT SUPPORTED: $2"; }
# progress lines carry the seconds since the run started
bench_log() { printf '   [%4d s] %s\n' "$(( $(date +%s) - ${BENCH_START:-$(date +%s)} ))" "$*"; }
