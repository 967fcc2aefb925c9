# Scenario "memory": the worker's peak memory while catching up one big source transaction and
# a backlog of many small ones of the same total, at two sizes; and (issue 15) while applying
# one large INSERT into a warehouse that already holds users. Sourced by bench/run.
# shellcheck shell=bash

scenario_memory() {
    local sc=memory size shape txns rep sizes first="" last=""
    IFS=, read -r -a sizes <<<"$MEMORY_SIZES"
    bench_scenario $sc "Memory" "The pipeline's worker catching up, in a fresh database each time, (a) one source transaction of N readings (one generate_sample_data call) and (b) a backlog of N/$MEMORY_TXN_ROWS transactions of $MEMORY_TXN_ROWS readings, at N = ${MEMORY_SIZES//,/ and }. Peak RSS = VmHWM of the worker process (started by resume_pipeline, read when sync() returns); it counts the shared memory the worker touched as well as its own. Private memory = peak RssAnon, sampled every 100 ms"
    first=${sizes[0]}
    last=${sizes[${#sizes[@]} - 1]}
    # declared first, so that a failing run still lists them (NOT MEASURED)
    for size in ${MEMORY_INSERT_ROWS//,/ }; do
        bench_target $sc "t_anon_insert_$size" "anon_mb_insert_$size" le 200 "worker private memory ≤ 200 MB applying one INSERT of $size readings into a warehouse of $MEMORY_INSERT_USERS users (issue 15)"
    done
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
    bench_memory_insert
}

# Issue 15's part: one INSERT of N readings (N in MEMORY_INSERT_ROWS) into a warehouse of
# MEMORY_INSERT_USERS users (one reading each), the pipeline running: its worker is restarted
# (pause, resume) just before, so that its VmHWM is this transaction's; private memory (RssAnon)
# sampled every 100 ms from the INSERT until sync() returns.
bench_memory_insert() {
    local sc=memory db=bench_memory_insert size rep per_user samples pid t0 s
    for size in ${MEMORY_INSERT_ROWS//,/ }; do
        per_user=$(( (size + MEMORY_INSERT_USERS - 1) / MEMORY_INSERT_USERS ))
        for rep in $(seq 1 "$BIG_REPEATS"); do
            bench_log "-- one INSERT of $size readings into a warehouse of $MEMORY_INSERT_USERS users, repetition $rep"
            bench_flat_db $db "$MEMORY_INSERT_USERS"
            bench_pipeline_create $db
            bench_pause $db
            q $db -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
            bench_sync $db
            pid=$(bench_worker_pid $db)
            samples=$BENCH_TMP/rss.$db.samples
            : >"$samples"
            bench_sample_rss "$pid" "$samples" &
            bench_bg_add $!
            t0=$(now_s)
            # $per_user readings of every user on the next day, in one statement
            q $db -c "SELECT bench.add_readings(date '$BENCH_WH_START' + 1, 1, 1, 0, $per_user)" >/dev/null
            bench_sync $db
            s=$(calc "$(now_s) - $t0")
            bench_value $sc "hwm_mb_insert_$size" "$rep" "$(calc "$(bench_proc_status "$pid" VmHWM) / 1024")" MB "peak RSS (VmHWM), one INSERT of $((per_user * MEMORY_INSERT_USERS)) readings into $MEMORY_INSERT_USERS users' warehouse"
            bench_bg_stop
            bench_value $sc "anon_mb_insert_$size" "$rep" "$(calc "$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$samples") / 1024")" MB "private memory (peak RssAnon), one INSERT of $((per_user * MEMORY_INSERT_USERS)) readings into $MEMORY_INSERT_USERS users' warehouse"
            bench_value $sc "insert_s_$size" "$rep" "$s" s "INSERT of $((per_user * MEMORY_INSERT_USERS)) readings until sync() returns"
            if [ "$BENCH_VERIFY_ALL" = 1 ]; then bench_verify $db; fi
            bench_db_drop $db
        done
    done
    if [ "${MEMORY_INSERT_ROWS##*,}" -lt 2000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: one INSERT of ${MEMORY_INSERT_ROWS//,/ and } readings into $MEMORY_INSERT_USERS users instead of issue 15's 2,000,000 (and 10,000,000) into 50,000 (--memory-insert-rows 2000000,10000000 --memory-insert-users 50000, or --full)."
    fi
}
