# Scenario "scaling": catch-up throughput as the backlog grows, with transactions of a fixed size
# (SCALING_TXN_ROWS readings): a bigger backlog is more transactions of the same kind. The cost
# per reading should stay flat. Sourced by bench/run.
# shellcheck shell=bash

scenario_scaling() {
    local sc=scaling size sizes rep reps txns first="" last=""
    IFS=, read -r -a sizes <<<"$SCALING_SIZES"
    bench_scenario $sc "Scaling" "Catch-up (fresh database, pipeline paused during the load, resume until sync()) of backlogs of N readings at N = ${SCALING_SIZES//,/, }, in transactions of $SCALING_TXN_ROWS readings each (generate_sample_data): readings per second and microseconds per reading"
    first=${sizes[0]}
    last=${sizes[${#sizes[@]} - 1]}
    # declared first, so that a failing run still lists them (NOT MEASURED)
    if [ "$first" != "$last" ]; then
        bench_ratio $sc cost_growth "us_per_row_$last" "us_per_row_$first" "cost per reading at $last / at $first readings"
        bench_target $sc t_flat cost_growth le 1.25 "cost per reading flat from $first to $last readings (≤ 1.25×)"
    fi
    bench_info $sc sizes "$SCALING_SIZES"
    bench_info $sc readings_per_transaction "$SCALING_TXN_ROWS"
    for size in "${sizes[@]}"; do
        txns=$(( size / SCALING_TXN_ROWS ))
        [ $txns -ge 1 ] || txns=1
        reps=$REPEATS
        [ "$size" -le 100000 ] || reps=$BIG_REPEATS
        for rep in $(seq 1 "$reps"); do
            bench_log "-- $size readings in $txns transactions, repetition $rep of $reps"
            bench_catchup_run bench_scaling "$size" "$txns" 0 0 "$BENCH_VERIFY_ALL"
            bench_value $sc "rows_per_s_$size" "$rep" "$CU_ROWS_PER_S" rows/s "catch-up throughput, $size readings"
            bench_value $sc "us_per_row_$size" "$rep" "$(calc "$CU_CATCHUP_S * 1000000 / $CU_ROWS")" µs "catch-up cost per reading, $size readings"
            bench_value $sc "catchup_s_$size" "$rep" "$CU_CATCHUP_S" s "catch-up time, $size readings"
            bench_value $sc "worker_cpu_s_$size" "$rep" "$CU_WORKER_CPU" s "worker CPU time, $size readings"
            bench_db_drop bench_scaling
        done
    done
    if [ "$last" -lt 10000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: the largest backlog is $last readings instead of issue 6's 10,000,000, to keep the default run under 15 minutes (--scaling-sizes 100000,1000000,10000000, or --full; runs above 100,000 readings are done --big-repeats times, default 1)."
    fi
}
