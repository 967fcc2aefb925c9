// The pipeline worker: one per running pipeline. Each step either backfills the mirrors under
// one snapshot, or applies one batch of decoded source transactions in one transaction whose
// commit also records the replication origin's progress; the slot is confirmed afterwards.
//
// Exactly once: a transaction is skipped when its commit lies below the origin's progress
// (applied before a crash) or when the backfill snapshot already saw it.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "replication/origin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PGDLLEXPORT void sgivm_worker_main(Datum arg);
}

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/change_format.hpp"
#include "core/relation_path.hpp"
#include "core/snapshot.hpp"
#include "core/view_plan.hpp"
#include "pg/change_reader.hpp"
#include "pg/mirror_table.hpp"
#include "pg/owner_role.hpp"
#include "pg/relation_file.hpp"
#include "pg/seam.hpp"
#include "pg/shared_state.hpp"
#include "pg/slot_health.hpp"

namespace sgivm::pg {

namespace {

// The pipeline's catalog row, as read at the start of each step.
struct PipelineRow {
    std::string name, state, slot, origin;
    Oid owner = InvalidOid;
    std::optional<std::string> backfill_snapshot;
    XLogRecPtr backfill_lsn = InvalidXLogRecPtr;
    std::string relids;  // plugin option: the sources' OIDs
};

struct SourceRow {
    Oid source_relid;
    Oid mirror_relid;
    std::string source_name;
    bool exists;
    std::string inheritance_child;  // a table that inherits from it (not a partition), if any
};

// A statement of a view's plan, prepared on first use and kept for the session.
struct Statement {
    std::string sql;
    SPIPlanPtr plan = nullptr;
};

// A maintained view as the worker runs it: statements from the catalog's plan, prepared once.
struct ViewMaintenance {
    Oid relid = InvalidOid;
    std::string name;
    std::vector<Oid> inputs;
    std::vector<std::string> setup;
    std::vector<std::pair<Oid, std::string>> uses;  // (input table, column) the query reads
    std::string populate;
    std::string analyze;  // ANALYZE of the affected-keys table
    std::string analyze_new;  // ANALYZE of the recomputed rows (before the diff by key)
    bool read_by_views = false;  // another view reads this one: its changes are captured
    // The plan's statements by kind: fill, compute, update, remove, recompute, replace_remove,
    // replace_insert; "<kind>/nc" the same without capturing the view's changes (plans of
    // 0.2.0 have neither update nor /nc, and plans of 0.1.0 no compute either).
    std::map<std::string, std::vector<Statement>> steps;
    bool has(const std::string &kind) const {
        auto it = steps.find(kind);
        return it != steps.end() && !it->second.empty() && !it->second[0].sql.empty();
    }
    // The kind's statements, uncaptured when nothing reads this view and the plan has them.
    std::vector<Statement> &statements(const std::string &kind) {
        if (!read_by_views && has(kind + "/nc")) return steps[kind + "/nc"];
        return steps[kind];
    }
};

// The end of the error of a view that fails: the call that removes just that view (the rest of
// the pipeline waits for it meanwhile).
std::string drop_view_advice(const std::string &view) {
    std::string literal;
    for (char c : view) literal += c == '\'' ? std::string("''") : std::string(1, c);
    return "; SELECT stategrid_ivm.drop_view('" + literal + "') removes the view from the pipeline, which then continues";
}

// add_view committed while a batch ran: the batch is redone with the new view set.
struct ViewSetChanged : std::runtime_error {
    ViewSetChanged() : std::runtime_error("the pipeline's views changed during the batch") {}
};

// A partitioned source gained or lost rows by DDL (a Resync message): the batch is dropped and
// the pipeline backfills again, which copies the sources as they are now and skips, in the
// stream, what the copy holds (the Resync's transaction included).
struct SourcesChanged : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Runs f with the bootstrap superuser's rights (slot functions, our catalog), then returns to
// the pipeline owner. The search_path is pinned meanwhile: a function or operator that the
// owner's code could have put on the session's path must not be what our catalog queries
// call. The security context and the setting are restored by the transaction abort on error.
template <typename F>
auto as_superuser(F &&f) {
    Oid saved_user;
    int saved_ctx;
    GetUserIdAndSecContext(&saved_user, &saved_ctx);
    int guc_level = NewGUCNestLevel();
    SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved_ctx | SECURITY_LOCAL_USERID_CHANGE);
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    auto restore = [&] {
        AtEOXact_GUC(true, guc_level);
        SetUserIdAndSecContext(saved_user, saved_ctx);
    };
    if constexpr (std::is_void_v<decltype(f())>) {
        f();
        restore();
    } else {
        auto r = f();
        restore();
        return r;
    }
}

std::string text_of(HeapTuple t, TupleDesc d, int col, bool *isnull) {
    char *v = SPI_getvalue(t, d, col);
    *isnull = v == nullptr;
    return v ? std::string(v) : std::string();
}

class PipelineWorker {
public:
    PipelineWorker(int slot_index) : slot_index_(slot_index) {}
    [[noreturn]] void run();

private:
    bool step();  // true when more work is waiting
    void begin_xact(bool repeatable_read = false);
    void commit_xact();
    void load_pipeline();
    int64 lock_pipeline();
    void setup_origin();
    void become_owner();
    template <typename F>
    void creating_working_tables(F &&f);
    void backfill();
    bool apply_batch();
    void handle_message(const Message &m);
    void flush_all();
    std::string relation_files_named(const std::string &message, bool disk_full);
    void record_error(const std::string &message, const std::string &detail);
    void backfill_again(const std::string &why);
    void abort_batch();
    void stop_and_exit(const char *why);
    void publish(XLogRecPtr caught_up, TimestampTz oldest_unapplied, bool batch_done);
    MirrorTable *mirror_for(uint32_t relid);
    void load_views(int version);
    void maintain_views();
    int64 read_views_version();

    int slot_index_;
    Oid dboid_ = InvalidOid;
    int32 pipeline_id_ = 0;
    PipelineRow p_;
    std::vector<SourceRow> sources_;
    std::map<Oid, std::unique_ptr<MirrorTable>> mirrors_;
    std::vector<ViewMaintenance> views_;
    int64 views_version_ = -1;
    RepOriginId origin_ = InvalidRepOriginId;
    bool origin_ready_ = false;
    OwnerContext owner_ctx_;               // while the step runs as the pipeline's owner
    int64 working_tables_version_ = -1;   // views_version_ the views' working tables exist for
    int consecutive_errors_ = 0;
    XLogRecPtr caught_up_ = InvalidXLogRecPtr;
    ChangeReader reader_;

    // State of the batch being applied.
    std::optional<CopySnapshot> copy_snapshot_;
    XLogRecPtr origin_progress_ = InvalidXLogRecPtr;
    bool skipping_ = false;
    bool discard_temp_tables_ = false;  // a batch failed: the next one recreates its temp tables
    uint64_t pending_changes_ = 0;
    uint64_t txns_applied_ = 0, rows_applied_ = 0;
    XLogRecPtr last_end_lsn_ = InvalidXLogRecPtr;
    XLogRecPtr last_seen_end_lsn_ = InvalidXLogRecPtr;  // skipped transactions included
    TimestampTz last_commit_time_ = 0;
    TimestampTz first_commit_time_ = 0;
    long maintain_ms_ = 0;  // how long the last batch's view maintenance took
    std::vector<TimestampTz> commit_times_;  // of the source transactions the batch applies
};

void PipelineWorker::begin_xact(bool repeatable_read) {
    pg_call([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        // The backfill copies every source under the one snapshot it records.
        if (repeatable_read) XactIsoLevel = XACT_REPEATABLE_READ;
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "stategrid_ivm: SPI_connect failed");
        PushActiveSnapshot(GetTransactionSnapshot());
    });
}

void PipelineWorker::commit_xact() {
    pg_call([&] {
        leave_owner_context(owner_ctx_);  // nothing the owner's code set survives the batch
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, 0);
        pgstat_report_stat(false);
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

void PipelineWorker::stop_and_exit(const char *why) {
    pg_call([&] {
        if (IsTransactionState()) {
            leave_owner_context(owner_ctx_);
            SPI_finish();
            PopActiveSnapshot();
            CommitTransactionCommand();
        }
        ereport(LOG, (errmsg("stategrid_ivm: worker of pipeline \"%s\" stops: %s", p_.name.c_str(), why)));
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        PipelineSlot *s = &shared->slots[slot_index_];
        s->want = false;
        s->latch = nullptr;
        s->pid = 0;  // nobody may signal this pid for the pipeline any more
        s->oldest_unapplied_commit = 0;
        LWLockRelease(shared->lock);
        proc_exit(0);
    });
    std::abort();  // proc_exit does not return
}

// Reads the pipeline's catalog row, its sources and its views (lock_pipeline locks the row once
// a batch has something to apply).
void PipelineWorker::load_pipeline() {
    // DROP EXTENSION is refused while pipelines exist (drop_guard.cpp); should the catalog go
    // all the same (its rows deleted by hand first), there is nothing left to retry.
    if (!pg_call([] { return OidIsValid(get_extension_oid("stategrid_ivm", true)); }))
        stop_and_exit("the extension stategrid_ivm was dropped from its database");
    std::string state;
    bool found = false;
    pg_call([&] {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid argtype = INT4OID;
        const char *sql =
            "SELECT name, state, slot_name, origin_name, owner, backfill_snapshot::text, backfill_lsn::text,"
            " (SELECT string_agg(source_relid::text, ',') FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id),"
            " EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots r"
            "         WHERE r.slot_name = p.slot_name AND r.database = pg_catalog.current_database())"
            " FROM stategrid_ivm.pipeline p WHERE pipeline_id = $1";
        int rc = as_superuser([&] { return SPI_execute_with_args(sql, 1, &argtype, &arg, nullptr, false, 1); });
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm: could not read the pipeline catalog");
        found = SPI_processed == 1;
    });
    if (!found) stop_and_exit("the pipeline was dropped");
    bool isnull;
    HeapTuple t = SPI_tuptable->vals[0];
    TupleDesc d = SPI_tuptable->tupdesc;
    p_.name = text_of(t, d, 1, &isnull);
    p_.state = text_of(t, d, 2, &isnull);
    p_.slot = text_of(t, d, 3, &isnull);
    p_.origin = text_of(t, d, 4, &isnull);
    p_.owner = static_cast<Oid>(std::stoul(text_of(t, d, 5, &isnull)));
    std::string snap = text_of(t, d, 6, &isnull);
    p_.backfill_snapshot = isnull ? std::nullopt : std::optional<std::string>(snap);
    std::string lsn = text_of(t, d, 7, &isnull);
    p_.backfill_lsn = InvalidXLogRecPtr;
    if (!isnull) p_.backfill_lsn = pg_call([&] { return DatumGetLSN(DirectFunctionCall1(pg_lsn_in, CStringGetDatum(lsn.c_str()))); });
    p_.relids = text_of(t, d, 8, &isnull);
    bool slot_exists = text_of(t, d, 9, &isnull) == "t";

    if (p_.state != "running" && p_.state != "backfilling" && p_.state != "error")
        stop_and_exit(("the pipeline is " + p_.state).c_str());
    // Restored from a dump, or dropped by hand: nothing to retry. The probe the launcher runs
    // when this worker stops puts the pipeline in error, naming rebuild_pipeline().
    if (!slot_exists) stop_and_exit(("its replication slot " + p_.slot + " does not exist").c_str());

    // Its sources, and whether each still exists.
    sources_.clear();
    pg_call([&] {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid argtype = INT4OID;
        int rc = as_superuser([&] {
            return SPI_execute_with_args(
                "SELECT source_relid, ods_relid, source_name,"
                " EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = s.source_relid),"
                " (SELECT i.inhrelid::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i"
                "  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
                "  WHERE i.inhparent = s.source_relid AND NOT c.relispartition ORDER BY 1 LIMIT 1)"
                " FROM stategrid_ivm.source s WHERE pipeline_id = $1 ORDER BY source_relid",
                1, &argtype, &arg, nullptr, true, 0);
        });
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm: could not read the pipeline's sources");
    });
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple st = SPI_tuptable->vals[i];
        SourceRow s;
        s.source_relid = static_cast<Oid>(std::stoul(text_of(st, SPI_tuptable->tupdesc, 1, &isnull)));
        s.mirror_relid = static_cast<Oid>(std::stoul(text_of(st, SPI_tuptable->tupdesc, 2, &isnull)));
        s.source_name = text_of(st, SPI_tuptable->tupdesc, 3, &isnull);
        s.exists = text_of(st, SPI_tuptable->tupdesc, 4, &isnull) == "t";
        s.inheritance_child = text_of(st, SPI_tuptable->tupdesc, 5, &isnull);
        sources_.push_back(s);
    }
    for (const SourceRow &s : sources_) {
        if (!s.exists)
            throw std::runtime_error("source table " + s.source_name + " of pipeline \"" + p_.name +
                                     "\" was dropped; drop the pipeline and create it again");
        // Rows of an inheritance child are logged as the child's and copied by nobody: refuse
        // to go on rather than leave them out of a table that reads them through the parent.
        if (!s.inheritance_child.empty())
            throw std::runtime_error(
                "source table " + s.source_name + " of pipeline \"" + p_.name + "\" has an inheritance child, " +
                s.inheritance_child + " (ALTER TABLE ... INHERIT), whose rows the pipeline cannot follow; remove it"
                " with ALTER TABLE " + s.inheritance_child + " NO INHERIT " + s.source_name +
                " and the pipeline goes on, or use declarative partitioning (PARTITION BY), whose partitions it follows");
    }
    // Mirrors for new sources; forget those of removed ones.
    std::map<Oid, std::unique_ptr<MirrorTable>> next;
    for (const SourceRow &s : sources_) {
        auto it = mirrors_.find(s.source_relid);
        if (it != mirrors_.end())
            next.emplace(s.source_relid, std::move(it->second));
        else
            next.emplace(s.source_relid, std::make_unique<MirrorTable>(s.source_relid, s.mirror_relid, s.source_name));
    }
    mirrors_ = std::move(next);
    int64 version = read_views_version();
    // (a mirror that a new view reads gets its delta table now; preparing its statements
    // locks the mirror: the pipeline's row is locked first, in the order drop_pipeline uses)
    if (version != views_version_) {
        lock_pipeline();
        creating_working_tables([&] { load_views(static_cast<int>(version)); });
    }
}

// Locks the pipeline's row for the batch about to write (add_view, refresh_view, pause and drop
// lock it too, so they wait for a whole batch instead of deadlocking with one), and
// stops if the pipeline was paused or dropped since load_pipeline read it. The lock gives the
// transaction an xid: it is taken only once there is something to apply, so that a batch that
// finds nothing writes no WAL (its own commit would otherwise wake the worker again, forever).
// Returns the views_version of the locked row: while the lock is held, no add_view commits.
int64 PipelineWorker::lock_pipeline() {
    int64 version = 0;
    const char *value = pg_call([&]() -> const char * {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid argtype = INT4OID;
        int rc = as_superuser([&] {
            return SPI_execute_with_args(
                "SELECT state, views_version FROM stategrid_ivm.pipeline WHERE pipeline_id = $1 FOR NO KEY UPDATE", 1,
                &argtype, &arg, nullptr, false, 1);
        });
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm: could not lock the pipeline catalog");
        if (SPI_processed != 1) return nullptr;
        bool isnull;
        version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
        const char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        return v ? v : "";
    });
    if (!value) stop_and_exit("the pipeline was dropped");
    std::string state(value);
    if (state != "running" && state != "backfilling" && state != "error") stop_and_exit(("the pipeline is " + state).c_str());
    p_.state = state;
    return version;
}

int64 PipelineWorker::read_views_version() {
    int64 v = 0;
    pg_call([&] {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid argtype = INT4OID;
        int rc = as_superuser([&] {
            return SPI_execute_with_args("SELECT views_version FROM stategrid_ivm.pipeline WHERE pipeline_id = $1", 1,
                                         &argtype, &arg, nullptr, false, 1);
        });
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm: could not read the pipeline catalog");
        bool isnull = true;
        if (SPI_processed == 1) v = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        if (isnull) v = -2;  // dropped meanwhile: the next step notices
    });
    return v;
}

void PipelineWorker::load_views(int version) {
    pg_call([&] {
        for (ViewMaintenance &v : views_)
            for (auto &kind : v.steps)
                for (Statement &st : kind.second)
                    if (st.plan) SPI_freeplan(st.plan);
    });
    views_.clear();
    pg_call([&] {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid argtype = INT4OID;
        int rc = as_superuser([&] {
            return SPI_execute_with_args(
                "SELECT v.relid, v.view_name, s.kind, s.sql FROM stategrid_ivm.view v, LATERAL ("
                "  SELECT 'input' AS kind, x AS sql, n FROM jsonb_array_elements_text(v.plan->'input_relids') WITH ORDINALITY i(x, n)"
                "  UNION ALL SELECT 'setup', x, n FROM jsonb_array_elements_text(v.plan->'setup') WITH ORDINALITY i(x, n)"
                "  UNION ALL SELECT 'fill', v.plan->>'fill_affected', 1"
                "  UNION ALL SELECT 'populate', v.plan->>'populate', 1"
                // the maintenance statements: a string or an array of them, by kind
                "  UNION ALL SELECT e.key || c.suffix, x, n FROM (VALUES (v.plan, ''), (v.plan->'uncaptured', '/nc')) c(obj, suffix),"
                "    jsonb_each(coalesce(c.obj, '{}')) e,"
                "    jsonb_array_elements_text(CASE jsonb_typeof(e.value) WHEN 'array' THEN e.value ELSE jsonb_build_array(e.value) END)"
                "      WITH ORDINALITY i(x, n)"
                "    WHERE e.key IN ('compute', 'update', 'remove', 'recompute', 'replace_remove', 'replace_insert')"
                "  UNION ALL SELECT 'uses', (v.plan->'input_relids'->>(i.n - 1)::int) || '.' || c, i.n"
                "    FROM jsonb_array_elements(coalesce(v.plan->'input_columns', '[]')) WITH ORDINALITY i(cols, n),"
                "         jsonb_array_elements_text(i.cols) c) s"
                " WHERE v.pipeline_id = $1 ORDER BY v.view_id, s.kind, s.n",
                1, &argtype, &arg, nullptr, false, 0);
        });
        if (rc != SPI_OK_SELECT) elog(ERROR, "stategrid_ivm: could not read the pipeline's views");
    });
    bool isnull;
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple t = SPI_tuptable->vals[i];
        TupleDesc d = SPI_tuptable->tupdesc;
        Oid relid = static_cast<Oid>(std::stoul(text_of(t, d, 1, &isnull)));
        if (views_.empty() || views_.back().relid != relid) {
            views_.emplace_back();
            views_.back().relid = relid;
            views_.back().name = text_of(t, d, 2, &isnull);
            views_.back().analyze = "ANALYZE " + affected_table(relid);
        }
        ViewMaintenance &v = views_.back();
        std::string kind = text_of(t, d, 3, &isnull), sql = text_of(t, d, 4, &isnull);
        if (kind == "input") v.inputs.push_back(static_cast<Oid>(std::stoul(sql)));
        else if (kind == "setup") v.setup.push_back(sql);
        else if (kind == "populate") v.populate = sql;
        else if (kind == "uses") {
            size_t dot = sql.find('.');
            v.uses.emplace_back(static_cast<Oid>(std::stoul(sql.substr(0, dot))), sql.substr(dot + 1));
        } else {
            v.steps[kind].push_back(Statement{sql});
        }
    }
    for (ViewMaintenance &v : views_) {
        v.analyze_new = "ANALYZE " + new_rows_table(v.relid);
        for (const ViewMaintenance &reader : views_)
            for (Oid in : reader.inputs) v.read_by_views = v.read_by_views || in == v.relid;
    }
    // Mirrors that views read keep their changes for them.
    for (auto &m : mirrors_) {
        bool read = false;
        for (const ViewMaintenance &v : views_)
            for (Oid in : v.inputs) read = read || in == m.second->mirror_relid();
        m.second->set_capture(read);
    }
    views_version_ = version;
}

// After the mirrors: every view whose inputs changed, in dependency order, recomputed over the
// keys or groups the changes touched. Views write their own deltas for the views above them.
void PipelineWorker::maintain_views() {
    if (views_.empty()) return;
    std::map<Oid, uint64> changed;  // delta rows of each input in this batch
    uint64 batch_rows = 0;
    for (auto &m : mirrors_) {
        changed[m.second->mirror_relid()] = m.second->captured;
        batch_rows += m.second->captured;
    }
    // The work tables' statistics need the number of rows and a rough idea of their values: a
    // small sample (3,000 rows) is enough, and cheap on every batch. A small batch reads a few
    // groups' rows, cached: index scans are cheaper than the planner's default page costs say
    // (a large one reads much of its tables, where the defaults choose well).
    // (SET LOCAL, without parsing a statement)
    pg_call([&] {
        set_config_option("default_statistics_target", "10", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR,
                          false);
        if (batch_rows < 10000)
            set_config_option("random_page_cost", "1.1", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, ERROR,
                              false);
    });
    for (ViewMaintenance &v : views_) {
        uint64 delta_rows = 0;
        for (Oid in : v.inputs) delta_rows += changed[in];
        changed[v.relid] = 0;
        if (delta_rows == 0) continue;
        uint64 written = 0;
        try {
        pg_call([&] {
            // (its working tables exist: become_owner made them for this view set)
            // Runs the kind's statements (prepared once); returns the rows they wrote.
            auto run = [&](std::vector<Statement> &statements, const char *what) {
                uint64 rows = 0;
                for (Statement &st : statements) {
                    if (!st.plan) {
                        st.plan = SPI_prepare(st.sql.c_str(), 0, nullptr);
                        if (!st.plan)
                            elog(ERROR, "stategrid_ivm: could not prepare \"%s\": %s", st.sql.c_str(), SPI_result_code_string(SPI_result));
                        SPI_keepplan(st.plan);
                    }
                    if (SPI_execute_plan(st.plan, nullptr, nullptr, false, 0) < 0)
                        elog(ERROR, "stategrid_ivm: %s %s failed", what, v.name.c_str());
                    rows += SPI_processed;
                }
                return rows;
            };
            run(v.steps["fill"], "finding the rows to maintain of");
            // The planner must know how many keys or groups a batch touched (a few, or most of
            // the view): a work table without statistics passes for thousands of rows.
            if (SPI_execute(v.analyze.c_str(), false, 0) < 0)
                elog(ERROR, "stategrid_ivm: %s failed", v.analyze.c_str());
            // Rows of the scope that changed are replaced (diff); when the input changes are
            // many against the recomputed scope (a backlog, a bulk load), most of it changes
            // anyway and the whole scope is replaced from the work table instead.
            bool replace = false;
            if (v.has("compute")) {
                uint64 recomputed = run(v.steps["compute"], "recomputing the rows of");
                replace = v.has("replace_insert") && delta_rows >= 10000 && delta_rows * 4 >= recomputed;
                // the diff by key joins the recomputed rows with the view: the planner must
                // know whether they are ten or a hundred thousand
                if (!replace && v.has("update") && SPI_execute(v.analyze_new.c_str(), false, 0) < 0)
                    elog(ERROR, "stategrid_ivm: %s failed", v.analyze_new.c_str());
            }
            if (replace) {
                written += run(v.statements("replace_remove"), "maintaining");
                written += run(v.statements("replace_insert"), "maintaining");
            } else {
                written += run(v.statements("update"), "maintaining");
                written += run(v.statements("remove"), "maintaining");
                written += run(v.statements("recompute"), "maintaining");
            }
        });
        } catch (PgError &e) {
            // Name the view: the statement's own message rarely does.
            e.add_context("maintaining view " + v.name,
                          e.data() && e.data()->sqlerrcode == ERRCODE_DISK_FULL ? "" : drop_view_advice(v.name));
            throw;
        }
        changed[v.relid] = written;
    }
}

void PipelineWorker::setup_origin() {
    if (origin_ready_) return;
    pg_call([&] {
        origin_ = replorigin_by_name(p_.origin.c_str(), false);
        replorigin_session_setup(origin_);
        // Every write of this worker carries the origin: the plugin drops them early.
        replorigin_session_origin = origin_;
    });
    origin_ready_ = true;
    std::string appname = "stategrid_ivm pipeline " + p_.name;
    pg_call([&] {
        SetConfigOption("application_name", appname.c_str(), PGC_USERSET, PGC_S_SESSION);
        // Every decoding call logs its snapshot building at LOG: keep the server log readable,
        // unless debugging was asked for (then each batch also logs its sizes and times).
        if (log_min_messages > DEBUG1) SetConfigOption("log_min_messages", "warning", PGC_SUSET, PGC_S_SESSION);
        pgstat_report_appname(appname.c_str());
    });
}

void PipelineWorker::publish(XLogRecPtr caught_up, TimestampTz oldest_unapplied, bool batch_done) {
    // Freshness: from each applied source commit to this batch's commit, which made it visible.
    LatencyHistogram fresh;
    fresh.clear();
    TimestampTz now = pg_call([] { return GetCurrentTimestamp(); });
    if (batch_done)
        for (TimestampTz t : commit_times_) fresh.add(static_cast<double>(now - t) / 1000.0);
    pg_call([&] {
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        PipelineSlot *s = &shared->slots[slot_index_];
        if (caught_up != InvalidXLogRecPtr) s->caught_up_lsn = caught_up;
        s->oldest_unapplied_commit = oldest_unapplied;
        if (batch_done) {
            s->last_batch_at = now;
            s->failures = 0;  // working again: the next restart after a crash comes quickly
            s->freshness.rotate(now);
            s->freshness.current.merge(fresh);
        }
        LWLockRelease(shared->lock);
    });
    if (batch_done) commit_times_.clear();
}

// The initial copy: every mirror emptied and filled from its source under one snapshot, which
// is recorded so that the stream can skip what the copy already contains.
void PipelineWorker::backfill() {
    pg_call([&] { pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: backfilling the ODS mirrors"); });
    std::string snapshot, lsn;
    pg_call([&] {
        int rc = as_superuser([&] {
            return SPI_execute("SELECT pg_catalog.pg_current_snapshot()::text, pg_catalog.pg_current_wal_insert_lsn()::text",
                               true, 1);
        });
        if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "stategrid_ivm: could not read the snapshot");
    });
    bool isnull;
    snapshot = text_of(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    lsn = text_of(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    uint64 copied = 0;
    for (const SourceRow &s : sources_) {
        // columns the mirror shares with the source (by name)
        std::string sql;
        pg_call([&] {
            Datum args[2] = {ObjectIdGetDatum(s.source_relid), ObjectIdGetDatum(s.mirror_relid)};
            Oid types[2] = {OIDOID, OIDOID};
            int rc = as_superuser([&] {
                return SPI_execute_with_args(
                    "SELECT format('DELETE FROM %s', $2::regclass), "
                    // a partitioned table is read whole, partitions included
                    " format('INSERT INTO %s (%s) SELECT %s FROM %s%s', $2::regclass, cols, cols,"
                    "        CASE (SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1) WHEN 'p' THEN '' ELSE 'ONLY ' END,"
                    "        $1::regclass) FROM ("
                    " SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS cols"
                    " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attribute m"
                    "   ON m.attrelid = $2 AND m.attname = a.attname AND NOT m.attisdropped AND m.attgenerated = ''"
                    " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') c",
                    2, types, args, nullptr, true, 1);
            });
            if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "stategrid_ivm: could not plan the copy");
        });
        std::string del = text_of(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        sql = text_of(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
        try {
            pg_call([&] {
                if (SPI_execute(del.c_str(), false, 0) != SPI_OK_DELETE) elog(ERROR, "stategrid_ivm: could not empty a mirror");
                if (SPI_execute(sql.c_str(), false, 0) != SPI_OK_INSERT) elog(ERROR, "stategrid_ivm: could not copy %s", s.source_name.c_str());
                copied += SPI_processed;
            });
        } catch (PgError &e) {
            e.add_context("backfilling the mirror of source table " + s.source_name);
            throw;
        }
    }
    // Views start from the copied mirrors.
    for (const ViewMaintenance &v : views_) {
        std::string del = "DELETE FROM " + v.name;
        try {
            pg_call([&] {
                if (SPI_execute(del.c_str(), false, 0) != SPI_OK_DELETE) elog(ERROR, "stategrid_ivm: could not empty %s", v.name.c_str());
                if (SPI_execute(v.populate.c_str(), false, 0) != SPI_OK_INSERT) elog(ERROR, "stategrid_ivm: could not fill %s", v.name.c_str());
            });
        } catch (PgError &e) {
            e.add_context("backfilling view " + v.name,
                          e.data() && e.data()->sqlerrcode == ERRCODE_DISK_FULL ? "" : drop_view_advice(v.name));
            throw;
        }
    }
    pg_call([] { crash_point("backfill_copied"); });
    pg_call([&] {
        Datum args[4] = {Int32GetDatum(pipeline_id_), CStringGetTextDatum(snapshot.c_str()),
                         CStringGetTextDatum(lsn.c_str()), Int64GetDatum(static_cast<int64>(copied))};
        Oid types[4] = {INT4OID, TEXTOID, TEXTOID, INT8OID};
        int rc = as_superuser([&] {
            return SPI_execute_with_args(
                "UPDATE stategrid_ivm.pipeline SET state = 'running', backfill_snapshot = $2::pg_snapshot,"
                " backfill_lsn = $3::pg_lsn, rows_applied = rows_applied + $4"
                " WHERE pipeline_id = $1 AND state IN ('backfilling', 'error')",
                4, types, args, nullptr, false, 0);
        });
        if (rc != SPI_OK_UPDATE) elog(ERROR, "stategrid_ivm: could not record the backfill");
        ereport(LOG, (errmsg("stategrid_ivm: pipeline \"%s\" backfilled " UINT64_FORMAT " rows under snapshot %s",
                             p_.name.c_str(), copied, snapshot.c_str())));
    });
}

MirrorTable *PipelineWorker::mirror_for(uint32_t relid) {
    auto it = mirrors_.find(relid);
    return it == mirrors_.end() ? nullptr : it->second.get();
}

void PipelineWorker::flush_all() {
    for (auto &m : mirrors_) m.second->flush();
    pending_changes_ = 0;
}

void PipelineWorker::handle_message(const Message &m) {
    switch (m.kind) {
        case MessageKind::Begin: {
            const BeginMessage &b = m.begin;
            skipping_ = b.final_lsn < origin_progress_ ||
                        (copy_snapshot_ && b.final_lsn < p_.backfill_lsn && copy_snapshot_->saw(b.xid));
            if (!skipping_ && first_commit_time_ == 0) {
                first_commit_time_ = b.commit_time;
                publish(InvalidXLogRecPtr, b.commit_time, false);
            }
            break;
        }
        case MessageKind::Relation:
            if (MirrorTable *t = mirror_for(m.relation.relid)) {
                creating_working_tables([&] { t->describe(m.relation); });  // a new column: new delta table
                // A column the source lost that a view reads: stop, naming both.
                for (const std::string &col : t->stream_lacks())
                    for (const ViewMaintenance &v : views_)
                        for (const auto &use : v.uses)
                            if (use.first == t->mirror_relid() && use.second == col)
                                throw std::runtime_error("column \"" + col + "\" of source table " + t->source_name() +
                                                         " was dropped or renamed, but view " + v.name +
                                                         " reads it; restore the column and rebuild the pipeline (SELECT"
                                                         " stategrid_ivm.rebuild_pipeline('" + p_.name +
                                                         "')), or drop the pipeline and create it again");
                // A column the source retyped: its values no longer fit the mirror's column.
                for (const MirrorTable::RetypedColumn &r : t->stream_retyped()) {
                    std::string readers;
                    for (const ViewMaintenance &v : views_)
                        for (const auto &use : v.uses)
                            if (use.first == t->mirror_relid() && use.second == r.name &&
                                readers.find(v.name) == std::string::npos)
                                readers += (readers.empty() ? "" : ", ") + v.name;
                    std::string what = "column \"" + r.name + "\" of source table " + t->source_name() +
                                       " changed type from " + r.mirror_type + " to " + r.stream_type;
                    if (!readers.empty())
                        throw std::runtime_error(what + ", and view " + readers +
                                                 " reads it; restore the column's type and rebuild the pipeline (SELECT"
                                                 " stategrid_ivm.rebuild_pipeline('" + p_.name +
                                                 "')), or drop the pipeline with its tables and create it again");
                    std::string column = pg_call([&] { return std::string(quote_identifier(r.name.c_str())); });
                    std::string mirror = pg_call([&] {
                        Oid m = t->mirror_relid();
                        return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(m)), get_rel_name(m)));
                    });
                    throw std::runtime_error(what + "; no view reads it: ALTER TABLE " + mirror +
                                             " ALTER COLUMN " + column + " TYPE " + r.stream_type +
                                             " makes the mirror follow, and the pipeline continues");
                }
            }
            break;
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete:
            if (skipping_) break;
            if (MirrorTable *t = mirror_for(m.row.relid)) {
                if (!t->described()) throw FormatError("row change before its relation message");
                if (m.kind != MessageKind::Insert && m.row.old_kind == OldRowKind::Key && m.row.old_row.empty())
                    throw std::runtime_error(
                        std::string(m.kind == MessageKind::Delete ? "a DELETE from" : "an UPDATE of the key of") +
                        " source table " + t->source_name() +
                        " carries no key (its REPLICA IDENTITY is NOTHING, or it lost its primary key), so the"
                        " pipeline cannot tell which row went; give the table its key back (REPLICA IDENTITY DEFAULT"
                        " with a primary key), then rebuild the pipeline: SELECT stategrid_ivm.rebuild_pipeline('" +
                        p_.name + "')");
                t->add(m.row);
                rows_applied_++;
                if (++pending_changes_ >= static_cast<uint64_t>(guc_batch_size)) flush_all();
            }
            break;
        case MessageKind::Truncate:
            if (skipping_) break;
            for (uint32_t relid : m.truncate.relids) {
                if (MirrorTable *t = mirror_for(relid)) {
                    flush_all();
                    t->truncate();
                    rows_applied_++;
                }
            }
            break;
        case MessageKind::Resync:
            // (in a transaction the last backfill's copy already holds, it says nothing new)
            if (skipping_) break;
            if (MirrorTable *t = mirror_for(m.resync.relid))
                throw SourcesChanged("partition " + m.resync.partition + " of source table " + t->source_name() + " was " +
                                     resync_reason_text(m.resync.reason));
            break;
        case MessageKind::Commit:
            last_seen_end_lsn_ = m.commit.end_lsn;
            if (!skipping_) {
                txns_applied_++;
                commit_times_.push_back(m.commit.commit_time);
                last_end_lsn_ = m.commit.end_lsn;
                last_commit_time_ = m.commit.commit_time;
            }
            skipping_ = false;
            break;
    }
}

// One apply transaction over the next batch of decoded source transactions.
bool PipelineWorker::apply_batch() {
    XLogRecPtr flushed = pg_call([] { return GetFlushRecPtr(nullptr); });
    if (flushed <= caught_up_ && p_.state == "running") {  // nothing new in the WAL
        commit_xact();
        return false;
    }

    copy_snapshot_.reset();
    if (p_.backfill_snapshot) copy_snapshot_ = CopySnapshot::parse(*p_.backfill_snapshot);
    origin_progress_ = pg_call([] { return replorigin_session_get_progress(false); });
    skipping_ = false;
    pending_changes_ = txns_applied_ = rows_applied_ = 0;
    commit_times_.clear();
    last_end_lsn_ = last_seen_end_lsn_ = InvalidXLogRecPtr;
    last_commit_time_ = first_commit_time_ = 0;

    if (!reader_.is_open()) {
        SlotHealth health = pg_call([&] { return slot_health(p_.slot.c_str()); });
        if (health != SlotHealth::Usable)
            throw std::runtime_error(
                "replication slot " + p_.slot + " of pipeline \"" + p_.name + "\" " +
                (health == SlotHealth::Lost ? "was invalidated: the server removed WAL the pipeline still needed"
                                              " (it kept more than max_slot_wal_keep_size)"
                                            : "does not exist (dropped by hand, or the database was restored from a dump)") +
                "; rebuild the pipeline, which copies its sources again: SELECT stategrid_ivm.rebuild_pipeline('" +
                p_.name + "')");
        pg_call([&] {
            List *options = list_make2(makeDefElem(pstrdup("relids"), (Node *)makeString(pstrdup(p_.relids.c_str())), -1),
                                       makeDefElem(pstrdup("skip-origin"), (Node *)makeString(pstrdup(p_.origin.c_str())), -1));
            reader_.open(p_.slot.c_str(), options);
        });
    }
    // Chunks of batch_size changes (whole source transactions) are decoded and applied to the
    // mirrors one after the other. While more WAL waits, the transaction takes further chunks
    // for at least stategrid_ivm.catchup_round, and for twice as long as the last view
    // maintenance took: a backlog then costs few maintenance rounds, each over many changes (a
    // round's cost is that of the groups and partitions it touches, nearly the same for 10,000
    // changes as for 300,000), while a worker that keeps up applies what came at once.
    bool more = false;
    int chunks = 0;
    TimestampTz batch_start = pg_call([] { return GetCurrentTimestamp(); });
    const int round_ms = guc_catchup_round_ms == 0 ? 0 : static_cast<int>(Max(static_cast<long>(guc_catchup_round_ms), 2 * maintain_ms_));
    auto read_chunk = [&] {
        chunks++;
        pg_call([&] {
            pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: decoding changes");
            more = reader_.read(flushed, static_cast<uint64>(guc_batch_size));
            pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: applying changes");
        });
    };
    XLogRecPtr round_from = pg_call([&] { return reader_.position(); });
    read_chunk();
    if (round_from == InvalidXLogRecPtr) round_from = pg_call([&] { return reader_.position(); });
    if (!more && p_.state == "running" && pg_call([&] { return reader_.message_count(); }) == 0) {
        // Nothing for this pipeline: WAL of other tables or databases, or of this worker's own
        // commits. Such a batch takes no lock and touches no temporary table, so it writes no
        // WAL: otherwise its own commit would wake the worker again, round after round.
        pg_call([&] { reader_.release_messages(); });
        XLogRecPtr position = pg_call([&] { return reader_.position(); });
        commit_xact();
        caught_up_ = flushed;
        pg_call([&] { reader_.confirm(position); });
        publish(flushed, 0, true);
        return false;
    }
    // Lock order, as for pause, drop and add_view: the pipeline's row first, then its tables
    // (become_owner may create working tables LIKE them, the mirrors get written). An add_view
    // that committed since load_pipeline read the view set means this batch starts over with
    // the new set; once the row is locked, none can commit before this batch does.
    int64 locked_version = lock_pipeline();
    if ((!views_.empty() || views_version_ > 0) && locked_version != views_version_) throw ViewSetChanged();
    become_owner();
    for (auto &m : mirrors_) {
        m.second->captured = 0;
        m.second->ensure_delta_table();
    }
    for (;;) {
        TupleTableSlot *slot = pg_call([&] { return MakeSingleTupleTableSlot(reader_.message_desc(), &TTSOpsMinimalTuple); });
        for (;;) {
            std::string_view bytes;
            bool got = pg_call([&] {
                if (!tuplestore_gettupleslot(reader_.messages(), true, false, slot)) return false;
                bool isnull;
                bytea *b = DatumGetByteaPP(slot_getattr(slot, 1, &isnull));
                bytes = std::string_view(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
                return true;
            });
            if (!got) break;
            handle_message(decode(bytes));
        }
        pg_call([&] {
            ExecDropSingleTupleTableSlot(slot);
            reader_.release_messages();
        });
        if (!more || views_.empty() || round_ms == 0) break;
        // Past the round's time, a round that has read more WAL than is left goes on (up to
        // four times as long): otherwise the last bit of a backlog would cost a round of its own.
        bool stop = pg_call([&] {
            if (!TimestampDifferenceExceeds(batch_start, GetCurrentTimestamp(), round_ms)) return false;
            XLogRecPtr at = reader_.position();
            bool mostly_read = flushed - at <= at - round_from;
            return !mostly_read || TimestampDifferenceExceeds(batch_start, GetCurrentTimestamp(), 4 * round_ms);
        });
        if (stop) break;
        read_chunk();
    }
    flush_all();
    pg_call([] { crash_point("after_mirrors"); });
    TimestampTz maintain_start = pg_call([] { return GetCurrentTimestamp(); });
    maintain_views();
    maintain_ms_ = pg_call([&] {
        long secs;
        int usecs;
        TimestampDifference(maintain_start, GetCurrentTimestamp(), &secs, &usecs);
        return Min(secs * 1000 + usecs / 1000, 60000L);
    });
    pg_call([&] {
        // (the transaction's memory, SPI's contexts included, before its commit frees it: the
        // test of a large source transaction reads it)
        elog(DEBUG1, "stategrid_ivm: pipeline \"%s\": %lu transactions, %lu rows in %d chunk(s); decoding and mirrors %ld ms, "
                     "views %ld ms; transaction memory %zu kB",
             p_.name.c_str(), static_cast<unsigned long>(txns_applied_), static_cast<unsigned long>(rows_applied_), chunks,
             static_cast<long>((maintain_start - batch_start) / 1000), maintain_ms_,
             MemoryContextMemAllocated(TopTransactionContext, true) / 1024);
    });
    pg_call([] { crash_point("after_views"); });

    if (txns_applied_ > 0 || p_.state == "error") {
        pg_call([&] {
            Datum args[5] = {Int32GetDatum(pipeline_id_), LSNGetDatum(last_end_lsn_), TimestampTzGetDatum(last_commit_time_),
                             Int64GetDatum(static_cast<int64>(txns_applied_)), Int64GetDatum(static_cast<int64>(rows_applied_))};
            char nulls[5] = {' ', last_end_lsn_ ? ' ' : 'n', last_commit_time_ ? ' ' : 'n', ' ', ' '};
            Oid types[5] = {INT4OID, LSNOID, TIMESTAMPTZOID, INT8OID, INT8OID};
            int rc = as_superuser([&] {
                return SPI_execute_with_args(
                    "UPDATE stategrid_ivm.pipeline SET applied_lsn = coalesce($2, applied_lsn),"
                    " applied_commit_time = coalesce($3, applied_commit_time),"
                    " transactions_applied = transactions_applied + $4, rows_applied = rows_applied + $5,"
                    " state = CASE WHEN state = 'error' THEN 'running' ELSE state END"
                    " WHERE pipeline_id = $1",
                    5, types, args, nulls, false, 0);
            });
            if (rc != SPI_OK_UPDATE) elog(ERROR, "stategrid_ivm: could not record progress");
        });
    }
    // The origin's progress goes into this commit record: atomic with the data.
    pg_call([&] {
        if (last_end_lsn_ != InvalidXLogRecPtr) {
            replorigin_session_origin_lsn = last_end_lsn_;
            replorigin_session_origin_timestamp = last_commit_time_;
        }
    });
    commit_xact();
    pg_call([] { crash_point("after_commit"); });
    pg_call([] {
        replorigin_session_origin_lsn = InvalidXLogRecPtr;
        replorigin_session_origin_timestamp = 0;
        // The slot forgets what this commit applied (confirm below, saved to disk at once when
        // the restart point moves): the commit must be durable first, also under
        // synchronous_commit = off, or a crash loses the batch for good.
        XLogFlush(XactLastCommitEnd);
    });
    XLogRecPtr position = pg_call([&] { return reader_.position(); });
    if (!more) caught_up_ = flushed;
    pg_call([&] { reader_.confirm(more ? last_seen_end_lsn_ : position); });
    pg_call([] { crash_point("after_confirm"); });
    publish(more ? InvalidXLogRecPtr : flushed, more ? last_commit_time_ : 0, true);
    return more;
}

// The rest of the step -- decoding aside, the work on the user's tables: mirrors, views,
// backfill -- runs as the pipeline's owner in a security-restricted operation (owner_role.hpp),
// so PostgreSQL checks the owner's privileges and the owner's code cannot take over this
// superuser session. Catalog accesses step out with as_superuser.
void PipelineWorker::become_owner() {
    // Streamed rows reach the mirrors without a SELECT on the source: check that the owner
    // still may read each source, and all of its rows, as add_source did. (The catalog as of
    // now: a policy enabled before this batch's end of WAL was read is seen.)
    std::string refused = pg_call([&] {
        std::string why;
        AcceptInvalidationMessages();
        if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p_.owner)))
            return "the owner of pipeline \"" + p_.name + "\" (role " + std::to_string(p_.owner) +
                   ") does not exist; rebuild the pipeline with SELECT stategrid_ivm.rebuild_pipeline('" + p_.name + "')";
        for (const SourceRow &s : sources_) {
            bool dropped = false;  // since this transaction's snapshot was taken
            if (pg_class_aclcheck_ext(s.source_relid, p_.owner, ACL_SELECT, &dropped) == ACLCHECK_OK) continue;
            if (dropped)
                return "source table " + s.source_name + " of pipeline \"" + p_.name +
                       "\" was dropped; drop the pipeline and create it again";
            return "permission denied for table " + s.source_name + ": the owner of pipeline \"" + p_.name + "\" (" +
                   GetUserNameFromId(p_.owner, false) + ") may no longer read its source";
        }
        for (const SourceRow &s : sources_) {
            if (!row_security_applies(s.source_relid, p_.owner)) continue;
            std::string owner = ::quote_identifier(GetUserNameFromId(p_.owner, false));
            return "row-level security of table " + s.source_name + " applies to the owner of pipeline \"" + p_.name +
                   "\" (" + owner + "): its rows would reach the pipeline's tables unfiltered, so the owner must bypass"
                   " row-level security (be a superuser, have BYPASSRLS, or own the table without FORCE ROW LEVEL"
                   " SECURITY); ALTER ROLE " + owner + " BYPASSRLS or ALTER TABLE " + s.source_name +
                   " DISABLE ROW LEVEL SECURITY, then SELECT stategrid_ivm.resume_pipeline('" +
                   p_.name + "')";
        }
        return why;
    });
    if (!refused.empty()) throw std::runtime_error(refused);
    if (discard_temp_tables_) {
        // After a failed batch: the working tables are made again from the tables as they are
        // now (a column widened to fix the failure must not fail on in an old copy of it).
        // Not inside the owner's restricted operation, which may not run DISCARD.
        pg_call([] {
            if (SPI_execute("DISCARD TEMP", false, 0) != SPI_OK_UTILITY) elog(ERROR, "stategrid_ivm: DISCARD TEMP failed");
        });
        discard_temp_tables_ = false;
        working_tables_version_ = -1;
    }
    // Working tables are temporary tables of this session, which a restricted operation may
    // not create: create them first. Only our own DDL runs in between.
    pg_call([&] { owner_ctx_ = enter_owner_context(p_.owner, false); });
    for (auto &m : mirrors_) m.second->ensure_delta_table();
    if (working_tables_version_ != views_version_) {
        for (const ViewMaintenance &v : views_) {
            try {
                pg_call([&] {
                    for (const std::string &sql : v.setup)
                        if (SPI_execute(sql.c_str(), false, 0) < 0) elog(ERROR, "stategrid_ivm: %s failed", sql.c_str());
                });
            } catch (PgError &e) {
                throw std::runtime_error("preparing view " + v.name + ": " + e.what() + drop_view_advice(v.name));
            }
        }
        working_tables_version_ = views_version_;
    }
    pg_call([&] { restrict_owner_context(owner_ctx_, p_.owner); });
}

// Runs f -- our own DDL that (re)creates a working table, nothing of the user's -- as the
// pipeline's owner, who must be able to write the tables, and with the owner context's
// restriction lifted. On an error the transaction abort restores everything.
template <typename F>
void PipelineWorker::creating_working_tables(F &&f) {
    if (owner_ctx_.guc_level >= 0) {
        pg_call([&] { restrict_owner_context(owner_ctx_, p_.owner, false); });
        f();
        pg_call([&] { restrict_owner_context(owner_ctx_, p_.owner); });
        return;
    }
    Oid saved_user = InvalidOid;
    int saved_ctx = 0;
    bool owner_exists = pg_call([&] {
        GetUserIdAndSecContext(&saved_user, &saved_ctx);
        if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p_.owner))) return false;  // become_owner says so
        SetUserIdAndSecContext(p_.owner, saved_ctx | SECURITY_LOCAL_USERID_CHANGE);
        return true;
    });
    f();
    if (owner_exists) pg_call([&] { SetUserIdAndSecContext(saved_user, saved_ctx); });
}

bool PipelineWorker::step() {
    begin_xact();
    load_pipeline();
    setup_origin();
    if (p_.state == "backfilling" || (p_.state == "error" && p_.backfill_lsn == InvalidXLogRecPtr)) {
        commit_xact();
        begin_xact(true);
        become_owner();
        backfill();
        commit_xact();
        return true;
    }
    return apply_batch();  // which becomes the owner once it has something to apply
}

// Undoes the current apply transaction: its data, the role switch, the origin progress it was
// about to record, and the decoding state (possibly half-way through a record: the next batch
// starts over from the slot).
void PipelineWorker::abort_batch() {
    pg_call([] {
        AbortCurrentTransaction();
        SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, 0);
        replorigin_session_origin_lsn = InvalidXLogRecPtr;
        replorigin_session_origin_timestamp = 0;
    });
    owner_ctx_ = OwnerContext{};       // the abort undid the settings and the user
    working_tables_version_ = -1;      // temporary tables of the aborted transaction are gone
    try {
        pg_call([&] { reader_.close(); });
    } catch (PgError &) {
    }
    // Pending changes of the aborted batch go, and the next relation message is looked at
    // afresh (the mirror may have been altered to follow its source meanwhile).
    for (auto &m : mirrors_) m.second->forget_stream();
    discard_temp_tables_ = true;
}

// What a failing file of the message is ("could not extend file "pg_tblspc/..."" names no
// table), looked up in a transaction of its own: a failure here must not stop the error from
// being recorded.
std::string PipelineWorker::relation_files_named(const std::string &message, bool disk_full) {
    std::optional<RelationPath> path = find_relation_path(message);
    if (!path && !disk_full) return "";
    std::string note;
    try {
        begin_xact();
        note = pg_call([&] {
            char *n = relation_file_note(path ? &*path : nullptr, disk_full);
            return n ? std::string(n) : std::string();
        });
        commit_xact();
    } catch (PgError &) {
        pg_call([] { AbortCurrentTransaction(); });
    }
    return note;
}

void PipelineWorker::record_error(const std::string &message, const std::string &detail) {
    consecutive_errors_++;
    pg_call([&] {
        ereport(WARNING, (errmsg("stategrid_ivm: pipeline \"%s\" failed: %s", p_.name.c_str(), message.c_str()),
                          detail.empty() ? 0 : errdetail("%s", detail.c_str()),
                          errhint("It retries with a growing delay; SELECT * FROM stategrid_ivm.pipelines shows its state.")));
    });
    begin_xact();
    pg_call([&] {
        // Only while the row still names this worker's slot: a rebuild_pipeline that committed
        // meanwhile gave the pipeline a new slot, and this worker's error is not the new one's.
        Datum args[3] = {Int32GetDatum(pipeline_id_), CStringGetTextDatum(message.c_str()),
                         CStringGetTextDatum(p_.slot.c_str())};
        Oid types[3] = {INT4OID, TEXTOID, TEXTOID};
        as_superuser([&] { return SPI_execute_with_args(
            "UPDATE stategrid_ivm.pipeline SET state = 'error', last_error = $2, last_error_at = now(),"
            " error_count = error_count + 1 WHERE pipeline_id = $1 AND state IN ('running', 'backfilling', 'error')"
            " AND ($3 = '' OR slot_name = $3)",
            3, types, args, nullptr, false, 0); });
    });
    commit_xact();
}

// The next step backfills: the mirrors are copied again from the sources as they are now.
void PipelineWorker::backfill_again(const std::string &why) {
    pg_call([&] {
        ereport(LOG, (errmsg("stategrid_ivm: pipeline \"%s\" copies its sources again: %s", p_.name.c_str(), why.c_str()),
                      errdetail("The rows of a partition that joins or leaves a table, or is truncated alone, are not in "
                                "the change stream.")));
    });
    begin_xact();
    pg_call([&] {
        Datum arg = Int32GetDatum(pipeline_id_);
        Oid type = INT4OID;
        int rc = as_superuser([&] {
            return SPI_execute_with_args(
                "UPDATE stategrid_ivm.pipeline SET state = 'backfilling' WHERE pipeline_id = $1 AND state IN ('running', 'error')",
                1, &type, &arg, nullptr, false, 0);
        });
        if (rc != SPI_OK_UPDATE) elog(ERROR, "stategrid_ivm: could not record the new backfill");
    });
    commit_xact();
}

void PipelineWorker::run() {
    pg_call([&] {
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        PipelineSlot *s = &shared->slots[slot_index_];
        dboid_ = s->dboid;
        pipeline_id_ = s->pipeline_id;
        LWLockRelease(shared->lock);
        BackgroundWorkerInitializeConnectionByOid(dboid_, InvalidOid, 0);
        // Views compare rows by their text: floats must print exactly, whatever the settings.
        SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_OVERRIDE);
        LWLockAcquire(shared->lock, LW_EXCLUSIVE);
        s->pid = MyProcPid;
        s->latch = MyLatch;
        s->freshness.clear();
        LWLockRelease(shared->lock);
    });
    for (;;) {
        pg_call([] {
            CHECK_FOR_INTERRUPTS();
            if (ConfigReloadPending) {
                ConfigReloadPending = false;
                ProcessConfigFile(PGC_SIGHUP);
            }
        });
        bool more = false;
        std::string error, detail;
        bool disk_full = false;
        try {
            more = step();
            consecutive_errors_ = 0;
        } catch (PgError &e) {
            error = e.what();
            if (e.data() && e.data()->detail) detail = e.data()->detail;
            disk_full = e.data() && e.data()->sqlerrcode == ERRCODE_DISK_FULL;
        } catch (const ViewSetChanged &) {
            abort_batch();
            views_version_ = -1;
            continue;
        } catch (const SourcesChanged &e) {
            abort_batch();
            try {
                backfill_again(e.what());
            } catch (PgError &) {
                pg_call([] { AbortCurrentTransaction(); });
            }
            continue;
        } catch (const std::exception &e) {
            error = e.what();
        }
        if (!error.empty()) {
            // Undo the failed transaction, then say so in the catalog; the retry comes later.
            abort_batch();
            error += relation_files_named(error, disk_full);
            try {
                record_error(error, detail);
            } catch (PgError &e) {
                pg_call([] { AbortCurrentTransaction(); });
            }
            long delay = Min(60000L, 1000L << Min(consecutive_errors_ - 1, 6));
            TimestampTz until = TimestampTzPlusMilliseconds(pg_call([] { return GetCurrentTimestamp(); }), delay);
            pg_call([&] {
                // resume_pipeline() (any catalog change of the database) cuts the wait short
                uint64 generation = shared->generation;
                for (;;) {
                    long left = (long)((until - GetCurrentTimestamp()) / 1000);
                    if (left <= 0 || shared->generation != generation) break;
                    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, left, PG_WAIT_EXTENSION);
                    ResetLatch(MyLatch);
                    CHECK_FOR_INTERRUPTS();
                }
            });
            continue;
        }
        if (more) continue;
        pg_call([] {
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, guc_naptime_ms, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
        });
    }
}

}  // namespace

}  // namespace sgivm::pg

void sgivm_worker_main(Datum arg) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    int slot_index = DatumGetInt32(arg);
    // Anything escaping here becomes a FATAL error of this worker only; the launcher restarts it.
    sgivm::pg::run_cpp([&] {
        static sgivm::pg::PipelineWorker *worker = new sgivm::pg::PipelineWorker(slot_index);
        worker->run();
    });
}
