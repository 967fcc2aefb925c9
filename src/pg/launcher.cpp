// The launcher: one background worker per cluster that keeps a pipeline worker running for
// every started pipeline of every database, restarting failed ones with a backoff.
//
// It cannot read a database's catalog itself (it is connected to none), so it starts a short
// "probe" worker in a database to list that database's runnable pipelines into shared memory:
// for every database at start and every so often, and at once for a database whose pipelines
// just changed (the commit of start/pause/resume/drop asks for it).
extern "C" {
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/slot.h"
#include "access/xlog.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void sgivm_launcher_main(Datum arg);
}

#include "pg/launcher.hpp"
#include "pg/shared_state.hpp"

namespace sgivm::pg {

namespace {

constexpr long kReprobeIntervalMs = 5000;  // fallback, should a notification ever be missed
constexpr int kMaxConcurrentProbes = 2;

struct LocalWorker {
    bool active;
    BackgroundWorkerHandle *handle;  // in TopMemoryContext
};

LocalWorker *pipeline_workers;  // parallel to shared->slots
struct Probe {
    bool active;
    Oid dboid;
    BackgroundWorkerHandle *handle;
};
Probe probes[kMaxConcurrentProbes];

List *database_list() {
    List *dbs = NIL;
    MemoryContext caller = CurrentMemoryContext;
    StartTransactionCommand();
    (void)GetTransactionSnapshot();
    Relation rel = table_open(DatabaseRelationId, AccessShareLock);
    TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
    HeapTuple tup;
    while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection))) {
        Form_pg_database db = reinterpret_cast<Form_pg_database>(GETSTRUCT(tup));
        if (!db->datallowconn || db->datconnlimit == -2) continue;  // -2: left invalid by an interrupted DROP DATABASE
        MemoryContext old = MemoryContextSwitchTo(caller);
        dbs = lappend_oid(dbs, db->oid);
        MemoryContextSwitchTo(old);
    }
    table_endscan(scan);
    table_close(rel, AccessShareLock);
    CommitTransactionCommand();
    return dbs;
}

bool start_worker(const char *function, const char *name, Datum arg, BackgroundWorkerHandle **out) {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = BGW_NEVER_RESTART;
    strlcpy(w.bgw_library_name, "stategrid_ivm", BGW_MAXLEN);
    strlcpy(w.bgw_function_name, function, BGW_MAXLEN);
    strlcpy(w.bgw_name, name, BGW_MAXLEN);
    strlcpy(w.bgw_type, strcmp(function, "sgivm_probe_main") == 0 ? "stategrid_ivm probe" : "stategrid_ivm worker",
            BGW_MAXLEN);
    w.bgw_main_arg = arg;
    w.bgw_notify_pid = MyProcPid;
    BackgroundWorkerHandle *h;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    bool ok = RegisterDynamicBackgroundWorker(&w, &h);
    MemoryContextSwitchTo(old);
    if (!ok) return false;
    if (*out) pfree(*out);
    *out = h;
    return true;
}

bool running(BackgroundWorkerHandle *h) {
    pid_t pid;
    if (!h) return false;
    BgwHandleStatus st = GetBackgroundWorkerPid(h, &pid);
    return st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED;
}

void queue_all_databases() {
    List *dbs = database_list();
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    ListCell *lc;
    foreach (lc, dbs) {
        Oid db = lfirst_oid(lc);
        bool queued = false;
        for (int i = 0; i < shared->nprobe; i++)
            if (shared->probe_dbs[i] == db) queued = true;
        if (!queued && shared->nprobe < kMaxProbeRequests) shared->probe_dbs[shared->nprobe++] = db;
    }
    shared->probe_all = false;
    LWLockRelease(shared->lock);
    list_free(dbs);
}

void start_probes() {
    // Finished probes first: a probe that has exited must not count as busy with its database
    // while the slots before it are filled (a request for that database then waited for the
    // next full probe, 5 s, whenever an earlier slot was free and nothing else was queued).
    for (int p = 0; p < kMaxConcurrentProbes; p++)
        if (probes[p].active && !running(probes[p].handle)) probes[p].active = false;
    for (int p = 0; p < kMaxConcurrentProbes; p++) {
        if (probes[p].active) continue;
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        Oid db = InvalidOid;
        for (int i = 0; i < shared->nprobe && !OidIsValid(db); i++) {
            bool busy = false;
            for (int q = 0; q < kMaxConcurrentProbes; q++)
                if (probes[q].active && probes[q].dboid == shared->probe_dbs[i]) busy = true;
            if (busy) continue;
            db = shared->probe_dbs[i];
            memmove(&shared->probe_dbs[i], &shared->probe_dbs[i + 1], sizeof(Oid) * (shared->nprobe - i - 1));
            shared->nprobe--;
        }
        LWLockRelease(shared->lock);
        if (!OidIsValid(db)) return;
        char name[BGW_MAXLEN];
        snprintf(name, sizeof name, "stategrid_ivm probe of database %u", db);
        if (start_worker("sgivm_probe_main", name, ObjectIdGetDatum(db), &probes[p].handle)) {
            probes[p].active = true;
            probes[p].dboid = db;
        } else {
            request_probe(db);  // no free worker slot now: try again later
            return;
        }
    }
}

long backoff_ms(int failures) {
    long ms = 1000L << Min(failures, 6);  // 1 s, 2 s, ... up to 64 s
    return Min(ms, 60000L);
}

void manage_pipeline_workers() {
    TimestampTz now = GetCurrentTimestamp();
    for (int i = 0; i < shared->nslots; i++) {
        LocalWorker *lw = &pipeline_workers[i];
        if (lw->active && !running(lw->handle)) {
            lw->active = false;
            LWLockAcquire(shared->lock, LW_EXCLUSIVE);
            PipelineSlot *s = &shared->slots[i];
            s->pid = 0;
            s->latch = nullptr;
            if (s->want) {
                // It stopped without being told to: restart after a backoff.
                s->failures++;
                s->restart_at = TimestampTzPlusMilliseconds(now, backoff_ms(s->failures - 1));
            } else {
                // It stopped because the catalog said so (paused, dropped). A resume may have
                // been probed just before it stopped: look at its database once more.
                s->in_use = false;
                Oid db = s->dboid;
                bool queued = false;
                for (int k = 0; k < shared->nprobe; k++) queued = queued || shared->probe_dbs[k] == db;
                if (!queued && shared->nprobe < kMaxProbeRequests) shared->probe_dbs[shared->nprobe++] = db;
            }
            LWLockRelease(shared->lock);
        }
        LWLockAcquire(shared->lock, LW_SHARED);
        PipelineSlot *s = &shared->slots[i];
        bool start = s->in_use && s->want && !lw->active && s->restart_at <= now;
        char name[BGW_MAXLEN];
        snprintf(name, sizeof name, "stategrid_ivm pipeline %s", s->name);
        LWLockRelease(shared->lock);
        if (start) {
            if (start_worker("sgivm_worker_main", name, Int32GetDatum(i), &lw->handle))
                lw->active = true;
            else
                ereport(WARNING, (errmsg("stategrid_ivm: no free background worker slot for %s", name),
                                  errhint("Increase max_worker_processes.")));
        }
    }
}

// A paused or failing pipeline keeps its slot's WAL: say so in the log past the threshold,
// at most once an hour per slot (the pipelines view shows the figure at any time).
void warn_retained_wal() {
    static TimestampTz last_warned[1024];
    if (guc_wal_warning_mb <= 0) return;
    XLogRecPtr now_lsn = GetXLogInsertRecPtr();
    TimestampTz now = GetCurrentTimestamp();
    LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
    for (int i = 0; i < max_replication_slots && i < 1024; i++) {
        ReplicationSlot *slot = &ReplicationSlotCtl->replication_slots[i];
        if (!slot->in_use || strncmp(NameStr(slot->data.name), "sgivm_", 6) != 0) continue;
        XLogRecPtr restart = slot->data.restart_lsn;
        if (restart == InvalidXLogRecPtr || now_lsn <= restart) continue;
        uint64 retained_mb = (now_lsn - restart) / (1024 * 1024);
        if (retained_mb < static_cast<uint64>(guc_wal_warning_mb)) continue;
        if (!TimestampDifferenceExceeds(last_warned[i], now, 3600 * 1000)) continue;
        last_warned[i] = now;
        ereport(WARNING, (errmsg("stategrid_ivm: replication slot \"%s\" retains " UINT64_FORMAT " MB of WAL",
                                 NameStr(slot->data.name), retained_mb),
                          errdetail("Its pipeline is paused, failing or behind; the WAL stays until it catches up."),
                          errhint("SELECT * FROM stategrid_ivm.pipelines shows which; resume or repair it, or drop it with "
                                  "stategrid_ivm.drop_pipeline(). max_slot_wal_keep_size caps what a slot may keep.")));
    }
    LWLockRelease(ReplicationSlotControlLock);
}

long next_wake_ms() {
    TimestampTz now = GetCurrentTimestamp();
    long wait = 1000;
    LWLockAcquire(shared->lock, LW_SHARED);
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        if (s->in_use && s->want && !pipeline_workers[i].active && s->restart_at > now)
            wait = Min(wait, Max(1L, (long)((s->restart_at - now) / 1000)));
    }
    LWLockRelease(shared->lock);
    return wait;
}

}  // namespace

void register_launcher() {
    BackgroundWorker w;
    memset(&w, 0, sizeof w);
    w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    w.bgw_start_time = BgWorkerStart_RecoveryFinished;
    w.bgw_restart_time = 5;
    strlcpy(w.bgw_library_name, "stategrid_ivm", BGW_MAXLEN);
    strlcpy(w.bgw_function_name, "sgivm_launcher_main", BGW_MAXLEN);
    strlcpy(w.bgw_name, "stategrid_ivm launcher", BGW_MAXLEN);
    strlcpy(w.bgw_type, "stategrid_ivm launcher", BGW_MAXLEN);
    RegisterBackgroundWorker(&w);
}

}  // namespace sgivm::pg

using namespace sgivm::pg;

void sgivm_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
    pgstat_report_appname("stategrid_ivm launcher");

    pipeline_workers = static_cast<LocalWorker *>(
        MemoryContextAllocZero(TopMemoryContext, sizeof(LocalWorker) * shared->nslots));

    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->launcher_pid = MyProcPid;
    shared->launcher_latch = MyLatch;
    shared->probe_all = true;
    // Workers of a previous launcher are gone with it only if the postmaster restarted; be safe.
    for (int i = 0; i < shared->nslots; i++) {
        shared->slots[i].pid = 0;
        shared->slots[i].latch = nullptr;
    }
    LWLockRelease(shared->lock);

    TimestampTz last_full_probe = 0;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        TimestampTz now = GetCurrentTimestamp();
        LWLockAcquire(shared->lock, LW_SHARED);
        bool all = shared->probe_all;
        LWLockRelease(shared->lock);
        if (all || TimestampDifferenceExceeds(last_full_probe, now, kReprobeIntervalMs)) {
            queue_all_databases();
            last_full_probe = now;
        }
        start_probes();
        manage_pipeline_workers();
        warn_retained_wal();

        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, next_wake_ms(), PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
}
