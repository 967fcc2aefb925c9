// Refusing the drops that would leave pipelines' replication slots and origins behind.
//
// A pipeline's slot and origin are not transactional and not objects of its database: DROP
// EXTENSION stategrid_ivm (and what cascades to its catalog: DROP SCHEMA stategrid_ivm CASCADE,
// DROP OWNED BY the extension's owner) would leave them, the slot retaining WAL for good, and
// the workers running; dropping them inside a DROP that may still roll back would lose them for
// a pipeline that then stays. So, as with a table that a view uses, the drop is refused while
// the database has pipelines, naming them and drop_pipeline(), which drops the slot last. The
// same for DROP OWNED BY a pipeline's owner (its tables would go, and DROP ROLE could follow)
// and DROP DATABASE of a database with pipeline slots (PostgreSQL drops inactive slots, but
// not the origins). The hooks are installed in every backend that loads the library: with
// shared_preload_libraries, as the extension requires, every backend.
#pragma once

namespace sgivm::pg {

// Called from _PG_init.
void install_drop_guard();

}  // namespace sgivm::pg
