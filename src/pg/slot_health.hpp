// Whether a pipeline's replication slot can still be decoded: it may have been dropped by hand,
// be missing after a restore from a dump, or have been invalidated by max_slot_wal_keep_size.
#pragma once

namespace sgivm::pg {

enum class SlotHealth { Usable, Missing, Lost };

// Plain PostgreSQL code (shared memory under ReplicationSlotControlLock); call it through pg_call.
SlotHealth slot_health(const char *slot_name);

}  // namespace sgivm::pg
