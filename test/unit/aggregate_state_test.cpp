// Unit tests of the aggregate operator over kept state (src/core/aggregate_state.cpp): the state
// table's columns per aggregate, the fold of a signed delta by upsert, the re-read of a retracted
// extreme, count(DISTINCT) by multiplicities, the outputs computed from the state with their
// parameters replaced, and the fallback to scoped recomputation.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "core/view_plan.hpp"

using namespace sgivm;
using Fn = ViewShape::Aggregate::Fn;

namespace {

bool contains(const std::string &haystack, const std::string &needle) { return haystack.find(needle) != std::string::npos; }

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_TRUE(contains((haystack), (needle))) << "expected to find\n  " << (needle) << "\nin\n  " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle) \
    EXPECT_FALSE(contains((haystack), (needle))) << "expected not to find\n  " << (needle) << "\nin\n  " << (haystack)

std::string all(const std::vector<std::string> &v) {
    std::string s;
    for (const std::string &x : v) s += x + ";\n";
    return s;
}

// dws_region_daily_stats over the detail view (relid 300): every aggregate kind.
ViewShape stats_shape() {
    ViewShape s;
    s.kind = ViewShape::Kind::Aggregate;
    s.view_table = "dw.dws_stats";
    s.view_relid = 400;
    s.deparsed = "SELECT region_id, (consumption_date)::date AS stat_date, sum(consumption_amount) AS total, "
                 "count(DISTINCT user_id) AS users, round(avg(consumption_amount), 2) AS avg_amount, "
                 "max(consumption_amount) AS max_amount, count(*) AS n, now() AS update_time\n   FROM dw.dwd_detail "
                 "dwd_detail\n  GROUP BY region_id, ((consumption_date)::date)";
    s.inputs = {ViewInput{300, "dw.dwd_detail"}};
    s.columns = {"region_id", "stat_date", "total", "users", "avg_amount", "max_amount", "n", "update_time"};
    s.types = {"integer", "date", "numeric", "bigint", "numeric", "numeric(10,2)", "bigint", "timestamp with time zone"};
    s.audit = {false, false, false, false, false, false, false, true};
    s.key = {"region_id", "stat_date"};
    s.group_exprs = {"region_id", "(consumption_date)::date"};
    s.group_columns = {"region_id", "stat_date"};
    s.scope = {0, 1};
    s.group_types = {"integer", "date"};
    s.aggregates = {{Fn::Sum, "consumption_amount", "numeric"},
                    {Fn::CountDistinct, "user_id", "bigint"},
                    {Fn::Avg, "consumption_amount", "numeric"},
                    {Fn::Max, "consumption_amount", "numeric(10,2)"},
                    {Fn::CountStar, "", ""}};
    s.outputs = {"$10001", "$10002", "$1", "$2", "round($3, 2)", "$4", "$5", "now()"};
    s.state_schema = "dw";
    return s;
}

TEST(AggregateState, PlannedDifferentialWithItsStateTables) {
    ViewPlan p = plan_view(stats_shape());
    EXPECT_EQ(p.strategy, "differential");
    EXPECT_EQ(p.strategy_reason, "");
    ASSERT_EQ(p.state_tables.size(), 2u);
    EXPECT_EQ(p.state_tables[0], "dw.\"sgivm_state_400\"");
    EXPECT_EQ(p.state_tables[1], "dw.\"sgivm_state_400_2\"");  // count(DISTINCT user_id), aggregate 2
    const std::string setup = all(p.state_setup);
    EXPECT_CONTAINS(setup, "CREATE TABLE IF NOT EXISTS dw.\"sgivm_state_400\" (sgivm_g1 integer, sgivm_g2 date, sgivm_n bigint "
                           "NOT NULL DEFAULT 0, sgivm_a1 numeric NOT NULL DEFAULT 0, sgivm_a1_n bigint NOT NULL DEFAULT 0, "
                           "sgivm_a2 bigint NOT NULL DEFAULT 0, sgivm_a3 numeric NOT NULL DEFAULT 0, sgivm_a3_n bigint NOT "
                           "NULL DEFAULT 0, sgivm_a4 numeric(10,2), sgivm_a4_x numeric(10,2), sgivm_reread boolean NOT NULL "
                           "DEFAULT false)");
    // NULL groups are groups: the key treats NULLs as equal
    EXPECT_CONTAINS(setup, "ON dw.\"sgivm_state_400\" (sgivm_g1, sgivm_g2) NULLS NOT DISTINCT");
    // and so no index can identify a row: each state table is published with its whole row
    EXPECT_CONTAINS(setup, "ALTER TABLE dw.\"sgivm_state_400\" REPLICA IDENTITY FULL");
    EXPECT_CONTAINS(setup, "ALTER TABLE dw.\"sgivm_state_400_2\" REPLICA IDENTITY FULL");
    EXPECT_CONTAINS(setup, "ON dw.\"sgivm_state_400_2\" (sgivm_g1, sgivm_g2, sgivm_v) NULLS NOT DISTINCT");
    // max() re-reads a group through an index on (group, argument) of the input
    EXPECT_CONTAINS(setup, "CREATE INDEX IF NOT EXISTS sgivm_x_400_0 ON dw.dwd_detail ((region_id), ((consumption_date)::date), "
                           "(consumption_amount))");
}

TEST(AggregateState, FoldIsOneUpsertOfTheSignedDeltaGroupedArithmeticOnConflict) {
    ViewPlan p = plan_view(stats_shape());
    ASSERT_FALSE(p.state_apply.empty());
    const std::string &fold = p.state_apply[0];
    EXPECT_CONTAINS(fold, "INSERT INTO dw.\"sgivm_state_400\" AS t (sgivm_g1, sgivm_g2, sgivm_n, sgivm_a1, sgivm_a1_n, sgivm_a2, ");
    EXPECT_CONTAINS(fold, "SELECT (region_id), ((consumption_date)::date), sum(sgivm_m), ");
    EXPECT_CONTAINS(fold, "coalesce(sum((consumption_amount)) FILTER (WHERE sgivm_m > 0), 0)::numeric - "
                          "coalesce(sum((consumption_amount)) FILTER (WHERE sgivm_m < 0), 0)::numeric");
    EXPECT_CONTAINS(fold, " FROM pg_temp.sgivm_delta_300 GROUP BY 1, 2 ON CONFLICT (sgivm_g1, sgivm_g2) DO UPDATE SET ");
    EXPECT_CONTAINS(fold, "sgivm_n = t.sgivm_n + excluded.sgivm_n");
    EXPECT_CONTAINS(fold, "sgivm_a1 = t.sgivm_a1 + excluded.sgivm_a1, sgivm_a1_n = t.sgivm_a1_n + excluded.sgivm_a1_n");
    // an inserted value can only raise the max; a retracted one that was the max marks a re-read
    EXPECT_CONTAINS(fold, "sgivm_a4 = GREATEST(t.sgivm_a4, excluded.sgivm_a4)");
    EXPECT_CONTAINS(fold, "sgivm_reread = t.sgivm_reread OR (excluded.sgivm_a4_x IS NOT NULL AND (t.sgivm_a4 IS NULL OR "
                          "excluded.sgivm_a4_x >= t.sgivm_a4))");
    // the fold never reads the input: only the delta
    EXPECT_NOT_CONTAINS(fold, "dw.dwd_detail");
}

TEST(AggregateState, CountDistinctByMultiplicityThenTheGroupsCountMoves) {
    ViewPlan p = plan_view(stats_shape());
    const std::string apply = all(p.state_apply);
    EXPECT_CONTAINS(apply, "INSERT INTO dw.\"sgivm_state_400_2\" AS t (sgivm_g1, sgivm_g2, sgivm_v, sgivm_n, sgivm_dm) SELECT "
                           "(region_id), ((consumption_date)::date), (user_id), sum(sgivm_m), sum(sgivm_m) FROM "
                           "pg_temp.sgivm_delta_300 WHERE (user_id) IS NOT NULL GROUP BY 1, 2, 3 HAVING sum(sgivm_m) <> 0");
    EXPECT_CONTAINS(apply, "WHEN sgivm_n > 0 AND sgivm_n - sgivm_dm <= 0 THEN 1 WHEN sgivm_n <= 0 AND sgivm_n - sgivm_dm > 0 "
                           "THEN -1");
    EXPECT_CONTAINS(apply, "DO UPDATE SET sgivm_a2 = t.sgivm_a2 + excluded.sgivm_a2");
    // values at multiplicity 0 go, found through a partial index of only them (not the group's range)
    EXPECT_CONTAINS(apply, "DELETE FROM dw.\"sgivm_state_400_2\" WHERE sgivm_n = 0;");
    EXPECT_CONTAINS(all(p.state_setup), "ON dw.\"sgivm_state_400_2\" (sgivm_n) WHERE sgivm_n = 0");
}

TEST(AggregateState, ExtremesReReadOnlyFlaggedTouchedGroupsThenEmptyGroupsGo) {
    ViewPlan p = plan_view(stats_shape());
    const std::string apply = all(p.state_apply);
    EXPECT_CONTAINS(apply, "UPDATE dw.\"sgivm_state_400\" t SET sgivm_a4 = CASE WHEN t.sgivm_g1 IS NULL OR t.sgivm_g2 IS NULL "
                           "THEN (SELECT max((consumption_amount)) FROM dw.dwd_detail WHERE (region_id) IS NOT DISTINCT FROM "
                           "t.sgivm_g1 AND ((consumption_date)::date) IS NOT DISTINCT FROM t.sgivm_g2) ELSE (SELECT "
                           "max((consumption_amount)) FROM dw.dwd_detail WHERE (region_id) = t.sgivm_g1 AND "
                           "((consumption_date)::date) = t.sgivm_g2) END, sgivm_reread = false WHERE t.sgivm_reread;");
    // flagged and emptied groups are found through partial indexes of only them
    EXPECT_CONTAINS(all(p.state_setup), "ON dw.\"sgivm_state_400\" (sgivm_reread) WHERE sgivm_reread");
    EXPECT_CONTAINS(all(p.state_setup), "ON dw.\"sgivm_state_400\" (sgivm_n) WHERE sgivm_n = 0");
    // the groups go after the re-read and the distinct counts: the last statement
    EXPECT_EQ(p.state_apply.back(), "DELETE FROM dw.\"sgivm_state_400\" WHERE sgivm_n = 0");
}

TEST(AggregateState, ComputeReadsTheTouchedGroupsStateWithParametersReplaced) {
    ViewShape s = stats_shape();
    s.having = "$5 > 1";
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.compute, "INSERT INTO pg_temp.sgivm_new_400 (\"region_id\", \"stat_date\", \"total\", \"users\", "
                               "\"avg_amount\", \"max_amount\", \"n\", \"update_time\") SELECT t.sgivm_g1, t.sgivm_g2, (CASE "
                               "WHEN t.sgivm_a1_n = 0 THEN NULL ELSE t.sgivm_a1 END), (t.sgivm_a2), round((CASE WHEN "
                               "t.sgivm_a3_n = 0 THEN NULL ELSE t.sgivm_a3::numeric / t.sgivm_a3_n::numeric END), 2), "
                               "(t.sgivm_a4), (t.sgivm_n), now() FROM (SELECT * FROM dw.\"sgivm_state_400\" t WHERE ");
    EXPECT_CONTAINS(p.compute, ") t WHERE (t.sgivm_n) > 1");
    EXPECT_NOT_CONTAINS(p.compute, "dw.dwd_detail");
    // the keyed diff after it is the one of scoped recomputation
    EXPECT_FALSE(p.update.empty());
}

TEST(AggregateState, ParametersInsideQuotesOrIdentifiersStay) {
    ViewShape s = stats_shape();
    s.outputs[7] = "'$1 and \"$2\"' || \"a$1\" || x$1 || $1";
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.compute, "'$1 and \"$2\"' || \"a$1\" || x$1 || (CASE WHEN t.sgivm_a1_n = 0");
    s.outputs[7] = "$9";  // no such aggregate
    EXPECT_THROW(plan_view(s), std::runtime_error);
}

TEST(AggregateState, FallbackKeepsScopedRecomputationAndSaysWhy) {
    ViewShape s = stats_shape();
    s.aggregates.clear();
    s.outputs.clear();
    s.fallback = "a ranking window";
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.strategy, "recompute");
    EXPECT_EQ(p.strategy_reason, "a ranking window");
    EXPECT_TRUE(p.state_tables.empty());
    EXPECT_TRUE(p.state_apply.empty());
    EXPECT_CONTAINS(p.compute, "WITH sgivm_in_300 AS (SELECT * FROM dw.dwd_detail WHERE ");
}

TEST(AggregateState, StateRoundTripsThroughJson) {
    ViewShape s = stats_shape();
    ViewPlan p = plan_view(s);
    StoredViewPlan back = plan_from_json(plan_to_json(s, p));
    EXPECT_EQ(back.plan.strategy, "differential");
    EXPECT_EQ(back.plan.state_tables, p.state_tables);
    EXPECT_EQ(back.plan.state_setup, p.state_setup);
    EXPECT_EQ(back.plan.state_fill, p.state_fill);
    EXPECT_EQ(back.plan.state_apply, p.state_apply);
    EXPECT_EQ(back.plan.compute, p.compute);
}

TEST(AggregateState, ProjectionIsDifferentialByKey) {
    ViewShape s;
    s.kind = ViewShape::Kind::Projection;
    s.view_table = "dw.d";
    s.view_relid = 10;
    s.deparsed = "SELECT c.id, c.x FROM dw.c c";
    s.inputs = {ViewInput{5, "dw.c"}};
    s.columns = {"id", "x"};
    s.types = {"bigint", "integer"};
    s.audit = {false, false};
    s.key = {"id"};
    s.fact_key = {"id"};
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.strategy, "differential");
    EXPECT_TRUE(p.state_tables.empty());
}

}  // namespace

namespace {

// dws_user_ranking: groups (user_id, region_id, day), row_number by total DESC within (day, region).
ViewShape ranking_shape() {
    ViewShape s;
    s.kind = ViewShape::Kind::Aggregate;
    s.view_table = "dw.dws_ranking";
    s.view_relid = 500;
    s.deparsed = "SELECT user_id, region_id, (consumption_date)::date AS stat_date, sum(consumption_amount) AS total, "
                 "row_number() OVER (PARTITION BY ((consumption_date)::date), region_id ORDER BY (sum(consumption_amount)) "
                 "DESC, user_id) AS ranking\n   FROM dw.dwd_detail dwd_detail\n  GROUP BY user_id, region_id, "
                 "((consumption_date)::date)";
    s.inputs = {ViewInput{300, "dw.dwd_detail"}};
    s.columns = {"user_id", "region_id", "stat_date", "total", "ranking"};
    s.types = {"bigint", "integer", "date", "numeric", "bigint"};
    s.audit = {false, false, false, false, false};
    s.key = {"user_id", "region_id", "stat_date"};
    s.group_exprs = {"user_id", "region_id", "(consumption_date)::date"};
    s.group_columns = {"user_id", "region_id", "stat_date"};
    s.group_types = {"bigint", "integer", "date"};
    s.scope = {0, 1, 2};  // the changed groups; the partition bounds the ranges
    s.rank_partition = {2, 1};
    s.aggregates = {{Fn::Sum, "consumption_amount", "numeric"}};
    s.outputs = {"$10001", "$10002", "$10003", "$1", ""};
    s.rank_fn = "row_number";
    s.rank_column = 4;
    s.rank_order = {{"$1", "numeric", true, true}, {"$10001", "bigint", false, false}};
    s.state_schema = "dw";
    return s;
}

TEST(RankingState, RangeStatementsSnapshotTheOldKeysFirstAndRankFromTheBase) {
    ViewPlan p = plan_view(ranking_shape());
    EXPECT_EQ(p.strategy, "differential");
    // the changed groups' keys before the fold: the first statement of the batch
    EXPECT_CONTAINS(p.state_apply.front(), "INSERT INTO pg_temp.sgivm_rk_500 SELECT * FROM (SELECT t.sgivm_g3, t.sgivm_g2, ");
    // a batch of many changed groups ranks its partitions whole instead
    EXPECT_CONTAINS(p.state_apply.front(), ") k WHERE (SELECT count(*) FROM pg_temp.sgivm_aff_500) < 5000");
    EXPECT_CONTAINS(p.compute, " UNION ALL SELECT ");
    EXPECT_CONTAINS(p.compute, "row_number() OVER (PARTITION BY t.sgivm_g3, t.sgivm_g2 ORDER BY ");
    EXPECT_CONTAINS(p.state_apply.front(), ", true FROM dw.\"sgivm_state_500\" t WHERE ");
    // the state in the ranking's order (partition, then keys, ties by the groups)
    EXPECT_CONTAINS(all(p.state_setup), "ON dw.\"sgivm_state_500\" (sgivm_g3, sgivm_g2, ((CASE WHEN sgivm_a1_n = 0 THEN NULL "
                                        "ELSE sgivm_a1 END)) DESC NULLS FIRST, (sgivm_g1) ASC NULLS LAST, (sgivm_g1) ASC NULLS LAST, (sgivm_g2) ASC");
    // the rows before the range: from old ranks of the view, never a count of the partition
    EXPECT_CONTAINS(p.state_apply.back(), "UPDATE pg_temp.sgivm_rr_500 rr SET sgivm_base = coalesce(LEAST(");
    EXPECT_NOT_CONTAINS(p.state_apply.back(), "count(*)");
    EXPECT_CONTAINS(p.compute, "rr.sgivm_base + row_number() OVER (PARTITION BY rr.sgivm_p1, rr.sgivm_p2 ORDER BY ");
    // moved rows are updated by key (no scope); only changed groups come and go; no replace path
    ASSERT_EQ(p.uncaptured.update.size(), 1u);
    EXPECT_NOT_CONTAINS(p.uncaptured.update[0], "sgivm_aff_500");
    EXPECT_CONTAINS(p.uncaptured.recompute, "(n.\"user_id\", n.\"region_id\", n.\"stat_date\") IN (SELECT sgivm_k1, sgivm_k2, "
                                            "sgivm_k3 FROM pg_temp.sgivm_aff_500)");
    EXPECT_TRUE(p.replace_insert.empty());
}

TEST(RankingState, RankCountsTiesOfTheLastRowNotGroupTiebreaks) {
    ViewShape s = ranking_shape();
    s.rank_fn = "rank";
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.compute, "rr.sgivm_base + rank() OVER (");
    // rank(): no group columns appended to the order
    EXPECT_NOT_CONTAINS(all(p.state_setup), "(sgivm_g1) ASC NULLS LAST, (sgivm_g1) ASC NULLS LAST");
    EXPECT_CONTAINS(p.state_apply.back(), "(SELECT count(*) FROM ");
}

TEST(RankingState, TopNReadsTheFirstNOfEachTouchedPartitionFromTheState) {
    ViewShape s = ranking_shape();
    s.top_n = 100;
    s.scope = s.rank_partition;  // a top-N's scope stays the partition
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.strategy, "differential");
    EXPECT_CONTAINS(p.compute, "FROM (SELECT DISTINCT sgivm_k1, sgivm_k2 FROM pg_temp.sgivm_aff_500) pp CROSS JOIN LATERAL");
    EXPECT_CONTAINS(p.compute, "t.sgivm_g3 = pp.sgivm_k1 AND t.sgivm_g2 = pp.sgivm_k2 ORDER BY ");
    EXPECT_CONTAINS(p.compute, " LIMIT 100)");
    EXPECT_CONTAINS(p.compute, "WHERE t.sgivm_r <= 100");
    // no range statements: the state's fold only
    for (const std::string &st : p.state_apply) EXPECT_NOT_CONTAINS(st, "sgivm_rr_500");
    s.rank_fn = "rank";
    EXPECT_CONTAINS(plan_view(s).compute, "FETCH FIRST 100 ROWS WITH TIES");
}

}  // namespace

namespace {

// The view's WHERE filters every statement that reads the input or its delta.
TEST(AggregateState, WhereFiltersFillFoldDistinctAndReRead) {
    ViewShape s = stats_shape();
    s.filter = "consumption_amount >= 250";
    ViewPlan p = plan_view(s);
    const std::string fill = all(p.state_fill), apply = all(p.state_apply);
    EXPECT_CONTAINS(fill, "FROM dw.dwd_detail WHERE (consumption_amount >= 250) GROUP BY");
    EXPECT_CONTAINS(fill, "IS NOT NULL AND (consumption_amount >= 250) GROUP BY");
    EXPECT_CONTAINS(apply, "FROM pg_temp.sgivm_delta_300 WHERE (consumption_amount >= 250) GROUP BY");
    EXPECT_CONTAINS(apply, "IS NOT NULL AND (consumption_amount >= 250) GROUP BY");
    EXPECT_CONTAINS(apply, "= t.sgivm_g2 AND (consumption_amount >= 250))");
    EXPECT_NOT_CONTAINS(all(plan_view(stats_shape()).state_apply), "consumption_amount >= 250");
}

// A numeric sum counts its NaNs apart: the kept sum never holds one.
TEST(AggregateState, NumericSumsCountNaNApart) {
    ViewShape s = stats_shape();
    s.aggregates[0].nan = true;
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.state_setup[0], "sgivm_a1_nan bigint NOT NULL DEFAULT 0");
    EXPECT_NOT_CONTAINS(p.state_setup[0], "sgivm_a3_nan");
    EXPECT_CONTAINS(all(p.state_apply), "sum(nullif((consumption_amount), 'NaN'))");
    EXPECT_CONTAINS(all(p.state_apply), "sgivm_a1_nan = t.sgivm_a1_nan + excluded.sgivm_a1_nan");
    EXPECT_CONTAINS(p.compute, "WHEN t.sgivm_a1_nan > 0 THEN 'NaN'::numeric");
}

// A group the fold inserts (no conflict) is re-read when the batch also retracted an extreme.
TEST(AggregateState, NewGroupWithRetractedExtremeIsReRead) {
    ViewPlan p = plan_view(stats_shape());
    EXPECT_CONTAINS(all(p.state_apply), "max((consumption_amount)) FILTER (WHERE sgivm_m < 0) IS NOT NULL FROM");
    EXPECT_CONTAINS(all(p.state_fill), ", false FROM dw.dwd_detail");
}

// Without GROUP BY: a single state row, kept at count 0 (the row of an empty input), folded by
// an UPDATE from the delta summed to one row; the view's one row is diffed by its empty key.
ViewShape total_shape() {
    ViewShape s = stats_shape();
    s.deparsed = "SELECT sum(consumption_amount) AS total, count(DISTINCT user_id) AS users, round(avg(consumption_amount), "
                 "2) AS avg_amount, max(consumption_amount) AS max_amount, count(*) AS n, now() AS update_time\n   FROM "
                 "dw.dwd_detail dwd_detail";
    s.columns.erase(s.columns.begin(), s.columns.begin() + 2);
    s.types.erase(s.types.begin(), s.types.begin() + 2);
    s.audit.erase(s.audit.begin(), s.audit.begin() + 2);
    s.outputs.erase(s.outputs.begin(), s.outputs.begin() + 2);
    s.key.clear();
    s.group_exprs.clear();
    s.group_columns.clear();
    s.group_types.clear();
    s.scope.clear();
    return s;
}

TEST(AggregateState, WithoutGroupByOneStateRowKeptAtCountZero) {
    ViewPlan p = plan_view(total_shape());
    EXPECT_EQ(p.strategy, "differential");
    const std::string setup = all(p.state_setup), fill = all(p.state_fill), apply = all(p.state_apply);
    EXPECT_CONTAINS(setup, "CREATE TABLE IF NOT EXISTS dw.\"sgivm_state_400\" (sgivm_n bigint NOT NULL DEFAULT 0, sgivm_a1 ");
    EXPECT_NOT_CONTAINS(setup, "sgivm_state_400_key");  // (no group key: one row)
    EXPECT_CONTAINS(setup, "ON dw.\"sgivm_state_400_2\" (sgivm_v) NULLS NOT DISTINCT");
    EXPECT_CONTAINS(setup, "CREATE INDEX IF NOT EXISTS sgivm_x_400_0 ON dw.dwd_detail ((consumption_amount))");
    // filled by one aggregate row, also over an empty input
    EXPECT_CONTAINS(fill, "SELECT count(*), coalesce(sum((consumption_amount))::numeric, 0)");
    EXPECT_NOT_CONTAINS(fill, "GROUP BY 1, 2");
    EXPECT_CONTAINS(fill, "SELECT (user_id), count(*) FROM dw.dwd_detail WHERE (user_id) IS NOT NULL GROUP BY 1");
    // folded by an UPDATE of the one row from the delta summed to one row (none if empty)
    EXPECT_CONTAINS(apply, "UPDATE dw.\"sgivm_state_400\" AS t SET sgivm_n = t.sgivm_n + excluded.sgivm_n, ");
    EXPECT_CONTAINS(apply, " AS sgivm_n, ");
    EXPECT_CONTAINS(apply, "FROM pg_temp.sgivm_delta_300 HAVING count(*) > 0) excluded");
    EXPECT_CONTAINS(apply, "ON CONFLICT (sgivm_v) DO UPDATE");
    EXPECT_CONTAINS(apply, "FROM sgivm_values HAVING count(*) > 0) excluded");
    EXPECT_NOT_CONTAINS(apply, "ON CONFLICT ()");
    // the row stays at count 0; the extreme is read again over the whole input
    EXPECT_NOT_CONTAINS(apply, "DELETE FROM dw.\"sgivm_state_400\" WHERE sgivm_n = 0");
    EXPECT_CONTAINS(apply, "sgivm_a4 = (SELECT max((consumption_amount)) FROM dw.dwd_detail), sgivm_reread = false");
    EXPECT_EQ(p.compute, "INSERT INTO pg_temp.sgivm_new_400 (\"total\", \"users\", \"avg_amount\", \"max_amount\", \"n\", "
                         "\"update_time\") SELECT (CASE WHEN t.sgivm_a1_n = 0 THEN NULL ELSE t.sgivm_a1 END), (t.sgivm_a2), "
                         "round((CASE WHEN t.sgivm_a3_n = 0 THEN NULL ELSE t.sgivm_a3::numeric / t.sgivm_a3_n::numeric END), 2), "
                         "(t.sgivm_a4), (t.sgivm_n), now() FROM dw.\"sgivm_state_400\" t");
}

TEST(AggregateState, WithoutGroupByTheViewsOneRowIsDiffedByItsEmptyKey) {
    ViewShape s = total_shape();
    s.filter = "consumption_amount >= 250";
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.fill_affected, "INSERT INTO pg_temp.sgivm_aff_400 SELECT true FROM pg_temp.sgivm_delta_300 LIMIT 1");
    ASSERT_EQ(p.remove.size(), 1u);
    EXPECT_CONTAINS(p.remove[0], "DELETE FROM dw.dws_stats t WHERE true AND NOT EXISTS (SELECT 1 FROM pg_temp.sgivm_new_400 n WHERE true)");
    EXPECT_CONTAINS(p.uncaptured.update[0], "FROM pg_temp.sgivm_new_400 n WHERE true AND ROW(");
    EXPECT_CONTAINS(p.recompute, "WHERE NOT EXISTS (SELECT 1 FROM dw.dws_stats t WHERE true AND true)");
    EXPECT_EQ(p.uncaptured.replace_remove, std::vector<std::string>{"DELETE FROM dw.dws_stats WHERE true"});
    EXPECT_TRUE(p.indexes.empty());
    const std::string apply = all(p.state_apply);
    EXPECT_CONTAINS(apply, "FROM pg_temp.sgivm_delta_300 WHERE (consumption_amount >= 250) HAVING count(*) > 0) excluded");
    EXPECT_CONTAINS(apply, "(SELECT max((consumption_amount)) FROM dw.dwd_detail WHERE (consumption_amount >= 250))");
}

// Without delta rules the one row is recomputed from the whole input.
TEST(AggregateState, WithoutGroupByFallbackRecomputesTheWholeView) {
    ViewShape s = total_shape();
    s.fallback = "sum() over double precision";
    s.aggregates.clear();
    s.outputs.clear();
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.strategy, "recompute");
    EXPECT_CONTAINS(p.strategy_reason, "without GROUP BY, every change recomputes the whole view");
    EXPECT_CONTAINS(p.compute, "WITH sgivm_in_300 AS (SELECT * FROM dw.dwd_detail) SELECT sum(consumption_amount)");
    EXPECT_TRUE(p.indexes.empty());
}

// min(x) and max(x) of one argument read the same index.
TEST(AggregateState, ExtremesOfOneArgumentShareTheirIndex) {
    ViewShape s = stats_shape();
    s.aggregates.push_back({Fn::Min, "consumption_amount", "numeric(10,2)"});
    s.outputs.push_back("$6");
    s.columns.push_back("min_amount");
    s.types.push_back("numeric(10,2)");
    s.audit.push_back(false);
    ViewPlan p = plan_view(s);
    const std::string setup = all(p.state_setup);
    EXPECT_CONTAINS(setup, "sgivm_x_400_0 ON dw.dwd_detail");
    EXPECT_NOT_CONTAINS(setup, "sgivm_x_400_1");
    EXPECT_CONTAINS(all(p.state_apply), "sgivm_a6 = CASE WHEN");
}

}  // namespace
