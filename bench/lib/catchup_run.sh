# One catch-up measurement of the whole warehouse, shared by the catch-up, scaling and memory
# scenarios (sourced by bench/run).
# shellcheck shell=bash

# bench_load_readings DB ROWS TXNS: ROWS readings in TXNS transactions, made by
# generate_sample_data (10 days of one reading per user, so ROWS/TXNS/10 new users per
# transaction, spread over the 31 regions). Sets LOAD_ROWS (the rows really written: a multiple
# of TXNS x 10) and LOAD_S.
BENCH_DAYS=10
bench_load_readings() {
    local db=$1 rows=$2 txns=$3 users t0
    users=$(( (rows + txns * BENCH_DAYS - 1) / (txns * BENCH_DAYS) ))
    [ "$users" -ge 1 ] || users=1
    LOAD_ROWS=$(( users * BENCH_DAYS * txns ))
    t0=$(now_s)
    if [ "$txns" -eq 1 ]; then
        q "$db" -c "SELECT stategrid_ivm.generate_sample_data(users => $users, days => $BENCH_DAYS,
                                                             start_date => '2024-01-15', seed => 0.42)" >/dev/null
    else
        # a DO block outside a transaction block may COMMIT: one source transaction per call
        q "$db" -c "DO \$\$ BEGIN
                        FOR i IN 1 .. $txns LOOP
                            PERFORM stategrid_ivm.generate_sample_data(users => $users, days => $BENCH_DAYS,
                                                                       start_date => '2024-01-15',
                                                                       seed => (i % 1000) / 1000.0);
                            COMMIT;
                        END LOOP;
                    END \$\$" >/dev/null
    fi
    LOAD_S=$(calc "$(now_s) - $t0")
}

# bench_catchup_run DB ROWS TXNS WITH_DECODE WITH_RECOMPUTE WITH_VERIFY
# In a fresh database DB: the warehouse (create_stategrid_pipeline) on empty sources, paused;
# a test_decoding slot at the same point (WITH_DECODE); ROWS readings in TXNS transactions;
# CHECKPOINT; then
#   (a) decode only: SELECT count(*) FROM pg_logical_slot_get_changes() of the test_decoding
#       slot, timed, and the CPU time of its backend (/proc/self/stat);
#   catch-up: resume_pipeline until sync() returns, timed; the worker's VmHWM and CPU time when
#       sync returns (the worker was started by the resume, so both are the catch-up's), and
#       its private memory (RssAnon) sampled every 100 ms;
#   (b) recomputation (WITH_RECOMPUTE): pipeline paused, bench.recompute() into empty copies;
#   verify() (WITH_VERIFY).
# Sets CU_* variables; the database is left in place (the caller drops it).
bench_catchup_run() {
    local db=$1 rows=$2 txns=$3 with_decode=$4 with_recompute=$5 with_verify=$6
    local t0 t1 out
    CU_DECODE_S="" CU_DECODE_CPU="" CU_RECOMPUTE_S="" CU_RECOMPUTE_DETAIL="" CU_DECODED=""
    bench_db_create "$db"
    bench_pipeline_create "$db"
    bench_pause "$db"
    if [ "$with_decode" = 1 ]; then
        q "$db" -c "SELECT pg_create_logical_replication_slot('bench_decode', 'test_decoding')" >/dev/null
    fi
    local lsn0
    lsn0=$(q "$db" -c "SELECT pg_current_wal_lsn()")
    bench_load_readings "$db" "$rows" "$txns"
    CU_ROWS=$LOAD_ROWS
    CU_LOAD_S=$LOAD_S
    CU_WAL_MB=$(q "$db" -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1048576.0)")
    # the load's dirty buffers written out now, not by the catch-up (skipped in --quick)
    if [ "${BENCH_CHECKPOINT:-1}" = 1 ]; then q "$db" -c "CHECKPOINT"; fi
    bench_log "loaded $CU_ROWS readings in $txns transaction(s): $CU_LOAD_S s, $CU_WAL_MB MB of WAL"

    if [ "$with_decode" = 1 ]; then
        local cpu_sql="SELECT (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) / $BENCH_HZ.0
                       FROM pg_read_file('/proc/self/stat') s"
        t0=$(now_s)
        out=$(q "$db" -c "$cpu_sql" -c "SELECT count(*) FROM pg_logical_slot_get_changes('bench_decode', NULL, NULL)" -c "$cpu_sql")
        t1=$(now_s)
        CU_DECODE_S=$(calc "$t1 - $t0")
        read -r c0 CU_DECODED c1 <<<"${out//$'\n'/ }"
        CU_DECODE_CPU=$(calc "$c1 - $c0")
        q "$db" -c "SELECT pg_drop_replication_slot('bench_decode')" >/dev/null
        bench_log "decode only (test_decoding): $CU_DECODED messages in $CU_DECODE_S s ($CU_DECODE_CPU s CPU)"
    fi

    bench_resume_timed "$db"
    CU_ROWS_PER_S=$(calc "$CU_ROWS / $CU_CATCHUP_S")
    bench_log "catch-up: $CU_CATCHUP_S s ($(printf '%.0f' "$CU_ROWS_PER_S") rows/s), worker CPU $CU_WORKER_CPU s," \
        "VmHWM $((CU_HWM_KB / 1024)) MB (of which shared buffers at the end: $((CU_SHMEM_KB / 1024)) MB), peak RssAnon $((CU_ANON_PEAK_KB / 1024)) MB"

    if [ "$with_recompute" = 1 ]; then
        bench_pause "$db"
        q "$db" -c "SELECT bench.recompute_prepare()" >/dev/null
        bench_recompute_time "$db"
        # shellcheck disable=SC2034  # both read by bench/scenarios/catchup.sh
        CU_RECOMPUTE_S=$RC_S CU_RECOMPUTE_DETAIL=$RC_DETAIL
    fi
    if [ "$with_verify" = 1 ]; then
        bench_verify "$db"
        bench_log "verify(): clean"
    fi
}

# bench_recompute_time DB [ARGS]: times one full recomputation (bench.recompute(ARGS), one
# transaction, into the bench_recompute copies, which must exist: bench.recompute_prepare(ARGS)).
# Sets RC_S and RC_DETAIL (ms per table).
bench_recompute_time() {
    local db=$1 args=${2:-} t0
    t0=$(now_s)
    RC_DETAIL=$(q "$db" -c "SELECT bench.recompute($args)")
    RC_S=$(calc "$(now_s) - $t0")
    bench_log "full recomputation (INSERT ... SELECT, one transaction): $RC_S s ($RC_DETAIL ms)"
}

# bench_backlog_run DB USERS DAYS TXNS WITH_VERIFY (issue 15's backlog)
# In a fresh database DB: a warehouse already holding USERS x DAYS readings (generate_sample_data,
# one reading per user and day from BENCH_WH_START; create_stategrid_pipeline backfills it);
# pipeline paused; as many readings again, of the same users on the same days, in TXNS
# transactions (transaction i: the users with user_id % TXNS = i, every day, so that each
# transaction touches every region-day group and ranking partition: bench.add_readings);
# CHECKPOINT; then the catch-up (bench_resume_timed), and the batch ETL baseline: pipeline
# paused, the whole warehouse rebuilt from the source tables (ODS copies, DWD, DWS:
# bench.recompute(NULL, true)) into empty logged copies with their unique indexes; verify()
# (WITH_VERIFY). Sets BL_BASE_ROWS, BL_ROWS, BL_LOAD_S, BL_ETL_S, BL_ETL_DETAIL and the CU_*
# figures of the catch-up; the database is left in place (the caller drops it).
bench_backlog_run() {
    local db=$1 users=$2 days=$3 txns=$4 with_verify=$5 t0
    bench_db_create "$db"
    q "$db" -c "SELECT stategrid_ivm.generate_sample_data(users => $users, days => $days, start_date => '$BENCH_WH_START')" \
        -c "VACUUM ANALYZE" >/dev/null
    BL_BASE_ROWS=$(q "$db" -c "SELECT count(*) FROM power_consumption")
    t0=$(now_s)
    bench_pipeline_create "$db"
    bench_log "warehouse of $BL_BASE_ROWS readings ($users users x $days days) backfilled in $(calc "$(now_s) - $t0") s"
    bench_pause "$db"
    t0=$(now_s)
    q "$db" -c "DO \$\$ BEGIN
                    FOR i IN 0 .. $txns - 1 LOOP
                        PERFORM bench.add_readings('$BENCH_WH_START', $days, $txns, i);
                        COMMIT;
                    END LOOP;
                END \$\$" >/dev/null
    BL_LOAD_S=$(calc "$(now_s) - $t0")
    BL_ROWS=$(( $(q "$db" -c "SELECT count(*) FROM power_consumption") - BL_BASE_ROWS ))
    if [ "${BENCH_CHECKPOINT:-1}" = 1 ]; then q "$db" -c "CHECKPOINT"; fi
    bench_log "backlog: $BL_ROWS readings in $txns transactions over the same $days days, loaded in $BL_LOAD_S s"
    bench_resume_timed "$db"
    bench_log "backlog caught up: $CU_CATCHUP_S s ($(printf '%.0f' "$(calc "$BL_ROWS / $CU_CATCHUP_S")") rows/s), peak RssAnon $((CU_ANON_PEAK_KB / 1024)) MB"
    bench_pause "$db"
    q "$db" -c "SELECT bench.recompute_prepare(NULL, true)" >/dev/null
    t0=$(now_s)
    BL_ETL_DETAIL=$(q "$db" -c "SELECT bench.recompute(NULL, true)")
    BL_ETL_S=$(calc "$(now_s) - $t0")
    bench_log "batch ETL of the whole warehouse ($((BL_BASE_ROWS + BL_ROWS)) readings: ODS, DWD, DWS): $BL_ETL_S s ($BL_ETL_DETAIL ms)"
    q "$db" -c "DROP SCHEMA bench_recompute CASCADE" -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
    if [ "$with_verify" = 1 ]; then
        bench_sync "$db"
        bench_verify "$db"
        bench_log "verify(): clean"
    fi
}
