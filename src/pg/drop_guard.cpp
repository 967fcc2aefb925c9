// The drop guard of drop_guard.hpp: refuses the commands that would take a database's
// pipeline catalog, or its pipelines' tables, away while the pipelines' slots and origins stay.
// Plain PostgreSQL calls, no C++ objects: errors unwind by longjmp.
extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "commands/dbcommands.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "replication/slot.h"
#include "storage/spin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include "pg/drop_guard.hpp"

namespace sgivm::pg {

namespace {

object_access_hook_type prev_object_access_hook = nullptr;
ProcessUtility_hook_type prev_process_utility_hook = nullptr;

// stategrid_ivm.pipeline of this database, if the extension is installed.
Oid pipeline_catalog() {
    Oid nsp = get_namespace_oid("stategrid_ivm", true);
    return OidIsValid(nsp) ? get_relname_relid("pipeline", nsp) : InvalidOid;
}

// The names of the pipelines in the catalog (those of the roles in `owners`, unless NIL),
// quoted and separated by commas; nullptr if there are none. Read with a heap scan under the
// latest snapshot: the guard may run in the middle of a DROP, which already removed the
// catalog's indexes, and must see pipelines committed after the transaction's snapshot.
char *pipeline_names(Oid catalog, List *owners) {
    Relation rel = table_open(catalog, AccessShareLock);
    TupleDesc desc = RelationGetDescr(rel);
    AttrNumber name_att = get_attnum(catalog, "name");
    AttrNumber owner_att = get_attnum(catalog, "owner");
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    StringInfoData names;
    initStringInfo(&names);
    int n = 0;
    HeapTuple tuple;
    while ((tuple = heap_getnext(scan, ForwardScanDirection)) != nullptr) {
        bool isnull;
        Datum owner = heap_getattr(tuple, owner_att, desc, &isnull);
        if (owners != NIL && (isnull || !list_member_oid(owners, DatumGetObjectId(owner)))) continue;
        Datum name = heap_getattr(tuple, name_att, desc, &isnull);
        if (isnull) continue;
        if (++n > 10) {
            appendStringInfoString(&names, ", ...");
            break;
        }
        appendStringInfo(&names, "%s\"%s\"", n > 1 ? ", " : "", TextDatumGetCString(name));
    }
    table_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, AccessShareLock);
    return n > 0 ? names.data : nullptr;
}

void refuse_extension_drop(Oid catalog) {
    char *names = pipeline_names(catalog, NIL);
    if (names)
        ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                        errmsg("cannot drop extension stategrid_ivm while it has pipelines: %s", names),
                        errdetail("Their replication slots and origins are not transactional: they would stay behind, "
                                  "the slots retaining WAL."),
                        errhint("Drop the pipelines first: SELECT stategrid_ivm.drop_pipeline(name) FROM "
                                "stategrid_ivm.pipelines;")));
}

// Whatever drops the catalog drops the extension with it. The commands that do are refused
// before they start (guard_utility: PostgreSQL's own refusal of a drop without CASCADE would
// not name the pipelines); this is for any other way there.
void guard_object_drop(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg) {
    if (prev_object_access_hook) prev_object_access_hook(access, class_id, object_id, sub_id, arg);
    if (access != OAT_DROP || class_id != RelationRelationId || sub_id != 0) return;
    Oid catalog = pipeline_catalog();
    if (OidIsValid(catalog) && object_id == catalog) refuse_extension_drop(catalog);
}

// DROP EXTENSION stategrid_ivm, DROP SCHEMA stategrid_ivm.
void refuse_drop(DropStmt *stmt) {
    if (stmt->removeType != OBJECT_EXTENSION && stmt->removeType != OBJECT_SCHEMA) return;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        Node *name = static_cast<Node *>(lfirst(lc));
        if (!IsA(name, String) || strcmp(strVal(name), "stategrid_ivm") != 0) continue;
        Oid catalog = pipeline_catalog();
        if (OidIsValid(catalog)) refuse_extension_drop(catalog);
    }
}

// DROP OWNED BY the extension's owner (who owns its catalog) drops the extension; BY a
// pipeline's owner, the pipeline's tables, and lets DROP ROLE go on.
void refuse_drop_owned(DropOwnedStmt *stmt) {
    Oid catalog = pipeline_catalog();
    if (!OidIsValid(catalog)) return;
    Oid catalog_owner = InvalidOid;
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(catalog));
    if (HeapTupleIsValid(tuple)) {
        catalog_owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
        ReleaseSysCache(tuple);
    }
    List *roles = NIL;
    ListCell *lc;
    foreach (lc, stmt->roles) {
        Oid role = get_rolespec_oid(static_cast<RoleSpec *>(lfirst(lc)), true);
        if (role == catalog_owner) refuse_extension_drop(catalog);
        if (OidIsValid(role)) roles = lappend_oid(roles, role);
    }
    if (roles == NIL) return;  // DROP OWNED reports the unknown role
    char *names = pipeline_names(catalog, roles);
    if (names)
        ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                        errmsg("cannot drop the objects of the owner of stategrid_ivm pipelines %s", names),
                        errdetail("The pipelines' tables would go, while their replication slots stay, retaining WAL."),
                        errhint("Drop the pipelines first, with stategrid_ivm.drop_pipeline().")));
}

// DROP DATABASE drops the inactive slots of the database, but not the origins, which belong to
// the cluster (and an active slot makes it fail with a message that does not say whose).
void refuse_drop_database(DropdbStmt *stmt) {
    Oid db = get_database_oid(stmt->dbname, true);
    if (!OidIsValid(db)) return;
    int nslots = 0;
    LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
    for (int i = 0; i < max_replication_slots; i++) {
        ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
        if (!s->in_use) continue;
        SpinLockAcquire(&s->mutex);
        bool ours = s->data.database == db && strcmp(NameStr(s->data.plugin), "stategrid_ivm") == 0 &&
                    strncmp(NameStr(s->data.name), "sgivm_", 6) == 0;
        SpinLockRelease(&s->mutex);
        if (ours) nslots++;
    }
    LWLockRelease(ReplicationSlotControlLock);
    if (nslots > 0)
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_IN_USE),
                 errmsg("cannot drop database \"%s\" while it has stategrid_ivm pipelines", stmt->dbname),
                 errdetail_plural("It holds %d replication slot of a pipeline; the pipelines' replication origins, which "
                                  "belong to the cluster, would stay behind.",
                                  "It holds %d replication slots of pipelines; the pipelines' replication origins, which "
                                  "belong to the cluster, would stay behind.",
                                  nslots, nslots),
                 errhint("Connect to database \"%s\" and drop them first: SELECT stategrid_ivm.drop_pipeline(name) FROM "
                         "stategrid_ivm.pipelines;",
                         stmt->dbname)));
}

void guard_utility(PlannedStmt *pstmt, const char *query, bool read_only_tree, ProcessUtilityContext context,
                   ParamListInfo params, QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) {
    Node *stmt = pstmt->utilityStmt;
    if (IsA(stmt, DropStmt))
        refuse_drop(reinterpret_cast<DropStmt *>(stmt));
    else if (IsA(stmt, DropOwnedStmt))
        refuse_drop_owned(reinterpret_cast<DropOwnedStmt *>(stmt));
    else if (IsA(stmt, DropdbStmt))
        refuse_drop_database(reinterpret_cast<DropdbStmt *>(stmt));
    if (prev_process_utility_hook)
        prev_process_utility_hook(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
    else
        standard_ProcessUtility(pstmt, query, read_only_tree, context, params, query_env, dest, qc);
}

}  // namespace

void install_drop_guard() {
    prev_object_access_hook = object_access_hook;
    object_access_hook = guard_object_drop;
    prev_process_utility_hook = ProcessUtility_hook;
    ProcessUtility_hook = guard_utility;
}

}  // namespace sgivm::pg
