# Scenario "writer": what maintaining the warehouse costs the source writers. pgbench, N
# clients, single-row reading inserts into power_consumption, T seconds each, under: no
# maintenance at all; the pipeline running; hand-written statement triggers
# (bench/sql/triggers.sql); pg_ivm's immediate views when CREATE EXTENSION pg_ivm works.
# Sourced by bench/run.
# shellcheck shell=bash

# pgbench_tps DB SCRIPT LABEL: one pgbench run; prints its tps (without connection time).
bench_pgbench_tps() {
    local db=$1 script=$2 out
    out=$(sg_as_owner_in_root "$PG_BINDIR/pgbench" -n -h "$BENCH_PGD" -p "$BENCH_PORT" -U postgres \
        -c "$WRITER_CLIENTS" -j "$WRITER_CLIENTS" -T "$WRITER_SECONDS" -D users="$BASE_USERS" \
        -f "$script" "$db" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p'
}

# pg_ivm's immediately maintained views of the same shape as far as pg_ivm supports it (no
# window functions, no outer joins, no COUNT(DISTINCT)): detail, region-day totals, user-day
# totals. Prints what was created.
bench_pgivm_create() {
    q "$1" -c "DO \$\$
        DECLARE
            f text := CASE WHEN to_regproc('pgivm.create_immv') IS NOT NULL THEN 'pgivm.create_immv' ELSE 'create_immv' END;
        BEGIN
            EXECUTE format('SELECT %s(%L, %L)', f, 'bench_ivm_detail',
                'SELECT c.consumption_id, c.user_id, u.user_name, c.consumption_amount, c.consumption_cost,
                        c.consumption_date, u.region_id, u.region_name, u.usage_type
                 FROM power_consumption c JOIN power_user u ON c.user_id = u.user_id');
            EXECUTE format('SELECT %s(%L, %L)', f, 'bench_ivm_region_daily',
                'SELECT u.region_id, u.region_name, date_trunc(''day'', c.consumption_date) AS stat_date,
                        sum(c.consumption_amount) AS total_consumption, sum(c.consumption_cost) AS total_cost,
                        count(*) AS readings, avg(c.consumption_amount) AS avg_consumption,
                        max(c.consumption_amount) AS max_consumption, min(c.consumption_amount) AS min_consumption
                 FROM power_consumption c JOIN power_user u ON c.user_id = u.user_id
                 GROUP BY u.region_id, u.region_name, date_trunc(''day'', c.consumption_date)');
            EXECUTE format('SELECT %s(%L, %L)', f, 'bench_ivm_user_daily',
                'SELECT c.user_id, date_trunc(''day'', c.consumption_date) AS stat_date,
                        sum(c.consumption_amount) AS total_consumption, sum(c.consumption_cost) AS total_cost,
                        count(*) AS readings
                 FROM power_consumption c GROUP BY c.user_id, date_trunc(''day'', c.consumption_date)');
        END \$\$"
}
bench_pgivm_drop() {
    q "$1" -c "DROP TABLE IF EXISTS bench_ivm_detail, bench_ivm_region_daily, bench_ivm_user_daily" >/dev/null
}

scenario_writer() {
    local sc=writer db=bench_writer rep script tps lag_s t0 ivm_ok=0 ivm_err bad
    bench_scenario $sc "Writer overhead" "pgbench, $WRITER_CLIENTS clients, $WRITER_SECONDS s per run, each transaction one INSERT of one reading (a random one of $BASE_USERS users, dated now) into power_consumption; transactions per second with no maintenance, with the pipeline running, with hand-written statement triggers maintaining DWD and DWS, and with pg_ivm when it is available; the configurations alternate within each repetition"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio $sc pipeline_vs_none tps_pipeline tps_none "tps with the pipeline / tps with no maintenance"
    bench_ratio $sc triggers_vs_none tps_triggers tps_none "tps with statement triggers / tps with no maintenance"
    bench_target $sc t_overhead pipeline_vs_none ge 0.8 "writers keep ≥ 0.8× their tps with the pipeline running"
    bench_info $sc clients "$WRITER_CLIENTS"
    bench_info $sc seconds_per_run "$WRITER_SECONDS"
    bench_info $sc users "$BASE_USERS"
    if [ "$WRITER_SECONDS" -lt 60 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: $WRITER_SECONDS s per pgbench run instead of issue 6's 60 s, to keep the default run under 15 minutes (--writer-seconds 60 or --full for the issue's length)."
    fi
    bench_db_create $db
    q $db -c "SELECT stategrid_ivm.generate_sample_data(users => $BASE_USERS, days => 10, start_date => current_date - 9)" \
        -c "VACUUM ANALYZE" >/dev/null
    bench_pipeline_create $db
    bench_pause $db
    script=$BENCH_TMP/insert_reading.pgbench
    cat >"$script" <<'EOF'
\set uid random(1, :users)
\set amt random(200, 3000)
INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                               meter_reading_before, meter_reading_after, remark)
VALUES (:uid, :amt / 100.0, round(:amt * 0.0056, 2), localtimestamp, 0, :amt / 100.0, 'pgbench');
EOF
    chmod 644 "$script"
    if ivm_err=$(q $db -c "CREATE EXTENSION pg_ivm" 2>&1); then
        if ivm_err=$(bench_pgivm_create $db 2>&1); then
            ivm_ok=1
            bench_pgivm_drop $db
            bench_note $sc "pg_ivm: immediately maintained views of the detail join (inner join: pg_ivm has no outer joins), region-day totals (no COUNT(DISTINCT)) and user-day totals (no ranking: pg_ivm has no window functions); a subset of the warehouse."
        else
            bench_note $sc "pg_ivm is installed, but its views could not be created: $(echo "$ivm_err" | head -n1)"
        fi
    else
        bench_note $sc "pg_ivm not available on this machine (CREATE EXTENSION pg_ivm: $(echo "$ivm_err" | sed -n 's/^.*ERROR: *//p' | head -n1)); it is not packaged for Debian 12's PostgreSQL 15. When it is installed, bench/run measures it under the same load."
    fi

    for rep in $(seq 1 "$REPEATS"); do
        bench_log "-- repetition $rep of $REPEATS"
        # 1. nothing maintains the warehouse (pipeline paused)
        tps=$(bench_pgbench_tps $db "$script")
        bench_value $sc tps_none "$rep" "$tps" tps "no maintenance (pipeline paused, no triggers)"

        # 2. the pipeline runs (caught up first)
        q $db -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
        bench_sync $db
        tps=$(bench_pgbench_tps $db "$script")
        t0=$(now_s)
        bench_sync $db
        lag_s=$(calc "$(now_s) - $t0")
        bench_value $sc tps_pipeline "$rep" "$tps" tps "the pipeline running (stategrid_ivm)"
        bench_value $sc pipeline_lag_after_s "$rep" "$lag_s" s "the pipeline's remaining catch-up when pgbench ended (time to sync)"
        bench_pause $db

        # 3. statement triggers (tables filled first; the pipeline paused)
        q $db -c "SELECT bench.trigger_populate()" -c "SELECT bench.trigger_enable()" >/dev/null
        tps=$(bench_pgbench_tps $db "$script")
        q $db -c "SELECT bench.trigger_disable()" >/dev/null
        bench_value $sc tps_triggers "$rep" "$tps" tps "hand-written statement triggers (AFTER INSERT ... REFERENCING NEW TABLE)"
        if [ "$rep" = 1 ]; then
            bad=$(q $db -c "SELECT bench.trigger_check()")
            if [ "$bad" != 0 ]; then
                echo "the statement triggers' tables differ from their definitions in $bad rows" >&2
                return 1
            fi
        fi

        # 4. pg_ivm
        if [ $ivm_ok = 1 ]; then
            bench_pgivm_create $db >/dev/null
            tps=$(bench_pgbench_tps $db "$script")
            bench_pgivm_drop $db
            bench_value $sc tps_pg_ivm "$rep" "$tps" tps "pg_ivm immediate views (a subset of the warehouse)"
        fi
    done
    q $db -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
    bench_sync $db
    bench_verify $db
    bench_note $sc "After the runs: the pipeline caught up and verify() is clean; the trigger-kept tables equal their definitions (checked after the first repetition)."
    bench_note $sc "The statement triggers cover inserts of readings only (this load); a complete hand-written solution also needs UPDATE and DELETE triggers on both source tables. They lock the region-day row first, which serialises writers of the same region and day."
    if [ $ivm_ok = 1 ]; then
        bench_ratio $sc pg_ivm_vs_none tps_pg_ivm tps_none "tps with pg_ivm / tps with no maintenance"
    fi
    bench_db_drop $db
}
