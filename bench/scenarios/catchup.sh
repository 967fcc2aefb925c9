# Scenario "catchup": N readings committed while the pipeline is paused, then resume until
# sync(); against (a) test_decoding decoding the same WAL and (b) a full recomputation of DWD
# and DWS with INSERT ... SELECT. Then issue 15's backlog: a warehouse already full catching up
# as many readings again over the same days, against a batch ETL rebuilding the whole
# warehouse (ODS, DWD, DWS). Sourced by bench/run.
# shellcheck shell=bash

scenario_catchup() {
    local sc=catchup rep
    bench_scenario $sc "Catch-up" "(1) $CATCHUP_ROWS readings (generate_sample_data, $CATCHUP_TXNS transactions) committed while the warehouse's pipeline is paused, into an empty warehouse, then resume_pipeline until sync() returns; (2) backlog (issue 15): a warehouse already holding $BACKLOG_USERS users x $BACKLOG_DAYS days of readings, as many more of the same users over the same days committed while paused in $BACKLOG_TXNS transactions (each touching every group), then resume until sync(); every repetition in a fresh database"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    if [ "$BACKLOG_USERS" -gt 0 ]; then
        bench_ratio $sc backlog_vs_etl backlog_s backlog_etl_s "backlog catch-up / batch ETL rebuilding the whole warehouse (ODS, DWD, DWS)"
        bench_target $sc t_backlog backlog_vs_etl le 1.0 "backlog (issue 15): a full warehouse catches up as many readings again ≤ 1.0× a batch ETL rebuilding it"
    fi
    bench_catchup_empty
    bench_catchup_backlog
}

# Part (1) of the catch-up scenario (issue 6): into an empty warehouse; none when CATCHUP_ROWS
# is 0.
bench_catchup_empty() {
    local sc=catchup rep
    [ "$CATCHUP_ROWS" -gt 0 ] || return 0
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio $sc catchup_vs_decode catchup_s decode_s "catch-up / (a) decode only (elapsed)"
    bench_ratio $sc catchup_vs_recompute catchup_s recompute_s "catch-up / (b) full recomputation (elapsed)"
    bench_ratio $sc cpu_catchup_vs_decode worker_cpu_s decode_cpu_s "catch-up / (a) decode only (CPU time of the process doing it)"
    bench_target $sc t_decode catchup_vs_decode le 1.5 "catch-up ≤ 1.5× test_decoding decoding the same WAL"
    bench_target $sc t_recompute catchup_vs_recompute le 1.0 "catch-up ≤ 1.0× a full recomputation of DWD and DWS"
    bench_info $sc readings "$CATCHUP_ROWS"
    bench_info $sc transactions "$CATCHUP_TXNS"
    if [ "$CATCHUP_ROWS" -lt 1000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: $CATCHUP_ROWS readings instead of issue 6's 1,000,000, to keep the default run under 15 minutes (--catchup-rows 1000000, or --full)."
    fi
    for rep in $(seq 1 "$REPEATS"); do
        bench_log "-- repetition $rep of $REPEATS"
        # verify() (a full comparison, slow at this size) in the first repetition
        bench_catchup_run bench_catchup "$CATCHUP_ROWS" "$CATCHUP_TXNS" 1 1 "$([ "$rep" = 1 ] && echo 1 || echo 0)"
        bench_value $sc catchup_s "$rep" "$CU_CATCHUP_S" s "catch-up: resume_pipeline until sync() returns"
        bench_value $sc decode_s "$rep" "$CU_DECODE_S" s "(a) test_decoding: count(*) of pg_logical_slot_get_changes over the same WAL"
        bench_value $sc recompute_s "$rep" "$CU_RECOMPUTE_S" s "(b) full recomputation of DWD + DWS (TRUNCATE + INSERT ... SELECT, one transaction)"
        bench_value $sc catchup_rows_per_s "$rep" "$CU_ROWS_PER_S" rows/s "catch-up throughput"
        bench_value $sc worker_cpu_s "$rep" "$CU_WORKER_CPU" s "CPU time of the pipeline's worker during the catch-up"
        bench_value $sc decode_cpu_s "$rep" "$CU_DECODE_CPU" s "CPU time of the backend that ran (a)"
        bench_value $sc load_s "$rep" "$CU_LOAD_S" s "loading the readings (generate_sample_data, not part of any comparison)"
        bench_value $sc worker_hwm_mb "$rep" "$(calc "$CU_HWM_KB / 1024")" MB "worker peak RSS (VmHWM) during the catch-up"
        bench_value $sc wal_mb "$rep" "$CU_WAL_MB" MB "WAL written by the load"
        if [ "$rep" = 1 ]; then
            bench_note $sc "verify() after the first repetition: clean (every ODS, DWD and DWS table equals a full recomputation)"
        fi
        bench_log "recompute per table (ms): $CU_RECOMPUTE_DETAIL"
        bench_db_drop bench_catchup
    done
    bench_info $sc readings_written "$CU_ROWS"
    bench_note $sc "Recomputation per table in the last repetition (ms): $CU_RECOMPUTE_DETAIL. Its copies have each maintained table's columns and unique key index; the pipeline is paused meanwhile, so its worker does not compete for the CPU."
}

# Part (2) of the catch-up scenario, issue 15's backlog (bench_backlog_run); none when
# BACKLOG_USERS is 0.
bench_catchup_backlog() {
    local sc=catchup rep reps readings
    [ "$BACKLOG_USERS" -gt 0 ] || return 0
    readings=$((BACKLOG_USERS * BACKLOG_DAYS))
    bench_info $sc backlog_base_readings "$readings"
    bench_info $sc backlog_transactions "$BACKLOG_TXNS"
    reps=$REPEATS
    [ "$readings" -le 100000 ] || reps=$BIG_REPEATS
    if [ "$readings" -lt 1000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Backlog scaled down: a warehouse of $readings readings and as many more instead of issue 15's 1,000,000 (100,000 users x 30 days): --backlog-users 100000 --backlog-days 30, or --full."
    fi
    for rep in $(seq 1 "$reps"); do
        bench_log "-- backlog, repetition $rep of $reps"
        bench_backlog_run bench_backlog "$BACKLOG_USERS" "$BACKLOG_DAYS" "$BACKLOG_TXNS" "$([ "$rep" = 1 ] && echo 1 || echo 0)"
        bench_value $sc backlog_s "$rep" "$CU_CATCHUP_S" s "backlog: $BL_ROWS readings into a warehouse of $BL_BASE_ROWS, resume_pipeline until sync() returns"
        bench_value $sc backlog_etl_s "$rep" "$BL_ETL_S" s "batch ETL: the whole warehouse of $((BL_BASE_ROWS + BL_ROWS)) readings rebuilt (ODS copies, DWD, DWS: TRUNCATE + INSERT ... SELECT into logged tables with their unique indexes, one transaction)"
        bench_value $sc backlog_rows_per_s "$rep" "$(calc "$BL_ROWS / $CU_CATCHUP_S")" rows/s "backlog catch-up throughput"
        bench_value $sc backlog_worker_cpu_s "$rep" "$CU_WORKER_CPU" s "CPU time of the worker during the backlog's catch-up"
        bench_value $sc backlog_anon_mb "$rep" "$(calc "$CU_ANON_PEAK_KB / 1024")" MB "worker private memory (peak RssAnon) during the backlog's catch-up"
        bench_db_drop bench_backlog
    done
    bench_note $sc "Backlog: verify() after the first repetition: clean. Batch ETL per table in the last repetition (ms): $BL_ETL_DETAIL."
}
