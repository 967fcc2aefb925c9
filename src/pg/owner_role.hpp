// Running a pipeline's SQL as the pipeline's owner: the worker around each batch, and the SQL
// functions that run a view's statements (add_view, refresh_view, verify) through _run_as.
//
// Why: the worker connects as the bootstrap superuser (decoding and our catalog need it), and
// the catalog-writing SQL functions are SECURITY DEFINER. Statements that touch the user's
// tables must not run with those rights: PostgreSQL's privilege checks are to apply to the
// owner, so that a table the owner cannot write is an error, not a silent superuser write.
// And the owner's own code (functions in a view, triggers and defaults of its tables) must not
// be able to take over the superuser session it runs in. So, as PostgreSQL does for
// maintenance commands that run a table owner's code: the user id is switched with
// SECURITY_LOCAL_USERID_CHANGE (no SET ROLE back) and SECURITY_RESTRICTED_OPERATION (no
// temporary tables, no cursors WITH HOLD), inside a GUC nest level that is rolled back on the
// way out (no setting outlives the owner's statements), with search_path = pg_catalog, pg_temp
// (our statements name every object with its schema). A deferred trigger would fire at commit,
// after the switch back: PostgreSQL refuses to queue one in a restricted operation, so a
// maintained table with one is an error of the statement that writes it.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace sgivm::pg {

// What leave_owner_context restores.
struct OwnerContext {
    Oid saved_user = InvalidOid;
    int saved_sec_context = 0;
    int guc_level = -1;  // -1: not in an owner context
};

// Becomes `owner` (an error if the role does not exist). With restricted = false the caller may
// first create its working temporary tables, which a restricted operation refuses; it must
// restrict the context before anything of the user's runs. PostgreSQL-style: may raise ERROR.
OwnerContext enter_owner_context(Oid owner, bool restricted = true);
void restrict_owner_context(const OwnerContext &ctx, Oid owner, bool restricted = true);
// Undoes every setting changed since enter_owner_context and returns to the saved user. A
// transaction abort does the same on its own: then only forget the context (reset it).
void leave_owner_context(OwnerContext &ctx);

// Whether row-level security policies of table `rel` filter the rows `role` reads, as
// PostgreSQL decides for a query of that role (check_enable_rls). A pipeline copies and
// streams every row of its sources to its owner's tables: its owner must not be so filtered.
bool row_security_applies(Oid rel, Oid role);

}  // namespace sgivm::pg
