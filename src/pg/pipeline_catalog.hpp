// The pipeline worker's catalog: its rows of stategrid_ivm.pipeline, source and view read into
// typed structs, and one function per write. All of the worker's catalog SQL lives here.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
}

#include <optional>
#include <string>
#include <vector>

#include "core/view_plan.hpp"

namespace sgivm::pg {

// stategrid_ivm.pipeline.state. A worker runs the pipeline while it is Backfilling, Running or
// in Error (retrying); Created and Paused pipelines have none.
enum class PipelineState { Created, Backfilling, Running, Paused, Error };
const char *state_name(PipelineState state);
inline bool worker_runs(PipelineState s) {
    return s == PipelineState::Running || s == PipelineState::Backfilling || s == PipelineState::Error;
}

// The pipeline's row, as read at the start of each step.
struct Pipeline {
    std::string name;
    PipelineState state = PipelineState::Created;
    std::string slot, origin;
    Oid owner = InvalidOid;
    std::optional<std::string> backfill_snapshot;  // pg_snapshot as text (CopySnapshot::parse)
    XLogRecPtr backfill_lsn = InvalidXLogRecPtr;
    std::string relids;       // the sources' OIDs, comma-separated (the output plugin's option)
    bool slot_exists = false;  // its replication slot exists in this database
};

struct Source {
    Oid source_relid = InvalidOid;
    Oid mirror_relid = InvalidOid;
    std::string source_name;
    bool exists = false;
    std::string inheritance_child;  // a table that inherits from it (not a partition), if any
};

// A maintained view's row: its table and its plan.
struct StoredView {
    Oid relid = InvalidOid;
    std::string name;
    StoredViewPlan plan;
};

// Where a backfill's copy stands: the snapshot it was taken under and the WAL insert position.
struct BackfillPoint {
    std::string snapshot;  // pg_snapshot as text
    std::string lsn;       // pg_lsn as text
};

// A batch's effect on the pipeline's counters.
struct BatchProgress {
    XLogRecPtr end_lsn = InvalidXLogRecPtr;  // of the last applied commit (invalid: none)
    TimestampTz commit_time = 0;             // its commit time (0: none)
    uint64 transactions = 0, rows = 0;
};

// The statements that empty a mirror and copy its source into it (columns shared by name).
struct MirrorCopy {
    std::string empty, copy;
};

// Each function runs in the caller's transaction with SPI connected, reads and writes the
// catalog with the bootstrap superuser's rights, and throws PgError.
bool extension_exists();
std::optional<Pipeline> load_pipeline(int32 pipeline_id);  // nullopt: no such pipeline
std::vector<Source> load_sources(int32 pipeline_id);       // by source_relid
std::optional<int32> read_views_version(int32 pipeline_id);
// Locks the pipeline's row (FOR NO KEY UPDATE) until the end of the transaction.
struct LockedPipeline {
    PipelineState state = PipelineState::Created;
    int32 views_version = 0;
};
std::optional<LockedPipeline> lock_pipeline(int32 pipeline_id);
std::vector<StoredView> load_view_plans(int32 pipeline_id);  // in dependency order (view_id)
void record_progress(int32 pipeline_id, const BatchProgress &progress);
BackfillPoint read_backfill_point();
MirrorCopy mirror_copy(Oid source_relid, Oid mirror_relid);
void record_backfill(int32 pipeline_id, const BackfillPoint &point, uint64 rows_copied);
// Only while the row names `slot` (empty: any): a rebuild_pipeline that gave the pipeline a new
// slot meanwhile made this worker's error not the new one's.
void record_error(int32 pipeline_id, const std::string &last_error, const std::string &slot);
void record_backfill_needed(int32 pipeline_id);

}  // namespace sgivm::pg
