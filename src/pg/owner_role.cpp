// The owner context of owner_role.hpp; _run_as, the one way the SQL functions of the extension
// run a statement of the user's (a view's populate, verify, CREATE TABLE) as the pipeline's
// owner; and the caller stamp by which they know who called them. Plain PostgreSQL calls, no C++ objects: errors unwind by longjmp, and the
// transaction (or subtransaction) abort restores the user id and the settings.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/rls.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(sgivm_run_as);
PG_FUNCTION_INFO_V1(sgivm_row_security_applies);
PG_FUNCTION_INFO_V1(sgivm_stamp_caller);
PG_FUNCTION_INFO_V1(sgivm_take_caller_stamp);
}

#include "pg/owner_role.hpp"

namespace sgivm::pg {

OwnerContext enter_owner_context(Oid owner, bool restricted) {
    if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role with OID %u does not exist", owner),
                        errhint("The pipeline's owner was dropped, or the database was restored into another cluster: "
                                "stategrid_ivm.rebuild_pipeline() gives the pipeline the owner of its tables.")));
    OwnerContext ctx;
    GetUserIdAndSecContext(&ctx.saved_user, &ctx.saved_sec_context);
    ctx.guc_level = NewGUCNestLevel();
    restrict_owner_context(ctx, owner, restricted);
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                            false);
    return ctx;
}

void restrict_owner_context(const OwnerContext &ctx, Oid owner, bool restricted) {
    SetUserIdAndSecContext(owner, ctx.saved_sec_context | SECURITY_LOCAL_USERID_CHANGE |
                                      (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
}

void leave_owner_context(OwnerContext &ctx) {
    if (ctx.guc_level < 0) return;
    AtEOXact_GUC(false, ctx.guc_level);
    SetUserIdAndSecContext(ctx.saved_user, ctx.saved_sec_context);
    ctx.guc_level = -1;
}

bool row_security_applies(Oid rel, Oid role) {
    // noError: with row_security = off, PostgreSQL would raise instead of filtering; either
    // way the owner does not see every row.
    return check_enable_rls(rel, role, true) == RLS_ENABLED;
}

}  // namespace sgivm::pg

// stategrid_ivm._row_security_applies(rel oid, role oid) -> boolean: whether the table's
// row-level security policies filter what the role reads (check_enable_rls: not if the role
// is a superuser or has BYPASSRLS, nor if it owns the table and the table has no FORCE ROW
// LEVEL SECURITY).
extern "C" Datum sgivm_row_security_applies(PG_FUNCTION_ARGS) {
    PG_RETURN_BOOL(sgivm::pg::row_security_applies(PG_GETARG_OID(0), PG_GETARG_OID(1)));
}

// stategrid_ivm._run_as(role oid, sql text, search_path text) -> text[]
// Runs one statement as `role` in an owner context (search_path, if given, instead of
// pg_catalog, pg_temp) and returns the first row of its result as text, or, for a statement
// that returns no rows, the number of rows it processed. Only for the extension's own SECURITY
// DEFINER functions: a superuser may become anybody.
extern "C" Datum sgivm_run_as(PG_FUNCTION_ARGS) {
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for function _run_as"),
                        errdetail("It is internal to stategrid_ivm.")));
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("_run_as needs a role and a statement")));
    Oid role = PG_GETARG_OID(0);
    char *sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
    char *search_path = PG_ARGISNULL(2) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(2));
    MemoryContext caller = CurrentMemoryContext;

    sgivm::pg::OwnerContext ctx = sgivm::pg::enter_owner_context(role);
    if (search_path)
        (void)set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "stategrid_ivm: SPI_connect failed");
    int rc = SPI_execute(sql, false, 0);
    if (rc < 0) elog(ERROR, "stategrid_ivm: %s failed: %s", sql, SPI_result_code_string(rc));
    int n = 1;
    Datum *values;
    bool *nulls;
    MemoryContext old = MemoryContextSwitchTo(caller);
    if (SPI_tuptable && SPI_tuptable->tupdesc) {
        n = SPI_processed > 0 ? SPI_tuptable->tupdesc->natts : 0;
        values = static_cast<Datum *>(palloc0(sizeof(Datum) * Max(n, 1)));
        nulls = static_cast<bool *>(palloc0(sizeof(bool) * Max(n, 1)));
        for (int i = 0; i < n; i++) {
            char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
            nulls[i] = v == nullptr;
            if (v) values[i] = CStringGetTextDatum(v);
        }
    } else {
        values = static_cast<Datum *>(palloc0(sizeof(Datum)));
        nulls = static_cast<bool *>(palloc0(sizeof(bool)));
        values[0] = CStringGetTextDatum(psprintf(UINT64_FORMAT, SPI_processed));
    }
    int dims[1] = {n};
    int lbs[1] = {1};
    ArrayType *result = n == 0 ? construct_empty_array(TEXTOID)
                               : construct_md_array(values, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
    MemoryContextSwitchTo(old);
    SPI_finish();
    sgivm::pg::leave_owner_context(ctx);
    PG_RETURN_ARRAYTYPE_P(result);
}

// The caller stamp of the SQL functions (stategrid_ivm--0.3.0.sql, _caller): a public
// function, running as its caller, stamps current_user; the SECURITY DEFINER implementation it
// calls takes the caller only if it matches the stamp, which it uses up. The end of the
// transaction, or an aborted subtransaction, forgets a stamp nobody took.
namespace {

Oid stamped_caller = InvalidOid;
bool stamp_callbacks_registered = false;

void forget_stamp_at_xact_end(XactEvent, void *) { stamped_caller = InvalidOid; }
void forget_stamp_at_subxact_abort(SubXactEvent event, SubTransactionId, SubTransactionId, void *) {
    if (event == SUBXACT_EVENT_ABORT_SUB) stamped_caller = InvalidOid;
}

}  // namespace

extern "C" Datum sgivm_stamp_caller(PG_FUNCTION_ARGS) {
    if (!stamp_callbacks_registered) {
        RegisterXactCallback(forget_stamp_at_xact_end, nullptr);
        RegisterSubXactCallback(forget_stamp_at_subxact_abort, nullptr);
        stamp_callbacks_registered = true;
    }
    stamped_caller = GetUserId();
    PG_RETURN_OID(stamped_caller);
}

extern "C" Datum sgivm_take_caller_stamp(PG_FUNCTION_ARGS) {
    Oid role = PG_GETARG_OID(0);
    bool matches = OidIsValid(stamped_caller) && stamped_caller == role;
    stamped_caller = InvalidOid;
    PG_RETURN_BOOL(matches);
}
