// Shared memory setup, the commit hook that wakes workers when data changes, and the SQL
// functions that read or poke the shared state. All plain PostgreSQL calls: no C++ objects.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(sgivm_notify_launcher);
PG_FUNCTION_INFO_V1(sgivm_wake_pipeline);
PG_FUNCTION_INFO_V1(sgivm_runtime_status);
PG_FUNCTION_INFO_V1(sgivm_calling_role);
PG_FUNCTION_INFO_V1(sgivm_slot_created);
PG_FUNCTION_INFO_V1(sgivm_flush_commits);
}

#include "pg/shared_state.hpp"

namespace sgivm::pg {

SharedState *shared = nullptr;
int guc_batch_size = 10000;
int guc_naptime_ms = 1000;
int guc_catchup_round_ms = 3000;
int guc_max_pipelines = 16;
int guc_wal_warning_mb = 1024;
char *guc_debug_crash_at = nullptr;

// Whether stategrid_ivm.debug_crash_at names this point (a comma- or space-separated list).
static bool point_named(const char *point) {
    if (!guc_debug_crash_at || !*guc_debug_crash_at) return false;
    size_t n = strlen(point);
    for (const char *p = guc_debug_crash_at; (p = strstr(p, point)) != nullptr; p += n) {
        bool starts = p == guc_debug_crash_at || p[-1] == ',' || p[-1] == ' ';
        bool ends = p[n] == '\0' || p[n] == ',' || p[n] == ' ';
        if (starts && ends) return true;
    }
    return false;
}

void crash_point(const char *point) {
    if (!point_named(point)) return;
    ereport(LOG, (errmsg("stategrid_ivm: crash point \"%s\" reached: process %d kills itself", point, MyProcPid)));
    (void)kill(MyProcPid, SIGKILL);
    pg_usleep(1000000L);  // the signal is on its way
}

void exit_point(const char *point) {
    if (!point_named(point)) return;
    // as a fast shutdown ends the worker: FATAL, and the exit callbacks run
    ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN),
                    errmsg("stategrid_ivm: exit point \"%s\" reached: process %d exits", point, MyProcPid)));
}

static shmem_request_hook_type prev_shmem_request_hook = nullptr;
static shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

static Size shared_size() {
    return add_size(offsetof(SharedState, slots), mul_size(sizeof(PipelineSlot), guc_max_pipelines));
}

static void on_shmem_request() {
    if (prev_shmem_request_hook) prev_shmem_request_hook();
    RequestAddinShmemSpace(shared_size());
    RequestNamedLWLockTranche("stategrid_ivm", 1);
}

static void on_shmem_startup() {
    if (prev_shmem_startup_hook) prev_shmem_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    bool found;
    shared = static_cast<SharedState *>(ShmemInitStruct("stategrid_ivm", shared_size(), &found));
    if (!found) {
        memset(shared, 0, shared_size());
        shared->lock = &(GetNamedLWLockTranche("stategrid_ivm"))->lock;
        shared->nslots = guc_max_pipelines;
        for (int i = 0; i < shared->nslots; i++) clear_slot(&shared->slots[i]);
        shared->probe_all = true;
    }
    LWLockRelease(AddinShmemInitLock);
}

void install_shared_memory_hooks() {
    prev_shmem_request_hook = shmem_request_hook;
    shmem_request_hook = on_shmem_request;
    prev_shmem_startup_hook = shmem_startup_hook;
    shmem_startup_hook = on_shmem_startup;
}

PipelineSlot *find_slot(Oid dboid, int32 pipeline_id) {
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        if (s->in_use && s->dboid == dboid && s->pipeline_id == pipeline_id) return s;
    }
    return nullptr;
}

void clear_slot(PipelineSlot *s) {
    memset(s, 0, sizeof *s);
    pg_atomic_init_u64(&s->unseen_commit, 0);
}

// The slot of the pipeline worker running in this process (-1: none): its own commits are not
// changes it waits for.
static int my_worker_slot = -1;

void attach_worker(int slot_index, Oid *dboid, int32 *pipeline_id) {
    my_worker_slot = slot_index;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    *dboid = shared->slots[slot_index].dboid;
    *pipeline_id = shared->slots[slot_index].pipeline_id;
    LWLockRelease(shared->lock);
}

void mark_worker(int slot_index, bool running) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    PipelineSlot *s = &shared->slots[slot_index];
    s->pid = running ? MyProcPid : 0;  // once stopped, nobody may signal this pid for the pipeline
    s->latch = running ? MyLatch : nullptr;
    if (running) {
        s->freshness.clear();
    } else {
        s->want = false;
        s->oldest_unapplied_commit = 0;
        s->batch_unseen_commit = 0;
        pg_atomic_write_u64(&s->unseen_commit, 0);
    }
    LWLockRelease(shared->lock);
}

void report_worker_position(int slot_index, XLogRecPtr caught_up, TimestampTz oldest_unapplied, TimestampTz now,
                            const LatencyHistogram *batch_freshness) {
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    PipelineSlot *s = &shared->slots[slot_index];
    if (caught_up != InvalidXLogRecPtr) s->caught_up_lsn = caught_up;
    s->oldest_unapplied_commit = oldest_unapplied;
    // what the batch took is applied, or no older than what it leaves waiting
    if (caught_up == InvalidXLogRecPtr ? oldest_unapplied != 0 : s->batch_unseen_commit_lsn <= caught_up)
        s->batch_unseen_commit = 0;
    if (batch_freshness) {
        s->last_batch_at = now;
        s->failures = 0;  // working again: the next restart after a crash comes quickly
        s->freshness.rotate(now);
        s->freshness.current.merge(*batch_freshness);
    }
    LWLockRelease(shared->lock);
}

bool take_unseen_commits(int slot_index) {
    PipelineSlot *s = &shared->slots[slot_index];
    if (pg_atomic_read_u64(&s->unseen_commit) == 0) return s->batch_unseen_commit != 0;  // (only this process sets it)
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    TimestampTz t = static_cast<TimestampTz>(pg_atomic_read_u64(&s->unseen_commit));
    if (t != 0 && s->batch_unseen_commit == 0) {  // else the older one the batch holds counts
        s->batch_unseen_commit = t;
        s->batch_unseen_commit_lsn = s->unseen_commit_lsn;
    }
    pg_atomic_write_u64(&s->unseen_commit, 0);
    LWLockRelease(shared->lock);
    return true;
}

void request_probe(Oid dboid) {
    if (!shared) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    shared->generation++;
    bool queued = false;
    for (int i = 0; i < shared->nprobe; i++)
        if (shared->probe_dbs[i] == dboid) queued = true;
    if (!queued) {
        if (shared->nprobe < kMaxProbeRequests)
            shared->probe_dbs[shared->nprobe++] = dboid;
        else
            shared->probe_all = true;
    }
    Latch *l = shared->launcher_latch;
    LWLockRelease(shared->lock);
    if (l) SetLatch(l);
}

void wake_workers(Oid dboid) {
    if (!shared) return;
    // Unlocked read: a stale latch pointer only causes a spurious wake-up of some process.
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        Latch *l = s->latch;
        if (s->in_use && s->dboid == dboid && l) SetLatch(l);
    }
}

// A transaction that wrote in database dboid committed at commit_time: until their next batch
// looks, its pipelines may have source changes waiting since then (the first such commit
// stays). The lock is taken only by the first commit after a batch looked.
static void note_writing_commit(Oid dboid, TimestampTz commit_time, XLogRecPtr commit_end) {
    if (!shared) return;
    bool locked = false;
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        if (!s->in_use || s->dboid != dboid || i == my_worker_slot || pg_atomic_read_u64(&s->unseen_commit) != 0)
            continue;
        if (!locked) LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        locked = true;
        if (!s->in_use || s->dboid != dboid || pg_atomic_read_u64(&s->unseen_commit) != 0) continue;
        s->unseen_commit_lsn = commit_end;
        pg_atomic_write_u64(&s->unseen_commit, static_cast<uint64>(commit_time));
    }
    if (locked) LWLockRelease(shared->lock);
}

// ---- commit hook ---------------------------------------------------------------------

static bool xact_wrote = false;
static bool xact_wrote_wal = false;  // more than its commit record: it may have changed a source
static bool xact_notify_launcher = false;
static NameData xact_created_slot;  // a slot create_pipeline made in this transaction
static bool xact_has_slot = false;

static void remember_orphan_slot() {
    if (!shared || !xact_has_slot) return;
    LWLockAcquire(shared->lock, LW_EXCLUSIVE);
    if (shared->norphans < kMaxOrphanSlots) {
        shared->orphan_db[shared->norphans] = MyDatabaseId;
        shared->orphan_slot[shared->norphans] = xact_created_slot;
        shared->norphans++;
    }
    LWLockRelease(shared->lock);
    xact_has_slot = false;
    request_probe(MyDatabaseId);
}

static void on_xact_event(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
            xact_wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());
            xact_wrote_wal = xact_wrote && XactLastRecEnd != InvalidXLogRecPtr;
            break;
        case XACT_EVENT_COMMIT:
            if (xact_notify_launcher) request_probe(MyDatabaseId);
            if (xact_wrote_wal && OidIsValid(MyDatabaseId)) note_writing_commit(MyDatabaseId, GetCurrentTransactionStopTimestamp(), XactLastCommitEnd);
            if ((xact_wrote || xact_notify_launcher) && OidIsValid(MyDatabaseId)) wake_workers(MyDatabaseId);
            xact_wrote = xact_notify_launcher = xact_has_slot = false;
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            remember_orphan_slot();
            xact_wrote = xact_notify_launcher = false;
            break;
        default: break;
    }
}

void install_commit_hook() { RegisterXactCallback(on_xact_event, nullptr); }

}  // namespace sgivm::pg

using namespace sgivm::pg;

static void require_shared() {
    if (!shared)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("stategrid_ivm is not loaded through shared_preload_libraries"),
                        errhint("Set shared_preload_libraries = 'stategrid_ivm' and restart the server.")));
}

extern "C" Datum sgivm_notify_launcher(PG_FUNCTION_ARGS) {
    require_shared();
    xact_notify_launcher = true;
    PG_RETURN_VOID();
}

extern "C" Datum sgivm_wake_pipeline(PG_FUNCTION_ARGS) {
    int32 id = PG_GETARG_INT32(0);
    if (!shared) PG_RETURN_VOID();
    LWLockAcquire(shared->lock, LW_SHARED);
    PipelineSlot *s = find_slot(MyDatabaseId, id);
    Latch *l = s ? s->latch : nullptr;
    LWLockRelease(shared->lock);
    if (l) SetLatch(l);
    PG_RETURN_VOID();
}

extern "C" Datum sgivm_runtime_status(PG_FUNCTION_ARGS) {
    ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
    InitMaterializedSRF(fcinfo, 0);
    if (!shared) PG_RETURN_VOID();
    LWLockAcquire(shared->lock, LW_SHARED);
    for (int i = 0; i < shared->nslots; i++) {
        PipelineSlot *s = &shared->slots[i];
        if (!s->in_use || s->dboid != MyDatabaseId) continue;
        // 0.1.0 declares the first five columns; 0.2.0 adds the freshness figures
        Datum values[9];
        bool nulls[9] = {false, false, false, false, false, false, false, false, false};
        values[0] = Int32GetDatum(s->pipeline_id);
        values[1] = Int32GetDatum(s->pid);
        nulls[1] = s->pid == 0;
        values[2] = LSNGetDatum(s->caught_up_lsn);
        nulls[2] = s->caught_up_lsn == InvalidXLogRecPtr;
        // the oldest of: what the last batch left waiting, what the running batch took, what
        // committed since
        // (a commit below caught_up_lsn is applied, whether a batch looked at its note or not)
        TimestampTz oldest = s->oldest_unapplied_commit;
        auto waits = [&](TimestampTz t, XLogRecPtr end) {
            if (t != 0 && end > s->caught_up_lsn && (oldest == 0 || t < oldest)) oldest = t;
        };
        waits(s->batch_unseen_commit, s->batch_unseen_commit_lsn);
        waits(static_cast<TimestampTz>(pg_atomic_read_u64(&s->unseen_commit)), s->unseen_commit_lsn);
        values[3] = TimestampTzGetDatum(oldest);
        nulls[3] = oldest == 0;
        values[4] = TimestampTzGetDatum(s->last_batch_at);
        nulls[4] = s->last_batch_at == 0;
        sgivm::LatencyHistogram recent = s->freshness.recent(GetCurrentTimestamp());
        uint64 n = recent.count();
        values[5] = Int64GetDatum(static_cast<int64>(n));
        values[6] = Float8GetDatum(recent.quantile_ms(0.5));
        values[7] = Float8GetDatum(recent.quantile_ms(0.99));
        values[8] = Float8GetDatum(recent.quantile_ms(1.0));
        nulls[6] = nulls[7] = nulls[8] = n == 0;
        Assert(rsinfo->setDesc->natts <= 9);
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    LWLockRelease(shared->lock);
    PG_RETURN_VOID();
}

extern "C" Datum sgivm_calling_role(PG_FUNCTION_ARGS) { PG_RETURN_OID(GetOuterUserId()); }

// create_pipeline made this slot: if the transaction rolls back, the slot must go too.
extern "C" Datum sgivm_slot_created(PG_FUNCTION_ARGS) {
    namestrcpy(&xact_created_slot, NameStr(*PG_GETARG_NAME(0)));
    xact_has_slot = true;
    PG_RETURN_VOID();
}

// sync()'s target: the end of the WAL that holds every transaction committed so far, flushed.
// A commit made with synchronous_commit = off (a subscription's apply worker, by default) has
// returned to its client before its WAL is flushed, and a worker decodes flushed WAL only: the
// flush position alone would let sync() return before such a commit is applied.
extern "C" Datum sgivm_flush_commits(PG_FUNCTION_ARGS) {
    if (RecoveryInProgress())
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("recovery is in progress"),
                        errhint("Pipelines run on the primary: call sync() there. A standby shows what the "
                                "primary committed once it has replayed it.")));
    XLogRecPtr end = GetXLogInsertRecPtr();
    // At the start of a page the insert position is given past the page's header, where no record
    // ends yet: the WAL generated so far ends at the page boundary (flushing past it would wait
    // for WAL nobody wrote).
    if (XLogSegmentOffset(end, wal_segment_size) == SizeOfXLogLongPHD)
        end -= SizeOfXLogLongPHD;
    else if (end % XLOG_BLCKSZ == SizeOfXLogShortPHD)
        end -= SizeOfXLogShortPHD;
    XLogFlush(end);
    PG_RETURN_LSN(end);
}
