# Scenario "small_deltas": with the big warehouse in place, DELTA_ROWS new readings (existing
# users, the last day) in one transaction: time from its commit to sync(), against a full
# recomputation. Sourced by bench/run.
# shellcheck shell=bash

scenario_small_deltas() {
    local sc=small_deltas db=$BENCH_WH_DB rep day s
    bench_scenario "$sc" "Small deltas" "With the warehouse full, $DELTA_ROWS new readings in one transaction (random existing users, dated on the last day of the data, so they land in existing groups and ranking partitions): time from the source commit until sync() returns, against a full recomputation of DWD and DWS over the same warehouse"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio "$sc" apply_vs_recompute apply_s recompute_s "applying the delta / full recomputation"
    bench_target "$sc" t_small apply_vs_recompute le 0.01 "applying $DELTA_ROWS readings ≤ 1/100 of a full recomputation"
    bench_warehouse_ensure
    bench_warehouse_baseline $sc
    bench_info "$sc" new_readings "$DELTA_ROWS"
    day=$(bench_wh_last_day)
    for rep in $(seq 1 "$REPEATS"); do
        # the day's ranks before, to count the ranking rows the delta really changes
        q "$db" -c "DROP TABLE IF EXISTS bench.small_before" \
              -c "CREATE TABLE bench.small_before AS SELECT user_id, region_id, ranking FROM dws_user_ranking
                  WHERE stat_date = '$day'" >/dev/null
        s=$(bench_apply_time "$db" "INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost,
                                       consumption_date, meter_reading_before, meter_reading_after, remark)
                                  SELECT user_id, a, round(a * 0.56, 2), date '$day' + time '18:00' + g * interval '1 s', 0, a, 'delta'
                                  FROM (SELECT user_id, row_number() OVER () AS g, round((2 + random() * 28)::numeric, 2) AS a
                                        FROM (SELECT user_id FROM power_user ORDER BY random() LIMIT $DELTA_ROWS) u) x")
        bench_value "$sc" apply_s "$rep" "$s" s "$DELTA_ROWS new readings: commit → sync() returns"
        bench_value "$sc" rank_changed "$rep" "$(q "$db" -c "SELECT count(*) FROM dws_user_ranking r
                LEFT JOIN bench.small_before b USING (user_id, region_id)
                WHERE r.stat_date = '$day' AND r.ranking IS DISTINCT FROM b.ranking")" rows \
            "ranking rows the delta changed (a rank moved, or a user's first reading of the day): each must be rewritten"
    done
    q "$db" -c "DROP TABLE IF EXISTS bench.small_before" >/dev/null
    bench_sync "$db"
    bench_verify "$db"
    bench_note "$sc" "After the runs: verify() is clean."
    bench_note "$sc" "Recomputation per table (ms): $(cat "$(bench_wh_file recompute_detail)")."
    bench_warehouse_scale_note $sc
}
