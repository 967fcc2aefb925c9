// Looks at a replication slot in shared memory before the worker tries to decode from it, so
// that a missing or invalidated slot becomes an error that says how to rebuild the pipeline
// instead of the decoder's own message.
#include "pg/slot_health.hpp"

extern "C" {
#include "postgres.h"

#include "replication/slot.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
}

namespace sgivm::pg {

SlotHealth slot_health(const char *slot_name) {
    SlotHealth health = SlotHealth::Missing;
    LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
    ReplicationSlot *slot = SearchNamedReplicationSlot(slot_name, false);
    if (slot) {
        SpinLockAcquire(&slot->mutex);
        // An invalidated slot (PostgreSQL 15) keeps its place but loses its restart point.
        bool lost = slot->data.invalidated_at != InvalidXLogRecPtr && slot->data.restart_lsn == InvalidXLogRecPtr;
        SpinLockRelease(&slot->mutex);
        health = lost ? SlotHealth::Lost : SlotHealth::Usable;
    }
    LWLockRelease(ReplicationSlotControlLock);
    return health;
}

}  // namespace sgivm::pg
