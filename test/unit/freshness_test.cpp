// Unit tests of the freshness histogram (src/core/freshness.hpp): bucket boundaries, quantiles
// against sorted samples, merging, and the two rotating one-minute windows.
#include "core/freshness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace sgivm;

namespace {
LatencyHistogram empty() {
    LatencyHistogram h;
    h.clear();
    return h;
}
constexpr int64_t kSec = 1000000;
}  // namespace

TEST(LatencyHistogram, BucketsAreTenPercentWide) {
    EXPECT_EQ(LatencyHistogram::bucket_of(0), 0);
    EXPECT_EQ(LatencyHistogram::bucket_of(0.999), 0);
    EXPECT_EQ(LatencyHistogram::bucket_of(-5), 0);  // clock skew
    EXPECT_EQ(LatencyHistogram::bucket_of(std::nan("")), 0);
    EXPECT_EQ(LatencyHistogram::bucket_of(1.0), 1);
    EXPECT_EQ(LatencyHistogram::bucket_of(1.09), 1);
    EXPECT_EQ(LatencyHistogram::bucket_of(1.11), 2);
    EXPECT_EQ(LatencyHistogram::bucket_of(1e12), kLatencyBuckets - 1);  // the open last bucket
    for (double ms : {1.0, 3.7, 99.0, 250.0, 1234.5, 60000.0}) {
        int b = LatencyHistogram::bucket_of(ms);
        EXPECT_LE(ms, LatencyHistogram::upper_bound_ms(b)) << ms;
        EXPECT_GT(ms * 1.1 + 1e-9, LatencyHistogram::upper_bound_ms(b)) << ms;  // at most 10% above
    }
}

TEST(LatencyHistogram, QuantilesBoundTheSortedSamplesWithinTenPercent) {
    std::mt19937 rng(7);
    std::lognormal_distribution<double> dist(4.0, 1.0);  // around 55 ms, long tail
    std::vector<double> xs;
    LatencyHistogram h = empty();
    for (int i = 0; i < 10000; i++) {
        xs.push_back(dist(rng));
        h.add(xs.back());
    }
    std::sort(xs.begin(), xs.end());
    EXPECT_EQ(h.count(), 10000u);
    for (double q : {0.5, 0.9, 0.99, 1.0}) {
        double exact = xs[static_cast<size_t>(std::ceil(q * xs.size())) - 1];
        double got = h.quantile_ms(q);
        EXPECT_GE(got, exact) << q;
        EXPECT_LE(got, std::max(1.0, exact * 1.1) + 1e-9) << q;
    }
}

TEST(LatencyHistogram, EmptyAndMerge) {
    LatencyHistogram a = empty(), b = empty();
    EXPECT_EQ(a.quantile_ms(0.5), -1);
    a.add(10, 3);
    b.add(500);
    a.merge(b);
    EXPECT_EQ(a.count(), 4u);
    EXPECT_NEAR(a.quantile_ms(0.5), 10, 1.1);
    EXPECT_NEAR(a.quantile_ms(0.99), 500, 50);
    b.counts[5] = UINT32_MAX;
    a.merge(b);  // saturates instead of wrapping
    EXPECT_EQ(a.counts[5], UINT32_MAX);
}

TEST(FreshnessWindows, RecentCoversTheLastOneToTwoMinutes) {
    FreshnessWindows w;
    w.clear();
    EXPECT_EQ(w.recent(100 * kSec).count(), 0u);
    w.add(100 * kSec, 20);          // window 1 starts at 100 s
    w.add(130 * kSec, 40);
    EXPECT_EQ(w.recent(150 * kSec).count(), 2u);
    w.add(170 * kSec, 300);         // window 2 (160 s ..), window 1 becomes the previous
    EXPECT_EQ(w.current.count(), 1u);
    EXPECT_EQ(w.previous.count(), 2u);
    EXPECT_EQ(w.recent(175 * kSec).count(), 3u);
    EXPECT_EQ(w.recent(225 * kSec).count(), 1u);   // the previous minute is too old now
    EXPECT_EQ(w.recent(285 * kSec).count(), 0u);   // and so is the current one
    w.add(500 * kSec, 5);           // after a long pause: nothing old survives
    EXPECT_EQ(w.previous.count(), 0u);
    EXPECT_EQ(w.recent(500 * kSec).count(), 1u);
}
