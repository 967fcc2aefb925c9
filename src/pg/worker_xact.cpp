// The worker's transactions and failures (worker_xact.hpp).
#include "pg/worker_xact.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include <optional>

#include "core/relation_path.hpp"
#include "pg/relation_file.hpp"
#include "pg/shared_state.hpp"

namespace sgivm::pg {

void begin_worker_xact(bool repeatable_read) {
    pg_call([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        if (repeatable_read) XactIsoLevel = XACT_REPEATABLE_READ;
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "stategrid_ivm: SPI_connect failed");
        PushActiveSnapshot(GetTransactionSnapshot());
    });
}

void commit_worker_xact(OwnerContext &owner_ctx) {
    pg_call([&] {
        leave_owner_context(owner_ctx);
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, 0);
        pgstat_report_stat(false);
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

std::string relation_files_named(const std::string &message, bool disk_full) {
    std::optional<RelationPath> path = find_relation_path(message);
    if (!path && !disk_full) return "";
    std::string note;
    OwnerContext none;
    try {
        begin_worker_xact();
        note = pg_call([&] {
            char *n = relation_file_note(path ? &*path : nullptr, disk_full);
            return n ? std::string(n) : std::string();
        });
        commit_worker_xact(none);
    } catch (PgError &) {
        pg_call([] { AbortCurrentTransaction(); });
    }
    return note;
}

void report_failure(int32 pipeline_id, const Pipeline &p, const std::string &message, const PgError *pg_error) {
    const ErrorData *d = pg_error ? pg_error->data() : nullptr;
    std::string hint = "It retries with a growing delay; SELECT * FROM stategrid_ivm.pipelines shows its state.";
    if (d && d->hint) hint = std::string(d->hint) + "\n" + hint;
    pg_call([&] {
        ereport(WARNING, (d ? errcode(d->sqlerrcode) : 0,
                          errmsg("stategrid_ivm: pipeline \"%s\" failed: %s", p.name.c_str(), message.c_str()),
                          d && d->detail ? errdetail("%s", d->detail) : 0, errhint("%s", hint.c_str()),
                          d && d->context ? (errcontext("%s", d->context)) : 0));
    });
    OwnerContext none;
    begin_worker_xact();
    record_error(pipeline_id, pg_error ? pg_error->folded() : message, p.slot);
    commit_worker_xact(none);
}

void wait_before_retry(int consecutive_errors) {
    long delay = Min(60000L, 1000L << Min(consecutive_errors - 1, 6));
    TimestampTz until = TimestampTzPlusMilliseconds(pg_call([] { return GetCurrentTimestamp(); }), delay);
    pg_call([&] {
        uint64 generation = shared->generation;
        for (;;) {
            long left = (long)((until - GetCurrentTimestamp()) / 1000);
            if (left <= 0 || shared->generation != generation) break;
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
        }
    });
}

}  // namespace sgivm::pg
