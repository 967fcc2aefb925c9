// Encoder, decoder and text form of the change-stream wire format (docs/change-format.md).
// Integers are big-endian; every message starts with the format version and its kind.
#include "core/change_format.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "core/cpp_only.hpp"

namespace sgivm {

bool Message::operator==(const Message &o) const {
    if (kind != o.kind) return false;
    switch (kind) {
        case MessageKind::Begin: return begin == o.begin;
        case MessageKind::Relation: return relation == o.relation;
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete: return row == o.row;
        case MessageKind::Truncate: return truncate == o.truncate;
        case MessageKind::Resync: return resync == o.resync;
        case MessageKind::Commit: return commit == o.commit;
    }
    return false;
}

// ---- encoding --------------------------------------------------------------------------

void Encoder::put_u16(uint16_t v) {
    char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    buf_.append(b, 2);
}

void Encoder::put_u32(uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
    buf_.append(b, 4);
}

void Encoder::put_u64(uint64_t v) {
    put_u32(static_cast<uint32_t>(v >> 32));
    put_u32(static_cast<uint32_t>(v));
}

void Encoder::put_str(std::string_view s) {
    if (s.size() > UINT32_MAX) throw FormatError("string longer than 4 GB");
    put_u32(static_cast<uint32_t>(s.size()));
    buf_.append(s.data(), s.size());
}

void Encoder::put_header(MessageKind kind) {
    put_u8(kFormatVersion);
    put_u8(static_cast<uint8_t>(kind));
}

void Encoder::begin(const BeginMessage &m) {
    put_header(MessageKind::Begin);
    put_u32(m.xid);
    put_u64(static_cast<uint64_t>(m.commit_time));
    put_u64(m.final_lsn);
}

void Encoder::relation(const RelationMessage &m) {
    put_header(MessageKind::Relation);
    put_u32(m.relid);
    put_str(m.schema);
    put_str(m.name);
    if (m.columns.size() > UINT16_MAX) throw FormatError("too many columns");
    put_u16(static_cast<uint16_t>(m.columns.size()));
    for (const Column &c : m.columns) {
        put_str(c.name);
        put_u32(c.type_oid);
        put_u32(static_cast<uint32_t>(c.typmod));
        put_u8(c.is_key ? 1 : 0);
    }
}

void Encoder::truncate(const TruncateMessage &m) {
    put_header(MessageKind::Truncate);
    put_u8(static_cast<uint8_t>((m.cascade ? 1 : 0) | (m.restart_identity ? 2 : 0)));
    if (m.relids.size() > UINT32_MAX) throw FormatError("too many relations");
    put_u32(static_cast<uint32_t>(m.relids.size()));
    for (uint32_t r : m.relids) put_u32(r);
}

void Encoder::resync(const ResyncMessage &m) {
    put_header(MessageKind::Resync);
    put_u32(m.relid);
    put_u8(static_cast<uint8_t>(m.reason));
    put_str(m.partition);
}

void Encoder::commit(const CommitMessage &m) {
    put_header(MessageKind::Commit);
    put_u64(m.commit_lsn);
    put_u64(m.end_lsn);
    put_u64(static_cast<uint64_t>(m.commit_time));
}

void Encoder::row_header(MessageKind kind, uint32_t relid) {
    if (kind != MessageKind::Insert && kind != MessageKind::Update && kind != MessageKind::Delete)
        throw FormatError("row message kind must be I, U or D");
    put_header(kind);
    put_u32(relid);
}

void Encoder::old_row_header(OldRowKind kind, uint16_t nvalues) {
    put_u8(static_cast<uint8_t>(kind));
    if (kind != OldRowKind::None) put_u16(nvalues);
}

void Encoder::new_row_header(uint16_t nvalues) { put_u16(nvalues); }

void Encoder::value_int(ValueKind kind, int64_t v) {
    put_u8(static_cast<uint8_t>(kind));
    switch (kind) {
        case ValueKind::Int32:
        case ValueKind::Date: put_u32(static_cast<uint32_t>(static_cast<int32_t>(v))); break;
        case ValueKind::Int64:
        case ValueKind::Timestamp:
        case ValueKind::TimestampTz: put_u64(static_cast<uint64_t>(v)); break;
        default: throw FormatError("value_int called with a non-integer kind");
    }
}

void Encoder::value_text(std::string_view s) {
    put_u8(static_cast<uint8_t>(ValueKind::Text));
    put_str(s);
}

void Encoder::value(const Value &v) {
    switch (v.kind) {
        case ValueKind::Null: value_null(); break;
        case ValueKind::UnchangedToast: value_unchanged_toast(); break;
        case ValueKind::Text: value_text(v.text); break;
        default: value_int(v.kind, v.integer); break;
    }
}

void Encoder::row(const RowMessage &m) {
    if (m.old_row.size() > UINT16_MAX || m.new_row.size() > UINT16_MAX)
        throw FormatError("too many columns");
    row_header(m.kind, m.relid);
    if (m.kind != MessageKind::Insert) {
        old_row_header(m.old_kind, static_cast<uint16_t>(m.old_row.size()));
        if (m.old_kind != OldRowKind::None)
            for (const Value &v : m.old_row) value(v);
    }
    if (m.kind != MessageKind::Delete) {
        new_row_header(static_cast<uint16_t>(m.new_row.size()));
        for (const Value &v : m.new_row) value(v);
    }
}

void Encoder::message(const Message &m) {
    switch (m.kind) {
        case MessageKind::Begin: begin(m.begin); break;
        case MessageKind::Relation: relation(m.relation); break;
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete: {
            RowMessage r = m.row;
            r.kind = m.kind;
            row(r);
            break;
        }
        case MessageKind::Truncate: truncate(m.truncate); break;
        case MessageKind::Resync: resync(m.resync); break;
        case MessageKind::Commit: commit(m.commit); break;
    }
}

// ---- decoding --------------------------------------------------------------------------

namespace {

class Reader {
public:
    explicit Reader(std::string_view b) : b_(b) {}

    uint8_t u8(const char *what) {
        need(1, what);
        return static_cast<uint8_t>(b_[pos_++]);
    }
    uint16_t u16(const char *what) {
        need(2, what);
        uint16_t v = static_cast<uint16_t>((byte(0) << 8) | byte(1));
        pos_ += 2;
        return v;
    }
    uint32_t u32(const char *what) {
        need(4, what);
        uint32_t v = (static_cast<uint32_t>(byte(0)) << 24) | (static_cast<uint32_t>(byte(1)) << 16) |
                     (static_cast<uint32_t>(byte(2)) << 8) | static_cast<uint32_t>(byte(3));
        pos_ += 4;
        return v;
    }
    uint64_t u64(const char *what) {
        uint64_t hi = u32(what);
        return (hi << 32) | u32(what);
    }
    std::string str(const char *what) {
        uint32_t n = u32(what);
        need(n, what);
        std::string s(b_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    size_t remaining() const { return b_.size() - pos_; }
    void finish() const {
        if (pos_ != b_.size())
            throw FormatError("trailing bytes after message (" + std::to_string(b_.size() - pos_) + ")");
    }

private:
    unsigned byte(size_t i) const { return static_cast<unsigned char>(b_[pos_ + i]); }
    void need(size_t n, const char *what) const {
        if (b_.size() - pos_ < n)
            throw FormatError(std::string("message truncated while reading ") + what);
    }

    std::string_view b_;
    size_t pos_ = 0;
};

Value read_value(Reader &r) {
    auto kind = static_cast<ValueKind>(r.u8("value kind"));
    switch (kind) {
        case ValueKind::Null: return Value::null();
        case ValueKind::UnchangedToast: return Value::unchanged_toast();
        case ValueKind::Int32: return Value::int32(static_cast<int32_t>(r.u32("int32")));
        case ValueKind::Date: return Value::date(static_cast<int32_t>(r.u32("date")));
        case ValueKind::Int64: return Value::int64(static_cast<int64_t>(r.u64("int64")));
        case ValueKind::Timestamp: return Value::timestamp(static_cast<int64_t>(r.u64("timestamp")));
        case ValueKind::TimestampTz:
            return Value::timestamptz(static_cast<int64_t>(r.u64("timestamptz")));
        case ValueKind::Text: {
            Value v;
            v.kind = ValueKind::Text;
            v.text = r.str("text value");
            return v;
        }
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "unknown value kind 0x%02x",
                  static_cast<unsigned>(static_cast<uint8_t>(kind)));
    throw FormatError(buf);
}

// A count read from the input is only a claim: reserve no more than the bytes left can hold
// (a value takes at least its kind byte), so a short message cannot make a large allocation.
// unchanged_allowed: only the new row of an Update may say "unchanged TOAST value"; anywhere
// else there is no earlier version of the row to take the value from.
Row read_values(Reader &r, uint16_t n, bool unchanged_allowed) {
    Row row;
    row.reserve(std::min<size_t>(n, r.remaining()));
    for (uint16_t i = 0; i < n; i++) {
        row.push_back(read_value(r));
        if (!unchanged_allowed && row.back().kind == ValueKind::UnchangedToast)
            throw FormatError("unchanged-TOAST marker outside the new row of an update");
    }
    return row;
}

}  // namespace

MessageKind peek_kind(std::string_view bytes) {
    if (bytes.size() < 2) throw FormatError("message shorter than its header");
    if (static_cast<uint8_t>(bytes[0]) != kFormatVersion)
        throw FormatError("unsupported change format version " +
                          std::to_string(static_cast<uint8_t>(bytes[0])) + " (this build reads " +
                          std::to_string(kFormatVersion) + ")");
    return static_cast<MessageKind>(bytes[1]);
}

Message decode(std::string_view bytes) {
    Message m;
    m.kind = peek_kind(bytes);
    Reader r(bytes.substr(2));
    switch (m.kind) {
        case MessageKind::Begin:
            m.begin.xid = r.u32("xid");
            m.begin.commit_time = static_cast<int64_t>(r.u64("commit time"));
            m.begin.final_lsn = r.u64("final lsn");
            break;
        case MessageKind::Relation: {
            m.relation.relid = r.u32("relid");
            m.relation.schema = r.str("schema name");
            m.relation.name = r.str("relation name");
            uint16_t n = r.u16("column count");
            constexpr size_t kMinColumnBytes = 4 + 4 + 4 + 1;  // empty name, type oid, typmod, flags
            m.relation.columns.reserve(std::min<size_t>(n, r.remaining() / kMinColumnBytes));
            for (uint16_t i = 0; i < n; i++) {
                Column c;
                c.name = r.str("column name");
                c.type_oid = r.u32("type oid");
                c.typmod = static_cast<int32_t>(r.u32("typmod"));
                uint8_t flags = r.u8("column flags");
                if (flags > 1) throw FormatError("unknown column flags");
                c.is_key = flags & 1;
                m.relation.columns.push_back(std::move(c));
            }
            break;
        }
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete: {
            m.row.kind = m.kind;
            m.row.relid = r.u32("relid");
            if (m.kind != MessageKind::Insert) {
                auto ok = static_cast<OldRowKind>(r.u8("old row kind"));
                if (ok != OldRowKind::None && ok != OldRowKind::Key && ok != OldRowKind::Full)
                    throw FormatError("unknown old row kind");
                if (m.kind == MessageKind::Delete && ok == OldRowKind::None)
                    throw FormatError("delete without old key");
                m.row.old_kind = ok;
                if (ok != OldRowKind::None) m.row.old_row = read_values(r, r.u16("old column count"), false);
            }
            if (m.kind != MessageKind::Delete)
                m.row.new_row = read_values(r, r.u16("column count"), m.kind == MessageKind::Update);
            break;
        }
        case MessageKind::Truncate: {
            uint8_t flags = r.u8("truncate flags");
            if (flags > 3) throw FormatError("unknown truncate flags");
            m.truncate.cascade = flags & 1;
            m.truncate.restart_identity = flags & 2;
            uint32_t n = r.u32("relation count");
            for (uint32_t i = 0; i < n; i++) m.truncate.relids.push_back(r.u32("relid"));
            break;
        }
        case MessageKind::Resync: {
            m.resync.relid = r.u32("relid");
            auto reason = static_cast<ResyncReason>(r.u8("resync reason"));
            if (reason != ResyncReason::PartitionAttached && reason != ResyncReason::PartitionDetached &&
                reason != ResyncReason::PartitionTruncated)
                throw FormatError("unknown resync reason");
            m.resync.reason = reason;
            m.resync.partition = r.str("partition name");
            break;
        }
        case MessageKind::Commit:
            m.commit.commit_lsn = r.u64("commit lsn");
            m.commit.end_lsn = r.u64("end lsn");
            m.commit.commit_time = static_cast<int64_t>(r.u64("commit time"));
            break;
        default: {
            char buf[64];
            std::snprintf(buf, sizeof buf, "unknown message kind 0x%02x",
                          static_cast<unsigned>(static_cast<uint8_t>(m.kind)));
            throw FormatError(buf);
        }
    }
    r.finish();
    return m;
}

// ---- text form -------------------------------------------------------------------------

std::string format_lsn(uint64_t lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffu));
    return buf;
}

namespace {

// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
void civil_from_days(int64_t z, int64_t &y, unsigned &m, unsigned &d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += (m <= 2);
}

constexpr int64_t kDaysFrom1970To2000 = 10957;
constexpr int64_t kUsPerDay = 86400LL * 1000000LL;

// "YYYY-MM-DD" as PostgreSQL's ISO style writes it: there is no year 0, a year up to 0 is
// shown as 1 - year and the caller appends " BC" (after the time and zone, if any).
std::string civil_date(int64_t days_since_2000, bool &bc) {
    int64_t y;
    unsigned m, d;
    civil_from_days(days_since_2000 + kDaysFrom1970To2000, y, m, d);
    bc = y <= 0;
    if (bc) y = 1 - y;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04" PRId64 "-%02u-%02u", y, m, d);
    return buf;
}

}  // namespace

std::string format_date(int32_t days_since_2000) {
    // DATEVAL_NOBEGIN / DATEVAL_NOEND
    if (days_since_2000 == INT32_MIN) return "-infinity";
    if (days_since_2000 == INT32_MAX) return "infinity";
    bool bc;
    std::string s = civil_date(days_since_2000, bc);
    return bc ? s + " BC" : s;
}

std::string format_timestamp(int64_t us, bool with_zone) {
    // TIMESTAMP_NOBEGIN / TIMESTAMP_NOEND
    if (us == INT64_MIN) return "-infinity";
    if (us == INT64_MAX) return "infinity";
    // The day and the microsecond of the day, rounded down; not as us - days * kUsPerDay, whose
    // product overflows in the first and last day of the int64 range (reachable through
    // change_to_text() with any bytes).
    int64_t days = us / kUsPerDay, rest = us % kUsPerDay;
    if (rest < 0) {
        rest += kUsPerDay;
        days--;
    }
    bool bc;
    std::string s = civil_date(days, bc);
    int64_t secs = rest / 1000000, frac = rest % 1000000;
    char buf[48];
    std::snprintf(buf, sizeof buf, " %02d:%02d:%02d", static_cast<int>(secs / 3600),
                  static_cast<int>((secs / 60) % 60), static_cast<int>(secs % 60));
    s += buf;
    if (frac != 0) {
        std::snprintf(buf, sizeof buf, ".%06d", static_cast<int>(frac));
        std::string f(buf);
        while (f.back() == '0') f.pop_back();
        s += f;
    }
    if (with_zone) s += "+00";
    if (bc) s += " BC";
    return s;
}

namespace {

// Appends s with a backslash and each ASCII control character written as an escape: \\, \n, \r,
// \t, else \xNN (two lower-case hex digits). So a message stays on one line, and every byte
// can be read back: a backslash in the output always starts an escape (§6).
void append_escaped(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
}

// A name (schema, table, column, partition) as the text form shows it.
std::string shown_name(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    append_escaped(out, s);
    return out;
}

// A value in single quotes: escaped as above, and a quote doubled.
std::string quote_text(std::string_view t) {
    std::string q = "'";
    q.reserve(t.size() + 2);
    size_t start = 0;
    for (size_t quote; (quote = t.find('\'', start)) != std::string_view::npos; start = quote + 1) {
        append_escaped(q, t.substr(start, quote + 1 - start));
        q += '\'';
    }
    append_escaped(q, t.substr(start));
    q += '\'';
    return q;
}

}  // namespace

std::string format_value(const Value &v) {
    switch (v.kind) {
        case ValueKind::Null: return "null";
        case ValueKind::UnchangedToast: return "unchanged-toast-datum";
        case ValueKind::Int32:
        case ValueKind::Int64: return std::to_string(v.integer);
        case ValueKind::Date: return quote_text(format_date(static_cast<int32_t>(v.integer)));
        case ValueKind::Timestamp: return quote_text(format_timestamp(v.integer, false));
        case ValueKind::TimestampTz: return quote_text(format_timestamp(v.integer, true));
        case ValueKind::Text: return quote_text(v.text);
    }
    return "?";
}

std::string input_text(const Value &v) {
    switch (v.kind) {
        case ValueKind::Int32:
        case ValueKind::Int64: return std::to_string(v.integer);
        case ValueKind::Date: return format_date(static_cast<int32_t>(v.integer));
        case ValueKind::Timestamp: return format_timestamp(v.integer, false);
        case ValueKind::TimestampTz: return format_timestamp(v.integer, true);
        case ValueKind::Text: return v.text;
        case ValueKind::Null:
        case ValueKind::UnchangedToast: break;
    }
    throw FormatError("value has no text form");
}

namespace {

// Names the values of a row: all columns, or only the key columns for an old key.
std::string format_row(const Row &row, const RelationMessage *rel, bool key_only) {
    std::vector<const Column *> cols;
    if (rel)
        for (const Column &c : rel->columns)
            if (!key_only || c.is_key) cols.push_back(&c);
    std::string s;
    for (size_t i = 0; i < row.size(); i++) {
        if (i) s += ' ';
        if (i < cols.size())
            append_escaped(s, cols[i]->name);
        else
            s += "$" + std::to_string(i + 1);
        s += ':';
        s += format_value(row[i]);
    }
    return s;
}

const char *op_name(MessageKind k) {
    switch (k) {
        case MessageKind::Insert: return "INSERT";
        case MessageKind::Update: return "UPDATE";
        case MessageKind::Delete: return "DELETE";
        default: return "?";
    }
}

}  // namespace

const char *resync_reason_text(ResyncReason r) {
    switch (r) {
        case ResyncReason::PartitionAttached: return "attached";
        case ResyncReason::PartitionDetached: return "detached or dropped";
        case ResyncReason::PartitionTruncated: return "truncated";
    }
    return "?";
}

std::string format_text(const Message &m, const RelationLookup &lookup) {
    auto name_of = [&](uint32_t relid) {
        const RelationMessage *r = lookup ? lookup(relid) : nullptr;
        return r ? shown_name(r->schema) + "." + shown_name(r->name) : "#" + std::to_string(relid);
    };
    const RelationMessage *rel = nullptr;
    if (lookup && (m.kind == MessageKind::Insert || m.kind == MessageKind::Update ||
                   m.kind == MessageKind::Delete))
        rel = lookup(m.row.relid);
    switch (m.kind) {
        case MessageKind::Begin:
            return "BEGIN " + std::to_string(m.begin.xid) + " commit_time '" +
                   format_timestamp(m.begin.commit_time, true) + "'";
        case MessageKind::Relation: {
            std::string s = "RELATION " + shown_name(m.relation.schema) + "." + shown_name(m.relation.name) + " (";
            for (size_t i = 0; i < m.relation.columns.size(); i++) {
                const Column &c = m.relation.columns[i];
                if (i) s += ", ";
                append_escaped(s, c.name);
                if (c.is_key) s += " key";
            }
            return s + ")";
        }
        case MessageKind::Insert:
        case MessageKind::Update:
        case MessageKind::Delete: {
            std::string s = "table ";
            s += name_of(m.row.relid);
            s += ": ";
            s += op_name(m.kind);
            s += ":";
            if (m.row.old_kind == OldRowKind::Key)
                s += " old-key: " + format_row(m.row.old_row, rel, true);
            else if (m.row.old_kind == OldRowKind::Full)
                s += " old-row: " + format_row(m.row.old_row, rel, false);
            if (m.kind != MessageKind::Delete) {
                if (m.row.old_kind != OldRowKind::None) s += " new-row:";
                s += " " + format_row(m.row.new_row, rel, false);
            }
            return s;
        }
        case MessageKind::Truncate: {
            std::string s = "TRUNCATE";
            if (m.truncate.cascade) s += " cascade";
            if (m.truncate.restart_identity) s += " restart_identity";
            s += ":";
            for (size_t i = 0; i < m.truncate.relids.size(); i++)
                s += (i ? ", " : " ") + name_of(m.truncate.relids[i]);
            return s;
        }
        case MessageKind::Resync:
            return "RESYNC " + name_of(m.resync.relid) + ": partition " + shown_name(m.resync.partition) + " " +
                   resync_reason_text(m.resync.reason);
        case MessageKind::Commit:
            return "COMMIT lsn " + format_lsn(m.commit.commit_lsn) + " end_lsn " +
                   format_lsn(m.commit.end_lsn);
    }
    return "?";
}

}  // namespace sgivm
