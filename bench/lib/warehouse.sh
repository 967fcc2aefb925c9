# The big warehouse shared by the small-delta, dimension-change and ranking scenarios (sourced
# by bench/run): built once, with its full-recomputation baseline measured once. Scenarios run
# in subshells, so what they share is kept in files of the run's directory.
# shellcheck shell=bash

BENCH_WH_DB=bench_warehouse
BENCH_WH_REGION=11          # 北京: the region that gets REGION_USERS users
BENCH_WH_START=2024-01-15   # first day of the readings

bench_wh_file() { echo "$BENCH_TMP/warehouse.$1"; }

# The day that the scenarios write to: the last day of the readings.
bench_wh_last_day() { q postgres -c "SELECT date '$BENCH_WH_START' + $WAREHOUSE_DAYS - 1"; }

# bench_warehouse_ensure: builds the database once.
#   - generate_sample_data(users => WAREHOUSE_USERS, days => WAREHOUSE_DAYS): one reading per
#     user and day, users spread over the 31 regions;
#   - then REGION_USERS of them moved into region 11 (北京) by UPDATE, before the pipeline
#     exists: the day partitions of that region hold REGION_USERS ranked users, the region to
#     rename has REGION_USERS users;
#   - one more user (generate_sample_data(users => 1, readings_per_day => ...)) with
#     USER_READINGS readings over the same days, put in region 12 (天津): the user who moves;
#   - the warehouse: create_stategrid_pipeline() (backfill), sync;
#   - the full recomputation baseline (bench.recompute(), pipeline paused), REPEATS times.
bench_warehouse_ensure() {
    [ -f "$(bench_wh_file ready)" ] && return 0
    local db=$BENCH_WH_DB t0 rpd rep in_region mover
    bench_log "building the shared warehouse: $WAREHOUSE_USERS users x $WAREHOUSE_DAYS days, $REGION_USERS users in region $BENCH_WH_REGION"
    bench_db_create $db
    t0=$(now_s)
    q $db -c "SELECT stategrid_ivm.generate_sample_data(users => $WAREHOUSE_USERS, days => $WAREHOUSE_DAYS,
                                                         start_date => '$BENCH_WH_START')" >/dev/null
    in_region=$(q $db -c "SELECT count(*) FROM power_user WHERE region_id = $BENCH_WH_REGION")
    if [ "$in_region" -lt "$REGION_USERS" ]; then
        q $db -c "UPDATE power_user SET region_id = $BENCH_WH_REGION, region_name = '北京'
                  WHERE user_id IN (SELECT user_id FROM power_user WHERE region_id <> $BENCH_WH_REGION
                                    ORDER BY user_id LIMIT $((REGION_USERS - in_region)))" >/dev/null
    fi
    rpd=$(( (USER_READINGS + WAREHOUSE_DAYS - 1) / WAREHOUSE_DAYS ))
    q $db -c "SELECT stategrid_ivm.generate_sample_data(users => 1, days => $WAREHOUSE_DAYS, readings_per_day => $rpd,
                                                         start_date => '$BENCH_WH_START', seed => 0.5)" >/dev/null
    mover=$(q $db -c "SELECT max(user_id) FROM power_user")
    q $db -c "UPDATE power_user SET region_id = 12, region_name = '天津' WHERE user_id = $mover" -c "VACUUM ANALYZE" >/dev/null
    echo "$mover" >"$(bench_wh_file mover)"
    q $db -c "SELECT count(*) FROM power_consumption" >"$(bench_wh_file readings)"
    q $db -c "SELECT count(*) FROM power_consumption WHERE user_id = $mover" >"$(bench_wh_file mover_readings)"
    q $db -c "SELECT count(*) FROM power_user WHERE region_id = $BENCH_WH_REGION" >"$(bench_wh_file region_users)"
    calc "$(now_s) - $t0" >"$(bench_wh_file load_s)"
    t0=$(now_s)
    bench_pipeline_create $db
    calc "$(now_s) - $t0" >"$(bench_wh_file backfill_s)"
    bench_log "$(cat "$(bench_wh_file readings)") readings loaded in $(cat "$(bench_wh_file load_s)") s; backfilled in $(cat "$(bench_wh_file backfill_s)") s"

    bench_pause $db
    q $db -c "SELECT bench.recompute_prepare()" >/dev/null
    : >"$(bench_wh_file recompute)"
    for rep in $(seq 1 "$REPEATS"); do
        bench_recompute_time $db
        echo "$RC_S" >>"$(bench_wh_file recompute)"
        echo "$RC_DETAIL" >"$(bench_wh_file recompute_detail)"
    done
    # the copies are not needed any more: their WAL is behind us, their space is not
    q $db -c "DROP SCHEMA bench_recompute CASCADE" >/dev/null
    q $db -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
    bench_sync $db
    touch "$(bench_wh_file ready)"
}

# bench_warehouse_baseline SCEN: records the shared recomputation baseline as the scenario's
# metric recompute_s (one value per repetition) and describes the warehouse.
bench_warehouse_baseline() {
    local sc=$1 rep=0 v
    while read -r v; do
        rep=$((rep + 1))
        bench_value "$sc" recompute_s "$rep" "$v" s "full recomputation of DWD + DWS (TRUNCATE + INSERT ... SELECT, one transaction; measured once for the shared warehouse)"
    done <"$(bench_wh_file recompute)"
    bench_info "$sc" warehouse_readings "$(cat "$(bench_wh_file readings)")"
    bench_info "$sc" warehouse_users "$((WAREHOUSE_USERS + 1))"
    bench_info "$sc" warehouse_days "$WAREHOUSE_DAYS"
    bench_info "$sc" warehouse_backfill_s "$(cat "$(bench_wh_file backfill_s)")"
}

# bench_apply_time DB SQL: runs SQL (one transaction, committed), then sync(); prints the
# seconds from right after the commit to sync's return, on the server's clock.
bench_apply_time() {
    local db=$1 sql=$2 out
    out=$(q "$db" -c "$sql" -c "SELECT extract(epoch FROM clock_timestamp())" \
        -c "SELECT stategrid_ivm.sync('stategrid', '3600 s')" -c "SELECT extract(epoch FROM clock_timestamp())")
    echo "$out" | awk 'NR == 1 { a = $1 } END { printf "%.6f", $1 - a }'
}

bench_warehouse_drop() {
    if [ -n "${BENCH_TMP:-}" ] && [ -f "$(bench_wh_file ready)" ]; then
        bench_db_drop $BENCH_WH_DB
        rm -f "$(bench_wh_file ready)"
    fi
}

# The size notes of the issue's scales (10,000,000 readings).
bench_warehouse_scale_note() {
    local sc=$1 readings
    readings=$(cat "$(bench_wh_file readings)")
    if [ "$readings" -lt 10000000 ] && [ "$MODE" != quick ]; then
        bench_note "$sc" "Scaled down: the warehouse holds $readings readings instead of issue 6's 10,000,000, to keep the default run under 15 minutes (--warehouse-users 1000000 --warehouse-days 10, or --full, for the issue's size)."
    fi
}

# bench_flat_db DB USERS: a fresh database whose sources hold one day (BENCH_WH_START) of one
# reading for each of USERS users (ids 1 .. USERS): the one-day warehouse of issue 15's
# small-change and top-N scenarios, before any pipeline.
bench_flat_db() {
    local db=$1 users=$2
    bench_db_create "$db"
    q "$db" -c "SELECT stategrid_ivm.generate_sample_data(users => $users, days => 1, start_date => '$BENCH_WH_START')" \
        -c "VACUUM ANALYZE" >/dev/null
}

# bench_small_change_time DB USERS: FLAT_ROWS readings of random users of the day in one
# transaction (bench.small_change): prints the seconds from its commit until sync() returns.
bench_small_change_time() {
    bench_apply_time "$1" "CALL bench.small_change($FLAT_ROWS, $2, '$BENCH_WH_START')"
}

# bench_commit_series DB SQL SC METRIC LABEL: SQL (one source transaction) once as a warm-up,
# then FLAT_COMMITS times, each timed from its commit until sync() returns (bench_apply_time)
# and recorded as METRIC of scenario SC, in ms, one repetition per commit.
bench_commit_series() {
    local db=$1 sql=$2 sc=$3 metric=$4 label=$5 c s
    bench_apply_time "$db" "$sql" >/dev/null
    for c in $(seq 1 "$FLAT_COMMITS"); do
        s=$(bench_apply_time "$db" "$sql")
        bench_value "$sc" "$metric" "$c" "$(calc "$s * 1000")" ms "$label"
    done
}

# bench_flat_growth SC METRIC_PREFIX LABEL [SIZES [NOUN]]: the ratio METRIC_PREFIX_<largest> /
# METRIC_PREFIX_<smallest> of SIZES (comma-separated; default FLAT_USERS, counted in NOUN, default
# users), named <METRIC_PREFIX>growth, and its target "flat", judged as ≤ 1.5×; nothing with a
# single size.
bench_flat_growth() {
    local sc=$1 m=$2 label=$3 noun=${5:-users} sizes first last
    IFS=, read -r -a sizes <<<"${4:-$FLAT_USERS}"
    first=${sizes[0]}
    last=${sizes[${#sizes[@]} - 1]}
    [ "$first" != "$last" ] || return 0
    bench_ratio "$sc" "${m}growth" "$m$last" "$m$first" "$label: commit → sync at $last / at $first $noun"
    bench_target "$sc" "t_${m}flat" "${m}growth" le 1.5 "$label: a $FLAT_ROWS-reading commit at $last $noun ≤ 1.5× at $first $noun"
}
