// The output columns of a view's query that can never be NULL: what lets a maintained table
// declare them NOT NULL and make its key a primary key (replica identity; docs/replication.md).
//
// Deliberately small and conservative: a column is proven only when its expression is a column
// of a table declared NOT NULL (directly, through a subquery in FROM, or through a join's merged
// column) that no outer join of the query null-extends, a non-NULL constant, a built-in cast of
// such a value, or a COALESCE with such an argument. Anything else (a function, an aggregate,
// GROUPING SETS, a set operation) counts as nullable. Plain PostgreSQL code: no C++ objects
// while PostgreSQL errors can unwind.
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/bitmapset.h"
#include "nodes/parsenodes.h"
#include "nodes/pg_list.h"
#include "parser/analyze.h"
#include "parser/parsetree.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(sgivm_not_null_columns);
}

namespace {

constexpr int kMaxDepth = 32;  // nested subqueries and joins followed, at most

bool never_null(Query *q, Node *e, int depth);

// The range table entries of q that an outer join null-extends (their rtindexes).
void mark_nullable(Node *jt, bool nullable, Bitmapset **out) {
    if (jt == nullptr) return;
    if (IsA(jt, RangeTblRef)) {
        if (nullable) *out = bms_add_member(*out, castNode(RangeTblRef, jt)->rtindex);
    } else if (IsA(jt, FromExpr)) {
        ListCell *lc;
        foreach (lc, castNode(FromExpr, jt)->fromlist) mark_nullable(static_cast<Node *>(lfirst(lc)), nullable, out);
    } else if (IsA(jt, JoinExpr)) {
        JoinExpr *j = castNode(JoinExpr, jt);
        if (nullable && j->rtindex > 0) *out = bms_add_member(*out, j->rtindex);
        mark_nullable(j->larg, nullable || (j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT), out);
        mark_nullable(j->rarg, nullable || (j->jointype != JOIN_INNER && j->jointype != JOIN_RIGHT), out);
    }
}

bool column_not_null(Oid relid, AttrNumber attnum) {
    HeapTuple tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
    if (!HeapTupleIsValid(tup)) return false;
    Form_pg_attribute att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tup));
    bool not_null = att->attnotnull && !att->attisdropped;
    ReleaseSysCache(tup);
    return not_null;
}

bool var_never_null(Query *q, Var *v, int depth) {
    if (v->varlevelsup != 0 || v->varattno <= 0 || q->groupingSets != NIL) return false;
    Bitmapset *nullable = nullptr;
    mark_nullable(reinterpret_cast<Node *>(q->jointree), false, &nullable);
    if (bms_is_member(static_cast<int>(v->varno), nullable)) return false;
    RangeTblEntry *rte = rt_fetch(v->varno, q->rtable);
    switch (rte->rtekind) {
        case RTE_RELATION:
            return column_not_null(rte->relid, v->varattno);
        case RTE_SUBQUERY: {
            Query *sub = rte->subquery;
            if (sub->setOperations != nullptr) return false;
            TargetEntry *te = get_tle_by_resno(sub->targetList, v->varattno);
            return te != nullptr && !te->resjunk && never_null(sub, reinterpret_cast<Node *>(te->expr), depth + 1);
        }
        case RTE_JOIN: {
            if (v->varattno > list_length(rte->joinaliasvars)) return false;
            Node *alias = static_cast<Node *>(list_nth(rte->joinaliasvars, v->varattno - 1));
            return alias != nullptr && never_null(q, alias, depth + 1);
        }
        default:
            return false;
    }
}

bool never_null(Query *q, Node *e, int depth) {
    if (e == nullptr || depth > kMaxDepth) return false;
    switch (nodeTag(e)) {
        case T_Const:
            return !castNode(Const, e)->constisnull;
        case T_Var:
            return var_never_null(q, castNode(Var, e), depth);
        case T_RelabelType:
            return never_null(q, reinterpret_cast<Node *>(castNode(RelabelType, e)->arg), depth + 1);
        case T_CoerceViaIO: {
            // a built-in type's input function gives a value (or an error) for every string
            CoerceViaIO *c = castNode(CoerceViaIO, e);
            return c->resulttype < FirstNormalObjectId && never_null(q, reinterpret_cast<Node *>(c->arg), depth + 1);
        }
        case T_FuncExpr: {
            // a built-in cast (timestamp to date, numeric(10,2)...) of non-NULL arguments
            FuncExpr *f = castNode(FuncExpr, e);
            if (f->funcformat != COERCE_EXPLICIT_CAST && f->funcformat != COERCE_IMPLICIT_CAST) return false;
            if (f->funcid >= FirstNormalObjectId || !func_strict(f->funcid)) return false;
            ListCell *lc;
            foreach (lc, f->args)
                if (!never_null(q, static_cast<Node *>(lfirst(lc)), depth + 1)) return false;
            return true;
        }
        case T_CoalesceExpr: {
            ListCell *lc;
            foreach (lc, castNode(CoalesceExpr, e)->args)
                if (never_null(q, static_cast<Node *>(lfirst(lc)), depth + 1)) return true;
            return false;
        }
        default:
            return false;
    }
}

}  // namespace

// _not_null_columns(query text) RETURNS name[]: the query's output columns proven never NULL.
// Parse analysis only (nothing runs); the caller runs it as the role the query belongs to.
extern "C" Datum sgivm_not_null_columns(PG_FUNCTION_ARGS) {
    char *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
    List *raw = pg_parse_query(sql);
    if (list_length(raw) != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("stategrid_ivm: expected one statement")));
    Query *q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql, nullptr, 0, nullptr);
    if (q->commandType != CMD_SELECT || q->utilityStmt != nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("stategrid_ivm: expected a SELECT")));
    ArrayBuildState *names = initArrayResult(NAMEOID, CurrentMemoryContext, false);
    if (q->setOperations == nullptr) {
        ListCell *lc;
        foreach (lc, q->targetList) {
            TargetEntry *te = lfirst_node(TargetEntry, lc);
            if (te->resjunk || te->resname == nullptr || !never_null(q, reinterpret_cast<Node *>(te->expr), 0)) continue;
            names = accumArrayResult(names, DirectFunctionCall1(namein, CStringGetDatum(te->resname)), false, NAMEOID,
                                     CurrentMemoryContext);
        }
    }
    PG_RETURN_DATUM(makeArrayResult(names, CurrentMemoryContext));
}
