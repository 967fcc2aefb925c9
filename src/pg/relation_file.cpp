// The table behind a relation file of an error message (relation_file.hpp): the file's
// relfilenode looked up in pg_class, as pg_filenode_relation() does.
#include "pg/relation_file.hpp"

extern "C" {
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/tablespace.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/relfilenodemap.h"
}

#include <cstdio>

namespace sgivm::pg {

namespace {

// `table "ods_x"`, `index "ods_x_pkey" of table "ods_x"`, `the TOAST table of table "ods_x"`;
// NULL if the relation is gone.
char *relation_words(Oid relid, int depth) {
    char *name = get_rel_name(relid);
    if (!name || depth > 3) return nullptr;
    const char *shown = RelationIsVisible(relid) ? name : psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)), name);
    switch (get_rel_relkind(relid)) {
    case RELKIND_INDEX:
    case RELKIND_PARTITIONED_INDEX: {
        Oid table = IndexGetRelation(relid, true);
        char *of = OidIsValid(table) ? relation_words(table, depth + 1) : nullptr;
        return of ? psprintf("index \"%s\" of %s", shown, of) : psprintf("index \"%s\"", shown);
    }
    case RELKIND_TOASTVALUE: {
        // named after the table it belongs to (pg_toast_<oid>), which CLUSTER and VACUUM FULL keep
        unsigned owner = 0;
        char *of = sscanf(name, "pg_toast_%u", &owner) == 1 ? relation_words(owner, depth + 1) : nullptr;
        return of ? psprintf("the TOAST table of %s", of) : psprintf("TOAST table \"%s\"", shown);
    }
    case RELKIND_MATVIEW:
        return psprintf("materialized view \"%s\"", shown);
    default:
        return psprintf("table \"%s\"", shown);
    }
}

}  // namespace

char *relation_file_note(const RelationPath *path, bool disk_full) {
    const char *advice = disk_full ? "; once there is space (free some, or move the tables to another tablespace: "
                                     "ALTER TABLE/INDEX ... SET TABLESPACE), the pipeline catches up by itself"
                                   : "";
    if (!path || (path->database != 0 && path->database != MyDatabaseId))
        return disk_full ? pstrdup(advice) : nullptr;
    Oid tablespace = path->tablespace == 0 ? MyDatabaseTableSpace : path->tablespace;
    Oid relid = RelidByRelfilenode(path->tablespace, path->relfilenode);
    // a temporary file and a permanent one may share a number
    if (OidIsValid(relid) && path->temporary() != (get_rel_persistence(relid) == RELPERSISTENCE_TEMP)) relid = InvalidOid;
    char *what = OidIsValid(relid) ? relation_words(relid, 0) : nullptr;
    if (!what && path->temporary()) what = pstrdup("a temporary working table of the worker");
    const char *fork = path->fork == RelationPath::Fork::FreeSpaceMap    ? "the free space map of "
                       : path->fork == RelationPath::Fork::VisibilityMap ? "the visibility map of "
                       : path->fork == RelationPath::Fork::Init          ? "the init fork of "
                                                                          : "the file of ";
    char *spcname = get_tablespace_name(tablespace);
    if (!what) return spcname ? psprintf(" (a file in tablespace \"%s\")%s", spcname, advice) : (disk_full ? pstrdup(advice) : nullptr);
    if (!spcname) return psprintf(" (%s%s)%s", fork, what, advice);
    return psprintf(" (%s%s, in tablespace \"%s\")%s", fork, what, spcname, advice);
}

}  // namespace sgivm::pg
