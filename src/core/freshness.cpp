#include "core/freshness.hpp"

#include <cmath>
#include <cstring>

#include "core/cpp_only.hpp"

namespace sgivm {

namespace {
const double kLogStep = std::log(1.1);
}

int LatencyHistogram::bucket_of(double ms) {
    if (!(ms >= 1.0)) return 0;  // also NaN and negative (clock skew)
    double b = std::floor(std::log(ms) / kLogStep) + 1;
    return b >= kLatencyBuckets - 1 ? kLatencyBuckets - 1 : static_cast<int>(b);
}

double LatencyHistogram::upper_bound_ms(int bucket) {
    if (bucket <= 0) return 1.0;
    return std::pow(1.1, bucket);
}

void LatencyHistogram::clear() { std::memset(counts, 0, sizeof counts); }

namespace {
void saturating_add(uint32_t &c, uint32_t n) { c = c > UINT32_MAX - n ? UINT32_MAX : c + n; }
}  // namespace

void LatencyHistogram::add(double ms, uint32_t n) { saturating_add(counts[bucket_of(ms)], n); }

void LatencyHistogram::merge(const LatencyHistogram &other) {
    for (int b = 0; b < kLatencyBuckets; b++) saturating_add(counts[b], other.counts[b]);
}

uint64_t LatencyHistogram::count() const {
    uint64_t n = 0;
    for (uint32_t c : counts) n += c;
    return n;
}

double LatencyHistogram::quantile_ms(double q) const {
    uint64_t n = count();
    if (n == 0) return -1;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    // the rank of the quantile, 1-based: ceil(q * n), at least 1
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(n)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < kLatencyBuckets; b++) {
        seen += counts[b];
        if (seen >= rank) return upper_bound_ms(b);
    }
    return upper_bound_ms(kLatencyBuckets - 1);
}

void FreshnessWindows::clear() {
    current.clear();
    previous.clear();
    current_start_us = 0;
}

void FreshnessWindows::rotate(int64_t now_us) {
    if (current_start_us == 0) {
        current_start_us = now_us;
        return;
    }
    int64_t elapsed = now_us - current_start_us;
    if (elapsed < kWindowUs) return;
    if (elapsed < 2 * kWindowUs) {
        previous = current;
        current_start_us += kWindowUs;
    } else {
        previous.clear();
        current_start_us = now_us;
    }
    current.clear();
}

void FreshnessWindows::add(int64_t now_us, double ms, uint32_t n) {
    rotate(now_us);
    current.add(ms, n);
}

LatencyHistogram FreshnessWindows::recent(int64_t now_us) const {
    LatencyHistogram h;
    h.clear();
    if (current_start_us == 0) return h;
    int64_t elapsed = now_us - current_start_us;
    if (elapsed < 2 * kWindowUs) h.merge(current);
    if (elapsed < kWindowUs) h.merge(previous);
    return h;
}

}  // namespace sgivm
