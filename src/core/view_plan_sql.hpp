// Pieces of SQL text that the planners of view_plan.cpp (scoped recomputation, keyed diff) and
// aggregate_state.cpp (kept state of aggregates) share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sgivm::sql {

std::string join(const std::vector<std::string> &parts, const std::string &sep);
std::vector<std::string> quoted(const std::vector<std::string> &names, const std::string &prefix = "");
// The affected table's columns, sgivm_k1..n.
std::vector<std::string> aff_columns(size_t n);
// Rows whose `exprs` match the affected table (see view_plan.cpp); nulls_part: the NULL-safe half.
std::string scope_match(const std::vector<std::string> &exprs, const std::string &aff, bool nulls_part);
// sgivm_<kind>_<view relid>_<n>: index names are per schema, the relid keeps them apart.
std::string index_name(const char *kind, uint32_t view_relid, size_t n);

}  // namespace sgivm::sql

namespace sgivm {

struct ViewShape;
struct ViewPlan;
// The aggregate operator over kept state (aggregate_state.cpp): the state's tables and
// statements, and the compute step from it, for a GROUP BY view without a fallback.
void plan_aggregate_state(const ViewShape &s, ViewPlan &p);
// The ranking over it (ranking_state.cpp): replaces the compute step with a re-ranking of the
// range between the changed groups' old and new positions.
void plan_ranking_range(const ViewShape &s, ViewPlan &p);
// A top-N over it: the touched partitions' first N, read from the state in the ranking's order.
void plan_top_n(const ViewShape &s, ViewPlan &p);
// The general join (join_plan.cpp): the touched rows of each occurrence into the affected
// table, and the view's rows of those rows. Returns the compute query; sets setup, indexes and
// fill_affected.
std::string plan_join(const ViewShape &s, ViewPlan &p);
// The view's rows in the join's scope (the rows of its occurrences' touched rows), with alias
// `t` ("t." or ""), one condition per occurrence (and its NULL-safe half where keys may be NULL).
std::vector<std::string> join_view_scope(const ViewShape &s, const std::string &t);

namespace state {
std::string g(size_t i);  // sgivm_g<i+1>: group column i of the state table
std::string state_name(const ViewShape &s, const std::string &suffix = "");
// An expression over $N parameters with aggregate N's value and group N-10000's column.
std::string substitute(const std::string &expr, const std::vector<std::string> &agg_values,
                       const std::vector<std::string> &group_values);
// The aggregates' values and the group columns of the state row, prefixed by `t` ("t." or "").
std::vector<std::string> agg_values(const ViewShape &s, const std::string &t);
std::vector<std::string> group_values(const ViewShape &s, const std::string &t);
}  // namespace state

}  // namespace sgivm
