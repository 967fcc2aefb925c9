// The pipeline worker: one per running pipeline. Each step either backfills the mirrors under
// one snapshot, or applies one batch of decoded source transactions in one transaction whose
// commit also records the replication origin's progress; the slot is confirmed afterwards.
//
// Exactly once: a transaction is skipped when its commit lies below the origin's progress
// (applied before a crash) or when the backfill snapshot already saw it.
//
// The catalog is read and written through pipeline_catalog, the views are maintained by
// view_maintenance, transactions and failures go through worker_xact: this file is the batch
// loop and the backfill's orchestration.
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
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
#include "utils/guc.h"
#include "utils/memutils.h"
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
#include "core/snapshot.hpp"
#include "pg/change_reader.hpp"
#include "pg/mirror_table.hpp"
#include "pg/owner_role.hpp"
#include "pg/pipeline_catalog.hpp"
#include "pg/pipeline_refusals.hpp"
#include "pg/seam.hpp"
#include "pg/shared_state.hpp"
#include "pg/slot_health.hpp"
#include "pg/view_maintenance.hpp"
#include "pg/worker_xact.hpp"

namespace sgivm::pg {

namespace {

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

// What stops the pipeline (pipeline_refusals.hpp) is its error.
void refuse(const std::string &why) {
    if (!why.empty()) throw std::runtime_error(why);
}

class PipelineWorker {
public:
    PipelineWorker(int slot_index) : slot_index_(slot_index) {}
    [[noreturn]] void run();

private:
    bool step();  // true when more work is waiting
    void load_pipeline();
    PipelineState lock_pipeline(int32 *views_version);
    void setup_origin();
    void become_owner();
    template <typename F>
    void creating_working_tables(F &&f);
    void backfill();
    bool apply_batch();
    void start_batch();
    void open_reader();
    void read_chunk(XLogRecPtr flushed);
    void apply_chunk();
    bool commit_batch(XLogRecPtr flushed);
    void apply_dispatch(const Message &m);
    void apply_handle_begin(const BeginMessage &b);
    void apply_handle_relation(const RelationMessage &r);
    void apply_handle_row(const Message &m);
    void apply_handle_truncate(const TruncateMessage &t);
    void apply_handle_resync(const ResyncMessage &r);
    void apply_handle_commit(const CommitMessage &c);
    void flush_all();
    static size_t flush_bytes();
    void backfill_again(const std::string &why);
    void abort_batch();
    [[noreturn]] void stop_and_exit(const char *why);
    void publish(XLogRecPtr caught_up, TimestampTz oldest_unapplied, bool batch_done);
    MirrorTable *mirror_for(uint32_t relid);

    int slot_index_;
    Oid dboid_ = InvalidOid;
    int32 pipeline_id_ = 0;
    Pipeline p_;
    std::vector<Source> sources_;
    std::map<Oid, std::unique_ptr<MirrorTable>> mirrors_;
    ViewSet views_;
    RepOriginId origin_ = InvalidRepOriginId;
    bool origin_ready_ = false;
    OwnerContext owner_ctx_;  // while the step runs as the pipeline's owner
    int consecutive_errors_ = 0;
    int transient_retries_ = 0;  // serialization failures / deadlocks retried at once in a row
    XLogRecPtr caught_up_ = InvalidXLogRecPtr;
    ChangeReader reader_;

    // State of the batch being applied.
    std::optional<CopySnapshot> copy_snapshot_;
    XLogRecPtr origin_progress_ = InvalidXLogRecPtr;
    bool skipping_ = false;
    bool discard_temp_tables_ = false;  // a batch failed: the next one recreates its temp tables
    uint64_t pending_changes_ = 0;
    size_t pending_bytes_ = 0;  // what the mirrors' pending changes hold, about
    uint64_t txns_applied_ = 0, rows_applied_ = 0;
    XLogRecPtr last_end_lsn_ = InvalidXLogRecPtr;
    XLogRecPtr last_seen_end_lsn_ = InvalidXLogRecPtr;  // skipped transactions included
    TimestampTz last_commit_time_ = 0;
    TimestampTz first_commit_time_ = 0;
    long maintain_ms_ = 0;  // how long the last batch's view maintenance took
    std::vector<TimestampTz> commit_times_;  // of the source transactions the batch applies
    bool more_ = false;  // the last chunk stopped early: more WAL is waiting
    int chunks_ = 0;
    TimestampTz batch_start_ = 0;
};

void PipelineWorker::stop_and_exit(const char *why) {
    pg_call([&] {
        if (IsTransactionState()) {
            leave_owner_context(owner_ctx_);
            SPI_finish();
            PopActiveSnapshot();
            CommitTransactionCommand();
        }
        ereport(LOG, (errmsg("stategrid_ivm: worker of pipeline \"%s\" stops: %s", p_.name.c_str(), why)));
        mark_worker(slot_index_, false);
        proc_exit(0);
    });
    std::abort();  // proc_exit does not return
}

// Reads the pipeline's catalog row, its sources and its views (lock_pipeline locks the row once
// a batch has something to apply).
void PipelineWorker::load_pipeline() {
    // DROP EXTENSION is refused while pipelines exist (drop_guard.cpp); should the catalog go
    // all the same (its rows deleted by hand first), there is nothing left to retry.
    if (!extension_exists()) stop_and_exit("the extension stategrid_ivm was dropped from its database");
    std::optional<Pipeline> row = sgivm::pg::load_pipeline(pipeline_id_);
    if (!row) stop_and_exit("the pipeline was dropped");
    p_ = std::move(*row);
    if (!worker_runs(p_.state)) stop_and_exit((std::string("the pipeline is ") + state_name(p_.state)).c_str());
    // Restored from a dump, or dropped by hand: nothing to retry. The probe the launcher runs
    // when this worker stops puts the pipeline in error, naming rebuild_pipeline().
    if (!p_.slot_exists) stop_and_exit(("its replication slot " + p_.slot + " does not exist").c_str());

    sources_ = load_sources(pipeline_id_);
    refuse(sources_refusal(p_, sources_));
    // Mirrors for new sources; forget those of removed ones.
    std::map<Oid, std::unique_ptr<MirrorTable>> next;
    for (const Source &s : sources_) {
        auto it = mirrors_.find(s.source_relid);
        if (it != mirrors_.end())
            next.emplace(s.source_relid, std::move(it->second));
        else
            next.emplace(s.source_relid, std::make_unique<MirrorTable>(s.source_relid, s.mirror_relid, s.source_name));
    }
    mirrors_ = std::move(next);
    std::optional<int32> version = read_views_version(pipeline_id_);
    // (a mirror that a new view reads gets its delta table now; preparing its statements
    // locks the mirror: the pipeline's row is locked first, in the order drop_pipeline uses)
    if (!version || *version != views_.version()) {
        int32 ignored;
        lock_pipeline(&ignored);
        creating_working_tables([&] {
            views_.load(pipeline_id_, *version);
            // Mirrors that views read keep their changes for them.
            for (auto &m : mirrors_) m.second->set_capture(views_.read(m.second->mirror_relid()));
        });
    }
}

// Locks the pipeline's row for the batch about to write (add_view, refresh_view, pause and drop
// lock it too, so they wait for a whole batch instead of deadlocking with one), and
// stops if the pipeline was paused or dropped since load_pipeline read it. The lock gives the
// transaction an xid: it is taken only once there is something to apply, so that a batch that
// finds nothing writes no WAL (its own commit would otherwise wake the worker again, forever).
// Sets the views_version of the locked row: while the lock is held, no add_view commits.
PipelineState PipelineWorker::lock_pipeline(int32 *views_version) {
    std::optional<LockedPipeline> locked = sgivm::pg::lock_pipeline(pipeline_id_);
    if (!locked) stop_and_exit("the pipeline was dropped");
    if (!worker_runs(locked->state)) stop_and_exit((std::string("the pipeline is ") + state_name(locked->state)).c_str());
    *views_version = locked->views_version;
    return p_.state = locked->state;
}

// The origin's progress is set just before an apply transaction commits. If that transaction
// aborts instead (an error, or the worker told to exit, as at a fast shutdown), the progress
// must go with it: the session's next commit -- at exit, the one that drops its temporary
// tables -- would record it, and the aborted batch's source transactions would count as
// applied without ever being (lost for good).
static void forget_origin_progress(XactEvent event, void *) {
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
        replorigin_session_origin_lsn = InvalidXLogRecPtr;
        replorigin_session_origin_timestamp = 0;
    }
}

void PipelineWorker::setup_origin() {
    if (origin_ready_) return;
    pg_call([&] {
        origin_ = replorigin_by_name(p_.origin.c_str(), false);
        replorigin_session_setup(origin_);
        // Every write of this worker carries the origin: the plugin drops them early.
        replorigin_session_origin = origin_;
        RegisterXactCallback(forget_origin_progress, nullptr);
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
    pg_call([&] { report_worker_position(slot_index_, caught_up, oldest_unapplied, now, batch_done ? &fresh : nullptr); });
    if (batch_done) commit_times_.clear();
}

// The initial copy: every mirror emptied and filled from its source under one snapshot, which
// is recorded so that the stream can skip what the copy already contains.
void PipelineWorker::backfill() {
    pg_call([&] { pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: backfilling the ODS mirrors"); });
    BackfillPoint point = read_backfill_point();
    uint64 copied = 0;
    for (const Source &s : sources_) {
        MirrorCopy copy = mirror_copy(s.source_relid, s.mirror_relid);
        try {
            pg_call([&] {
                if (SPI_execute(copy.empty.c_str(), false, 0) != SPI_OK_DELETE) elog(ERROR, "stategrid_ivm: could not empty a mirror");
                if (SPI_execute(copy.copy.c_str(), false, 0) != SPI_OK_INSERT) elog(ERROR, "stategrid_ivm: could not copy %s", s.source_name.c_str());
                copied += SPI_processed;
            });
        } catch (PgError &e) {
            e.frame("backfilling the mirror of source table " + s.source_name + ": ", "");
            throw;
        }
    }
    // Views start from the copied mirrors.
    views_.populate();
    pg_call([] { crash_point("backfill_copied"); });
    record_backfill(pipeline_id_, point, copied);
    pg_call([&] {
        ereport(LOG, (errmsg("stategrid_ivm: pipeline \"%s\" backfilled " UINT64_FORMAT " rows under snapshot %s",
                             p_.name.c_str(), copied, point.snapshot.c_str())));
    });
}

MirrorTable *PipelineWorker::mirror_for(uint32_t relid) {
    auto it = mirrors_.find(relid);
    return it == mirrors_.end() ? nullptr : it->second.get();
}

void PipelineWorker::flush_all() {
    for (auto &m : mirrors_) m.second->flush();
    pending_changes_ = 0;
    pending_bytes_ = 0;
}

// work_mem, the memory a sort or hash may take before it spills, bounds the pending changes too.
size_t PipelineWorker::flush_bytes() { return static_cast<size_t>(work_mem) * 1024; }

// ---- the apply loop: one function per kind of message ------------------------------------------

void PipelineWorker::apply_dispatch(const Message &m) {
    switch (m.kind) {
        case MessageKind::Begin: apply_handle_begin(m.begin); break;
        case MessageKind::Relation: apply_handle_relation(m.relation); break;
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete: apply_handle_row(m); break;
        case MessageKind::Truncate: apply_handle_truncate(m.truncate); break;
        case MessageKind::Resync: apply_handle_resync(m.resync); break;
        case MessageKind::Commit: apply_handle_commit(m.commit); break;
    }
}

void PipelineWorker::apply_handle_begin(const BeginMessage &b) {
    skipping_ = b.final_lsn < origin_progress_ ||
                (copy_snapshot_ && b.final_lsn < p_.backfill_lsn && copy_snapshot_->saw(b.xid));
    if (!skipping_ && first_commit_time_ == 0) {
        first_commit_time_ = b.commit_time;
        publish(InvalidXLogRecPtr, b.commit_time, false);
    }
}

void PipelineWorker::apply_handle_relation(const RelationMessage &r) {
    MirrorTable *t = mirror_for(r.relid);
    if (!t) return;
    creating_working_tables([&] { t->describe(r); });  // a new column: new delta table
    refuse(stream_columns_refusal(p_, *t, views_));
}

void PipelineWorker::apply_handle_row(const Message &m) {
    if (skipping_) return;
    MirrorTable *t = mirror_for(m.row.relid);
    if (!t) return;
    if (!t->described()) throw FormatError("row change before its relation message");
    if (m.kind != MessageKind::Insert && m.row.old_kind == OldRowKind::Key && m.row.old_row.empty())
        refuse(keyless_change_refusal(p_, *t, m.kind));
    size_t held = t->pending_bytes();
    t->add(m.row);
    pending_bytes_ += t->pending_bytes() - held;
    rows_applied_++;
    // The pending changes go to the mirrors (and their deltas, in this same transaction) every
    // batch_size rows, or sooner once they hold about work_mem: however large a source
    // transaction is, and however wide its rows, the worker holds one such piece at a time.
    if (++pending_changes_ >= static_cast<uint64_t>(guc_batch_size) || pending_bytes_ >= flush_bytes()) flush_all();
}

void PipelineWorker::apply_handle_truncate(const TruncateMessage &tr) {
    if (skipping_) return;
    for (uint32_t relid : tr.relids) {
        if (MirrorTable *t = mirror_for(relid)) {
            flush_all();
            t->truncate();
            rows_applied_++;
        }
    }
}

void PipelineWorker::apply_handle_resync(const ResyncMessage &r) {
    // (in a transaction the last backfill's copy already holds, it says nothing new)
    if (skipping_) return;
    if (MirrorTable *t = mirror_for(r.relid))
        throw SourcesChanged("partition " + r.partition + " of source table " + t->source_name() + " was " +
                             resync_reason_text(r.reason));
}

void PipelineWorker::apply_handle_commit(const CommitMessage &c) {
    last_seen_end_lsn_ = c.end_lsn;
    if (!skipping_) {
        txns_applied_++;
        commit_times_.push_back(c.commit_time);
        last_end_lsn_ = c.end_lsn;
        last_commit_time_ = c.commit_time;
    }
    skipping_ = false;
}

// ---- one batch -----------------------------------------------------------------------------------

void PipelineWorker::start_batch() {
    copy_snapshot_.reset();
    if (p_.backfill_snapshot) copy_snapshot_ = CopySnapshot::parse(*p_.backfill_snapshot);
    origin_progress_ = pg_call([] { return replorigin_session_get_progress(false); });
    skipping_ = false;
    pending_changes_ = txns_applied_ = rows_applied_ = 0;
    pending_bytes_ = 0;
    commit_times_.clear();
    last_end_lsn_ = last_seen_end_lsn_ = InvalidXLogRecPtr;
    last_commit_time_ = first_commit_time_ = 0;
    more_ = false;
    chunks_ = 0;
}

void PipelineWorker::open_reader() {
    if (reader_.is_open()) return;
    refuse(slot_refusal(p_, pg_call([&] { return slot_health(p_.slot.c_str()); })));
    pg_call([&] {
        List *options = list_make2(makeDefElem(pstrdup("relids"), (Node *)makeString(pstrdup(p_.relids.c_str())), -1),
                                   makeDefElem(pstrdup("skip-origin"), (Node *)makeString(pstrdup(p_.origin.c_str())), -1));
        reader_.open(p_.slot.c_str(), options);
    });
}

// Decodes the next chunk of batch_size changes (whole source transactions).
void PipelineWorker::read_chunk(XLogRecPtr flushed) {
    chunks_++;
    pg_call([&] {
        pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: decoding changes");
        more_ = reader_.read(flushed, static_cast<uint64>(guc_batch_size));
        pgstat_report_activity(STATE_RUNNING, "stategrid_ivm: applying changes");
    });
}

// Applies the messages of the chunk read last to the mirrors.
void PipelineWorker::apply_chunk() {
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
        apply_dispatch(decode(bytes));
    }
    pg_call([&] {
        ExecDropSingleTupleTableSlot(slot);
        reader_.release_messages();
    });
}

// One apply transaction over the next batch of decoded source transactions.
bool PipelineWorker::apply_batch() {
    // The commits noted since the last batch are below the flush position read next: this
    // batch applies them, or shows them waiting until one does.
    bool took = pg_call([&] { return take_unseen_commits(slot_index_); });
    XLogRecPtr flushed = pg_call([] { return GetFlushRecPtr(nullptr); });
    if (flushed <= caught_up_ && p_.state == PipelineState::Running) {  // nothing new in the WAL
        commit_worker_xact(owner_ctx_);
        if (took) publish(caught_up_, 0, false);  // what it took was applied before
        return false;
    }
    start_batch();
    open_reader();
    // Chunks of batch_size changes (whole source transactions) are decoded and applied to the
    // mirrors one after the other. While more WAL waits, the transaction takes further chunks
    // for at least stategrid_ivm.catchup_round, and for twice as long as the last view
    // maintenance took: a backlog then costs few maintenance rounds, each over many changes (a
    // round's cost is that of the groups and partitions it touches, nearly the same for 10,000
    // changes as for 300,000), while a worker that keeps up applies what came at once.
    batch_start_ = pg_call([] { return GetCurrentTimestamp(); });
    const int round_ms = guc_catchup_round_ms == 0 ? 0 : static_cast<int>(Max(static_cast<long>(guc_catchup_round_ms), 2 * maintain_ms_));
    XLogRecPtr round_from = pg_call([&] { return reader_.position(); });
    read_chunk(flushed);
    if (round_from == InvalidXLogRecPtr) round_from = pg_call([&] { return reader_.position(); });
    if (!more_ && p_.state == PipelineState::Running && pg_call([&] { return reader_.message_count(); }) == 0) {
        // Nothing for this pipeline: WAL of other tables or databases, or of this worker's own
        // commits. Such a batch takes no lock and touches no temporary table, so it writes no
        // WAL: otherwise its own commit would wake the worker again, round after round.
        pg_call([&] { reader_.release_messages(); });
        XLogRecPtr position = pg_call([&] { return reader_.position(); });
        commit_worker_xact(owner_ctx_);
        caught_up_ = flushed;
        pg_call([&] { reader_.confirm(position); });
        publish(flushed, 0, true);
        return false;
    }
    // Lock order, as for pause, drop and add_view: the pipeline's row first, then its tables
    // (become_owner may create working tables LIKE them, the mirrors get written). An add_view
    // that committed since load_pipeline read the view set means this batch starts over with
    // the new set; once the row is locked, none can commit before this batch does.
    int32 locked_version;
    lock_pipeline(&locked_version);
    if ((!views_.empty() || views_.version() > 0) && locked_version != views_.version()) throw ViewSetChanged();
    become_owner();
    // (a state filled after the mirrors would hold this batch's changes, then fold them again)
    views_.ensure_states();
    for (auto &m : mirrors_) {
        m.second->captured = 0;
        m.second->ensure_delta_table();
    }
    for (;;) {
        apply_chunk();
        if (!more_ || views_.empty() || round_ms == 0) break;
        // Past the round's time, a round that has read more WAL than is left goes on (up to
        // four times as long): otherwise the last bit of a backlog would cost a round of its own.
        bool stop = pg_call([&] {
            if (!TimestampDifferenceExceeds(batch_start_, GetCurrentTimestamp(), round_ms)) return false;
            XLogRecPtr at = reader_.position();
            bool mostly_read = flushed - at <= at - round_from;
            return !mostly_read || TimestampDifferenceExceeds(batch_start_, GetCurrentTimestamp(), 4 * round_ms);
        });
        if (stop) break;
        read_chunk(flushed);
    }
    flush_all();
    pg_call([] { crash_point("after_mirrors"); });
    TimestampTz maintain_start = pg_call([] { return GetCurrentTimestamp(); });
    std::map<Oid, uint64> changed;  // delta rows of each input in this batch
    for (auto &m : mirrors_) changed[m.second->mirror_relid()] = m.second->captured;
    views_.maintain(std::move(changed));
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
             p_.name.c_str(), static_cast<unsigned long>(txns_applied_), static_cast<unsigned long>(rows_applied_), chunks_,
             static_cast<long>((maintain_start - batch_start_) / 1000), maintain_ms_,
             MemoryContextMemAllocated(TopTransactionContext, true) / 1024);
    });
    pg_call([] { crash_point("after_views"); });
    return commit_batch(flushed);
}

// Records the batch's progress and commits it with the origin's progress, then lets the slot
// forget what it applied.
bool PipelineWorker::commit_batch(XLogRecPtr flushed) {
    if (txns_applied_ > 0 || p_.state == PipelineState::Error)
        record_progress(pipeline_id_, BatchProgress{last_end_lsn_, last_commit_time_, txns_applied_, rows_applied_});
    // The origin's progress goes into this commit record: atomic with the data.
    pg_call([&] {
        if (last_end_lsn_ != InvalidXLogRecPtr) {
            replorigin_session_origin_lsn = last_end_lsn_;
            replorigin_session_origin_timestamp = last_commit_time_;
            exit_point("exit_before_commit");
        }
    });
    commit_worker_xact(owner_ctx_);
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
    if (!more_) caught_up_ = flushed;
    pg_call([&] { reader_.confirm(more_ ? last_seen_end_lsn_ : position); });
    pg_call([] { crash_point("after_confirm"); });
    publish(more_ ? InvalidXLogRecPtr : flushed, more_ ? last_commit_time_ : 0, true);
    return more_;
}

// The rest of the step -- decoding aside, the work on the user's tables: mirrors, views,
// backfill -- runs as the pipeline's owner in a security-restricted operation (owner_role.hpp),
// so PostgreSQL checks the owner's privileges and the owner's code cannot take over this
// superuser session. Catalog accesses step out with as_superuser (pipeline_catalog.cpp).
void PipelineWorker::become_owner() {
    // Streamed rows reach the mirrors without a SELECT on the source: check that the owner
    // still may read each source, and all of its rows, as add_source did. (The catalog as of
    // now: a policy enabled before this batch's end of WAL was read is seen.)
    refuse(owner_refusal(p_, sources_));
    if (discard_temp_tables_) {
        // After a failed batch: the working tables are made again from the tables as they are
        // now (a column widened to fix the failure must not fail on in an old copy of it).
        // Not inside the owner's restricted operation, which may not run DISCARD.
        views_.discard_working_tables();
        discard_temp_tables_ = false;
    }
    // Working tables are temporary tables of this session, which a restricted operation may
    // not create: create them first. Only our own DDL runs in between.
    pg_call([&] { owner_ctx_ = enter_owner_context(p_.owner, false); });
    for (auto &m : mirrors_) m.second->ensure_delta_table();
    views_.create_working_tables();
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
    begin_worker_xact();
    load_pipeline();
    setup_origin();
    if (p_.state == PipelineState::Backfilling ||
        (p_.state == PipelineState::Error && p_.backfill_lsn == InvalidXLogRecPtr)) {
        commit_worker_xact(owner_ctx_);
        begin_worker_xact(true);
        become_owner();
        backfill();
        commit_worker_xact(owner_ctx_);
        return true;
    }
    return apply_batch();  // which becomes the owner once it has something to apply
}

// Undoes the current apply transaction: its data, the role switch, the origin progress it was
// about to record (forget_origin_progress, at the abort), and the decoding state (possibly
// half-way through a record: the next batch starts over from the slot).
void PipelineWorker::abort_batch() {
    pg_call([] {
        AbortCurrentTransaction();
        SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, 0);
    });
    owner_ctx_ = OwnerContext{};  // the abort undid the settings and the user
    views_.working_tables_lost();  // temporary tables of the aborted transaction are gone
    try {
        pg_call([&] { reader_.close(); });
    } catch (PgError &) {
    }
    // Pending changes of the aborted batch go, and the next relation message is looked at
    // afresh (the mirror may have been altered to follow its source meanwhile).
    for (auto &m : mirrors_) m.second->forget_stream();
    discard_temp_tables_ = true;
}

// The next step backfills: the mirrors are copied again from the sources as they are now.
void PipelineWorker::backfill_again(const std::string &why) {
    pg_call([&] {
        ereport(LOG, (errmsg("stategrid_ivm: pipeline \"%s\" copies its sources again: %s", p_.name.c_str(), why.c_str()),
                      errdetail("The rows of a partition that joins or leaves a table, or is truncated alone, are not in "
                                "the change stream.")));
    });
    begin_worker_xact();
    record_backfill_needed(pipeline_id_);
    commit_worker_xact(owner_ctx_);
}

void PipelineWorker::run() {
    pg_call([&] {
        attach_worker(slot_index_, &dboid_, &pipeline_id_);
        BackgroundWorkerInitializeConnectionByOid(dboid_, InvalidOid, 0);
        // Views compare rows by their text: floats must print exactly, whatever the settings.
        SetConfigOption("extra_float_digits", "3", PGC_SUSET, PGC_S_OVERRIDE);
        mark_worker(slot_index_, true);
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
        std::string error;
        std::optional<PgError> pg_error;  // kept whole until record_error reports it
        try {
            more = step();
            consecutive_errors_ = 0;
            transient_retries_ = 0;
        } catch (PgError &e) {
            error = e.what();
            pg_error.emplace(std::move(e));
        } catch (const ViewSetChanged &) {
            abort_batch();
            views_.forget_version();
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
            // A serialization failure or deadlock with a concurrent add_view / drop_view (they
            // update the pipeline's catalog row and lock its tables) is not the pipeline's fault:
            // the batch is retried at once, a few times, before it counts as an error.
            int code = pg_error && pg_error->data() ? pg_error->data()->sqlerrcode : 0;
            if ((code == ERRCODE_T_R_SERIALIZATION_FAILURE || code == ERRCODE_T_R_DEADLOCK_DETECTED) && transient_retries_ < 5) {
                transient_retries_++;
                pg_call([&] { pg_usleep(20000L * transient_retries_); });
                continue;
            }
            transient_retries_ = 0;
            bool disk_full = pg_error && pg_error->data() && pg_error->data()->sqlerrcode == ERRCODE_DISK_FULL;
            std::string note = relation_files_named(error, disk_full);
            if (pg_error)
                pg_error->frame("", note);
            else
                error += note;
            try {
                consecutive_errors_++;
                report_failure(pipeline_id_, p_, pg_error ? pg_error->what() : error, pg_error ? &*pg_error : nullptr);
            } catch (PgError &e) {
                pg_call([] { AbortCurrentTransaction(); });
            }
            wait_before_retry(consecutive_errors_);
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
