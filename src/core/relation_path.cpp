// Parsing PostgreSQL's relation file paths out of error messages (relation_path.hpp).
#include "core/relation_path.hpp"

#include "core/cpp_only.hpp"

namespace sgivm {

namespace {

// A decimal number that fits its type; advances s past it.
template <typename T>
bool take_number(std::string_view &s, T &out, T max) {
    uint64_t v = 0;
    size_t n = 0;
    for (; n < s.size() && s[n] >= '0' && s[n] <= '9'; n++) {
        v = v * 10 + static_cast<uint64_t>(s[n] - '0');
        if (v > static_cast<uint64_t>(max)) return false;
    }
    if (n == 0) return false;
    out = static_cast<T>(v);
    s.remove_prefix(n);
    return true;
}

bool take(std::string_view &s, std::string_view prefix) {
    if (s.substr(0, prefix.size()) != prefix) return false;
    s.remove_prefix(prefix.size());
    return true;
}

// [t<backend>_]<relfilenode>[_fsm|_vm|_init][.<segment>], the whole rest of the path.
bool take_file_name(std::string_view s, RelationPath &p) {
    if (take(s, "t")) {
        if (!take_number<int32_t>(s, p.backend, INT32_MAX) || !take(s, "_")) return false;
    }
    if (!take_number<uint32_t>(s, p.relfilenode, UINT32_MAX)) return false;
    if (take(s, "_fsm"))
        p.fork = RelationPath::Fork::FreeSpaceMap;
    else if (take(s, "_vm"))
        p.fork = RelationPath::Fork::VisibilityMap;
    else if (take(s, "_init"))
        p.fork = RelationPath::Fork::Init;
    if (take(s, ".") && !take_number<uint32_t>(s, p.segment, UINT32_MAX)) return false;
    return s.empty();
}

}  // namespace

std::optional<RelationPath> parse_relation_path(std::string_view s) {
    RelationPath p;
    if (take(s, "global/")) {
        p.tablespace = RelationPath::kGlobalTablespace;
        if (!take_file_name(s, p) || p.temporary()) return std::nullopt;
        return p;
    }
    if (take(s, "pg_tblspc/")) {
        // pg_tblspc/<tablespace>/PG_<version>_<catversion>/<database>/<file>
        if (!take_number<uint32_t>(s, p.tablespace, UINT32_MAX) || p.tablespace == 0 || !take(s, "/PG_")) return std::nullopt;
        size_t slash = s.find('/');
        if (slash == std::string_view::npos) return std::nullopt;
        s.remove_prefix(slash + 1);
    } else if (!take(s, "base/")) {
        return std::nullopt;
    }
    if (!take_number<uint32_t>(s, p.database, UINT32_MAX) || !take(s, "/") || !take_file_name(s, p)) return std::nullopt;
    return p;
}

std::optional<RelationPath> find_relation_path(std::string_view message) {
    for (size_t open = message.find('"'); open != std::string_view::npos;) {
        size_t close = message.find('"', open + 1);
        if (close == std::string_view::npos) break;
        if (auto p = parse_relation_path(message.substr(open + 1, close - open - 1))) return p;
        open = message.find('"', close + 1);
    }
    return std::nullopt;
}

}  // namespace sgivm
