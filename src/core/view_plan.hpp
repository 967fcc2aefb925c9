// The shape of a maintained view (what the analyser found in its SELECT) and the SQL that
// keeps its table current: find the keys a batch's input deltas touch, recompute exactly
// those rows from the engine's own tables, and swap them in.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sgivm {

struct ViewInput {
    uint32_t relid = 0;
    std::string qualified;  // quoted schema.name as it appears in `deparsed`
};

struct ViewShape {
    enum class Kind { Projection, Aggregate };
    Kind kind = Kind::Projection;
    std::string view_table;              // quoted schema.name of the maintained table
    uint32_t view_relid = 0;
    std::string deparsed;                // the analysed query; inputs appear as `qualified alias`
    std::vector<ViewInput> inputs;       // inputs[0] is the fact (Projection) or the input (Aggregate)
    std::vector<std::vector<std::string>> input_columns;  // per input: the columns the query reads
    std::vector<std::string> columns;    // output column names, in order
    std::vector<std::string> types;      // their SQL types
    std::vector<bool> audit;             // now()-style columns: left out of comparisons
    std::vector<std::string> key;        // output columns forming the view's key

    // Projection: the fact's key columns (names in the fact table), and the dimension joins.
    std::vector<std::string> fact_key;
    struct Join {
        size_t input = 0;         // index into inputs
        std::string fact_column;  // fact side of the equi-join
        std::string dim_column;   // dimension side
    };
    std::vector<Join> joins;

    // Aggregate: group expressions over the input (SQL), the output column of each, and
    // which of them bound the recomputation (all of them, or a ranking's PARTITION BY).
    std::vector<std::string> group_exprs;
    std::vector<std::string> group_columns;
    std::vector<size_t> scope;

    // Differential maintenance of an aggregate (aggregate_state.cpp): set by the analyser when
    // every aggregate has a delta rule, empty `aggregates` and a `fallback` saying why not.
    struct Aggregate {
        enum class Fn { CountStar, Count, Sum, Avg, Min, Max, CountDistinct };
        Fn fn = Fn::CountStar;
        std::string arg;         // the argument over the input (SQL); empty for count(*)
        std::string state_type;  // the kept value's type: sum's result, min's argument...
        bool nan = false;        // sum/avg of a numeric: NaN values are counted, not added
    };
    std::vector<Aggregate> aggregates;
    std::vector<std::string> group_types;  // per group expression, its SQL type
    // Per output column, its expression over the kept state: $N is aggregate N (from 1), $1000N
    // the group expression N (from 1), as the deparser prints parameters.
    std::vector<std::string> outputs;
    std::string having;    // the same over HAVING; empty if none
    std::string filter;    // WHERE over the input (SQL, like Aggregate::arg); empty if none
    std::string fallback;  // why the view is recomputed by scope (empty: differential)
    std::string state_schema;  // quoted schema of the view: where its kept state lives
    // A ranking maintained by range (ranking_state.cpp): row_number or rank, its column (the
    // output left empty in `outputs`), ORDER BY keys over $N, and the PARTITION BY as indexes
    // into group_exprs (`scope` is then every group).
    struct RankKey {
        std::string expr, type;
        bool desc = false, nulls_first = false;
    };
    std::string rank_fn;
    size_t rank_column = 0;
    std::vector<RankKey> rank_order;
    std::vector<size_t> rank_partition;
    // A top-N (the ranking filtered to its first N ranks): `scope` stays the partition, whose
    // first N come from the state (ranking_state.cpp, plan_top_n).
    int64_t top_n = 0;

    // The general join (join_plan.cpp), for a projection that is not a fact with dimensions:
    // any joins (inner, outer, cross, self) of keyed tables, with EXISTS / IN subqueries in
    // WHERE. A view row is the rows of its FROM items (occurrences) it was made of; the view
    // keeps their keys (as selected columns, or added ones), and a batch recomputes the rows of
    // the occurrences' rows it touched. Empty for every other view.
    struct Occurrence {
        size_t input = 0;                   // index into inputs
        std::string alias;                  // as the deparsed queries name it (unquoted)
        std::vector<std::string> key;       // the input's key columns
        std::vector<std::string> view_key;  // the view's columns holding them
        bool nullable = false;              // a key column may be NULL (an input that is a view)
        size_t branch = 0;                  // its UNION ALL branch (branch_templates)
    };
    std::vector<Occurrence> occurrences;
    // A change of `from_input` touches rows of occurrence `to_occ` besides its own: an outer
    // join's preserved rows (their NULL-extended row comes or goes), the outer rows a subquery
    // correlates with. Eq: to_occ rows whose `to_col` equals a `from_col` of the change (or of
    // rows of occurrence `from_occ` touched before); In: the same with NOT IN's NULL rules (a
    // NULL value touches every row, any change the rows whose to_col is NULL); All: any change
    // touches every row.
    struct Edge {
        enum class Kind { Eq, In, All };
        Kind kind = Kind::Eq;
        size_t from_input = 0;
        int from_occ = -1;  // the occurrence of from_input whose touched rows count too; -1: none
        std::string from_col;
        size_t to_occ = 0;
        std::string to_col;
    };
    std::vector<Edge> edges;
    std::vector<std::pair<size_t, std::string>> lookups;  // (input, column) a join finds rows by: indexed
    std::string compute_template;  // `deparsed` with $20001 in WHERE, where a branch's scope goes
    std::vector<std::string> branch_templates;  // UNION ALL: each branch's query, as compute_template
};

// The placeholder of ViewShape::compute_template.
constexpr const char *kScopeParam = "$20001";

// The placeholders of ViewShape::outputs: aggregate i (from 0) and group expression i (from 0).
constexpr unsigned kGroupParamBase = 10000;

// Statements, in the order the worker runs them in an apply transaction.
struct ViewPlan {
    std::vector<std::string> setup;     // temp tables of the worker session (idempotent)
    std::string fill_affected;          // keys/groups the input deltas touch
    std::string compute;                // the scope's rows recomputed, into new_table (empty: no diff)
    std::vector<std::string> remove;    // rows of the view in scope that changed, into the view's delta
    std::string recompute;              // the recomputed rows the view lacks, into the view and its delta
    // With a work table (compute): when most of the scope changes anyway, replacing it is
    // cheaper than diffing: all rows of the scope out, all recomputed rows in (both captured).
    std::vector<std::string> replace_remove;
    std::string replace_insert;
    // Keyed views: rows whose key stays but whose values changed are updated in place, before
    // remove and recompute (which then go by key). Empty for plans without it.
    std::vector<std::string> update;
    // The same statements without writing the view's delta table, for a view that no other
    // view reads (empty where the plan has none).
    struct Uncaptured {
        std::vector<std::string> update, remove, replace_remove;
        std::string recompute, replace_insert;
    } uncaptured;
    std::string populate;               // the whole view, for add_view and refresh_view
    std::string verify;                 // one row: missing_rows, extra_rows (by equality: for 0.1.0's verify)
    std::vector<std::string> indexes;   // indexes the statements need, on the view and inputs

    // How changes reach the view: "differential" (delta rules over kept state or by key) or
    // "recompute" (the touched groups or partitions recomputed from the input), and why.
    std::string strategy, strategy_reason;
    // Kept state (engine-owned tables beside the view): their names, the statements that create
    // them (idempotent), fill them from the inputs, and fold a batch's input deltas into them
    // (after fill_affected, before compute).
    std::vector<std::string> state_tables, state_setup, state_fill, state_apply;
};

std::string delta_table(uint32_t relid);     // pg_temp.sgivm_delta_<relid>
std::string affected_table(uint32_t relid);  // pg_temp.sgivm_aff_<relid>
std::string new_rows_table(uint32_t relid);  // pg_temp.sgivm_new_<relid>
// A delta table: the rows of `like` that a batch removed (sgivm_m = -1) and added (+1).
std::string delta_table_ddl(uint32_t relid, const std::string &like);
constexpr const char *kSign = "sgivm_m";
std::string quote_identifier(const std::string &s);

ViewPlan plan_view(const ViewShape &shape);

// A view's plan as the catalog keeps it (stategrid_ivm.view.plan): the parts of the shape that
// the statements' callers need, and the statements. plan_to_json writes it, plan_from_json reads
// it back (view_plan_json.cpp); nothing else parses it.
struct StoredViewPlan {
    ViewShape::Kind kind = ViewShape::Kind::Projection;
    std::vector<uint32_t> input_relids;
    std::vector<std::vector<std::string>> input_columns;  // per input (plans of 0.1.0's first form lack them)
    std::vector<std::string> columns, types, audit_columns, key;
    std::string deparsed;
    ViewPlan plan;
};

// Malformed plan text: not JSON, or a key of the wrong type.
struct PlanFormatError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

StoredViewPlan stored_plan(const ViewShape &shape, const ViewPlan &plan);
std::string plan_to_json(const StoredViewPlan &stored);
std::string plan_to_json(const ViewShape &shape, const ViewPlan &plan);
// The inverse of plan_to_json, for its output as written or as jsonb prints it (keys in any
// order, whitespace). Keys that older plans lack read as empty; statements stored as a single
// string where a list is expected read as a list of one.
StoredViewPlan plan_from_json(const std::string &json);

}  // namespace sgivm
