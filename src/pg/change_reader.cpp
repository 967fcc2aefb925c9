// Long-lived logical decoding for a pipeline worker, modelled on what the SQL decoding functions
// do per call (logicalfuncs.c) but keeping the context: the output plugin's messages go into a
// tuplestore (spilling to disk past work_mem), which the worker applies after the read.
#include "pg/change_reader.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "access/xlog.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/slot.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
}

namespace sgivm::pg {

struct ChangeReaderState {
    MemoryContext cxt;           // lives as long as the reader
    MemoryContext batch_cxt;     // the tuplestore of one read
    LogicalDecodingContext *ctx;
    TupleDesc desc;              // (data bytea)
    Tuplestorestate *store;
    uint64 count;
    bool last_was_commit;
};

namespace {

ChangeReaderState *writing = nullptr;  // the reader whose read() is running

void prepare_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid, bool last_write) {
    resetStringInfo(ctx->out);
}

void do_write(LogicalDecodingContext *ctx, XLogRecPtr lsn, TransactionId xid, bool last_write) {
    ChangeReaderState *s = writing;
    bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + ctx->out->len));
    SET_VARSIZE(b, VARHDRSZ + ctx->out->len);
    memcpy(VARDATA(b), ctx->out->data, ctx->out->len);
    Datum value = PointerGetDatum(b);
    bool isnull = false;
    MemoryContext old = MemoryContextSwitchTo(s->batch_cxt);
    tuplestore_putvalues(s->store, s->desc, &value, &isnull);
    MemoryContextSwitchTo(old);
    pfree(b);
    s->count++;
    // messages start with the format version, then the kind
    s->last_was_commit = ctx->out->len >= 2 && ctx->out->data[1] == 'C';
}

// The WAL reader keeps memory across calls, and so across transactions: the buffer that
// reassembles records spanning pages (grown in CurrentMemoryContext when a bigger record comes)
// and oversized decoded records (freed at the next call). It must get the reader's own context
// for every call, not just at the start of a read: decoding a commit replays the transaction in
// an internal subtransaction (ReorderBufferProcessTXN, likewise ReorderBufferImmediateInvalidation)
// whose release leaves CurrentMemoryContext at TopTransactionContext. Decoding itself runs in
// the caller's (transaction) context, where the reorder buffer leaves it anyway.
bool decode_until(ChangeReaderState *s, XLogRecPtr end_of_wal, uint64 max_messages) {
    volatile bool stopped_early = false;
    MemoryContext caller = CurrentMemoryContext;
    PG_TRY();
    {
        while (s->ctx->reader->EndRecPtr < end_of_wal) {
            char *errm = nullptr;
            MemoryContextSwitchTo(s->cxt);
            XLogRecord *record = XLogReadRecord(s->ctx->reader, &errm);
            MemoryContextSwitchTo(caller);
            if (errm) elog(ERROR, "stategrid_ivm: could not read WAL for logical decoding: %s", errm);
            if (record) LogicalDecodingProcessRecord(s->ctx, s->ctx->reader);
            if (s->count >= max_messages && s->last_was_commit) {
                stopped_early = s->ctx->reader->EndRecPtr < end_of_wal;
                break;
            }
            CHECK_FOR_INTERRUPTS();
        }
        MemoryContextSwitchTo(caller);
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller);
        writing = nullptr;
        InvalidateSystemCaches();
        PG_RE_THROW();
    }
    PG_END_TRY();
    return stopped_early;
}

}  // namespace

void ChangeReader::open(const char *slot_name, List *options) {
    if (state_) return;
    MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "stategrid_ivm change reader", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old = MemoryContextSwitchTo(cxt);
    ChangeReaderState *s = static_cast<ChangeReaderState *>(palloc0(sizeof(ChangeReaderState)));
    s->cxt = cxt;
    s->batch_cxt = AllocSetContextCreate(cxt, "stategrid_ivm change batch", ALLOCSET_DEFAULT_SIZES);
    s->desc = CreateTemplateTupleDesc(1);
    TupleDescInitEntry(s->desc, 1, "data", BYTEAOID, -1, 0);

    ReplicationSlotAcquire(slot_name, true);
    static XLogReaderRoutine routine = {};
    routine.page_read = read_local_xlog_page;
    routine.segment_open = wal_segment_open;
    routine.segment_close = wal_segment_close;
    s->ctx = CreateDecodingContext(InvalidXLogRecPtr, list_copy_deep(options), false, &routine, prepare_write, do_write,
                                   nullptr);
    // Everything committed after the confirmed position must be decoded whole: begin at the
    // restart point, where the oldest of those transactions started.
    XLogBeginRead(s->ctx->reader, MyReplicationSlot->data.restart_lsn);
    MemoryContextSwitchTo(old);
    state_ = s;
}

bool ChangeReader::read(XLogRecPtr end_of_wal, uint64 max_messages) {
    ChangeReaderState *s = state_;
    release_messages();
    MemoryContextReset(s->batch_cxt);
    MemoryContext old = MemoryContextSwitchTo(s->batch_cxt);
    s->store = tuplestore_begin_heap(false, false, work_mem);
    MemoryContextSwitchTo(old);
    s->count = 0;
    s->last_was_commit = false;

    writing = s;
    InvalidateSystemCaches();  // decoding must not see cache entries of the present
    bool stopped_early = decode_until(s, end_of_wal, max_messages);
    writing = nullptr;
    InvalidateSystemCaches();  // nor the present see entries of the past
    return stopped_early;
}

Tuplestorestate *ChangeReader::messages() const { return state_->store; }

void ChangeReader::release_messages() {
    if (state_ && state_->store) tuplestore_end(state_->store);
    if (state_) state_->store = nullptr;
}
TupleDesc ChangeReader::message_desc() const { return state_->desc; }
uint64 ChangeReader::message_count() const { return state_->count; }
XLogRecPtr ChangeReader::position() const { return state_->ctx->reader->EndRecPtr; }

void ChangeReader::confirm(XLogRecPtr lsn) {
    if (lsn == InvalidXLogRecPtr || lsn <= MyReplicationSlot->data.confirmed_flush) return;
    LogicalConfirmReceivedLocation(lsn);
    ReplicationSlotMarkDirty();
}

void ChangeReader::close() {
    ChangeReaderState *s = state_;
    state_ = nullptr;
    if (!s) return;
    writing = nullptr;
    // The tuplestore's temporary files belong to the transaction: its end (or abort) closed them.
    PG_TRY();
    {
        if (s->ctx) FreeDecodingContext(s->ctx);
    }
    PG_CATCH();
    {
        if (MyReplicationSlot) ReplicationSlotRelease();
        MemoryContextDelete(s->cxt);
        PG_RE_THROW();
    }
    PG_END_TRY();
    if (MyReplicationSlot) ReplicationSlotRelease();
    MemoryContextDelete(s->cxt);
}

}  // namespace sgivm::pg
