// Freshness of a pipeline: how long source transactions took from their commit to the commit
// that made their effect visible in the maintained tables. A log-scale histogram (buckets 10%
// wide) over two rotating one-minute windows. Plain data without pointers: it lives in shared
// memory, written by the pipeline's worker, read by the `pipelines` view.
#pragma once

#include <cstdint>

namespace sgivm {

constexpr int kLatencyBuckets = 160;  // bucket b > 0 holds [1.1^(b-1), 1.1^b) ms; the last one is open

struct LatencyHistogram {
    uint32_t counts[kLatencyBuckets];

    static int bucket_of(double ms);
    static double upper_bound_ms(int bucket);  // the largest latency a bucket stands for

    void clear();
    void add(double ms, uint32_t n = 1);
    void merge(const LatencyHistogram &other);
    uint64_t count() const;
    // The upper bound of the bucket holding the q-quantile (0 < q <= 1); -1 when empty.
    double quantile_ms(double q) const;
};

// Two one-minute windows: `current` started at current_start_us; `previous` is the minute
// before it. Times are microseconds on any one clock (PostgreSQL's TimestampTz).
struct FreshnessWindows {
    static constexpr int64_t kWindowUs = 60 * 1000000LL;

    LatencyHistogram current;
    LatencyHistogram previous;
    int64_t current_start_us;

    void clear();
    // Moves to the window holding now_us (the worker calls this before adding).
    void rotate(int64_t now_us);
    void add(int64_t now_us, double ms, uint32_t n = 1);
    // The transactions applied in the last one to two minutes, as seen at now_us.
    LatencyHistogram recent(int64_t now_us) const;
};

}  // namespace sgivm
