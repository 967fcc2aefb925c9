// Visibility of a streamed transaction in the backfill snapshot, with PostgreSQL's circular
// comparison of 32-bit transaction ids.
#include "core/snapshot.hpp"

#include <algorithm>

#include "core/change_format.hpp"
#include "core/cpp_only.hpp"

namespace sgivm {

namespace {

// A decimal 64-bit transaction id (strtoull would turn one that does not fit into UINT64_MAX).
uint64_t parse_xid(const std::string &s, size_t &pos) {
    size_t start = pos;
    uint64_t v = 0;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; pos++) {
        uint64_t digit = static_cast<uint64_t>(s[pos] - '0');
        if (v > (UINT64_MAX - digit) / 10) throw FormatError("invalid snapshot \"" + s + "\": xid out of range");
        v = v * 10 + digit;
    }
    if (pos == start) throw FormatError("invalid snapshot \"" + s + "\"");
    return v;
}

void expect(const std::string &s, size_t &pos, char c) {
    if (pos >= s.size() || s[pos] != c) throw FormatError("invalid snapshot \"" + s + "\"");
    pos++;
}

// a precedes b in the circular xid space
bool precedes(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

CopySnapshot CopySnapshot::parse(const std::string &text) {
    CopySnapshot s;
    size_t pos = 0;
    s.xmin_ = parse_xid(text, pos);
    expect(text, pos, ':');
    s.xmax_ = parse_xid(text, pos);
    expect(text, pos, ':');
    while (pos < text.size()) {
        s.in_progress_.push_back(static_cast<uint32_t>(parse_xid(text, pos)));
        if (pos < text.size()) expect(text, pos, ',');
    }
    if (s.xmax_ < s.xmin_) throw FormatError("invalid snapshot \"" + text + "\": xmax < xmin");
    std::sort(s.in_progress_.begin(), s.in_progress_.end());
    return s;
}

bool CopySnapshot::saw(uint32_t xid) const {
    uint32_t xmin = static_cast<uint32_t>(xmin_), xmax = static_cast<uint32_t>(xmax_);
    if (precedes(xid, xmin)) return true;
    if (!precedes(xid, xmax)) return false;
    return !std::binary_search(in_progress_.begin(), in_progress_.end(), xid);
}

}  // namespace sgivm
