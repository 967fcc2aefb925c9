// Maintained tables (ODS mirrors and views) are written by their pipeline only. A statement
// trigger on each of them calls sgivm_refuse_direct_write, which lets through the pipeline's
// worker (its session carries the pipeline's replication origin) and the one table add_view or
// refresh_view is filling in the current transaction, and refuses every other INSERT, UPDATE,
// DELETE or TRUNCATE with an error that says what to do instead.
//
// It guards against mistakes, not against the table's owner: privileges decide who may write
// at all, and an owner can always drop the trigger.
extern "C" {
#include "postgres.h"

#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/origin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(sgivm_refuse_direct_write);
PG_FUNCTION_INFO_V1(sgivm_allow_direct_write);
}

namespace {

// The table add_view / refresh_view may fill in the current transaction (at most one at a time).
Oid writable_relid = InvalidOid;
LocalTransactionId writable_in = InvalidLocalTransactionId;

const char *operation(TriggerEvent event) {
    if (TRIGGER_FIRED_BY_INSERT(event)) return "INSERT";
    if (TRIGGER_FIRED_BY_UPDATE(event)) return "UPDATE";
    if (TRIGGER_FIRED_BY_DELETE(event)) return "DELETE";
    return "TRUNCATE";
}

}  // namespace

// _allow_direct_write(rel regclass): lets the calling transaction write rel past its trigger.
// Only for a role that may insert into and delete from the table anyway.
extern "C" Datum sgivm_allow_direct_write(PG_FUNCTION_ARGS) {
    Oid relid = PG_GETARG_OID(0);
    if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
        pg_class_aclcheck(relid, GetUserId(), ACL_DELETE) != ACLCHECK_OK)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied for table %s", get_rel_name(relid))));
    writable_relid = relid;
    writable_in = MyProc->lxid;
    PG_RETURN_VOID();
}

// BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ... FOR EACH STATEMENT, argument: the pipeline.
extern "C" Datum sgivm_refuse_direct_write(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("stategrid_ivm._refuse_direct_write() is a trigger function")));
    TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);
    Oid relid = RelationGetRelid(td->tg_relation);
    // The pipeline worker applies with its replication origin set up for the session.
    if (replorigin_session_origin != InvalidRepOriginId) return PointerGetDatum(nullptr);
    if (relid == writable_relid && writable_in == MyProc->lxid) return PointerGetDatum(nullptr);
    const char *pipeline = td->tg_trigger->tgnargs > 0 ? td->tg_trigger->tgargs[0] : "?";
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("%s of table %s refused: it is maintained by stategrid_ivm pipeline \"%s\"",
                           operation(td->tg_event),
                           quote_qualified_identifier(get_namespace_name(RelationGetNamespace(td->tg_relation)),
                                                      RelationGetRelationName(td->tg_relation)),
                           pipeline),
                    errdetail("Its rows are derived from the pipeline's source tables; a direct write would make it "
                              "disagree with them."),
                    errhint("Change the source tables instead. stategrid_ivm.refresh_view() recomputes a view; "
                            "stategrid_ivm.drop_pipeline() leaves the tables behind as ordinary tables.")));
    PG_RETURN_NULL();
}
