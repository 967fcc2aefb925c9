// Why a pipeline cannot go on: the worker's messages for what a user changed under it (a source
// dropped or retyped, the owner's rights, a slot lost), each naming the object and the way out.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <string>
#include <vector>

#include "core/change_format.hpp"
#include "pg/mirror_table.hpp"
#include "pg/pipeline_catalog.hpp"
#include "pg/slot_health.hpp"
#include "pg/view_maintenance.hpp"

namespace sgivm::pg {

// Each returns the message, or an empty string when nothing stops the pipeline.

// A source dropped, or with an inheritance child whose rows the stream does not carry.
std::string sources_refusal(const Pipeline &p, const std::vector<Source> &sources);
// The owner gone, or no longer allowed to read a source and all of its rows. Throws PgError.
std::string owner_refusal(const Pipeline &p, const std::vector<Source> &sources);
// After a relation message: a column the source lost or retyped (which a view may read).
// Throws PgError.
std::string stream_columns_refusal(const Pipeline &p, const MirrorTable &t, const ViewSet &views);
// An UPDATE of the key or a DELETE that carries no key.
std::string keyless_change_refusal(const Pipeline &p, const MirrorTable &t, MessageKind kind);
// The replication slot is gone or was invalidated.
std::string slot_refusal(const Pipeline &p, SlotHealth health);

}  // namespace sgivm::pg
