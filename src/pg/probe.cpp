// The probe: a short-lived worker that reads one database's pipeline catalog and tells the
// launcher, through shared memory, which pipelines of that database should be running.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "tcop/tcopprot.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void sgivm_probe_main(Datum arg);
}

#include "pg/shared_state.hpp"

using namespace sgivm::pg;

void sgivm_probe_main(Datum arg) {
    Oid dboid = DatumGetObjectId(arg);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
    pgstat_report_appname("stategrid_ivm probe");

    int n = 0;
    int32 ids[1024];
    char names[1024][NAMEDATALEN];

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: listing pipelines");
    int rc = SPI_execute(
        "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'stategrid_ivm'", true, 1);
    bool installed = rc == SPI_OK_SELECT && SPI_processed == 1;
    if (installed) {
        // A pipeline whose slot is not in this database cannot run: the database was restored
        // from a dump (slots are not dumped), or the slot was dropped. No worker for it, and the
        // error names the call that gives it a new slot (once: not rewritten at every probe).
        //
        // Slots are not transactional: rebuild_pipeline drops the old slot before it commits the
        // row naming the new one, and drop_pipeline drops it before the row goes. So a pipeline
        // that looks slot-less is first locked (which waits for such a call to end), then looked
        // at again with a new snapshot. One UPDATE that waited for the row would recheck only
        // the row, not its anti-join with the slots, and put a rebuilt pipeline in error.
        rc = SPI_execute(
            "SELECT p.pipeline_id FROM stategrid_ivm.pipeline p"
            " WHERE p.state IN ('backfilling', 'running', 'error')"
            " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s"
            "                 WHERE s.slot_name = p.slot_name AND s.database = pg_catalog.current_database())",
            true, 1024);
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm probe: could not check the pipelines' slots");
        int nslotless = static_cast<int>(SPI_processed);
        for (int i = 0; i < nslotless; i++) {
            bool isnull;
            ids[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
        }
        for (int i = 0; i < nslotless; i++) {
            Oid argtypes[1] = {INT4OID};
            Datum args[1] = {Int32GetDatum(ids[i])};
            rc = SPI_execute_with_args("SELECT 1 FROM stategrid_ivm.pipeline WHERE pipeline_id = $1 FOR NO KEY UPDATE",
                                       1, argtypes, args, nullptr, false, 0);
            if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm probe: could not lock a pipeline");
            if (SPI_processed == 0) continue;  // dropped meanwhile
            rc = SPI_execute_with_args(
                "UPDATE stategrid_ivm.pipeline p SET state = 'error', last_error = m.msg, last_error_at = pg_catalog.now(),"
                " error_count = p.error_count + 1"
                " FROM (SELECT pg_catalog.format('replication slot \"%s\" of pipeline \"%s\" does not exist"
                " (the database was restored from a dump, the server is a promoted standby or a restored base"
                " backup, or the slot was dropped): rebuild the pipeline with"
                " SELECT stategrid_ivm.rebuild_pipeline(%L)', q.slot_name, q.name, q.name) AS msg"
                "       FROM stategrid_ivm.pipeline q WHERE q.pipeline_id = $1) m"
                " WHERE p.pipeline_id = $1 AND p.state IN ('backfilling', 'running', 'error')"
                " AND (p.state <> 'error' OR p.last_error IS DISTINCT FROM m.msg)"
                " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s"
                "                 WHERE s.slot_name = p.slot_name AND s.database = pg_catalog.current_database())",
                1, argtypes, args, nullptr, false, 0);
            if (rc != SPI_OK_UPDATE) elog(ERROR, "stategrid_ivm probe: could not check the pipelines' slots");
        }
        // With a new snapshot (not read-only): a rebuild waited for above has committed its new slot.
        rc = SPI_execute(
            "SELECT pipeline_id, name FROM stategrid_ivm.pipeline p "
            "WHERE state IN ('backfilling', 'running', 'error') AND EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s"
            " WHERE s.slot_name = p.slot_name AND s.database = pg_catalog.current_database()) ORDER BY pipeline_id",
            false, 1024);
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm probe: could not read pipelines");
        for (uint64 i = 0; i < SPI_processed; i++) {
            bool isnull;
            ids[n] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
            // the worker's name (process title, log lines) holds the first bytes: whole characters only
            char *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
            int len = pg_mbcliplen(name, static_cast<int>(strlen(name)), NAMEDATALEN - 1);
            memcpy(names[n], name, len);
            names[n][len] = '\0';
            n++;
        }
    }
    // Slots of rolled-back create_pipeline calls in this database: drop those that no catalog
    // row claims (their transaction aborted, so none ever will).
    if (installed) {
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        NameData orphans[kMaxOrphanSlots];
        int norphans = 0;
        for (int i = 0; i < shared->norphans;) {
            if (shared->orphan_db[i] == dboid) {
                orphans[norphans++] = shared->orphan_slot[i];
                shared->orphan_db[i] = shared->orphan_db[shared->norphans - 1];
                shared->orphan_slot[i] = shared->orphan_slot[shared->norphans - 1];
                shared->norphans--;
            } else {
                i++;
            }
        }
        LWLockRelease(shared->lock);
        for (int i = 0; i < norphans; i++) {
            Oid argtypes[1] = {NAMEOID};
            Datum args[1] = {NameGetDatum(&orphans[i])};
            SPI_execute_with_args(
                "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots"
                " WHERE slot_name = $1 AND NOT active"
                " AND NOT EXISTS (SELECT 1 FROM stategrid_ivm.pipeline p WHERE p.slot_name = $1)",
                1, argtypes, args, nullptr, false, 0);
        }
    }
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();

    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    // Pipelines of this database that should no longer run: their workers stop by themselves
    // when they see the catalog; waiting restarts are cancelled here.
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        if (!s->in_use || s->dboid != dboid) continue;
        bool listed = false;
        for (int k = 0; k < n; k++)
            if (ids[k] == s->pipeline_id) listed = true;
        if (!listed) {
            s->want = false;
            if (s->pid == 0) s->in_use = false;
        }
    }
    for (int k = 0; k < n; k++) {
        PipelineSlot *s = find_slot(dboid, ids[k]);
        if (!s) {
            for (int i = 0; i < shared->nslots && !s; i++)
                if (!shared->slots[i].in_use) s = &shared->slots[i];
            if (!s) {
                ereport(WARNING, (errmsg("stategrid_ivm: more running pipelines than stategrid_ivm.max_pipelines (%d)",
                                         shared->nslots)));
                break;
            }
            clear_slot(s);
            s->in_use = true;
            s->dboid = dboid;
            s->pipeline_id = ids[k];
        }
        strlcpy(s->name, names[k], NAMEDATALEN);
        if (!s->want) {
            s->want = true;
            s->failures = 0;
            s->restart_at = 0;
        }
    }
    Latch *l = shared->launcher_latch;
    LWLockRelease(shared->lock);
    if (l) SetLatch(l);
}
