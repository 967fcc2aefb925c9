// The aggregate operator's delta rules over kept state (DBSP's "linear" and "incremental"
// aggregates; pg_ivm's counting algorithm). A GROUP BY view keeps, per group, in an engine-owned
// table beside it (sgivm_state_<view relid>): the number of rows, and per aggregate what its
// value is computed from by arithmetic --
//   count(*), count(x):   counts, added to;
//   sum(x), avg(x):       the sum of the non-NULL values and their count (sum is NULL, avg too,
//                         at count 0); of a numeric, NaNs are counted apart (_nan) and not
//                         added: a NaN in the sum would stay after its row went;
//   min(x), max(x):       the extreme; an inserted value can only replace it, a retracted one
//                         that is the extreme marks the group for a re-read of that group
//                         only, through an index on (group, x);
//   count(DISTINCT x):    the number of values whose multiplicity is positive, from a second
//                         table of (group, x, multiplicity) (sgivm_state_<relid>_<n>).
// A batch folds its input delta (rows with sgivm_m = -1 removed, +1 added) into the state by
// upsert (ON CONFLICT on a NULLS NOT DISTINCT key, so NULL groups are groups), drops the groups
// whose count reached 0, and computes the touched groups' rows from their state into the work
// table that the keyed diff of view_plan.cpp compares with the view: a change costs what it
// touches, not what its groups hold. Without GROUP BY the state is a single row, kept at count 0
// too (SQL's one row over an empty input), and folded into by an UPDATE instead of an upsert.
#include <cctype>
#include <set>
#include <stdexcept>

#include "core/cpp_only.hpp"
#include "core/view_plan.hpp"
#include "core/view_plan_sql.hpp"

namespace sgivm {

namespace state {

using Fn = ViewShape::Aggregate::Fn;
using sql::join;

std::string g(size_t i) { return "sgivm_g" + std::to_string(i + 1); }
std::string a(size_t k) { return "sgivm_a" + std::to_string(k + 1); }

bool extreme(Fn f) { return f == Fn::Min || f == Fn::Max; }

// The state table's name: in the view's schema, after its relid (as its indexes are).
std::string state_name(const ViewShape &s, const std::string &suffix) {
    return s.state_schema + "." + quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + suffix);
}

// An output expression with its parameters replaced: $N (N <= kGroupParamBase) is aggregate N's
// value, $N above it a group column, both of state row `alias`. The deparser prints
// constants in '...' and identifiers in "..."; a `$` inside an identifier (a$1) is no parameter.
std::string substitute(const std::string &expr, const std::vector<std::string> &agg_values,
                       const std::vector<std::string> &group_values) {
    std::string out;
    char quote = 0;
    for (size_t i = 0; i < expr.size(); i++) {
        char c = expr[i];
        if (quote) {
            out += c;
            if (c == quote) {
                if (i + 1 < expr.size() && expr[i + 1] == quote)
                    out += expr[++i];
                else
                    quote = 0;
            }
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            out += c;
            continue;
        }
        bool ident_before = i > 0 && (isalnum(static_cast<unsigned char>(expr[i - 1])) || expr[i - 1] == '_' ||
                                      expr[i - 1] == '$' || static_cast<unsigned char>(expr[i - 1]) >= 0x80);
        if (c != '$' || ident_before || i + 1 >= expr.size() || !isdigit(static_cast<unsigned char>(expr[i + 1]))) {
            out += c;
            continue;
        }
        size_t j = i + 1;
        unsigned long n = 0;
        while (j < expr.size() && isdigit(static_cast<unsigned char>(expr[j])) && n < 100000000) n = n * 10 + (expr[j++] - '0');
        if (n >= 1 && n <= agg_values.size()) {
            out += "(" + agg_values[n - 1] + ")";
        } else if (n > kGroupParamBase && n - kGroupParamBase <= group_values.size()) {
            out += group_values[n - kGroupParamBase - 1];
        } else {
            throw std::runtime_error("view plan: parameter $" + std::to_string(n) + " of an output expression is unknown");
        }
        i = j - 1;
    }
    return out;
}

// sum and avg of a numeric are NaN while a NaN is held
std::string nan_case(const ViewShape::Aggregate &ag, const std::string &v) {
    return ag.nan ? " WHEN " + v + "_nan > 0 THEN 'NaN'::numeric" : "";
}

// The value aggregate k shows, from the state row's columns prefixed by `t` ("t." or "").
std::string value_of(const ViewShape::Aggregate &ag, size_t k, const std::string &t) {
    const std::string v = t + a(k);
    switch (ag.fn) {
        case Fn::CountStar: return t + "sgivm_n";
        case Fn::Count:
        case Fn::CountDistinct:
        case Fn::Min:
        case Fn::Max: return v;
        case Fn::Sum:
            return "CASE WHEN " + v + "_n = 0 THEN NULL" + nan_case(ag, v) + " ELSE " + v + " END";
        // avg's own final function: numeric division of the sum by the count
        case Fn::Avg:
            return "CASE WHEN " + v + "_n = 0 THEN NULL" + nan_case(ag, v) + " ELSE " + v + "::numeric / " + v +
                   "_n::numeric END";
    }
    return v;
}

std::vector<std::string> agg_values(const ViewShape &s, const std::string &t) {
    std::vector<std::string> v;
    for (size_t k = 0; k < s.aggregates.size(); k++) v.push_back(value_of(s.aggregates[k], k, t));
    return v;
}

std::vector<std::string> group_values(const ViewShape &s, const std::string &t) {
    std::vector<std::string> v;
    for (size_t i = 0; i < s.group_exprs.size(); i++) v.push_back(t + g(i));
    return v;
}

// Adds a delta's per-group terms (`exprs` over `from`, written to `cols`, the group columns
// first) to the state rows of their groups: an upsert by the group key, whose SET reads the
// terms as excluded.<col>. Without GROUP BY the state is one row, kept also at count 0 (the
// row of an empty input): the delta sums to one row (none when the batch left nothing), which
// updates it under the same name.
std::string fold_statement(const std::string &st, const std::vector<std::string> &gcols, const std::vector<std::string> &cols,
                           const std::vector<std::string> &exprs, const std::string &from, const std::vector<std::string> &set) {
    if (!gcols.empty()) {
        std::vector<std::string> by;
        for (size_t i = 0; i < gcols.size(); i++) by.push_back(std::to_string(i + 1));
        return "INSERT INTO " + st + " AS t (" + join(cols, ", ") + ") SELECT " + join(exprs, ", ") + " FROM " + from +
               " GROUP BY " + join(by, ", ") + " ON CONFLICT (" + join(gcols, ", ") + ") DO UPDATE SET " + join(set, ", ");
    }
    std::vector<std::string> named;
    for (size_t i = 0; i < cols.size(); i++) named.push_back(exprs[i] + " AS " + cols[i]);
    return "UPDATE " + st + " AS t SET " + join(set, ", ") + " FROM (SELECT " + join(named, ", ") + " FROM " + from +
           " HAVING count(*) > 0) excluded";
}

}  // namespace state

namespace {
using namespace state;
}  // namespace

void plan_aggregate_state(const ViewShape &s, ViewPlan &p) {
    if ((s.scope.size() != s.group_exprs.size() && s.top_n <= 0) || s.group_types.size() != s.group_exprs.size())
        throw std::runtime_error("differential maintenance needs every group expression in scope, with its type");
    if (s.outputs.size() != s.columns.size()) throw std::runtime_error("output expressions and columns disagree");
    const ViewInput &in = s.inputs.at(0);
    const std::string st = state_name(s), delta = delta_table(in.relid), aff = affected_table(s.view_relid);
    const size_t ng = s.group_exprs.size();
    std::vector<std::string> gcols, gexprs, gs_t;
    for (size_t i = 0; i < ng; i++) {
        gcols.push_back(g(i));
        gexprs.push_back("(" + s.group_exprs[i] + ")");
    }
    // (the affected table holds the scope's expressions in the scope's order)
    for (size_t i : s.scope) gs_t.push_back("t." + g(i));
    std::vector<std::string> group_by;
    for (size_t i = 0; i < ng; i++) group_by.push_back(std::to_string(i + 1));
    const std::string by_groups = ng ? " GROUP BY " + join(group_by, ", ") : "";
    // The view's WHERE: the state holds the rows it admits, from the input and from the delta.
    const std::string and_filter = s.filter.empty() ? "" : " AND (" + s.filter + ")";
    const std::string where_filter = s.filter.empty() ? "" : " WHERE (" + s.filter + ")";

    // The state table: group columns, the row count, per aggregate its kept values.
    std::vector<std::string> defs, idx;
    for (size_t i = 0; i < ng; i++) defs.push_back(g(i) + " " + s.group_types[i]);
    defs.push_back("sgivm_n bigint NOT NULL DEFAULT 0");
    bool any_extreme = false;
    for (size_t k = 0; k < s.aggregates.size(); k++) {
        const ViewShape::Aggregate &ag = s.aggregates[k];
        switch (ag.fn) {
            case Fn::CountStar: break;
            case Fn::Count:
            case Fn::CountDistinct: defs.push_back(a(k) + " bigint NOT NULL DEFAULT 0"); break;
            case Fn::Sum:
            case Fn::Avg:
                defs.push_back(a(k) + " " + ag.state_type + " NOT NULL DEFAULT 0");
                defs.push_back(a(k) + "_n bigint NOT NULL DEFAULT 0");
                if (ag.nan) defs.push_back(a(k) + "_nan bigint NOT NULL DEFAULT 0");
                break;
            case Fn::Min:
            case Fn::Max:
                // (_x carries a batch's retracted extreme through the upsert; NULL at rest)
                defs.push_back(a(k) + " " + ag.state_type);
                defs.push_back(a(k) + "_x " + ag.state_type);
                any_extreme = true;
                break;
        }
    }
    if (any_extreme) defs.push_back("sgivm_reread boolean NOT NULL DEFAULT false");
    p.state_tables.push_back(st);
    p.state_setup.push_back("CREATE TABLE IF NOT EXISTS " + st + " (" + join(defs, ", ") + ")");
    // (publishable: a publication FOR ALL TABLES covers it, and PostgreSQL refuses to update a
    // published table without an identity; its key admits NULL groups, so no index can be one)
    p.state_setup.push_back("ALTER TABLE " + st + " REPLICA IDENTITY FULL");
    if (ng)
        p.state_setup.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " +
                                quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_key") + " ON " + st + " (" +
                                join(gcols, ", ") + ") NULLS NOT DISTINCT");

    // Fill from the input, and fold a delta: the columns written, and per column its value
    // from the input (fill) and from the delta (fold), and how an existing group takes it.
    std::vector<std::string> cols = gcols, fill = gexprs, fold = gexprs, set;
    const std::string pos = " FILTER (WHERE " + std::string(kSign) + " > 0)", neg = " FILTER (WHERE " + std::string(kSign) + " < 0)";
    cols.push_back("sgivm_n");
    fill.push_back("count(*)");
    fold.push_back("sum(" + std::string(kSign) + ")");
    set.push_back("sgivm_n = t.sgivm_n + excluded.sgivm_n");
    std::vector<std::string> reread, retracted;
    for (size_t k = 0; k < s.aggregates.size(); k++) {
        const ViewShape::Aggregate &ag = s.aggregates[k];
        const std::string x = "(" + ag.arg + ")", ak = a(k);
        switch (ag.fn) {
            case Fn::CountStar: break;
            case Fn::CountDistinct:  // (folded by its own statement below)
                cols.push_back(ak);
                fill.push_back("count(DISTINCT " + x + ")");
                fold.push_back("0");
                break;
            case Fn::Count:
                cols.push_back(ak);
                fill.push_back("count(" + x + ")");
                fold.push_back("count(" + x + ")" + pos + " - count(" + x + ")" + neg);
                set.push_back(ak + " = t." + ak + " + excluded." + ak);
                break;
            case Fn::Sum:
            case Fn::Avg: {
                // (the count _n counts NaNs: a group of NaNs only sums to NaN, not NULL)
                const std::string added = ag.nan ? "nullif(" + x + ", 'NaN')" : x;
                const std::string sum = "sum(" + added + ")::" + ag.state_type;
                cols.push_back(ak);
                cols.push_back(ak + "_n");
                fill.push_back("coalesce(" + sum + ", 0)");
                fill.push_back("count(" + x + ")");
                fold.push_back("coalesce(sum(" + added + ")" + pos + ", 0)::" + ag.state_type + " - coalesce(sum(" + added +
                               ")" + neg + ", 0)::" + ag.state_type);
                fold.push_back("count(" + x + ")" + pos + " - count(" + x + ")" + neg);
                set.push_back(ak + " = t." + ak + " + excluded." + ak);
                set.push_back(ak + "_n = t." + ak + "_n + excluded." + ak + "_n");
                if (ag.nan) {
                    cols.push_back(ak + "_nan");
                    fill.push_back("count(*) FILTER (WHERE " + x + " = 'NaN')");
                    fold.push_back("coalesce(sum(" + std::string(kSign) + ") FILTER (WHERE " + x + " = 'NaN'), 0)");
                    set.push_back(ak + "_nan = t." + ak + "_nan + excluded." + ak + "_nan");
                }
                break;
            }
            case Fn::Min:
            case Fn::Max: {
                const std::string fn = ag.fn == Fn::Min ? "min" : "max", pick = ag.fn == Fn::Min ? "LEAST" : "GREATEST",
                                  past = ag.fn == Fn::Min ? " <= " : " >= ";
                cols.push_back(ak);
                cols.push_back(ak + "_x");
                fill.push_back(fn + "(" + x + ")");
                fill.push_back("NULL");
                fold.push_back(fn + "(" + x + ")" + pos);
                fold.push_back(fn + "(" + x + ")" + neg);
                set.push_back(ak + " = " + pick + "(t." + ak + ", excluded." + ak + ")");
                set.push_back(ak + "_x = NULL");
                // the retracted extreme was the group's: read the group again
                reread.push_back("(excluded." + ak + "_x IS NOT NULL AND (t." + ak + " IS NULL OR excluded." + ak + "_x" + past +
                                 "t." + ak + "))");
                retracted.push_back(fn + "(" + x + ")" + neg + " IS NOT NULL");
                break;
            }
        }
    }
    if (any_extreme) {
        set.push_back("sgivm_reread = t.sgivm_reread OR " + join(reread, " OR "));
        // A group new to the state may still lose rows in the batch (a TRUNCATE between its
        // inserts): its extremes then count retracted values, and are read again.
        cols.push_back("sgivm_reread");
        fill.push_back("false");
        fold.push_back(join(retracted, " OR "));
    }
    p.state_fill.push_back("DELETE FROM " + st);
    p.state_fill.push_back("INSERT INTO " + st + " (" + join(cols, ", ") + ") SELECT " + join(fill, ", ") + " FROM " +
                           in.qualified + where_filter + by_groups);
    p.state_apply.push_back(fold_statement(st, gcols, cols, fold, delta + where_filter, set));

    // count(DISTINCT x): the multiplicity of each (group, x); a value counts while it is positive.
    for (size_t k = 0; k < s.aggregates.size(); k++) {
        const ViewShape::Aggregate &ag = s.aggregates[k];
        if (ag.fn != Fn::CountDistinct) continue;
        const std::string ds = state_name(s, "_" + std::to_string(k + 1)), x = "(" + ag.arg + ")", ak = a(k);
        std::vector<std::string> dcols = gcols;
        dcols.push_back("sgivm_v");
        std::vector<std::string> ddefs;
        for (size_t i = 0; i < ng; i++) ddefs.push_back(g(i) + " " + s.group_types[i]);
        ddefs.push_back("sgivm_v " + ag.state_type + " NOT NULL");
        ddefs.push_back("sgivm_n bigint NOT NULL");
        ddefs.push_back("sgivm_dm bigint NOT NULL DEFAULT 0");  // the last batch's change (for the count's)
        p.state_tables.push_back(ds);
        p.state_setup.push_back("CREATE TABLE IF NOT EXISTS " + ds + " (" + join(ddefs, ", ") + ")");
        p.state_setup.push_back("ALTER TABLE " + ds + " REPLICA IDENTITY FULL");
        p.state_setup.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " +
                                quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_" + std::to_string(k + 1) +
                                                 "_key") +
                                " ON " + ds + " (" + join(dcols, ", ") + ") NULLS NOT DISTINCT");
        std::vector<std::string> by_value = group_by;
        by_value.push_back(std::to_string(ng + 1));
        p.state_fill.push_back("DELETE FROM " + ds);
        std::vector<std::string> dfill = gexprs;
        dfill.push_back(x);
        dfill.push_back("count(*)");
        p.state_fill.push_back("INSERT INTO " + ds + " (" + join(dcols, ", ") + ", sgivm_n) SELECT " + join(dfill, ", ") +
                               " FROM " + in.qualified + " WHERE " + x + " IS NOT NULL" + and_filter + " GROUP BY " +
                               join(by_value, ", "));
        // Fold: new multiplicities (returning each value's new and last change), then the
        // group's count moves by the values that appeared (0 -> positive) or went (-> 0).
        std::vector<std::string> dsel = gexprs;
        dsel.push_back(x);
        dsel.push_back("sum(" + std::string(kSign) + ")");
        dsel.push_back("sum(" + std::string(kSign) + ")");
        std::vector<std::string> ret;
        for (const std::string &c : dcols) ret.push_back("t." + c);
        ret.push_back("t.sgivm_n");
        ret.push_back("t.sgivm_dm");
        std::vector<std::string> gained = gcols, gained_cols = gcols;
        gained.push_back("0");
        gained.push_back("sum(CASE WHEN sgivm_n > 0 AND sgivm_n - sgivm_dm <= 0 THEN 1 "
                         "WHEN sgivm_n <= 0 AND sgivm_n - sgivm_dm > 0 THEN -1 ELSE 0 END)");
        gained_cols.push_back("sgivm_n");
        gained_cols.push_back(ak);
        p.state_apply.push_back(
            "WITH sgivm_values AS (INSERT INTO " + ds + " AS t (" + join(dcols, ", ") + ", sgivm_n, sgivm_dm) SELECT " +
            join(dsel, ", ") + " FROM " + delta + " WHERE " + x + " IS NOT NULL" + and_filter + " GROUP BY " + join(by_value, ", ") +
            " HAVING sum(" + kSign + ") <> 0 ON CONFLICT (" + join(dcols, ", ") +
            ") DO UPDATE SET sgivm_n = t.sgivm_n + excluded.sgivm_n, sgivm_dm = excluded.sgivm_dm RETURNING " + join(ret, ", ") +
            ") " + fold_statement(st, gcols, gained_cols, gained, "sgivm_values", {ak + " = t." + ak + " + excluded." + ak}));
        // Values whose multiplicity reached 0 go, found through a partial index that holds only
        // them (a group may hold a million values: its key's range is no way to find them).
        p.state_setup.push_back("CREATE INDEX IF NOT EXISTS " +
                                quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_" + std::to_string(k + 1) +
                                                 "_gone") +
                                " ON " + ds + " (sgivm_n) WHERE sgivm_n = 0");
        p.state_apply.push_back("DELETE FROM " + ds + " WHERE sgivm_n = 0");
    }

    // min/max whose extreme went: the group's rows read again, through the index on (group, x).
    if (any_extreme) {
        std::vector<std::string> set_again;
        size_t n_index = 0;
        std::set<std::string> indexed;
        for (size_t k = 0; k < s.aggregates.size(); k++) {
            const ViewShape::Aggregate &ag = s.aggregates[k];
            if (!extreme(ag.fn)) continue;
            const std::string fn = ag.fn == Fn::Min ? "min" : "max", x = "(" + ag.arg + ")";
            std::vector<std::string> eq, same, any_null;
            for (size_t i = 0; i < ng; i++) {
                eq.push_back(gexprs[i] + " = t." + g(i));
                same.push_back(gexprs[i] + " IS NOT DISTINCT FROM t." + g(i));
                any_null.push_back("t." + g(i) + " IS NULL");
            }
            if (!s.filter.empty()) {
                eq.push_back("(" + s.filter + ")");
                same.push_back("(" + s.filter + ")");
            }
            auto extreme_of = [&](const std::vector<std::string> &where) {
                return "(SELECT " + fn + "(" + x + ") FROM " + in.qualified + (where.empty() ? "" : " WHERE " + join(where, " AND ")) + ")";
            };
            set_again.push_back(a(k) + " = " +
                                (ng ? "CASE WHEN " + join(any_null, " OR ") + " THEN " + extreme_of(same) + " ELSE " + extreme_of(eq) + " END"
                                    : extreme_of(eq)));
            std::vector<std::string> on = gexprs;
            on.push_back(x);
            // (made with the state, by add_view or the worker; drop_view drops it by its name;
            // min(x) and max(x) read the same one)
            const std::string columns = " (" + join(on, ", ") + ")";
            if (indexed.find(columns) != indexed.end()) continue;
            indexed.insert(columns);
            p.state_setup.push_back("CREATE INDEX IF NOT EXISTS " + sql::index_name("x", s.view_relid, n_index++) + " ON " +
                                    in.qualified + columns);
        }
        set_again.push_back("sgivm_reread = false");
        // (the groups to read again, and below the groups gone, are found through partial
        // indexes holding only them: not through the affected set, which for a top-N is the
        // touched partitions)
        p.state_setup.push_back("CREATE INDEX IF NOT EXISTS " + quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_reread") +
                                " ON " + st + " (sgivm_reread) WHERE sgivm_reread");
        p.state_apply.push_back("UPDATE " + st + " t SET " + join(set_again, ", ") + " WHERE t.sgivm_reread");
    }
    if (ng) {  // (the one row of a view without GROUP BY stays: an empty input has a row too)
        p.state_setup.push_back("CREATE INDEX IF NOT EXISTS " + quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_gone") +
                                " ON " + st + " (sgivm_n) WHERE sgivm_n = 0");
        p.state_apply.push_back("DELETE FROM " + st + " WHERE sgivm_n = 0");
    }

    // The touched groups' rows, from their state, into the work table.
    const std::vector<std::string> aggs_t = agg_values(s, "t."), groups_t = group_values(s, "t.");
    std::vector<std::string> outs;
    for (size_t c = 0; c < s.outputs.size(); c++) outs.push_back(substitute(s.outputs[c], aggs_t, groups_t));
    std::string where = "";
    if (!s.having.empty()) where = " WHERE " + substitute(s.having, aggs_t, groups_t);
    const std::string touched = ng ? "(SELECT * FROM " + st + " t WHERE " + sql::scope_match(gs_t, aff, false) +
                                         " UNION ALL SELECT * FROM " + st + " t WHERE " + sql::scope_match(gs_t, aff, true) + ")"
                                   : st;
    p.compute = "INSERT INTO " + new_rows_table(s.view_relid) + " (" + join(sql::quoted(s.columns), ", ") + ") SELECT " +
                join(outs, ", ") + " FROM " + touched + " t" + where;
    p.strategy = "differential";
    p.strategy_reason = "";
}

}  // namespace sgivm
