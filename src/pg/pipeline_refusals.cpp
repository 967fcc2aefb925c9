// The worker's refusals (pipeline_refusals.hpp): what stops a pipeline, and the call that
// lets it go on, in the user's words.
#include "pg/pipeline_refusals.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include "pg/owner_role.hpp"
#include "pg/seam.hpp"

namespace sgivm::pg {

namespace {

std::string rebuild_call(const Pipeline &p) { return "SELECT stategrid_ivm.rebuild_pipeline('" + p.name + "')"; }

std::string source_dropped(const Pipeline &p, const Source &s) {
    return "source table " + s.source_name + " of pipeline \"" + p.name + "\" was dropped; drop the pipeline and create it again";
}

}  // namespace

std::string sources_refusal(const Pipeline &p, const std::vector<Source> &sources) {
    for (const Source &s : sources) {
        if (!s.exists) return source_dropped(p, s);
        // Rows of an inheritance child are logged as the child's and copied by nobody: refuse
        // to go on rather than leave them out of a table that reads them through the parent.
        if (!s.inheritance_child.empty())
            return "source table " + s.source_name + " of pipeline \"" + p.name + "\" has an inheritance child, " +
                   s.inheritance_child + " (ALTER TABLE ... INHERIT), whose rows the pipeline cannot follow; remove it"
                   " with ALTER TABLE " + s.inheritance_child + " NO INHERIT " + s.source_name +
                   " and the pipeline goes on, or use declarative partitioning (PARTITION BY), whose partitions it follows";
    }
    return {};
}

std::string owner_refusal(const Pipeline &p, const std::vector<Source> &sources) {
    return pg_call([&] {
        std::string why;
        AcceptInvalidationMessages();
        if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(p.owner)))
            return "the owner of pipeline \"" + p.name + "\" (role " + std::to_string(p.owner) +
                   ") does not exist; rebuild the pipeline with " + rebuild_call(p);
        for (const Source &s : sources) {
            bool dropped = false;  // since this transaction's snapshot was taken
            if (pg_class_aclcheck_ext(s.source_relid, p.owner, ACL_SELECT, &dropped) == ACLCHECK_OK) continue;
            if (dropped) return source_dropped(p, s);
            return "permission denied for table " + s.source_name + ": the owner of pipeline \"" + p.name + "\" (" +
                   GetUserNameFromId(p.owner, false) + ") may no longer read its source";
        }
        for (const Source &s : sources) {
            if (!row_security_applies(s.source_relid, p.owner)) continue;
            std::string owner = ::quote_identifier(GetUserNameFromId(p.owner, false));
            return "row-level security of table " + s.source_name + " applies to the owner of pipeline \"" + p.name +
                   "\" (" + owner + "): its rows would reach the pipeline's tables unfiltered, so the owner must bypass"
                   " row-level security (be a superuser, have BYPASSRLS, or own the table without FORCE ROW LEVEL"
                   " SECURITY); ALTER ROLE " + owner + " BYPASSRLS or ALTER TABLE " + s.source_name +
                   " DISABLE ROW LEVEL SECURITY, then SELECT stategrid_ivm.resume_pipeline('" + p.name + "')";
        }
        return why;
    });
}

std::string stream_columns_refusal(const Pipeline &p, const MirrorTable &t, const ViewSet &views) {
    // A column the source lost that a view reads: stop, naming both.
    for (const std::string &col : t.stream_lacks()) {
        std::vector<std::string> readers = views.readers_of(t.mirror_relid(), col);
        if (!readers.empty())
            return "column \"" + col + "\" of source table " + t.source_name() + " was dropped or renamed, but view " +
                   readers[0] + " reads it; restore the column and rebuild the pipeline (" + rebuild_call(p) +
                   "), or drop the pipeline and create it again";
    }
    // A column the source retyped: its values no longer fit the mirror's column.
    for (const MirrorTable::RetypedColumn &c : t.stream_retyped()) {
        std::string readers;
        for (const std::string &v : views.readers_of(t.mirror_relid(), c.name)) readers += (readers.empty() ? "" : ", ") + v;
        std::string what = "column \"" + c.name + "\" of source table " + t.source_name() + " changed type from " +
                           c.mirror_type + " to " + c.stream_type;
        if (!readers.empty())
            return what + ", and view " + readers + " reads it; restore the column's type and rebuild the pipeline (" +
                   rebuild_call(p) + "), or drop the pipeline with its tables and create it again";
        std::string column = pg_call([&] { return std::string(quote_identifier(c.name.c_str())); });
        std::string mirror = pg_call([&] {
            Oid m = t.mirror_relid();
            return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(m)), get_rel_name(m)));
        });
        return what + "; no view reads it: ALTER TABLE " + mirror + " ALTER COLUMN " + column + " TYPE " + c.stream_type +
               " makes the mirror follow, and the pipeline continues";
    }
    return {};
}

std::string keyless_change_refusal(const Pipeline &p, const MirrorTable &t, MessageKind kind) {
    return std::string(kind == MessageKind::Delete ? "a DELETE from" : "an UPDATE of the key of") + " source table " +
           t.source_name() +
           " carries no key (its REPLICA IDENTITY is NOTHING, or it lost its primary key), so the"
           " pipeline cannot tell which row went; give the table its key back (REPLICA IDENTITY DEFAULT"
           " with a primary key), then rebuild the pipeline: " + rebuild_call(p);
}

std::string slot_refusal(const Pipeline &p, SlotHealth health) {
    if (health == SlotHealth::Usable) return {};
    return "replication slot " + p.slot + " of pipeline \"" + p.name + "\" " +
           (health == SlotHealth::Lost ? "was invalidated: the server removed WAL the pipeline still needed"
                                         " (it kept more than max_slot_wal_keep_size)"
                                       : "does not exist (dropped by hand, the database was restored from a dump, or the server is a"
                                         " promoted standby)") +
           "; rebuild the pipeline, which copies its sources again: " + rebuild_call(p);
}

}  // namespace sgivm::pg
