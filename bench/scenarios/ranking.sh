# Scenario "ranking": one new reading on a day whose ranking partition (region 11) holds
# REGION_USERS ranked users: rows the worker writes into dws_user_ranking (pg_stat_user_tables)
# against the rows whose rank really changed, and the time to apply. Sourced by bench/run.
# shellcheck shell=bash

scenario_ranking() {
    local sc=ranking db=$BENCH_WH_DB rep day n user total target amount s c0 c1 changed
    local i0 u0 d0 i1 u1 d1 overtake
    bench_scenario "$sc" "Ranking" "With the warehouse full, one new reading on the last day for a user of region $BENCH_WH_REGION, whose ranking partition (stat_date, region_id) holds about $REGION_USERS ranked users; the reading lifts the user from the middle of the partition past 100 others. Measured: rows the worker writes to dws_user_ranking (n_tup_ins + n_tup_upd of pg_stat_user_tables, deletions separately), rows whose ranking really changed (compared with a copy taken before), and the time from commit until sync() returns"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio "$sc" written_vs_changed rows_written rank_changed "rows written / rows whose rank changed"
    bench_target "$sc" t_rows written_vs_changed le 2 "rows written about the rows whose rank changed (≤ 2×)"
    bench_warehouse_ensure
    bench_warehouse_scale_note $sc
    day=$(bench_wh_last_day)
    # a warm-up change elsewhere (first day, region 12) so that the measured batch finds its plans ready
    q "$db" -c "INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                             meter_reading_before, meter_reading_after, remark)
              SELECT user_id, 5, 2.8, date '$BENCH_WH_START' + time '12:00', 0, 5, 'warm-up'
              FROM power_user WHERE region_id = 12 ORDER BY user_id LIMIT 1" >/dev/null
    bench_sync "$db"
    n=$(q "$db" -c "SELECT count(*) FROM dws_user_ranking WHERE stat_date = '$day' AND region_id = $BENCH_WH_REGION")
    bench_info "$sc" partition_users "$n"
    overtake=100
    [ "$n" -gt 400 ] || overtake=$((n / 4))
    bench_info "$sc" users_overtaken "$overtake"
    for rep in $(seq 1 "$REPEATS"); do
        # the user in the middle of the partition, and how much lifts it past $overtake others
        read -r user total target <<<"$(q "$db" -F ' ' -c "SELECT m.user_id, m.total_consumption, t.total_consumption
            FROM dws_user_ranking m, dws_user_ranking t
            WHERE m.stat_date = '$day' AND m.region_id = $BENCH_WH_REGION AND m.ranking = $((n / 2))
              AND t.stat_date = '$day' AND t.region_id = $BENCH_WH_REGION AND t.ranking = $((n / 2 - overtake))")"
        amount=$(calc "$target - $total + 0.01")
        q "$db" -c "DROP TABLE IF EXISTS bench.rank_before" \
              -c "CREATE TABLE bench.rank_before AS SELECT user_id, ranking FROM dws_user_ranking
                  WHERE stat_date = '$day' AND region_id = $BENCH_WH_REGION" >/dev/null
        bench_sync "$db"
        c0=$(bench_table_counts "$db" public.dws_user_ranking)
        s=$(bench_apply_time "$db" "INSERT INTO power_consumption (user_id, consumption_amount, consumption_cost, consumption_date,
                                                                 meter_reading_before, meter_reading_after, remark)
                                  VALUES ($user, round($amount, 2), round($amount * 0.56, 2), date '$day' + time '21:00', 0, round($amount, 2), 'ranking')")
        c1=$(bench_table_counts "$db" public.dws_user_ranking)
        changed=$(q "$db" -c "SELECT count(*) FROM bench.rank_before b JOIN dws_user_ranking r USING (user_id)
                            WHERE r.stat_date = '$day' AND r.region_id = $BENCH_WH_REGION AND r.ranking <> b.ranking")
        read -r i0 u0 d0 <<<"$c0"
        read -r i1 u1 d1 <<<"$c1"
        bench_value "$sc" apply_ms "$rep" "$(calc "$s * 1000")" ms "one reading: commit → sync() returns"
        bench_value "$sc" rank_changed "$rep" "$changed" rows "rows whose ranking changed"
        bench_value "$sc" rows_written "$rep" "$(( (i1 - i0) + (u1 - u0) ))" rows "rows written to dws_user_ranking (inserted + updated)"
        bench_value "$sc" rows_inserted "$rep" "$((i1 - i0))" rows "of which inserted"
        bench_value "$sc" rows_updated "$rep" "$((u1 - u0))" rows "of which updated"
        bench_value "$sc" rows_deleted "$rep" "$((d1 - d0))" rows "rows deleted from dws_user_ranking"
    done
    q "$db" -c "DROP TABLE IF EXISTS bench.rank_before" >/dev/null
    bench_sync "$db"
    bench_verify "$db"
    bench_note "$sc" "After the runs: verify() is clean."
}
