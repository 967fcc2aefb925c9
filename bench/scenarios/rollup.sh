# Scenario "rollup" (issue 17): the roll-up topology of docs/scale-out.md on this machine. Two
# provincial clusters (ports --port + 1 and + 2) each run the State Grid warehouse over their
# own users, readings and regions and publish its DWD/DWS; the benchmark's cluster is the
# national one: it subscribes both into one set of tables (made with pg_dump -s of a
# province's) and runs a pipeline of national views over them (bench/sql/rollup.sql:
# nat_daily_usage, totals per day and usage type; nat_user_top100, the top 100 users per day).
#   1. national freshness: a steady stream of ROLLUP_RATE readings/s into each province
#      (simulate_readings) and a marker reading every 100 ms in each (bench.rollup_markers);
#      the national cluster polls nat_daily_usage every 5 ms (bench.rollup_watch): latency =
#      first seen on the national cluster - the marker's commit in its province.
#   2. provincial throughput: in both provinces at once, WRITER_CLIENTS pgbench clients, each
#      transaction one INSERT of KEEPUP_ROWS readings, as fast as they can for
#      ROLLUP_KEEPUP_SECONDS: readings/s written and applied by each province's pipeline, the
#      WAL and the decoded stream per reading, the time until the national views caught up.
# verify() must be clean on all three clusters at the end. Sourced by bench/run.
# shellcheck shell=bash

# in_prov P CMD...: CMD (q or a helper that calls it) against province P's cluster.
in_prov() {
    local p=$1
    shift
    BENCH_PGD=$BENCH_TMP/rollup_p$p BENCH_PORT=$((PORT + p)) "$@"
}

# bench_rollup_catch_up DB: every province's pipeline synced, its WAL up to then applied by the
# national subscriptions, the national pipeline synced.
bench_rollup_catch_up() {
    local db=$1 p lsn
    for p in 1 2; do
        in_prov $p bench_sync "$db"
        lsn=$(in_prov $p q "$db" -c "SELECT pg_current_wal_lsn()")
        for _ in $(seq 1 36000); do
            [ "$(in_prov $p q "$db" -c "SELECT count(*) FROM pg_stat_replication
                                        WHERE application_name = 'sub_p$p' AND replay_lsn >= '$lsn'")" = 1 ] && break
            sleep 0.05
        done
    done
    # (the apply workers commit asynchronously: sync() waits for those commits too)
    bench_sync "$db" 3600 national
}

# bench_rollup_value METRIC REP VALUE UNIT LABEL (scenario rollup)
bench_rollup_value() { bench_value rollup "$@"; }

bench_rollup_setup() {
    local db=$1 p conn n t0
    for p in 1 2; do
        bench_log "-- province $p: cluster on port $((PORT + p)), $ROLLUP_USERS users x 3 days, its warehouse"
        bench_extra_cluster_start rollup_p$p $((PORT + p))
        in_prov $p bench_db_create "$db"
        n=$(in_prov $p q "$db" -c "SELECT bench.rollup_province_data($p, 2, $ROLLUP_USERS, 3)" -c "VACUUM ANALYZE")
        in_prov $p bench_pipeline_create "$db"
        in_prov $p q "$db" -c "CREATE PUBLICATION warehouse
            FOR TABLE dwd_power_user_info, dwd_power_consumption_detail, dws_region_daily_stats, dws_user_ranking
            WITH (publish = 'insert, update, delete')"
        bench_info rollup "readings_province_$p" "$n"
    done
    bench_log "-- the national cluster: tables from pg_dump -s, the national pipeline, two subscriptions"
    bench_db_create "$db"
    sg_as_owner_in_root "$PG_BINDIR/pg_dump" -s -h "$BENCH_TMP/rollup_p1" -p $((PORT + 1)) -U postgres \
        -t public.dwd_power_user_info -t public.dwd_power_consumption_detail -t public.dws_region_daily_stats \
        -t public.dws_user_ranking "$db" | q "$db" >/dev/null
    q "$db" -c "SELECT stategrid_ivm.create_pipeline('national')" \
        -c "SELECT stategrid_ivm.add_source('national', 'dwd_power_consumption_detail')" \
        -c "SELECT stategrid_ivm.add_source('national', 'dws_user_ranking')" \
        -c "SELECT stategrid_ivm.add_view('national', view_name, query) FROM bench.rollup_views()" \
        -c "SELECT stategrid_ivm.start_pipeline('national')" >/dev/null
    t0=$(now_s)
    for p in 1 2; do
        conn="host=$BENCH_TMP/rollup_p$p port=$((PORT + p)) dbname=$db user=postgres"
        q "$db" -c "CREATE SUBSCRIPTION sub_p$p CONNECTION '$conn' PUBLICATION warehouse" >/dev/null
    done
    for _ in $(seq 1 36000); do
        [ "$(q "$db" -c "SELECT count(*) FILTER (WHERE srsubstate <> 'r') FROM pg_subscription_rel")" = 0 ] && break
        sleep 0.1
    done
    bench_rollup_catch_up "$db"
    bench_rollup_value initial_copy_s 1 "$(calc "$(now_s) - $t0")" s "both provinces' warehouses copied to the national cluster and its views built from the stream (CREATE SUBSCRIPTION → national sync())"
}

# One freshness run: the steady streams, the markers, the national watcher.
bench_rollup_freshness() {
    local db=$1 rep=$2 p pids=() watch c0 c1 n p50 p99 pmax seen behind t0s v
    q "$db" -c "DELETE FROM bench.rollup_expect"
    for p in 1 2; do c0[p]=$(in_prov $p q "$db" -c "SELECT count(*) FROM power_consumption"); done
    q "$db" -c "CALL bench.rollup_watch($rep, $((ROLLUP_SECONDS + 120)), 5)" &
    watch=$!
    bench_bg_add $watch
    for p in 1 2; do
        in_prov $p q "$db" -c "CALL stategrid_ivm.simulate_readings($ROLLUP_RATE, $((ROLLUP_SECONDS + 2)))" &
        pids+=($!)
        bench_bg_add $!
    done
    sleep 1
    for p in 1 2; do
        in_prov $p q "$db" -c "CALL bench.rollup_markers($rep, 'probe $p', $ROLLUP_SECONDS, 100, $((p * 100000000 + 99999999)))" &
        pids+=($!)
        bench_bg_add $!
    done
    for p in "${pids[@]}"; do wait "$p"; done
    for p in 1 2; do
        n=$(in_prov $p q "$db" -c "SELECT max(marker) FROM bench.rollup_marker WHERE probe = 'probe $p'")
        q "$db" -c "INSERT INTO bench.rollup_expect VALUES ('probe $p', $n)"
        in_prov $p q "$db" -c "COPY (SELECT * FROM bench.rollup_marker WHERE run = $rep) TO STDOUT" |
            q "$db" -c "COPY bench.rollup_marker FROM STDIN"
    done
    wait $watch
    t0s=$(now_s)
    bench_rollup_catch_up "$db"
    behind=$(calc "$(now_s) - $t0s")
    for p in 1 2; do
        c1=$(in_prov $p q "$db" -c "SELECT count(*) FROM power_consumption")
        bench_rollup_value "achieved_rate_p$p" "$rep" "$(calc "($c1 - ${c0[p]}) / ($ROLLUP_SECONDS + 2)")" readings/s \
            "readings per second the stream of province $p really wrote (markers included)"
    done
    read -r n seen p50 p99 pmax <<<"$(q "$db" -F ' ' -c "SELECT count(*), count(latency_ms),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
            percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms), max(latency_ms)
        FROM bench.rollup_latency($rep)")"
    bench_rollup_value national_p50_ms "$rep" "$p50" ms "p50 of commit in a province → visible in the national views, at $ROLLUP_RATE readings/s per province"
    bench_rollup_value national_p99_ms "$rep" "$p99" ms "p99 of the same"
    bench_rollup_value national_max_ms "$rep" "$pmax" ms "slowest marker"
    bench_rollup_value markers "$rep" "$n" markers "markers committed in both provinces"
    if [ "$seen" != "$n" ]; then
        bench_note rollup "Run $rep: $((n - seen)) of $n markers were not seen on the national cluster within $((ROLLUP_SECONDS + 120)) s of the watcher's start (left out of the percentiles)."
    fi
    bench_rollup_value behind_at_end_s "$rep" "$behind" s "time until the national views caught up once the streams stopped (0 when they keep up)"
    for c in freshness_p50_ms freshness_p99_ms; do
        v=$(q "$db" -c "SELECT $c FROM stategrid_ivm.pipelines WHERE name = 'national'" 2>/dev/null || true)
        if [ -n "$v" ]; then
            bench_rollup_value "national_pipeline_$c" "$rep" "$v" ms "the national pipelines view's own $c: the national cluster's share (its apply commit → its views)"
        fi
    done
}

# One throughput run: pgbench in both provinces at once.
bench_rollup_throughput() {
    local db=$1 rep=$2 script=$3 p pids=() d0 d1 w0 w1 b0 b1 c0 c1 t0 t1 tps total=0 s
    for p in 1 2; do
        d0[p]=$(in_prov $p q "$db" -c "SELECT count(*) FROM dwd_power_consumption_detail")
        c0[p]=$(in_prov $p q "$db" -c "SELECT count(*) FROM power_consumption")
        w0[p]=$(in_prov $p q "$db" -c "SELECT pg_current_wal_lsn()")
        b0[p]=$(in_prov $p q "$db" -c "SELECT total_bytes FROM pg_stat_replication_slots WHERE slot_name = 'sub_p$p'")
    done
    t0=$(now_s)
    for p in 1 2; do
        sg_as_owner_in_root "$PG_BINDIR/pgbench" -n -h "$BENCH_TMP/rollup_p$p" -p $((PORT + p)) -U postgres \
            -c "$WRITER_CLIENTS" -j "$WRITER_CLIENTS" -T "$ROLLUP_KEEPUP_SECONDS" -D base=$((p * 100000000)) \
            -D users="$ROLLUP_USERS" -D rows="$KEEPUP_ROWS" -f "$script" "$db" >"$BENCH_TMP/rollup_pgbench.$p" 2>&1 &
        pids+=($!)
        bench_bg_add $!
    done
    for p in "${pids[@]}"; do wait "$p" || { cat "$BENCH_TMP"/rollup_pgbench.*; return 1; }; done
    t1=$(now_s)
    for p in 1 2; do d1[p]=$(in_prov $p q "$db" -c "SELECT count(*) FROM dwd_power_consumption_detail"); done
    for p in 1 2; do
        tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$BENCH_TMP/rollup_pgbench.$p")
        bench_rollup_value "written_per_s_p$p" "$rep" "$(calc "$tps * $KEEPUP_ROWS")" readings/s \
            "readings per second written in province $p (its pipeline running, the other province and the national cluster busy too)"
        bench_rollup_value "applied_per_s_p$p" "$rep" "$(calc "(${d1[p]} - ${d0[p]}) / ($t1 - $t0)")" readings/s \
            "readings per second province $p's pipeline applied meanwhile (DWD detail rows gained / the run's length)"
        s=$(now_s)
        in_prov $p bench_sync "$db"
        bench_rollup_value "sync_after_s_p$p" "$rep" "$(calc "$(now_s) - $s")" s "province $p: time to sync() after the writers stopped"
    done
    bench_rollup_catch_up "$db"
    bench_rollup_value national_caught_up_s "$rep" "$(calc "$(now_s) - $t1")" s \
        "time from the writers' end until the national views had caught up with both provinces"
    sleep 1   # (a walsender reports its slot's statistics after a transaction, at most once a second)
    for p in 1 2; do
        c1=$(in_prov $p q "$db" -c "SELECT count(*) FROM power_consumption")
        total=$((total + c1 - c0[p]))
        w1=$(in_prov $p q "$db" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${w0[p]}')")
        b1=$(in_prov $p q "$db" -c "SELECT total_bytes FROM pg_stat_replication_slots WHERE slot_name = 'sub_p$p'")
        bench_rollup_value "wal_bytes_per_reading_p$p" "$rep" "$(calc "$w1 / ($c1 - ${c0[p]})")" bytes \
            "WAL province $p wrote per reading (the source row, its warehouse's changes, the catalog)"
        bench_rollup_value "stream_bytes_per_reading_p$p" "$rep" "$(calc "(${b1:-0} - ${b0[p]:-0}) / ($c1 - ${c0[p]})")" bytes \
            "changes decoded for the national subscription per reading (pg_stat_replication_slots.total_bytes of its slot): about what goes over the network"
    done
    bench_rollup_value national_absorbed_per_s "$rep" "$(calc "$total / ($(now_s) - 1 - $t0)")" readings/s \
        "readings of both provinces / (the run's length + the national catch-up after it): what the national cluster absorbed here"
}

scenario_rollup() {
    local sc=rollup db=bench_rollup rep script p
    bench_scenario $sc "Roll-up: two provinces and a national cluster" "Three clusters on this machine: two provinces (ports $((PORT + 1)) and $((PORT + 2))), each with $ROLLUP_USERS users of its own regions × 3 days and the whole warehouse, publishing its DWD/DWS; the national cluster (the benchmark's) subscribes both into one set of tables (pg_dump -s of a province's) and maintains national totals per day and usage type and the national top 100 users per day over them. (1) $ROLLUP_RATE readings/s into each province (simulate_readings) with a marker reading every 100 ms in each, polled every 5 ms in the national views, $ROLLUP_SECONDS s per run: commit in a province → visible nationally. (2) both provinces at once, $WRITER_CLIENTS pgbench clients each, one INSERT of $KEEPUP_ROWS readings per transaction, as fast as they can for $ROLLUP_KEEPUP_SECONDS s: readings/s per province, the time until the national views caught up, WAL and stream bytes per reading"
    bench_info $sc users_per_province "$ROLLUP_USERS"
    bench_info $sc rate_per_province "$ROLLUP_RATE"
    bench_info $sc seconds_per_freshness_run "$ROLLUP_SECONDS"
    bench_info $sc seconds_per_throughput_run "$ROLLUP_KEEPUP_SECONDS"
    bench_info $sc clients_per_province "$WRITER_CLIENTS"
    bench_info $sc readings_per_transaction "$KEEPUP_ROWS"
    bench_rollup_setup $db
    for rep in $(seq 1 "$REPEATS"); do
        bench_log "-- freshness, repetition $rep of $REPEATS"
        bench_rollup_freshness $db "$rep"
    done
    script=$BENCH_TMP/rollup_readings.pgbench
    cat >"$script" <<'PGB'
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
SELECT :base + 1 + floor(random() * :users)::bigint, a, round(a * 0.56, 2), localtimestamp, 0, a, 'roll-up'
FROM generate_series(1, :rows) g, LATERAL (SELECT round((2 + random() * 28 + g * 0)::numeric, 2) AS a) x;
PGB
    chmod 644 "$script"
    for rep in $(seq 1 "$BIG_REPEATS"); do
        bench_log "-- throughput, repetition $rep of $BIG_REPEATS"
        bench_rollup_throughput $db "$rep" "$script"
    done
    for p in 1 2; do in_prov $p bench_verify $db; done
    bench_verify $db national
    bench_note $sc "After the runs: verify() is clean in both provinces and on the national cluster."
    bench_note $sc "All three clusters share this machine's $(nproc 2>/dev/null || echo '?') cores (and the disk): a province's figures are what one provincial server sustains while the other province and the national cluster run beside it, a lower bound for a server of its own."
    q $db -c "SELECT format('DROP SUBSCRIPTION %I;', subname) FROM pg_subscription" | q $db >/dev/null
    bench_db_drop $db
    for p in 1 2; do bench_data_stop "$BENCH_TMP/rollup_p$p/data"; done
}
