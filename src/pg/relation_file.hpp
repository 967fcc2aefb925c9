// What a relation file named in an error message is, in the words of the pipeline's
// last_error: "could not extend file "pg_tblspc/16548/PG_15_202209061/5/16555"" names no table.
#pragma once

extern "C" {
#include "postgres.h"
}

#include "core/relation_path.hpp"

namespace sgivm::pg {

// " (the file of index "x" of table "y", in tablespace "small")" for a file of this database
// (NULL if the path is not of one), then, when `disk_full`, the way out. In a transaction;
// palloc'd; PostgreSQL-style: may raise ERROR.
char *relation_file_note(const RelationPath *path, bool disk_full);

}  // namespace sgivm::pg
