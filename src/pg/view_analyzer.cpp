// add_view's analyser: parses and analyses a view's SELECT with PostgreSQL's parser, refuses
// what the engine cannot maintain (naming the construct), and describes the rest as a
// ViewShape, from which the core builds the maintenance statements.
//
// The tree walk is plain PostgreSQL code (palloc, ereport); C++ objects are built only from
// its results, inside run_cpp.
extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/heap.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/typcache.h"
#include "utils/ruleutils.h"

PG_FUNCTION_INFO_V1(sgivm_plan_view);
PG_FUNCTION_INFO_V1(sgivm_split_view);
}

#include "core/view_plan.hpp"
#include "pg/seam.hpp"
#include "pg/view_analyzer.hpp"

namespace sgivm::pg {
int guc_view_strategy = kStrategyAuto;
}

namespace {

// What the walk found, in PostgreSQL memory.
struct Analysis {
    bool aggregate;
    char *deparsed;
    List *input_relids;     // Oid list, fact/input first
    List *input_names;      // char * qualified names
    List *columns, *types;  // char *
    List *audit;            // int 0/1
    List *key;              // char * output columns
    List *fact_key;         // char * fact columns
    List *join_inputs;      // int index into inputs
    List *join_fact_cols, *join_dim_cols;
    List *group_exprs, *group_columns;
    List *scope;            // int indexes into group_exprs
    List *input_columns;    // per input: a List of char * column names the query reads
    // differential maintenance (plan_differential): empty aggs and a fallback where it has none
    List *aggs;             // DiffAgg *
    List *group_types;      // char *
    List *outputs;          // char *: per output column, over $N parameters
    char *having;
    char *filter;  // WHERE, over the input
    const char *fallback;
    char *state_schema;
    // a ranking maintained by range (plan_ranking): its function, column, ORDER BY keys
    char *rank_fn;
    int rank_column;
    int64 top_n;           // > 0: only the first top_n ranks (SELECT * FROM (ranking) r WHERE r <= N)
    List *rank_keys;       // RankKey *
    List *rank_partition;  // int indexes into group_exprs
    // a general join (analyse_join)
    bool general_join;
    List *occs, *edges, *lookups;  // JoinOcc *, JoinEdge *, JoinLookup *
    char *compute_template;
    List *branch_templates;  // char *: UNION ALL, per branch
};

struct RankKey {
    char *expr;  // over $N parameters
    char *type;
    bool desc, nulls_first;
};

// An aggregate with a delta rule (sgivm::ViewShape::Aggregate).
struct DiffAgg {
    int fn;  // sgivm::ViewShape::Aggregate::Fn
    char *arg;
    char *state_type;
    bool nan;  // a numeric argument: NaN is counted apart
};

[[noreturn]] void refuse(const char *construct, const char *hint) {
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("stategrid_ivm cannot maintain a view with %s", construct),
                    hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

struct ErrorQuery {
    const char *query;
};

// The columns of range table entry `rtindex` that the query reads (all of them for a whole-row
// reference), so that the worker can tell when a source drops one a view needs.
List *columns_used(Query *q, int rtindex, Oid relid) {
    Bitmapset *atts = nullptr;
    // the parts of the query that hold expressions (GROUP BY and window keys are target entries)
    pull_varattnos(reinterpret_cast<Node *>(q->targetList), rtindex, &atts);
    pull_varattnos(reinterpret_cast<Node *>(q->jointree), rtindex, &atts);
    pull_varattnos(q->havingQual, rtindex, &atts);
    List *cols = NIL;
    bool whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, atts);
    Relation r = table_open(relid, AccessShareLock);
    TupleDesc d = RelationGetDescr(r);
    for (int i = 0; i < d->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(d, i);
        if (att->attisdropped) continue;
        if (whole_row || bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, atts))
            cols = lappend(cols, pstrdup(NameStr(att->attname)));
    }
    table_close(r, AccessShareLock);
    return cols;
}

// Reports parser positions against the view's query text, not the calling statement.
void view_query_error_callback(void *arg) {
    const char *query = static_cast<ErrorQuery *>(arg)->query;
    int pos = geterrposition();
    if (pos > 0) {
        errposition(0);
        internalerrposition(pos);
        internalerrquery(query);
    }
    errcontext("view query of stategrid_ivm.add_view");
}

Var *plain_var(Node *n) {
    while (n && IsA(n, RelabelType)) n = reinterpret_cast<Node *>(reinterpret_cast<RelabelType *>(n)->arg);
    return n && IsA(n, Var) ? reinterpret_cast<Var *>(n) : nullptr;
}

bool check_functions_walker(Node *node, void *) {
    if (!node) return false;
    if (IsA(node, Aggref)) {
        Aggref *a = reinterpret_cast<Aggref *>(node);
        char *name = get_func_name(a->aggfnoid);
        if (a->aggkind != AGGKIND_NORMAL || !name ||
            !(strcmp(name, "sum") == 0 || strcmp(name, "count") == 0 || strcmp(name, "avg") == 0 ||
              strcmp(name, "min") == 0 || strcmp(name, "max") == 0))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a view with aggregate %s()", name ? name : "?"),
                            errhint("Supported aggregates: sum, count, avg, min, max (and expressions over them).")));
    }
    if (IsA(node, WindowFunc)) {
        WindowFunc *w = reinterpret_cast<WindowFunc *>(node);
        char *name = get_func_name(w->winfnoid);
        if (!name || !(strcmp(name, "row_number") == 0 || strcmp(name, "rank") == 0 || strcmp(name, "dense_rank") == 0))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a view with window function %s()", name ? name : "?"),
                            errhint("Supported window functions: row_number, rank, dense_rank over a GROUP BY.")));
    }
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(check_functions_walker), nullptr);
}

// The clock: now() and friends, the SQL-standard CURRENT_TIMESTAMP family, and the casts and
// time zone conversions of their values -- PostgreSQL's own (a user's now() is not the clock).
bool is_clock_function(Oid fn) {
    if (get_func_namespace(fn) != PG_CATALOG_NAMESPACE) return false;
    char *name = get_func_name(fn);
    static const char *clock[] = {"now", "statement_timestamp", "transaction_timestamp", "clock_timestamp",
                                  "timestamptz", "timestamp", "date", "timezone", nullptr};
    for (int i = 0; clock[i] && name; i++)
        if (strcmp(name, clock[i]) == 0) return true;
    return false;
}

bool non_clock_mutable_function(Oid fn, void *) {
    return func_volatile(fn) != PROVOLATILE_IMMUTABLE && !is_clock_function(fn);
}

// True if the expression calls a non-immutable function other than the clock: those make audit
// columns, nothing else does. Every kind of call counts (functions, operators, casts, NULLIF,
// IN lists...); an I/O cast of a clock value (now()::text) may use stable I/O functions.
bool non_clock_mutable_walker(Node *node, void *) {
    if (!node) return false;
    if (IsA(node, NextValueExpr)) return true;
    if (IsA(node, SQLValueFunction)) {
        switch (reinterpret_cast<SQLValueFunction *>(node)->op) {
            case SVFOP_CURRENT_DATE:
            case SVFOP_CURRENT_TIME:
            case SVFOP_CURRENT_TIME_N:
            case SVFOP_CURRENT_TIMESTAMP:
            case SVFOP_CURRENT_TIMESTAMP_N:
            case SVFOP_LOCALTIME:
            case SVFOP_LOCALTIME_N:
            case SVFOP_LOCALTIMESTAMP:
            case SVFOP_LOCALTIMESTAMP_N: break;
            default: return true;  // CURRENT_USER and the like: not the clock
        }
    } else if (IsA(node, CoerceViaIO)) {
        CoerceViaIO *io = reinterpret_cast<CoerceViaIO *>(node);
        Oid out, in, ioparam;
        bool varlena;
        getTypeOutputInfo(exprType(reinterpret_cast<Node *>(io->arg)), &out, &varlena);
        getTypeInputInfo(io->resulttype, &in, &ioparam);
        if (func_volatile(out) == PROVOLATILE_VOLATILE || func_volatile(in) == PROVOLATILE_VOLATILE) return true;
    } else if (check_functions_in_node(node, non_clock_mutable_function, nullptr)) {
        return true;
    }
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(non_clock_mutable_walker), nullptr);
}

// The subquery in an expression, as the user wrote it (EXISTS, NOT IN, ...); false if none.
bool sublink_walker(Node *node, const char **what) {
    if (!node) return false;
    if (IsA(node, BoolExpr) && reinterpret_cast<BoolExpr *>(node)->boolop == NOT_EXPR) {
        Node *arg = static_cast<Node *>(linitial(reinterpret_cast<BoolExpr *>(node)->args));
        if (IsA(arg, SubLink) && reinterpret_cast<SubLink *>(arg)->subLinkType == EXISTS_SUBLINK) {
            *what = "NOT EXISTS (subquery)";
            return true;
        }
        if (IsA(arg, SubLink) && reinterpret_cast<SubLink *>(arg)->subLinkType == ANY_SUBLINK) {
            *what = "NOT IN (subquery)";
            return true;
        }
    }
    if (IsA(node, SubLink)) {
        SubLink *s = reinterpret_cast<SubLink *>(node);
        switch (s->subLinkType) {
            case EXISTS_SUBLINK: *what = "EXISTS (subquery)"; break;
            case ANY_SUBLINK:
                *what = s->operName && strcmp(strVal(llast(s->operName)), "=") == 0 ? "IN (subquery)" : "ANY (subquery)";
                break;
            case ALL_SUBLINK: *what = "ALL (subquery)"; break;
            case ARRAY_SUBLINK: *what = "ARRAY (subquery)"; break;
            default: *what = "a scalar subquery"; break;
        }
        return true;
    }
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(sublink_walker), what);
}

// A system column (xmin, ctid, tableoid...) the query reads; false if none.
bool system_column_walker(Node *node, AttrNumber *attno) {
    if (!node) return false;
    if (IsA(node, Var) && reinterpret_cast<Var *>(node)->varattno < 0) {
        *attno = reinterpret_cast<Var *>(node)->varattno;
        return true;
    }
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(system_column_walker), attno);
}

bool has_vars_or_aggs(Node *n) { return contain_var_clause(n) || contain_agg_clause(n) || contain_window_function(n); }

char *qualified_name(Oid relid) {
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

List *key_columns_of(Oid relid) {
    Relation r = table_open(relid, AccessShareLock);
    Oid idx = RelationGetPrimaryKeyIndex(r);
    if (!OidIsValid(idx)) {
        List *indexes = RelationGetIndexList(r);
        ListCell *lc;
        foreach (lc, indexes) {
            Relation ir = index_open(lfirst_oid(lc), AccessShareLock);
            bool ok = ir->rd_index->indisunique && ir->rd_index->indimmediate && RelationGetIndexExpressions(ir) == NIL &&
                      RelationGetIndexPredicate(ir) == NIL;
            index_close(ir, AccessShareLock);
            if (ok) {
                idx = lfirst_oid(lc);
                break;
            }
        }
    }
    List *cols = NIL;
    if (OidIsValid(idx)) {
        Relation ir = index_open(idx, AccessShareLock);
        for (int i = 0; i < ir->rd_index->indnkeyatts; i++)
            cols = lappend(cols, get_attname(relid, ir->rd_index->indkey.values[i], false));
        index_close(ir, AccessShareLock);
    }
    table_close(r, AccessShareLock);
    return cols;
}

// ---- differential maintenance of an aggregate -------------------------------------------------

struct DiffContext {
    List *group_exprs;  // Expr *, in GROUP BY order
    List *aggs;         // Aggref *, each once
    const char *fallback;
};

Node *make_param(int id, Node *like) {
    Param *p = makeNode(Param);
    p->paramkind = PARAM_EXTERN;
    p->paramid = id;
    p->paramtype = exprType(like);
    p->paramtypmod = exprTypmod(like);
    p->paramcollid = exprCollation(like);
    p->location = -1;
    return reinterpret_cast<Node *>(p);
}

// An output or HAVING expression over the kept state: group expressions and aggregates become
// parameters ($10001.. and $1..), which the core replaces with the state's columns.
Node *diff_mutator(Node *node, DiffContext *c) {
    if (!node) return nullptr;
    int i = 0;
    ListCell *lc;
    foreach (lc, c->group_exprs) {
        if (equal(node, lfirst(lc))) return make_param(static_cast<int>(sgivm::kGroupParamBase) + 1 + i, node);
        i++;
    }
    if (IsA(node, Aggref)) {
        int k = 0;
        foreach (lc, c->aggs) {
            if (equal(node, lfirst(lc))) return make_param(k + 1, node);
            k++;
        }
        c->aggs = lappend(c->aggs, node);
        return make_param(list_length(c->aggs), node);
    }
    if (IsA(node, Var) && !c->fallback)
        c->fallback = "an output column reads a column that is neither grouped nor aggregated";
    return expression_tree_mutator(node, reinterpret_cast<Node *(*)()>(diff_mutator), c);
}

bool deterministic_collation(Oid coll) {
    return !OidIsValid(coll) || coll == DEFAULT_COLLATION_OID || coll == C_COLLATION_OID || coll == POSIX_COLLATION_OID;
}

// Whether equal values of the type have one binary image (btree's equalimage, what index
// deduplication relies on), or are numerics of a declared scale. Kept state holds the image of
// the first value of a group key or extreme it met, and keeps it while an equal one comes or
// goes; the query prints the image of a row it reads: 5.0 and 5.00, 0 and -0 (float8), 1 day
// and 24 hours are equal but print apart, and a view must print what its query prints.
bool one_image_per_value(Oid type, int32 typmod, Oid coll) {
    if (type == NUMERICOID) return typmod >= static_cast<int32>(VARHDRSZ);
    Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);
    if (!OidIsValid(opclass)) return false;
    Oid intype = get_opclass_input_type(opclass);
    Oid proc = get_opfamily_proc(get_opclass_family(opclass), intype, intype, BTEQUALIMAGE_PROC);
    return OidIsValid(proc) && DatumGetBool(OidFunctionCall1Coll(proc, coll, ObjectIdGetDatum(intype)));
}

// The delta rule of one aggregate, or why it has none.
const char *classify_aggregate(Aggref *ag, List *ctx, DiffAgg *out) {
    using Fn = sgivm::ViewShape::Aggregate::Fn;
    char *name = get_func_name(ag->aggfnoid);
    out->arg = pstrdup("");
    out->state_type = pstrdup("");
    if (ag->aggfilter) return psprintf("%s() with FILTER", name);
    if (ag->aggorder) return psprintf("%s() with ORDER BY", name);
    if (ag->aggstar) {
        out->fn = static_cast<int>(Fn::CountStar);
        return nullptr;
    }
    if (list_length(ag->args) != 1) return psprintf("%s() of several arguments", name);
    Node *arg = reinterpret_cast<Node *>(static_cast<TargetEntry *>(linitial(ag->args))->expr);
    Oid t = exprType(arg);
    int32 tm = exprTypmod(arg);
    out->arg = deparse_expression(arg, ctx, false, false);
    out->state_type = format_type_with_typemod(t, tm);
    bool ordered = OidIsValid(GetDefaultOpClass(t, BTREE_AM_OID)) && deterministic_collation(exprCollation(arg));
    if (ag->aggdistinct) {
        if (strcmp(name, "count") != 0) return psprintf("%s(DISTINCT ...)", name);
        if (!ordered) return psprintf("count(DISTINCT ...) over %s, which has no default btree ordering or a nondeterministic collation", format_type_be(t));
        out->fn = static_cast<int>(Fn::CountDistinct);
        return nullptr;
    }
    if (strcmp(name, "count") == 0) {
        out->fn = static_cast<int>(Fn::Count);
        return nullptr;
    }
    if (strcmp(name, "sum") == 0 || strcmp(name, "avg") == 0) {
        bool is_sum = name[0] == 's';
        bool exact = t == INT2OID || t == INT4OID || t == INT8OID || (t == NUMERICOID && tm >= static_cast<int32>(VARHDRSZ));
        if (!exact)
            return psprintf("%s() over %s: floating point sums depend on the order of the additions, and a numeric "
                            "without a declared scale prints the scale of the values it holds, so an incremental "
                            "value could differ from the query's",
                            name, format_type_with_typemod(t, tm));
        out->fn = static_cast<int>(is_sum ? Fn::Sum : Fn::Avg);
        out->state_type = is_sum ? format_type_be(ag->aggtype) : pstrdup(t == INT8OID || t == NUMERICOID ? "numeric" : "bigint");
        out->nan = t == NUMERICOID;
        return nullptr;
    }
    if (strcmp(name, "min") == 0 || strcmp(name, "max") == 0) {
        if (!ordered) return psprintf("%s() over %s, which has no default btree ordering or a nondeterministic collation", name, format_type_be(t));
        if (!one_image_per_value(t, tm, exprCollation(arg)))
            return psprintf("%s() over %s (equal values of it may print differently)", name, format_type_with_typemod(t, tm));
        out->fn = static_cast<int>(name[1] == 'i' ? Fn::Min : Fn::Max);
        return nullptr;
    }
    return psprintf("aggregate %s()", name);
}

Node *diff_mutator(Node *node, DiffContext *c);

// A ranking over the groups (one row_number or rank column, one window): its ORDER BY keys over
// the kept state, so that a change re-ranks only the range between a group's old and new
// positions; or why not (the caller falls back to recomputing touched partitions).
const char *plan_ranking(Query *q, DiffContext *c, List *ctx, Analysis *a) {
    if (q->havingQual) return "HAVING under a ranking window";
    if (list_length(q->windowClause) != 1) return "several windows";
    int functions = 0;
    ListCell *lc;
    foreach (lc, q->targetList) {
        Node *e = reinterpret_cast<Node *>(static_cast<TargetEntry *>(lfirst(lc))->expr);
        if (!contain_window_function(e)) continue;
        if (!IsA(e, WindowFunc) || static_cast<TargetEntry *>(lfirst(lc))->resjunk)
            return "an expression over a window function (select the ranking itself)";
        functions++;
    }
    if (functions != 1 || !a->rank_fn) return "more than one window function";
    if (strcmp(a->rank_fn, "row_number") != 0 && strcmp(a->rank_fn, "rank") != 0)
        return psprintf("%s() (row_number and rank are maintained by range)", a->rank_fn);
    WindowClause *wc = static_cast<WindowClause *>(linitial(q->windowClause));
    if (wc->orderClause == NIL) return "a ranking without ORDER BY";
    foreach (lc, wc->orderClause) {
        SortGroupClause *sc = static_cast<SortGroupClause *>(lfirst(lc));
        Node *e = reinterpret_cast<Node *>(get_sortgroupclause_tle(sc, q->targetList)->expr);
        TypeCacheEntry *tc = lookup_type_cache(exprType(e), TYPECACHE_LT_OPR | TYPECACHE_GT_OPR);
        if (sc->sortop != tc->lt_opr && sc->sortop != tc->gt_opr) return "a ranking ORDER BY with USING";
        if (!deterministic_collation(exprCollation(e))) return "a ranking ORDER BY under a nondeterministic collation";
        RankKey *k = static_cast<RankKey *>(palloc0(sizeof(RankKey)));
        k->expr = deparse_expression(diff_mutator(static_cast<Node *>(copyObjectImpl(e)), c), ctx, false, false);
        k->type = format_type_with_typemod(exprType(e), exprTypmod(e));
        k->desc = sc->sortop == tc->gt_opr;
        k->nulls_first = sc->nulls_first;
        a->rank_keys = lappend(a->rank_keys, k);
    }
    // the changes' scope becomes the groups; the partition bounds the ranges (a top-N keeps
    // recomputing its touched partitions' first N, from the state)
    a->rank_partition = a->scope;
    if (a->top_n > 0) return nullptr;
    a->scope = NIL;
    for (int i = 0; i < list_length(a->group_exprs); i++) a->scope = lappend_int(a->scope, i);
    return nullptr;
}

// A GROUP BY view's delta rules: its aggregates, and its outputs and HAVING over them, or the
// reason it is recomputed by scope instead (a->fallback).
void plan_differential(Query *q, List *group_tles, List *ctx, Oid view_relid, Analysis *a) {
    if (sgivm::pg::guc_view_strategy == sgivm::pg::kStrategyRecompute) {
        a->fallback = "stategrid_ivm.view_strategy was 'recompute' when the view was added";
        return;
    }
    DiffContext c{NIL, NIL, nullptr};
    ListCell *lc;
    foreach (lc, group_tles) {
        Node *e = reinterpret_cast<Node *>(static_cast<TargetEntry *>(lfirst(lc))->expr);
        if (!OidIsValid(GetDefaultOpClass(exprType(e), BTREE_AM_OID)) || !deterministic_collation(exprCollation(e))) {
            a->fallback = psprintf("GROUP BY over %s, which has no default btree ordering or a nondeterministic collation",
                                   format_type_be(exprType(e)));
            return;
        }
        if (!one_image_per_value(exprType(e), exprTypmod(e), exprCollation(e))) {
            a->fallback = psprintf("GROUP BY over %s, whose equal values may print differently",
                                   format_type_with_typemod(exprType(e), exprTypmod(e)));
            return;
        }
        c.group_exprs = lappend(c.group_exprs, e);
        a->group_types = lappend(a->group_types, format_type_with_typemod(exprType(e), exprTypmod(e)));
    }
    int column = 0;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        if (tle->resjunk) continue;
        if (q->hasWindowFuncs && IsA(tle->expr, WindowFunc)) {
            a->rank_fn = get_func_name(reinterpret_cast<WindowFunc *>(tle->expr)->winfnoid);
            a->rank_column = column;
            a->outputs = lappend(a->outputs, pstrdup(""));  // (the rank: computed by range)
        } else {
            Node *m = diff_mutator(reinterpret_cast<Node *>(copyObjectImpl(tle->expr)), &c);
            a->outputs = lappend(a->outputs, deparse_expression(m, ctx, false, false));
        }
        column++;
    }
    if (q->hasWindowFuncs && !c.fallback) c.fallback = plan_ranking(q, &c, ctx, a);
    // (the kept state holds the rows WHERE admits: every statement over the input filters)
    if (q->jointree->quals) a->filter = deparse_expression(q->jointree->quals, ctx, false, false);
    if (q->havingQual) a->having = deparse_expression(diff_mutator(static_cast<Node *>(copyObjectImpl(q->havingQual)), &c), ctx, false, false);
    foreach (lc, c.aggs) {
        DiffAgg *d = static_cast<DiffAgg *>(palloc0(sizeof(DiffAgg)));
        const char *why = classify_aggregate(static_cast<Aggref *>(lfirst(lc)), ctx, d);
        if (why && !c.fallback) c.fallback = psprintf("%s has no delta rule yet", why);
        a->aggs = lappend(a->aggs, d);
    }
    if (c.fallback) {
        a->fallback = c.fallback;
        a->aggs = NIL;
        a->outputs = NIL;
        a->having = nullptr;
        if (a->rank_partition) a->scope = a->rank_partition;  // (recomputed by partition)
        a->rank_fn = nullptr;
        a->rank_keys = NIL;
        a->rank_partition = NIL;
        a->filter = nullptr;
        return;
    }
    a->state_schema = OidIsValid(view_relid) ? pstrdup(quote_identifier(get_namespace_name(get_rel_namespace(view_relid))))
                                             : pstrdup("pg_temp");
}

// SELECT DISTINCT a, b FROM t is maintained as SELECT a, b FROM t GROUP BY a, b: the aggregate
// operator keeps each row's multiplicity (its row count), and a row is in the view while it is
// positive. DISTINCT's clauses are GROUP BY's (the same equality, sort and hash operators over
// the same target entries), so they move over as they are; the deparsed query groups.
void distinct_as_group_by(Query *q) {
    if (q->hasAggs || q->groupClause || q->havingQual || q->hasWindowFuncs)
        refuse(q->hasWindowFuncs && !q->hasAggs && !q->groupClause ? "DISTINCT over window functions"
                                                                    : "DISTINCT together with GROUP BY or aggregates",
               "Define the grouped query as a view of its own and select DISTINCT from that view: DISTINCT over one "
               "table or view is maintained.");
    if (list_length(q->jointree->fromlist) > 1 ||
        (list_length(q->jointree->fromlist) == 1 && !IsA(linitial(q->jointree->fromlist), RangeTblRef)))
        refuse("DISTINCT over a join",
               "Define the join as a view of its own and select DISTINCT from that view: DISTINCT over one table or "
               "view is maintained.");
    q->groupClause = q->distinctClause;
    q->distinctClause = NIL;
}

// SELECT * FROM (<ranking view's query>) r WHERE <ranking column> <= N (or < N): the inner
// query, with a->top_n set; the query itself otherwise.
Query *top_n_inner(Query *q, Analysis *a) {
    if (q->commandType != CMD_SELECT || q->utilityStmt || q->setOperations || q->hasAggs || q->groupClause ||
        q->hasWindowFuncs || q->distinctClause || q->sortClause || q->limitCount || q->limitOffset ||
        q->hasSubLinks || q->cteList || q->havingQual || list_length(q->rtable) != 1 ||
        list_length(q->jointree->fromlist) != 1 || !IsA(linitial(q->jointree->fromlist), RangeTblRef))
        return q;
    RangeTblEntry *rte = static_cast<RangeTblEntry *>(linitial(q->rtable));
    if (rte->rtekind != RTE_SUBQUERY || !rte->subquery || !rte->subquery->hasWindowFuncs) return q;
    Query *inner = rte->subquery;
    // the outer select list: the inner columns as they are, in their order
    ListCell *lc;
    int n = 0;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        Var *v = plain_var(reinterpret_cast<Node *>(tle->expr));
        TargetEntry *in = v ? get_tle_by_resno(inner->targetList, v->varattno) : nullptr;
        if (tle->resjunk || !v || v->varlevelsup || v->varattno != ++n || !in || in->resjunk || !tle->resname ||
            !in->resname || strcmp(tle->resname, in->resname) != 0)
            return q;
    }
    if (n != list_length(inner->targetList)) {
        int visible = 0;
        foreach (lc, inner->targetList) visible += static_cast<TargetEntry *>(lfirst(lc))->resjunk ? 0 : 1;
        if (n != visible) return q;
    }
    // WHERE ranking <= N, or ranking < N
    Node *w = q->jointree->quals;
    OpExpr *op = w && IsA(w, OpExpr) ? reinterpret_cast<OpExpr *>(w) : nullptr;
    if (!op || list_length(op->args) != 2) return q;
    char *opname = get_opname(op->opno);
    Var *v = plain_var(static_cast<Node *>(linitial(op->args)));
    Node *c = static_cast<Node *>(lsecond(op->args));
    while (c && IsA(c, RelabelType)) c = reinterpret_cast<Node *>(reinterpret_cast<RelabelType *>(c)->arg);
    if (!opname || !v || !c || !IsA(c, Const) || reinterpret_cast<Const *>(c)->constisnull) return q;
    TargetEntry *rank = get_tle_by_resno(inner->targetList, v->varattno);
    if (!rank || !IsA(rank->expr, WindowFunc)) return q;
    Const *k = reinterpret_cast<Const *>(c);
    int64 limit;
    switch (k->consttype) {
        case INT2OID: limit = DatumGetInt16(k->constvalue); break;
        case INT4OID: limit = DatumGetInt32(k->constvalue); break;
        case INT8OID: limit = DatumGetInt64(k->constvalue); break;
        default: return q;
    }
    if (strcmp(opname, "<") == 0) limit--;
    else if (strcmp(opname, "<=") != 0) return q;
    if (limit < 1) refuse("a top-N filter that keeps no row", "Keep at least the first row: WHERE ranking <= 1.");
    a->top_n = limit;
    return inner;
}

// ---- the general join (join_plan.cpp) ---------------------------------------------------------

// One FROM item of a general join view (sgivm::ViewShape::Occurrence).
struct JoinOcc {
    int rtindex;
    int input;  // index into the analysis' inputs
    char *alias;
    List *key;       // char *: the table's key columns
    List *view_key;  // char *: the view's columns holding them
    bool nullable;
    int branch;  // its UNION ALL branch (0 without one)
    bool null_extended;  // on an outer join's nullable side: its columns are NULL where it has no row
};

// sgivm::ViewShape::Edge
struct JoinEdge {
    int kind;  // sgivm::ViewShape::Edge::Kind
    int from_input, from_occ;
    char *from_col;
    int to_occ;
    char *to_col;
};

struct JoinLookup {
    int input;
    char *column;
};

struct JoinWalk {
    Query *q;
    Analysis *a;
    List *occs;  // JoinOcc *
    List *edges;
    List *lookups;
};

// The analysis' input index of table `relid`, added when new (a self-join reads it once).
int input_of(Analysis *a, Oid relid, Query *reader, int rtindex) {
    int i = 0;
    ListCell *lc, *lc2;
    forboth(lc, a->input_relids, lc2, a->input_columns) {
        if (lfirst_oid(lc) == relid) {
            // the columns every reference reads
            ListCell *c;
            foreach (c, columns_used(reader, rtindex, relid)) {
                bool seen = false;
                ListCell *d;
                foreach (d, static_cast<List *>(lfirst(lc2))) seen = seen || strcmp(static_cast<char *>(lfirst(d)), static_cast<char *>(lfirst(c))) == 0;
                if (!seen) lfirst(lc2) = lappend(static_cast<List *>(lfirst(lc2)), lfirst(c));
            }
            return i;
        }
        i++;
    }
    a->input_relids = lappend_oid(a->input_relids, relid);
    a->input_names = lappend(a->input_names, qualified_name(relid));
    a->input_columns = lappend(a->input_columns, columns_used(reader, rtindex, relid));
    return list_length(a->input_relids) - 1;
}

// The occurrence whose column a Var of the outer query (after join aliases are resolved) is;
// -1 if it is not a plain column of one.
int occ_of_var(JoinWalk *w, Node *n, AttrNumber *att) {
    n = flatten_join_alias_vars(w->q, n);
    Var *v = plain_var(n);
    if (!v || v->varlevelsup != 0 || v->varattno <= 0) return -1;
    int i = 0;
    ListCell *lc;
    foreach (lc, w->occs) {
        if (static_cast<JoinOcc *>(lfirst(lc))->rtindex == static_cast<int>(v->varno)) {
            *att = v->varattno;
            return i;
        }
        i++;
    }
    return -1;
}

JoinOcc *occ_at(JoinWalk *w, int i) { return static_cast<JoinOcc *>(list_nth(w->occs, i)); }

char *occ_column(JoinWalk *w, int occ, AttrNumber att) {
    return get_attname(rt_fetch(occ_at(w, occ)->rtindex, w->q->rtable)->relid, att, false);
}

void add_lookup(JoinWalk *w, int input, char *column) {
    ListCell *lc;
    foreach (lc, w->lookups) {
        JoinLookup *l = static_cast<JoinLookup *>(lfirst(lc));
        if (l->input == input && strcmp(l->column, column) == 0) return;
    }
    JoinLookup *l = static_cast<JoinLookup *>(palloc(sizeof(JoinLookup)));
    l->input = input;
    l->column = column;
    w->lookups = lappend(w->lookups, l);
}

void add_edge(JoinWalk *w, int kind, int from_input, int from_occ, char *from_col, int to_occ, char *to_col) {
    JoinEdge *e = static_cast<JoinEdge *>(palloc0(sizeof(JoinEdge)));
    e->kind = kind;
    e->from_input = from_input;
    e->from_occ = from_occ;
    e->from_col = from_col;
    e->to_occ = to_occ;
    e->to_col = to_col;
    w->edges = lappend(w->edges, e);
}

// `a = b` of two plain columns of occurrences (after join aliases): their occurrences and columns.
bool column_equality(JoinWalk *w, Node *n, int *occ1, AttrNumber *att1, int *occ2, AttrNumber *att2) {
    if (!IsA(n, OpExpr) || list_length(reinterpret_cast<OpExpr *>(n)->args) != 2) return false;
    OpExpr *op = reinterpret_cast<OpExpr *>(n);
    char *opname = get_opname(op->opno);
    if (!opname || strcmp(opname, "=") != 0) return false;
    *occ1 = occ_of_var(w, static_cast<Node *>(linitial(op->args)), att1);
    *occ2 = occ_of_var(w, static_cast<Node *>(lsecond(op->args)), att2);
    return *occ1 >= 0 && *occ2 >= 0 && *occ1 != *occ2;
}

// The occurrences of a FROM item, in order; edges for outer joins (a change on the nullable side
// touches the preserved rows it matches) and for every join inside a nullable side (a change
// there changes the side's rows the outer join matches).
List *walk_from(JoinWalk *w, Node *n, bool under_nullable) {
    if (IsA(n, RangeTblRef)) {
        int rtindex = reinterpret_cast<RangeTblRef *>(n)->rtindex;
        RangeTblEntry *rte = rt_fetch(rtindex, w->q->rtable);
        if (rte->rtekind == RTE_SUBQUERY)
            refuse("a subquery in FROM", "Define the subquery as a view of its own (add_view) and select from that view.");
        if (rte->rtekind != RTE_RELATION) refuse("this FROM item", "Views read tables: the pipeline's ODS mirrors and its other views.");
        JoinOcc *o = static_cast<JoinOcc *>(palloc0(sizeof(JoinOcc)));
        o->rtindex = rtindex;
        o->input = input_of(w->a, rte->relid, w->q, rtindex);
        o->alias = rte->alias->aliasname;
        o->key = key_columns_of(rte->relid);
        o->null_extended = under_nullable;
        if (o->key == NIL)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a view over %s: it has no key", qualified_name(rte->relid)),
                            errhint("A view row is kept by the keys of the rows it is made of: give the table a primary key.")));
        // a key column without NOT NULL (a view as input) may hold NULLs: matched NULL-safely
        Relation rel = table_open(rte->relid, AccessShareLock);
        ListCell *lc;
        foreach (lc, o->key) {
            AttrNumber att = get_attnum(rte->relid, static_cast<char *>(lfirst(lc)));
            o->nullable = o->nullable || !TupleDescAttr(RelationGetDescr(rel), att - 1)->attnotnull;
        }
        table_close(rel, AccessShareLock);
        w->occs = lappend(w->occs, o);
        return list_make1_int(list_length(w->occs) - 1);
    }
    if (!IsA(n, JoinExpr)) refuse("this FROM clause", nullptr);
    JoinExpr *j = reinterpret_cast<JoinExpr *>(n);
    if (j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT && j->jointype != JOIN_RIGHT && j->jointype != JOIN_FULL)
        refuse("this kind of join", "Use INNER, LEFT, RIGHT, FULL or CROSS JOIN.");
    bool left_nullable = j->jointype == JOIN_RIGHT || j->jointype == JOIN_FULL;
    bool right_nullable = j->jointype == JOIN_LEFT || j->jointype == JOIN_FULL;
    List *l = walk_from(w, j->larg, under_nullable || left_nullable);
    List *r = walk_from(w, j->rarg, under_nullable || right_nullable);
    // the ON clause's equalities between the two sides
    List *pairs = NIL;  // int quadruples: left occ, left att, right occ, right att
    ListCell *lc;
    foreach (lc, make_ands_implicit(reinterpret_cast<Expr *>(j->quals))) {
        int o1, o2;
        AttrNumber a1, a2;
        if (!column_equality(w, static_cast<Node *>(lfirst(lc)), &o1, &a1, &o2, &a2)) continue;
        if (list_member_int(l, o2) && list_member_int(r, o1)) {
            std::swap(o1, o2);
            std::swap(a1, a2);
        }
        if (!list_member_int(l, o1) || !list_member_int(r, o2)) continue;
        pairs = lappend(pairs, list_make4_int(o1, a1, o2, a2));
        add_lookup(w, occ_at(w, o1)->input, occ_column(w, o1, a1));
        add_lookup(w, occ_at(w, o2)->input, occ_column(w, o2, a2));
    }
    // from one side to the other: edges along the equalities, or every row when there is none
    auto edges_to = [&](bool to_left) {
        List *from = to_left ? r : l, *to = to_left ? l : r;
        if (pairs == NIL) {
            ListCell *f, *t;
            foreach (f, from)
                foreach (t, to)
                    add_edge(w, static_cast<int>(sgivm::ViewShape::Edge::Kind::All), occ_at(w, lfirst_int(f))->input,
                             lfirst_int(f), nullptr, lfirst_int(t), nullptr);
            return;
        }
        ListCell *p;
        foreach (p, pairs) {
            List *q4 = static_cast<List *>(lfirst(p));
            int lo = list_nth_int(q4, 0), ro = list_nth_int(q4, 2);
            AttrNumber la = static_cast<AttrNumber>(list_nth_int(q4, 1)), ra = static_cast<AttrNumber>(list_nth_int(q4, 3));
            int fo = to_left ? ro : lo, too = to_left ? lo : ro;
            AttrNumber fa = to_left ? ra : la, ta = to_left ? la : ra;
            add_edge(w, static_cast<int>(sgivm::ViewShape::Edge::Kind::Eq), occ_at(w, fo)->input, fo, occ_column(w, fo, fa), too,
                     occ_column(w, too, ta));
        }
    };
    // (inside a nullable side, any join's rows matter as a whole to the outer join above: a
    // change of either side's rows changes which of them exist)
    if (right_nullable || under_nullable) edges_to(true);
    if (left_nullable || under_nullable) edges_to(false);
    return list_concat(l, r);
}

// A subquery of WHERE (EXISTS, IN, NOT EXISTS, NOT IN, ANY/ALL): over one table, its changes
// touch the outer rows it correlates with.
void walk_sublink(JoinWalk *w, SubLink *s) {
    if (s->subLinkType != EXISTS_SUBLINK && s->subLinkType != ANY_SUBLINK && s->subLinkType != ALL_SUBLINK)
        refuse("a scalar subquery in WHERE", "Join the table instead, or aggregate it in a view of its own and join that view.");
    Query *sq = castNode(Query, s->subselect);
    if (sq->hasAggs || sq->groupClause || sq->havingQual || sq->hasWindowFuncs || sq->groupingSets)
        refuse("an aggregate in an EXISTS or IN subquery", "Aggregate in a view of its own (add_view) and join that view.");
    if (sq->setOperations) refuse("UNION, INTERSECT or EXCEPT in a subquery", nullptr);
    if (sq->limitCount || sq->limitOffset) refuse("LIMIT/OFFSET in a subquery", nullptr);
    if (sq->hasSubLinks) refuse("a subquery inside a subquery", "Define the inner part as a view of its own (add_view).");
    if (sq->cteList) refuse("WITH in a subquery", nullptr);
    if (list_length(sq->jointree->fromlist) != 1 || !IsA(linitial(sq->jointree->fromlist), RangeTblRef))
        refuse("a subquery over a join in EXISTS or IN",
               "Define the join as a view of its own (add_view) and use that view in the subquery.");
    int rtindex = reinterpret_cast<RangeTblRef *>(linitial(sq->jointree->fromlist))->rtindex;
    RangeTblEntry *rte = rt_fetch(rtindex, sq->rtable);
    if (rte->rtekind != RTE_RELATION || (rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE))
        refuse("a subquery that does not read a table", "Views read tables: the pipeline's ODS mirrors and its other views.");
    if (rte->tablesample) refuse("TABLESAMPLE", nullptr);
    int input = input_of(w->a, rte->relid, sq, rtindex);
    bool found = false;
    // correlation: sub.column = outer.column
    ListCell *lc;
    foreach (lc, make_ands_implicit(reinterpret_cast<Expr *>(sq->jointree->quals))) {
        Node *n = static_cast<Node *>(lfirst(lc));
        if (!IsA(n, OpExpr) || list_length(reinterpret_cast<OpExpr *>(n)->args) != 2) continue;
        OpExpr *op = reinterpret_cast<OpExpr *>(n);
        char *opname = get_opname(op->opno);
        Var *x = plain_var(static_cast<Node *>(linitial(op->args))), *y = plain_var(static_cast<Node *>(lsecond(op->args)));
        if (!opname || strcmp(opname, "=") != 0 || !x || !y) continue;
        if (x->varlevelsup == 1 && y->varlevelsup == 0) std::swap(x, y);
        if (x->varlevelsup != 0 || y->varlevelsup != 1 || static_cast<int>(x->varno) != rtindex || x->varattno <= 0) continue;
        Var *outer = static_cast<Var *>(copyObjectImpl(y));
        outer->varlevelsup = 0;
        AttrNumber att;
        int occ = occ_of_var(w, reinterpret_cast<Node *>(outer), &att);
        if (occ < 0) continue;
        char *sub_col = get_attname(rte->relid, x->varattno, false);
        add_edge(w, static_cast<int>(sgivm::ViewShape::Edge::Kind::Eq), input, -1, sub_col, occ, occ_column(w, occ, att));
        add_lookup(w, input, sub_col);
        add_lookup(w, occ_at(w, occ)->input, occ_column(w, occ, att));
        found = true;
        break;
    }
    // x IN (SELECT y ...): the values of y touch the rows of x (with NOT IN's NULL rules)
    if (!found && s->subLinkType == ANY_SUBLINK && s->testexpr && IsA(s->testexpr, OpExpr)) {
        OpExpr *op = reinterpret_cast<OpExpr *>(s->testexpr);
        char *opname = get_opname(op->opno);
        TargetEntry *tle = static_cast<TargetEntry *>(linitial(sq->targetList));
        Var *y = plain_var(reinterpret_cast<Node *>(tle->expr));
        AttrNumber att;
        int occ = list_length(op->args) == 2 && opname && strcmp(opname, "=") == 0 && IsA(lsecond(op->args), Param)
                      ? occ_of_var(w, static_cast<Node *>(linitial(op->args)), &att)
                      : -1;
        if (occ >= 0 && y && y->varlevelsup == 0 && static_cast<int>(y->varno) == rtindex && y->varattno > 0) {
            char *sub_col = get_attname(rte->relid, y->varattno, false);
            add_edge(w, static_cast<int>(sgivm::ViewShape::Edge::Kind::In), input, -1, sub_col, occ, occ_column(w, occ, att));
            add_lookup(w, input, sub_col);
            add_lookup(w, occ_at(w, occ)->input, occ_column(w, occ, att));
            // (x NULL in a NULL-extended row, which has no row of x's table to touch: a change
            // of the table's emptiness flips NOT IN there, so a change touches every row)
            found = !occ_at(w, occ)->null_extended;
        }
    }
    // otherwise a change of the table touches every row
    if (!found)
        for (int i = 0; i < list_length(w->occs); i++)
            add_edge(w, static_cast<int>(sgivm::ViewShape::Edge::Kind::All), input, -1, nullptr, i, nullptr);
}

bool sublinks_walker(Node *node, JoinWalk *w) {
    if (!node) return false;
    if (IsA(node, SubLink)) {
        walk_sublink(w, reinterpret_cast<SubLink *>(node));
        return expression_tree_walker(reinterpret_cast<SubLink *>(node)->testexpr,
                                      reinterpret_cast<bool (*)()>(sublinks_walker), w);
    }
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(sublinks_walker), w);
}

// Whether the view is a fact with dimensions (the projection of view_plan.cpp, keyed by the
// fact's key): one table, or INNER/LEFT joins from it, each on fact.column = the dimension's
// single key column, the fact's key selected, no subqueries. Anything else is a general join.
bool fact_with_dimensions(Query *q) {
    if (q->hasSubLinks || list_length(q->jointree->fromlist) != 1) return false;
    Node *from = static_cast<Node *>(linitial(q->jointree->fromlist));
    List *dims = NIL;
    while (IsA(from, JoinExpr)) {
        JoinExpr *j = reinterpret_cast<JoinExpr *>(from);
        if ((j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT) || !IsA(j->rarg, RangeTblRef)) return false;
        dims = lappend(dims, j);
        from = j->larg;
    }
    if (!IsA(from, RangeTblRef)) return false;
    int fact_index = reinterpret_cast<RangeTblRef *>(from)->rtindex;
    RangeTblEntry *fact = rt_fetch(fact_index, q->rtable);
    if (fact->rtekind != RTE_RELATION) return false;
    ListCell *lc;
    foreach (lc, dims) {
        JoinExpr *j = static_cast<JoinExpr *>(lfirst(lc));
        int dim_index = reinterpret_cast<RangeTblRef *>(j->rarg)->rtindex;
        RangeTblEntry *dim = rt_fetch(dim_index, q->rtable);
        if (dim->rtekind != RTE_RELATION) return false;
        OpExpr *op = j->quals && IsA(j->quals, OpExpr) ? reinterpret_cast<OpExpr *>(j->quals) : nullptr;
        char *opname = op ? get_opname(op->opno) : nullptr;
        Var *l = op && list_length(op->args) == 2 ? plain_var(static_cast<Node *>(linitial(op->args))) : nullptr;
        Var *r = op && list_length(op->args) == 2 ? plain_var(static_cast<Node *>(lsecond(op->args))) : nullptr;
        if (!opname || strcmp(opname, "=") != 0 || !l || !r) return false;
        if (static_cast<int>(l->varno) == dim_index) std::swap(l, r);
        if (static_cast<int>(l->varno) != fact_index || static_cast<int>(r->varno) != dim_index || l->varlevelsup || r->varlevelsup)
            return false;
        List *dim_key = key_columns_of(dim->relid);
        if (list_length(dim_key) != 1 || strcmp(static_cast<char *>(linitial(dim_key)), get_attname(dim->relid, r->varattno, false)) != 0)
            return false;
    }
    List *fk = key_columns_of(fact->relid);
    if (fk == NIL) return false;
    foreach (lc, fk) {
        AttrNumber att = get_attnum(fact->relid, static_cast<char *>(lfirst(lc)));
        bool selected = false;
        ListCell *t;
        foreach (t, q->targetList) {
            TargetEntry *tle = static_cast<TargetEntry *>(lfirst(t));
            Var *v = plain_var(reinterpret_cast<Node *>(tle->expr));
            selected = selected || (!tle->resjunk && v && static_cast<int>(v->varno) == fact_index && v->varattno == att && !v->varlevelsup);
        }
        if (!selected) return false;
    }
    return true;
}

// A general join view: its occurrences, edges and lookups, and each occurrence's key among the
// view's columns (a selected column, or one added to the query: sgivm_<alias>_<column>).
// A join query's FROM and WHERE: its occurrences, edges and lookups into w.
void walk_query(JoinWalk *w) {
    Query *q = w->q;
    if (list_length(q->jointree->fromlist) == 0) refuse("no FROM clause", nullptr);
    ListCell *lc;
    // a comma-separated FROM list is an inner (cross) join of its items
    foreach (lc, q->jointree->fromlist) (void)walk_from(w, static_cast<Node *>(lfirst(lc)), false);
    // WHERE: equalities between tables are join columns too; subqueries touch what they correlate with
    foreach (lc, make_ands_implicit(reinterpret_cast<Expr *>(q->jointree->quals))) {
        int o1, o2;
        AttrNumber a1, a2;
        if (column_equality(w, static_cast<Node *>(lfirst(lc)), &o1, &a1, &o2, &a2)) {
            add_lookup(w, occ_at(w, o1)->input, occ_column(w, o1, a1));
            add_lookup(w, occ_at(w, o2)->input, occ_column(w, o2, a2));
        }
    }
    (void)sublinks_walker(q->jointree->quals, w);
}

void analyse_join(Query *q, Analysis *a) {
    JoinWalk w{q, a, NIL, NIL, NIL};
    walk_query(&w);
    ListCell *lc;

    // each occurrence's key in the view
    List *names = NIL;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        if (!tle->resjunk && tle->resname) names = lappend(names, tle->resname);
    }
    int i = 0;
    foreach (lc, w.occs) {
        JoinOcc *o = static_cast<JoinOcc *>(lfirst(lc));
        RangeTblEntry *rte = rt_fetch(o->rtindex, q->rtable);
        ListCell *k;
        foreach (k, o->key) {
            const char *col = static_cast<char *>(lfirst(k));
            AttrNumber att = get_attnum(rte->relid, col);
            const char *out = nullptr;
            ListCell *t;
            foreach (t, q->targetList) {
                TargetEntry *tle = static_cast<TargetEntry *>(lfirst(t));
                AttrNumber tatt;
                if (!tle->resjunk && !contain_mutable_functions(reinterpret_cast<Node *>(tle->expr)) &&
                    occ_of_var(&w, reinterpret_cast<Node *>(tle->expr), &tatt) == i && tatt == att) {
                    out = tle->resname;
                    break;
                }
            }
            if (!out) {
                // a column of its own, named apart from the view's
                char *name = psprintf("sgivm_%s_%s", o->alias, col);
                if (strlen(name) >= NAMEDATALEN) name = psprintf("sgivm_key_%d_%d", i + 1, list_length(o->view_key) + 1);
                for (int n = 2;; n++) {
                    bool taken = false;
                    ListCell *x;
                    foreach (x, names) taken = taken || strcmp(static_cast<char *>(lfirst(x)), name) == 0;
                    if (!taken) break;
                    name = psprintf("sgivm_key_%d_%d_%d", i + 1, list_length(o->view_key) + 1, n);
                }
                Oid type;
                int32 typmod;
                Oid coll;
                get_atttypetypmodcoll(rte->relid, att, &type, &typmod, &coll);
                Var *v = makeVar(o->rtindex, att, type, typmod, coll, 0);
                TargetEntry *tle = makeTargetEntry(reinterpret_cast<Expr *>(v), static_cast<AttrNumber>(list_length(q->targetList) + 1),
                                                   name, false);
                q->targetList = lappend(q->targetList, tle);
                names = lappend(names, name);
                out = name;
            }
            o->view_key = lappend(o->view_key, pstrdup(out));
            a->key = list_append_unique(a->key, makeString(pstrdup(out)));
        }
        i++;
    }
    // (key as plain strings)
    List *key = NIL;
    foreach (lc, a->key) key = lappend(key, strVal(lfirst(lc)));
    a->key = key;
    a->occs = w.occs;
    a->edges = w.edges;
    a->lookups = w.lookups;
    a->general_join = true;
}

// ---- subqueries in FROM and WITH: inlined -----------------------------------------------------

// A subquery that is only tables, joins and conditions: inlined into the query that reads it.
bool simple_subquery(Query *sq) {
    return sq->commandType == CMD_SELECT && !sq->utilityStmt && !sq->hasAggs && !sq->groupClause && !sq->havingQual &&
           !sq->hasWindowFuncs && !sq->distinctClause && !sq->setOperations && !sq->limitCount && !sq->limitOffset &&
           !sq->cteList && !sq->hasSubLinks && !sq->hasTargetSRFs && !sq->rowMarks && !sq->groupingSets &&
           list_length(sq->jointree->fromlist) == 1;
}

// Puts `item` where RangeTblRef `rtindex` is in the join tree `n`, and its conditions where they
// keep their meaning: the ON clause of an inner join or of the join whose nullable side it is,
// or WHERE at the top. False if not found; refuses a subquery with conditions on an outer
// join's preserved side.
bool place_subquery(Node **n, int rtindex, Node *item, Node *quals, Query *q, JoinExpr *parent, bool parent_nullable_side) {
    if (IsA(*n, RangeTblRef)) {
        if (reinterpret_cast<RangeTblRef *>(*n)->rtindex != rtindex) return false;
        *n = item;
        if (!quals) return true;
        Node **target = nullptr;
        if (!parent)
            target = &q->jointree->quals;
        else if (parent->jointype == JOIN_INNER || parent_nullable_side)
            target = &parent->quals;
        else
            refuse("a subquery with WHERE on the preserved side of an outer join",
                   "Move its conditions into the outer query's WHERE, or define it as a view of its own (add_view).");
        *target = *target ? reinterpret_cast<Node *>(makeBoolExpr(AND_EXPR, list_make2(*target, quals), -1)) : quals;
        return true;
    }
    if (IsA(*n, JoinExpr)) {
        JoinExpr *j = reinterpret_cast<JoinExpr *>(*n);
        return place_subquery(&j->larg, rtindex, item, quals, q, j, j->jointype == JOIN_RIGHT) ||
               place_subquery(&j->rarg, rtindex, item, quals, q, j, j->jointype == JOIN_LEFT);
    }
    return false;
}

// WITH queries read in FROM (non-recursive SELECTs) become subqueries, at every level of
// subqueries in FROM (`ctes`: the WITH lists around q, innermost first).
void ctes_to_subqueries(Query *q, List *ctes) {
    ListCell *lc;
    foreach (lc, q->cteList) {
        CommonTableExpr *cte = static_cast<CommonTableExpr *>(lfirst(lc));
        if (cte->cterecursive) refuse("WITH RECURSIVE", "A recursive query has no delta rules here; maintain its input tables.");
        if (castNode(Query, cte->ctequery)->commandType != CMD_SELECT)
            refuse("a data-modifying statement in WITH", "A view only reads: pass the SELECT alone.");
    }
    ctes = lcons(q->cteList, ctes);
    foreach (lc, q->rtable) {
        RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
        if (rte->rtekind == RTE_CTE) {
            if (rte->ctelevelsup >= static_cast<Index>(list_length(ctes))) refuse("this WITH query", nullptr);
            CommonTableExpr *cte = nullptr;
            ListCell *c;
            foreach (c, static_cast<List *>(list_nth(ctes, static_cast<int>(rte->ctelevelsup))))
                if (strcmp(static_cast<CommonTableExpr *>(lfirst(c))->ctename, rte->ctename) == 0)
                    cte = static_cast<CommonTableExpr *>(lfirst(c));
            if (!cte) refuse("this WITH query", nullptr);
            Query *cq = static_cast<Query *>(copyObjectImpl(cte->ctequery));
            // (a WITH query of an outer level reads that level's WITH queries: one level up now)
            ctes_to_subqueries(cq, list_copy_tail(ctes, static_cast<int>(rte->ctelevelsup) + 1));
            rte->rtekind = RTE_SUBQUERY;
            rte->subquery = cq;
            rte->ctename = nullptr;
            rte->ctelevelsup = 0;
        } else if (rte->rtekind == RTE_SUBQUERY && rte->subquery) {
            ctes_to_subqueries(rte->subquery, ctes);
        }
    }
    q->cteList = NIL;
}

// The query with its subqueries in FROM (WITH queries made subqueries first) inlined, as far as
// they are one table with conditions: the general join then sees their tables as its own.
// strict: refuse a subquery that is not; else leave it (split_view makes it a view).
Query *inline_subqueries(Query *q, bool strict) {
    ListCell *lc;
    // (in place: the subquery's table takes the subquery's place in the range table, so that
    // joins keep referring to earlier entries only)
    for (int s = 1; s <= list_length(q->rtable); s++) {
        RangeTblEntry *rte = rt_fetch(s, q->rtable);
        if (rte->rtekind != RTE_SUBQUERY || !rte->inFromCl) continue;
        Query *sq = inline_subqueries(static_cast<Query *>(copyObjectImpl(rte->subquery)), strict);
        bool one_table = simple_subquery(sq) && list_length(sq->rtable) == 1 && IsA(linitial(sq->jointree->fromlist), RangeTblRef) &&
                         rt_fetch(1, sq->rtable)->rtekind == RTE_RELATION;
        if (!one_table && !strict) {
            rte->subquery = sq;
            continue;
        }
        if (!simple_subquery(sq))
            refuse("a subquery in FROM with aggregates, DISTINCT, LIMIT, set operations or subqueries of its own",
                   "Define the subquery as a view of its own (add_view) and select from that view.");
        if (!one_table)
            refuse("a subquery in FROM over more than one table",
                   "Define the subquery as a view of its own (add_view) and select from that view.");
        ChangeVarNodes(reinterpret_cast<Node *>(sq), 1, s, 0);
        // the outer query's columns of the subquery are its select list's expressions
        q = reinterpret_cast<Query *>(ReplaceVarsFromTargetList(reinterpret_cast<Node *>(q), s, 0, rte, sq->targetList,
                                                                REPLACEVARS_REPORT_ERROR, 0, &q->hasSubLinks));
        RangeTblEntry *table = rt_fetch(1, sq->rtable);
        const char *alias = rt_fetch(s, q->rtable)->eref->aliasname;
        table->alias = makeAlias(alias, NIL);
        table->eref->aliasname = pstrdup(alias);
        list_nth_cell(q->rtable, s - 1)->ptr_value = table;
        bool placed = false;
        RangeTblRef *ref = makeNode(RangeTblRef);
        ref->rtindex = s;
        foreach (lc, q->jointree->fromlist) {
            Node *n = static_cast<Node *>(lfirst(lc));
            if (place_subquery(&n, s, reinterpret_cast<Node *>(ref), sq->jointree->quals, q, nullptr, false)) {
                lfirst(lc) = n;
                placed = true;
                break;
            }
        }
        if (!placed) refuse("this subquery in FROM", nullptr);
    }
    return q;
}

// SELECT * FROM (<query>) AS alias(columns): the inner query, its columns renamed (add_view's
// form of pg_ivm's column list, mv(a, b), and the plain renaming a user may write).
Query *unwrap_renaming(Query *q) {
    if (list_length(q->rtable) != 1 || list_length(q->jointree->fromlist) != 1 || q->jointree->quals || q->hasAggs ||
        q->groupClause || q->havingQual || q->hasWindowFuncs || q->distinctClause || q->sortClause || q->limitCount ||
        q->limitOffset || q->setOperations || q->cteList || q->hasSubLinks || q->hasTargetSRFs || q->rowMarks ||
        q->commandType != CMD_SELECT || q->utilityStmt)
        return q;
    RangeTblEntry *rte = static_cast<RangeTblEntry *>(linitial(q->rtable));
    if (rte->rtekind != RTE_SUBQUERY || !IsA(linitial(q->jointree->fromlist), RangeTblRef)) return q;
    Query *inner = rte->subquery;
    // the outer select list: every column of the subquery, in order
    List *inner_out = NIL;
    ListCell *lc;
    foreach (lc, inner->targetList)
        if (!static_cast<TargetEntry *>(lfirst(lc))->resjunk) inner_out = lappend(inner_out, lfirst(lc));
    int n = 0;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        Var *v = plain_var(reinterpret_cast<Node *>(tle->expr));
        if (tle->resjunk || !v || v->varno != 1 || v->varlevelsup || v->varattno != ++n) return q;
    }
    if (n != list_length(inner_out)) return q;
    int i = 0;
    foreach (lc, q->targetList) static_cast<TargetEntry *>(list_nth(inner_out, i++))->resname = static_cast<TargetEntry *>(lfirst(lc))->resname;
    return inner;
}

// ---- a view over a view of its own input (add_view's split) ------------------------------------

// Column names made unique (x, x_2, x_3...) for the select list of a view's input.
char *unique_name(List **taken, const char *base) {
    char *name = pstrdup(base);
    for (int n = 2;; n++) {
        bool seen = false;
        ListCell *lc;
        foreach (lc, *taken) seen = seen || strcmp(static_cast<char *>(lfirst(lc)), name) == 0;
        if (!seen) break;
        name = psprintf("%s_%d", base, n);
    }
    *taken = lappend(*taken, name);
    return name;
}

struct SplitVars {
    List *vars;  // Var *, each once: the columns of the input the outer query reads
    Index varno;  // (mapping) the input's range table index
};

bool collect_vars(Node *n, SplitVars *c) {
    if (!n) return false;
    if (IsA(n, Var) && reinterpret_cast<Var *>(n)->varlevelsup == 0) {
        ListCell *lc;
        foreach (lc, c->vars)
            if (equal(lfirst(lc), n)) return false;
        c->vars = lappend(c->vars, n);
        return false;
    }
    return expression_tree_walker(n, reinterpret_cast<bool (*)()>(collect_vars), c);
}

Node *map_vars(Node *n, SplitVars *c) {
    if (!n) return nullptr;
    if (IsA(n, Var) && reinterpret_cast<Var *>(n)->varlevelsup == 0) {
        int i = 1;
        ListCell *lc;
        foreach (lc, c->vars) {
            if (equal(lfirst(lc), n)) {
                Var *v = static_cast<Var *>(copyObjectImpl(n));
                v->varno = v->varnosyn = c->varno;
                v->varattno = v->varattnosyn = static_cast<AttrNumber>(i);
                return reinterpret_cast<Node *>(v);
            }
            i++;
        }
    }
    return expression_tree_mutator(n, reinterpret_cast<Node *(*)()>(map_vars), c);
}

// The deparsed query, every table schema-qualified.
char *deparse_qualified(Query *q) {
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    char *text = pg_get_querydef(q, false);
    AtEOXact_GUC(true, nest);
    return text;
}

// A set operation of UNIONs without ALL only.
bool union_distinct(Node *n) {
    if (IsA(n, RangeTblRef)) return true;
    SetOperationStmt *op = castNode(SetOperationStmt, n);
    return op->op == SETOP_UNION && !op->all && union_distinct(op->larg) && union_distinct(op->rarg);
}

void make_union_all(Node *n) {
    if (!IsA(n, SetOperationStmt)) return;
    SetOperationStmt *op = reinterpret_cast<SetOperationStmt *>(n);
    op->all = true;
    op->groupClauses = NIL;
    make_union_all(op->larg);
    make_union_all(op->rarg);
}

// add_view of a query the engine maintains only over a view of its own input: aggregates,
// DISTINCT or a ranking over anything but one table (a join, a subquery), or a subquery in FROM
// that is not one table. With input 0: that input's query (NULL: no split); with the input's
// table made (a view named <view>_sgivm_in): the query over it.
char *split_view(const char *query_text, Oid input) {
    // (errors point into the view's query, as add_view's analysis reports them)
    ErrorQuery eq{query_text};
    ErrorContextCallback cb;
    cb.callback = view_query_error_callback;
    cb.arg = &eq;
    cb.previous = error_context_stack;
    error_context_stack = &cb;
    List *raw = raw_parser(query_text, RAW_PARSE_DEFAULT);
    if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt)) {
        error_context_stack = cb.previous;
        return nullptr;
    }
    Query *q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), query_text, nullptr, 0, nullptr);
    error_context_stack = cb.previous;
    if (q->commandType != CMD_SELECT || q->utilityStmt) return nullptr;
    if (q->setOperations) {
        // UNION: DISTINCT over the UNION ALL of the same branches
        if (!union_distinct(q->setOperations) || q->sortClause || q->limitCount || q->limitOffset) return nullptr;
        if (!OidIsValid(input)) {
            make_union_all(q->setOperations);
            return deparse_qualified(q);
        }
        List *cols = NIL;
        ListCell *lc;
        foreach (lc, q->targetList) {
            TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
            if (!tle->resjunk) cols = lappend(cols, const_cast<char *>(quote_identifier(tle->resname)));
        }
        StringInfoData sql;
        initStringInfo(&sql);
        appendStringInfoString(&sql, "SELECT DISTINCT ");
        int n = 0;
        foreach (lc, cols) appendStringInfo(&sql, "%s%s", n++ ? ", " : "", static_cast<char *>(lfirst(lc)));
        appendStringInfo(&sql, " FROM %s sgivm_in", qualified_name(input));
        return sql.data;
    }
    ctes_to_subqueries(q, NIL);
    q = unwrap_renaming(q);
    Analysis dummy;
    memset(&dummy, 0, sizeof dummy);
    if (top_n_inner(q, &dummy) != q) return nullptr;
    q = inline_subqueries(q, false);
    // a subquery in FROM that stays: its own view, read as a table under the subquery's alias
    for (int s = 1; s <= list_length(q->rtable); s++) {
        RangeTblEntry *rte = rt_fetch(s, q->rtable);
        if (rte->rtekind != RTE_SUBQUERY || !rte->inFromCl) continue;
        if (!OidIsValid(input)) {
            Query *sq = rte->subquery;
            List *taken = NIL;
            int i = 0;
            ListCell *lc;
            foreach (lc, sq->targetList) {
                TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
                if (tle->resjunk) continue;
                tle->resname = unique_name(&taken, strVal(list_nth(rte->eref->colnames, i++)));
            }
            return deparse_qualified(sq);
        }
        rte->rtekind = RTE_RELATION;
        rte->relid = input;
        rte->relkind = RELKIND_RELATION;
        rte->rellockmode = AccessShareLock;
        rte->subquery = nullptr;
        rte->requiredPerms = ACL_SELECT;
        rte->inh = true;
        rte->alias = makeAlias(rte->eref->aliasname, NIL);
        return deparse_qualified(q);
    }
    bool aggregate = q->hasAggs || q->groupClause || q->havingQual || q->distinctClause || q->hasWindowFuncs;
    bool one_table = list_length(q->jointree->fromlist) == 1 && IsA(linitial(q->jointree->fromlist), RangeTblRef) &&
                     !q->hasSubLinks && rt_fetch(reinterpret_cast<RangeTblRef *>(linitial(q->jointree->fromlist))->rtindex, q->rtable)->rtekind == RTE_RELATION;
    if (!aggregate || one_table || q->hasDistinctOn || q->groupingSets || q->sortClause || q->limitCount || q->limitOffset)
        return nullptr;
    // aggregates over a join: the join's rows (the columns the rest reads) are the input view
    q->targetList = reinterpret_cast<List *>(flatten_join_alias_vars(q, reinterpret_cast<Node *>(q->targetList)));
    q->havingQual = flatten_join_alias_vars(q, q->havingQual);
    SplitVars c{NIL, 1};
    (void)collect_vars(reinterpret_cast<Node *>(q->targetList), &c);
    (void)collect_vars(q->havingQual, &c);
    if (c.vars == NIL) return nullptr;
    if (!OidIsValid(input)) {
        Query *in = static_cast<Query *>(copyObjectImpl(q));
        in->targetList = NIL;
        List *taken = NIL;
        ListCell *lc;
        foreach (lc, c.vars) {
            Var *v = static_cast<Var *>(lfirst(lc));
            RangeTblEntry *rte = rt_fetch(v->varno, q->rtable);
            char *col = v->varattno > 0 ? get_rte_attribute_name(rte, v->varattno) : pstrdup("row");
            char *name = unique_name(&taken, psprintf("%s_%s", rte->eref->aliasname, col));
            in->targetList = lappend(in->targetList, makeTargetEntry(static_cast<Expr *>(copyObjectImpl(v)),
                                                                     static_cast<AttrNumber>(list_length(in->targetList) + 1), name, false));
        }
        in->hasAggs = false;
        in->hasWindowFuncs = false;
        in->groupClause = NIL;
        in->havingQual = nullptr;
        in->windowClause = NIL;
        in->distinctClause = NIL;
        return deparse_qualified(in);
    }
    RangeTblEntry *rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = input;
    rte->relkind = RELKIND_RELATION;
    rte->rellockmode = AccessShareLock;
    rte->alias = makeAlias("sgivm_in", NIL);
    rte->eref = makeAlias("sgivm_in", NIL);
    Relation r = table_open(input, AccessShareLock);
    for (int i = 0; i < RelationGetDescr(r)->natts; i++)
        rte->eref->colnames = lappend(rte->eref->colnames, makeString(pstrdup(NameStr(TupleDescAttr(RelationGetDescr(r), i)->attname))));
    table_close(r, AccessShareLock);
    rte->inh = true;
    rte->inFromCl = true;
    rte->requiredPerms = ACL_SELECT;
    q->targetList = reinterpret_cast<List *>(map_vars(reinterpret_cast<Node *>(q->targetList), &c));
    q->havingQual = map_vars(q->havingQual, &c);
    q->rtable = list_make1(rte);
    RangeTblRef *ref = makeNode(RangeTblRef);
    ref->rtindex = 1;
    q->jointree = makeFromExpr(list_make1(ref), nullptr);
    q->hasSubLinks = false;
    return deparse_qualified(q);
}

// ---- UNION ALL: branches of general joins ------------------------------------------------------

// What a branch of a UNION ALL may be: a general join (no aggregates, DISTINCT, ORDER BY...).
void check_branch(Query *b) {
    if (b->hasAggs || b->groupClause || b->havingQual || b->hasWindowFuncs || b->groupingSets)
        refuse("aggregates in a branch of UNION ALL", "Define the branch as a view of its own (add_view) and select from that view in the branch.");
    if (b->distinctClause) refuse("DISTINCT in a branch of UNION ALL", "Write UNION (without ALL) over the branches instead.");
    if (b->sortClause || b->limitCount || b->limitOffset) refuse("ORDER BY or LIMIT in a branch of UNION ALL", nullptr);
    if (b->hasTargetSRFs) refuse("set-returning functions", nullptr);
    if (b->rowMarks) refuse("FOR UPDATE/SHARE", nullptr);
    const char *what = "a subquery in an expression";
    if (b->hasSubLinks && (sublink_walker(reinterpret_cast<Node *>(b->targetList), &what) ||
                           sublink_walker(reinterpret_cast<Node *>(b->jointree->fromlist), &what)))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("stategrid_ivm cannot maintain a view with %s outside WHERE", what)));
    if (contain_mutable_functions(reinterpret_cast<Node *>(b->jointree)))
        refuse("a non-immutable function in WHERE or a JOIN condition", "Only now()-style audit columns may be non-immutable.");
    AttrNumber sysatt = 0;
    if (system_column_walker(reinterpret_cast<Node *>(b->targetList), &sysatt) ||
        system_column_walker(reinterpret_cast<Node *>(b->jointree), &sysatt))
        refuse("a system column", "Select the table's own columns.");
    ListCell *lc;
    foreach (lc, b->rtable) {
        RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
        if (rte->rtekind == RTE_RELATION && !rte->alias) rte->alias = makeAlias(rte->eref->aliasname, NIL);
        if (rte->rtekind == RTE_RELATION && rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm views read tables; \"%s\" is not a table", get_rel_name(rte->relid))));
        if (rte->rtekind == RTE_FUNCTION) refuse("a function in FROM", nullptr);
        if (rte->rtekind == RTE_VALUES) refuse("VALUES in FROM", nullptr);
        if (rte->tablesample) refuse("TABLESAMPLE", nullptr);
    }
}

// The set operation's leaves (RangeTblRef indexes), left to right; refuses all but UNION ALL.
List *union_leaves(Node *n, List *leaves) {
    if (IsA(n, RangeTblRef)) return lappend_int(leaves, reinterpret_cast<RangeTblRef *>(n)->rtindex);
    SetOperationStmt *op = castNode(SetOperationStmt, n);
    if (op->op != SETOP_UNION)
        refuse(op->op == SETOP_INTERSECT ? "INTERSECT" : "EXCEPT", "UNION ALL and UNION are maintained; INTERSECT and EXCEPT are not.");
    if (!op->all) refuse("UNION inside UNION ALL", "Use UNION ALL throughout, or UNION throughout.");
    leaves = union_leaves(op->larg, leaves);
    return union_leaves(op->rarg, leaves);
}

void extend_setop_columns(Node *n, Oid type, int32 typmod, Oid coll) {
    if (!IsA(n, SetOperationStmt)) return;
    SetOperationStmt *op = reinterpret_cast<SetOperationStmt *>(n);
    op->colTypes = lappend_oid(op->colTypes, type);
    op->colTypmods = lappend_int(op->colTypmods, typmod);
    op->colCollations = lappend_oid(op->colCollations, coll);
    extend_setop_columns(op->larg, type, typmod, coll);
    extend_setop_columns(op->rarg, type, typmod, coll);
}

// UNION ALL of general joins: every branch's occurrences are the view's, each keyed by columns
// of its own (NULL in the other branches' rows), and each branch computes its own rows.
void analyse_union(Query *q, Analysis *a) {
    List *leaves = union_leaves(q->setOperations, NIL);
    List *names = NIL;  // the view's column names, then the key columns added
    ListCell *lc;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        if (!tle->resjunk && tle->resname) names = lappend(names, tle->resname);
    }
    List *branch_of = NIL;  // per occurrence, its leaf's position
    int b = 0;
    foreach (lc, leaves) {
        RangeTblEntry *rte = rt_fetch(lfirst_int(lc), q->rtable);
        Query *leaf = inline_subqueries(rte->subquery, true);
        rte->subquery = leaf;
        check_branch(leaf);
        JoinWalk w{leaf, a, NIL, NIL, NIL};
        walk_query(&w);
        int base = list_length(a->occs);
        ListCell *e;
        foreach (e, w.edges) {
            JoinEdge *edge = static_cast<JoinEdge *>(lfirst(e));
            if (edge->from_occ >= 0) edge->from_occ += base;
            edge->to_occ += base;
        }
        foreach (e, w.occs) branch_of = lappend_int(branch_of, b);
        a->occs = list_concat(a->occs, w.occs);
        a->edges = list_concat(a->edges, w.edges);
        foreach (e, w.lookups) {
            JoinLookup *l = static_cast<JoinLookup *>(lfirst(e));
            bool seen = false;
            ListCell *x;
            foreach (x, a->lookups)
                seen = seen || (static_cast<JoinLookup *>(lfirst(x))->input == l->input && strcmp(static_cast<JoinLookup *>(lfirst(x))->column, l->column) == 0);
            if (!seen) a->lookups = lappend(a->lookups, l);
        }
        b++;
    }
    // each occurrence's key: columns of its own in every branch (its values in its branch's rows)
    int leftmost = linitial_int(leaves);
    int i = 0;
    ListCell *oc, *bc;
    forboth(oc, a->occs, bc, branch_of) {
        JoinOcc *o = static_cast<JoinOcc *>(lfirst(oc));
        o->branch = lfirst_int(bc);
        Query *own = rt_fetch(list_nth_int(leaves, o->branch), q->rtable)->subquery;
        RangeTblEntry *orte = rt_fetch(o->rtindex, own->rtable);
        ListCell *k;
        foreach (k, o->key) {
            const char *col = static_cast<char *>(lfirst(k));
            AttrNumber att = get_attnum(orte->relid, col);
            Oid type, coll;
            int32 typmod;
            get_atttypetypmodcoll(orte->relid, att, &type, &typmod, &coll);
            char *name = psprintf("sgivm_%s_%s", o->alias, col);
            if (strlen(name) >= NAMEDATALEN) name = psprintf("sgivm_key_%d_%d", i + 1, list_length(o->view_key) + 1);
            name = unique_name(&names, name);
            ListCell *l;
            foreach (l, leaves) {
                RangeTblEntry *lrte = rt_fetch(lfirst_int(l), q->rtable);
                Query *leaf = lrte->subquery;
                Expr *value = leaf == own ? reinterpret_cast<Expr *>(makeVar(o->rtindex, att, type, typmod, coll, 0))
                                          : reinterpret_cast<Expr *>(makeNullConst(type, typmod, coll));
                leaf->targetList = lappend(leaf->targetList,
                                           makeTargetEntry(value, static_cast<AttrNumber>(list_length(leaf->targetList) + 1), name, false));
                lrte->eref->colnames = lappend(lrte->eref->colnames, makeString(name));
            }
            q->targetList = lappend(q->targetList,
                                    makeTargetEntry(reinterpret_cast<Expr *>(makeVar(leftmost, static_cast<AttrNumber>(list_length(q->targetList) + 1), type, typmod, coll, 0)),
                                                    static_cast<AttrNumber>(list_length(q->targetList) + 1), name, false));
            extend_setop_columns(q->setOperations, type, typmod, coll);
            o->view_key = lappend(o->view_key, name);
            a->key = lappend(a->key, name);
        }
        i++;
    }
    // each branch's rows under the view's column names, and its compute step (a placeholder in
    // its WHERE)
    foreach (lc, leaves) {
        Query *leaf = rt_fetch(lfirst_int(lc), q->rtable)->subquery;
        ListCell *t, *n;
        forboth(t, leaf->targetList, n, names) static_cast<TargetEntry *>(lfirst(t))->resname = static_cast<char *>(lfirst(n));
        Param *scope = makeNode(Param);
        scope->paramkind = PARAM_EXTERN;
        scope->paramid = 20001;  // sgivm::kScopeParam
        scope->paramtype = BOOLOID;
        scope->paramtypmod = -1;
        scope->location = -1;
        Node *quals = leaf->jointree->quals;
        leaf->jointree->quals = quals ? reinterpret_cast<Node *>(makeBoolExpr(AND_EXPR, list_make2(quals, scope), -1))
                                      : reinterpret_cast<Node *>(scope);
        a->branch_templates = lappend(a->branch_templates, deparse_qualified(leaf));
        leaf->jointree->quals = quals;
    }
    a->general_join = true;
}

void analyse(const char *query_text, Oid view_relid, Analysis *a) {
    memset(a, 0, sizeof *a);
    ErrorQuery eq{query_text};
    ErrorContextCallback cb;
    cb.callback = view_query_error_callback;
    cb.arg = &eq;
    cb.previous = error_context_stack;
    error_context_stack = &cb;

    List *raw = raw_parser(query_text, RAW_PARSE_DEFAULT);
    if (list_length(raw) != 1) refuse("more than one statement", "Pass a single SELECT.");
    RawStmt *rs = linitial_node(RawStmt, raw);
    if (!IsA(rs->stmt, SelectStmt)) refuse("a statement other than SELECT", "Views are defined by a SELECT.");
    Query *q = parse_analyze_fixedparams(rs, query_text, nullptr, 0, nullptr);
    error_context_stack = cb.previous;
    // Top-N: the ranking as a subquery, filtered to its first N. The rest analyses the ranking
    // (the inner query); the view's query, for its table and for verify(), stays the whole.
    ctes_to_subqueries(q, NIL);
    q = unwrap_renaming(q);
    Query *outer = q;
    q = top_n_inner(q, a);
    if (q == outer) {
        q = inline_subqueries(q, true);
        outer = q;
    }

    // What the engine cannot maintain, before anything about names and keys: the first error
    // names the construct that is really unsupported.
    if (q->commandType != CMD_SELECT || q->utilityStmt)
        refuse("SELECT INTO", "add_view creates the view's table: pass the SELECT alone.");
    if (q->hasDistinctOn) refuse("DISTINCT ON", "Use GROUP BY, or ROW_NUMBER in a ranking view.");
    const bool distinct = q->distinctClause != NIL;
    if (distinct) distinct_as_group_by(q);
    if (q->sortClause) refuse("ORDER BY", "A maintained table has no order: order when you query it.");
    if (q->limitCount || q->limitOffset) refuse("LIMIT/OFFSET", "Filter with WHERE, or rank with ROW_NUMBER.");
    if (q->hasSubLinks) {
        // EXISTS / IN / NOT EXISTS / NOT IN in the WHERE of a view without aggregates (a
        // general join) are maintained; elsewhere a subquery is refused
        const char *what = "a subquery in an expression";
        bool aggregate = q->hasAggs || q->groupClause != NIL || q->havingQual || q->hasWindowFuncs;
        if (sublink_walker(reinterpret_cast<Node *>(q->targetList), &what) ||
            sublink_walker(reinterpret_cast<Node *>(q->jointree->fromlist), &what) || sublink_walker(q->havingQual, &what))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a view with %s outside WHERE", what),
                            errhint("EXISTS, IN, NOT EXISTS and NOT IN are maintained in WHERE; join the table instead, or aggregate it in a view of its own and join that view.")));
        if (aggregate && sublink_walker(q->jointree->quals, &what))
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a view with %s and aggregates", what),
                            errhint("Define the filtered rows as a view of its own (add_view) and aggregate over that view.")));
    }
    if (q->cteList) refuse("WITH", "Define each step as its own view.");
    if (q->hasTargetSRFs) refuse("set-returning functions", nullptr);
    if (q->groupingSets) refuse("GROUPING SETS, ROLLUP or CUBE", "Define one view per grouping.");
    if (q->rowMarks) refuse("FOR UPDATE/SHARE", nullptr);
    ListCell *lc;
    foreach (lc, q->rtable)
        if (static_cast<RangeTblEntry *>(lfirst(lc))->tablesample)
            refuse("TABLESAMPLE", "A sample is random: no change to the table tells which rows it holds. Maintain the whole table and sample it when you query it.");
    AttrNumber sysatt = 0;
    if (system_column_walker(reinterpret_cast<Node *>(q->targetList), &sysatt) ||
        system_column_walker(reinterpret_cast<Node *>(q->jointree), &sysatt) || system_column_walker(q->havingQual, &sysatt))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("stategrid_ivm cannot maintain a view with system column %s",
                               NameStr(SystemAttributeDefinition(sysatt)->attname)),
                        errhint("System columns (xmin, ctid, tableoid...) describe where and by whom a row version was "
                                "written, not the data: select the table's own columns.")));
    bool any_column = false;
    foreach (lc, q->targetList) any_column = any_column || !static_cast<TargetEntry *>(lfirst(lc))->resjunk;
    if (!any_column) refuse("an empty select list", "Select the columns the table is to hold, its key among them.");
    check_functions_walker(reinterpret_cast<Node *>(q->targetList), nullptr);
    check_functions_walker(q->havingQual, nullptr);
    // Non-immutable functions: only output columns without data may call the clock (audit
    // columns); whatever decides which rows there are, or how they group and rank, may not.
    if (contain_mutable_functions(q->jointree->quals) || contain_mutable_functions(q->havingQual))
        refuse("a non-immutable function in WHERE or HAVING", "Only now()-style audit columns may be non-immutable.");
    if (contain_mutable_functions(reinterpret_cast<Node *>(q->jointree)))
        refuse("a non-immutable function in a JOIN condition", "Only now()-style audit columns may be non-immutable.");
    bool mutable_key = false;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        if ((tle->resjunk || tle->ressortgroupref) && contain_mutable_functions(reinterpret_cast<Node *>(tle->expr)))
            mutable_key = true;
    }
    foreach (lc, q->windowClause) {
        WindowClause *wc = static_cast<WindowClause *>(lfirst(lc));
        mutable_key = mutable_key || contain_mutable_functions(wc->startOffset) || contain_mutable_functions(wc->endOffset);
    }
    if (mutable_key && distinct)
        refuse("a non-immutable function in a DISTINCT column",
               "DISTINCT compares every column: select the clock (now() AS etl_time) in a view over this one.");
    if (mutable_key)
        refuse("a non-immutable function in GROUP BY or in a window's PARTITION BY, ORDER BY or frame",
               "Group and rank by the data: only output columns like now() AS etl_time may be non-immutable.");
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        Node *e = reinterpret_cast<Node *>(tle->expr);
        if (tle->resjunk || !contain_mutable_functions(e)) continue;
        if (!has_vars_or_aggs(e) && !non_clock_mutable_walker(e, nullptr)) continue;  // an audit column
        bool named = tle->resname && strcmp(tle->resname, "?column?") != 0;
        const char *what = has_vars_or_aggs(e) ? "on the data" : "other than the clock";
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        named ? errmsg("stategrid_ivm cannot maintain column \"%s\": it calls a non-immutable function %s",
                                       tle->resname, what)
                              : errmsg("stategrid_ivm cannot maintain column %d of the view: it calls a non-immutable function %s",
                                       tle->resno, what),
                        errhint("Only audit columns like now() AS etl_time may be non-immutable.")));
    }
    a->aggregate = q->hasAggs || q->groupClause != NIL || q->havingQual;
    if (q->hasWindowFuncs && !a->aggregate)
        refuse("a window function without GROUP BY", "Rank the rows of an aggregate view (GROUP BY ... with ROW_NUMBER() OVER (PARTITION BY ... ORDER BY sum(...)).");

    // Inputs: every range table entry must be a plain table.
    foreach (lc, q->rtable) {
        RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
        if (rte->rtekind == RTE_SUBQUERY && !rte->inFromCl) continue;  // inlined
        if (rte->rtekind == RTE_SUBQUERY) refuse("a subquery in FROM", "Define the subquery as its own view and select from that.");
        if (rte->rtekind == RTE_FUNCTION) refuse("a function in FROM", nullptr);
        if (rte->rtekind == RTE_VALUES) refuse("VALUES in FROM", nullptr);
        if (rte->rtekind == RTE_RELATION) {
            if (rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_PARTITIONED_TABLE)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("stategrid_ivm views read tables; \"%s\" is not a table", get_rel_name(rte->relid)),
                                errhint("Name the pipeline's ODS mirrors or other maintained views.")));
            if (!rte->alias) rte->alias = makeAlias(rte->eref->aliasname, NIL);
        }
    }

    // FROM: a fact table with dimensions (or an aggregate's one input), else a general join.
    a->general_join = !a->aggregate && !fact_with_dimensions(q);
    if (q->setOperations)
        analyse_union(q, a);
    else if (a->general_join)
        analyse_join(q, a);
    int fact_index = 0;
    RangeTblEntry *fact = nullptr;
    if (!a->general_join) {
    if (list_length(q->jointree->fromlist) != 1)
        refuse(list_length(q->jointree->fromlist) == 0 ? "no FROM clause" : "a comma-separated FROM list",
               "Write joins as JOIN ... ON fact.column = dimension.column.");
    Node *from = static_cast<Node *>(linitial(q->jointree->fromlist));
    List *dims = NIL;  // RangeTblRef index of each dimension, in join order
    while (IsA(from, JoinExpr)) {
        JoinExpr *j = reinterpret_cast<JoinExpr *>(from);
        if (j->jointype == JOIN_FULL) refuse("FULL JOIN", "Use LEFT JOIN from the fact table.");
        if (j->jointype == JOIN_RIGHT) refuse("RIGHT JOIN", "Swap the tables and use LEFT JOIN from the fact table.");
        if (j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT) refuse("this kind of join", nullptr);
        if (!IsA(j->rarg, RangeTblRef))
            refuse("a join whose right side is not a table", "Join the fact table to one dimension table at a time.");
        dims = lcons(j, dims);
        from = j->larg;
    }
    if (!IsA(from, RangeTblRef)) refuse("this FROM clause", nullptr);
    fact_index = reinterpret_cast<RangeTblRef *>(from)->rtindex;
    fact = rt_fetch(fact_index, q->rtable);
    if (fact->rtekind != RTE_RELATION) refuse("this FROM clause", nullptr);
    a->input_relids = lappend_oid(a->input_relids, fact->relid);
    a->input_names = lappend(a->input_names, qualified_name(fact->relid));
    a->input_columns = lappend(a->input_columns, columns_used(q, fact_index, fact->relid));
    if (a->aggregate && dims != NIL)
        refuse("GROUP BY over a join", "Define the join as a view (like dwd_power_consumption_detail) and aggregate over that view.");
    foreach (lc, dims) {
        JoinExpr *j = static_cast<JoinExpr *>(lfirst(lc));
        int dim_index = reinterpret_cast<RangeTblRef *>(j->rarg)->rtindex;
        RangeTblEntry *dim = rt_fetch(dim_index, q->rtable);
        if (dim->rtekind != RTE_RELATION) refuse("this join", nullptr);
        // The ON clause: exactly fact.column = dimension.column.
        Node *quals = j->quals;
        OpExpr *op = quals && IsA(quals, OpExpr) ? reinterpret_cast<OpExpr *>(quals) : nullptr;
        char *opname = op ? get_opname(op->opno) : nullptr;
        Var *l = op && list_length(op->args) == 2 ? plain_var(static_cast<Node *>(linitial(op->args))) : nullptr;
        Var *r = op && list_length(op->args) == 2 ? plain_var(static_cast<Node *>(lsecond(op->args))) : nullptr;
        if (!op || !opname || strcmp(opname, "=") != 0 || !l || !r)
            refuse("a join condition other than fact.column = dimension.column",
                   "Join on one equality between a column of the fact table and a column of the dimension.");
        if (l->varno == dim_index) std::swap(l, r);
        if (l->varno != fact_index || r->varno != dim_index || l->varlevelsup || r->varlevelsup)
            refuse("a join that does not start from the fact table",
                   "Each JOIN must compare a column of the first table in FROM with the joined table.");
        // A dimension row per fact row at most: the join column must be the dimension's key.
        List *dim_key = key_columns_of(dim->relid);
        char *dim_col = get_attname(dim->relid, r->varattno, false);
        if (list_length(dim_key) != 1 || strcmp(static_cast<char *>(linitial(dim_key)), dim_col) != 0)
            ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                            errmsg("stategrid_ivm cannot maintain a join on %s.%s: it is not the key of that table",
                                   qualified_name(dim->relid), dim_col),
                            errhint("Join the fact table to a dimension on the dimension's primary key, so that each fact row meets at most one dimension row.")));
        a->input_relids = lappend_oid(a->input_relids, dim->relid);
        a->input_names = lappend(a->input_names, qualified_name(dim->relid));
        a->input_columns = lappend(a->input_columns, columns_used(q, dim_index, dim->relid));
        a->join_inputs = lappend_int(a->join_inputs, list_length(a->input_relids) - 1);
        a->join_fact_cols = lappend(a->join_fact_cols, get_attname(fact->relid, l->varattno, false));
        a->join_dim_cols = lappend(a->join_dim_cols, get_attname(dim->relid, r->varattno, false));
    }
    }

    // Aggregates: the groups, and the scope a change recomputes -- all groups it touches, or a
    // ranking's whole partitions, whose PARTITION BY must be among the groups.
    List *ctx = a->aggregate ? deparse_context_for(fact->eref->aliasname, fact->relid) : NIL;
    List *group_tles = NIL;
    if (a->aggregate) {
        ListCell *g;
        foreach (g, q->groupClause)
            group_tles = lappend(group_tles, get_sortgroupclause_tle(static_cast<SortGroupClause *>(lfirst(g)), q->targetList));
        List *partition = NIL;
        bool first_window = true;
        foreach (g, q->windowClause) {
            WindowClause *wc = static_cast<WindowClause *>(lfirst(g));
            List *this_partition = NIL;
            ListCell *pc;
            foreach (pc, wc->partitionClause) {
                TargetEntry *ptle = get_sortgroupclause_tle(static_cast<SortGroupClause *>(lfirst(pc)), q->targetList);
                int found = -1, i = 0;
                ListCell *gt;
                foreach (gt, group_tles) {
                    if (equal(static_cast<TargetEntry *>(lfirst(gt))->expr, ptle->expr)) found = i;
                    i++;
                }
                if (found < 0)
                    refuse("a window PARTITION BY expression that is not a GROUP BY expression",
                           "Partition the ranking by grouped columns, e.g. PARTITION BY stat_date, region_id.");
                this_partition = list_append_unique_int(this_partition, found);
            }
            if (!first_window && !equal(this_partition, partition))
                refuse("window functions with different PARTITION BY", "Use the same PARTITION BY in every window.");
            partition = this_partition;
            first_window = false;
        }
        if (q->windowClause != NIL) {
            if (partition == NIL)
                refuse("a window function over the whole table", "Add PARTITION BY (e.g. the day and the region).");
            a->scope = partition;
        } else {
            for (int i = 0; i < list_length(group_tles); i++) a->scope = lappend_int(a->scope, i);
        }
    }

    // Output columns; now()-style columns (no data, not immutable) are audit columns.
    List *seen = NIL;
    foreach (lc, q->targetList) {
        TargetEntry *tle = static_cast<TargetEntry *>(lfirst(lc));
        if (tle->resjunk) continue;
        if (!tle->resname || strcmp(tle->resname, "?column?") == 0) {
            Node *e = reinterpret_cast<Node *>(tle->expr);
            if (a->aggregate && (contain_agg_clause(e) || contain_window_function(e))) {
                char *expr = deparse_expression(e, ctx, false, false);
                ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
                                errmsg("column %d of the view, %s, has no name", tle->resno, expr),
                                errhint("Name the aggregate expression with AS, e.g. %s AS total.", expr)));
            }
            ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_DEFINITION),
                            errmsg("column %d of the view has no name", tle->resno),
                            errhint("Give every computed column a name with AS.")));
        }
        ListCell *s;
        foreach (s, seen)
            if (strcmp(static_cast<char *>(lfirst(s)), tle->resname) == 0)
                ereport(ERROR, (errcode(ERRCODE_DUPLICATE_COLUMN),
                                errmsg("column \"%s\" appears twice in the view", tle->resname),
                                errhint("Rename one of them with AS.")));
        seen = lappend(seen, tle->resname);
        Node *e = reinterpret_cast<Node *>(tle->expr);
        bool audit = contain_mutable_functions(e);  // (the others were refused above)
        Oid type = exprType(e);
        int32 typmod = exprTypmod(e);
        if (type == UNKNOWNOID) type = TEXTOID;
        a->columns = lappend(a->columns, pstrdup(tle->resname));
        a->types = lappend(a->types, format_type_with_typemod(type, typmod));
        a->audit = lappend_int(a->audit, audit ? 1 : 0);
    }

    if (a->general_join) {
        // (the occurrences' keys: analyse_join)
    } else if (!a->aggregate) {
        List *fk = key_columns_of(fact->relid);
        if (fk == NIL)
            ereport(ERROR, (errcode(ERRCODE_INVALID_TABLE_DEFINITION),
                            errmsg("table %s has no primary key to key the view by", qualified_name(fact->relid))));
        foreach (lc, fk) {
            const char *col = static_cast<char *>(lfirst(lc));
            AttrNumber att = get_attnum(fact->relid, col);
            const char *out = nullptr;
            ListCell *t;
            foreach (t, q->targetList) {
                TargetEntry *tle = static_cast<TargetEntry *>(lfirst(t));
                Var *v = plain_var(reinterpret_cast<Node *>(tle->expr));
                if (!tle->resjunk && v && v->varno == fact_index && v->varattno == att && !v->varlevelsup) {
                    out = tle->resname;
                    break;
                }
            }
            if (!out)
                ereport(ERROR, (errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
                                errmsg("the view must select the key column \"%s\" of %s", col, qualified_name(fact->relid)),
                                errhint("Add %s to the select list: it keys the maintained rows.", col)));
            a->fact_key = lappend(a->fact_key, pstrdup(col));
            a->key = lappend(a->key, pstrdup(out));
        }
    } else {
        ListCell *g;
        foreach (g, group_tles) {
            TargetEntry *tle = static_cast<TargetEntry *>(lfirst(g));
            if (tle->resjunk)
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("GROUP BY expression %s must be a column of the view",
                                       deparse_expression(reinterpret_cast<Node *>(tle->expr), ctx, false, false)),
                                errhint("Add it to the select list: the groups key the maintained rows.")));
            a->group_exprs = lappend(a->group_exprs, deparse_expression(reinterpret_cast<Node *>(tle->expr), ctx, false, false));
            a->group_columns = lappend(a->group_columns, pstrdup(tle->resname));
            a->key = lappend(a->key, pstrdup(tle->resname));
        }
        plan_differential(q, group_tles, ctx, view_relid, a);
    }

    // Deparse with nothing on the search path, so every table is written schema-qualified.
    int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    a->deparsed = pg_get_querydef(outer, false);
    if (a->general_join && !q->setOperations) {
        // where each branch of the compute step restricts one occurrence to its touched rows
        Param *scope = makeNode(Param);
        scope->paramkind = PARAM_EXTERN;
        scope->paramid = 20001;  // sgivm::kScopeParam
        scope->paramtype = BOOLOID;
        scope->paramtypmod = -1;
        scope->location = -1;
        Node *quals = q->jointree->quals;
        q->jointree->quals = quals ? reinterpret_cast<Node *>(makeBoolExpr(AND_EXPR, list_make2(quals, scope), -1))
                                   : reinterpret_cast<Node *>(scope);
        a->compute_template = pg_get_querydef(q, false);
        q->jointree->quals = quals;
    }
    AtEOXact_GUC(true, nest);
}

}  // namespace

// stategrid_ivm._plan_view(query text, view_table regclass_or_0 oid, view_name text) -> jsonb text
extern "C" Datum sgivm_plan_view(PG_FUNCTION_ARGS) {
    char *query = text_to_cstring(PG_GETARG_TEXT_PP(0));
    Oid view_relid = PG_GETARG_OID(1);
    char *view_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
    Analysis a;
    analyse(query, view_relid, &a);
    char *json = sgivm::pg::run_cpp([&] {
        sgivm::ViewShape s;
        s.kind = a.aggregate ? sgivm::ViewShape::Kind::Aggregate : sgivm::ViewShape::Kind::Projection;
        s.view_table = view_name;
        s.view_relid = view_relid;
        s.deparsed = a.deparsed;
        ListCell *lc, *lc2;
        forboth(lc, a.input_relids, lc2, a.input_names) s.inputs.push_back(sgivm::ViewInput{lfirst_oid(lc), static_cast<char *>(lfirst(lc2))});
        forboth(lc, a.columns, lc2, a.types) {
            s.columns.emplace_back(static_cast<char *>(lfirst(lc)));
            s.types.emplace_back(static_cast<char *>(lfirst(lc2)));
        }
        foreach (lc, a.audit) s.audit.push_back(lfirst_int(lc) != 0);
        foreach (lc, a.key) s.key.emplace_back(static_cast<char *>(lfirst(lc)));
        foreach (lc, a.fact_key) s.fact_key.emplace_back(static_cast<char *>(lfirst(lc)));
        ListCell *lc3;
        forthree(lc, a.join_inputs, lc2, a.join_fact_cols, lc3, a.join_dim_cols)
            s.joins.push_back(sgivm::ViewShape::Join{static_cast<size_t>(lfirst_int(lc)), static_cast<char *>(lfirst(lc2)),
                                                     static_cast<char *>(lfirst(lc3))});
        forboth(lc, a.group_exprs, lc2, a.group_columns) {
            s.group_exprs.emplace_back(static_cast<char *>(lfirst(lc)));
            s.group_columns.emplace_back(static_cast<char *>(lfirst(lc2)));
        }
        foreach (lc, a.scope) s.scope.push_back(static_cast<size_t>(lfirst_int(lc)));
        foreach (lc, a.aggs) {
            const DiffAgg *d = static_cast<DiffAgg *>(lfirst(lc));
            s.aggregates.push_back(
                sgivm::ViewShape::Aggregate{static_cast<sgivm::ViewShape::Aggregate::Fn>(d->fn), d->arg, d->state_type, d->nan});
        }
        foreach (lc, a.group_types) s.group_types.emplace_back(static_cast<char *>(lfirst(lc)));
        foreach (lc, a.outputs) s.outputs.emplace_back(static_cast<char *>(lfirst(lc)));
        if (a.having) s.having = a.having;
        if (a.filter) s.filter = a.filter;
        if (a.fallback) s.fallback = a.fallback;
        if (a.state_schema) s.state_schema = a.state_schema;
        if (a.rank_fn && a.rank_keys) {
            s.rank_fn = a.rank_fn;
            s.rank_column = static_cast<size_t>(a.rank_column);
            foreach (lc, a.rank_keys) {
                const RankKey *k = static_cast<RankKey *>(lfirst(lc));
                s.rank_order.push_back(sgivm::ViewShape::RankKey{k->expr, k->type, k->desc, k->nulls_first});
            }
            foreach (lc, a.rank_partition) s.rank_partition.push_back(static_cast<size_t>(lfirst_int(lc)));
            s.top_n = a.top_n;
        }
        foreach (lc, a.occs) {
            const JoinOcc *o = static_cast<JoinOcc *>(lfirst(lc));
            sgivm::ViewShape::Occurrence occ;
            occ.input = static_cast<size_t>(o->input);
            occ.alias = o->alias;
            ListCell *k;
            foreach (k, o->key) occ.key.emplace_back(static_cast<char *>(lfirst(k)));
            foreach (k, o->view_key) occ.view_key.emplace_back(static_cast<char *>(lfirst(k)));
            occ.nullable = o->nullable;
            occ.branch = static_cast<size_t>(o->branch);
            s.occurrences.push_back(std::move(occ));
        }
        foreach (lc, a.edges) {
            const JoinEdge *e = static_cast<JoinEdge *>(lfirst(lc));
            sgivm::ViewShape::Edge edge;
            edge.kind = static_cast<sgivm::ViewShape::Edge::Kind>(e->kind);
            edge.from_input = static_cast<size_t>(e->from_input);
            edge.from_occ = e->from_occ;
            if (e->from_col) edge.from_col = e->from_col;
            edge.to_occ = static_cast<size_t>(e->to_occ);
            if (e->to_col) edge.to_col = e->to_col;
            s.edges.push_back(std::move(edge));
        }
        foreach (lc, a.lookups) {
            const JoinLookup *l = static_cast<JoinLookup *>(lfirst(lc));
            s.lookups.emplace_back(static_cast<size_t>(l->input), l->column);
        }
        if (a.compute_template) s.compute_template = a.compute_template;
        foreach (lc, a.branch_templates) s.branch_templates.emplace_back(static_cast<char *>(lfirst(lc)));
        foreach (lc, a.input_columns) {
            std::vector<std::string> cols;
            ListCell *c;
            foreach (c, static_cast<List *>(lfirst(lc))) cols.emplace_back(static_cast<char *>(lfirst(c)));
            s.input_columns.push_back(std::move(cols));
        }
        std::string j = sgivm::plan_to_json(s, sgivm::plan_view(s));
        return sgivm::pg::pg_call([&] { return pstrdup(j.c_str()); });
    });
    PG_RETURN_TEXT_P(cstring_to_text(json));
}

// stategrid_ivm._split_view(query text, input oid) -> text: split_view.
extern "C" Datum sgivm_split_view(PG_FUNCTION_ARGS) {
    char *out = split_view(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_OID(1));
    if (!out) PG_RETURN_NULL();
    PG_RETURN_TEXT_P(cstring_to_text(out));
}
