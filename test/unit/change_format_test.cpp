// Unit tests of the change-stream codec (src/core/change_format.hpp, docs/change-format.md):
// round trips of every message and value kind, golden bytes, rejection of bad input, text form.
#include "core/change_format.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace sgivm {

// Readable gtest failure output for the codec's types (long text cut, control bytes escaped).
void PrintTo(const Value &v, std::ostream *os) {
    std::string s = format_value(v);
    if (s.size() > 80) s = s.substr(0, 80) + "...(" + std::to_string(v.text.size()) + " bytes)";
    for (unsigned char c : s) {
        if (c < 0x20 || c == 0x7f) {
            static const char digits[] = "0123456789abcdef";
            *os << "\\x" << digits[c >> 4] << digits[c & 15];
        } else {
            *os << c;
        }
    }
}
void PrintTo(const Message &m, std::ostream *os) {
    std::string s = format_text(m);
    if (s.size() > 300) s = s.substr(0, 300) + "...";
    *os << s;
}

}  // namespace sgivm

using namespace sgivm;

namespace {

// ---- fixtures shaped like the State Grid source tables ---------------------------------------

// PostgreSQL type OIDs (pg_type.h); the codec only carries them.
constexpr uint32_t kInt2Oid = 21;
constexpr uint32_t kInt4Oid = 23;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kVarcharOid = 1043;
constexpr uint32_t kNumericOid = 1700;
constexpr uint32_t kDateOid = 1082;
constexpr uint32_t kTimestampOid = 1114;
constexpr uint32_t kTimestampTzOid = 1184;

constexpr uint32_t kPowerUserRelid = 16385;
constexpr uint32_t kPowerConsumptionRelid = 16400;
constexpr uint32_t kRegionStatsRelid = 16420;

constexpr int32_t varchar_typmod(int32_t n) { return n + 4; }  // VARHDRSZ + length
constexpr int32_t numeric_typmod(int32_t p, int32_t s) { return ((p << 16) | s) + 4; }

// Microseconds / days since 2000-01-01, computed independently (Python datetime).
constexpr int64_t kTs20240315_0830 = 763806600000000;      // 2024-03-15 08:30:00
constexpr int64_t kTs20231130_1845 = 754685110000001;      // 2023-11-30 18:45:10.000001
constexpr int64_t kTs1970 = -946684800000000;              // 1970-01-01 00:00:00
constexpr int64_t kTs1900 = -3155673600000000;             // 1900-01-01 00:00:00
constexpr int64_t kTs9999 = 252455615999999999;            // 9999-12-31 23:59:59.999999
constexpr int64_t kTsLeapDay = 762523200123000;            // 2024-02-29 12:00:00.123
constexpr int64_t kTsYear1 = -63082281600000000;           // 0001-01-01 00:00:00
constexpr int64_t kTsPgMin = -211813488000000000;          // MIN_TIMESTAMP: 4714-11-24 00:00:00 BC
constexpr int64_t kTsPgEnd = 9223371331200000000;          // END_TIMESTAMP: 294277-01-01
constexpr int32_t kDate20240315 = 8840;
constexpr int32_t kDate19000301 = -36465;
constexpr int32_t kDate00010101 = -730119;
constexpr int32_t kDate21000228 = 36583;

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int32_t kInt32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kInt32Max = std::numeric_limits<int32_t>::max();

RelationMessage power_user_relation() {
    RelationMessage r;
    r.relid = kPowerUserRelid;
    r.schema = "public";
    r.name = "power_user";
    r.columns = {
        {"user_id", kInt8Oid, -1, true},
        {"user_name", kVarcharOid, varchar_typmod(100), false},
        {"usage_type", kVarcharOid, varchar_typmod(50), false},
        {"region_id", kInt4Oid, -1, false},
        {"region_name", kVarcharOid, varchar_typmod(100), false},
        {"address", kVarcharOid, varchar_typmod(200), false},
        {"phone", kVarcharOid, varchar_typmod(20), false},
        {"create_time", kTimestampOid, -1, false},
        {"update_time", kTimestampOid, -1, false},
    };
    return r;
}

RelationMessage power_consumption_relation() {
    RelationMessage r;
    r.relid = kPowerConsumptionRelid;
    r.schema = "public";
    r.name = "power_consumption";
    r.columns = {
        {"consumption_id", kInt8Oid, -1, true},
        {"user_id", kInt8Oid, -1, false},
        {"consumption_amount", kNumericOid, numeric_typmod(10, 2), false},
        {"consumption_cost", kNumericOid, numeric_typmod(10, 2), false},
        {"consumption_date", kTimestampOid, -1, false},
        {"meter_reading_before", kNumericOid, numeric_typmod(10, 2), false},
        {"meter_reading_after", kNumericOid, numeric_typmod(10, 2), false},
        {"remark", kVarcharOid, varchar_typmod(200), false},
    };
    return r;
}

// A table whose key is composite and not in the leading columns.
RelationMessage region_stats_relation() {
    RelationMessage r;
    r.relid = kRegionStatsRelid;
    r.schema = "warehouse";
    r.name = "dws_region_daily_stats";
    r.columns = {
        {"stats_id", kInt8Oid, -1, false},
        {"region_id", kInt4Oid, -1, true},
        {"region_name", kVarcharOid, varchar_typmod(100), false},
        {"stat_date", kDateOid, -1, true},
        {"total_consumption", kNumericOid, numeric_typmod(15, 2), false},
        {"update_time", kTimestampTzOid, -1, false},
    };
    return r;
}

Row power_user_row(int64_t user_id, const std::string &name, const std::string &usage_type,
                   int32_t region_id, const std::string &region_name, int64_t ts) {
    return {Value::int64(user_id),
            Value::of_text(name),
            Value::of_text(usage_type),
            Value::int32(region_id),
            Value::of_text(region_name),
            Value::of_text(region_name + "朝阳区建国路88号"),
            Value::of_text("13800138001"),
            Value::timestamp(ts),
            Value::timestamp(ts)};
}

Row power_consumption_row(int64_t id, int64_t user_id, const std::string &amount, const std::string &cost,
                          int64_t date, Value remark) {
    return {Value::int64(id),        Value::int64(user_id),         Value::of_text(amount),
            Value::of_text(cost),    Value::timestamp(date),        Value::of_text("10234.50"),
            Value::of_text("10357.95"), std::move(remark)};
}

Row key_of(const Row &row, const RelationMessage &rel) {
    Row key;
    for (size_t i = 0; i < rel.columns.size(); i++)
        if (rel.columns[i].is_key) key.push_back(row[i]);
    return key;
}

// A remark as long as a TOASTed value would be (100 KB and more), multi-byte throughout.
std::string long_remark() {
    std::string s;
    while (s.size() < 100 * 1024) s += "抄表员备注：表计运行正常，读数已核对。";
    return s;
}

Message msg(const BeginMessage &b) {
    Message m;
    m.kind = MessageKind::Begin;
    m.begin = b;
    return m;
}
Message msg(const RelationMessage &r) {
    Message m;
    m.kind = MessageKind::Relation;
    m.relation = r;
    return m;
}
Message msg(const RowMessage &r) {
    Message m;
    m.kind = r.kind;
    m.row = r;
    return m;
}
Message msg(const ResyncMessage &r) {
    Message m;
    m.kind = MessageKind::Resync;
    m.resync = r;
    return m;
}

Message msg(const TruncateMessage &t) {
    Message m;
    m.kind = MessageKind::Truncate;
    m.truncate = t;
    return m;
}
Message msg(const CommitMessage &c) {
    Message m;
    m.kind = MessageKind::Commit;
    m.commit = c;
    return m;
}

RowMessage insert(uint32_t relid, Row row) {
    RowMessage r;
    r.kind = MessageKind::Insert;
    r.relid = relid;
    r.new_row = std::move(row);
    return r;
}
RowMessage update(uint32_t relid, OldRowKind old_kind, Row old_row, Row new_row) {
    RowMessage r;
    r.kind = MessageKind::Update;
    r.relid = relid;
    r.old_kind = old_kind;
    r.old_row = std::move(old_row);
    r.new_row = std::move(new_row);
    return r;
}
RowMessage del(uint32_t relid, OldRowKind old_kind, Row old_row) {
    RowMessage r;
    r.kind = MessageKind::Delete;
    r.relid = relid;
    r.old_kind = old_kind;
    r.old_row = std::move(old_row);
    return r;
}

std::string encode(const Message &m) {
    Encoder e;
    e.message(m);
    return e.bytes();
}

std::string hex(const std::string &bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (unsigned char c : bytes) {
        s += digits[c >> 4];
        s += digits[c & 15];
    }
    return s;
}

std::string unhex(const std::string &h) {
    std::string s;
    for (size_t i = 0; i + 1 < h.size(); i += 2) s += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return s;
}

// The plugin's way of writing a row (output_plugin.cpp encode_wire): header calls, then one
// typed call per value.
void stream_values(Encoder &e, const Row &row) {
    for (const Value &v : row) {
        switch (v.kind) {
            case ValueKind::Null: e.value_null(); break;
            case ValueKind::UnchangedToast: e.value_unchanged_toast(); break;
            case ValueKind::Text: e.value_text(v.text); break;
            default: e.value_int(v.kind, v.integer); break;
        }
    }
}

std::string encode_streaming(const RowMessage &m) {
    Encoder e;
    e.row_header(m.kind, m.relid);
    if (m.kind != MessageKind::Insert) {
        e.old_row_header(m.old_kind, static_cast<uint16_t>(m.old_row.size()));
        if (m.old_kind != OldRowKind::None) stream_values(e, m.old_row);
    }
    if (m.kind != MessageKind::Delete) {
        e.new_row_header(static_cast<uint16_t>(m.new_row.size()));
        stream_values(e, m.new_row);
    }
    return e.bytes();
}

// The FormatError text decode() throws, or "<no error>"; any other exception fails the test.
std::string decode_error(const std::string &bytes) {
    try {
        decode(bytes);
    } catch (const FormatError &e) {
        return e.what();
    } catch (const std::exception &e) {
        ADD_FAILURE() << "decode threw something other than FormatError: " << e.what();
        return "<other exception>";
    }
    return "<no error>";
}

::testing::AssertionResult contains(const std::string &haystack, const std::string &needle) {
    if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << '"' << haystack << "\" does not contain \"" << needle << '"';
}

void expect_round_trip(const Message &m) {
    std::string bytes = encode(m);
    ASSERT_GE(bytes.size(), 2u);
    EXPECT_EQ(static_cast<uint8_t>(bytes[0]), kFormatVersion);
    EXPECT_EQ(static_cast<char>(bytes[1]), static_cast<char>(m.kind));
    EXPECT_EQ(peek_kind(bytes), m.kind);
    Message back = decode(bytes);
    EXPECT_EQ(back, m);
    EXPECT_EQ(encode(back), bytes) << "re-encoding the decoded message changed its bytes";
}

// One of each message shape, including the awkward ones; used by the tests that must hold for
// every message (prefixes, trailing bytes, streaming).
std::vector<Message> sample_messages() {
    RelationMessage pu = power_user_relation();
    RelationMessage pc = power_consumption_relation();
    Row user = power_user_row(1001, "张三", "居民", 110000, "北京市", kTs20240315_0830);
    Row moved = power_user_row(1001, "张三", "商业", 310000, "上海市", kTs20231130_1845);
    Row reading = power_consumption_row(5000000001, 1001, "123.45", "-67.80", kTs1900, Value::null());
    Row reading_toast = reading;
    reading_toast[7] = Value::unchanged_toast();
    Row reading_long = reading;
    reading_long[7] = Value::of_text(long_remark());

    std::vector<Message> v;
    v.push_back(msg(BeginMessage{742, kTs20240315_0830, 0x16B3748}));
    v.push_back(msg(pu));
    v.push_back(msg(pc));
    v.push_back(msg(RelationMessage{1, "", "", {}}));
    v.push_back(msg(insert(kPowerUserRelid, user)));
    v.push_back(msg(insert(kPowerConsumptionRelid, reading)));
    v.push_back(msg(insert(kPowerConsumptionRelid, reading_long)));
    v.push_back(msg(insert(kPowerUserRelid, {})));
    v.push_back(msg(update(kPowerUserRelid, OldRowKind::None, {}, moved)));
    v.push_back(msg(update(kPowerUserRelid, OldRowKind::Key, {Value::int64(1000)}, user)));
    v.push_back(msg(update(kPowerUserRelid, OldRowKind::Full, user, moved)));
    v.push_back(msg(update(kPowerConsumptionRelid, OldRowKind::None, {}, reading_toast)));
    v.push_back(msg(del(kPowerUserRelid, OldRowKind::Key, key_of(user, pu))));
    v.push_back(msg(del(kPowerConsumptionRelid, OldRowKind::Full, reading_long)));
    v.push_back(msg(del(kPowerUserRelid, OldRowKind::Key, {})));
    v.push_back(msg(TruncateMessage{{kPowerUserRelid, kPowerConsumptionRelid}, true, true}));
    v.push_back(msg(TruncateMessage{{}, false, false}));
    v.push_back(msg(ResyncMessage{kPowerConsumptionRelid, ResyncReason::PartitionAttached, "public.pc_2024_03"}));
    v.push_back(msg(ResyncMessage{kPowerConsumptionRelid, ResyncReason::PartitionDetached, ""}));
    v.push_back(msg(ResyncMessage{kPowerConsumptionRelid, ResyncReason::PartitionTruncated, "s.p"}));
    v.push_back(msg(CommitMessage{0x16B3748, 0x16B3778, kTs20240315_0830}));
    return v;
}

// ---- round trips ---------------------------------------------------------------------------

TEST(ChangeFormatRoundTrip, Begin) {
    expect_round_trip(msg(BeginMessage{742, kTs20240315_0830, 0x16B3748}));
    expect_round_trip(msg(BeginMessage{0, 0, 0}));
    expect_round_trip(msg(BeginMessage{3, kTs1970, 1}));
    expect_round_trip(msg(BeginMessage{UINT32_MAX, kInt64Min, UINT64_MAX}));
    expect_round_trip(msg(BeginMessage{0x80000000u, kInt64Max, 0x8000000000000000ull}));
    expect_round_trip(msg(BeginMessage{12345, -1, 0x00000001FFFFFFFFull}));
}

TEST(ChangeFormatRoundTrip, Relation) {
    expect_round_trip(msg(power_user_relation()));
    expect_round_trip(msg(power_consumption_relation()));
    expect_round_trip(msg(region_stats_relation()));
}

TEST(ChangeFormatRoundTrip, RelationEdgeCases) {
    expect_round_trip(msg(RelationMessage{1, "", "", {}}));  // a table without columns
    RelationMessage r;
    r.relid = UINT32_MAX;
    r.schema = "国网";
    r.name = "用电 明细 \"quoted\"";
    r.columns = {{"", 0, kInt32Min, false},
                 {"金额", kNumericOid, kInt32Max, true},
                 {"x", UINT32_MAX, -1, true},
                 {"flags", kInt2Oid, 0, false}};
    expect_round_trip(msg(r));
    // All key columns, all non-key columns.
    for (bool key : {false, true}) {
        RelationMessage all = power_user_relation();
        for (Column &c : all.columns) c.is_key = key;
        expect_round_trip(msg(all));
    }
}

TEST(ChangeFormatRoundTrip, InsertPowerUserForEveryUsageType) {
    int64_t id = 1001;
    for (const char *usage : {"居民", "商业", "工业"}) {
        SCOPED_TRACE(usage);
        expect_round_trip(msg(insert(kPowerUserRelid, power_user_row(id++, "李四", usage, 440300, "深圳市",
                                                                     kTs20240315_0830))));
    }
}

TEST(ChangeFormatRoundTrip, InsertPowerUserWithNulls) {
    Row row = power_user_row(1002, "王五", "工业", 110000, "北京市", kTs20240315_0830);
    row[1] = Value::null();  // missing name: the DWD defaults apply downstream
    row[3] = Value::null();  // missing region
    row[4] = Value::null();
    row[6] = Value::null();
    expect_round_trip(msg(insert(kPowerUserRelid, row)));
    Row all_null(9, Value::null());
    all_null[0] = Value::int64(1003);
    expect_round_trip(msg(insert(kPowerUserRelid, all_null)));
}

TEST(ChangeFormatRoundTrip, InsertPowerConsumption) {
    expect_round_trip(msg(insert(kPowerConsumptionRelid,
                                 power_consumption_row(1, 1001, "123.45", "67.90", kTs20240315_0830,
                                                       Value::of_text("正常抄表")))));
    // Late and corrected readings, old dates, far-future dates, odd numerics, NULL remark.
    const std::vector<std::pair<std::string, int64_t>> cases = {
        {"0.00", kTs1970},
        {"-123.45", kTs1900},
        {"99999999.99", kTs9999},
        {"-99999999.99", kTsYear1},
        {"12345678901234567890123456789012345678901234567890.0123456789", kTsPgMin},
        {"-0.01", -1},
        {"NaN", kTsLeapDay},
        {"Infinity", kTsPgEnd - 1},
        {"-Infinity", 0},
        {"1e-5", kTs20231130_1845},
    };
    int64_t id = 10;
    for (const auto &c : cases) {
        SCOPED_TRACE(c.first);
        expect_round_trip(msg(insert(kPowerConsumptionRelid,
                                     power_consumption_row(id++, 1001, c.first, c.first, c.second, Value::null()))));
    }
}

TEST(ChangeFormatRoundTrip, InsertWithLongToastSizedRemark) {
    std::string remark = long_remark();
    ASSERT_GE(remark.size(), 100u * 1024);
    Message m = msg(insert(kPowerConsumptionRelid,
                           power_consumption_row(7, 1001, "1.00", "0.50", kTs20240315_0830, Value::of_text(remark))));
    expect_round_trip(m);
    EXPECT_EQ(decode(encode(m)).row.new_row[7].text.size(), remark.size());
}

TEST(ChangeFormatRoundTrip, UpdateThatKeptTheKeyHasNoOldRow) {
    Row row = power_user_row(1001, "张三", "商业", 310000, "上海市", kTs20231130_1845);
    Message m = msg(update(kPowerUserRelid, OldRowKind::None, {}, row));
    expect_round_trip(m);
    // The kind byte is followed directly by the new row: no old value count.
    std::string bytes = encode(m);
    EXPECT_EQ(bytes[6], 'N');
    EXPECT_EQ(static_cast<uint8_t>(bytes[7]), 0);
    EXPECT_EQ(static_cast<uint8_t>(bytes[8]), 9);
}

TEST(ChangeFormatRoundTrip, UpdateThatChangedTheKeyCarriesTheOldKey) {
    Row row = power_user_row(2001, "张三", "居民", 110000, "北京市", kTs20240315_0830);
    expect_round_trip(msg(update(kPowerUserRelid, OldRowKind::Key, {Value::int64(1001)}, row)));
    // Composite key of a DWS table: region_id, stat_date.
    Row stats = {Value::int64(1), Value::int32(110000), Value::of_text("北京市"), Value::date(kDate20240315),
                 Value::of_text("2469.00"), Value::timestamptz(kTs20240315_0830)};
    expect_round_trip(msg(update(kRegionStatsRelid, OldRowKind::Key,
                                 {Value::int32(120000), Value::date(kDate20240315 - 1)}, stats)));
}

TEST(ChangeFormatRoundTrip, UpdateWithReplicaIdentityFull) {
    Row before = power_consumption_row(42, 1001, "123.45", "67.90", kTs20240315_0830, Value::of_text("初读"));
    Row after = power_consumption_row(42, 1001, "130.00", "71.50", kTs20240315_0830, Value::of_text("更正"));
    expect_round_trip(msg(update(kPowerConsumptionRelid, OldRowKind::Full, before, after)));
    after[2] = Value::null();
    before[7] = Value::of_text(long_remark());
    expect_round_trip(msg(update(kPowerConsumptionRelid, OldRowKind::Full, before, after)));
}

TEST(ChangeFormatRoundTrip, UpdateWithUnchangedToastValue) {
    Row after = power_consumption_row(42, 1001, "130.00", "71.50", kTs20240315_0830, Value::unchanged_toast());
    expect_round_trip(msg(update(kPowerConsumptionRelid, OldRowKind::None, {}, after)));
    expect_round_trip(msg(update(kPowerConsumptionRelid, OldRowKind::Key, {Value::int64(41)}, after)));
    Message m = decode(encode(msg(update(kPowerConsumptionRelid, OldRowKind::None, {}, after))));
    EXPECT_EQ(m.row.new_row[7].kind, ValueKind::UnchangedToast);
    EXPECT_EQ(m.row.new_row[6].kind, ValueKind::Text);
}

TEST(ChangeFormatRoundTrip, DeleteWithOldKey) {
    expect_round_trip(msg(del(kPowerUserRelid, OldRowKind::Key, {Value::int64(1001)})));
    expect_round_trip(msg(del(kPowerConsumptionRelid, OldRowKind::Key, {Value::int64(kInt64Max)})));
    expect_round_trip(msg(del(kRegionStatsRelid, OldRowKind::Key, {Value::int32(0), Value::date(kDate19000301)})));
    // REPLICA IDENTITY NOTHING: the plugin sends an empty key.
    expect_round_trip(msg(del(kPowerUserRelid, OldRowKind::Key, {})));
}

TEST(ChangeFormatRoundTrip, DeleteWithFullOldRow) {
    Row row = power_consumption_row(kInt64Min, -1, "-0.01", "0", kTsYear1, Value::of_text("撤销"));
    expect_round_trip(msg(del(kPowerConsumptionRelid, OldRowKind::Full, row)));
    row[7] = Value::null();
    expect_round_trip(msg(del(kPowerConsumptionRelid, OldRowKind::Full, row)));
}

TEST(ChangeFormatRoundTrip, TruncateWithEveryFlagCombination) {
    for (bool cascade : {false, true})
        for (bool restart : {false, true}) {
            SCOPED_TRACE(std::to_string(cascade) + "/" + std::to_string(restart));
            expect_round_trip(msg(TruncateMessage{{kPowerUserRelid}, cascade, restart}));
            expect_round_trip(msg(TruncateMessage{{kPowerUserRelid, kPowerConsumptionRelid}, cascade, restart}));
        }
    expect_round_trip(msg(TruncateMessage{{}, false, true}));
    TruncateMessage many;
    for (uint32_t i = 0; i < 1000; i++) many.relids.push_back(UINT32_MAX - i * 7919);
    expect_round_trip(msg(many));
    // Flags: bit 0 cascade, bit 1 restart identity.
    EXPECT_EQ(static_cast<uint8_t>(encode(msg(TruncateMessage{{}, true, false}))[2]), 1);
    EXPECT_EQ(static_cast<uint8_t>(encode(msg(TruncateMessage{{}, false, true}))[2]), 2);
    EXPECT_EQ(static_cast<uint8_t>(encode(msg(TruncateMessage{{}, true, true}))[2]), 3);
}

TEST(ChangeFormatRoundTrip, Commit) {
    expect_round_trip(msg(CommitMessage{0x16B3748, 0x16B3778, kTs20240315_0830}));
    expect_round_trip(msg(CommitMessage{0, 0, 0}));
    expect_round_trip(msg(CommitMessage{UINT64_MAX - 1, UINT64_MAX, kInt64Max}));
    expect_round_trip(msg(CommitMessage{0x1FFFFFFFFull, 0x200000000ull, kInt64Min}));
}

TEST(ChangeFormatRoundTrip, AllSampleMessages) {
    for (const Message &m : sample_messages()) {
        SCOPED_TRACE(format_text(m).substr(0, 120));
        expect_round_trip(m);
    }
}

// Every value kind, with its extremes, in every place a value can stand.
struct NamedValue {
    std::string name;
    Value value;
};
void PrintTo(const NamedValue &v, std::ostream *os) { *os << v.name; }

class ValueRoundTrip : public ::testing::TestWithParam<NamedValue> {};

TEST_P(ValueRoundTrip, InEveryRowPosition) {
    const Value &v = GetParam().value;
    // An unchanged-TOAST marker stands only in the new row of an update (docs/change-format.md
    // section 4): inserts and old rows carry a null in its place.
    const Value w = v.kind == ValueKind::UnchangedToast ? Value::null() : v;
    expect_round_trip(msg(insert(kPowerUserRelid, {w})));
    expect_round_trip(msg(insert(kPowerUserRelid, {Value::null(), w, Value::int64(1)})));
    expect_round_trip(msg(update(kPowerUserRelid, OldRowKind::None, {}, {v, v})));
    expect_round_trip(msg(update(kPowerUserRelid, OldRowKind::Key, {w}, {v})));
    expect_round_trip(
        msg(update(kPowerUserRelid, OldRowKind::Full, {w, Value::of_text("x")}, {Value::of_text("y"), v})));
    expect_round_trip(msg(del(kPowerUserRelid, OldRowKind::Key, {w})));
    expect_round_trip(msg(del(kPowerUserRelid, OldRowKind::Full, {w, w, w})));
    Message back = decode(encode(msg(update(kPowerUserRelid, OldRowKind::None, {}, {v}))));
    ASSERT_EQ(back.row.new_row.size(), 1u);
    EXPECT_EQ(back.row.new_row[0].kind, v.kind);
    EXPECT_EQ(back.row.new_row[0].integer, v.integer);
    EXPECT_EQ(back.row.new_row[0].text, v.text);
    std::string streamed = encode_streaming(update(kPowerUserRelid, OldRowKind::None, {}, {v}));
    EXPECT_EQ(hex(streamed), hex(encode(msg(update(kPowerUserRelid, OldRowKind::None, {}, {v})))));
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, ValueRoundTrip,
    ::testing::Values(NamedValue{"Null", Value::null()}, NamedValue{"UnchangedToast", Value::unchanged_toast()},
                      NamedValue{"Int32Zero", Value::int32(0)}, NamedValue{"Int32One", Value::int32(1)},
                      NamedValue{"Int32MinusOne", Value::int32(-1)}, NamedValue{"Int32Min", Value::int32(kInt32Min)},
                      NamedValue{"Int32Max", Value::int32(kInt32Max)},
                      NamedValue{"Int2Min", Value::int32(-32768)}, NamedValue{"Int2Max", Value::int32(32767)},
                      NamedValue{"RegionId", Value::int32(110000)}, NamedValue{"Int64Zero", Value::int64(0)},
                      NamedValue{"Int64MinusOne", Value::int64(-1)}, NamedValue{"Int64Min", Value::int64(kInt64Min)},
                      NamedValue{"Int64Max", Value::int64(kInt64Max)},
                      NamedValue{"Int64Id", Value::int64(5000000001)},
                      NamedValue{"Int64AboveInt32", Value::int64(static_cast<int64_t>(kInt32Max) + 1)},
                      NamedValue{"TimestampEpoch2000", Value::timestamp(0)},
                      NamedValue{"TimestampJustBefore2000", Value::timestamp(-1)},
                      NamedValue{"Timestamp2024", Value::timestamp(kTs20240315_0830)},
                      NamedValue{"Timestamp1900", Value::timestamp(kTs1900)},
                      NamedValue{"Timestamp9999", Value::timestamp(kTs9999)},
                      NamedValue{"TimestampPgMin", Value::timestamp(kTsPgMin)},
                      NamedValue{"TimestampPgMax", Value::timestamp(kTsPgEnd - 1)},
                      NamedValue{"TimestampMinusInfinity", Value::timestamp(kInt64Min)},
                      NamedValue{"TimestampInfinity", Value::timestamp(kInt64Max)},
                      NamedValue{"TimestampTzEpoch2000", Value::timestamptz(0)},
                      NamedValue{"TimestampTz1970", Value::timestamptz(kTs1970)},
                      NamedValue{"TimestampTz2023", Value::timestamptz(kTs20231130_1845)},
                      NamedValue{"TimestampTzMinusInfinity", Value::timestamptz(kInt64Min)},
                      NamedValue{"TimestampTzInfinity", Value::timestamptz(kInt64Max)},
                      NamedValue{"DateEpoch2000", Value::date(0)}, NamedValue{"DateJustBefore2000", Value::date(-1)},
                      NamedValue{"Date2024", Value::date(kDate20240315)},
                      NamedValue{"DateYear1", Value::date(kDate00010101)},
                      NamedValue{"Date2100", Value::date(kDate21000228)},
                      NamedValue{"DateMinusInfinity", Value::date(kInt32Min)},
                      NamedValue{"DateInfinity", Value::date(kInt32Max)}, NamedValue{"TextEmpty", Value::of_text("")},
                      NamedValue{"TextResidential", Value::of_text("居民")},
                      NamedValue{"TextCommercial", Value::of_text("商业")},
                      NamedValue{"TextIndustrial", Value::of_text("工业")},
                      NamedValue{"NumericAmount", Value::of_text("123.45")},
                      NamedValue{"NumericNegative", Value::of_text("-99999999.99")},
                      NamedValue{"NumericHuge",
                                 Value::of_text("100000000000000000000000000000000000000000.000000000000000001")},
                      NamedValue{"TextQuote", Value::of_text("O'Brien")},
                      NamedValue{"TextNulByte", Value::of_text(std::string("nul\0inside", 10))},
                      NamedValue{"TextNotUtf8", Value::of_text("\xff\xfe not utf-8")},
                      NamedValue{"TextControl", Value::of_text("line\nbreak\ttab")},
                      NamedValue{"TextLongRemark", Value::of_text(long_remark())}),
    [](const ::testing::TestParamInfo<NamedValue> &info) { return info.param.name; });

TEST(ChangeFormatRoundTrip, WidestRow) {
    Row row(UINT16_MAX, Value::int32(7));
    row.back() = Value::of_text("last");
    expect_round_trip(msg(insert(kPowerUserRelid, row)));
    row.push_back(Value::null());
    Encoder e;
    EXPECT_THROW(e.row(insert(kPowerUserRelid, row)), FormatError);
    EXPECT_THROW(e.row(update(kPowerUserRelid, OldRowKind::Full, row, {})), FormatError);
}

// ---- encoder behaviour ----------------------------------------------------------------------

TEST(ChangeFormatEncoder, StreamingApiWritesTheSameBytesAsWholeRow) {
    int rows = 0;
    for (const Message &m : sample_messages()) {
        if (m.kind != MessageKind::Insert && m.kind != MessageKind::Update && m.kind != MessageKind::Delete) continue;
        SCOPED_TRACE(format_text(m).substr(0, 120));
        Encoder whole;
        whole.row(m.row);
        EXPECT_EQ(hex(encode_streaming(m.row)), hex(whole.bytes()));
        // value() is the same as the typed calls.
        Encoder generic;
        generic.row_header(m.row.kind, m.row.relid);
        if (m.kind != MessageKind::Insert) {
            generic.old_row_header(m.row.old_kind, static_cast<uint16_t>(m.row.old_row.size()));
            if (m.row.old_kind != OldRowKind::None)
                for (const Value &v : m.row.old_row) generic.value(v);
        }
        if (m.kind != MessageKind::Delete) {
            generic.new_row_header(static_cast<uint16_t>(m.row.new_row.size()));
            for (const Value &v : m.row.new_row) generic.value(v);
        }
        EXPECT_EQ(hex(generic.bytes()), hex(whole.bytes()));
        rows++;
    }
    EXPECT_GE(rows, 10);
}

TEST(ChangeFormatEncoder, ClearStartsAFreshMessage) {
    Encoder e;
    for (const Message &m : sample_messages()) {
        e.clear();
        e.message(m);
        EXPECT_EQ(e.bytes(), encode(m));
        EXPECT_EQ(decode(e.bytes()), m);
    }
    e.clear();
    EXPECT_TRUE(e.bytes().empty());
}

TEST(ChangeFormatEncoder, MessageTakesTheRowKindFromTheMessage) {
    Message m = msg(del(kPowerUserRelid, OldRowKind::Key, {Value::int64(1001)}));
    m.row.kind = MessageKind::Insert;  // stale inner kind: the outer one wins
    Message back = decode(encode(m));
    EXPECT_EQ(back.kind, MessageKind::Delete);
    EXPECT_EQ(back.row.kind, MessageKind::Delete);
    EXPECT_EQ(back.row.old_row, Row{Value::int64(1001)});
}

TEST(ChangeFormatEncoder, InsertIgnoresOldRowFields) {
    RowMessage r = insert(kPowerUserRelid, {Value::int64(1)});
    r.old_kind = OldRowKind::Full;
    r.old_row = {Value::int64(2)};
    Encoder e;
    e.row(r);
    EXPECT_EQ(hex(e.bytes()), hex(encode(msg(insert(kPowerUserRelid, {Value::int64(1)})))));
}

TEST(ChangeFormatEncoder, RejectsMisuse) {
    Encoder e;
    EXPECT_THROW(e.row_header(MessageKind::Begin, 1), FormatError);
    EXPECT_THROW(e.row_header(MessageKind::Commit, 1), FormatError);
    EXPECT_THROW(e.row_header(MessageKind::Truncate, 1), FormatError);
    EXPECT_THROW(e.row_header(MessageKind::Relation, 1), FormatError);
    EXPECT_THROW(e.value_int(ValueKind::Text, 1), FormatError);
    EXPECT_THROW(e.value_int(ValueKind::Null, 1), FormatError);
    EXPECT_THROW(e.value_int(ValueKind::UnchangedToast, 1), FormatError);
    RowMessage bad = insert(1, {});
    bad.kind = MessageKind::Commit;
    EXPECT_THROW(e.row(bad), FormatError);
}

// ---- golden bytes: a change here is a change of the wire format (bump kFormatVersion) ----------

TEST(ChangeFormatGolden, FormatVersionIsTwo) { EXPECT_EQ(kFormatVersion, 2); }

TEST(ChangeFormatGolden, Begin) {
    Message m = msg(BeginMessage{742, kTs20240315_0830, 0x16B3748});
    const std::string golden =
        "02"                 // format version
        "42"                 // 'B'
        "000002e6"           // xid 742
        "0002b6ad9511f200"   // commit time 2024-03-15 08:30:00 (us since 2000)
        "00000000016b3748";  // final lsn 0/16B3748
    EXPECT_EQ(hex(encode(m)), golden);
    EXPECT_EQ(decode(unhex(golden)), m);
}

TEST(ChangeFormatGolden, Insert) {
    Message m = msg(insert(kPowerUserRelid, {Value::int64(1001), Value::of_text("居民"), Value::null(),
                                             Value::int32(-7), Value::timestamp(kTs20240315_0830),
                                             Value::timestamptz(-1), Value::date(kDate20240315)}));
    const std::string golden =
        "02"                          // format version
        "49"                          // 'I'
        "00004001"                    // relid 16385
        "0007"                        // 7 values
        "6c" "00000000000003e9"       // 'l' int64 1001
        "74" "00000006" "e5b185e6b091"  // 't' text, 6 bytes: 居民 in UTF-8
        "6e"                          // 'n' null
        "69" "fffffff9"               // 'i' int32 -7
        "73" "0002b6ad9511f200"       // 's' timestamp 2024-03-15 08:30:00
        "7a" "ffffffffffffffff"       // 'z' timestamptz 1999-12-31 23:59:59.999999+00
        "64" "00002288";              // 'd' date 2024-03-15 (day 8840)
    EXPECT_EQ(hex(encode(m)), golden);
    EXPECT_EQ(hex(encode_streaming(m.row)), golden);
    EXPECT_EQ(decode(unhex(golden)), m);
}

TEST(ChangeFormatGolden, RelationUpdateDeleteTruncateCommit) {
    RelationMessage r{kPowerUserRelid, "public", "t", {{"id", kInt8Oid, -1, true}, {"v", kVarcharOid, 104, false}}};
    EXPECT_EQ(hex(encode(msg(r))),
              "0252" "00004001"
              "00000006" "7075626c6963"                   // "public"
              "00000001" "74"                             // "t"
              "0002"                                      // 2 columns
              "00000002" "6964" "00000014" "ffffffff" "01"  // id int8 typmod -1 key
              "00000001" "76" "00000413" "00000068" "00");  // v varchar(100) not key
    EXPECT_EQ(hex(encode(msg(update(kPowerUserRelid, OldRowKind::Key, {Value::int64(1)},
                                    {Value::int64(2), Value::unchanged_toast()})))),
              "0255" "00004001" "4b" "0001" "6c0000000000000001" "0002" "6c0000000000000002" "75");
    EXPECT_EQ(hex(encode(msg(update(kPowerUserRelid, OldRowKind::None, {}, {Value::int64(2)})))),
              "0255" "00004001" "4e" "0001" "6c0000000000000002");
    EXPECT_EQ(hex(encode(msg(del(kPowerUserRelid, OldRowKind::Full, {Value::int64(2), Value::null()})))),
              "0244" "00004001" "4f" "0002" "6c0000000000000002" "6e");
    EXPECT_EQ(hex(encode(msg(TruncateMessage{{kPowerUserRelid, kPowerConsumptionRelid}, false, true}))),
              "0254" "02" "00000002" "00004001" "00004010");
    EXPECT_EQ(hex(encode(msg(CommitMessage{0x16B3748, 0x16B3778, kTs20240315_0830}))),
              "0243" "00000000016b3748" "00000000016b3778" "0002b6ad9511f200");
}

TEST(ChangeFormatGolden, Resync) {
    const std::string golden = "0253" "00004010" "64" "00000003" "732e70";  // relid, 'd', "s.p"
    Message m = msg(ResyncMessage{kPowerConsumptionRelid, ResyncReason::PartitionDetached, "s.p"});
    EXPECT_EQ(hex(encode(m)), golden);
    EXPECT_EQ(decode(unhex(golden)), m);
    std::string bad = unhex(golden);
    for (int reason = 0; reason < 256; reason++) {
        if (std::string("adt").find(static_cast<char>(reason)) != std::string::npos) continue;
        bad[6] = static_cast<char>(reason);
        EXPECT_EQ(decode_error(bad), "unknown resync reason") << reason;
    }
}

// ---- malformed input ------------------------------------------------------------------------

TEST(ChangeFormatDecode, RejectsEveryTruncation) {
    for (const Message &m : sample_messages()) {
        SCOPED_TRACE(format_text(m).substr(0, 120));
        std::string bytes = encode(m);
        std::string_view all(bytes);
        int failures = 0;
        for (size_t len = 0; len < bytes.size(); len++) {
            try {
                decode(all.substr(0, len));
                if (failures++ < 5) ADD_FAILURE() << "prefix of " << len << " of " << bytes.size() << " bytes decoded";
            } catch (const FormatError &) {
            } catch (...) {
                if (failures++ < 5) ADD_FAILURE() << "prefix of " << len << " bytes threw a non-FormatError";
            }
        }
        EXPECT_EQ(failures, 0);
        EXPECT_NO_THROW(decode(all));
    }
}

TEST(ChangeFormatDecode, TruncationErrorsSayWhatWasBeingRead) {
    std::string begin = encode(msg(BeginMessage{1, 2, 3}));
    EXPECT_TRUE(contains(decode_error(begin.substr(0, 1)), "shorter than its header"));
    EXPECT_TRUE(contains(decode_error(begin.substr(0, 4)), "truncated while reading xid"));
    std::string text = encode(msg(insert(1, {Value::of_text("居民")})));
    EXPECT_TRUE(contains(decode_error(text.substr(0, text.size() - 1)), "truncated while reading text value"));
}

TEST(ChangeFormatDecode, RejectsTrailingBytes) {
    for (const Message &m : sample_messages()) {
        SCOPED_TRACE(format_text(m).substr(0, 120));
        std::string bytes = encode(m);
        EXPECT_TRUE(contains(decode_error(bytes + '\0'), "trailing bytes after message (1)"));
        EXPECT_TRUE(contains(decode_error(bytes + bytes), "trailing bytes"));
    }
}

TEST(ChangeFormatDecode, RejectsOtherFormatVersions) {
    for (const Message &m : sample_messages()) {
        std::string bytes = encode(m);
        for (int version : {0, 1, 3, 0x7f, 0xff}) {
            bytes[0] = static_cast<char>(version);
            std::string err = decode_error(bytes);
            EXPECT_TRUE(contains(err, "unsupported change format version " + std::to_string(version)));
            EXPECT_TRUE(contains(err, "this build reads 2"));
            EXPECT_THROW(peek_kind(bytes), FormatError);
        }
    }
}

TEST(ChangeFormatDecode, RejectsUnknownMessageKinds) {
    std::string bytes = encode(msg(BeginMessage{1, 2, 3}));
    for (int kind = 0; kind < 256; kind++) {
        if (std::string("BRIUDTSC").find(static_cast<char>(kind)) != std::string::npos) continue;
        bytes[1] = static_cast<char>(kind);
        EXPECT_THROW(decode(bytes), FormatError) << kind;
    }
    bytes[1] = 'X';
    EXPECT_EQ(decode_error(bytes), "unknown message kind 0x58");
    bytes[1] = static_cast<char>(0xff);
    EXPECT_EQ(decode_error(bytes), "unknown message kind 0xff");
    bytes[1] = 'b';  // kinds are case-sensitive
    EXPECT_EQ(decode_error(bytes), "unknown message kind 0x62");
}

TEST(ChangeFormatDecode, RejectsUnknownValueKinds) {
    std::string bytes = encode(msg(insert(kPowerUserRelid, {Value::int64(1), Value::null()})));
    ASSERT_EQ(bytes.back(), 'n');
    for (int kind = 0; kind < 256; kind++) {
        if (std::string("nuilszdt").find(static_cast<char>(kind)) != std::string::npos) continue;
        bytes.back() = static_cast<char>(kind);
        EXPECT_THROW(decode(bytes), FormatError) << kind;
    }
    bytes.back() = 'x';
    EXPECT_EQ(decode_error(bytes), "unknown value kind 0x78");
    bytes.back() = static_cast<char>(0xff);
    EXPECT_EQ(decode_error(bytes), "unknown value kind 0xff");
    bytes.back() = static_cast<char>(0x80);
    EXPECT_EQ(decode_error(bytes), "unknown value kind 0x80");
    // In an old row too.
    std::string old = encode(msg(del(kPowerUserRelid, OldRowKind::Key, {Value::null()})));
    old.back() = 'N';
    EXPECT_EQ(decode_error(old), "unknown value kind 0x4e");
}

TEST(ChangeFormatDecode, RejectsDeleteWithoutOldKey) {
    Encoder e;
    e.row_header(MessageKind::Delete, kPowerUserRelid);
    e.old_row_header(OldRowKind::None, 0);
    EXPECT_EQ(decode_error(e.bytes()), "delete without old key");
    // Same through the whole-row encoder, which does not check it.
    Encoder w;
    w.row(del(kPowerUserRelid, OldRowKind::None, {}));
    EXPECT_EQ(decode_error(w.bytes()), "delete without old key");
}

TEST(ChangeFormatDecode, RejectsUnchangedToastOutsideTheNewRowOfAnUpdate) {
    // Nothing to take the value from: a consumer would keep a marker where a value belongs (fuzz
    // regression, row_changes target: an update after such an insert needed a base row without a
    // key to find it by).
    const Value u = Value::unchanged_toast();
    const std::string err = "unchanged-TOAST marker outside the new row of an update";
    EXPECT_EQ(decode_error(encode(msg(insert(kPowerUserRelid, {Value::int64(1), u})))), err);
    EXPECT_EQ(decode_error(encode(msg(update(kPowerUserRelid, OldRowKind::Key, {u}, {Value::int64(1)})))), err);
    EXPECT_EQ(decode_error(encode(msg(update(kPowerUserRelid, OldRowKind::Full, {Value::int64(1), u},
                                             {Value::int64(1), u})))),
              err);
    EXPECT_EQ(decode_error(encode(msg(del(kPowerUserRelid, OldRowKind::Key, {u})))), err);
    EXPECT_EQ(decode_error(encode(msg(del(kPowerUserRelid, OldRowKind::Full, {Value::int64(1), u})))), err);
    EXPECT_NO_THROW(decode(encode(msg(update(kPowerUserRelid, OldRowKind::None, {}, {Value::int64(1), u})))));
}

TEST(ChangeFormatDecode, RejectsUnknownOldRowKinds) {
    for (MessageKind k : {MessageKind::Update, MessageKind::Delete}) {
        std::string bytes = encode(msg(k == MessageKind::Update
                                           ? update(1, OldRowKind::Key, {Value::int64(1)}, {Value::int64(1)})
                                           : del(1, OldRowKind::Key, {Value::int64(1)})));
        ASSERT_EQ(bytes[6], 'K');
        for (char c : {'k', 'F', '\0', 'n'}) {
            bytes[6] = c;
            EXPECT_EQ(decode_error(bytes), "unknown old row kind");
        }
    }
}

TEST(ChangeFormatDecode, RejectsUnknownFlags) {
    std::string rel = encode(msg(RelationMessage{1, "s", "t", {{"c", kInt4Oid, -1, false}}}));
    ASSERT_EQ(rel.back(), '\0');
    rel.back() = 2;
    EXPECT_EQ(decode_error(rel), "unknown column flags");
    rel.back() = 1;
    EXPECT_TRUE(decode(rel).relation.columns[0].is_key);

    std::string tr = encode(msg(TruncateMessage{{1}, false, false}));
    for (int flags : {4, 8, 0x80, 0xff}) {
        tr[2] = static_cast<char>(flags);
        EXPECT_EQ(decode_error(tr), "unknown truncate flags");
    }
}

TEST(ChangeFormatDecode, HugeCountsFailAsTruncationNotAllocation) {
    // A text length of 4 GB with nothing behind it.
    std::string text = unhex("0249" "00000001" "0001" "74" "ffffffff");
    EXPECT_TRUE(contains(decode_error(text), "truncated while reading text value"));
    // A schema name of 4 GB.
    std::string rel = unhex("0252" "00000001" "fffffff0" "41");
    EXPECT_TRUE(contains(decode_error(rel), "truncated while reading schema name"));
    // 4 billion truncated relations.
    std::string tr = unhex("0254" "00" "ffffffff" "00000001");
    EXPECT_TRUE(contains(decode_error(tr), "truncated while reading relid"));
    // 65535 values announced, one present.
    std::string row = unhex("0249" "00000001" "ffff" "6e");
    EXPECT_TRUE(contains(decode_error(row), "truncated while reading value kind"));
}

TEST(ChangeFormatDecode, RejectsEmptyInput) {
    EXPECT_THROW(decode(""), FormatError);
    EXPECT_THROW(decode(std::string(1, '\1')), FormatError);
    EXPECT_THROW(peek_kind(""), FormatError);
    EXPECT_THROW(peek_kind(std::string(1, '\1')), FormatError);
}

// ---- peek_kind --------------------------------------------------------------------------------

TEST(ChangeFormatPeek, ReadsOnlyTheHeader) {
    for (const Message &m : sample_messages()) EXPECT_EQ(peek_kind(encode(m)), m.kind);
    for (char k : {'B', 'R', 'I', 'U', 'D', 'T', 'S', 'C'}) {
        std::string header = {'\2', k};
        EXPECT_EQ(peek_kind(header), static_cast<MessageKind>(k));
        EXPECT_THROW(decode(header), FormatError);  // the body is missing
    }
    std::string long_insert = encode(msg(insert(1, {Value::of_text(long_remark())})));
    EXPECT_EQ(peek_kind(std::string_view(long_insert).substr(0, 2)), MessageKind::Insert);
}

// ---- text form --------------------------------------------------------------------------------

TEST(ChangeFormatText, Timestamp) {
    EXPECT_EQ(format_timestamp(0, false), "2000-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(0, true), "2000-01-01 00:00:00+00");
    EXPECT_EQ(format_timestamp(1, false), "2000-01-01 00:00:00.000001");
    EXPECT_EQ(format_timestamp(1500000, false), "2000-01-01 00:00:01.5");
    EXPECT_EQ(format_timestamp(120000, false), "2000-01-01 00:00:00.12");
    EXPECT_EQ(format_timestamp(-1, false), "1999-12-31 23:59:59.999999");
    EXPECT_EQ(format_timestamp(-1000000, true), "1999-12-31 23:59:59+00");
    EXPECT_EQ(format_timestamp(-500000, false), "1999-12-31 23:59:59.5");
    EXPECT_EQ(format_timestamp(kTs20240315_0830, false), "2024-03-15 08:30:00");
    EXPECT_EQ(format_timestamp(kTs20240315_0830 + 500000, true), "2024-03-15 08:30:00.5+00");
    EXPECT_EQ(format_timestamp(kTs20231130_1845, false), "2023-11-30 18:45:10.000001");
    EXPECT_EQ(format_timestamp(kTsLeapDay, false), "2024-02-29 12:00:00.123");
    EXPECT_EQ(format_timestamp(kTs1970, false), "1970-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(kTs1900, false), "1900-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(kTs1900 - 1, false), "1899-12-31 23:59:59.999999");
    EXPECT_EQ(format_timestamp(kTs9999, false), "9999-12-31 23:59:59.999999");
    EXPECT_EQ(format_timestamp(kTs9999 + 1, false), "10000-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(kTsYear1, false), "0001-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(kTsPgEnd - 1, false), "294276-12-31 23:59:59.999999");
}

TEST(ChangeFormatText, TimestampBeforeYearOneIsBC) {
    // PostgreSQL's ISO output: there is no year 0; the year before 0001 is 0001 BC.
    EXPECT_EQ(format_timestamp(kTsYear1 - 1, false), "0001-12-31 23:59:59.999999 BC");
    EXPECT_EQ(format_timestamp(kTsYear1 - 1000000, true), "0001-12-31 23:59:59+00 BC");
    EXPECT_EQ(format_timestamp(kTsPgMin, false), "4714-11-24 00:00:00 BC");
    EXPECT_EQ(format_timestamp(kTsPgMin, true), "4714-11-24 00:00:00+00 BC");
}

TEST(ChangeFormatText, TimestampInfinity) {
    // TIMESTAMP_NOBEGIN / TIMESTAMP_NOEND: 'infinity' is a value a column can hold.
    EXPECT_EQ(format_timestamp(kInt64Max, false), "infinity");
    EXPECT_EQ(format_timestamp(kInt64Min, false), "-infinity");
    EXPECT_EQ(format_timestamp(kInt64Max, true), "infinity");
    EXPECT_EQ(format_timestamp(kInt64Min, true), "-infinity");
    EXPECT_EQ(format_value(Value::timestamp(kInt64Max)), "'infinity'");
    EXPECT_EQ(format_value(Value::timestamptz(kInt64Min)), "'-infinity'");
}

TEST(ChangeFormatText, TimestampNextToInfinity) {
    // Outside PostgreSQL's range, but any bytes can reach change_to_text(): the first and last day
    // of the int64 range are shown without overflow (fuzz regression, change_format target).
    EXPECT_EQ(format_timestamp(kInt64Min + 1, false), "290279-12-22 19:59:05.224193 BC");
    EXPECT_EQ(format_timestamp(kInt64Max - 1, true), "294277-01-09 04:00:54.775806+00");
}

TEST(ChangeFormatText, Date) {
    EXPECT_EQ(format_date(0), "2000-01-01");
    EXPECT_EQ(format_date(-1), "1999-12-31");
    EXPECT_EQ(format_date(59), "2000-02-29");
    EXPECT_EQ(format_date(kDate20240315), "2024-03-15");
    EXPECT_EQ(format_date(kDate19000301), "1900-03-01");
    EXPECT_EQ(format_date(kDate19000301 - 1), "1900-02-28");  // 1900 is not a leap year
    EXPECT_EQ(format_date(kDate21000228), "2100-02-28");
    EXPECT_EQ(format_date(kDate21000228 + 1), "2100-03-01");
    EXPECT_EQ(format_date(kDate00010101), "0001-01-01");
    EXPECT_EQ(format_date(2145031948), "5874897-12-31");  // PostgreSQL's last date
    EXPECT_EQ(format_date(kDate00010101 - 1), "0001-12-31 BC");
    EXPECT_EQ(format_date(kDate00010101 - 366), "0001-01-01 BC");  // 1 BC was a leap year
    EXPECT_EQ(format_date(kDate00010101 - 367), "0002-12-31 BC");
    EXPECT_EQ(format_date(-2451545), "4714-11-24 BC");  // Julian day 0, PostgreSQL's first date
    EXPECT_EQ(format_date(kInt32Max), "infinity");
    EXPECT_EQ(format_date(kInt32Min), "-infinity");
}

TEST(ChangeFormatText, Lsn) {
    EXPECT_EQ(format_lsn(0), "0/0");
    EXPECT_EQ(format_lsn(0x16B3748), "0/16B3748");
    EXPECT_EQ(format_lsn(0x100000000ull), "1/0");
    EXPECT_EQ(format_lsn(0xABCDEF0123456789ull), "ABCDEF01/23456789");
    EXPECT_EQ(format_lsn(UINT64_MAX), "FFFFFFFF/FFFFFFFF");
}

TEST(ChangeFormatText, Value) {
    EXPECT_EQ(format_value(Value::null()), "null");
    EXPECT_EQ(format_value(Value::unchanged_toast()), "unchanged-toast-datum");
    EXPECT_EQ(format_value(Value::int32(0)), "0");
    EXPECT_EQ(format_value(Value::int32(kInt32Min)), "-2147483648");
    EXPECT_EQ(format_value(Value::int32(kInt32Max)), "2147483647");
    EXPECT_EQ(format_value(Value::int64(kInt64Min)), "-9223372036854775808");
    EXPECT_EQ(format_value(Value::int64(kInt64Max)), "9223372036854775807");
    EXPECT_EQ(format_value(Value::timestamp(kTs20240315_0830)), "'2024-03-15 08:30:00'");
    EXPECT_EQ(format_value(Value::timestamptz(kTs20240315_0830)), "'2024-03-15 08:30:00+00'");
    EXPECT_EQ(format_value(Value::date(kDate20240315)), "'2024-03-15'");
    EXPECT_EQ(format_value(Value::date(-1)), "'1999-12-31'");
    EXPECT_EQ(format_value(Value::of_text("123.45")), "'123.45'");
    EXPECT_EQ(format_value(Value::of_text("-99999999.99")), "'-99999999.99'");
    EXPECT_EQ(format_value(Value::of_text("居民")), "'居民'");
    EXPECT_EQ(format_value(Value::of_text("")), "''");
    EXPECT_EQ(format_value(Value::of_text("O'Brien")), "'O''Brien'");
    EXPECT_EQ(format_value(Value::of_text("'")), "''''");
    EXPECT_EQ(format_value(Value::of_text("''x''")), "'''''x'''''");
    EXPECT_EQ(format_value(Value::of_text("back\\slash \"dq\"")), "'back\\\\slash \"dq\"'");
}

TEST(ChangeFormatText, ValueEscapes) {
    // One message is one line: a backslash and every ASCII control character are escaped, so
    // that a backslash in the text form always starts an escape (docs/change-format.md §6).
    EXPECT_EQ(format_value(Value::of_text("first\nsecond")), "'first\\nsecond'");
    EXPECT_EQ(format_value(Value::of_text("cr\r\nlf\ttab")), "'cr\\r\\nlf\\ttab'");
    EXPECT_EQ(format_value(Value::of_text("\\")), "'\\\\'");
    // a backslash followed by n is not a newline
    EXPECT_EQ(format_value(Value::of_text("\\n")), "'\\\\n'");
    EXPECT_NE(format_value(Value::of_text("\\n")), format_value(Value::of_text("\n")));
    EXPECT_EQ(format_value(Value::of_text("\\x0a")), "'\\\\x0a'");
    // other control characters as \xNN, two lower-case hex digits; NUL too (any bytes can reach
    // change_to_text())
    EXPECT_EQ(format_value(Value::of_text(std::string("a\0b", 3))), "'a\\x00b'");
    EXPECT_EQ(format_value(Value::of_text("\x01\x08\x0b\x0c\x1b\x1f\x7f")),
              "'\\x01\\x08\\x0b\\x0c\\x1b\\x1f\\x7f'");
    // quotes are still doubled, also next to escapes
    EXPECT_EQ(format_value(Value::of_text("it's\n'")), "'it''s\\n'''");
    EXPECT_EQ(format_value(Value::of_text("\\'")), "'\\\\'''");
    // printable ASCII and the bytes from 0x80 on (UTF-8, NEL U+0085, U+2028) are left alone
    EXPECT_EQ(format_value(Value::of_text(" ~\"{}")), "' ~\"{}'");
    EXPECT_EQ(format_value(Value::of_text("居民\n\xc2\x85\xe2\x80\xa8")), "'居民\\n\xc2\x85\xe2\x80\xa8'");
    EXPECT_EQ(format_value(Value::of_text("\xff\x80")), "'\xff\x80'");
    // input_text() is what an input function reads: never escaped
    EXPECT_EQ(input_text(Value::of_text("a\nb\\")), "a\nb\\");
}

TEST(ChangeFormatText, NamesAreEscapedToo) {
    // Quoted identifiers can hold newlines and backslashes: a name is shown with the same escapes
    // (not quoted), in rows, relation lines, truncates and resyncs.
    RelationMessage odd{7, "odd\nschema", "tab\tle", {{"id", 23, -1, true}, {"two\nlines", 25, -1, false}, {"b\\s", 25, -1, false}}};
    auto lookup = [&](uint32_t relid) -> const RelationMessage * { return relid == 7 ? &odd : nullptr; };
    EXPECT_EQ(format_text(msg(odd)), "RELATION odd\\nschema.tab\\tle (id key, two\\nlines, b\\\\s)");
    EXPECT_EQ(format_text(msg(insert(7, {Value::int32(1), Value::of_text("x\ny"), Value::null()})), lookup),
              "table odd\\nschema.tab\\tle: INSERT: id:1 two\\nlines:'x\\ny' b\\\\s:null");
    EXPECT_EQ(format_text(msg(update(7, OldRowKind::Key, {Value::int32(1)}, {Value::int32(2), Value::of_text("\r")})),
                          lookup),
              "table odd\\nschema.tab\\tle: UPDATE: old-key: id:1 new-row: id:2 two\\nlines:'\\r'");
    EXPECT_EQ(format_text(msg(TruncateMessage{{7, 8}, false, false}), lookup), "TRUNCATE: odd\\nschema.tab\\tle, #8");
    EXPECT_EQ(format_text(msg(ResyncMessage{7, ResyncReason::PartitionDetached, "\"odd\nschema\".\"p\\1\""}), lookup),
              "RESYNC odd\\nschema.tab\\tle: partition \"odd\\nschema\".\"p\\\\1\" detached or dropped");
}

TEST(ChangeFormatText, EveryByteStaysOnTheLine) {
    // Each of the 256 byte values, in a value and in a name: no line break or other control
    // character gets into the text form, and distinct values are shown distinctly.
    std::vector<std::string> shown;
    for (int b = 0; b < 256; b++) {
        std::string one(1, static_cast<char>(b));
        RelationMessage r{9, "s", "t", {{one, 25, -1, true}}};
        std::string line = format_text(msg(insert(9, {Value::of_text(one)})),
                                       [&](uint32_t) -> const RelationMessage * { return &r; });
        for (unsigned char c : line) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << "byte " << b << ": " << line;
        shown.push_back(format_value(Value::of_text(one)));
    }
    std::sort(shown.begin(), shown.end());
    EXPECT_EQ(std::unique(shown.begin(), shown.end()), shown.end());
}

// The relations the text form names, as a plugin session would have collected them.
struct Catalog {
    std::vector<RelationMessage> rels = {power_user_relation(), power_consumption_relation(), region_stats_relation()};
    RelationLookup lookup() const {
        return [this](uint32_t relid) -> const RelationMessage * {
            for (const RelationMessage &r : rels)
                if (r.relid == relid) return &r;
            return nullptr;
        };
    }
};

TEST(ChangeFormatText, BeginCommitRelationTruncate) {
    Catalog cat;
    EXPECT_EQ(format_text(msg(BeginMessage{742, kTs20240315_0830, 0x16B3748})),
              "BEGIN 742 commit_time '2024-03-15 08:30:00+00'");
    EXPECT_EQ(format_text(msg(BeginMessage{4294967295u, -1, 0})),
              "BEGIN 4294967295 commit_time '1999-12-31 23:59:59.999999+00'");
    EXPECT_EQ(format_text(msg(CommitMessage{0x16B3748, 0x16B3778, kTs20240315_0830})),
              "COMMIT lsn 0/16B3748 end_lsn 0/16B3778");
    EXPECT_EQ(format_text(msg(power_user_relation())),
              "RELATION public.power_user (user_id key, user_name, usage_type, region_id, region_name, address, "
              "phone, create_time, update_time)");
    EXPECT_EQ(format_text(msg(region_stats_relation())),
              "RELATION warehouse.dws_region_daily_stats (stats_id, region_id key, region_name, stat_date key, "
              "total_consumption, update_time)");
    EXPECT_EQ(format_text(msg(RelationMessage{1, "s", "empty", {}})), "RELATION s.empty ()");

    TruncateMessage t{{kPowerUserRelid, kPowerConsumptionRelid}, false, false};
    EXPECT_EQ(format_text(msg(t), cat.lookup()), "TRUNCATE: public.power_user, public.power_consumption");
    EXPECT_EQ(format_text(msg(t)), "TRUNCATE: #16385, #16400");
    t.cascade = true;
    EXPECT_EQ(format_text(msg(t), cat.lookup()), "TRUNCATE cascade: public.power_user, public.power_consumption");
    t.restart_identity = true;
    t.relids = {kPowerConsumptionRelid, 999};
    EXPECT_EQ(format_text(msg(t), cat.lookup()), "TRUNCATE cascade restart_identity: public.power_consumption, #999");
    t.cascade = false;
    EXPECT_EQ(format_text(msg(t), cat.lookup()), "TRUNCATE restart_identity: public.power_consumption, #999");

    ResyncMessage r{kPowerConsumptionRelid, ResyncReason::PartitionAttached, "public.pc_2024_03"};
    EXPECT_EQ(format_text(msg(r), cat.lookup()), "RESYNC public.power_consumption: partition public.pc_2024_03 attached");
    r.reason = ResyncReason::PartitionDetached;
    EXPECT_EQ(format_text(msg(r)), "RESYNC #16400: partition public.pc_2024_03 detached or dropped");
    r.reason = ResyncReason::PartitionTruncated;
    EXPECT_EQ(format_text(msg(r)), "RESYNC #16400: partition public.pc_2024_03 truncated");
}

TEST(ChangeFormatText, RowsNameTheirColumns) {
    Catalog cat;
    Row user = power_user_row(1001, "张三", "居民", 110000, "北京市", kTs20240315_0830);
    EXPECT_EQ(format_text(msg(insert(kPowerUserRelid, user)), cat.lookup()),
              "table public.power_user: INSERT: user_id:1001 user_name:'张三' usage_type:'居民' region_id:110000 "
              "region_name:'北京市' address:'北京市朝阳区建国路88号' phone:'13800138001' "
              "create_time:'2024-03-15 08:30:00' update_time:'2024-03-15 08:30:00'");

    Row reading = power_consumption_row(1, 1001, "123.45", "67.90", kTs20240315_0830, Value::unchanged_toast());
    EXPECT_EQ(format_text(msg(update(kPowerConsumptionRelid, OldRowKind::None, {}, reading)), cat.lookup()),
              "table public.power_consumption: UPDATE: consumption_id:1 user_id:1001 consumption_amount:'123.45' "
              "consumption_cost:'67.90' consumption_date:'2024-03-15 08:30:00' meter_reading_before:'10234.50' "
              "meter_reading_after:'10357.95' remark:unchanged-toast-datum");

    // Old key values are named after the key columns only.
    Row moved = {Value::int64(2001), Value::of_text("O'Neil"), Value::null()};
    EXPECT_EQ(format_text(msg(update(kPowerUserRelid, OldRowKind::Key, {Value::int64(1001)}, moved)), cat.lookup()),
              "table public.power_user: UPDATE: old-key: user_id:1001 new-row: user_id:2001 user_name:'O''Neil' "
              "usage_type:null");
    EXPECT_EQ(format_text(msg(update(kPowerUserRelid, OldRowKind::Full, {Value::int64(1001), Value::of_text("a")},
                                     {Value::int64(1001), Value::of_text("b")})),
                          cat.lookup()),
              "table public.power_user: UPDATE: old-row: user_id:1001 user_name:'a' new-row: user_id:1001 "
              "user_name:'b'");
    EXPECT_EQ(format_text(msg(del(kPowerUserRelid, OldRowKind::Key, {Value::int64(1001)})), cat.lookup()),
              "table public.power_user: DELETE: old-key: user_id:1001");
    EXPECT_EQ(format_text(msg(del(kPowerUserRelid, OldRowKind::Full, {Value::int64(1001), Value::null()})),
                          cat.lookup()),
              "table public.power_user: DELETE: old-row: user_id:1001 user_name:null");

    // A composite key that is not in the leading columns.
    EXPECT_EQ(format_text(msg(del(kRegionStatsRelid, OldRowKind::Key,
                                  {Value::int32(110000), Value::date(kDate20240315)})),
                          cat.lookup()),
              "table warehouse.dws_region_daily_stats: DELETE: old-key: region_id:110000 stat_date:'2024-03-15'");
    EXPECT_EQ(format_text(msg(update(kRegionStatsRelid, OldRowKind::Key,
                                     {Value::int32(110000), Value::date(-1)},
                                     {Value::int64(9), Value::int32(120000), Value::of_text("天津市"),
                                      Value::date(-1), Value::of_text("0.00"), Value::timestamptz(0)})),
                          cat.lookup()),
              "table warehouse.dws_region_daily_stats: UPDATE: old-key: region_id:110000 stat_date:'1999-12-31' "
              "new-row: stats_id:9 region_id:120000 region_name:'天津市' stat_date:'1999-12-31' "
              "total_consumption:'0.00' update_time:'2000-01-01 00:00:00+00'");
}

TEST(ChangeFormatText, RowsWithoutNamesUsePositions) {
    Catalog cat;
    // No lookup at all, or a relation the lookup does not know: OID and $n.
    Message ins = msg(insert(kPowerUserRelid, {Value::int64(1), Value::of_text("x")}));
    EXPECT_EQ(format_text(ins), "table #16385: INSERT: $1:1 $2:'x'");
    EXPECT_EQ(format_text(msg(insert(4242, {Value::int64(1)})), cat.lookup()), "table #4242: INSERT: $1:1");
    EXPECT_EQ(format_text(msg(del(4242, OldRowKind::Key, {Value::int64(1)})), cat.lookup()),
              "table #4242: DELETE: old-key: $1:1");
    // A row wider than the relation known (a column added since): extra values by position.
    Row wide = power_user_row(1, "a", "居民", 1, "r", 0);
    wide.push_back(Value::of_text("new column"));
    std::string s = format_text(msg(insert(kPowerUserRelid, wide)), cat.lookup());
    EXPECT_TRUE(contains(s, "update_time:'2000-01-01 00:00:00' $10:'new column'")) << s;
    // More old-key values than key columns.
    EXPECT_EQ(format_text(msg(del(kPowerUserRelid, OldRowKind::Key, {Value::int64(1), Value::int64(2)})),
                          cat.lookup()),
              "table public.power_user: DELETE: old-key: user_id:1 $2:2");
}

TEST(ChangeFormatText, DecodedStreamReadsLikeTheTextPlugin) {
    // A whole transaction, as the plugin's text format would print it (relation messages are
    // absorbed by the lookup and print nothing there).
    Catalog cat;
    std::vector<Message> txn = {
        msg(BeginMessage{750, kTs20240315_0830, 0x16B4000}),
        msg(insert(kPowerConsumptionRelid,
                   power_consumption_row(3, 1001, "5.00", "2.50", kTs20240315_0830, Value::null()))),
        msg(del(kPowerUserRelid, OldRowKind::Key, {Value::int64(1002)})),
        msg(CommitMessage{0x16B4000, 0x16B4030, kTs20240315_0830}),
    };
    std::vector<std::string> lines;
    for (const Message &m : txn) lines.push_back(format_text(decode(encode(m)), cat.lookup()));
    EXPECT_EQ(lines, (std::vector<std::string>{
                         "BEGIN 750 commit_time '2024-03-15 08:30:00+00'",
                         "table public.power_consumption: INSERT: consumption_id:3 user_id:1001 "
                         "consumption_amount:'5.00' consumption_cost:'2.50' consumption_date:'2024-03-15 08:30:00' "
                         "meter_reading_before:'10234.50' meter_reading_after:'10357.95' remark:null",
                         "table public.power_user: DELETE: old-key: user_id:1002",
                         "COMMIT lsn 0/16B4000 end_lsn 0/16B4030",
                     }));
}

}  // namespace
