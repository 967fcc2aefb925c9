// Writes the hand-made seeds of the fuzz corpus: valid messages, runs and snapshots shaped like
// the State Grid tables. `scripts/fuzz.sh --seeds` runs it into test/fuzz/corpus/<target>/seed_*.
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "core/change_format.hpp"

using namespace sgivm;

namespace {

std::string dir;

void write(const std::string &target, const std::string &name, const std::string &bytes) {
    std::string path = dir + "/" + target + "/seed_" + name;
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::cerr << "make_seeds: cannot write " << path << "\n";
        std::exit(1);
    }
}

std::string encode(const Message &m) {
    Encoder e;
    e.message(m);
    return e.bytes();
}

Message row(MessageKind kind, uint32_t relid, OldRowKind old_kind, Row old_row, Row new_row) {
    Message m;
    m.kind = kind;
    m.row = RowMessage{kind, relid, old_kind, std::move(old_row), std::move(new_row)};
    return m;
}

constexpr uint32_t kUser = 16385, kReading = 16400;
constexpr int64_t kTs = 763806600000000;  // 2024-03-15 08:30:00

RelationMessage reading_relation() {
    return RelationMessage{kReading,
                           "public",
                           "power_consumption",
                           {{"consumption_id", 20, -1, true},
                            {"user_id", 20, -1, false},
                            {"consumption_amount", 1700, 655366, false},
                            {"consumption_date", 1114, -1, false},
                            {"remark", 1043, 204, false}}};
}

Row reading(int64_t id, int64_t user, const char *amount, Value remark) {
    return {Value::int64(id), Value::int64(user), Value::of_text(amount), Value::timestamp(kTs + id * 1000000),
            std::move(remark)};
}

// Frames a run for the row_changes target: u16 big-endian length, then the message.
std::string frame(const std::string &m) {
    std::string f;
    f += static_cast<char>(m.size() >> 8);
    f += static_cast<char>(m.size() & 0xff);
    return f + m;
}

std::string run(const std::vector<Message> &ms) {
    std::string s;
    for (const Message &m : ms) s += frame(encode(m));
    return s;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: make_seeds CORPUS_DIR\n";
        return 2;
    }
    dir = argv[1];

    // ---- change_format: one message per file, every kind, every value kind --------------------
    Message begin;
    begin.kind = MessageKind::Begin;
    begin.begin = BeginMessage{742, kTs, 0x16B3748};
    write("change_format", "begin", encode(begin));

    Message rel;
    rel.kind = MessageKind::Relation;
    rel.relation = RelationMessage{kUser,
                                   "public",
                                   "power_user",
                                   {{"user_id", 20, -1, true},
                                    {"user_name", 1043, 104, false},
                                    {"usage_type", 1043, 54, false},
                                    {"region_id", 23, -1, false},
                                    {"create_time", 1114, -1, false}}};
    write("change_format", "relation_power_user", encode(rel));
    rel.relation = reading_relation();
    write("change_format", "relation_power_consumption", encode(rel));

    write("change_format", "insert_power_user",
          encode(row(MessageKind::Insert, kUser, OldRowKind::None, {},
                     {Value::int64(1001), Value::of_text("张伟"), Value::of_text("居民"), Value::int32(110000),
                      Value::timestamp(kTs)})));
    write("change_format", "insert_every_value_kind",
          encode(row(MessageKind::Insert, kReading, OldRowKind::None, {},
                     {Value::null(), Value::int32(-7), Value::int64(INT64_MIN), Value::timestamp(-1),
                      Value::timestamptz(INT64_MAX), Value::date(8840), Value::date(INT32_MIN),
                      Value::of_text("O'Brien"), Value::of_text(std::string("nul\0byte", 8))})));
    write("change_format", "insert_escaped_text",
          encode(row(MessageKind::Insert, kReading, OldRowKind::None, {},
                     {Value::of_text("two\nlines\r\n"), Value::of_text("tab\t back\\slash \\n"),
                      Value::of_text("\x01\x1b\x7f''\\x41")})));
    write("change_format", "update_same_key_unchanged_toast",
          encode(row(MessageKind::Update, kReading, OldRowKind::None, {},
                     reading(200, 1003, "11800.00", Value::unchanged_toast()))));
    write("change_format", "update_key_changed",
          encode(row(MessageKind::Update, kReading, OldRowKind::Key, {Value::int64(1)},
                     reading(2, 1003, "1.50", Value::unchanged_toast()))));
    write("change_format", "update_full_old_row",
          encode(row(MessageKind::Update, kReading, OldRowKind::Full, reading(3, 1001, "2.00", Value::null()),
                     reading(3, 1002, "2.00", Value::of_text("moved")))));
    write("change_format", "delete_key",
          encode(row(MessageKind::Delete, kReading, OldRowKind::Key, {Value::int64(100)}, {})));
    write("change_format", "delete_full",
          encode(row(MessageKind::Delete, kReading, OldRowKind::Full, reading(4, 1001, "9.99", Value::null()), {})));
    Message trunc;
    trunc.kind = MessageKind::Truncate;
    trunc.truncate = TruncateMessage{{kReading, kUser}, true, true};
    write("change_format", "truncate", encode(trunc));
    Message resync;
    resync.kind = MessageKind::Resync;
    resync.resync = ResyncMessage{kReading, ResyncReason::PartitionAttached, "public.pc_2024_03"};
    write("change_format", "resync", encode(resync));
    Message commit;
    commit.kind = MessageKind::Commit;
    commit.commit = CommitMessage{0x16B3748, 0x16B3778, kTs};
    write("change_format", "commit", encode(commit));

    // ---- row_changes: runs of one table (the first Relation message gives the key) ------------
    Message rel_reading;
    rel_reading.kind = MessageKind::Relation;
    rel_reading.relation = reading_relation();
    auto ins = [](Row r) { return row(MessageKind::Insert, kReading, OldRowKind::None, {}, std::move(r)); };
    auto upd = [](Row r) { return row(MessageKind::Update, kReading, OldRowKind::None, {}, std::move(r)); };
    auto upd_key = [](int64_t from, Row r) {
        return row(MessageKind::Update, kReading, OldRowKind::Key, {Value::int64(from)}, std::move(r));
    };
    auto del = [](int64_t id) { return row(MessageKind::Delete, kReading, OldRowKind::Key, {Value::int64(id)}, {}); };
    write("row_changes", "insert_update_delete",
          run({begin, rel_reading, ins(reading(1, 1001, "1.00", Value::of_text("a"))),
               upd(reading(1, 1001, "2.00", Value::unchanged_toast())), ins(reading(2, 1002, "3.00", Value::null())),
               del(2), commit}));
    write("row_changes", "key_change_chain_with_toast",
          run({rel_reading, upd_key(1, reading(2, 1001, "1.00", Value::unchanged_toast())),
               upd_key(2, reading(3, 1001, "1.00", Value::unchanged_toast())),
               upd(reading(3, 1001, "4.00", Value::of_text("set"))),
               upd(reading(3, 1001, "5.00", Value::unchanged_toast()))}));
    write("row_changes", "two_runs",
          run({rel_reading, ins(reading(7, 1, "1.00", Value::of_text("x"))), del(7)}) + frame("") +
              run({upd(reading(7, 1, "1.00", Value::unchanged_toast())), del(8),
                   ins(reading(8, 2, "0.50", Value::null()))}));
    RelationMessage composite = reading_relation();
    composite.columns[1].is_key = true;
    Message rel_composite;
    rel_composite.kind = MessageKind::Relation;
    rel_composite.relation = composite;
    write("row_changes", "composite_key",
          run({rel_composite, ins(reading(1, 1, "1.00", Value::null())), ins(reading(1, 2, "1.00", Value::null())),
               row(MessageKind::Update, kReading, OldRowKind::Key, {Value::int64(1), Value::int64(1)},
                   reading(1, 3, "2.00", Value::unchanged_toast())),
               row(MessageKind::Delete, kReading, OldRowKind::Full, reading(1, 2, "1.00", Value::null()), {})}));

    // ---- snapshot: pg_current_snapshot()'s text form ---------------------------------------------
    write("snapshot", "empty", "100:100:");
    write("snapshot", "in_progress", "100:105:100,102,104");
    write("snapshot", "later_epoch", "4294967396:4294967400:4294967397,4294967399");
    write("snapshot", "across_the_epoch", "4294967290:4294967300:4294967295,4294967296");
    write("snapshot", "largest", "18446744073709551614:18446744073709551615:");
    return 0;
}
