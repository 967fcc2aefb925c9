// The pipeline's view of its replication slot: one logical decoding context kept open for the
// worker's life, so each batch continues where the last one stopped instead of re-reading the
// WAL from the slot's restart point.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xlogdefs.h"
#include "nodes/pg_list.h"
#include "access/tupdesc.h"
#include "utils/tuplestore.h"
}

namespace sgivm::pg {

struct ChangeReaderState;

// All functions are plain PostgreSQL code (they may raise errors); call them through pg_call.
class ChangeReader {
public:
    bool is_open() const { return state_ != nullptr; }
    // Acquires the slot and starts decoding at its confirmed position with the plugin options.
    void open(const char *slot_name, List *options);
    // Decodes WAL up to end_of_wal, stopping early at a transaction boundary once `max_messages`
    // messages are buffered. Returns true if it stopped early (more is waiting).
    bool read(XLogRecPtr end_of_wal, uint64 max_messages);
    // The messages of the last read, in order; valid until the next read.
    Tuplestorestate *messages() const;
    uint64 message_count() const;
    TupleDesc message_desc() const;
    // Ends the tuplestore: call before the transaction of the read ends.
    void release_messages();
    XLogRecPtr position() const;  // end of the last WAL record decoded
    // The slot may forget everything before lsn (call after the apply commit).
    void confirm(XLogRecPtr lsn);
    // Frees the context and releases the slot (after an error, or when the worker stops).
    void close();

private:
    ChangeReaderState *state_ = nullptr;
};

}  // namespace sgivm::pg
