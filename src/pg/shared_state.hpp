// Shared memory of stategrid_ivm: which pipelines should have a worker, where each worker
// stands, and the latches that wake the launcher and the workers.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
}

#include "core/freshness.hpp"

namespace sgivm::pg {

constexpr int kMaxProbeRequests = 64;
constexpr int kMaxOrphanSlots = 16;

struct PipelineSlot {
    bool in_use;      // describes a pipeline of some database
    bool want;        // the launcher keeps a worker running for it
    Oid dboid;
    int32 pipeline_id;
    char name[NAMEDATALEN];
    pid_t pid;        // running worker, 0 if none
    Latch *latch;     // its latch while it runs
    int failures;     // consecutive abnormal exits, for the restart backoff
    TimestampTz restart_at;
    XLogRecPtr caught_up_lsn;              // every source commit below this is applied
    TimestampTz oldest_unapplied_commit;   // 0 when none is known to wait
    // The first transaction that wrote in the database since the worker last looked: its
    // commit time (0: none; read without the lock by committing backends) and the end of its
    // commit record. A source transaction waits from its commit on, before any batch decoded it.
    pg_atomic_uint64 unseen_commit;
    XLogRecPtr unseen_commit_lsn;
    TimestampTz batch_unseen_commit;       // what the running batch took of them (0: nothing)
    XLogRecPtr batch_unseen_commit_lsn;
    TimestampTz last_batch_at;
    FreshnessWindows freshness;            // source commit -> visible, per applied transaction
};

struct SharedState {
    LWLock *lock;
    pid_t launcher_pid;
    Latch *launcher_latch;
    bool probe_all;                     // look at every database again
    uint64 generation;                  // bumped whenever a pipeline's catalog row changes
    int nprobe;
    Oid probe_dbs[kMaxProbeRequests];   // databases whose pipelines changed
    // slots created by a create_pipeline whose transaction rolled back: the next probe of
    // their database drops them (slots are not transactional, catalog rows are)
    int norphans;
    Oid orphan_db[kMaxOrphanSlots];
    NameData orphan_slot[kMaxOrphanSlots];
    int nslots;
    PipelineSlot slots[FLEXIBLE_ARRAY_MEMBER];
};

extern SharedState *shared;

// GUCs
extern int guc_batch_size;
extern int guc_naptime_ms;
extern int guc_catchup_round_ms;
extern int guc_max_pipelines;
extern int guc_wal_warning_mb;
extern char *guc_debug_crash_at;

// Crash tests: SIGKILLs the calling process if stategrid_ivm.debug_crash_at lists `point`.
void crash_point(const char *point);
// The same, but the process exits as a fast shutdown ends it (FATAL: exit callbacks run).
void exit_point(const char *point);

void request_shared_memory();
void install_shared_memory_hooks();
void install_commit_hook();

// Asks the launcher to look at a database (commits of catalog changes call this).
void request_probe(Oid dboid);
// Wakes every worker of a database.
void wake_workers(Oid dboid);
PipelineSlot *find_slot(Oid dboid, int32 pipeline_id);  // caller holds the lock

// The worker of slot `slot_index`: takes the slot (returns its database and pipeline), marks it
// running, reports where it stands, and marks it stopped (then the launcher starts none).
void attach_worker(int slot_index, Oid *dboid, int32 *pipeline_id);
void mark_worker(int slot_index, bool running);
// An empty slot for a pipeline (the caller holds the lock, or the shared memory is new).
void clear_slot(PipelineSlot *s);
// A batch starts: it takes the commits noted since the last one; they count as waiting until
// the batch reports its position (or, if it fails, until a later one does). Call it before
// reading the WAL flush position, so that every commit it takes is below that position.
// Returns whether the batch holds any.
bool take_unseen_commits(int slot_index);
// caught_up: every source commit below it is applied (invalid: unchanged); oldest_unapplied:
// the commit time of the oldest source transaction waiting (0: none); batch_freshness: a batch
// committed now, with the latencies of its source commits (null: no batch ended).
void report_worker_position(int slot_index, XLogRecPtr caught_up, TimestampTz oldest_unapplied, TimestampTz now,
                            const LatencyHistogram *batch_freshness);

}  // namespace sgivm::pg
