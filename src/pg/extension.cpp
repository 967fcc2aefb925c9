// The extension's entry points: module magic and _PG_init, which registers the GUCs, installs
// the drop guard and, when preloaded, the shared memory and the pipeline launcher.
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

#include "pg/drop_guard.hpp"
#include "pg/launcher.hpp"
#include "pg/shared_state.hpp"
#include "pg/view_analyzer.hpp"

using namespace sgivm::pg;

void _PG_init(void) {
    DefineCustomIntVariable("stategrid_ivm.batch_size",
                            "Changes a pipeline worker reads and applies per transaction (and per flush inside a large source transaction).",
                            nullptr, &guc_batch_size, 10000, 1, 10000000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("stategrid_ivm.catchup_round",
                            "While a pipeline worker is behind, how long one apply transaction at least keeps decoding further batches before it maintains the views (0: one batch per transaction).",
                            nullptr, &guc_catchup_round_ms, 3000, 0, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("stategrid_ivm.naptime",
                            "How long an idle pipeline worker sleeps before looking for changes it was not woken for.",
                            nullptr, &guc_naptime_ms, 1000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    // A postmaster setting can only be defined while the server starts.
    if (process_shared_preload_libraries_in_progress)
        DefineCustomIntVariable("stategrid_ivm.max_pipelines",
                                "Pipelines that can run at the same time in the whole cluster.",
                                nullptr, &guc_max_pipelines, 16, 1, 1024, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("stategrid_ivm.wal_warning_size",
                            "WAL retained by a pipeline's slot past which the launcher logs a warning (0: never).",
                            nullptr, &guc_wal_warning_mb, 1024, 0, INT_MAX / 2, PGC_SIGHUP, GUC_UNIT_MB, nullptr, nullptr, nullptr);
    // Tests only: the worker SIGKILLs itself at the named points (crash-matrix TAP test).
    DefineCustomStringVariable("stategrid_ivm.debug_crash_at",
                               "Comma-separated points where a pipeline worker kills itself (for crash tests only).",
                               nullptr, &guc_debug_crash_at, "", PGC_SIGHUP, GUC_NOT_IN_SAMPLE, nullptr, nullptr, nullptr);
    static const struct config_enum_entry strategies[] = {
        {"auto", kStrategyAuto, false}, {"recompute", kStrategyRecompute, false}, {nullptr, 0, false}};
    DefineCustomEnumVariable("stategrid_ivm.view_strategy",
                             "How add_view plans a view's maintenance: auto (delta rules where it has them) or recompute (the touched groups recomputed).",
                             nullptr, &guc_view_strategy, kStrategyAuto, strategies, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("stategrid_ivm");
    install_drop_guard();

    if (!process_shared_preload_libraries_in_progress) return;
    install_shared_memory_hooks();
    install_commit_hook();
    register_launcher();
}
