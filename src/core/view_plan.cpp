// SQL generation for view maintenance by scoped recomputation. A batch's changes to a view's
// inputs arrive as delta tables (old and new rows alike). From them the plan derives the
// affected scope — fact keys for a projection/join view, group (or ranking partition) values for
// an aggregate view — recomputes the scope's rows from the inputs restricted to the scope, and
// writes the difference: rows of the view in scope that changed go, their new versions come.
// Inputs are the engine's own tables, never live sources.
#include "core/view_plan.hpp"

#include <stdexcept>

#include "core/cpp_only.hpp"
#include "core/view_plan_sql.hpp"

namespace sgivm {

std::string quote_identifier(const std::string &s) {
    std::string q = "\"";
    for (char c : s) {
        if (c == '"') q += '"';
        q += c;
    }
    return q + "\"";
}

std::string delta_table(uint32_t relid) { return "pg_temp.sgivm_delta_" + std::to_string(relid); }
std::string affected_table(uint32_t relid) { return "pg_temp.sgivm_aff_" + std::to_string(relid); }
std::string new_rows_table(uint32_t relid) { return "pg_temp.sgivm_new_" + std::to_string(relid); }

std::string delta_table_ddl(uint32_t relid, const std::string &like) {
    return "CREATE TEMP TABLE IF NOT EXISTS " + delta_table(relid).substr(8) + " (LIKE " + like + ", " + kSign +
           " smallint NOT NULL) ON COMMIT DELETE ROWS";
}

namespace sql {

std::string join(const std::vector<std::string> &parts, const std::string &sep) {
    std::string s;
    for (size_t i = 0; i < parts.size(); i++) s += (i ? sep : "") + parts[i];
    return s;
}

std::vector<std::string> quoted(const std::vector<std::string> &names, const std::string &prefix) {
    std::vector<std::string> q;
    for (const std::string &n : names) q.push_back(prefix + quote_identifier(n));
    return q;
}

std::vector<std::string> aff_columns(size_t n) {
    std::vector<std::string> c;
    // named apart from user columns: the NULL-safe match refers to both in one subquery
    for (size_t i = 0; i < n; i++) c.push_back("sgivm_k" + std::to_string(i + 1));
    return c;
}

// Rows of `table` (aliased t) whose scope expressions match the affected table: an indexable
// IN for values without NULLs, and a NULL-safe match that only runs when the affected set
// holds a NULL (a one-time filter), so the common case never scans the whole table.
std::string scope_match(const std::vector<std::string> &exprs, const std::string &aff, bool nulls_part) {
    std::vector<std::string> a = aff_columns(exprs.size());
    if (!nulls_part) return "(" + join(exprs, ", ") + ") IN (SELECT " + join(a, ", ") + " FROM " + aff + ")";
    std::vector<std::string> any_null_aff, any_null_row, match;
    for (size_t i = 0; i < exprs.size(); i++) {
        any_null_aff.push_back(a[i] + " IS NULL");
        any_null_row.push_back("(" + exprs[i] + ") IS NULL");
        match.push_back("x." + a[i] + " IS NOT DISTINCT FROM (" + exprs[i] + ")");
    }
    return "(SELECT EXISTS (SELECT 1 FROM " + aff + " WHERE " + join(any_null_aff, " OR ") + ")) AND (" +
           join(any_null_row, " OR ") + ") AND EXISTS (SELECT 1 FROM " + aff + " x WHERE " + join(match, " AND ") +
           ")";
}

// Index names are per schema: the view's relid keeps them apart.
std::string index_name(const char *kind, uint32_t view_relid, size_t n) {
    return std::string("sgivm_") + kind + "_" + std::to_string(view_relid) + "_" + std::to_string(n);
}

}  // namespace sql

namespace {

using sql::aff_columns;
using sql::index_name;
using sql::join;
using sql::quoted;
using sql::scope_match;

std::string cte_name(const ViewInput &in) { return "sgivm_in_" + std::to_string(in.relid); }

// The deparsed query with its first table (the fact, or the aggregate's input) replaced by a CTE
// of the same columns. The deparser always writes `schema.table alias`, and the first table comes
// first; a self-join's second reference stays the whole table.
std::string replace_input(const std::string &deparsed, const ViewInput &in) {
    const std::string needle = in.qualified + " ";
    // The deparser writes string constants as '...' and identifiers as "..." (the quote inside
    // doubled): a constant or a column alias that happens to contain the table's name is not
    // the input, and a quote inside the other kind does not end either.
    char quote = 0;
    for (size_t i = 0; i < deparsed.size(); i++) {
        char c = deparsed[i];
        if (quote) {
            if (c == quote) {
                if (i + 1 < deparsed.size() && deparsed[i + 1] == quote)
                    i++;
                else
                    quote = 0;
            }
            continue;
        }
        char before = i == 0 ? ' ' : deparsed[i - 1];
        if ((before == ' ' || before == '(' || before == '\n') && deparsed.compare(i, needle.size(), needle) == 0)
            return deparsed.substr(0, i) + cte_name(in) + " " + deparsed.substr(i + needle.size());
        if (c == '\'' || c == '"') quote = c;
    }
    throw std::runtime_error("input " + in.qualified + " not found in the deparsed view query");
}

// The rows a statement writes, also into the view's delta table with their sign (-1 removed,
// +1 added): the views above read them as a multiset delta.
std::string capture(const std::string &modify, const std::string &delta, int sign) {
    return "WITH sgivm_changed AS (" + modify + " RETURNING *) INSERT INTO " + delta + " SELECT *, " +
           std::to_string(sign) + " FROM sgivm_changed";
}

// Whether a row changed is decided by the binary image of its values (record image equality,
// as REFRESH MATERIALIZED VIEW CONCURRENTLY decides it), not by their types' equality: 1.0 and
// 1.00, 0 and -0, 'a' and 'A' under a case-insensitive collation are equal, but a reader sees
// the difference, and a view must print what its query prints now. Image comparison works for
// every type, also those without an equality (json, xml, point). Finding the row of a key stays
// with the type's equality, which the unique index enforces. (verify() compares by image too:
// _compare_by_image in the extension's SQL.)
std::string row_image(const std::vector<std::string> &values) { return "ROW(" + join(values, ", ") + ")::record"; }

// a.k1 = b.k1 AND ...: never true for a NULL key part (such rows are removed and inserted).
// The empty key of a single-row view (no GROUP BY) matches its one row.
std::string key_equal(const std::vector<std::string> &key, const std::string &a, const std::string &b) {
    if (key.empty()) return "true";
    std::vector<std::string> eq;
    for (const std::string &k : key) eq.push_back(a + "." + quote_identifier(k) + " = " + b + "." + quote_identifier(k));
    return join(eq, " AND ");
}

}  // namespace

ViewPlan plan_view(const ViewShape &s) {
    if (s.inputs.empty()) throw std::runtime_error("a view needs at least one input");
    if (s.columns.size() != s.types.size() || s.columns.size() != s.audit.size())
        throw std::runtime_error("column lists of the view shape disagree");
    ViewPlan p;
    const std::string self_delta = delta_table(s.view_relid);
    const std::string aff = affected_table(s.view_relid);
    const ViewInput &first = s.inputs[0];
    std::vector<std::string> cols = quoted(s.columns);

    p.setup.push_back(delta_table_ddl(s.view_relid, s.view_table));
    p.populate = "INSERT INTO " + s.view_table + " (" + join(cols, ", ") + ") " + s.deparsed;

    std::string restricted;  // the first input restricted to the affected scope
    std::vector<std::string> view_scope;
    std::string query;       // the scope's rows, as the view's query computes them
    const bool general_join = !s.occurrences.empty();
    // Aggregates without GROUP BY: a single row (also over empty input), whose scope is the
    // whole view. Its state is one row too: what a batch touches costs what it changed.
    const bool single_row = s.kind == ViewShape::Kind::Aggregate && s.group_exprs.empty();
    if (general_join) {
        query = plan_join(s, p);
    } else if (s.kind == ViewShape::Kind::Projection) {
        if (s.fact_key.empty() || s.key.size() != s.fact_key.size())
            throw std::runtime_error("a projection view needs the fact table's key among its columns");
        std::vector<std::string> fk = quoted(s.fact_key);
        std::vector<std::string> a = aff_columns(fk.size());
        std::vector<std::string> typed;
        for (size_t i = 0; i < fk.size(); i++) typed.push_back(fk[i] + " AS " + a[i]);
        p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS " + aff.substr(8) + " ON COMMIT DELETE ROWS AS SELECT " +
                          join(typed, ", ") + " FROM " + first.qualified + " WITH NO DATA");
        std::string fill = "INSERT INTO " + aff + " SELECT " + join(fk, ", ") + " FROM " + delta_table(first.relid);
        for (const ViewShape::Join &j : s.joins) {
            const ViewInput &dim = s.inputs.at(j.input);
            fill += " UNION SELECT " + join(quoted(s.fact_key, "f."), ", ") + " FROM " + first.qualified + " f WHERE f." +
                    quote_identifier(j.fact_column) + " IN (SELECT d." + quote_identifier(j.dim_column) + " FROM " +
                    delta_table(dim.relid) + " d)";
        }
        p.fill_affected = fill;
        // A primary key has no NULLs, but a maintained view used as the fact may: the NULL-safe
        // halves only run when the affected set holds a NULL.
        restricted = "SELECT * FROM " + first.qualified + " WHERE " + scope_match(fk, aff, false) +
                     " UNION ALL SELECT * FROM " + first.qualified + " WHERE " + scope_match(fk, aff, true);
        view_scope = quoted(s.key);
        p.indexes.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " + index_name("k", s.view_relid, 0) + " ON " +
                            s.view_table + " (" + join(quoted(s.key), ", ") + ")");
        for (size_t i = 0; i < s.joins.size(); i++)
            p.indexes.push_back("CREATE INDEX IF NOT EXISTS " + index_name("j", s.view_relid, i) + " ON " +
                                first.qualified + " (" + quote_identifier(s.joins[i].fact_column) + ")");
    } else if (single_row) {
        // (the affected set says only whether the batch touched the input)
        p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS " + aff.substr(8) + " (sgivm_k1 boolean) ON COMMIT DELETE ROWS");
        p.fill_affected = "INSERT INTO " + aff + " SELECT true FROM " + delta_table(first.relid) + " LIMIT 1";
        restricted = "SELECT * FROM " + first.qualified;
    } else {
        if (s.scope.empty()) throw std::runtime_error("an aggregate view needs GROUP BY expressions");
        std::vector<std::string> exprs, outs, a = aff_columns(s.scope.size()), typed;
        for (size_t i = 0; i < s.scope.size(); i++) {
            exprs.push_back("(" + s.group_exprs.at(s.scope[i]) + ")");
            outs.push_back(quote_identifier(s.group_columns.at(s.scope[i])));
            typed.push_back(exprs.back() + " AS " + a[i]);
        }
        p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS " + aff.substr(8) + " ON COMMIT DELETE ROWS AS SELECT " +
                          join(typed, ", ") + " FROM " + first.qualified + " WITH NO DATA");
        p.fill_affected = "INSERT INTO " + aff + " SELECT DISTINCT " + join(exprs, ", ") + " FROM " + delta_table(first.relid);
        restricted = "SELECT * FROM " + first.qualified + " WHERE " + scope_match(exprs, aff, false) +
                     " UNION ALL SELECT * FROM " + first.qualified + " WHERE " + scope_match(exprs, aff, true);
        view_scope = outs;
        std::vector<std::string> keycols = quoted(s.key);
        if (outs != keycols)  // (a scope of every group is the key, which has its unique index)
            p.indexes.push_back("CREATE INDEX IF NOT EXISTS " + index_name("s", s.view_relid, 0) + " ON " + s.view_table +
                                " (" + join(outs, ", ") + ")");
        if (!s.key.empty())
            p.indexes.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " + index_name("k", s.view_relid, 0) + " ON " +
                                s.view_table + " (" + join(keycols, ", ") + ")");
        // (the input's rows by group: what recomputing a group reads; delta rules read the
        // state instead, and every index on the input is written by every batch)
        if (!s.fallback.empty() || s.outputs.empty())
            p.indexes.push_back("CREATE INDEX IF NOT EXISTS " + index_name("g", s.view_relid, 0) + " ON " + first.qualified +
                                " (" + join(exprs, ", ") + ")");
    }
    if (!general_join) query = "WITH " + cte_name(first) + " AS (" + restricted + ") " + replace_input(s.deparsed, first);
    std::vector<std::string> compared;
    for (size_t i = 0; i < s.columns.size(); i++)
        if (!s.audit[i]) compared.push_back(cols[i]);
    const std::string into_view = "INSERT INTO " + s.view_table + " (" + join(cols, ", ") + ") ";
    // Each maintenance statement comes twice: writing the view's changes to its delta table too
    // (for the views above it), and not (for a view that no view reads).
    auto both = [&](std::vector<std::string> &captured, std::vector<std::string> &plain, const std::string &modify) {
        captured.push_back(capture(modify, self_delta, -1));  // (only removals come in lists)
        plain.push_back(modify);
    };
    auto both1 = [&](std::string &captured, std::string &plain, const std::string &modify) {
        captured = capture(modify, self_delta, 1);
        plain = modify;
    };
    // The view's rows in scope, with a further condition: a statement per condition of the
    // scope (the second NULL-safe; a join's, one per occurrence; a single row's, all).
    auto conditions = [&](const std::string &t) {
        if (general_join) return join_view_scope(s, t);
        if (single_row) return std::vector<std::string>{"true"};
        std::vector<std::string> cols;
        for (const std::string &c : view_scope) cols.push_back(t + c);
        return std::vector<std::string>{scope_match(cols, aff, false), scope_match(cols, aff, true)};
    };
    const std::vector<std::string> scope_conditions = conditions(""), scope_conditions_t = conditions("t.");
    auto scope_deletes = [&](std::vector<std::string> &captured, std::vector<std::string> &plain, const std::string &alias,
                             const std::string &also) {
        for (const std::string &c : alias.empty() ? scope_conditions : scope_conditions_t)
            both(captured, plain, "DELETE FROM " + s.view_table + alias + " WHERE " + c + also);
    };
    if ((s.key.empty() && !single_row) || compared.empty()) {
        // Rows may repeat: replace the whole scope.
        scope_deletes(p.remove, p.uncaptured.remove, "", "");
        both1(p.recompute, p.uncaptured.recompute, into_view + query);
    } else {
        // Keyed rows: write only what changed. The scope is recomputed into a work table and
        // matched with the view's rows by key: an unchanged row is never rewritten (a ranking
        // rewrites the rows whose rank moved, not its partition).
        const std::string fresh = new_rows_table(s.view_relid);
        // the view's own columns only: an adopted table may have more (with their constraints)
        p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS " + fresh.substr(8) + " ON COMMIT DELETE ROWS AS SELECT " +
                          join(cols, ", ") + " FROM " + s.view_table + " WITH NO DATA");
        p.compute = "INSERT INTO " + fresh + " (" + join(cols, ", ") + ") " + query;
        const std::string from_fresh = into_view + "SELECT " + join(quoted(s.columns, "n."), ", ") + " FROM " + fresh + " n";
        // A row differs when the image of its compared (non-audit) columns does (NULLs alike).
        std::vector<std::string> compared_t, compared_n;
        for (const std::string &c : compared) {
            compared_t.push_back("t." + c);
            compared_n.push_back("n." + c);
        }
        const std::string differs = row_image(compared_t) + " OPERATOR(pg_catalog.*<>) " + row_image(compared_n);
        // (the scope lets the planner read the view's rows of the touched groups or partitions
        // by index, not the whole view; a key that matches has no NULLs)
        std::vector<std::string> view_scope_t;  // the scope columns of the view, of alias t
        for (const std::string &c : view_scope) view_scope_t.push_back("t." + c);
        // (a join's fresh rows are all in scope, and a view row of the same key too)
        const std::string t_in_scope = general_join ? "" : single_row ? "true" : scope_match(view_scope_t, aff, false);
        // A ranking maintained by range (ranking_state.cpp) brings, besides the changed groups
        // (the affected set), the rows whose rank moved: those exist in the view (their groups
        // did not change), and are updated by key; only the changed groups come and go.
        const bool ranged = !s.rank_fn.empty() && s.fallback.empty() && !s.outputs.empty() && s.top_n <= 0;
        // 1. Rows whose key stays but whose values changed (a rank moved, a total grew) are
        //    updated in place: one write per row, and an update that leaves the indexed key's
        //    image alone can stay on its page. The key is set too: it may have changed its image
        //    only (1.0 to 1.00). A view that others read keeps old and new row both.
        std::vector<std::string> set;
        for (const std::string &c : cols) set.push_back(c + " = n." + c);
        const std::string changed =
            " WHERE " + key_equal(s.key, "t", "n") + " AND " + differs + (ranged || t_in_scope.empty() ? "" : " AND " + t_in_scope);
        const std::string update = "UPDATE " + s.view_table + " t SET " + join(set, ", ") + " FROM " + fresh + " n" + changed;
        p.update.push_back("WITH sgivm_old AS (SELECT t.* FROM " + s.view_table + " t JOIN " + fresh + " n ON true" +
                           changed + "), sgivm_new AS (" + update + " RETURNING t.*) INSERT INTO " + self_delta +
                           " SELECT *, -1 FROM sgivm_old UNION ALL SELECT *, 1 FROM sgivm_new");
        p.uncaptured.update.push_back(update);
        // 2. Rows of the scope whose key the recomputation lacks go (a NULL key part never
        //    matches: such a row goes and comes again), 3. recomputed rows whose key the view
        //    lacks come.
        scope_deletes(p.remove, p.uncaptured.remove, " t",
                      " AND NOT EXISTS (SELECT 1 FROM " + fresh + " n WHERE " + key_equal(s.key, "n", "t") + ")");
        if (ranged) {
            std::vector<std::string> view_scope_n;
            for (const std::string &c : view_scope) view_scope_n.push_back("n." + c);
            // (a UNION, not an OR: an IN under an OR is a subplan, rescanned per row when the
            // affected set is too large to hash)
            const std::string absent = " AND NOT EXISTS (SELECT 1 FROM " + s.view_table + " t WHERE " + key_equal(s.key, "t", "n") + ")";
            both1(p.recompute, p.uncaptured.recompute,
                  from_fresh + " WHERE " + scope_match(view_scope_n, aff, false) + absent + " UNION ALL SELECT " +
                      join(quoted(s.columns, "n."), ", ") + " FROM " + fresh + " n WHERE " + scope_match(view_scope_n, aff, true) + absent);
        } else {
            both1(p.recompute, p.uncaptured.recompute,
                  from_fresh + " WHERE NOT EXISTS (SELECT 1 FROM " + s.view_table + " t WHERE " + key_equal(s.key, "t", "n") +
                      (t_in_scope.empty() ? "" : " AND " + t_in_scope) + ")");
            // Or, for a batch that changes most of its scope: all of the scope out, the work table in.
            scope_deletes(p.replace_remove, p.uncaptured.replace_remove, "", "");
            both1(p.replace_insert, p.uncaptured.replace_insert, from_fresh);
        }
    }

    if (general_join) {
        p.strategy = "differential";
    } else if (s.kind == ViewShape::Kind::Projection) {
        // the join's delta rule, by key: the rows of the fact keys a fact delta or a dimension
        // delta (through the join column's index) touches, each computed once
        p.strategy = "differential";
    } else if (s.fallback.empty() && !s.outputs.empty() && !p.compute.empty()) {
        plan_aggregate_state(s, p);
        if (!s.rank_fn.empty() && s.top_n > 0)
            plan_top_n(s, p);
        else if (!s.rank_fn.empty())
            plan_ranking_range(s, p);
    } else {
        p.strategy = "recompute";
        p.strategy_reason = !s.fallback.empty() ? s.fallback
                            : p.compute.empty() ? "every column is an audit column: the touched groups are replaced"
                                                : "planned without delta rules";
        if (single_row) p.strategy_reason += " (without GROUP BY, every change recomputes the whole view)";
    }

    // (what verify() of version 0.1.0 runs; later versions compare by image, _compare_by_image)
    std::string q = "SELECT " + join(compared, ", ") + " FROM (" + s.deparsed + ") q";
    std::string t = "SELECT " + join(compared, ", ") + " FROM " + s.view_table;
    p.verify = "SELECT (SELECT count(*) FROM (" + q + " EXCEPT ALL " + t + ") m) AS missing_rows, (SELECT count(*) FROM (" +
               t + " EXCEPT ALL " + q + ") e) AS extra_rows";
    return p;
}

}  // namespace sgivm
