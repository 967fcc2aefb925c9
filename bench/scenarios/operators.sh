# Scenario "operators" (issue 16): the cost of a small change through the operators of issue 16
# stays the same on 10× more data. Over the DWD detail of a warehouse of N readings (N in
# OP_SIZES, a fresh database per N): (a) a many-to-many join of the readings with the tariff
# plans of their region and usage type, (b) a DISTINCT view of the (region, usage type, day)
# that have readings, and (c) the same as GROUP BY without aggregates. Each view is added to the
# running pipeline alone, measured, dropped. Per view: FLAT_COMMITS commits of FLAT_ROWS changed
# readings (half deleted, half new), each timed from its commit until sync() returns; the view's
# query recomputed in full as the baseline (REPEATS times). A view the engine refuses is reported
# as refused (NOT SUPPORTED), and the run goes on. Sourced by bench/run.
# shellcheck shell=bash

BENCH_OP_DAYS=5     # days of readings: users = N / days, one reading per user and day
BENCH_OP_PLANS=2    # tariff plans per region and usage type (the join's "many" on that side)
BENCH_OP_VIEWS="join distinct group_by"

# Per view kind: its table, its title in the report, its query.
declare -A BENCH_OP_TABLE=([join]=dws_tariff_compare [distinct]=dws_region_type_days [group_by]=dws_region_type_days_g)
declare -A BENCH_OP_TITLE=([join]="(a) many-to-many join" [distinct]="(b) DISTINCT" [group_by]="(c) GROUP BY form of (b)")
declare -A BENCH_OP_QUERY=(
    [join]="SELECT d.consumption_id, p.plan_id, d.user_id, d.region_id, d.usage_type, p.plan_name,
       d.consumption_date, d.consumption_amount, round(d.consumption_amount * p.price, 2) AS plan_cost
FROM dwd_power_consumption_detail d
JOIN ods_tariff_plan p ON p.region_id = d.region_id AND p.usage_type = d.usage_type"
    [distinct]="SELECT DISTINCT region_id, usage_type, consumption_date::date AS stat_date
FROM dwd_power_consumption_detail"
    [group_by]="SELECT region_id, usage_type, consumption_date::date AS stat_date
FROM dwd_power_consumption_detail
GROUP BY region_id, usage_type, consumption_date::date")

scenario_operators() {
    local sc=operators db=bench_ops sizes size first last kind
    IFS=, read -r -a sizes <<<"$OP_SIZES"
    first=${sizes[0]}
    last=${sizes[${#sizes[@]} - 1]}
    bench_scenario $sc "Operators: many-to-many join and DISTINCT" "Warehouses of N readings (N = ${OP_SIZES//,/, }; generate_sample_data, N / $BENCH_OP_DAYS users × $BENCH_OP_DAYS days, one reading per user and day; a fresh database per N) with a source table tariff_plan of $BENCH_OP_PLANS plans per region and usage type; a pipeline of the DWD detail, to which each view is added alone (add_view), measured and dropped: (a) the readings joined with the plans of their region and usage type, a key of neither side (many-to-many), (b) SELECT DISTINCT region_id, usage_type, consumption_date::date over the DWD detail, (c) the same as GROUP BY without aggregates. Per view, after a warm-up, $FLAT_COMMITS commits of $FLAT_ROWS changed readings of the last day (half of them deleted at random, half new readings of random users: bench.op_change), each timed from its commit until sync() returns (the DWD detail included: the same changes with the DWD detail alone are timed first, for context). Baseline: the view's query recomputed in full (TRUNCATE + INSERT ... SELECT into a copy of its table with its unique key, one transaction, pipeline paused)"
    # declared first, so that a failing run still lists them (NOT MEASURED, or NOT SUPPORTED)
    bench_ratio $sc dwd_only_ms_growth "dwd_only_ms_$last" "dwd_only_ms_$first" "for context, the DWD detail alone: commit → sync at $last / at $first readings"
    for kind in $BENCH_OP_VIEWS; do
        bench_flat_growth $sc "${kind}_ms_" "${BENCH_OP_TITLE[$kind]}, ${BENCH_OP_TABLE[$kind]}" "$OP_SIZES" readings
        for size in "${sizes[@]}"; do
            bench_ratio $sc "${kind}_vs_recompute_$size" "${kind}_ms_$size" "recompute_${kind}_ms_$size" "${BENCH_OP_TITLE[$kind]}: commit → sync / recomputing the view, at $size readings"
        done
    done
    bench_info $sc readings "$OP_SIZES"
    bench_info $sc days "$BENCH_OP_DAYS"
    bench_info $sc plans_per_region_and_type "$BENCH_OP_PLANS"
    bench_info $sc readings_per_commit "$FLAT_ROWS"
    bench_info $sc commits_per_view_and_size "$FLAT_COMMITS"
    BENCH_OP_REFUSED=""
    for size in "${sizes[@]}"; do
        bench_log "-- $size readings"
        bench_op_db $db "$size"
        bench_commit_series $db "CALL bench.op_change($FLAT_ROWS, $(bench_op_users "$size"), '$(bench_op_day)')" $sc "dwd_only_ms_$size" \
            "for context, the DWD detail alone (no view above it), $size readings: $FLAT_ROWS-reading change → sync()"
        for kind in $BENCH_OP_VIEWS; do
            # a view refused at the first size is not tried again
            case " $BENCH_OP_REFUSED_KINDS " in *" $kind "*) continue ;; esac
            bench_op_measure $db "$size" "$kind"
        done
        bench_db_drop $db
    done
    bench_note $sc "After each view at each size: verify() (the DWD detail and the view against a full recomputation) is clean."
    bench_note $sc "A commit's time includes the DWD detail's maintenance of the changed readings (the view reads it): the same changes with the DWD detail alone, before any view is added, are measured for context (dwd_only_ms)."
    if [ "$last" -lt 1000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: up to $last readings (--op-sizes 100000,1000000 for 100,000 and 1,000,000)."
    fi
    [ "$first" != "$last" ] || bench_note $sc "One size only: no growth ratio."
}

# The users of a warehouse of SIZE readings, and the day its changes go to (the last).
bench_op_users() { echo $(( $1 / BENCH_OP_DAYS > 0 ? $1 / BENCH_OP_DAYS : 1 )); }
bench_op_day() { date -d "$BENCH_WH_START + $((BENCH_OP_DAYS - 1)) days" +%F; }

# bench_op_db DB SIZE: a fresh database of SIZE readings (SIZE / BENCH_OP_DAYS users) and the
# tariff plans; the pipeline 'stategrid' over power_user, power_consumption and tariff_plan with
# the DWD detail, started and synced.
bench_op_db() {
    local db=$1 size=$2
    bench_db_create "$db"
    q "$db" -c "SELECT stategrid_ivm.generate_sample_data(users => $(bench_op_users "$size"), days => $BENCH_OP_DAYS,
                                                         start_date => '$BENCH_WH_START')" \
        -c "SELECT bench.create_tariff_plans($BENCH_OP_PLANS)" -c "VACUUM ANALYZE" >/dev/null
    bench_pipeline_create_views "$db" dwd_power_consumption_detail
    q "$db" -c "SELECT stategrid_ivm.add_source('stategrid', 'tariff_plan')" >/dev/null
    bench_pipeline_start "$db"
}

# bench_op_measure DB SIZE KIND: adds the view of KIND to the running pipeline, times
# FLAT_COMMITS changes, verify(), recomputes its query REPEATS times (pipeline paused), drops
# it. If add_view refuses the view, records the refusal (the scenario's NOT SUPPORTED text, and
# KIND in BENCH_OP_REFUSED_KINDS) instead; any other failure ends the scenario.
BENCH_OP_REFUSED_KINDS=""
bench_op_measure() {
    local sc=operators db=$1 size=$2 kind=$3 err users day rep ms rows strategy
    local table=${BENCH_OP_TABLE[$3]} title=${BENCH_OP_TITLE[$3]} query=${BENCH_OP_QUERY[$3]}
    users=$(bench_op_users "$size")
    day=$(bench_op_day)
    if ! err=$(q "$db" -c "SELECT stategrid_ivm.add_view('stategrid', '$table', \$op\$$query\$op\$)" 2>&1 >/dev/null); then
        if ! echo "$err" | grep -q 'ERROR: *stategrid_ivm cannot maintain'; then
            echo "$err" >&2
            return 1
        fi
        err=$(echo "$err" | sed -n 's/^.*ERROR: *//p' | head -n1)
        BENCH_OP_REFUSED_KINDS="$BENCH_OP_REFUSED_KINDS $kind"
        BENCH_OP_REFUSED="${BENCH_OP_REFUSED:+$BENCH_OP_REFUSED; }$title ($table): refused: $err"
        bench_unsupported $sc "$BENCH_OP_REFUSED"
        bench_note $sc "$title: add_view('stategrid', '$table', '${query//$'\n'/ }') refused: $err. Nothing was measured for it."
        return 0
    fi
    rows=$(q "$db" -c "SELECT count(*) FROM $table")
    bench_info $sc "${kind}_rows_$size" "$rows"
    # how the engine planned it: delta rules ("differential") or scoped recomputation
    strategy=$(q "$db" -c "SELECT strategy || coalesce(' (' || strategy_reason || ')', '') FROM stategrid_ivm.views
                           WHERE view_name = 'public.$table'")
    [ "$size" != "${OP_SIZES%%,*}" ] || bench_info $sc "${kind}_strategy" "$strategy"
    bench_log "$title: $table added ($rows rows; $strategy)"
    bench_commit_series "$db" "CALL bench.op_change($FLAT_ROWS, $users, '$day')" $sc "${kind}_ms_$size" \
        "$title, $size readings: $FLAT_ROWS-reading change → sync()"
    bench_verify "$db"
    bench_pause "$db"
    q "$db" -c "DROP SCHEMA IF EXISTS bench_recompute CASCADE" -c "SELECT bench.recompute_copy('$table')" >/dev/null
    for rep in $(seq 1 "$REPEATS"); do
        ms=$(q "$db" -c "SELECT bench.recompute_one('$table', \$op\$$query\$op\$)")
        bench_value $sc "recompute_${kind}_ms_$size" "$rep" "$ms" ms "$title, $size readings: the view's query recomputed in full (one transaction)"
    done
    q "$db" -c "DROP SCHEMA bench_recompute CASCADE" -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" \
          -c "SELECT stategrid_ivm.drop_view('$table', true)" >/dev/null
    bench_sync "$db"
}
