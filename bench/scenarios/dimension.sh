# Scenario "dimension": changes of the user dimension that move many fact rows: one user with
# USER_READINGS readings moves to another region; a region of REGION_USERS users is renamed.
# Time from commit to sync(), against a full recomputation. Sourced by bench/run.
# shellcheck shell=bash

scenario_dimension() {
    local sc=dimension db=$BENCH_WH_DB rep mover to name s
    bench_scenario "$sc" "Dimension change" "With the warehouse full: (1) one user with $USER_READINGS readings moves to another region (UPDATE power_user: region 12 天津 ↔ 13 河北); (2) region $BENCH_WH_REGION (北京), of $REGION_USERS users, is renamed (UPDATE power_user SET region_name: 北京 ↔ 北京市). Each is one source transaction; time from its commit until sync() returns, against a full recomputation"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_ratio "$sc" move_vs_recompute move_user_s recompute_s "user move / full recomputation"
    bench_ratio "$sc" rename_vs_recompute rename_region_s recompute_s "region rename / full recomputation"
    bench_warehouse_ensure
    bench_warehouse_baseline $sc
    mover=$(cat "$(bench_wh_file mover)")
    bench_info "$sc" mover_readings "$(cat "$(bench_wh_file mover_readings)")"
    bench_info "$sc" region_users "$(cat "$(bench_wh_file region_users)")"
    for rep in $(seq 1 "$REPEATS"); do
        if [ $((rep % 2)) = 1 ]; then to="13, region_name = '河北'"; name='北京市'; else to="12, region_name = '天津'"; name='北京'; fi
        s=$(bench_apply_time "$db" "UPDATE power_user SET region_id = $to, update_time = now() WHERE user_id = $mover")
        bench_value "$sc" move_user_s "$rep" "$s" s "a user with $USER_READINGS readings moves region: commit → sync()"
        s=$(bench_apply_time "$db" "UPDATE power_user SET region_name = '$name', update_time = now() WHERE region_id = $BENCH_WH_REGION")
        bench_value "$sc" rename_region_s "$rep" "$s" s "a region of $REGION_USERS users renamed: commit → sync()"
    done
    bench_sync "$db"
    bench_verify "$db"
    bench_note "$sc" "After the runs: verify() is clean."
    bench_note "$sc" "What the rename changes: every DWD row of the region's users (their readings), the region's DWS rows (region_name is a grouping column) and their ranking rows; a recomputation rewrites everything."
    bench_warehouse_scale_note $sc
}
