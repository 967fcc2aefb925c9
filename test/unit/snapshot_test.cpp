// Unit tests of sgivm::CopySnapshot (src/core/snapshot.hpp): parsing pg_snapshot's text form
// "xmin:xmax:xip,xip,..." and the question the stream asks of the backfill snapshot, did the
// copy already see this (32-bit, wrapping) transaction id? Including the epoch boundary at 2^32.
#include "core/snapshot.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/change_format.hpp"

using namespace sgivm;

namespace {

constexpr uint64_t kEpoch = uint64_t{1} << 32;

// ---- parsing --------------------------------------------------------------------------------

TEST(CopySnapshotParse, EmptyXipList) {
    CopySnapshot s = CopySnapshot::parse("742:742:");
    EXPECT_EQ(s.xmin(), 742u);
    EXPECT_EQ(s.xmax(), 742u);
}

TEST(CopySnapshotParse, XminBelowXmaxWithoutInProgress) {
    CopySnapshot s = CopySnapshot::parse("100:105:");
    EXPECT_EQ(s.xmin(), 100u);
    EXPECT_EQ(s.xmax(), 105u);
    for (uint32_t x = 100; x < 105; x++) EXPECT_TRUE(s.saw(x)) << x;
}

TEST(CopySnapshotParse, OneInProgress) {
    CopySnapshot s = CopySnapshot::parse("100:105:100");
    EXPECT_EQ(s.xmin(), 100u);
    EXPECT_EQ(s.xmax(), 105u);
    EXPECT_FALSE(s.saw(100));
    EXPECT_TRUE(s.saw(101));
}

TEST(CopySnapshotParse, SeveralInProgress) {
    CopySnapshot s = CopySnapshot::parse("100:110:100,103,107");
    EXPECT_FALSE(s.saw(100));
    EXPECT_TRUE(s.saw(101));
    EXPECT_TRUE(s.saw(102));
    EXPECT_FALSE(s.saw(103));
    EXPECT_TRUE(s.saw(106));
    EXPECT_FALSE(s.saw(107));
    EXPECT_TRUE(s.saw(109));
}

TEST(CopySnapshotParse, InProgressListOutOfOrder) {
    // pg_snapshot prints them ascending; the reader must not depend on it
    CopySnapshot s = CopySnapshot::parse("100:110:107,100,103");
    EXPECT_FALSE(s.saw(100));
    EXPECT_FALSE(s.saw(103));
    EXPECT_FALSE(s.saw(107));
    EXPECT_TRUE(s.saw(101));
    EXPECT_TRUE(s.saw(108));
}

TEST(CopySnapshotParse, SixtyFourBitIdsOfALaterEpoch) {
    // full transaction ids as pg_current_snapshot() prints them after wraparounds
    const uint64_t base = 5 * kEpoch + 1000;
    CopySnapshot s = CopySnapshot::parse(std::to_string(base) + ":" + std::to_string(base + 10) + ":" +
                                         std::to_string(base + 2));
    EXPECT_EQ(s.xmin(), base);
    EXPECT_EQ(s.xmax(), base + 10);
    EXPECT_TRUE(s.saw(999));
    EXPECT_TRUE(s.saw(1001));
    EXPECT_FALSE(s.saw(1002));
    EXPECT_FALSE(s.saw(1010));
}

TEST(CopySnapshotParse, LargestXids) {
    CopySnapshot s = CopySnapshot::parse("18446744073709551000:18446744073709551010:");
    EXPECT_EQ(s.xmin(), 18446744073709551000u);
    EXPECT_EQ(s.xmax(), 18446744073709551010u);
    CopySnapshot m = CopySnapshot::parse("18446744073709551615:18446744073709551615:");
    EXPECT_EQ(m.xmin(), UINT64_MAX);
    EXPECT_EQ(m.xmax(), UINT64_MAX);
}

TEST(CopySnapshotParse, InvalidStringsThrowFormatError) {
    const std::vector<std::string> bad = {
        "",             // nothing
        "abc",          // not a number
        "100",          // no xmax
        "100:",         // no xmax
        "100:105",      // the second colon is part of the form (pg_snapshot_out always writes it)
        ":105:",        // no xmin
        "100::",        // no xmax
        "100:105:x",    // xip not a number
        "100:105:,",    // empty xip entry
        "100:105:101,,102",
        "100:105:101;102",
        "-1:105:",      // negative
        "100:-5:",
        " 100:105:",    // stray blanks
        "100 :105:",
        "100:105:101 ",
        "0x10:0x20:",   // hex
        "105:100:",     // xmax before xmin
        "100:105:101:", // one colon too many
        // xids that do not fit in 64 bits (fuzz regression, snapshot target: they were read as
        // UINT64_MAX)
        "18446744073709551614:18446744083709551615:",
        "18446744073709551616:18446744073709551616:",
        "100:105:99999999999999999999",
    };
    for (const std::string &s : bad) {
        EXPECT_THROW(CopySnapshot::parse(s), FormatError) << "\"" << s << "\"";
    }
}

TEST(CopySnapshotParse, ErrorNamesTheSnapshot) {
    try {
        CopySnapshot::parse("100:oops:");
        FAIL() << "no exception";
    } catch (const FormatError &e) {
        EXPECT_NE(std::string(e.what()).find("100:oops:"), std::string::npos) << e.what();
    }
}

// ---- saw(): the four regions ----------------------------------------------------------------

TEST(CopySnapshotSaw, BelowXminIsVisible) {
    CopySnapshot s = CopySnapshot::parse("1000:1010:1000,1005");
    EXPECT_TRUE(s.saw(999));
    EXPECT_TRUE(s.saw(500));
    EXPECT_TRUE(s.saw(3));
}

TEST(CopySnapshotSaw, InProgressIsNotVisible) {
    CopySnapshot s = CopySnapshot::parse("1000:1010:1000,1005");
    EXPECT_FALSE(s.saw(1000));
    EXPECT_FALSE(s.saw(1005));
}

TEST(CopySnapshotSaw, BetweenXminAndXmaxNotInProgressIsVisible) {
    CopySnapshot s = CopySnapshot::parse("1000:1010:1000,1005");
    for (uint32_t x : {1001u, 1002u, 1003u, 1004u, 1006u, 1009u}) EXPECT_TRUE(s.saw(x)) << x;
}

TEST(CopySnapshotSaw, AtOrAboveXmaxIsNotVisible) {
    CopySnapshot s = CopySnapshot::parse("1000:1010:1000,1005");
    EXPECT_FALSE(s.saw(1010));
    EXPECT_FALSE(s.saw(1011));
    EXPECT_FALSE(s.saw(2000000));
}

TEST(CopySnapshotSaw, XminEqualsXmax) {
    // nothing was running: everything before xmax was seen, nothing from xmax on
    CopySnapshot s = CopySnapshot::parse("742:742:");
    EXPECT_TRUE(s.saw(741));
    EXPECT_TRUE(s.saw(3));
    EXPECT_FALSE(s.saw(742));
    EXPECT_FALSE(s.saw(743));
}

TEST(CopySnapshotSaw, FarAwayWithinHalfTheXidSpace) {
    CopySnapshot s = CopySnapshot::parse("3000000000:3000000010:");
    EXPECT_TRUE(s.saw(3000000000u - 2000000000u));   // 2e9 older: still "before"
    EXPECT_FALSE(s.saw(3000000010u + 2000000000u));  // 2e9 newer (wraps past 2^32): "after"
}

// ---- 32-bit wraparound at the epoch boundary ------------------------------------------------
// xmin 4294967290 (epoch 0), xmax 4294967300 = epoch 1 xid 4; 4294967295 is still running.

TEST(CopySnapshotWraparound, SnapshotAcrossTheEpochBoundary) {
    CopySnapshot s = CopySnapshot::parse("4294967290:4294967300:4294967295");
    EXPECT_EQ(s.xmin(), 4294967290u);
    EXPECT_EQ(s.xmax(), 4294967300u);
    EXPECT_TRUE(s.saw(4294967289u));   // below xmin
    EXPECT_TRUE(s.saw(4294967290u));   // xmin itself, not in progress
    EXPECT_TRUE(s.saw(4294967294u));   // between, before the boundary
    EXPECT_FALSE(s.saw(4294967295u));  // in progress
    EXPECT_TRUE(s.saw(3));             // 4294967299 mod 2^32: between, after the boundary
    EXPECT_FALSE(s.saw(4));            // = xmax
    EXPECT_FALSE(s.saw(5));            // above xmax
    EXPECT_FALSE(s.saw(1000));
}

TEST(CopySnapshotWraparound, InProgressAfterTheBoundary) {
    // 4294967298 (xid 2 of epoch 1) still running
    CopySnapshot s = CopySnapshot::parse("4294967290:4294967300:4294967291,4294967298");
    EXPECT_TRUE(s.saw(4294967290u));
    EXPECT_FALSE(s.saw(4294967291u));
    EXPECT_TRUE(s.saw(4294967295u));
    EXPECT_TRUE(s.saw(1));
    EXPECT_FALSE(s.saw(2));
    EXPECT_TRUE(s.saw(3));
    EXPECT_FALSE(s.saw(4));
}

TEST(CopySnapshotWraparound, WholeSnapshotInTheNextEpoch) {
    // xmin and xmax both past the boundary; old transactions of epoch 0 were seen
    CopySnapshot s = CopySnapshot::parse("4294967300:4294967310:4294967305");
    EXPECT_TRUE(s.saw(4294967295u));
    EXPECT_TRUE(s.saw(4294967200u));
    EXPECT_TRUE(s.saw(3));
    EXPECT_TRUE(s.saw(4));
    EXPECT_FALSE(s.saw(9));
    EXPECT_TRUE(s.saw(10));
    EXPECT_FALSE(s.saw(14));
    EXPECT_FALSE(s.saw(20));
}

TEST(CopySnapshotWraparound, XmaxExactlyAtTheBoundary) {
    CopySnapshot s = CopySnapshot::parse("4294967290:4294967296:");
    EXPECT_TRUE(s.saw(4294967295u));
    EXPECT_FALSE(s.saw(0));  // 2^32 mod 2^32 (never a real xid, but the comparison must hold)
    EXPECT_FALSE(s.saw(3));
}

TEST(CopySnapshotWraparound, NormalXidsAfterTheBoundaryAreNewer) {
    // Just after the wrap, small xids are newer than the snapshot, not older.
    CopySnapshot s = CopySnapshot::parse("4294967200:4294967210:");
    EXPECT_TRUE(s.saw(4294967199u));
    EXPECT_FALSE(s.saw(3));
    EXPECT_FALSE(s.saw(100));
}

}  // namespace
