// Unit tests of the view maintenance planner (src/core/view_plan.hpp): the statements plan_view
// generates for a projection with a LEFT JOIN, an aggregate and a ranking (scope = a subset of
// the groups), the errors it raises for shapes it cannot plan, and plan_to_json's escaping.
#include "core/view_plan.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace sgivm;

namespace {

bool contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

size_t count_of(const std::string &haystack, const std::string &needle) {
    size_t n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + needle.size()))
        n++;
    return n;
}

#define EXPECT_CONTAINS(haystack, needle) \
    EXPECT_TRUE(contains((haystack), (needle))) << "expected to find\n  " << (needle) << "\nin\n  " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle) \
    EXPECT_FALSE(contains((haystack), (needle))) << "expected not to find\n  " << (needle) << "\nin\n  " << (haystack)

// dwd_power_consumption_detail: ods_power_consumption (relid 200) LEFT JOIN ods_power_user (100).
ViewShape detail_shape() {
    ViewShape s;
    s.kind = ViewShape::Kind::Projection;
    s.view_table = "dw.dwd_detail";
    s.view_relid = 300;
    s.deparsed =
        "SELECT c.consumption_id, c.user_id, COALESCE(u.region_id, 0) AS region_id, c.consumption_amount, "
        "now() AS etl_time\n   FROM (dw.ods_power_consumption c\n     LEFT JOIN dw.ods_power_user u ON "
        "((c.user_id = u.user_id)))";
    s.inputs = {ViewInput{200, "dw.ods_power_consumption"}, ViewInput{100, "dw.ods_power_user"}};
    s.columns = {"consumption_id", "user_id", "region_id", "consumption_amount", "etl_time"};
    s.types = {"bigint", "bigint", "integer", "numeric(10,2)", "timestamp with time zone"};
    s.audit = {false, false, false, false, true};
    s.key = {"consumption_id"};
    s.fact_key = {"consumption_id"};
    s.joins = {ViewShape::Join{1, "user_id", "user_id"}};
    return s;
}

// dws_region_daily_stats over the detail view (relid 300), grouped by region and day.
ViewShape stats_shape() {
    ViewShape s;
    s.kind = ViewShape::Kind::Aggregate;
    s.view_table = "dw.dws_stats";
    s.view_relid = 400;
    s.deparsed =
        "SELECT region_id, (consumption_date)::date AS stat_date, sum(consumption_amount) AS total, "
        "max(consumption_amount) AS max_amount, now() AS update_time\n   FROM dw.dwd_detail dwd_detail\n  GROUP BY "
        "region_id, ((consumption_date)::date)";
    s.inputs = {ViewInput{300, "dw.dwd_detail"}};
    s.columns = {"region_id", "stat_date", "total", "max_amount", "update_time"};
    s.types = {"integer", "date", "numeric", "numeric", "timestamp with time zone"};
    s.audit = {false, false, false, false, true};
    s.key = {"region_id", "stat_date"};
    s.group_exprs = {"region_id", "(consumption_date)::date"};
    s.group_columns = {"region_id", "stat_date"};
    s.scope = {0, 1};
    return s;
}

// dws_user_ranking: groups (user_id, region_id, day), ranking partitioned by (day, region_id).
ViewShape ranking_shape() {
    ViewShape s;
    s.kind = ViewShape::Kind::Aggregate;
    s.view_table = "dw.dws_ranking";
    s.view_relid = 500;
    s.deparsed =
        "SELECT user_id, region_id, (consumption_date)::date AS stat_date, sum(consumption_amount) AS total, "
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
    s.scope = {2, 1};  // PARTITION BY day, region_id
    return s;
}

// ---- helpers ---------------------------------------------------------------------------------

TEST(ViewPlanHelpers, TableNamesAndQuoting) {
    EXPECT_EQ(delta_table(16384), "pg_temp.sgivm_delta_16384");
    EXPECT_EQ(affected_table(16384), "pg_temp.sgivm_aff_16384");
    EXPECT_EQ(delta_table(0), "pg_temp.sgivm_delta_0");
    EXPECT_EQ(delta_table(4294967295u), "pg_temp.sgivm_delta_4294967295");
    EXPECT_EQ(quote_identifier("region_id"), "\"region_id\"");
    EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
    EXPECT_EQ(quote_identifier("\"\""), "\"\"\"\"\"\"");
    EXPECT_EQ(quote_identifier(""), "\"\"");
    EXPECT_EQ(quote_identifier("地区"), "\"地区\"");
}

// ---- projection with a LEFT JOIN -------------------------------------------------------------

TEST(ViewPlanProjection, SetupCreatesDeltaAffectedAndNewRowsTables) {
    ViewPlan p = plan_view(detail_shape());
    ASSERT_EQ(p.setup.size(), 3u);
    // the view's columns only, without constraints: an adopted table may have more columns
    EXPECT_EQ(p.setup[2], "CREATE TEMP TABLE IF NOT EXISTS sgivm_new_300 ON COMMIT DELETE ROWS AS SELECT \"consumption_id\", "
                          "\"user_id\", \"region_id\", \"consumption_amount\", \"etl_time\" FROM dw.dwd_detail WITH NO DATA");
    EXPECT_EQ(p.setup[0], "CREATE TEMP TABLE IF NOT EXISTS sgivm_delta_300 (LIKE dw.dwd_detail, sgivm_m smallint NOT NULL) ON COMMIT DELETE ROWS");
    EXPECT_EQ(p.setup[1],
              "CREATE TEMP TABLE IF NOT EXISTS sgivm_aff_300 ON COMMIT DELETE ROWS AS SELECT \"consumption_id\" AS sgivm_k1 "
              "FROM dw.ods_power_consumption WITH NO DATA");
}

TEST(ViewPlanProjection, FillAffectedReadsFactDeltaAndDimensionDelta) {
    ViewPlan p = plan_view(detail_shape());
    EXPECT_EQ(p.fill_affected,
              "INSERT INTO pg_temp.sgivm_aff_300 SELECT \"consumption_id\" FROM pg_temp.sgivm_delta_200"
              " UNION SELECT f.\"consumption_id\" FROM dw.ods_power_consumption f WHERE f.\"user_id\" IN"
              " (SELECT d.\"user_id\" FROM pg_temp.sgivm_delta_100 d)");
    // Only the engine's tables: never a delta of the view itself, never a live source.
    EXPECT_NOT_CONTAINS(p.fill_affected, "sgivm_delta_300");
}

TEST(ViewPlanProjection, FillAffectedOneUnionPerJoin) {
    ViewShape s = detail_shape();
    s.inputs.push_back(ViewInput{150, "dw.ods_region"});
    s.joins.push_back(ViewShape::Join{2, "region_id", "id"});
    s.deparsed += " LEFT JOIN dw.ods_region r ON ((c.region_id = r.id))";
    ViewPlan p = plan_view(s);
    EXPECT_EQ(count_of(p.fill_affected, " UNION SELECT "), 2u);
    EXPECT_CONTAINS(p.fill_affected, "WHERE f.\"user_id\" IN (SELECT d.\"user_id\" FROM pg_temp.sgivm_delta_100 d)");
    EXPECT_CONTAINS(p.fill_affected, "WHERE f.\"region_id\" IN (SELECT d.\"id\" FROM pg_temp.sgivm_delta_150 d)");
    // one index on the fact's join column per join
    ASSERT_EQ(p.indexes.size(), 3u);
    EXPECT_EQ(p.indexes[2], "CREATE INDEX IF NOT EXISTS sgivm_j_300_1 ON dw.ods_power_consumption (\"region_id\")");
}

TEST(ViewPlanProjection, FillAffectedWithoutJoinsReadsOnlyTheFactDelta) {
    ViewShape s = detail_shape();
    s.inputs.resize(1);
    s.joins.clear();
    s.deparsed = "SELECT c.consumption_id, c.user_id, 0 AS region_id, c.consumption_amount, now() AS etl_time\n   FROM "
                 "dw.ods_power_consumption c";
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.fill_affected, "INSERT INTO pg_temp.sgivm_aff_300 SELECT \"consumption_id\" FROM pg_temp.sgivm_delta_200");
    ASSERT_EQ(p.indexes.size(), 1u);
}

TEST(ViewPlanProjection, AStringConstantNamingTheInputIsNotTheInput) {
    ViewShape s = detail_shape();
    s.inputs.resize(1);
    s.joins.clear();
    // the constant comes first in the text, and names the input followed by a space
    s.deparsed = "SELECT c.consumption_id, 'it''s dw.ods_power_consumption c' AS note, c.user_id AS \"a'b\"\"c\"\n   FROM "
                 "dw.ods_power_consumption c";
    ViewPlan p = plan_view(s);
    const std::string sql = p.compute + p.recompute;
    EXPECT_EQ(count_of(sql, "'it''s dw.ods_power_consumption c' AS note"), count_of(sql, "FROM sgivm_in_200 c"));
    EXPECT_GT(count_of(sql, "FROM sgivm_in_200 c"), 0u);
    EXPECT_EQ(count_of(sql, "FROM dw.ods_power_consumption c"), 0u);
}

TEST(ViewPlanProjection, WithoutKeyRemoveCapturesTheWholeScopeTheSecondNullSafe) {
    ViewShape s = detail_shape();
    s.key.clear();
    EXPECT_THROW(plan_view(s), std::runtime_error);  // a projection always has its fact's key
    s = stats_shape();  // only an aggregate can come without a key
    s.key.clear();
    ViewPlan q = plan_view(s);
    EXPECT_TRUE(q.compute.empty());
    ASSERT_EQ(q.remove.size(), 2u);
    EXPECT_EQ(q.remove[0],
              "WITH sgivm_changed AS (DELETE FROM dw.dws_stats WHERE (\"region_id\", \"stat_date\") IN (SELECT sgivm_k1, sgivm_k2 "
              "FROM pg_temp.sgivm_aff_400) RETURNING *) INSERT INTO pg_temp.sgivm_delta_400 SELECT *, -1 FROM sgivm_changed");
    EXPECT_EQ(count_of(q.recompute, "WITH sgivm_changed AS (INSERT INTO dw.dws_stats "), 1u);
}

TEST(ViewPlanProjection, UpdateRewritesChangedRowsInPlaceByKey) {
    ViewPlan p = plan_view(detail_shape());
    // found by the key's equality, changed by the image of the compared columns (1.0 -> 1.00)
    const std::string changed =
        " WHERE t.\"consumption_id\" = n.\"consumption_id\" AND ROW(t.\"consumption_id\", t.\"user_id\", t.\"region_id\", "
        "t.\"consumption_amount\")::record OPERATOR(pg_catalog.*<>) ROW(n.\"consumption_id\", n.\"user_id\", n.\"region_id\", "
        "n.\"consumption_amount\")::record AND (t.\"consumption_id\") IN (SELECT sgivm_k1 FROM pg_temp.sgivm_aff_300)";
    const std::string update = "UPDATE dw.dwd_detail t SET \"consumption_id\" = n.\"consumption_id\", \"user_id\" = "
                               "n.\"user_id\", \"region_id\" = n.\"region_id\", \"consumption_amount\" = "
                               "n.\"consumption_amount\", \"etl_time\" = n.\"etl_time\" FROM pg_temp.sgivm_new_300 n" + changed;
    ASSERT_EQ(p.uncaptured.update.size(), 1u);
    EXPECT_EQ(p.uncaptured.update[0], update);
    // the key is set as well (its image may be all that changed); the audit column is set but
    // not compared
    EXPECT_NOT_CONTAINS(changed, "etl_time");
    // a view others read keeps the old and the new version of each updated row
    ASSERT_EQ(p.update.size(), 1u);
    EXPECT_EQ(p.update[0], "WITH sgivm_old AS (SELECT t.* FROM dw.dwd_detail t JOIN pg_temp.sgivm_new_300 n ON true" +
                               changed + "), sgivm_new AS (" + update +
                               " RETURNING t.*) INSERT INTO pg_temp.sgivm_delta_300 SELECT *, -1 FROM sgivm_old UNION ALL "
                               "SELECT *, 1 FROM sgivm_new");
}

TEST(ViewPlanProjection, UpdateComparesEveryTypeByImage) {
    ViewShape s = detail_shape();
    const std::string plain = plan_view(s).uncaptured.update.at(0);
    // types with an equality or without one (json, point): the same image comparison
    for (const char *t : {"json", "point", "xml", "numeric", "double precision", "text", "integer[]"}) {
        s.types[3] = t;
        EXPECT_EQ(plan_view(s).uncaptured.update.at(0), plain) << t;
    }
    EXPECT_NOT_CONTAINS(plain, "IS DISTINCT FROM");
    EXPECT_NOT_CONTAINS(plain, "::text");
}

TEST(ViewPlanProjection, AllKeyColumnsStillUpdatedByImage) {
    // a view of its key only: a key whose value changed its image only is written in place
    ViewShape s = detail_shape();
    s.columns = {"consumption_id"};
    s.types = {"numeric"};
    s.audit = {false};
    s.deparsed = "SELECT c.consumption_id\n   FROM dw.ods_power_consumption c";
    ViewPlan p = plan_view(s);
    ASSERT_EQ(p.uncaptured.update.size(), 1u);
    EXPECT_EQ(p.uncaptured.update[0],
              "UPDATE dw.dwd_detail t SET \"consumption_id\" = n.\"consumption_id\" FROM pg_temp.sgivm_new_300 n WHERE "
              "t.\"consumption_id\" = n.\"consumption_id\" AND ROW(t.\"consumption_id\")::record OPERATOR(pg_catalog.*<>) "
              "ROW(n.\"consumption_id\")::record AND (t.\"consumption_id\") IN (SELECT sgivm_k1 FROM pg_temp.sgivm_aff_300)");
}

TEST(ViewPlanProjection, RemoveTakesRowsWhoseKeyIsGoneTheSecondNullSafe) {
    ViewPlan p = plan_view(detail_shape());
    const std::string gone = " AND NOT EXISTS (SELECT 1 FROM pg_temp.sgivm_new_300 n WHERE n.\"consumption_id\" = t.\"consumption_id\")";
    ASSERT_EQ(p.remove.size(), 2u);
    EXPECT_EQ(p.remove[0],
              "WITH sgivm_changed AS (DELETE FROM dw.dwd_detail t WHERE (t.\"consumption_id\") IN (SELECT sgivm_k1 FROM "
              "pg_temp.sgivm_aff_300)" + gone + " RETURNING *) INSERT INTO pg_temp.sgivm_delta_300 SELECT *, -1 FROM sgivm_changed");
    // a view used as the fact may have NULLs in its key: matched NULL-safely, only when the
    // affected set holds a NULL (a one-time filter); such a row never matches by key, so it
    // goes and comes again
    EXPECT_EQ(p.remove[1],
              "WITH sgivm_changed AS (DELETE FROM dw.dwd_detail t WHERE "
              "(SELECT EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_300 WHERE sgivm_k1 IS NULL)) AND "
              "((t.\"consumption_id\") IS NULL) AND "
              "EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_300 x WHERE x.sgivm_k1 IS NOT DISTINCT FROM (t.\"consumption_id\"))" +
                  gone + " RETURNING *) INSERT INTO pg_temp.sgivm_delta_300 SELECT *, -1 FROM sgivm_changed");
    ASSERT_EQ(p.uncaptured.remove.size(), 2u);
    EXPECT_EQ(p.uncaptured.remove[0], "DELETE FROM dw.dwd_detail t WHERE (t.\"consumption_id\") IN (SELECT sgivm_k1 FROM "
                                      "pg_temp.sgivm_aff_300)" + gone);
}

TEST(ViewPlanProjection, RecomputeInsertsTheRowsWhoseKeyTheViewLacks) {
    ViewPlan p = plan_view(detail_shape());
    const std::string insert =
        "INSERT INTO dw.dwd_detail (\"consumption_id\", \"user_id\", \"region_id\", \"consumption_amount\", \"etl_time\") "
        "SELECT n.\"consumption_id\", n.\"user_id\", n.\"region_id\", n.\"consumption_amount\", n.\"etl_time\" FROM "
        "pg_temp.sgivm_new_300 n WHERE NOT EXISTS (SELECT 1 FROM dw.dwd_detail t WHERE t.\"consumption_id\" = "
        "n.\"consumption_id\" AND (t.\"consumption_id\") IN (SELECT sgivm_k1 FROM pg_temp.sgivm_aff_300))";
    EXPECT_EQ(p.recompute, "WITH sgivm_changed AS (" + insert +
                               " RETURNING *) INSERT INTO pg_temp.sgivm_delta_300 SELECT *, 1 FROM sgivm_changed");
    EXPECT_EQ(p.uncaptured.recompute, insert);
    EXPECT_EQ(p.uncaptured.replace_insert,
              "INSERT INTO dw.dwd_detail (\"consumption_id\", \"user_id\", \"region_id\", \"consumption_amount\", "
              "\"etl_time\") SELECT n.\"consumption_id\", n.\"user_id\", n.\"region_id\", n.\"consumption_amount\", "
              "n.\"etl_time\" FROM pg_temp.sgivm_new_300 n");
    ASSERT_EQ(p.uncaptured.replace_remove.size(), 2u);
    EXPECT_EQ(p.uncaptured.replace_remove[0],
              "DELETE FROM dw.dwd_detail WHERE (\"consumption_id\") IN (SELECT sgivm_k1 FROM pg_temp.sgivm_aff_300)");
}

TEST(ViewPlanProjection, ComputeReplacesTheFactByARestrictedCte) {
    ViewShape s = detail_shape();
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.compute,
              "INSERT INTO pg_temp.sgivm_new_300 (\"consumption_id\", \"user_id\", \"region_id\", "
              "\"consumption_amount\", \"etl_time\") WITH sgivm_in_200 AS (SELECT * FROM dw.ods_power_consumption WHERE "
              "(\"consumption_id\") IN (SELECT sgivm_k1 FROM pg_temp.sgivm_aff_300) UNION ALL "
              "SELECT * FROM dw.ods_power_consumption WHERE "
              "(SELECT EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_300 WHERE sgivm_k1 IS NULL)) AND "
              "((\"consumption_id\") IS NULL) AND "
              "EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_300 x WHERE x.sgivm_k1 IS NOT DISTINCT FROM (\"consumption_id\"))) "
              "SELECT c.consumption_id, c.user_id, COALESCE(u.region_id, 0) AS region_id, c.consumption_amount, "
              "now() AS etl_time\n   FROM (sgivm_in_200 c\n     LEFT JOIN dw.ods_power_user u ON "
              "((c.user_id = u.user_id)))");
    // The dimension stays the whole table: a fact row joins whatever its user is now.
    EXPECT_CONTAINS(p.compute, "LEFT JOIN dw.ods_power_user u");
    EXPECT_NOT_CONTAINS(p.compute, "sgivm_in_100");
}

TEST(ViewPlanProjection, PopulateIsTheWholeQuery) {
    ViewShape s = detail_shape();
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.populate, "INSERT INTO dw.dwd_detail (\"consumption_id\", \"user_id\", \"region_id\", "
                          "\"consumption_amount\", \"etl_time\") " + s.deparsed);
}

TEST(ViewPlanProjection, VerifyLeavesOutAuditColumns) {
    ViewShape s = detail_shape();
    ViewPlan p = plan_view(s);
    const std::string cols = "\"consumption_id\", \"user_id\", \"region_id\", \"consumption_amount\"";
    EXPECT_EQ(p.verify, "SELECT (SELECT count(*) FROM (SELECT " + cols + " FROM (" + s.deparsed +
                            ") q EXCEPT ALL SELECT " + cols + " FROM dw.dwd_detail) m) AS missing_rows, "
                            "(SELECT count(*) FROM (SELECT " + cols + " FROM dw.dwd_detail EXCEPT ALL SELECT " + cols +
                            " FROM (" + s.deparsed + ") q) e) AS extra_rows");
    EXPECT_NOT_CONTAINS(p.verify, "\"etl_time\"");
}

TEST(ViewPlanProjection, IndexesKeyTheViewAndTheFactsJoinColumn) {
    ViewPlan p = plan_view(detail_shape());
    ASSERT_EQ(p.indexes.size(), 2u);
    EXPECT_EQ(p.indexes[0], "CREATE UNIQUE INDEX IF NOT EXISTS sgivm_k_300_0 ON dw.dwd_detail (\"consumption_id\")");
    EXPECT_EQ(p.indexes[1], "CREATE INDEX IF NOT EXISTS sgivm_j_300_0 ON dw.ods_power_consumption (\"user_id\")");
}

TEST(ViewPlanProjection, CompositeFactKey) {
    ViewShape s;
    s.kind = ViewShape::Kind::Projection;
    s.view_table = "\"My Schema\".\"V\"";
    s.view_relid = 7;
    s.deparsed = "SELECT m.a, m.\"B\" AS b2, m.x\n   FROM \"My Schema\".ods_m m";
    s.inputs = {ViewInput{6, "\"My Schema\".ods_m"}};
    s.columns = {"a", "b2", "x"};
    s.types = {"integer", "text", "integer"};
    s.audit = {false, false, false};
    s.fact_key = {"a", "B"};
    s.key = {"a", "b2"};
    ViewPlan p = plan_view(s);
    EXPECT_EQ(p.setup[1], "CREATE TEMP TABLE IF NOT EXISTS sgivm_aff_7 ON COMMIT DELETE ROWS AS SELECT \"a\" AS sgivm_k1, "
                          "\"B\" AS sgivm_k2 FROM \"My Schema\".ods_m WITH NO DATA");
    EXPECT_EQ(p.fill_affected, "INSERT INTO pg_temp.sgivm_aff_7 SELECT \"a\", \"B\" FROM pg_temp.sgivm_delta_6");
    // the view is matched by its own column names, the fact by the fact's
    EXPECT_CONTAINS(p.remove[0], "DELETE FROM \"My Schema\".\"V\" t WHERE (t.\"a\", t.\"b2\") IN (SELECT sgivm_k1, sgivm_k2 FROM pg_temp.sgivm_aff_7)");
    EXPECT_CONTAINS(p.compute, "WITH sgivm_in_6 AS (SELECT * FROM \"My Schema\".ods_m WHERE (\"a\", \"B\") IN "
                                 "(SELECT sgivm_k1, sgivm_k2 FROM pg_temp.sgivm_aff_7) UNION ALL ");
    EXPECT_CONTAINS(p.remove[1], "x.sgivm_k1 IS NOT DISTINCT FROM (t.\"a\") AND x.sgivm_k2 IS NOT DISTINCT FROM (t.\"b2\")");
    EXPECT_TRUE(p.compute.size() > 17 && p.compute.substr(p.compute.size() - 17) == "FROM sgivm_in_6 m");
    EXPECT_EQ(p.indexes[0], "CREATE UNIQUE INDEX IF NOT EXISTS sgivm_k_7_0 ON \"My Schema\".\"V\" (\"a\", \"b2\")");
}

// ---- aggregate -------------------------------------------------------------------------------

TEST(ViewPlanAggregate, SetupAndFillAffectedGroupTheInputDelta) {
    ViewPlan p = plan_view(stats_shape());
    ASSERT_EQ(p.setup.size(), 3u);
    EXPECT_EQ(p.setup[0], "CREATE TEMP TABLE IF NOT EXISTS sgivm_delta_400 (LIKE dw.dws_stats, sgivm_m smallint NOT NULL) ON COMMIT DELETE ROWS");
    EXPECT_EQ(p.setup[1],
              "CREATE TEMP TABLE IF NOT EXISTS sgivm_aff_400 ON COMMIT DELETE ROWS AS SELECT (region_id) AS sgivm_k1, "
              "((consumption_date)::date) AS sgivm_k2 FROM dw.dwd_detail WITH NO DATA");
    EXPECT_EQ(p.fill_affected, "INSERT INTO pg_temp.sgivm_aff_400 SELECT DISTINCT (region_id), ((consumption_date)::date)"
                               " FROM pg_temp.sgivm_delta_300");
}

TEST(ViewPlanAggregate, TwoRemovesTheSecondNullSafe) {
    ViewShape s = stats_shape();
    s.key.clear();  // the whole scope: no diff
    ViewPlan p = plan_view(s);
    ASSERT_EQ(p.remove.size(), 2u);
    EXPECT_EQ(p.remove[0],
              "WITH sgivm_changed AS (DELETE FROM dw.dws_stats WHERE (\"region_id\", \"stat_date\") IN (SELECT sgivm_k1, sgivm_k2 "
              "FROM pg_temp.sgivm_aff_400) RETURNING *) INSERT INTO pg_temp.sgivm_delta_400 SELECT *, -1 FROM sgivm_changed");
    EXPECT_EQ(p.remove[1],
              "WITH sgivm_changed AS (DELETE FROM dw.dws_stats WHERE "
              "(SELECT EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_400 WHERE sgivm_k1 IS NULL OR sgivm_k2 IS NULL)) AND "
              "((\"region_id\") IS NULL OR (\"stat_date\") IS NULL) AND "
              "EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_400 x WHERE x.sgivm_k1 IS NOT DISTINCT FROM (\"region_id\") AND "
              "x.sgivm_k2 IS NOT DISTINCT FROM (\"stat_date\")) "
              "RETURNING *) INSERT INTO pg_temp.sgivm_delta_400 SELECT *, -1 FROM sgivm_changed");
}

TEST(ViewPlanAggregate, RecomputeRestrictsTheInputToTheGroupsNullSafely) {
    ViewShape s = stats_shape();
    s.key.clear();  // recomputed straight into the view
    ViewPlan p = plan_view(s);
    const std::string in = "((region_id), ((consumption_date)::date)) IN (SELECT sgivm_k1, sgivm_k2 FROM pg_temp.sgivm_aff_400)";
    const std::string nulls =
        "(SELECT EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_400 WHERE sgivm_k1 IS NULL OR sgivm_k2 IS NULL)) AND "
        "(((region_id)) IS NULL OR (((consumption_date)::date)) IS NULL) AND "
        "EXISTS (SELECT 1 FROM pg_temp.sgivm_aff_400 x WHERE x.sgivm_k1 IS NOT DISTINCT FROM ((region_id)) AND "
        "x.sgivm_k2 IS NOT DISTINCT FROM (((consumption_date)::date)))";
    EXPECT_EQ(p.recompute,
              "WITH sgivm_changed AS (INSERT INTO dw.dws_stats (\"region_id\", \"stat_date\", \"total\", \"max_amount\", "
              "\"update_time\") WITH sgivm_in_300 AS (SELECT * FROM dw.dwd_detail WHERE " + in +
                  " UNION ALL SELECT * FROM dw.dwd_detail WHERE " + nulls + ") "
                  "SELECT region_id, (consumption_date)::date AS stat_date, sum(consumption_amount) AS total, "
                  "max(consumption_amount) AS max_amount, now() AS update_time\n   FROM sgivm_in_300 dwd_detail\n  GROUP BY "
                  "region_id, ((consumption_date)::date) RETURNING *) INSERT INTO pg_temp.sgivm_delta_400 SELECT *, 1 FROM "
                  "sgivm_changed");
}

TEST(ViewPlanAggregate, VerifyAndIndexes) {
    ViewShape s = stats_shape();
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.verify, "SELECT \"region_id\", \"stat_date\", \"total\", \"max_amount\" FROM (" + s.deparsed + ") q");
    EXPECT_CONTAINS(p.verify, "SELECT \"region_id\", \"stat_date\", \"total\", \"max_amount\" FROM dw.dws_stats");
    EXPECT_NOT_CONTAINS(p.verify, "\"update_time\"");
    // (the scope is every group, the key: its unique index serves the scope too)
    ASSERT_EQ(p.indexes.size(), 2u);
    EXPECT_EQ(p.indexes[0], "CREATE UNIQUE INDEX IF NOT EXISTS sgivm_k_400_0 ON dw.dws_stats (\"region_id\", \"stat_date\")");
    EXPECT_EQ(p.indexes[1], "CREATE INDEX IF NOT EXISTS sgivm_g_400_0 ON dw.dwd_detail ((region_id), "
                            "((consumption_date)::date))");
}

TEST(ViewPlanAggregate, NoUniqueIndexWithoutKey) {
    ViewShape s = stats_shape();
    s.key.clear();
    ViewPlan p = plan_view(s);
    ASSERT_EQ(p.indexes.size(), 2u);
    EXPECT_NOT_CONTAINS(p.indexes[0], "UNIQUE");
    EXPECT_NOT_CONTAINS(p.indexes[1], "UNIQUE");
}

// ---- ranking: the scope is the PARTITION BY, a subset of the groups ---------------------------

TEST(ViewPlanRanking, ScopeIsThePartitionNotTheGroups) {
    ViewPlan p = plan_view(ranking_shape());
    // the affected table holds partitions: (day, region_id), in scope order
    EXPECT_EQ(p.setup[1], "CREATE TEMP TABLE IF NOT EXISTS sgivm_aff_500 ON COMMIT DELETE ROWS AS SELECT "
                          "((consumption_date)::date) AS sgivm_k1, (region_id) AS sgivm_k2 FROM dw.dwd_detail WITH NO DATA");
    EXPECT_EQ(p.fill_affected, "INSERT INTO pg_temp.sgivm_aff_500 SELECT DISTINCT ((consumption_date)::date), (region_id)"
                               " FROM pg_temp.sgivm_delta_300");
    EXPECT_NOT_CONTAINS(p.fill_affected, "user_id");
    // partitions are recomputed, and their rows that changed leave the view ...
    ASSERT_EQ(p.remove.size(), 2u);
    EXPECT_CONTAINS(p.remove[0], "DELETE FROM dw.dws_ranking t WHERE (t.\"stat_date\", t.\"region_id\") IN (SELECT sgivm_k1, sgivm_k2 FROM "
                                 "pg_temp.sgivm_aff_500)");
    EXPECT_CONTAINS(p.remove[1], "x.sgivm_k1 IS NOT DISTINCT FROM (t.\"stat_date\") AND x.sgivm_k2 IS NOT DISTINCT FROM (t.\"region_id\")");
    EXPECT_NOT_CONTAINS(p.remove[0].substr(0, p.remove[0].find(" AND NOT EXISTS")), "\"user_id\"");
    EXPECT_CONTAINS(p.remove[0], "AND NOT EXISTS (SELECT 1 FROM pg_temp.sgivm_new_500 n WHERE n.\"user_id\" = t.\"user_id\" AND "
                                 "n.\"region_id\" = t.\"region_id\" AND n.\"stat_date\" = t.\"stat_date\")");
    // a rank that moved is updated in place, the partition's rows read by the scope index
    ASSERT_EQ(p.uncaptured.update.size(), 1u);
    EXPECT_CONTAINS(p.uncaptured.update[0], "UPDATE dw.dws_ranking t SET \"user_id\" = n.\"user_id\", \"region_id\" = "
                                            "n.\"region_id\", \"stat_date\" = n.\"stat_date\", \"total\" = n.\"total\", "
                                            "\"ranking\" = n.\"ranking\"");
    EXPECT_CONTAINS(p.uncaptured.update[0], "AND (t.\"stat_date\", t.\"region_id\") IN (SELECT sgivm_k1, sgivm_k2 FROM "
                                            "pg_temp.sgivm_aff_500)");
    // ... and come back recomputed from the partitions' input rows
    EXPECT_CONTAINS(p.compute, "WITH sgivm_in_300 AS (SELECT * FROM dw.dwd_detail WHERE (((consumption_date)::date), "
                                 "(region_id)) IN (SELECT sgivm_k1, sgivm_k2 FROM pg_temp.sgivm_aff_500) UNION ALL SELECT * FROM "
                                 "dw.dwd_detail WHERE ");
    EXPECT_CONTAINS(p.compute, "FROM sgivm_in_300 dwd_detail\n  GROUP BY user_id");
    EXPECT_CONTAINS(p.recompute, "FROM pg_temp.sgivm_new_500 n WHERE NOT EXISTS");
    EXPECT_CONTAINS(p.recompute, "RETURNING *) INSERT INTO pg_temp.sgivm_delta_500 SELECT *, 1 FROM sgivm_changed");
    // the scope index serves the removal; the unique index is on the groups
    ASSERT_EQ(p.indexes.size(), 3u);
    EXPECT_EQ(p.indexes[0], "CREATE INDEX IF NOT EXISTS sgivm_s_500_0 ON dw.dws_ranking (\"stat_date\", \"region_id\")");
    EXPECT_EQ(p.indexes[1],
              "CREATE UNIQUE INDEX IF NOT EXISTS sgivm_k_500_0 ON dw.dws_ranking (\"user_id\", \"region_id\", \"stat_date\")");
    EXPECT_EQ(p.indexes[2], "CREATE INDEX IF NOT EXISTS sgivm_g_500_0 ON dw.dwd_detail (((consumption_date)::date), "
                            "(region_id))");
    // nothing is an audit column here: verify compares every column
    EXPECT_CONTAINS(p.verify, "SELECT \"user_id\", \"region_id\", \"stat_date\", \"total\", \"ranking\" FROM dw.dws_ranking");
}

// ---- replacing the input by its CTE ----------------------------------------------------------

TEST(ViewPlanCte, OnlyTheFirstBoundedOccurrenceIsReplaced) {
    ViewShape s = stats_shape();
    // a longer name sharing the prefix, or the name inside another word, is not the input; the
    // first real occurrence (here after '(') is; later ones (a self-join's second side) stay
    s.deparsed = "xdw.dwd_detail a JOIN dw.dwd_detail_2 b JOIN (dw.dwd_detail c) x\ndw.dwd_detail d";
    ViewPlan p = plan_view(s);
    const std::string tail = p.compute.substr(p.compute.find(") xdw.dwd_detail a"));
    EXPECT_EQ(tail, ") xdw.dwd_detail a JOIN dw.dwd_detail_2 b JOIN (sgivm_in_300 c) x\ndw.dwd_detail d");
    // at the very start, and after a newline
    s.deparsed = "dw.dwd_detail a, dw.dwd_detail b";
    EXPECT_CONTAINS(plan_view(s).compute, ") sgivm_in_300 a, dw.dwd_detail b");
    s.deparsed = "SELECT 1\ndw.dwd_detail a";
    EXPECT_CONTAINS(plan_view(s).compute, "SELECT 1\nsgivm_in_300 a");
    // populate and verify keep the real table
    EXPECT_NOT_CONTAINS(plan_view(s).populate, "sgivm_in_");
    EXPECT_NOT_CONTAINS(plan_view(s).verify, "sgivm_in_");
}

TEST(ViewPlanCte, DimensionsAreNotReplaced) {
    ViewPlan p = plan_view(detail_shape());
    EXPECT_EQ(count_of(p.compute, "sgivm_in_200"), 2u);  // the CTE and its one use
    EXPECT_EQ(count_of(p.compute, "FROM dw.ods_power_consumption "), 2u);  // inside the CTE only (both halves)
    EXPECT_EQ(count_of(p.compute, "dw.ods_power_consumption c"), 0u);
    EXPECT_EQ(count_of(p.compute, "dw.ods_power_user u"), 1u);
}

TEST(ViewPlanCte, SelfJoinKeepsTheSecondReferenceWhole) {
    // each user with the name of the user whose id is their region id: the same table twice
    ViewShape s;
    s.kind = ViewShape::Kind::Projection;
    s.view_table = "dw.v_self";
    s.view_relid = 600;
    s.deparsed = "SELECT u.user_id, r.user_name AS region_user_name\n   FROM (dw.ods_power_user u\n     LEFT JOIN "
                 "dw.ods_power_user r ON ((u.region_id = r.user_id)))";
    s.inputs = {ViewInput{100, "dw.ods_power_user"}, ViewInput{100, "dw.ods_power_user"}};
    s.columns = {"user_id", "region_user_name"};
    s.types = {"bigint", "character varying"};
    s.audit = {false, false};
    s.key = {"user_id"};
    s.fact_key = {"user_id"};
    s.joins = {ViewShape::Join{1, "region_id", "user_id"}};
    ViewPlan p = plan_view(s);
    EXPECT_CONTAINS(p.compute, "FROM (sgivm_in_100 u\n     LEFT JOIN dw.ods_power_user r ON ((u.region_id = r.user_id)))");
    EXPECT_EQ(p.fill_affected,
              "INSERT INTO pg_temp.sgivm_aff_600 SELECT \"user_id\" FROM pg_temp.sgivm_delta_100"
              " UNION SELECT f.\"user_id\" FROM dw.ods_power_user f WHERE f.\"region_id\" IN"
              " (SELECT d.\"user_id\" FROM pg_temp.sgivm_delta_100 d)");
}

TEST(ViewPlanNames, HelperColumnsDoNotCaptureUserColumns) {
    // group columns named like plain helper names: the NULL-safe match must compare the helper
    // column of the affected set with the view's column, not a column with itself
    ViewShape s = stats_shape();
    s.columns = {"a1", "a2", "total", "max_amount", "update_time"};
    s.group_columns = {"a1", "a2"};
    s.key = {"a1", "a2"};
    ViewPlan p = plan_view(s);
    ASSERT_EQ(p.remove.size(), 2u);
    EXPECT_CONTAINS(p.remove[1], "x.sgivm_k1 IS NOT DISTINCT FROM (t.\"a1\") AND x.sgivm_k2 IS NOT DISTINCT FROM (t.\"a2\")");
    for (const std::string &sql : p.remove) EXPECT_NOT_CONTAINS(sql, "x.a1");
    EXPECT_NOT_CONTAINS(p.setup[1], " AS a1");
}

// ---- errors ----------------------------------------------------------------------------------

TEST(ViewPlanErrors, NoInputs) {
    ViewShape s = detail_shape();
    s.inputs.clear();
    s.joins.clear();
    EXPECT_THROW(plan_view(s), std::runtime_error);
    try {
        plan_view(s);
    } catch (const std::runtime_error &e) {
        EXPECT_CONTAINS(std::string(e.what()), "at least one input");
    }
}

TEST(ViewPlanErrors, ColumnListsDisagree) {
    ViewShape s = detail_shape();
    s.types.pop_back();
    EXPECT_THROW(plan_view(s), std::runtime_error);
    s = detail_shape();
    s.audit.push_back(false);
    EXPECT_THROW(plan_view(s), std::runtime_error);
}

TEST(ViewPlanErrors, ProjectionWithoutFactKey) {
    ViewShape s = detail_shape();
    s.fact_key.clear();
    try {
        plan_view(s);
        FAIL() << "no error";
    } catch (const std::runtime_error &e) {
        EXPECT_CONTAINS(std::string(e.what()), "fact table's key");
    }
    // a key that does not cover the fact key is no better
    s = detail_shape();
    s.fact_key = {"consumption_id", "user_id"};
    EXPECT_THROW(plan_view(s), std::runtime_error);
}

TEST(ViewPlanErrors, AggregateWithoutScope) {
    ViewShape s = stats_shape();
    s.scope.clear();
    try {
        plan_view(s);
        FAIL() << "no error";
    } catch (const std::runtime_error &e) {
        EXPECT_CONTAINS(std::string(e.what()), "GROUP BY");
    }
}

TEST(ViewPlanErrors, InputNotFoundInDeparsedQuery) {
    ViewShape s = detail_shape();
    s.deparsed = "SELECT c.consumption_id FROM dw.other_table c";
    try {
        plan_view(s);
        FAIL() << "no error";
    } catch (const std::runtime_error &e) {
        EXPECT_CONTAINS(std::string(e.what()), "dw.ods_power_consumption");
        EXPECT_CONTAINS(std::string(e.what()), "not found");
    }
    // only as a prefix of a longer name, or without a following space, is not found either
    s.deparsed = "SELECT 1 FROM dw.ods_power_consumption_old c, xdw.ods_power_consumption y, dw.ods_power_consumption";
    EXPECT_THROW(plan_view(s), std::runtime_error);
}

// ---- JSON ------------------------------------------------------------------------------------

TEST(ViewPlanJson, FieldsInOrder) {
    ViewShape s = detail_shape();
    ViewPlan p = plan_view(s);
    std::string j = plan_to_json(s, p);
    ASSERT_FALSE(j.empty());
    EXPECT_EQ(j.front(), '{');
    EXPECT_EQ(j.back(), '}');
    EXPECT_EQ(j.rfind("{\"kind\":\"projection\",\"input_relids\":[200,100],", 0), 0u) << j;
    EXPECT_CONTAINS(j, ",\"columns\":[\"consumption_id\",\"user_id\",\"region_id\",\"consumption_amount\",\"etl_time\"]");
    EXPECT_CONTAINS(j, ",\"types\":[\"bigint\",\"bigint\",\"integer\",\"numeric(10,2)\",\"timestamp with time zone\"]");
    EXPECT_CONTAINS(j, ",\"audit_columns\":[\"etl_time\"]");
    EXPECT_CONTAINS(j, ",\"key\":[\"consumption_id\"]");
    EXPECT_CONTAINS(j, ",\"update\":[\"WITH sgivm_old AS (SELECT t.* FROM dw.dwd_detail t");
    // the statements without capture: an object, after the captured ones
    EXPECT_GT(j.find(",\"uncaptured\":{\"remove\":[\"DELETE FROM dw.dwd_detail t WHERE"), j.find(",\"recompute\":"));
    EXPECT_CONTAINS(j, ",\"update\":[\"UPDATE dw.dwd_detail t SET");
    size_t last = 0;
    for (const char *field : {"\"kind\"", "\"input_relids\"", "\"columns\"", "\"types\"", "\"audit_columns\"", "\"key\"",
                              "\"deparsed\"", "\"setup\"", "\"fill_affected\"", "\"remove\"", "\"recompute\"",
                              "\"populate\"", "\"verify\"", "\"indexes\""}) {
        size_t at = j.find(std::string(field) + ":");
        ASSERT_NE(at, std::string::npos) << field;
        EXPECT_GT(at, last) << field;
        last = at;
    }
    std::string agg = plan_to_json(stats_shape(), plan_view(stats_shape()));
    EXPECT_EQ(agg.rfind("{\"kind\":\"aggregate\",\"input_relids\":[300],", 0), 0u) << agg;
    EXPECT_CONTAINS(agg, "\"audit_columns\":[\"update_time\"]");
    std::string rank = plan_to_json(ranking_shape(), plan_view(ranking_shape()));
    EXPECT_CONTAINS(rank, "\"audit_columns\":[]");
}

TEST(ViewPlanJson, Escaping) {
    ViewShape s = detail_shape();
    // quotes, backslashes, newlines, tabs, carriage returns, other control bytes, Chinese
    s.columns[2] = "区域\"名\"";
    s.deparsed = "SELECT c.consumption_id, c.user_id, COALESCE(u.region_name, '未知地区') AS \"区域\"\"名\"\"\", "
                 "'a\\b' AS x,\n\t'\r\x01' AS y, now() AS etl_time\n   FROM (dw.ods_power_consumption c\n     LEFT JOIN "
                 "dw.ods_power_user u ON ((c.user_id = u.user_id)))";
    ViewPlan p = plan_view(s);
    std::string j = plan_to_json(s, p);
    EXPECT_CONTAINS(j, "\"columns\":[\"consumption_id\",\"user_id\",\"区域\\\"名\\\"\",");
    EXPECT_CONTAINS(j, "COALESCE(u.region_name, '未知地区') AS \\\"区域\\\"\\\"名\\\"\\\"\\\"");
    EXPECT_CONTAINS(j, "'a\\\\b' AS x,\\n\\t'\\r\\u0001' AS y");
    // the quoted column in the generated SQL: "区域""名""" escaped once more for JSON
    EXPECT_CONTAINS(j, "\\\"区域\\\"\\\"名\\\"\\\"\\\"");
    // no raw control character survives
    for (unsigned char c : j) EXPECT_GE(c, 0x20) << "raw control byte in " << j;
    // UTF-8 passes through byte for byte
    EXPECT_CONTAINS(j, "未知地区");
}

TEST(ViewPlanJson, EmptyArraysAndNoJoins) {
    ViewShape s = ranking_shape();
    ViewPlan p = plan_view(s);
    p.setup.clear();
    p.remove.clear();
    p.indexes.clear();
    std::string j = plan_to_json(s, p);
    EXPECT_CONTAINS(j, "\"setup\":[]");
    EXPECT_CONTAINS(j, "\"remove\":[]");
    EXPECT_CONTAINS(j, "\"indexes\":[],");
}

// ---- the inverse: plan_from_json --------------------------------------------------------------

void expect_same_statements(const ViewPlan &a, const ViewPlan &b) {
    EXPECT_EQ(a.setup, b.setup);
    EXPECT_EQ(a.fill_affected, b.fill_affected);
    EXPECT_EQ(a.compute, b.compute);
    EXPECT_EQ(a.update, b.update);
    EXPECT_EQ(a.remove, b.remove);
    EXPECT_EQ(a.recompute, b.recompute);
    EXPECT_EQ(a.replace_remove, b.replace_remove);
    EXPECT_EQ(a.replace_insert, b.replace_insert);
    EXPECT_EQ(a.uncaptured.update, b.uncaptured.update);
    EXPECT_EQ(a.uncaptured.remove, b.uncaptured.remove);
    EXPECT_EQ(a.uncaptured.recompute, b.uncaptured.recompute);
    EXPECT_EQ(a.uncaptured.replace_remove, b.uncaptured.replace_remove);
    EXPECT_EQ(a.uncaptured.replace_insert, b.uncaptured.replace_insert);
    EXPECT_EQ(a.populate, b.populate);
    EXPECT_EQ(a.verify, b.verify);
    EXPECT_EQ(a.indexes, b.indexes);
}

TEST(ViewPlanJson, FromJsonInvertsToJson) {
    ViewShape escaped = detail_shape();
    escaped.columns[2] = "区域\"名\"";
    escaped.deparsed = "SELECT 'a\\b' AS x,\n\t'\r\x01' AS y, c.consumption_id, c.user_id, now() AS etl_time\n FROM "
                       "(dw.ods_power_consumption c LEFT JOIN dw.ods_power_user u ON ((c.user_id = u.user_id)))";
    ViewShape keyless = stats_shape();
    keyless.key.clear();
    for (const ViewShape &shape : {detail_shape(), stats_shape(), ranking_shape(), escaped, keyless}) {
        ViewPlan plan = plan_view(shape);
        std::string json = plan_to_json(shape, plan);
        StoredViewPlan stored = plan_from_json(json);
        EXPECT_EQ(plan_to_json(stored), json);
        EXPECT_EQ(stored.kind, shape.kind);
        ASSERT_EQ(stored.input_relids.size(), shape.inputs.size());
        for (size_t i = 0; i < shape.inputs.size(); i++) EXPECT_EQ(stored.input_relids[i], shape.inputs[i].relid);
        EXPECT_EQ(stored.input_columns, shape.input_columns);
        EXPECT_EQ(stored.columns, shape.columns);
        EXPECT_EQ(stored.types, shape.types);
        EXPECT_EQ(stored.key, shape.key);
        EXPECT_EQ(stored.deparsed, shape.deparsed);
        expect_same_statements(stored.plan, plan);
    }
}

TEST(ViewPlanJson, FromJsonReadsJsonbsPrintedForm) {
    // jsonb prints keys by length, with spaces, and may escape what plan_to_json writes raw
    StoredViewPlan s = plan_from_json(
        "{\"key\": [\"id\"], \"kind\": \"aggregate\", \"setup\": [], \"compute\": \"C\", \"columns\": [\"a\\/b\", "
        "\"\\u00e9\\ud83d\\ude00\"], \"input_relids\": [42, \"7\"], \"uncaptured\": {\"remove\": [\"R2\"], "
        "\"recompute\": \"I2\"}, \"input_columns\": [[\"x\"], []], \"fill_affected\": \"F\\n\\t\\\"q\\\"\"}");
    EXPECT_EQ(s.kind, ViewShape::Kind::Aggregate);
    EXPECT_EQ(s.key, std::vector<std::string>{"id"});
    EXPECT_EQ(s.columns, (std::vector<std::string>{"a/b", "é\xF0\x9F\x98\x80"}));
    EXPECT_EQ(s.input_relids, (std::vector<uint32_t>{42, 7}));
    EXPECT_EQ(s.input_columns, (std::vector<std::vector<std::string>>{{"x"}, {}}));
    EXPECT_EQ(s.plan.fill_affected, "F\n\t\"q\"");
    EXPECT_EQ(s.plan.compute, "C");
    EXPECT_EQ(s.plan.uncaptured.remove, std::vector<std::string>{"R2"});
    EXPECT_EQ(s.plan.uncaptured.recompute, "I2");
}

TEST(ViewPlanJson, KeysOlderPlansLackReadAsEmpty) {
    // a plan of 0.1.0: no input_columns, compute, update, replace_* nor uncaptured statements
    StoredViewPlan s = plan_from_json(
        "{\"kind\":\"projection\",\"input_relids\":[200,100],\"columns\":[\"a\"],\"types\":[\"integer\"],"
        "\"audit_columns\":[],\"key\":[\"a\"],\"deparsed\":\"SELECT 1\",\"setup\":[\"S\"],\"fill_affected\":\"F\","
        "\"remove\":\"R\",\"recompute\":\"I\",\"populate\":\"P\",\"verify\":\"V\",\"indexes\":[]}");
    EXPECT_TRUE(s.input_columns.empty());
    EXPECT_TRUE(s.plan.compute.empty());
    EXPECT_TRUE(s.plan.update.empty());
    EXPECT_TRUE(s.plan.replace_remove.empty());
    EXPECT_TRUE(s.plan.replace_insert.empty());
    EXPECT_TRUE(s.plan.uncaptured.remove.empty());
    EXPECT_TRUE(s.plan.uncaptured.recompute.empty());
    // a single statement where a list is expected is a list of one
    EXPECT_EQ(s.plan.remove, std::vector<std::string>{"R"});
    EXPECT_EQ(s.plan.setup, std::vector<std::string>{"S"});
    EXPECT_EQ(s.plan.populate, "P");
}

TEST(ViewPlanJson, FromJsonRefusesWhatIsNotAPlan) {
    for (const char *bad : {"", "{", "[]", "{\"setup\": {}}", "{\"kind\": \"other\"}", "{\"input_relids\": [\"x\"]}",
                            "{\"populate\": [\"P\"]}", "{\"a\": 1} x", "{\"a\": \"\\q\"}", "{\"a\": tru}"})
        EXPECT_THROW(plan_from_json(bad), PlanFormatError) << bad;
}

}  // namespace

// ---- keyed views: the whole scope can also be replaced from the work table ---------------------

TEST(ViewPlanReplace, ReplaceTakesTheWholeScopeAndInsertsTheWorkTable) {
    ViewPlan p = plan_view(ranking_shape());
    ASSERT_EQ(p.replace_remove.size(), 2u);
    EXPECT_EQ(p.replace_remove[0],
              "WITH sgivm_changed AS (DELETE FROM dw.dws_ranking WHERE (\"stat_date\", \"region_id\") IN (SELECT sgivm_k1, "
              "sgivm_k2 FROM pg_temp.sgivm_aff_500) RETURNING *) INSERT INTO pg_temp.sgivm_delta_500 SELECT *, -1 FROM sgivm_changed");
    EXPECT_CONTAINS(p.replace_remove[1], "x.sgivm_k1 IS NOT DISTINCT FROM (\"stat_date\")");
    EXPECT_EQ(p.replace_insert,
              "WITH sgivm_changed AS (INSERT INTO dw.dws_ranking (\"user_id\", \"region_id\", \"stat_date\", \"total\", "
              "\"ranking\") SELECT n.\"user_id\", n.\"region_id\", n.\"stat_date\", n.\"total\", n.\"ranking\" FROM "
              "pg_temp.sgivm_new_500 n RETURNING *) INSERT INTO pg_temp.sgivm_delta_500 SELECT *, 1 FROM sgivm_changed");
    const std::string json = plan_to_json(ranking_shape(), p);
    EXPECT_CONTAINS(json, "\"compute\":\"INSERT INTO pg_temp.sgivm_new_500 ");
    EXPECT_CONTAINS(json, "\"replace_remove\":[\"WITH sgivm_changed AS (DELETE FROM dw.dws_ranking WHERE ");
    EXPECT_CONTAINS(json, "\"replace_insert\":\"WITH sgivm_changed AS (INSERT INTO dw.dws_ranking ");
    // a keyless view has neither a work table nor a replace path
    ViewShape s = stats_shape();
    s.key.clear();
    ViewPlan q = plan_view(s);
    EXPECT_TRUE(q.replace_remove.empty());
    EXPECT_TRUE(q.replace_insert.empty());
    EXPECT_EQ(plan_to_json(s, q).find("\"compute\""), std::string::npos);
}
