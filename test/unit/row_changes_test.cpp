// Unit tests of sgivm::RowChangeSet (src/core/row_changes.hpp): the net effect per key of a run
// of INSERT/UPDATE/DELETE messages of one table, as the apply step uses it (delete every touched
// key, then insert the final rows, taking unchanged-TOAST values from the mirror's old row with
// key base_key).
//
// Besides checking touched_keys()/final_rows() directly, the tests run the net effect through a
// small model of the apply step (apply_net) and compare the resulting mirror with applying the
// same messages one at a time (apply_each): the two must always agree.
#include "core/row_changes.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/change_format.hpp"

using namespace sgivm;

namespace {

// ---- readable values ------------------------------------------------------------------------

std::string show(const Value &v) {
    std::string s;
    switch (v.kind) {
        case ValueKind::Null: return "null";
        case ValueKind::UnchangedToast: return "<unchanged>";
        case ValueKind::Int32: return "i" + std::to_string(v.integer);
        case ValueKind::Int64: return "l" + std::to_string(v.integer);
        case ValueKind::Timestamp: return "ts" + std::to_string(v.integer);
        case ValueKind::TimestampTz: return "tz" + std::to_string(v.integer);
        case ValueKind::Date: return "d" + std::to_string(v.integer);
        case ValueKind::Text:
            s = v.text.size() > 24 ? v.text.substr(0, 24) + "...(" + std::to_string(v.text.size()) + ")" : v.text;
            return "'" + s + "'";
    }
    return "?";
}

std::string show(const Row &r) {
    std::string s = "(";
    for (size_t i = 0; i < r.size(); i++) s += (i ? ", " : "") + show(r[i]);
    return s + ")";
}

std::string show(const std::vector<const Row *> &rows) {
    std::string s = "[";
    for (size_t i = 0; i < rows.size(); i++) s += (i ? ", " : "") + show(*rows[i]);
    return s + "]";
}

#define EXPECT_ROW_EQ(actual, expected)                                                          \
    do {                                                                                         \
        const Row &a_ = (actual);                                                                \
        const Row &e_ = (expected);                                                              \
        EXPECT_TRUE(a_ == e_) << "  actual: " << show(a_) << "\nexpected: " << show(e_);         \
    } while (0)

// ---- rows shaped like power_consumption -----------------------------------------------------
// (consumption_id PK, user_id, consumption_amount, remark): the remark is the long, TOASTed one.

const std::vector<int> kKey = {0};

std::string long_text(const std::string &seed) {
    std::string s;
    while (s.size() < 8000) s += seed + "：抄表员备注，表计运行正常。";
    return s;
}

Row pc(int64_t id, int64_t user, const std::string &amount, Value remark) {
    return {Value::int64(id), Value::int64(user), Value::of_text(amount), std::move(remark)};
}
Row pc(int64_t id, int64_t user, const std::string &amount, const std::string &remark) {
    return pc(id, user, amount, Value::of_text(remark));
}
Value unchanged() { return Value::unchanged_toast(); }
Row key(int64_t id) { return {Value::int64(id)}; }

RowMessage ins(Row row) {
    RowMessage m;
    m.kind = MessageKind::Insert;
    m.relid = 16400;
    m.new_row = std::move(row);
    return m;
}
// UPDATE that kept the key (default identity): no old row.
RowMessage upd(Row row) {
    RowMessage m;
    m.kind = MessageKind::Update;
    m.relid = 16400;
    m.old_kind = OldRowKind::None;
    m.new_row = std::move(row);
    return m;
}
// UPDATE with the old key (default identity, key changed).
RowMessage upd_key(Row old_key, Row row) {
    RowMessage m = upd(std::move(row));
    m.old_kind = OldRowKind::Key;
    m.old_row = std::move(old_key);
    return m;
}
// UPDATE with the full old row (REPLICA IDENTITY FULL).
RowMessage upd_full(Row old_row, Row row) {
    RowMessage m = upd(std::move(row));
    m.old_kind = OldRowKind::Full;
    m.old_row = std::move(old_row);
    return m;
}
RowMessage del(Row old_key) {
    RowMessage m;
    m.kind = MessageKind::Delete;
    m.relid = 16400;
    m.old_kind = OldRowKind::Key;
    m.old_row = std::move(old_key);
    return m;
}
RowMessage del_full(Row old_row) {
    RowMessage m = del(std::move(old_row));
    m.old_kind = OldRowKind::Full;
    return m;
}

// ---- a model mirror -------------------------------------------------------------------------

struct Mirror {
    std::vector<int> key_columns;
    std::map<std::string, Row> rows;  // by key text

    std::string k(const Row &key) const { return show(key); }
    Row key_of(const Row &row) const {
        Row out;
        for (int c : key_columns) out.push_back(row[c]);
        return out;
    }
    void put(const Row &row) { rows[k(key_of(row))] = row; }
    const Row *find(const Row &key) const {
        auto it = rows.find(k(key));
        return it == rows.end() ? nullptr : &it->second;
    }
    bool operator==(const Mirror &o) const { return rows == o.rows; }
};

std::string show(const Mirror &m) {
    std::string s;
    for (auto &e : m.rows) s += "  " + show(e.second) + "\n";
    return s.empty() ? "  (empty)\n" : s;
}

// What the apply step does with the net effect: read the base rows, delete the touched keys,
// insert the final rows with unchanged values taken from their base rows. Returns false (and
// says why) when the net effect is not applicable to this mirror.
::testing::AssertionResult apply_net(const RowChangeSet &set, Mirror &mirror) {
    std::vector<Row> resolved;
    for (const FinalRow *f : set.final_rows()) {
        Row r = f->row;
        const Row *base = nullptr;
        if (f->needs_base) {
            if (f->base_key.size() != mirror.key_columns.size())
                return ::testing::AssertionFailure() << "base_key " << show(f->base_key) << " has the wrong width";
            base = mirror.find(f->base_key);
            if (!base)
                return ::testing::AssertionFailure()
                       << "row " << show(f->row) << " needs base " << show(f->base_key) << ", not in the mirror";
        }
        for (size_t c = 0; c < r.size(); c++) {
            if (r[c].kind != ValueKind::UnchangedToast) continue;
            if (!base)
                return ::testing::AssertionFailure()
                       << "final row " << show(f->row) << " keeps an unchanged marker but needs_base is false";
            r[c] = (*base)[c];
        }
        resolved.push_back(std::move(r));
    }
    for (const Row *k : set.touched_keys()) mirror.rows.erase(mirror.k(*k));
    for (const Row &r : resolved) {
        if (mirror.find(mirror.key_of(r)))
            return ::testing::AssertionFailure() << "final row " << show(r) << " was not among the touched keys";
        mirror.put(r);
    }
    return ::testing::AssertionSuccess();
}

// The reference: every message applied on its own, in order.
void apply_one(const RowMessage &m, Mirror &mirror) {
    auto old_key = [&]() -> Row {
        switch (m.old_kind) {
            case OldRowKind::None: return mirror.key_of(m.new_row);
            case OldRowKind::Key: return m.old_row;
            case OldRowKind::Full: return mirror.key_of(m.old_row);
        }
        return {};
    };
    switch (m.kind) {
        case MessageKind::Insert: mirror.put(m.new_row); break;
        case MessageKind::Delete: mirror.rows.erase(mirror.k(old_key())); break;
        case MessageKind::Update: {
            Row ok = old_key();
            const Row *old = mirror.find(ok);
            ASSERT_NE(old, nullptr) << "reference: update of a missing row " << show(ok);
            Row r = m.new_row;
            for (size_t c = 0; c < r.size(); c++)
                if (r[c].kind == ValueKind::UnchangedToast) r[c] = (*old)[c];
            mirror.rows.erase(mirror.k(ok));
            mirror.put(r);
            break;
        }
        default: FAIL() << "not a row message";
    }
}

Mirror apply_each(const std::vector<RowMessage> &ms, Mirror mirror) {
    for (const RowMessage &m : ms) apply_one(m, mirror);
    return mirror;
}

// Folds the messages into a set, applies the net effect to `before`, and checks it against the
// one-at-a-time reference.
void expect_same_as_one_by_one(const std::vector<int> &key_columns, const Mirror &before,
                               const std::vector<RowMessage> &ms) {
    RowChangeSet set(key_columns);
    for (const RowMessage &m : ms) set.add(m);
    EXPECT_EQ(set.changes(), ms.size());
    Mirror net = before;
    ASSERT_TRUE(apply_net(set, net));
    Mirror each = apply_each(ms, before);
    EXPECT_TRUE(net == each) << "net effect gave:\n" << show(net) << "one by one gave:\n" << show(each);
}

Mirror mirror_of(const std::vector<int> &key_columns, const std::vector<Row> &rows) {
    Mirror m;
    m.key_columns = key_columns;
    for (const Row &r : rows) m.put(r);
    return m;
}

// ---- basics ---------------------------------------------------------------------------------

TEST(RowChangeSet, EmptySet) {
    RowChangeSet set(kKey);
    EXPECT_TRUE(set.empty());
    EXPECT_EQ(set.changes(), 0u);
    EXPECT_TRUE(set.touched_keys().empty());
    EXPECT_TRUE(set.final_rows().empty());
    EXPECT_EQ(set.key_columns(), kKey);
}

TEST(RowChangeSet, SingleInsert) {
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1001, "12.50", "ok")));
    EXPECT_FALSE(set.empty());
    EXPECT_EQ(set.changes(), 1u);
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_ROW_EQ(*keys[0], key(1));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1001, "12.50", "ok"));
    EXPECT_FALSE(rows[0]->needs_base);
    EXPECT_TRUE(rows[0]->base_key.empty());
}

TEST(RowChangeSet, InsertThenUpdatesKeepOnlyTheLastVersion) {
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1001, "12.50", "first")));
    set.add(upd(pc(1, 1001, "13.00", "second")));
    set.add(upd(pc(1, 1002, "14.00", "third")));
    EXPECT_EQ(set.changes(), 3u);
    ASSERT_EQ(set.touched_keys().size(), 1u);
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1002, "14.00", "third"));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, InsertUpdateDeleteLeavesNothingButStillTouchesTheKey) {
    RowChangeSet set(kKey);
    set.add(ins(pc(7, 1001, "1.00", "x")));
    set.add(upd(pc(7, 1001, "2.00", "x")));
    set.add(del(key(7)));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_ROW_EQ(*keys[0], key(7));
    EXPECT_TRUE(set.final_rows().empty());
    EXPECT_FALSE(set.empty());
}

TEST(RowChangeSet, DeleteOfARowFromBeforeTheRun) {
    RowChangeSet set(kKey);
    set.add(del(key(42)));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_ROW_EQ(*keys[0], key(42));
    EXPECT_TRUE(set.final_rows().empty());

    Mirror m = mirror_of(kKey, {pc(41, 1, "1.00", "a"), pc(42, 1, "2.00", "b")});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(41, 1, "1.00", "a")}));
}

TEST(RowChangeSet, DeleteWithFullOldRow) {
    RowChangeSet set(kKey);
    set.add(del_full(pc(42, 1, "2.00", "b")));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_ROW_EQ(*keys[0], key(42));
    EXPECT_TRUE(set.final_rows().empty());
}

TEST(RowChangeSet, DeleteThenReinsertIsTheNewRow) {
    RowChangeSet set(kKey);
    set.add(del(key(5)));
    set.add(ins(pc(5, 2002, "9.99", "again")));
    ASSERT_EQ(set.touched_keys().size(), 1u);
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(5, 2002, "9.99", "again"));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, DeleteReinsertDeleteReinsert) {
    Mirror before = mirror_of(kKey, {pc(5, 1, "1.00", "orig")});
    expect_same_as_one_by_one(kKey, before,
                              {del(key(5)), ins(pc(5, 2, "2.00", "r1")), del(key(5)), ins(pc(5, 3, "3.00", "r2"))});
}

TEST(RowChangeSet, UpdateOfARowFromBeforeTheRunWithEveryValue) {
    RowChangeSet set(kKey);
    set.add(upd(pc(3, 1001, "20.00", "new remark")));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(3, 1001, "20.00", "new remark"));
    EXPECT_FALSE(rows[0]->needs_base);
    ASSERT_EQ(set.touched_keys().size(), 1u);
}

TEST(RowChangeSet, KeysAreReportedInTheOrderTheyWereFirstTouched) {
    RowChangeSet set(kKey);
    set.add(ins(pc(30, 1, "1.00", "a")));
    set.add(del(key(10)));
    set.add(upd(pc(20, 1, "2.00", "b")));
    set.add(upd(pc(30, 1, "3.00", "c")));  // touched again: keeps its place
    set.add(ins(pc(10, 1, "4.00", "d")));  // back again: keeps its place
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 3u) << show(keys);
    EXPECT_ROW_EQ(*keys[0], key(30));
    EXPECT_ROW_EQ(*keys[1], key(10));
    EXPECT_ROW_EQ(*keys[2], key(20));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_ROW_EQ(rows[0]->row, pc(30, 1, "3.00", "c"));
    EXPECT_ROW_EQ(rows[1]->row, pc(10, 1, "4.00", "d"));
    EXPECT_ROW_EQ(rows[2]->row, pc(20, 1, "2.00", "b"));
}

TEST(RowChangeSet, DistinctKeysAreKeptApart) {
    // Keys that would collide in a naive text concatenation, and keys of a different kind.
    std::vector<int> kc = {0, 1};
    RowChangeSet set(kc);
    set.add(ins({Value::of_text("1"), Value::of_text("23"), Value::of_text("a")}));
    set.add(ins({Value::of_text("12"), Value::of_text("3"), Value::of_text("b")}));
    set.add(ins({Value::of_text(""), Value::of_text("123"), Value::of_text("c")}));
    set.add(ins({Value::null(), Value::of_text("123"), Value::of_text("d")}));
    EXPECT_EQ(set.touched_keys().size(), 4u);
    EXPECT_EQ(set.final_rows().size(), 4u);

    RowChangeSet ints(kKey);
    ints.add(ins(pc(1, 1, "1.00", "a")));
    ints.add(ins(pc(2, 1, "1.00", "a")));
    ints.add(ins(pc(-1, 1, "1.00", "a")));
    ints.add(ins(pc(int64_t{1} << 32, 1, "1.00", "a")));
    EXPECT_EQ(ints.touched_keys().size(), 4u);
}

TEST(RowChangeSet, ClearForgetsEverything) {
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1, "1.00", "a")));
    set.add(del(key(2)));
    set.clear();
    EXPECT_TRUE(set.empty());
    EXPECT_EQ(set.changes(), 0u);
    EXPECT_TRUE(set.touched_keys().empty());
    EXPECT_TRUE(set.final_rows().empty());
    // and works as new afterwards: an unchanged value no longer resolves from the forgotten run
    set.add(ins(pc(1, 1, "1.00", "a")));
    set.clear();
    set.add(upd(pc(1, 1, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));
}

TEST(RowChangeSet, MutableFinalRowsAreTheSameRows) {
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1, "1.00", "a")));
    set.add(ins(pc(2, 1, "2.00", "b")));
    set.add(del(key(3)));
    std::vector<FinalRow *> rows = set.final_rows();
    ASSERT_EQ(rows.size(), 2u);
    rows[1]->row[2] = Value::of_text("2.50");  // the apply step converts values in place
    const RowChangeSet &cset = set;
    auto crows = cset.final_rows();
    ASSERT_EQ(crows.size(), 2u);
    EXPECT_EQ(crows[0], rows[0]);
    EXPECT_ROW_EQ(crows[1]->row, pc(2, 1, "2.50", "b"));
}

// ---- primary-key changes --------------------------------------------------------------------

TEST(RowChangeSet, KeyChangingUpdateMovesTheRow) {
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(2, 1001, "5.00", "moved")));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_ROW_EQ(*keys[0], key(1));
    EXPECT_ROW_EQ(*keys[1], key(2));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(2, 1001, "5.00", "moved"));
    EXPECT_FALSE(rows[0]->needs_base);

    Mirror m = mirror_of(kKey, {pc(1, 1001, "5.00", "before")});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(2, 1001, "5.00", "moved")})) << show(m);
}

TEST(RowChangeSet, KeyChangeChainAtoBtoC) {
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(2, 1001, "5.00", "b")));
    set.add(upd_key(key(2), pc(3, 1001, "6.00", "c")));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_ROW_EQ(*keys[0], key(1));
    EXPECT_ROW_EQ(*keys[1], key(2));
    EXPECT_ROW_EQ(*keys[2], key(3));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(3, 1001, "6.00", "c"));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, KeyChangeChainWithUnchangedToastTakesTheBaseFromTheFirstKey) {
    const std::string r = long_text("A");
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(2, 1001, "5.00", unchanged())));
    set.add(upd_key(key(2), pc(3, 1001, "6.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(3, 1001, "6.00", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));

    Mirror m = mirror_of(kKey, {pc(1, 1001, "4.00", r), pc(9, 1, "0.00", "other")});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(3, 1001, "6.00", r), pc(9, 1, "0.00", "other")})) << show(m);
}

TEST(RowChangeSet, KeyChangeAndBack) {
    const std::string r = long_text("back");
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(2, 1001, "5.00", unchanged())));
    set.add(upd_key(key(2), pc(1, 1001, "6.00", unchanged())));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 2u);
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1001, "6.00", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));
    Mirror m = mirror_of(kKey, {pc(1, 1001, "4.00", r)});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(1, 1001, "6.00", r)})) << show(m);
}

TEST(RowChangeSet, SwapOfTwoKeysThroughATemporaryKey) {
    // UPDATE t SET id = 3 WHERE id = 1; ... SET id = 1 WHERE id = 2; ... SET id = 2 WHERE id = 3;
    // with the long remark untouched: each row keeps its own remark under its new key.
    const std::string ra = long_text("row A"), rb = long_text("row B");
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(3, 1001, "1.00", unchanged())));
    set.add(upd_key(key(2), pc(1, 1002, "2.00", unchanged())));
    set.add(upd_key(key(3), pc(2, 1001, "1.00", unchanged())));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_ROW_EQ(*keys[0], key(1));
    EXPECT_ROW_EQ(*keys[1], key(3));
    EXPECT_ROW_EQ(*keys[2], key(2));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 2u);
    // key 1 now holds the former row 2, key 2 the former row 1
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1002, "2.00", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(2));
    EXPECT_ROW_EQ(rows[1]->row, pc(2, 1001, "1.00", unchanged()));
    EXPECT_TRUE(rows[1]->needs_base);
    EXPECT_ROW_EQ(rows[1]->base_key, key(1));

    Mirror m = mirror_of(kKey, {pc(1, 1001, "1.00", ra), pc(2, 1002, "2.00", rb)});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(1, 1002, "2.00", rb), pc(2, 1001, "1.00", ra)})) << show(m);
}

TEST(RowChangeSet, KeyChangeOntoAKeyDeletedEarlierInTheRun) {
    const std::string ra = long_text("A");
    RowChangeSet set(kKey);
    set.add(del(key(2)));
    set.add(upd_key(key(1), pc(2, 1001, "1.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));
    Mirror before = mirror_of(kKey, {pc(1, 1001, "1.00", ra), pc(2, 5, "9.00", "gone")});
    Mirror m = before;
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(2, 1001, "1.00", ra)})) << show(m);
}

TEST(RowChangeSet, InsertThenKeyChangeResolvesFromTheInsert) {
    const std::string r = long_text("fresh");
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1001, "1.00", r)));
    set.add(upd_key(key(1), pc(2, 1001, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(2, 1001, "2.00", r));
    EXPECT_FALSE(rows[0]->needs_base);
    EXPECT_EQ(set.touched_keys().size(), 2u);
}

TEST(RowChangeSet, UpdateOfTheNewKeyAfterAKeyChange) {
    const std::string r = long_text("moved then edited");
    RowChangeSet set(kKey);
    set.add(upd_key(key(1), pc(2, 1001, "1.00", unchanged())));
    set.add(upd(pc(2, 1001, "7.77", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(2, 1001, "7.77", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));
    Mirror m = mirror_of(kKey, {pc(1, 1001, "0.50", r)});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(2, 1001, "7.77", r)})) << show(m);
}

TEST(RowChangeSet, KeyChangeOfANewRowOntoAnUnrelatedOldRowsKey) {
    // old row 2 is deleted, row 1 moves onto 2 and the run then inserts a new 1
    Mirror before = mirror_of(kKey, {pc(1, 1, "1.00", long_text("one")), pc(2, 2, "2.00", long_text("two"))});
    expect_same_as_one_by_one(kKey, before,
                              {del(key(2)), upd_key(key(1), pc(2, 1, "1.50", unchanged())),
                               ins(pc(1, 3, "3.00", "new one"))});
}

// ---- old row kinds --------------------------------------------------------------------------

TEST(RowChangeSet, SameUpdateUnderEveryOldRowKind) {
    const std::string r = long_text("kinds");
    const Row old_row = pc(4, 1001, "1.00", r);
    const Row new_row = pc(4, 1001, "2.00", unchanged());
    for (OldRowKind kind : {OldRowKind::None, OldRowKind::Key, OldRowKind::Full}) {
        SCOPED_TRACE(std::string("old row kind ") + static_cast<char>(kind));
        RowChangeSet set(kKey);
        RowMessage m = kind == OldRowKind::None  ? upd(new_row)
                       : kind == OldRowKind::Key ? upd_key(key(4), new_row)
                                                 : upd_full(old_row, new_row);
        set.add(m);
        auto keys = set.touched_keys();
        ASSERT_EQ(keys.size(), 1u);
        EXPECT_ROW_EQ(*keys[0], key(4));
        auto rows = set.final_rows();
        ASSERT_EQ(rows.size(), 1u);
        EXPECT_TRUE(rows[0]->row[2] == Value::of_text("2.00")) << show(rows[0]->row);
        if (rows[0]->needs_base) EXPECT_ROW_EQ(rows[0]->base_key, key(4));
        Mirror mm = mirror_of(kKey, {old_row});
        ASSERT_TRUE(apply_net(set, mm));
        EXPECT_TRUE(mm == mirror_of(kKey, {pc(4, 1001, "2.00", r)})) << show(mm);
    }
}

TEST(RowChangeSet, KeyChangeUnderEveryOldRowKind) {
    const std::string r = long_text("kinds");
    const Row old_row = pc(4, 1001, "1.00", r);
    const Row new_row = pc(5, 1001, "2.00", unchanged());
    for (OldRowKind kind : {OldRowKind::Key, OldRowKind::Full}) {
        SCOPED_TRACE(std::string("old row kind ") + static_cast<char>(kind));
        RowChangeSet set(kKey);
        set.add(kind == OldRowKind::Key ? upd_key(key(4), new_row) : upd_full(old_row, new_row));
        auto keys = set.touched_keys();
        ASSERT_EQ(keys.size(), 2u);
        EXPECT_ROW_EQ(*keys[0], key(4));
        EXPECT_ROW_EQ(*keys[1], key(5));
        auto rows = set.final_rows();
        ASSERT_EQ(rows.size(), 1u);
        if (rows[0]->needs_base) EXPECT_ROW_EQ(rows[0]->base_key, key(4));
        Mirror mm = mirror_of(kKey, {old_row});
        ASSERT_TRUE(apply_net(set, mm));
        EXPECT_TRUE(mm == mirror_of(kKey, {pc(5, 1001, "2.00", r)})) << show(mm);
    }
}

TEST(RowChangeSet, FullOldRowOfADeleteThenReinsert) {
    Mirror before = mirror_of(kKey, {pc(8, 1, "1.00", "old")});
    expect_same_as_one_by_one(kKey, before, {del_full(pc(8, 1, "1.00", "old")), ins(pc(8, 2, "2.00", "new"))});
}

// ---- composite keys -------------------------------------------------------------------------
// (user_id, consumption_date) as key, in positions 0 and 2; remark last.

const std::vector<int> kComposite = {0, 2};

Row reading(int64_t user, int32_t day, const std::string &amount, Value remark) {
    return {Value::int64(user), Value::of_text(amount), Value::date(day), std::move(remark)};
}
Row reading(int64_t user, int32_t day, const std::string &amount, const std::string &remark) {
    return reading(user, day, amount, Value::of_text(remark));
}
Row rkey(int64_t user, int32_t day) { return {Value::int64(user), Value::date(day)}; }

TEST(RowChangeSet, CompositeKeyInsertUpdateDelete) {
    RowChangeSet set(kComposite);
    set.add(ins(reading(1001, 8840, "1.00", "a")));
    set.add(ins(reading(1001, 8841, "2.00", "b")));
    set.add(ins(reading(1002, 8840, "3.00", "c")));
    set.add(upd(reading(1001, 8841, "2.50", "b2")));
    set.add(del(rkey(1002, 8840)));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_ROW_EQ(*keys[0], rkey(1001, 8840));
    EXPECT_ROW_EQ(*keys[1], rkey(1001, 8841));
    EXPECT_ROW_EQ(*keys[2], rkey(1002, 8840));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_ROW_EQ(rows[0]->row, reading(1001, 8840, "1.00", "a"));
    EXPECT_ROW_EQ(rows[1]->row, reading(1001, 8841, "2.50", "b2"));
}

TEST(RowChangeSet, CompositeKeyChangeOfOneComponentWithUnchangedToast) {
    const std::string r = long_text("late reading");
    RowChangeSet set(kComposite);
    // a late reading moved to the right day
    set.add(upd_key(rkey(1001, 8840), reading(1001, 8839, "1.00", unchanged())));
    auto keys = set.touched_keys();
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_ROW_EQ(*keys[0], rkey(1001, 8840));
    EXPECT_ROW_EQ(*keys[1], rkey(1001, 8839));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, rkey(1001, 8840));
    Mirror m = mirror_of(kComposite, {reading(1001, 8840, "1.00", r), reading(1001, 8841, "5.00", "x")});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kComposite, {reading(1001, 8839, "1.00", r), reading(1001, 8841, "5.00", "x")}))
        << show(m);
}

TEST(RowChangeSet, CompositeKeyWithFullOldRowAndNoneKind) {
    const std::string r = long_text("composite");
    Mirror before = mirror_of(kComposite, {reading(7, 1, "1.00", r), reading(7, 2, "2.00", r + "2")});
    expect_same_as_one_by_one(kComposite, before,
                              {upd(reading(7, 1, "1.10", unchanged())),
                               upd_full(reading(7, 2, "2.00", r + "2"), reading(8, 2, "2.20", unchanged())),
                               del_full(reading(7, 1, "1.10", r)), ins(reading(7, 1, "9.00", "re"))});
}

TEST(RowChangeSet, CompositeKeyComponentsDoNotMix) {
    RowChangeSet set(kComposite);
    set.add(ins(reading(1, 2, "a", "x")));
    set.add(ins(reading(2, 1, "b", "y")));
    set.add(del(rkey(1, 2)));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, reading(2, 1, "b", "y"));
}

// ---- unchanged TOAST values -----------------------------------------------------------------

TEST(RowChangeSet, UnchangedValueResolvedFromAnEarlierInsertOfTheRun) {
    const std::string r = long_text("insert");
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1001, "1.00", r)));
    set.add(upd(pc(1, 1001, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1001, "2.00", r));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, UnchangedValueResolvedFromAnEarlierUpdateOfTheRun) {
    const std::string r2 = long_text("second");
    RowChangeSet set(kKey);
    set.add(upd(pc(1, 1001, "1.00", r2)));  // sets the remark
    set.add(upd(pc(1, 1001, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1001, "2.00", r2));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, UnchangedValueResolvedFromADeleteAndReinsert) {
    const std::string r = long_text("reinserted");
    RowChangeSet set(kKey);
    set.add(del(key(1)));
    set.add(ins(pc(1, 1001, "1.00", r)));
    set.add(upd(pc(1, 1001, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1001, "2.00", r));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, UnchangedValueOfARowFromBeforeTheRunNeedsTheBase) {
    RowChangeSet set(kKey);
    set.add(upd(pc(6, 1001, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(6, 1001, "2.00", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(6));
}

TEST(RowChangeSet, ChainedUnchangedValuesKeepTheFirstBase) {
    const std::string r = long_text("base");
    RowChangeSet set(kKey);
    set.add(upd(pc(6, 1001, "2.00", unchanged())));
    set.add(upd(pc(6, 1001, "3.00", unchanged())));
    set.add(upd(pc(6, 1002, "4.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(6, 1002, "4.00", unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(6));
    Mirror m = mirror_of(kKey, {pc(6, 1001, "1.00", r)});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kKey, {pc(6, 1002, "4.00", r)})) << show(m);
}

TEST(RowChangeSet, UnchangedThenSetThenUnchanged) {
    const std::string r_new = long_text("set in the run");
    RowChangeSet set(kKey);
    set.add(upd(pc(6, 1001, "2.00", unchanged())));  // needs the base
    set.add(upd(pc(6, 1001, "3.00", r_new)));        // sets it: the base is not needed any more
    set.add(upd(pc(6, 1001, "4.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(6, 1001, "4.00", r_new));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, TwoToastedColumnsResolvedPartlyInTheRun) {
    // (id, a, b, c): b and c are long; the first update sets b and leaves c, the second leaves both
    const std::vector<int> kc = {0};
    const std::string b_new = long_text("b new"), c_old = long_text("c old"), b_old = long_text("b old");
    auto row = [](int64_t id, const std::string &a, Value b, Value c) {
        return Row{Value::int64(id), Value::of_text(a), std::move(b), std::move(c)};
    };
    RowChangeSet set(kc);
    set.add(upd(row(1, "x", Value::of_text(b_new), unchanged())));
    set.add(upd(row(1, "y", unchanged(), unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, row(1, "y", Value::of_text(b_new), unchanged()));
    EXPECT_TRUE(rows[0]->needs_base);
    EXPECT_ROW_EQ(rows[0]->base_key, key(1));
    Mirror m = mirror_of(kc, {row(1, "w", Value::of_text(b_old), Value::of_text(c_old))});
    ASSERT_TRUE(apply_net(set, m));
    EXPECT_TRUE(m == mirror_of(kc, {row(1, "y", Value::of_text(b_new), Value::of_text(c_old))})) << show(m);
}

TEST(RowChangeSet, UnchangedNullStaysNull) {
    // A NULL is never "unchanged TOAST": an update to NULL then an unchanged marker resolves to
    // the NULL of the run, not the base.
    RowChangeSet set(kKey);
    set.add(upd(pc(2, 1, "1.00", Value::null())));
    set.add(upd(pc(2, 1, "2.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(2, 1, "2.00", Value::null()));
    EXPECT_FALSE(rows[0]->needs_base);
}

TEST(RowChangeSet, ManyRowsEachWithItsOwnBase) {
    RowChangeSet set(kKey);
    for (int64_t id = 1; id <= 100; id++) set.add(upd(pc(id, id, "1.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 100u);
    for (int64_t id = 1; id <= 100; id++) {
        EXPECT_TRUE(rows[id - 1]->needs_base);
        EXPECT_ROW_EQ(rows[id - 1]->base_key, key(id));
    }
}

// ---- errors ---------------------------------------------------------------------------------

TEST(RowChangeSetErrors, UpdateWithUnchangedValueAfterDeleteOfTheSameKey) {
    RowChangeSet set(kKey);
    set.add(del(key(3)));
    EXPECT_THROW(set.add(upd(pc(3, 1, "1.00", unchanged()))), FormatError);
}

TEST(RowChangeSetErrors, UpdateWithUnchangedValueAfterTheKeyMovedAway) {
    RowChangeSet set(kKey);
    set.add(upd_key(key(3), pc(4, 1, "1.00", "moved")));
    EXPECT_THROW(set.add(upd_key(key(3), pc(5, 1, "1.00", unchanged()))), FormatError);
}

TEST(RowChangeSetErrors, UnchangedValueOfAColumnTheEarlierVersionLacks) {
    RowChangeSet set(kKey);
    set.add(ins({Value::int64(3), Value::int64(1)}));
    try {
        set.add(upd(pc(3, 1, "1.00", unchanged())));
        FAIL() << "no exception";
    } catch (const FormatError &e) {
        EXPECT_STREQ(e.what(),
                     "unchanged-TOAST marker for column 4, which the row's earlier version in the run does not have");
    }
}

TEST(RowChangeSetErrors, KeyColumnWithUnchangedMarkerInTheNewRow) {
    RowChangeSet set(kKey);
    Row bad = pc(1, 1, "1.00", "x");
    bad[0] = unchanged();
    EXPECT_THROW(set.add(upd(bad)), FormatError);
    EXPECT_THROW(set.add(upd_key(key(1), bad)), FormatError);
    EXPECT_THROW(set.add(ins(bad)), FormatError);
    EXPECT_TRUE(set.final_rows().empty());
}

TEST(RowChangeSetErrors, KeyColumnWithUnchangedMarkerInTheOldRow) {
    RowChangeSet set(kKey);
    Row bad_old = pc(1, 1, "1.00", "x");
    bad_old[0] = unchanged();
    EXPECT_THROW(set.add(upd_full(bad_old, pc(1, 1, "2.00", "x"))), FormatError);
    EXPECT_THROW(set.add(del_full(bad_old)), FormatError);
}

TEST(RowChangeSetErrors, CompositeKeyColumnWithUnchangedMarker) {
    RowChangeSet set(kComposite);
    Row bad = reading(1, 2, "1.00", "x");
    bad[2] = unchanged();  // stat day, the second key column
    EXPECT_THROW(set.add(upd(bad)), FormatError);
    EXPECT_THROW(set.add(upd_key(rkey(1, 3), bad)), FormatError);
}

TEST(RowChangeSetErrors, OldKeyOfTheWrongWidth) {
    RowChangeSet set(kComposite);
    EXPECT_THROW(set.add(del(key(1))), FormatError);
    EXPECT_THROW(set.add(upd_key({Value::int64(1), Value::date(1), Value::int64(3)}, reading(1, 1, "1.00", "x"))),
                 FormatError);
}

TEST(RowChangeSetErrors, RowShorterThanItsKey) {
    RowChangeSet set(kComposite);
    EXPECT_THROW(set.add(ins({Value::int64(1), Value::of_text("1.00")})), FormatError);
}

TEST(RowChangeSetErrors, DeleteWithoutOldKey) {
    RowChangeSet set(kKey);
    RowMessage m = del(key(1));
    m.old_kind = OldRowKind::None;
    m.old_row.clear();
    EXPECT_THROW(set.add(m), FormatError);
}

TEST(RowChangeSetErrors, NotARowChange) {
    RowChangeSet set(kKey);
    RowMessage m = ins(pc(1, 1, "1.00", "x"));
    m.kind = MessageKind::Truncate;
    EXPECT_THROW(set.add(m), FormatError);
    m.kind = MessageKind::Commit;
    EXPECT_THROW(set.add(m), FormatError);
}

TEST(RowChangeSetErrors, AFailedAddLeavesTheSetUsable) {
    const std::string r = long_text("still here");
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1, "1.00", r)));
    Row bad = pc(1, 1, "2.00", "x");
    bad[0] = unchanged();
    EXPECT_THROW(set.add(upd(bad)), FormatError);
    set.add(upd(pc(1, 1, "3.00", unchanged())));
    auto rows = set.final_rows();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_ROW_EQ(rows[0]->row, pc(1, 1, "3.00", r));
}

// ---- memory estimate (the worker flushes on it) ---------------------------------------------

TEST(RowChangeSetBytes, GrowsWithRowsAndTheirWidthAndClearForgetsIt) {
    RowChangeSet set(kKey);
    EXPECT_EQ(set.bytes(), 0u);
    set.add(ins(pc(1, 1, "1.00", "x")));
    const size_t one = set.bytes();
    EXPECT_GE(one, 4 * sizeof(Value));  // at least the row's values
    set.add(ins(pc(2, 1, "1.00", "x")));
    EXPECT_GE(set.bytes(), 2 * one);
    const std::string wide(100000, 'w');
    set.add(ins(pc(3, 1, "1.00", wide)));
    EXPECT_GE(set.bytes(), 2 * one + wide.size());
    set.clear();
    EXPECT_EQ(set.bytes(), 0u);
}

TEST(RowChangeSetBytes, RepeatedChangesOfOneKeyAreCountedNotForgotten) {
    // The estimate errs high: a row replaced later in the run is still counted, so a run of
    // updates to one key cannot hold more than it says.
    RowChangeSet set(kKey);
    set.add(ins(pc(1, 1, "1.00", std::string(1000, 'a'))));
    const size_t first = set.bytes();
    set.add(upd(pc(1, 1, "2.00", std::string(1000, 'b'))));
    EXPECT_GT(set.bytes(), first);
    set.add(del(key(1)));
    EXPECT_GT(set.bytes(), first);
}

// ---- randomized: net effect == one by one ---------------------------------------------------

// Valid streams over a small key space: inserts of absent keys, updates (key kept or moved to an
// absent key, remark set or left unchanged, under every old row kind), deletes.
TEST(RowChangeSetRandomized, NetEffectEqualsApplyingOneByOne) {
    for (uint32_t seed = 1; seed <= 300; seed++) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        std::mt19937 rng(seed);
        auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
        const bool composite = seed % 3 == 0;
        const std::vector<int> &kc = composite ? kComposite : kKey;
        auto make = [&](int64_t k, const std::string &amount, Value remark) {
            return composite ? reading(k % 4, static_cast<int32_t>(k / 4), amount, std::move(remark))
                             : pc(k, 1000 + k, amount, std::move(remark));
        };
        auto key_for = [&](int64_t k) { return composite ? rkey(k % 4, static_cast<int32_t>(k / 4)) : key(k); };

        Mirror before;
        before.key_columns = kc;
        std::map<int64_t, Row> live;  // the source as the stream goes
        for (int64_t k = 0; k < 12; k++)
            if (pick(2)) {
                Row r = make(k, "0.00", Value::of_text(long_text("base " + std::to_string(k))));
                before.put(r);
                live[k] = r;
            }
        std::vector<RowMessage> ms;
        const int n = 1 + pick(40);
        for (int i = 0; i < n; i++) {
            int64_t k = pick(12);
            std::string amount = std::to_string(i) + ".00";
            if (!live.count(k)) {
                Row r = make(k, amount, Value::of_text("ins " + std::to_string(i)));
                ms.push_back(ins(r));
                live[k] = r;
                continue;
            }
            int op = pick(5);
            if (op == 0) {
                ms.push_back(pick(2) ? del(key_for(k)) : del_full(live[k]));
                live.erase(k);
                continue;
            }
            int64_t to = k;
            if (op == 1) {  // move the key
                to = pick(12);
                if (live.count(to)) to = k;
            }
            Value remark = pick(2) ? unchanged() : Value::of_text(long_text("upd " + std::to_string(i)));
            Row next = make(to, amount, remark);
            Row resolved = next;
            if (remark.kind == ValueKind::UnchangedToast) resolved[3] = live[k][3];
            int kind = pick(3);
            if (to != k && kind == 0) kind = 1;  // None only when the key is kept
            if (kind == 0)
                ms.push_back(upd(next));
            else if (kind == 1)
                ms.push_back(upd_key(key_for(k), next));
            else
                ms.push_back(upd_full(live[k], next));
            live.erase(k);
            live[to] = resolved;
        }
        expect_same_as_one_by_one(kc, before, ms);
        if (HasFailure()) break;
    }
}

}  // namespace
