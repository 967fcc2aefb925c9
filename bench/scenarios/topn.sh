# Scenario "topn" (issue 15): top-N per group, the ranking as a subquery in FROM filtered to its
# first TOPN (the form Flink SQL and RisingWave maintain as "Top-N"), over the DWD detail of the
# one-day warehouses of the small-change scenario (FLAT_USERS). Per FLAT_ROWS-reading commit:
# commit → sync(), rows written to the top-N table against the rows that entered, left or
# changed in it. An engine that refuses the view makes the scenario report NOT SUPPORTED, with
# the refusal, instead of failing. Sourced by bench/run.
# shellcheck shell=bash

BENCH_TOPN_TABLE=dws_user_topn

scenario_topn() {
    local sc=topn db=bench_topn sizes size last query err c s c0 c1 changed
    local i0 u0 d0 i1 u1 d1
    IFS=, read -r -a sizes <<<"$FLAT_USERS"
    last=${sizes[${#sizes[@]} - 1]}
    bench_scenario $sc "Top-N per group" "The view $BENCH_TOPN_TABLE = SELECT * FROM (the dws_user_ranking query over dwd_power_consumption_detail) r WHERE ranking <= $TOPN, in a pipeline with the DWD detail, over the one-day warehouse of N users (N = ${FLAT_USERS//,/, }, a fresh database per N); $FLAT_COMMITS commits of $FLAT_ROWS readings (after a warm-up commit): time from commit until sync() returns, and rows written to the view's table (n_tup_ins + n_tup_upd + n_tup_del of pg_stat_user_tables) against rows that entered, left or changed in it (compared with a copy taken before, audit column aside)"
    # declared first, so that a failing run still lists them (NOT MEASURED, or NOT SUPPORTED)
    bench_flat_growth $sc topn_ms_ "top-$TOPN per group, the same at every size"
    bench_ratio $sc written_vs_changed "rows_written_$last" "rows_changed_$last" "rows written / rows entering, leaving or changing in the top $TOPN, at $last users"
    bench_target $sc t_rows written_vs_changed le 1.0 "top-$TOPN per group: only rows entering, leaving or moving within the top $TOPN are written (rows written ≤ 1× those, at $last users)"
    bench_info $sc top_n "$TOPN"
    bench_info $sc users "$FLAT_USERS"
    for size in "${sizes[@]}"; do
        bench_log "-- $size users"
        bench_flat_db $db "$size"
        query=$(q $db -c "SELECT format('SELECT * FROM (%s) r WHERE ranking <= %s', query, $TOPN)
                          FROM stategrid_ivm.stategrid_warehouse_views() WHERE view_name = 'dws_user_ranking'")
        bench_pipeline_create_views $db dwd_power_consumption_detail
        if ! err=$(q $db -c "SELECT stategrid_ivm.add_view('stategrid', '$BENCH_TOPN_TABLE', \$topn\$$query\$topn\$)" 2>&1 >/dev/null); then
            err=$(echo "$err" | sed -n 's/^.*ERROR: *//p' | head -n1)
            bench_unsupported $sc "add_view refused the top-$TOPN view: $err"
            bench_note $sc "NOT SUPPORTED by this engine: add_view('stategrid', '$BENCH_TOPN_TABLE', 'SELECT * FROM (<ranking query>) r WHERE ranking <= $TOPN') failed with: $err. Nothing was measured."
            bench_db_drop $db
            return 0
        fi
        bench_pipeline_start $db
        bench_small_change_time $db "$size" >/dev/null
        for c in $(seq 1 "$FLAT_COMMITS"); do
            q $db -c "DROP TABLE IF EXISTS bench.topn_before" \
                  -c "CREATE TABLE bench.topn_before AS SELECT * FROM $BENCH_TOPN_TABLE" >/dev/null
            c0=$(bench_table_counts $db "public.$BENCH_TOPN_TABLE")
            s=$(bench_small_change_time $db "$size")
            c1=$(bench_table_counts $db "public.$BENCH_TOPN_TABLE")
            changed=$(q $db -c "SELECT count(*) FROM bench.topn_before b
                                FULL JOIN $BENCH_TOPN_TABLE a USING (user_id, region_id, stat_date)
                                WHERE (b.user_name, b.region_name, b.total_consumption, b.total_cost, b.ranking)
                                      IS DISTINCT FROM (a.user_name, a.region_name, a.total_consumption, a.total_cost, a.ranking)")
            read -r i0 u0 d0 <<<"$c0"
            read -r i1 u1 d1 <<<"$c1"
            bench_value $sc "topn_ms_$size" "$c" "$(calc "$s * 1000")" ms "$size users: $FLAT_ROWS-reading commit → sync()"
            bench_value $sc "rows_changed_$size" "$c" "$changed" rows "$size users: rows entering, leaving or changing in the top $TOPN"
            bench_value $sc "rows_written_$size" "$c" "$(( (i1 - i0) + (u1 - u0) + (d1 - d0) ))" rows "$size users: rows written to $BENCH_TOPN_TABLE (inserted + updated + deleted)"
        done
        q $db -c "DROP TABLE IF EXISTS bench.topn_before" >/dev/null
        bench_sync $db
        bench_verify $db
        bench_db_drop $db
    done
    bench_note $sc "After the runs at each size: verify() is clean."
}
