# Scenario "small_change" (issue 15): a commit of FLAT_ROWS readings into a one-day warehouse of
# N users, N in FLAT_USERS; time from its commit until sync() returns, median over FLAT_COMMITS
# commits. (a) a pipeline of only the DWD detail and the region daily statistics (no ranking):
# flat across N, and against recomputing those two views at the largest N; (b) the whole
# warehouse, ranking included: the ranks each commit changes, and the same number of rows
# rewritten by a plain UPDATE of dws_user_ranking. Sourced by bench/run.
# shellcheck shell=bash

BENCH_TWO_VIEWS="dwd_power_consumption_detail dws_region_daily_stats"

scenario_small_change() {
    local sc=small_change db=bench_flat sizes size last
    IFS=, read -r -a sizes <<<"$FLAT_USERS"
    last=${sizes[${#sizes[@]} - 1]}
    bench_scenario $sc "Small change, flat" "A one-day warehouse of N users (N = ${FLAT_USERS//,/, }; generate_sample_data, one reading each), a fresh database per N; $FLAT_COMMITS commits of $FLAT_ROWS readings of random users of that day (after one warm-up commit), each timed from its commit until sync() returns. (a) pipeline of only dwd_power_consumption_detail and dws_region_daily_stats (add_source / add_view, no ranking); (b) then the whole warehouse (create_stategrid_pipeline, ranking included) over the same sources: the ranks each commit changes, and a plain UPDATE of as many rows of dws_user_ranking (SET ranking = -ranking on exactly those rows, one transaction; undone afterwards, untimed)"
    # declared first, so that a failing run still lists them (NOT MEASURED)
    bench_flat_growth $sc two_views_ms_ "(a) DWD detail + region stats"
    bench_ratio $sc two_views_vs_recompute "two_views_ms_$last" recompute_two_views_ms "(a) commit → sync / recomputing the two views, at $last users"
    bench_target $sc t_vs_recompute two_views_vs_recompute le 0.05 "(a) $FLAT_ROWS-reading commit ≤ 1/20 of recomputing DWD detail + region stats, at $last users"
    for size in "${sizes[@]}"; do
        bench_ratio $sc "ranking_vs_update_$size" "ranking_ms_$size" "update_ms_$size" "(b) commit → sync / plain UPDATE of as many dws_user_ranking rows as ranks changed, at $size users"
        bench_target $sc "t_ranking_$size" "ranking_vs_update_$size" le 2 "(b) with the ranking, at $size users: ≤ 2× a plain UPDATE of the rows whose rank changed"
    done
    bench_info $sc users "$FLAT_USERS"
    bench_info $sc readings_per_commit "$FLAT_ROWS"
    bench_info $sc commits_per_size "$FLAT_COMMITS"
    for size in "${sizes[@]}"; do
        bench_log "-- $size users"
        bench_flat_db "$db" "$size"
        bench_small_change_two_views "$db" "$size" "$([ "$size" = "$last" ] && echo 1 || echo 0)"
        bench_small_change_ranking "$db" "$size" "$([ "$size" = "$last" ] && echo 1 || echo 0)"
        bench_db_drop "$db"
    done
    bench_note $sc "After each variant at each size: verify() is clean."
    bench_note $sc "Ranks changed: rows of the day's dws_user_ranking whose ranking differs from a copy taken before the commit (or that are new). A reading that lifts a user past k others changes k + 1 ranks; their number grows with the users per ranking partition (N / 31 regions)."
    if [ "$last" -lt 1000000 ] && [ "$MODE" != quick ]; then
        bench_note $sc "Scaled down: up to $last users instead of issue 15's 10,000, 100,000 and 1,000,000 (--flat-users 10000,100000,1000000, or --full)."
    fi
}

# (a) DB SIZE LARGEST: the pipeline of the two views, FLAT_COMMITS timed commits; at the largest
# size the recomputation of the two views (pipeline paused), REPEATS times. Drops the pipeline
# and its tables at the end.
bench_small_change_two_views() {
    local sc=small_change db=$1 size=$2 largest=$3 rep views
    # shellcheck disable=SC2086  # the view names are words
    bench_pipeline_create_views "$db" $BENCH_TWO_VIEWS
    bench_pipeline_start "$db"
    bench_commit_series "$db" "CALL bench.small_change($FLAT_ROWS, $size, '$BENCH_WH_START')" $sc "two_views_ms_$size" \
        "(a) DWD detail + region stats, $size users: $FLAT_ROWS-reading commit → sync()"
    bench_sync "$db"
    bench_verify "$db"
    if [ "$largest" = 1 ]; then
        views="ARRAY['${BENCH_TWO_VIEWS// /\',\'}']"
        bench_pause "$db"
        q "$db" -c "SELECT bench.recompute_prepare($views)" >/dev/null
        for rep in $(seq 1 "$REPEATS"); do
            bench_recompute_time "$db" "$views"
            bench_value $sc recompute_two_views_ms "$rep" "$(calc "$RC_S * 1000")" ms "(a) recomputing DWD detail + region stats at $size users (TRUNCATE + INSERT ... SELECT, one transaction)"
        done
        q "$db" -c "DROP SCHEMA bench_recompute CASCADE" >/dev/null
    fi
    bench_pipeline_drop "$db"
}

# (b) DB SIZE LARGEST: the whole warehouse; per commit the ranks it changed and a plain UPDATE
# of as many rows; at the largest size the recomputation of the whole warehouse for context.
bench_small_change_ranking() {
    local sc=small_change db=$1 size=$2 largest=$3 c s changed u rep
    local day=$BENCH_WH_START set_neg
    bench_pipeline_create "$db"
    bench_small_change_time "$db" "$size" >/dev/null
    set_neg="SELECT stategrid_ivm._allow_direct_write('public.dws_user_ranking'::regclass);
             UPDATE dws_user_ranking r SET ranking = -r.ranking FROM bench.rank_changed c
             WHERE r.user_id = c.user_id AND r.region_id = c.region_id AND r.stat_date = '$day'"
    for c in $(seq 1 "$FLAT_COMMITS"); do
        q "$db" -c "DROP TABLE IF EXISTS bench.rank_before" \
              -c "CREATE TABLE bench.rank_before AS SELECT user_id, region_id, ranking FROM dws_user_ranking WHERE stat_date = '$day'" >/dev/null
        s=$(bench_small_change_time "$db" "$size")
        changed=$(q "$db" -c "DROP TABLE IF EXISTS bench.rank_changed" \
            -c "CREATE TABLE bench.rank_changed AS SELECT r.user_id, r.region_id FROM dws_user_ranking r
                LEFT JOIN bench.rank_before b USING (user_id, region_id)
                WHERE r.stat_date = '$day' AND r.ranking IS DISTINCT FROM b.ranking" \
            -c "ANALYZE bench.rank_changed" -c "SELECT count(*) FROM bench.rank_changed")
        # the baseline: the same number of rows of the same table rewritten by one UPDATE
        u=$(q "$db" -c "SELECT extract(epoch FROM clock_timestamp())" -c "$set_neg" -c "SELECT extract(epoch FROM clock_timestamp())" |
            awk 'NR == 1 { a = $1 } END { printf "%.6f", $1 - a }')
        q "$db" -c "$set_neg" >/dev/null
        bench_sync "$db"
        bench_value $sc "ranking_ms_$size" "$c" "$(calc "$s * 1000")" ms "(b) whole warehouse, $size users: $FLAT_ROWS-reading commit → sync()"
        bench_value $sc "ranks_changed_$size" "$c" "$changed" rows "(b) ranks the commit changed, $size users"
        bench_value $sc "ms_per_1000_ranks_$size" "$c" "$(calc "$s * 1000000 / ($changed > 0 ? $changed : 1)")" ms "(b) commit → sync per 1,000 changed ranks, $size users"
        bench_value $sc "update_ms_$size" "$c" "$(calc "$u * 1000")" ms "(b) baseline: plain UPDATE of as many rows of dws_user_ranking as the commit changed ranks, $size users"
    done
    q "$db" -c "DROP TABLE IF EXISTS bench.rank_before, bench.rank_changed" >/dev/null
    bench_sync "$db"
    bench_verify "$db"
    if [ "$largest" = 1 ]; then
        bench_pause "$db"
        q "$db" -c "SELECT bench.recompute_prepare()" >/dev/null
        for rep in $(seq 1 "$REPEATS"); do
            bench_recompute_time "$db"
            bench_value $sc recompute_all_ms "$rep" "$(calc "$RC_S * 1000")" ms "(b) for context: recomputing DWD + DWS at $size users"
        done
        q "$db" -c "DROP SCHEMA bench_recompute CASCADE" -c "SELECT stategrid_ivm.resume_pipeline('stategrid')" >/dev/null
    fi
    bench_pipeline_drop "$db"
}
