// PostgreSQL's relation file paths (common/relpath.c, with md.c's segment suffix), read back
// from error messages: a "could not extend file" names a file, a user wants the table.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sgivm {

struct RelationPath {
    enum class Fork { Main, FreeSpaceMap, VisibilityMap, Init };
    static constexpr uint32_t kGlobalTablespace = 1664;  // GLOBALTABLESPACE_OID: global/

    uint32_t tablespace = 0;  // 0: the database's default tablespace (base/)
    uint32_t database = 0;    // 0 for global/
    uint32_t relfilenode = 0;
    int32_t backend = -1;     // the backend of a temporary relation (t<backend>_<node>), else -1
    Fork fork = Fork::Main;
    uint32_t segment = 0;     // the 1 GB segment (.<n>)

    bool temporary() const { return backend >= 0; }
};

// "base/5/16384", "global/1262", "pg_tblspc/16390/PG_15_202209061/5/t3_16400_fsm.2"; nothing
// for anything else (other files, absolute paths, trailing text).
std::optional<RelationPath> parse_relation_path(std::string_view path);

// The first double-quoted relation file path of an error message, as PostgreSQL prints them
// (could not extend file "pg_tblspc/.../16555": No space left on device).
std::optional<RelationPath> find_relation_path(std::string_view message);

}  // namespace sgivm
