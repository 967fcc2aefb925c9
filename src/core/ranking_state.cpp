// A ranking (row_number or rank over PARTITION BY / ORDER BY) over an aggregate's kept state,
// maintained by range: a changed group moves from its old position in its partition to its new
// one, and only the rows between them change rank. Per batch, after the aggregate's fold:
//   1. the changed groups' sort keys before the fold (snapshot) and after it, per partition;
//   2. per partition the range [lo, hi] those keys span (to the partition's end when groups
//      came or went: every rank after them moves), and the number of rows before lo -- from
//      the old rank of the first row at or after lo (a changed group's, or the first unchanged
//      one's, read through an index on (partition, keys) of the state), so that nothing
//      before the range is read;
//   3. the range's rows ranked again from there (base + row_number/rank over the range), into
//      the work table; the keyed diff updates by key the rows whose rank (or values) changed,
//      and removes and inserts only changed groups (and rows with a NULL key part, which no
//      key equality finds: those join the affected set and are replaced).
// rank() counts the rows strictly before; row_number orders ties by the group columns.
#include <stdexcept>

#include "core/cpp_only.hpp"
#include "core/view_plan.hpp"
#include "core/view_plan_sql.hpp"

namespace sgivm {

namespace {

using sql::join;

// Changed groups past which a batch ranks its touched partitions whole.
constexpr int kRangeLimit = 5000;

struct Key {
    std::string expr;  // over the state row (alias t, or bare for the index)
    std::string type;
    bool desc = false, nulls_first = false;
};

// a strictly before b in the order of key i, never NULL
std::string strictly_before(const Key &k, const std::string &a, const std::string &b) {
    const std::string cmp = "coalesce(" + a + (k.desc ? " > " : " < ") + b + ", false)";
    const std::string nulls = k.nulls_first ? "(" + a + " IS NULL AND " + b + " IS NOT NULL)"
                                            : "(" + a + " IS NOT NULL AND " + b + " IS NULL)";
    return "(" + cmp + " OR " + nulls + ")";
}

// Lexicographic: the key values `a` strictly before `b` (never NULL).
std::string before(const std::vector<Key> &keys, const std::vector<std::string> &a, const std::vector<std::string> &b) {
    std::string acc = strictly_before(keys.back(), a.back(), b.back());
    for (size_t i = keys.size() - 1; i-- > 0;)
        acc = "(" + strictly_before(keys[i], a[i], b[i]) + " OR (" + a[i] + " IS NOT DISTINCT FROM " + b[i] + " AND " + acc + "))";
    return acc;
}

std::string order_by(const std::vector<Key> &keys, const std::vector<std::string> &values, bool reverse) {
    std::vector<std::string> o;
    for (size_t i = 0; i < keys.size(); i++) {
        bool desc = keys[i].desc != reverse, nulls_first = keys[i].nulls_first != reverse;
        o.push_back(values[i] + (desc ? " DESC" : " ASC") + (nulls_first ? " NULLS FIRST" : " NULLS LAST"));
    }
    return join(o, ", ");
}

std::vector<std::string> prefixed(const std::string &prefix, const std::string &name, size_t n) {
    std::vector<std::string> v;
    for (size_t i = 0; i < n; i++) v.push_back(prefix + name + std::to_string(i + 1));
    return v;
}

// The ranking's keys over a state row with prefix `t` ("t." or ""): the ORDER BY's, then (for
// row_number, whose ties PostgreSQL numbers in any order) the group columns.
std::vector<Key> ranking_keys(const ViewShape &s, const std::string &t) {
    std::vector<Key> k;
    const std::vector<std::string> av = state::agg_values(s, t), gv = state::group_values(s, t);
    for (const ViewShape::RankKey &r : s.rank_order) k.push_back(Key{state::substitute(r.expr, av, gv), r.type, r.desc, r.nulls_first});
    if (s.rank_fn == "row_number")
        for (size_t i = 0; i < s.group_exprs.size(); i++) k.push_back(Key{gv[i], s.group_types[i], false, false});
    return k;
}

std::vector<std::string> key_exprs(const std::vector<Key> &keys) {
    std::vector<std::string> v;
    for (const Key &k : keys) v.push_back(k.expr);
    return v;
}

// The state in the ranking's order (partition, keys): the range, its edges and a top-N's first
// N are read through it.
std::string order_index(const ViewShape &s) {
    const std::vector<Key> keys = ranking_keys(s, "");
    std::vector<std::string> cols, bare;
    for (size_t i : s.rank_partition) cols.push_back(state::g(i));
    for (const Key &k : keys) bare.push_back("(" + k.expr + ")");
    cols.push_back(order_by(keys, bare, false));
    return "CREATE INDEX IF NOT EXISTS " + quote_identifier("sgivm_state_" + std::to_string(s.view_relid) + "_order") + " ON " +
           state::state_name(s) + " (" + join(cols, ", ") + ")";
}

}  // namespace

void plan_ranking_range(const ViewShape &s, ViewPlan &p) {
    if (s.rank_fn != "row_number" && s.rank_fn != "rank") throw std::runtime_error("no ranking to maintain by range");
    if (s.rank_order.empty() || s.rank_partition.empty()) throw std::runtime_error("a ranking needs ORDER BY and PARTITION BY");
    const size_t ng = s.group_exprs.size(), np = s.rank_partition.size();
    const std::string st = state::state_name(s), aff = affected_table(s.view_relid), rel = std::to_string(s.view_relid);
    const std::string rk = "pg_temp.sgivm_rk_" + rel, rr = "pg_temp.sgivm_rr_" + rel;
    const bool row_number = s.rank_fn == "row_number";

    const std::vector<Key> kt = ranking_keys(s, "t.");
    const size_t nk = kt.size();
    const std::vector<std::string> kt_e = key_exprs(kt);
    std::vector<std::string> part_t, part_types, gcols_t;
    for (size_t i : s.rank_partition) {
        part_t.push_back("t." + state::g(i));
        part_types.push_back(s.group_types.at(i));
    }
    for (size_t i = 0; i < ng; i++) gcols_t.push_back("t." + state::g(i));
    const std::vector<std::string> pc = prefixed("", "sgivm_p", np), kc = prefixed("", "sgivm_k", nk),
                                   lo = prefixed("rr.", "sgivm_lo", nk), hi = prefixed("rr.", "sgivm_hi", nk);

    // Working tables: the changed groups' keys (old and new), and the ranges per partition.
    std::vector<std::string> rk_defs, rr_defs;
    for (size_t i = 0; i < np; i++) {
        rk_defs.push_back(pc[i] + " " + part_types[i]);
        rr_defs.push_back(pc[i] + " " + part_types[i]);
    }
    for (size_t i = 0; i < nk; i++) rk_defs.push_back(kc[i] + " " + kt[i].type);
    rk_defs.push_back("sgivm_old boolean NOT NULL");
    for (const char *side : {"sgivm_lo", "sgivm_hi"})
        for (size_t i = 0; i < nk; i++) rr_defs.push_back(side + std::to_string(i + 1) + " " + kt[i].type);
    rr_defs.push_back("sgivm_open boolean NOT NULL");
    rr_defs.push_back("sgivm_base bigint");
    p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS sgivm_rk_" + rel + " (" + join(rk_defs, ", ") + ") ON COMMIT DELETE ROWS");
    p.setup.push_back("CREATE TEMP TABLE IF NOT EXISTS sgivm_rr_" + rel + " (" + join(rr_defs, ", ") + ") ON COMMIT DELETE ROWS");
    p.state_setup.push_back(order_index(s));

    // 1. The changed groups' keys: before the fold (first statement of the batch), and after it.
    // A batch that changed many groups (a backlog, a bulk load) ranks its touched partitions
    // whole from the state instead: its ranges would cover most of them, at a higher cost per
    // row. The range statements then find no keys and do nothing.
    const std::string small = "(SELECT count(*) FROM " + aff + ") < " + std::to_string(kRangeLimit);
    auto snapshot = [&](bool old) {
        std::vector<std::string> sel = part_t;
        for (const std::string &e : kt_e) sel.push_back(e);
        sel.push_back(old ? "true" : "false");
        std::string q;
        for (bool nulls : {false, true})
            q += std::string(nulls ? " UNION ALL " : "") + "SELECT " + join(sel, ", ") + " FROM " + st + " t WHERE " +
                 sql::scope_match(gcols_t, aff, nulls);
        return "INSERT INTO " + rk + " SELECT * FROM (" + q + ") k WHERE " + small;
    };
    p.state_apply.insert(p.state_apply.begin(), snapshot(true));
    p.state_apply.push_back(snapshot(false));

    // 2. Per partition: the range, whether it runs to the end, and the rows before it.
    const std::string lo_q = "SELECT DISTINCT ON (" + join(pc, ", ") + ") " + join(pc, ", ") + ", " + join(kc, ", ") + " FROM " + rk +
                             " ORDER BY " + join(pc, ", ") + ", " + order_by(kt, kc, false);
    const std::string hi_q = "SELECT DISTINCT ON (" + join(pc, ", ") + ") " + join(pc, ", ") + ", " + join(kc, ", ") + " FROM " + rk +
                             " ORDER BY " + join(pc, ", ") + ", " + order_by(kt, kc, true);
    const std::string net_q = "SELECT " + join(pc, ", ") + ", count(*) FILTER (WHERE sgivm_old) <> count(*) FILTER (WHERE NOT sgivm_old) "
                              "AS sgivm_open FROM " + rk + " GROUP BY " + join(pc, ", ");
    std::vector<std::string> ins = pc;
    for (size_t i = 0; i < nk; i++) ins.push_back("l." + kc[i]);
    for (size_t i = 0; i < nk; i++) ins.push_back("h." + kc[i]);
    ins.push_back("n.sgivm_open");
    std::vector<std::string> cols = pc;
    for (const char *side : {"sgivm_lo", "sgivm_hi"})
        for (size_t i = 0; i < nk; i++) cols.push_back(side + std::to_string(i + 1));
    cols.push_back("sgivm_open");
    // (NULL partitions: the three sets join on IS NOT DISTINCT FROM, a few rows each)
    std::vector<std::string> lh_eq, ln_eq;
    for (const std::string &c : pc) {
        lh_eq.push_back("l." + c + " IS NOT DISTINCT FROM h." + c);
        ln_eq.push_back("l." + c + " IS NOT DISTINCT FROM n." + c);
    }
    std::vector<std::string> sel_ins;
    for (size_t i = 0; i < np; i++) sel_ins.push_back("l." + pc[i]);
    for (size_t i = np; i < ins.size(); i++) sel_ins.push_back(ins[i]);
    p.state_apply.push_back("INSERT INTO " + rr + " (" + join(cols, ", ") + ") SELECT " + join(sel_ins, ", ") + " FROM (" + lo_q +
                            ") l JOIN (" + hi_q + ") h ON " + join(lh_eq, " AND ") + " JOIN (" + net_q + ") n ON " +
                            join(ln_eq, " AND "));

    // The view's rank of a state row's group (old: the view is not written yet), by its key.
    std::vector<std::string> vgroup;
    for (size_t i = 0; i < ng; i++) vgroup.push_back("v." + quote_identifier(s.group_columns[i]));
    const std::string rank_col = "v." + quote_identifier(s.columns.at(s.rank_column));
    auto view_rank = [&](const std::string &w) {
        std::vector<std::string> any_null, same, eq;
        for (size_t i = 0; i < ng; i++) {
            const std::string wg = w + "." + state::g(i);
            any_null.push_back(wg + " IS NULL");
            eq.push_back(vgroup[i] + " = " + wg);
            same.push_back(vgroup[i] + " IS NOT DISTINCT FROM " + wg);
        }
        return "CASE WHEN " + join(any_null, " OR ") + " THEN (SELECT " + rank_col + " FROM " + s.view_table + " v WHERE " +
               join(same, " AND ") + " LIMIT 1) ELSE (SELECT " + rank_col + " FROM " + s.view_table + " v WHERE " +
               join(eq, " AND ") + ") END";
    };
    // The state's rows of rr's partition that meet `cond`: by the partition's equality (an index
    // condition), and NULL-safely in a second branch that only runs for a partition with a NULL.
    std::vector<std::string> p_eq, p_same, rr_null;
    for (size_t i = 0; i < np; i++) {
        p_eq.push_back(part_t[i] + " = rr." + pc[i]);
        p_same.push_back(part_t[i] + " IS NOT DISTINCT FROM rr." + pc[i]);
        rr_null.push_back("rr." + pc[i] + " IS NULL");
    }
    auto state_rows = [&](const std::string &cond) {
        return "(SELECT * FROM " + st + " t WHERE " + join(p_eq, " AND ") + " AND " + cond + " UNION ALL SELECT * FROM " + st +
               " t WHERE (" + join(rr_null, " OR ") + ") AND " + join(p_same, " AND ") + " AND " + cond + ")";
    };
    // Unchanged: not in the affected set, looked up through an index on it (a NOT IN would be a
    // subplan, rescanned per row when the set is too large to hash: a backlog)
    std::vector<std::string> aff_eq;
    const std::vector<std::string> ak = sql::aff_columns(ng);
    for (size_t i = 0; i < ng; i++) aff_eq.push_back("a." + ak[i] + " = " + gcols_t[i]);
    p.setup.push_back("CREATE INDEX IF NOT EXISTS sgivm_affk_" + rel + " ON " + aff + " (" + join(ak, ", ") + ")");
    const std::string unchanged = "NOT EXISTS (SELECT 1 FROM " + aff + " a WHERE " + join(aff_eq, " AND ") + ") AND NOT (" +
                                  sql::scope_match(gcols_t, aff, true) + ")";
    const std::string at_or_after_lo = "NOT " + before(kt, kt_e, lo);
    // "at or after lo" and "at or before hi" on the first key alone, as index conditions (a
    // NULL first key, or a NULL bound, is looked at in a second branch)
    const std::string ge_lo1 = kt[0].expr + (kt[0].desc ? " <= " : " >= ") + lo[0];
    const std::string le_hi1 = kt[0].expr + (kt[0].desc ? " >= " : " <= ") + hi[0];
    const std::string first_null = "(" + kt[0].expr + " IS NULL OR " + lo[0] + " IS NULL OR " + hi[0] + " IS NULL)";
    // The old rank of the first row at or after lo: the first unchanged one's (the state's
    // order: its key is the same before and after), or a changed group's (all at or after lo).
    std::vector<std::string> w_sel = gcols_t;
    for (size_t i = 0; i < nk; i++) w_sel.push_back(kt_e[i] + " AS " + kc[i]);
    // (a partition without NULLs reads the state in the index's order, from lo, and stops at
    // the first row: the UNION of state_rows would read and sort the rest of the partition)
    auto edge_row = [&](const std::string &cond, bool reverse) {
        const std::string tail = " AND " + cond + " AND " + unchanged + " ORDER BY " + order_by(kt, kt_e, reverse) + " LIMIT 1";
        return "(SELECT * FROM (SELECT " + join(w_sel, ", ") + " FROM " + st + " t WHERE NOT (" + join(rr_null, " OR ") + ") AND " +
               join(p_eq, " AND ") + tail + ") w1 UNION ALL SELECT * FROM (SELECT " + join(w_sel, ", ") + " FROM " + st +
               " t WHERE (" + join(rr_null, " OR ") + ") AND " + join(p_same, " AND ") + tail + ") w2)";
    };
    const std::string w_rank = "coalesce((SELECT " + view_rank("w") + " FROM " + edge_row(ge_lo1 + " AND " + at_or_after_lo, false) +
                               " w), (SELECT " + view_rank("w") + " FROM " +
                               edge_row("(" + kt[0].expr + " IS NULL OR " + lo[0] + " IS NULL) AND " + at_or_after_lo, false) + " w))";
    // The changed groups' smallest old rank per partition, for all partitions at once (one
    // pass over the affected set: per partition it would read the whole set each time).
    std::vector<std::string> vpart_cols, c_same;
    for (size_t i = 0; i < np; i++) {
        vpart_cols.push_back("v." + quote_identifier(s.group_columns.at(s.rank_partition[i])));
        c_same.push_back("rr." + pc[i] + " IS NOT DISTINCT FROM c.sgivm_c" + std::to_string(i + 1));
    }
    std::vector<std::string> c_sel;
    for (size_t i = 0; i < np; i++) c_sel.push_back(vpart_cols[i] + " AS sgivm_c" + std::to_string(i + 1));
    std::string changed_min;
    for (bool nulls : {false, true})
        changed_min += std::string(nulls ? " UNION ALL " : "") + "SELECT " + join(c_sel, ", ") + ", " + rank_col + " AS sgivm_r FROM " +
                       s.view_table + " v WHERE " + sql::scope_match(vgroup, aff, nulls);
    p.state_apply.push_back("UPDATE " + rr + " rr SET sgivm_base = c.sgivm_r FROM (SELECT " +
                            join(prefixed("", "sgivm_c", np), ", ") + ", min(sgivm_r) AS sgivm_r FROM (" + changed_min +
                            ") x GROUP BY " + join(prefixed("", "sgivm_c", np), ", ") + ") c WHERE " + join(c_same, " AND "));
    const std::string changed_old = "rr.sgivm_base";
    // No row at or after lo before the batch: all the partition's rows come before it, as many
    // as the last one's rank says (rank(): and the rows tied with it).
    std::string tail = "(SELECT " + view_rank("w");
    if (!row_number) {
        std::vector<std::string> tie;
        for (size_t i = 0; i < nk; i++) tie.push_back(kt_e[i] + " IS NOT DISTINCT FROM w." + kc[i]);
        tail += " - 1 + (SELECT count(*) FROM " + state_rows(unchanged) + " t WHERE " + join(tie, " AND ") + ")";
    }
    tail += " FROM " + edge_row("true", true) + " w)";
    p.state_apply.push_back("UPDATE " + rr + " rr SET sgivm_base = coalesce(LEAST(" + w_rank + ", " + changed_old + ") - 1, " + tail +
                            ", 0)");

    // 3. The range's rows ranked again, into the work table; their groups join the affected set.
    const std::vector<std::string> av = state::agg_values(s, "t."), gv = state::group_values(s, "t.");
    std::vector<std::string> outs;
    for (size_t c = 0; c < s.outputs.size(); c++) {
        if (c == s.rank_column)
            outs.push_back("rr.sgivm_base + " + s.rank_fn + "() OVER (PARTITION BY " + join(prefixed("rr.", "sgivm_p", np), ", ") +
                           " ORDER BY " + order_by(kt, kt_e, false) + ")");
        else
            outs.push_back(state::substitute(s.outputs[c], av, gv));
    }
    const std::string in_range = at_or_after_lo + " AND (rr.sgivm_open OR NOT " + before(kt, hi, kt_e) + ")";
    // (the first branch reads no range whose hi has a NULL first key: the second reads it whole,
    // and a row in both would be ranked twice)
    const std::string from = rr + " rr JOIN LATERAL (SELECT * FROM " +
                             state_rows(ge_lo1 + " AND " + hi[0] + " IS NOT NULL AND (rr.sgivm_open OR " + le_hi1 + ")") +
                             " t UNION ALL SELECT * FROM " + state_rows(first_null) + " t) t ON " + in_range;
    // (whole partitions: the partitions of the changed groups, by their columns in the affected set)
    std::vector<std::string> whole_outs;
    for (size_t c = 0; c < s.outputs.size(); c++)
        whole_outs.push_back(c == s.rank_column ? s.rank_fn + "() OVER (PARTITION BY " + join(part_t, ", ") + " ORDER BY " +
                                                      order_by(kt, kt_e, false) + ")"
                                                : outs[c]);
    std::vector<std::string> aff_part;
    const std::vector<std::string> akk = sql::aff_columns(ng);
    for (size_t i : s.rank_partition) aff_part.push_back(akk[i]);
    // (a join with the partitions, by equality, and NULL-safely for a partition with a NULL;
    // each partition is ranked within one of the two)
    std::vector<std::string> part_null, part_eq_x, part_same_x;
    for (size_t i = 0; i < np; i++) {
        part_null.push_back("x." + aff_part[i] + " IS NULL");
        part_eq_x.push_back("x." + aff_part[i] + " = " + part_t[i]);
        part_same_x.push_back("x." + aff_part[i] + " IS NOT DISTINCT FROM " + part_t[i]);
    }
    const std::string parts = "(SELECT DISTINCT " + join(aff_part, ", ") + " FROM " + aff + " WHERE NOT " + small + ")";
    const std::string whole = " UNION ALL SELECT " + join(whole_outs, ", ") + " FROM " + parts + " x JOIN " + st + " t ON " +
                              join(part_eq_x, " AND ") + " UNION ALL SELECT " + join(whole_outs, ", ") + " FROM " + parts + " x JOIN " +
                              st + " t ON (" + join(part_null, " OR ") + ") AND " + join(part_same_x, " AND ");
    std::vector<std::string> ret = sql::quoted(std::vector<std::string>(s.group_columns.begin(), s.group_columns.end()));
    p.compute = "WITH sgivm_ranked AS (INSERT INTO " + new_rows_table(s.view_relid) + " (" + join(sql::quoted(s.columns), ", ") +
                ") SELECT " + join(outs, ", ") + " FROM " + from + whole + " RETURNING " + join(ret, ", ") + ") INSERT INTO " + aff +
                " SELECT " + join(ret, ", ") + " FROM sgivm_ranked WHERE " + [&] {
                    // (rows of a NULL key part are replaced, not updated: they join the affected set)
                    std::vector<std::string> n;
                    for (const std::string &c : ret) n.push_back(c + " IS NULL");
                    return join(n, " OR ");
                }();
}

}  // namespace sgivm

namespace sgivm {

// A top-N: the ranking filtered to its first N ranks. Its scope stays the partition: per
// touched partition, the first N groups (rank(): and the ties of the N-th) read from the state in
// the ranking's order, through its index, ranked, into the work table; the keyed diff writes
// only the rows that enter, leave or move within the first N. What a change costs depends on N,
// not on how many groups a partition holds.
void plan_top_n(const ViewShape &s, ViewPlan &p) {
    if (s.top_n <= 0 || (s.rank_fn != "row_number" && s.rank_fn != "rank") || s.rank_partition.empty())
        throw std::runtime_error("no top-N ranking to plan");
    if (s.scope != s.rank_partition) throw std::runtime_error("a top-N is maintained per partition");
    const size_t np = s.rank_partition.size();
    const std::string st = state::state_name(s), aff = affected_table(s.view_relid), rel = std::to_string(s.view_relid);
    const bool row_number = s.rank_fn == "row_number";
    const std::string n = std::to_string(s.top_n);
    const std::vector<std::string> av = state::agg_values(s, "t."), gv = state::group_values(s, "t.");
    const std::vector<Key> kt = ranking_keys(s, "t.");
    const std::vector<std::string> kt_e = key_exprs(kt);
    p.state_setup.push_back(order_index(s));

    const std::vector<std::string> ak = sql::aff_columns(np);
    std::vector<std::string> eq, same, any_null;
    for (size_t i = 0; i < np; i++) {
        const std::string col = "t." + state::g(s.rank_partition[i]);
        eq.push_back(col + " = pp." + ak[i]);
        same.push_back(col + " IS NOT DISTINCT FROM pp." + ak[i]);
        any_null.push_back("pp." + ak[i] + " IS NULL");
    }
    const std::string first_n = " ORDER BY " + order_by(kt, kt_e, false) + (row_number ? " LIMIT " + n : " FETCH FIRST " + n + " ROWS WITH TIES");
    const std::string firsts = "(SELECT * FROM " + st + " t WHERE " + join(eq, " AND ") + first_n + ") UNION ALL (SELECT * FROM " + st +
                               " t WHERE (" + join(any_null, " OR ") + ") AND " + join(same, " AND ") + first_n + ")";
    std::vector<std::string> outs;
    for (size_t c = 0; c < s.outputs.size(); c++)
        outs.push_back(c == s.rank_column ? "t.sgivm_r" : state::substitute(s.outputs[c], av, gv));
    p.compute = "INSERT INTO " + new_rows_table(s.view_relid) + " (" + join(sql::quoted(s.columns), ", ") + ") SELECT " +
                join(outs, ", ") + " FROM (SELECT DISTINCT " + join(ak, ", ") + " FROM " + aff + ") pp CROSS JOIN LATERAL (SELECT t.*, " +
                s.rank_fn + "() OVER (ORDER BY " + order_by(kt, kt_e, false) + ") AS sgivm_r FROM (" + firsts + ") t) t WHERE t.sgivm_r <= " + n;
}

}  // namespace sgivm
