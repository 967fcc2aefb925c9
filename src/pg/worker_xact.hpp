// The pipeline worker's transactions (worker.cpp): how a step begins and commits one, and what
// happens when a step fails -- the error said in the log and in the catalog, the wait before
// the retry -- each in a transaction of its own.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <string>

#include "pg/owner_role.hpp"
#include "pg/pipeline_catalog.hpp"
#include "pg/seam.hpp"

namespace sgivm::pg {

// Starts a transaction with SPI and an active snapshot (repeatable read: the backfill copies
// every source under the one snapshot it records).
void begin_worker_xact(bool repeatable_read = false);
// Leaves the owner's context (nothing the owner's code set survives the step), commits, and
// reports the statistics and the idle state.
void commit_worker_xact(OwnerContext &owner_ctx);

// The table and tablespace of a file a message names ("could not extend file "pg_tblspc/...""
// names no table), and the way out of a full disk; looked up in a transaction of its own, so
// that a failure here cannot stop the error from being recorded. Empty when there is nothing.
std::string relation_files_named(const std::string &message, bool disk_full);

// Says why a step failed, in the server log (with PostgreSQL's SQLSTATE, DETAIL, HINT and
// CONTEXT when the error is PostgreSQL's) and in the pipeline's last_error.
void report_failure(int32 pipeline_id, const Pipeline &p, const std::string &message, const PgError *pg_error);

// After the n-th error in a row: waits 1 s, 2 s, ... up to 60 s, cut short by
// resume_pipeline() (any catalog change of the database).
void wait_before_retry(int consecutive_errors);

}  // namespace sgivm::pg
