// The launcher background worker (launcher.cpp) and the probe that lists a database's
// runnable pipelines for it (probe.cpp).
#pragma once

namespace sgivm::pg {

// Called from _PG_init while shared_preload_libraries is processed.
void register_launcher();

}  // namespace sgivm::pg
