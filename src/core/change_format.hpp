// The change-stream wire format (docs/change-format.md): the messages the output plugin
// writes and the pipeline worker reads, with their encoder, decoder and text form.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sgivm {

constexpr uint8_t kFormatVersion = 2;

enum class MessageKind : char {
    Begin = 'B',
    Relation = 'R',
    Insert = 'I',
    Update = 'U',
    Delete = 'D',
    Truncate = 'T',
    Resync = 'S',
    Commit = 'C',
};

// How a column value travels. Fixed-width kinds avoid the type's text output on the hot path;
// everything else travels as the type's text form and is read back with its input function.
enum class ValueKind : char {
    Null = 'n',
    UnchangedToast = 'u',  // UPDATE left a TOASTed value untouched: take it from the old row
    Int32 = 'i',           // int2, int4
    Int64 = 'l',           // int8
    Timestamp = 's',       // timestamp without time zone: microseconds since 2000-01-01
    TimestampTz = 'z',     // timestamp with time zone: microseconds since 2000-01-01 UTC
    Date = 'd',            // days since 2000-01-01
    Text = 't',            // the type's text output (text, varchar, numeric, ...)
};

struct Value {
    ValueKind kind = ValueKind::Null;
    int64_t integer = 0;  // Int32, Int64, Timestamp, TimestampTz, Date
    std::string text;     // Text

    static Value null() { return Value{}; }
    static Value unchanged_toast() { return Value{ValueKind::UnchangedToast, 0, {}}; }
    static Value int32(int32_t v) { return Value{ValueKind::Int32, v, {}}; }
    static Value int64(int64_t v) { return Value{ValueKind::Int64, v, {}}; }
    static Value timestamp(int64_t us) { return Value{ValueKind::Timestamp, us, {}}; }
    static Value timestamptz(int64_t us) { return Value{ValueKind::TimestampTz, us, {}}; }
    static Value date(int32_t days) { return Value{ValueKind::Date, days, {}}; }
    static Value of_text(std::string_view s) { return Value{ValueKind::Text, 0, std::string(s)}; }

    bool operator==(const Value &o) const {
        return kind == o.kind && integer == o.integer && text == o.text;
    }
    bool operator!=(const Value &o) const { return !(*this == o); }
};

using Row = std::vector<Value>;

struct Column {
    std::string name;
    uint32_t type_oid = 0;
    int32_t typmod = -1;
    bool is_key = false;  // part of the replica identity (the primary key by default)

    bool operator==(const Column &o) const {
        return name == o.name && type_oid == o.type_oid && typmod == o.typmod && is_key == o.is_key;
    }
};

// What an UPDATE or DELETE says about the row before the change.
enum class OldRowKind : char {
    None = 'N',  // UPDATE that kept the key: the old key equals the new row's key columns
    Key = 'K',   // only the replica-identity columns, in column order (default identity)
    Full = 'O',  // every column (REPLICA IDENTITY FULL)
};

struct BeginMessage {
    uint32_t xid = 0;
    int64_t commit_time = 0;  // microseconds since 2000-01-01 UTC
    uint64_t final_lsn = 0;   // LSN of the commit record
    bool operator==(const BeginMessage &o) const {
        return xid == o.xid && commit_time == o.commit_time && final_lsn == o.final_lsn;
    }
};

struct RelationMessage {
    uint32_t relid = 0;
    std::string schema;
    std::string name;
    std::vector<Column> columns;
    bool operator==(const RelationMessage &o) const {
        return relid == o.relid && schema == o.schema && name == o.name && columns == o.columns;
    }
};

struct RowMessage {
    MessageKind kind = MessageKind::Insert;  // Insert, Update or Delete
    uint32_t relid = 0;
    OldRowKind old_kind = OldRowKind::None;
    Row old_row;  // empty when old_kind is None
    Row new_row;  // empty for Delete
    bool operator==(const RowMessage &o) const {
        return kind == o.kind && relid == o.relid && old_kind == o.old_kind &&
               old_row == o.old_row && new_row == o.new_row;
    }
};

struct TruncateMessage {
    std::vector<uint32_t> relids;
    bool cascade = false;
    bool restart_identity = false;
    bool operator==(const TruncateMessage &o) const {
        return relids == o.relids && cascade == o.cascade && restart_identity == o.restart_identity;
    }
};

// Why a partitioned table's rows changed without row changes in the stream.
enum class ResyncReason : char {
    PartitionAttached = 'a',   // a partition joined with rows written before it belonged to the table
    PartitionDetached = 'd',   // a partition left the table (DETACH PARTITION, DROP TABLE): its rows went
    PartitionTruncated = 't',  // TRUNCATE of a partition alone
};

// The rows of a partitioned table changed by DDL the stream has no rows for: a consumer that
// keeps a copy of the table must copy it again (the pipeline worker backfills).
struct ResyncMessage {
    uint32_t relid = 0;       // the selected (partitioned) table
    ResyncReason reason = ResyncReason::PartitionAttached;
    std::string partition;    // the partition concerned, schema-qualified, for messages
    bool operator==(const ResyncMessage &o) const {
        return relid == o.relid && reason == o.reason && partition == o.partition;
    }
};

struct CommitMessage {
    uint64_t commit_lsn = 0;  // start of the commit record
    uint64_t end_lsn = 0;     // end of the commit record: the position a consumer confirms
    int64_t commit_time = 0;
    bool operator==(const CommitMessage &o) const {
        return commit_lsn == o.commit_lsn && end_lsn == o.end_lsn && commit_time == o.commit_time;
    }
};

// One decoded message: exactly one of the parts is meaningful, chosen by kind.
struct Message {
    MessageKind kind = MessageKind::Begin;
    BeginMessage begin;
    RelationMessage relation;
    RowMessage row;
    TruncateMessage truncate;
    ResyncMessage resync;
    CommitMessage commit;

    bool operator==(const Message &o) const;
};

class FormatError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Appends messages to a reusable buffer. The plugin writes one message per output call, so the
// encoder is cleared between messages and keeps its capacity.
class Encoder {
public:
    void clear() { buf_.clear(); }
    const std::string &bytes() const { return buf_; }

    void begin(const BeginMessage &m);
    void relation(const RelationMessage &m);
    void truncate(const TruncateMessage &m);
    void resync(const ResyncMessage &m);
    void commit(const CommitMessage &m);
    void row(const RowMessage &m);
    void message(const Message &m);

    // Streaming form of row(), used by the plugin to avoid building a RowMessage:
    // row_header, then old_row_header + values (unless None), then new_row_header + values.
    void row_header(MessageKind kind, uint32_t relid);
    void old_row_header(OldRowKind kind, uint16_t nvalues);
    void new_row_header(uint16_t nvalues);
    void value_null() { put_u8(static_cast<uint8_t>(ValueKind::Null)); }
    void value_unchanged_toast() { put_u8(static_cast<uint8_t>(ValueKind::UnchangedToast)); }
    void value_int(ValueKind kind, int64_t v);
    void value_text(std::string_view s);
    void value(const Value &v);

private:
    void put_u8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
    void put_u16(uint16_t v);
    void put_u32(uint32_t v);
    void put_u64(uint64_t v);
    void put_str(std::string_view s);
    void put_header(MessageKind kind);

    std::string buf_;
};

// Decodes one message; throws FormatError naming what is wrong on malformed input.
Message decode(std::string_view bytes);

// Reads only the kind of a message (cheap dispatch without decoding the body).
MessageKind peek_kind(std::string_view bytes);

// What a resync reason says, in words ("attached", "detached or dropped", "truncated").
const char *resync_reason_text(ResyncReason r);

// Finds the relation a row or truncate message refers to (null when unknown).
using RelationLookup = std::function<const RelationMessage *(uint32_t relid)>;

// The human-readable form (plugin option format 'text'), one line: a backslash and the ASCII
// control characters in values and names are backslash escapes (docs/change-format.md §6). The
// lookup supplies table and column names; without it relations are shown by OID.
std::string format_text(const Message &m, const RelationLookup &lookup = nullptr);
// A value as the text form shows it: null, an integer, or quoted (quotes doubled, escapes).
std::string format_value(const Value &v);
// The value as a PostgreSQL input function reads it (no quoting): for a column whose type
// differs from the one the value travelled as.
std::string input_text(const Value &v);
std::string format_lsn(uint64_t lsn);
std::string format_timestamp(int64_t us_since_2000, bool with_zone);
std::string format_date(int32_t days_since_2000);

}  // namespace sgivm
