# Scenario "memory": the worker's peak memory while catching up one big source transaction and
# a backlog of many small ones of the same total, at two sizes. Sourced by bench/run.
# shellcheck shell=bash

scenario_memory() {
    local sc=memory size shape txns rep sizes first="" last=""
    IFS=, read -r -a sizes <<<"$MEMORY_SIZES"
    bench_scenario $sc "Memory" "The pipeline's worker catching up, in a fresh database each time, (a) one source transaction of N readings (one generate_sample_data call) and (b) a backlog of N/$MEMORY_TXN_ROWS transactions of $MEMORY_TXN_ROWS readings, at N = ${MEMORY_SIZES//,/ and }. Peak RSS = VmHWM of the worker process (started by resume_pipeline, read when sync() returns); it counts the shared memory the worker touched as well as its own. Private memory = peak RssAnon, sampled every 100 ms"
    first=${sizes[0]}
    last=${sizes[${#sizes[@]} - 1]}
    # declared first, so that a failing run still lists them (NOT MEASURED)
    for size in "${sizes[@]}"; do
        for shape in single backlog; do
            bench_target $sc "t_hwm_${shape}_$size" "hwm_mb_${shape}_$size" le 200 "worker peak RSS ≤ 200 MB: $size readings, $shape"
        done
    done
    if [ "$first" != "$last" ]; then
        for shape in single backlog; do
            bench_ratio $sc "growth_hwm_$shape" "hwm_mb_${shape}_$last" "hwm_mb_${shape}_$first" "peak RSS at $last / at $first readings ($shape)"
            bench_ratio $sc "growth_anon_$shape" "anon_mb_${shape}_$last" "anon_mb_${shape}_$first" "private memory at $last / at $first readings ($shape)"
            bench_target $sc "t_flat_$shape" "growth_hwm_$shape" le 1.25 "peak RSS flat as the size grows ($shape; ≤ 1.25× from $first to $last readings)"
        done
    fi
    bench_info $sc sizes "$MEMORY_SIZES"
    bench_info $sc backlog_readings_per_transaction "$MEMORY_TXN_ROWS"
    bench_info $sc repetitions "$BIG_REPEATS"
    for size in "${sizes[@]}"; do
        for shape in single backlog; do
            if [ $shape = single ]; then txns=1; else txns=$(( size / MEMORY_TXN_ROWS )); [ $txns -ge 1 ] || txns=1; fi
            for rep in $(seq 1 "$BIG_REPEATS"); do
                bench_log "-- $size readings, $shape ($txns transactions), repetition $rep"
                bench_catchup_run bench_memory "$size" "$txns" 0 0 "$BENCH_VERIFY_ALL"
                bench_value $sc "hwm_mb_${shape}_$size" "$rep" "$(calc "$CU_HWM_KB / 1024")" MB "peak RSS (VmHWM), $size readings in $txns transaction(s)"
                bench_value $sc "anon_mb_${shape}_$size" "$rep" "$(calc "$CU_ANON_PEAK_KB / 1024")" MB "private memory (peak RssAnon), $size readings in $txns transaction(s)"
                bench_value $sc "catchup_s_${shape}_$size" "$rep" "$CU_CATCHUP_S" s "catch-up time, $size readings in $txns transaction(s)"
                bench_db_drop bench_memory
            done
        done
    done
    bench_note $sc "The target is judged on VmHWM, which includes the shared memory the worker touched: shared buffers and the rest of the server's main shared memory segment ($(q postgres -c 'SHOW shared_memory_size') here, whatever the backlog). The private memory (RssAnon) is what grows with the worker's own buffers, caches and sorts."
    if [ "$last" -lt 5000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: the largest run is $last readings instead of issue 6's 5,000,000, to keep the default run under 15 minutes (--memory-sizes 1000000,5000000, or --full). The backlog's catch-up time grows faster than its size (see the scaling scenario), which is what limits these sizes."
    fi
}
