# Scenario "keepup" (issue 15): WRITER_CLIENTS writers inserting KEEPUP_ROWS-reading
# transactions as fast as they can (pgbench, KEEPUP_SECONDS) into a warehouse of KEEPUP_USERS
# users: the readings per second they write, those the pipeline applies meanwhile, and the time
# to sync() once they stop; the same writers with no pipeline at all as the baseline. Sourced
# by bench/run.
# shellcheck shell=bash

# bench_keepup_db DB: a fresh database of KEEPUP_USERS users with one reading each today.
bench_keepup_db() {
    bench_db_create "$1"
    q "$1" -c "SELECT stategrid_ivm.generate_sample_data(users => $KEEPUP_USERS, days => 1, start_date => current_date)" \
        -c "VACUUM ANALYZE" >/dev/null
}

# bench_keepup_pgbench DB SCRIPT: one pgbench run; prints its tps (without connection time).
bench_keepup_pgbench() {
    local out
    out=$(sg_as_owner_in_root "$PG_BINDIR/pgbench" -n -h "$BENCH_PGD" -p "$BENCH_PORT" -U postgres \
        -c "$WRITER_CLIENTS" -j "$WRITER_CLIENTS" -T "$KEEPUP_SECONDS" -D users="$KEEPUP_USERS" -D rows="$KEEPUP_ROWS" \
        -f "$2" "$1" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p'
}

scenario_keepup() {
    local sc=keepup db=bench_keepup alone=bench_keepup_alone rep script tps t0 t1 d0 d1 d2 s
    bench_scenario $sc "Keep-up" "$WRITER_CLIENTS pgbench clients, each transaction one INSERT of $KEEPUP_ROWS readings (random users of $KEEPUP_USERS, dated now), as fast as they can for $KEEPUP_SECONDS s, into a warehouse of $KEEPUP_USERS users (one reading each today) whose pipeline runs: readings per second written, readings per second the pipeline applied meanwhile (rows of dwd_power_consumption_detail gained during the run), and the time to sync() once the writers stop. Baseline: the same writers into the same data with no pipeline (another database)"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio $sc applied_vs_written applied_per_s written_per_s "readings applied per second / readings written per second, while the writers run"
    bench_ratio $sc written_vs_alone written_per_s alone_per_s "writers' readings per second with the pipeline / without"
    bench_target $sc t_keepup applied_vs_written ge 1.0 "keep-up: the pipeline applies at least as many readings per second as $WRITER_CLIENTS writers write"
    bench_target $sc t_sync_after sync_after_s le 5 "keep-up: sync() ≤ 5 s after the writers stop"
    bench_info $sc users "$KEEPUP_USERS"
    bench_info $sc clients "$WRITER_CLIENTS"
    bench_info $sc readings_per_transaction "$KEEPUP_ROWS"
    bench_info $sc seconds_per_run "$KEEPUP_SECONDS"
    script=$BENCH_TMP/insert_readings.pgbench
    cat >"$script" <<'PGB'
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT 1 + floor(random() * :users)::bigint, a, round(a * 0.56, 2), localtimestamp, 0, a, 'keep-up'
FROM generate_series(1, :rows) g, LATERAL (SELECT round((2 + random() * 28 + g * 0)::numeric, 2) AS a) x;
PGB
    chmod 644 "$script"
    bench_keepup_db $db
    bench_pipeline_create $db
    for rep in $(seq 1 "$BIG_REPEATS"); do
        bench_log "-- repetition $rep of $BIG_REPEATS: the writers alone"
        bench_keepup_db $alone
        tps=$(bench_keepup_pgbench $alone "$script")
        bench_db_drop $alone
        bench_value $sc alone_per_s "$rep" "$(calc "$tps * $KEEPUP_ROWS")" readings/s "baseline: the writers' readings per second with no pipeline"
        bench_log "-- the writers with the pipeline running"
        bench_sync $db
        d0=$(q $db -c "SELECT count(*) FROM dwd_power_consumption_detail")
        t0=$(now_s)
        tps=$(bench_keepup_pgbench $db "$script")
        t1=$(now_s)
        d1=$(q $db -c "SELECT count(*) FROM dwd_power_consumption_detail")
        bench_sync $db
        s=$(calc "$(now_s) - $t1")
        d2=$(q $db -c "SELECT count(*) FROM dwd_power_consumption_detail")
        bench_value $sc written_per_s "$rep" "$(calc "$tps * $KEEPUP_ROWS")" readings/s "readings per second the writers wrote, the pipeline running"
        bench_value $sc applied_per_s "$rep" "$(calc "($d1 - $d0) / ($t1 - $t0)")" readings/s "readings per second the pipeline applied while they wrote (DWD detail rows gained / the run's length)"
        bench_value $sc sync_after_s "$rep" "$s" s "time to sync() after the writers stopped"
        bench_value $sc applied_overall_per_s "$rep" "$(calc "($d2 - $d0) / ($t1 - $t0 + $s)")" readings/s "readings the writers wrote / (the run's length + the time to sync() after it)"
    done
    bench_verify $db
    bench_db_drop $db
    bench_note $sc "After the runs: verify() is clean."
    if [ "$KEEPUP_USERS" -lt 100000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: $KEEPUP_USERS users and $KEEPUP_SECONDS s instead of issue 15's 100,000 users and 60 s (--keepup-users 100000 --keepup-seconds 60, or --full)."
    fi
}
