// The snapshot a backfill copied the sources under, and the question the stream asks of it:
// did the copy already see this transaction? (Then its changes must not be applied again.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sgivm {

class CopySnapshot {
public:
    // Parses pg_snapshot's text form "xmin:xmax:xip,xip,..." (64-bit transaction ids).
    static CopySnapshot parse(const std::string &text);

    // Whether a transaction with this (32-bit, wrapping) top-level xid was committed and
    // visible to the snapshot. Valid for transactions within 2^31 xids of the snapshot.
    bool saw(uint32_t xid) const;

    uint64_t xmin() const { return xmin_; }
    uint64_t xmax() const { return xmax_; }

private:
    uint64_t xmin_ = 0, xmax_ = 0;
    std::vector<uint32_t> in_progress_;
};

}  // namespace sgivm
