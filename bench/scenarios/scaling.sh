# Scenario "scaling": catch-up throughput at growing backlogs (same shape as the catch-up
# scenario: CATCHUP_TXNS transactions); the cost per row should stay flat. The catch-up
# scenario's runs are reused at its size. Sourced by bench/run.
# shellcheck shell=bash

scenario_scaling() {
    local sc=scaling size sizes rep reps first="" last="" v reused
    IFS=, read -r -a sizes <<<"$SCALING_SIZES"
    bench_scenario $sc "Scaling" "Catch-up of N readings in $CATCHUP_TXNS transactions (as in the catch-up scenario; fresh database, pipeline paused during the load) at N = ${SCALING_SIZES//,/, }: readings per second and microseconds per reading"
    bench_info $sc sizes "$SCALING_SIZES"
    for size in "${sizes[@]}"; do
        reused=0
        if [ "$size" = "$CATCHUP_ROWS" ] && [ -s "$BENCH_TMP/catchup.runs" ]; then
            rep=0
            while read -r v; do
                rep=$((rep + 1))
                bench_value $sc "rows_per_s_$size" "$rep" "$(calc "$size / $v")" rows/s "catch-up throughput at $size readings"
                bench_value $sc "us_per_row_$size" "$rep" "$(calc "$v * 1000000 / $size")" µs "catch-up cost per reading at $size readings"
            done <"$BENCH_TMP/catchup.runs"
            bench_note $sc "At $size readings: the catch-up scenario's runs."
            reused=1
        fi
        if [ $reused = 0 ]; then
            reps=$REPEATS
            [ "$size" -le 1000000 ] || reps=$BIG_REPEATS
            for rep in $(seq 1 "$reps"); do
                bench_log "-- $size readings, repetition $rep of $reps"
                bench_catchup_run bench_scaling "$size" "$CATCHUP_TXNS" 0 0 0
                bench_value $sc "rows_per_s_$size" "$rep" "$CU_ROWS_PER_S" rows/s "catch-up throughput at $size readings"
                bench_value $sc "us_per_row_$size" "$rep" "$(calc "$CU_CATCHUP_S * 1000000 / $CU_ROWS")" µs "catch-up cost per reading at $size readings"
                bench_value $sc "hwm_mb_$size" "$rep" "$(calc "$CU_HWM_KB / 1024")" MB "worker peak RSS (VmHWM) at $size readings"
                bench_db_drop bench_scaling
            done
        fi
        [ -n "$first" ] || first=$size
        last=$size
    done
    if [ "$first" != "$last" ]; then
        bench_ratio $sc cost_growth "us_per_row_$last" "us_per_row_$first" "cost per reading at $last / at $first readings"
        bench_target $sc t_flat cost_growth le 1.25 "cost per reading flat from $first to $last readings (≤ 1.25×)"
    fi
    if [ "$last" -lt 10000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: the largest run is $last readings instead of issue 6's 10,000,000, to keep the default run under 15 minutes (--scaling-sizes 100000,1000000,10000000, or --full). Runs above 1,000,000 readings are done $BIG_REPEATS time(s) (--big-repeats)."
    fi
}
