// The general join operator: a projection over any joins of keyed tables (inner on any
// equality, many-to-many, self-joins, chains, CROSS and comma joins, LEFT / RIGHT / FULL outer
// joins), with EXISTS / IN / NOT EXISTS / NOT IN subqueries in WHERE.
//
// A view row is made of one row of each FROM item (an occurrence; NULL for the missing side of
// an outer join), and the view keeps their keys. A batch touches, per occurrence, the rows its
// input's delta holds (old and new versions alike), and further rows through edges: the
// preserved rows an outer join extends with NULLs when their last match leaves or their first
// arrives, the outer rows a subquery correlates with. The view's rows of the touched rows are
// exactly the rows the batch can change (Δ(A⋈B) lies within ΔA⋈B′ ∪ A′⋈ΔB), and they are
// recomputed from the tables, each occurrence restricted to its touched rows in turn, through
// the indexes on the join columns; the shared keyed diff (view_plan.cpp) writes what changed.
#include <string>
#include <vector>

#include "core/cpp_only.hpp"
#include "core/view_plan.hpp"
#include "core/view_plan_sql.hpp"

namespace sgivm {

namespace {

using sql::index_name;
using sql::join;
using sql::quoted;

// The affected table's columns for occurrence i: its key columns sgivm_k<i>_<n>. A row of the
// table is one touched row of one occurrence (sgivm_o), the other occurrences' columns NULL.
std::vector<std::string> occ_columns(size_t i, size_t n) {
    std::vector<std::string> c;
    for (size_t j = 0; j < n; j++) c.push_back("sgivm_k" + std::to_string(i) + "_" + std::to_string(j + 1));
    return c;
}

// `exprs` among the keys (columns `cols`) of `rows`, those of occurrence `occ` (sgivm_o) when
// occ >= 0; the NULL-safe half (nulls) runs only when those keys hold a NULL part (a one-time
// filter), so the common case stays an indexable IN.
std::string keys_among(const std::string &rows, int occ, const std::vector<std::string> &cols,
                       const std::vector<std::string> &exprs, bool nulls) {
    auto where = [&](const std::string &t, const std::string &also) {
        std::vector<std::string> c;
        if (occ >= 0) c.push_back(t + "sgivm_o = " + std::to_string(occ));
        if (!also.empty()) c.push_back(also);
        return c.empty() ? std::string() : " WHERE " + join(c, " AND ");
    };
    if (!nulls) return "(" + join(exprs, ", ") + ") IN (SELECT " + join(cols, ", ") + " FROM " + rows + where("", "") + ")";
    std::vector<std::string> any_null_rows, any_null_expr, match;
    for (size_t j = 0; j < exprs.size(); j++) {
        any_null_rows.push_back(cols[j] + " IS NULL");
        any_null_expr.push_back("(" + exprs[j] + ") IS NULL");
        match.push_back("sgivm_x." + cols[j] + " IS NOT DISTINCT FROM (" + exprs[j] + ")");
    }
    // (the rows' alias is apart from the query's: a user's alias x is common)
    return "(SELECT EXISTS (SELECT 1 FROM " + rows + where("", "(" + join(any_null_rows, " OR ") + ")") + ")) AND (" +
           join(any_null_expr, " OR ") + ") AND EXISTS (SELECT 1 FROM " + rows + " sgivm_x" + where("sgivm_x.", join(match, " AND ")) + ")";
}

// `exprs` (occurrence i's key, in the view or in the query) among the touched rows of i.
std::string occ_match(const std::string &aff, size_t i, const std::vector<std::string> &exprs, bool nulls) {
    return keys_among(aff, static_cast<int>(i), occ_columns(i, exprs.size()), exprs, nulls);
}

// `text` with the placeholder replaced, outside quoted constants and identifiers (the deparser
// writes '...' and "...", the quote inside doubled), and not where it is the start of a longer
// parameter number.
std::string replace_placeholder(const std::string &text, const std::string &placeholder, const std::string &with) {
    std::string out;
    char quote = 0;
    for (size_t i = 0; i < text.size(); i++) {
        char c = text[i];
        if (quote) {
            out += c;
            if (c == quote) {
                if (i + 1 < text.size() && text[i + 1] == quote)
                    out += text[++i];
                else
                    quote = 0;
            }
            continue;
        }
        if (text.compare(i, placeholder.size(), placeholder) == 0 &&
            (i + placeholder.size() >= text.size() || !isdigit(static_cast<unsigned char>(text[i + placeholder.size()])))) {
            out += with;
            i += placeholder.size() - 1;
            continue;
        }
        if (c == '\'' || c == '"') quote = c;
        out += c;
    }
    return out;
}

// The keys of occurrence i's rows, as k1..kn, from the input's rows aliased t.
std::string keys_of(const ViewShape::Occurrence &o, const std::string &t) {
    std::vector<std::string> k;
    for (size_t j = 0; j < o.key.size(); j++) k.push_back(t + "." + quote_identifier(o.key[j]) + " AS k" + std::to_string(j + 1));
    return join(k, ", ");
}

std::vector<std::string> generic_keys(size_t n) {
    std::vector<std::string> k;
    for (size_t j = 0; j < n; j++) k.push_back("k" + std::to_string(j + 1));
    return k;
}

std::string s_name(size_t round, size_t occ) { return "sgivm_s" + std::to_string(round) + "_" + std::to_string(occ); }

// The touched rows of each occurrence, into the affected table: the keys in its input's delta,
// then rounds along the edges (a round per occurrence when touched rows of one occurrence touch
// those of another: a change inside an outer join's nullable side reaches its preserved rows).
std::string fill_statement(const ViewShape &s, const std::string &aff) {
    const size_t n = s.occurrences.size();
    bool chained = false;
    for (const ViewShape::Edge &e : s.edges) chained = chained || e.from_occ >= 0;
    const size_t rounds = s.edges.empty() ? 0 : chained ? n : 1;
    std::vector<std::string> ctes;
    for (size_t i = 0; i < n; i++) {
        const ViewShape::Occurrence &o = s.occurrences[i];
        ctes.push_back(s_name(0, i) + " AS (SELECT " + keys_of(o, "d") + " FROM " + delta_table(s.inputs.at(o.input).relid) + " d)");
    }
    for (size_t r = 1; r <= rounds; r++) {
        std::vector<std::vector<std::string>> into(n);
        for (size_t e = 0; e < s.edges.size(); e++) {
            const ViewShape::Edge &edge = s.edges[e];
            // the values the edge carries: the change's (first round), or those of the rows of
            // from_occ the previous round touched (later rounds)
            std::string vals;
            const std::string col = edge.kind == ViewShape::Edge::Kind::All ? "1" : "u." + quote_identifier(edge.from_col);
            if (r == 1) {
                vals = "SELECT " + col + " AS v FROM " + delta_table(s.inputs.at(edge.from_input).relid) + " u";
            } else if (edge.from_occ >= 0) {
                const ViewShape::Occurrence &from = s.occurrences.at(static_cast<size_t>(edge.from_occ));
                // (a key that may hold a NULL part, a view's, is matched NULL-safely too)
                const std::vector<std::string> uk = quoted(from.key, "u."), pk = generic_keys(from.key.size());
                const std::string prev = s_name(r - 1, static_cast<size_t>(edge.from_occ));
                const std::string rows = "SELECT " + col + " AS v FROM " + s.inputs.at(from.input).qualified + " u WHERE ";
                vals = rows + keys_among(prev, -1, pk, uk, false);
                if (from.nullable) vals += " UNION ALL " + rows + keys_among(prev, -1, pk, uk, true);
            } else {
                continue;
            }
            const std::string v = "sgivm_v" + std::to_string(r) + "_" + std::to_string(e);
            ctes.push_back(v + " AS (" + vals + ")");
            const ViewShape::Occurrence &to = s.occurrences.at(edge.to_occ);
            const std::string rows = "SELECT " + keys_of(to, "t") + " FROM " + s.inputs.at(to.input).qualified + " t WHERE ";
            const std::string tc = "t." + quote_identifier(edge.to_col);
            switch (edge.kind) {
                case ViewShape::Edge::Kind::All: into[edge.to_occ].push_back(rows + "EXISTS (SELECT 1 FROM " + v + ")"); break;
                case ViewShape::Edge::Kind::In:
                    // x [NOT] IN (...): a NULL among the values makes every row's answer NULL or
                    // true; a NULL x's answer depends on whether the values are empty
                    into[edge.to_occ].push_back(rows + "EXISTS (SELECT 1 FROM " + v + " WHERE v IS NULL)");
                    into[edge.to_occ].push_back(rows + tc + " IS NULL AND EXISTS (SELECT 1 FROM " + v + ")");
                    into[edge.to_occ].push_back(rows + tc + " IN (SELECT v FROM " + v + ")");
                    break;
                case ViewShape::Edge::Kind::Eq: into[edge.to_occ].push_back(rows + tc + " IN (SELECT v FROM " + v + ")"); break;
            }
        }
        for (size_t i = 0; i < n; i++) {
            std::string q = "SELECT * FROM " + s_name(r - 1, i);
            for (const std::string &part : into[i]) q += " UNION " + part;
            ctes.push_back(s_name(r, i) + " AS (" + q + ")");
        }
    }
    // each occurrence's rows into its columns of the affected table (a statement per
    // occurrence, the first ones as data-modifying CTEs)
    std::string last;
    for (size_t i = 0; i < n; i++) {
        std::vector<std::string> cols{"sgivm_o"}, values{std::to_string(i)};
        std::vector<std::string> a = occ_columns(i, s.occurrences[i].key.size()), k = generic_keys(a.size());
        cols.insert(cols.end(), a.begin(), a.end());
        values.insert(values.end(), k.begin(), k.end());
        std::string from = rounds ? s_name(rounds, i) : "(SELECT DISTINCT * FROM " + s_name(0, i) + ") s";
        std::string insert = "INSERT INTO " + aff + " (" + join(cols, ", ") + ") SELECT " + join(values, ", ") + " FROM " + from;
        if (i + 1 < n)
            ctes.push_back("sgivm_w" + std::to_string(i) + " AS (" + insert + " RETURNING 1)");
        else
            last = insert;
    }
    return "WITH " + join(ctes, ", ") + " " + last;
}

}  // namespace

std::vector<std::string> join_view_scope(const ViewShape &s, const std::string &t) {
    const std::string aff = affected_table(s.view_relid);
    std::vector<std::string> out;
    for (size_t i = 0; i < s.occurrences.size(); i++) {
        const ViewShape::Occurrence &o = s.occurrences[i];
        std::vector<std::string> cols = quoted(o.view_key, t);
        out.push_back(occ_match(aff, i, cols, false));
        if (o.nullable) out.push_back(occ_match(aff, i, cols, true));
    }
    return out;
}

std::string plan_join(const ViewShape &s, ViewPlan &p) {
    const std::string aff = affected_table(s.view_relid);
    const size_t n = s.occurrences.size();
    if (n == 0) throw std::runtime_error("a join view needs at least one table in FROM");
    // the affected table: sgivm_o, then each occurrence's key columns, of their types
    std::vector<std::string> typed{"0::smallint AS sgivm_o"}, from;
    for (size_t i = 0; i < n; i++) {
        const ViewShape::Occurrence &o = s.occurrences[i];
        if (o.key.empty() || o.key.size() != o.view_key.size()) throw std::runtime_error("a join occurrence needs its key in the view");
        std::vector<std::string> a = occ_columns(i, o.key.size());
        for (size_t j = 0; j < o.key.size(); j++)
            typed.push_back("o" + std::to_string(i) + "." + quote_identifier(o.key[j]) + " AS " + a[j]);
        from.push_back(s.inputs.at(o.input).qualified + " o" + std::to_string(i));
    }
    p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS " + aff.substr(8) + " ON COMMIT DELETE ROWS AS SELECT " +
                      join(typed, ", ") + " FROM " + join(from, ", ") + " WITH NO DATA");
    p.fill_affected = fill_statement(s, aff);

    // indexes: the view's key, each occurrence's key in the view (what a batch deletes by), and
    // the inputs' join columns (what a touched row finds its partners by)
    std::vector<std::string> key = quoted(s.key);
    p.indexes.push_back("CREATE UNIQUE INDEX IF NOT EXISTS " + index_name("k", s.view_relid, 0) + " ON " + s.view_table +
                        " (" + join(key, ", ") + ")");
    for (size_t i = 0; i < n; i++) {
        std::vector<std::string> vk = quoted(s.occurrences[i].view_key);
        bool prefix = vk.size() <= key.size() && std::equal(vk.begin(), vk.end(), key.begin());
        if (!prefix)
            p.indexes.push_back("CREATE INDEX IF NOT EXISTS " + index_name("o", s.view_relid, i) + " ON " + s.view_table + " (" +
                                join(vk, ", ") + ")");
    }
    for (size_t l = 0; l < s.lookups.size(); l++) {
        const auto &[input, column] = s.lookups[l];
        bool keyed = false;  // the input's own key index serves
        for (const ViewShape::Occurrence &o : s.occurrences) keyed = keyed || (o.input == input && o.key.at(0) == column);
        if (!keyed)
            p.indexes.push_back("CREATE INDEX IF NOT EXISTS " + index_name("j", s.view_relid, l) + " ON " +
                                s.inputs.at(input).qualified + " (" + quote_identifier(column) + ")");
    }

    // the view's rows of the touched rows: the query once per occurrence, restricted to that
    // occurrence's touched rows; a row made of touched rows of two occurrences comes twice
    std::vector<std::string> branches;
    for (size_t i = 0; i < n; i++) {
        const ViewShape::Occurrence &o = s.occurrences[i];
        std::vector<std::string> exprs;
        for (const std::string &k : o.key) exprs.push_back(quote_identifier(o.alias) + "." + quote_identifier(k));
        const std::string &tmpl = s.branch_templates.empty() ? s.compute_template : s.branch_templates.at(o.branch);
        branches.push_back(replace_placeholder(tmpl, kScopeParam, occ_match(aff, i, exprs, false)));
        if (o.nullable) branches.push_back(replace_placeholder(tmpl, kScopeParam, occ_match(aff, i, exprs, true)));
    }
    if (branches.size() == 1) return branches[0];
    std::vector<std::string> wrapped;
    for (const std::string &b : branches) wrapped.push_back("(" + b + ")");
    return "SELECT DISTINCT ON (" + join(key, ", ") + ") * FROM (" + join(wrapped, " UNION ALL ") + ") sgivm_u";
}

}  // namespace sgivm
