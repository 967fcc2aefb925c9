// The properties behind the fuzz targets. Each reads one arbitrary input, runs it through a parser
// of src/core and checks the outcome against an independent reading of the same input.
#include "fuzz_properties.hpp"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "core/change_format.hpp"
#include "core/row_changes.hpp"
#include "core/snapshot.hpp"

namespace sgivm::fuzz {

namespace {

[[noreturn]] void violated(const std::string &what) { throw PropertyViolation(what); }

void require(bool ok, const std::string &what) {
    if (!ok) violated(what);
}

// ---- change_format: the text form read back -------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a run of digits at pos (at least min, at most max) as a number.
bool read_number(std::string_view s, size_t &pos, size_t min, size_t max, int64_t &out) {
    size_t start = pos;
    out = 0;
    while (pos < s.size() && is_digit(s[pos]) && pos - start < max) out = out * 10 + (s[pos++] - '0');
    return pos - start >= min;
}

bool take(std::string_view s, size_t &pos, std::string_view lit) {
    if (s.substr(pos, lit.size()) != lit) return false;
    pos += lit.size();
    return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of the codec's conversion,
// written as the counting of whole 400-year eras, 4-year cycles and days of the year).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t days_in_month(int64_t y, int64_t m) {
    static const int64_t days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

// "YYYY-MM-DD" at pos (year of at least four digits, never 0000), as days since 2000-01-01 of
// the year as written; bc is applied by the caller.
bool read_civil_date(std::string_view s, size_t &pos, int64_t &year, int64_t &month, int64_t &day) {
    if (!read_number(s, pos, 4, 12, year) || !take(s, pos, "-") || !read_number(s, pos, 2, 2, month) ||
        !take(s, pos, "-") || !read_number(s, pos, 2, 2, day))
        return false;
    return year >= 1 && month >= 1 && month <= 12 && day >= 1;
}

constexpr int64_t kDaysFrom1970To2000 = 10957;
constexpr int64_t kUsPerDay = 86400LL * 1000000LL;

// The date as the text form shows it reads back as the same day.
void check_date_text(int32_t days, const std::string &text) {
    if (days == INT32_MIN || days == INT32_MAX) {
        require(text == (days == INT32_MIN ? "-infinity" : "infinity"), "date sentinel shown as " + text);
        return;
    }
    size_t pos = 0;
    int64_t y, m, d;
    require(read_civil_date(text, pos, y, m, d), "date text not YYYY-MM-DD: " + text);
    bool bc = take(text, pos, " BC");
    require(pos == text.size(), "date text has trailing characters: " + text);
    if (bc) y = 1 - y;
    require(d <= days_in_month(y, m), "date text names a day the month does not have: " + text);
    require(days_from_civil(y, m, d) - kDaysFrom1970To2000 == days,
            "date " + std::to_string(days) + " shown as " + text + ", which is another day");
}

// The timestamp as the text form shows it reads back as the same microsecond.
void check_timestamp_text(int64_t us, bool with_zone, const std::string &text) {
    if (us == INT64_MIN || us == INT64_MAX) {
        require(text == (us == INT64_MIN ? "-infinity" : "infinity"), "timestamp sentinel shown as " + text);
        return;
    }
    // Day and microsecond of the day, without overflow at the ends of the int64 range.
    int64_t days = us / kUsPerDay, rest = us % kUsPerDay;
    if (rest < 0) {
        rest += kUsPerDay;
        days -= 1;
    }
    size_t pos = 0;
    int64_t y, mo, d, h, mi, sec, frac = 0;
    require(read_civil_date(text, pos, y, mo, d) && take(text, pos, " ") && read_number(text, pos, 2, 2, h) &&
                take(text, pos, ":") && read_number(text, pos, 2, 2, mi) && take(text, pos, ":") &&
                read_number(text, pos, 2, 2, sec),
            "timestamp text not YYYY-MM-DD HH:MM:SS: " + text);
    if (take(text, pos, ".")) {
        size_t start = pos;
        require(read_number(text, pos, 1, 6, frac) && text[pos - 1] != '0',
                "fraction of a second not 1-6 digits without trailing zeros: " + text);
        for (size_t n = pos - start; n < 6; n++) frac *= 10;
    }
    if (with_zone) require(take(text, pos, "+00"), "timestamptz text without +00: " + text);
    bool bc = take(text, pos, " BC");
    require(pos == text.size(), "timestamp text has trailing characters: " + text);
    if (bc) y = 1 - y;
    require(d <= days_in_month(y, mo) && h < 24 && mi < 60 && sec < 60, "timestamp text out of range: " + text);
    require(days_from_civil(y, mo, d) - kDaysFrom1970To2000 == days &&
                ((h * 60 + mi) * 60 + sec) * 1000000 + frac == rest,
            "timestamp " + std::to_string(us) + " shown as " + text + ", which is another time");
}

// Reads back what the text form escaped (docs/change-format.md §6), from pos up to the first byte
// in stop (or the end): \\ \n \r \t and \xNN (lower-case hex) are the escaped bytes; a quote is
// a doubled quote when quoted. Any other backslash, or a control character, is a violation.
std::string read_escaped(std::string_view s, size_t &pos, bool quoted, std::string_view stop) {
    std::string back;
    while (pos < s.size()) {
        char c = s[pos];
        require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "raw control character in the text form");
        if (quoted && c == '\'') {
            if (pos + 1 < s.size() && s[pos + 1] == '\'') {
                back += '\'';
                pos += 2;
                continue;
            }
            return back;  // the closing quote
        }
        if (!quoted && stop.find(c) != std::string_view::npos) return back;
        pos++;
        if (c != '\\') {
            back += c;
            continue;
        }
        require(pos < s.size(), "backslash at the end of the text form");
        char e = s[pos++];
        if (e == '\\') {
            back += '\\';
        } else if (e == 'n') {
            back += '\n';
        } else if (e == 'r') {
            back += '\r';
        } else if (e == 't') {
            back += '\t';
        } else {
            static const std::string_view hex = "0123456789abcdef";
            require(e == 'x' && pos + 2 <= s.size() && hex.find(s[pos]) != std::string_view::npos &&
                        hex.find(s[pos + 1]) != std::string_view::npos,
                    "backslash that starts no escape in the text form");
            auto byte = static_cast<unsigned char>(hex.find(s[pos]) * 16 + hex.find(s[pos + 1]));
            require(byte < 0x20 || byte == 0x7f, "\\x escape of a byte that is shown as it is");
            back += static_cast<char>(byte);
            pos += 2;
        }
    }
    require(!quoted, "quoted value without its closing quote");
    return back;
}

// 'text', as the text form quotes a value, reads back as the text.
void check_quoted(const std::string &text, const std::string &shown) {
    require(shown.size() >= 2 && shown.front() == '\'' && shown.back() == '\'', "text value not quoted: " + shown);
    size_t pos = 1;
    std::string back = read_escaped(shown, pos, true, "");
    require(pos + 1 == shown.size(), "quoted value ends before its end: " + shown);
    require(back == text, "quoted text does not read back as the value");
}

void check_value_text(const Value &v) {
    std::string shown = format_value(v);
    switch (v.kind) {
        case ValueKind::Null: require(shown == "null", "null shown as " + shown); break;
        case ValueKind::UnchangedToast:
            require(shown == "unchanged-toast-datum", "unchanged TOAST shown as " + shown);
            break;
        case ValueKind::Int32:
            require(v.integer >= INT32_MIN && v.integer <= INT32_MAX, "int32 value out of the int32 range");
            [[fallthrough]];
        case ValueKind::Int64: require(shown == std::to_string(v.integer), "integer shown as " + shown); break;
        case ValueKind::Date:
            require(v.integer >= INT32_MIN && v.integer <= INT32_MAX, "date value out of the int32 range");
            check_quoted(input_text(v), shown);
            check_date_text(static_cast<int32_t>(v.integer), input_text(v));
            break;
        case ValueKind::Timestamp:
        case ValueKind::TimestampTz:
            check_quoted(input_text(v), shown);
            check_timestamp_text(v.integer, v.kind == ValueKind::TimestampTz, input_text(v));
            break;
        case ValueKind::Text:
            check_quoted(v.text, shown);
            require(input_text(v) == v.text, "input text of a text value is not the value");
            break;
    }
    if (v.kind == ValueKind::Null || v.kind == ValueKind::UnchangedToast) {
        bool refused = false;
        try {
            input_text(v);
        } catch (const FormatError &) {
            refused = true;
        }
        require(refused, "input_text gave a text form to a null or unchanged-TOAST value");
    }
}

// The plugin's way of writing a row message: header, then values one by one.
std::string encode_streaming(const RowMessage &m) {
    Encoder e;
    e.row_header(m.kind, m.relid);
    if (m.kind != MessageKind::Insert) {
        e.old_row_header(m.old_kind, static_cast<uint16_t>(m.old_row.size()));
        if (m.old_kind != OldRowKind::None)
            for (const Value &v : m.old_row) e.value(v);
    }
    if (m.kind != MessageKind::Delete) {
        e.new_row_header(static_cast<uint16_t>(m.new_row.size()));
        for (const Value &v : m.new_row) e.value(v);
    }
    return e.bytes();
}

// A relation for format_text to name columns with: its shape follows from the relid, so that
// rows meet relations with fewer, as many and more columns than they carry. Its names hold
// characters the text form escapes.
RelationMessage relation_for(uint32_t relid) {
    static const char *const odd[] = {"", "\n", "\\", "\t\x01"};
    RelationMessage r;
    r.relid = relid;
    r.schema = std::string("s") + odd[relid % 4];
    r.name = "t" + std::to_string(relid);
    for (uint32_t i = 0; i < relid % 7; i++)
        r.columns.push_back(Column{"c" + std::to_string(i) + odd[(relid + i) % 4], 0, -1, ((relid >> i) & 1) != 0});
    return r;
}

// The name format_text gives value i of a row: the relation's column (only its key columns for
// an old key), else $n by position.
std::string value_name(const RelationMessage *rel, bool key_only, size_t i) {
    size_t n = 0;
    if (rel)
        for (const Column &c : rel->columns)
            if (!key_only || c.is_key) {
                if (n++ == i) return c.name;
            }
    return "$" + std::to_string(i + 1);
}

// A row line read back, independently of the formatter: the table, the operation, then each
// value as `name:shown`, which reads back as the value itself. Nothing is left over.
void check_row_line(const RowMessage &m, const std::string &line, const RelationMessage *rel) {
    size_t pos = 0;
    require(take(line, pos, "table "), "row line does not start with table: " + line);
    std::string table = read_escaped(line, pos, false, ":");
    require(table == (rel ? rel->schema + "." + rel->name : "#" + std::to_string(m.relid)),
            "row line names another table: " + line);
    static const std::map<MessageKind, std::string> op = {
        {MessageKind::Insert, ": INSERT:"}, {MessageKind::Update, ": UPDATE:"}, {MessageKind::Delete, ": DELETE:"}};
    require(take(line, pos, op.at(m.kind)), "row line without its operation: " + line);
    auto values = [&](const Row &row, bool key_only) {
        for (size_t i = 0; i < row.size(); i++) {
            require(i == 0 || take(line, pos, " "), "values not separated by a space: " + line);
            require(read_escaped(line, pos, false, ":") == value_name(rel, key_only, i) && take(line, pos, ":"),
                    "value " + std::to_string(i + 1) + " not named as its column: " + line);
            const Value &v = row[i];
            switch (v.kind) {
                case ValueKind::Null: require(take(line, pos, "null"), "null not shown as null"); break;
                case ValueKind::UnchangedToast:
                    require(take(line, pos, "unchanged-toast-datum"), "unchanged TOAST not shown as such");
                    break;
                case ValueKind::Int32:
                case ValueKind::Int64:
                    require(take(line, pos, std::to_string(v.integer)), "integer not shown as itself: " + line);
                    break;
                default:
                    require(take(line, pos, "'"), "value not quoted: " + line);
                    require(read_escaped(line, pos, true, "") == input_text(v) && take(line, pos, "'"),
                            "quoted value in a row line does not read back as the value: " + line);
            }
        }
    };
    if (m.old_kind == OldRowKind::Key || m.old_kind == OldRowKind::Full) {
        require(take(line, pos, m.old_kind == OldRowKind::Key ? " old-key: " : " old-row: "),
                "old row not introduced: " + line);
        values(m.old_row, m.old_kind == OldRowKind::Key);
    }
    if (m.kind != MessageKind::Delete) {
        require(m.old_kind == OldRowKind::None || take(line, pos, " new-row:"), "new row not introduced: " + line);
        require(take(line, pos, " "), "new row not introduced: " + line);
        values(m.new_row, false);
    }
    require(pos == line.size(), "row line has more than its values: " + line);
}

}  // namespace

void check_change_format(std::string_view input) {
    Message m;
    try {
        m = decode(input);
    } catch (const FormatError &) {
        return;  // refused, as bad input must be
    } catch (const std::exception &e) {
        violated(std::string("decode threw something other than FormatError: ") + e.what());
    }
    require(peek_kind(input) == m.kind, "peek_kind disagrees with decode");

    // One encoding per message: what decodes re-encodes to the same bytes, and back.
    Encoder e;
    e.message(m);
    require(e.bytes() == input, "a decoded message re-encodes to other bytes");
    require(decode(e.bytes()) == m, "a re-encoded message decodes to another message");
    bool is_row = m.kind == MessageKind::Insert || m.kind == MessageKind::Update || m.kind == MessageKind::Delete;
    if (is_row) {
        require(m.row.kind == m.kind, "row message kind differs from the message kind");
        require(encode_streaming(m.row) == input, "the streaming encoder writes other bytes");
        // What the format document promises about row messages.
        require(m.kind != MessageKind::Insert || m.row.old_kind == OldRowKind::None, "insert with an old row");
        require(m.row.old_kind != OldRowKind::None || m.row.old_row.empty(), "old values without an old row kind");
        require(m.kind != MessageKind::Delete || m.row.new_row.empty(), "delete with a new row");
        for (const Value &v : m.row.old_row)
            require(v.kind != ValueKind::UnchangedToast, "unchanged-TOAST marker in an old row");
        if (m.kind == MessageKind::Insert)
            for (const Value &v : m.row.new_row)
                require(v.kind != ValueKind::UnchangedToast, "unchanged-TOAST marker in an insert");
    }

    // The text form: never throws, and each value reads back.
    try {
        std::string plain = format_text(m);
        uint32_t shown_relid = is_row ? m.row.relid : 0;
        if (m.kind == MessageKind::Truncate && !m.truncate.relids.empty()) shown_relid = m.truncate.relids[0];
        if (m.kind == MessageKind::Resync) shown_relid = m.resync.relid;
        RelationMessage named = relation_for(shown_relid);
        std::string with_names = format_text(m, [&](uint32_t relid) -> const RelationMessage * {
            return relid == named.relid ? &named : nullptr;
        });
        static const std::map<MessageKind, std::string> prefix = {
            {MessageKind::Begin, "BEGIN "},   {MessageKind::Relation, "RELATION "}, {MessageKind::Insert, "table "},
            {MessageKind::Update, "table "},  {MessageKind::Delete, "table "},      {MessageKind::Truncate, "TRUNCATE"},
            {MessageKind::Resync, "RESYNC "},     {MessageKind::Commit, "COMMIT "},
        };
        const std::string &p = prefix.at(m.kind);
        require(plain.compare(0, p.size(), p) == 0 && with_names.compare(0, p.size(), p) == 0,
                "text form does not start with " + p);
        // One message, one line: whatever the values and names hold.
        for (const std::string *t : {&plain, &with_names})
            for (char c : *t)
                require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control character in the text form");
        if (is_row) {
            check_row_line(m.row, plain, nullptr);
            check_row_line(m.row, with_names, &named);
        }
        if (m.kind == MessageKind::Begin)
            check_timestamp_text(m.begin.commit_time, true, format_timestamp(m.begin.commit_time, true));
        if (m.kind == MessageKind::Commit)
            for (uint64_t lsn : {m.commit.commit_lsn, m.commit.end_lsn}) {
                std::string shown = format_lsn(lsn);
                size_t slash = shown.find('/');
                require(slash != std::string::npos &&
                            (std::strtoull(shown.substr(0, slash).c_str(), nullptr, 16) << 32 |
                             std::strtoull(shown.substr(slash + 1).c_str(), nullptr, 16)) == lsn,
                        "LSN " + std::to_string(lsn) + " shown as " + shown);
            }
    } catch (const PropertyViolation &) {
        throw;
    } catch (const std::exception &ex) {
        violated(std::string("the text form threw: ") + ex.what());
    }
    for (const Value &v : m.row.old_row) check_value_text(v);
    for (const Value &v : m.row.new_row) check_value_text(v);
}

// ---- row_changes: RowChangeSet against a one-by-one model -----------------------------------

namespace {

// A value of the model: known, or column `column` of the mirror row with key `base` as it was
// before the run (what an unchanged TOAST value stands for).
struct ModelValue {
    bool from_base = false;
    std::string base;
    size_t column = 0;
    Value value;
    bool operator==(const ModelValue &o) const {
        return from_base == o.from_base && base == o.base && column == o.column && value == o.value;
    }
};
using ModelRow = std::vector<ModelValue>;

// Keys compared as the mirror compares them: value kind and value (not the codec's bytes).
std::string key_name(const Row &key) {
    std::string s;
    for (const Value &v : key) {
        std::string part = std::string(1, static_cast<char>(v.kind));
        part += v.kind == ValueKind::Text ? v.text : format_value(v);
        s += std::to_string(part.size()) + ":" + part;
    }
    return s;
}

// The source table seen through the changes of one run, applied one at a time.
class Model {
public:
    explicit Model(std::vector<int> key_columns) : key_columns_(std::move(key_columns)) {}

    // False when the change cannot be applied (RowChangeSet must then refuse it).
    bool apply(const RowMessage &m) {
        std::string old_key, new_key;
        switch (m.kind) {
            case MessageKind::Insert: {
                if (!key_of(m.new_row, new_key)) return false;
                ModelRow row;
                for (const Value &v : m.new_row) {
                    if (v.kind == ValueKind::UnchangedToast) return false;
                    row.push_back(ModelValue{false, {}, 0, v});
                }
                set(new_key, true, std::move(row));
                return true;
            }
            case MessageKind::Delete:
                if (!old_key_of(m, old_key)) return false;
                set(old_key, false, {});
                return true;
            case MessageKind::Update: {
                if (!old_key_of(m, old_key) || !key_of(m.new_row, new_key)) return false;
                auto before = index_.find(old_key);
                ModelRow row;
                for (size_t c = 0; c < m.new_row.size(); c++) {
                    const Value &v = m.new_row[c];
                    if (v.kind != ValueKind::UnchangedToast) {
                        row.push_back(ModelValue{false, {}, 0, v});
                    } else if (before == index_.end()) {
                        row.push_back(ModelValue{true, old_key, c, {}});
                    } else {
                        const Entry &e = order_[before->second];
                        if (!e.present || c >= e.row.size()) return false;
                        row.push_back(e.row[c]);
                    }
                }
                set(old_key, false, {});
                set(new_key, true, std::move(row));
                return true;
            }
            default: return false;
        }
    }

    void clear() {
        index_.clear();
        order_.clear();
    }

    // The set's net effect equals the model's state.
    void compare(const RowChangeSet &set) const {
        require(set.empty() == order_.empty(), "empty() disagrees with the keys touched");
        std::vector<const Row *> touched = set.touched_keys();
        require(touched.size() == order_.size(), "touched " + std::to_string(touched.size()) + " keys, the model " +
                                                     std::to_string(order_.size()));
        std::vector<const Entry *> present;
        for (size_t i = 0; i < order_.size(); i++) {
            require(touched[i]->size() == key_columns_.size(), "a touched key has the wrong width");
            require(key_name(*touched[i]) == order_[i].key, "touched keys differ from the model (or their order)");
            if (order_[i].present) present.push_back(&order_[i]);
        }
        std::vector<const FinalRow *> rows = set.final_rows();
        require(rows.size() == present.size(), "final rows: " + std::to_string(rows.size()) + ", the model has " +
                                                   std::to_string(present.size()));
        for (size_t i = 0; i < rows.size(); i++) {
            const FinalRow &f = *rows[i];
            bool any_unchanged = false;
            ModelRow got;
            for (size_t c = 0; c < f.row.size(); c++) {
                if (f.row[c].kind == ValueKind::UnchangedToast) {
                    any_unchanged = true;
                    got.push_back(ModelValue{true, key_name(f.base_key), c, {}});
                } else {
                    got.push_back(ModelValue{false, {}, 0, f.row[c]});
                }
            }
            require(f.needs_base == any_unchanged, "needs_base disagrees with the unchanged-TOAST markers of the row");
            require(!f.needs_base || f.base_key.size() == key_columns_.size(),
                    "a row that needs its base row has a base key of the wrong width");
            require(got == present[i]->row, "a final row differs from the model's");
        }
    }

private:
    struct Entry {
        std::string key;
        bool present = false;
        ModelRow row;
    };

    bool key_of(const Row &row, std::string &key) const {
        Row k;
        for (int c : key_columns_) {
            if (c < 0 || static_cast<size_t>(c) >= row.size() || row[c].kind == ValueKind::UnchangedToast) return false;
            k.push_back(row[c]);
        }
        key = key_name(k);
        return true;
    }

    bool old_key_of(const RowMessage &m, std::string &key) const {
        switch (m.old_kind) {
            case OldRowKind::None: return m.kind == MessageKind::Update && key_of(m.new_row, key);
            case OldRowKind::Full: return key_of(m.old_row, key);
            case OldRowKind::Key:
                if (m.old_row.size() != key_columns_.size()) return false;
                for (const Value &v : m.old_row)
                    if (v.kind == ValueKind::UnchangedToast) return false;
                key = key_name(m.old_row);
                return true;
        }
        return false;
    }

    void set(const std::string &key, bool present, ModelRow row) {
        auto it = index_.find(key);
        if (it == index_.end()) {
            it = index_.emplace(key, order_.size()).first;
            order_.push_back(Entry{key, false, {}});
        }
        order_[it->second].present = present;
        order_[it->second].row = std::move(row);
    }

    std::vector<int> key_columns_;
    std::map<std::string, size_t> index_;
    std::vector<Entry> order_;
};

}  // namespace

void check_row_changes(std::string_view input) {
    std::vector<int> key_columns{0};
    std::unique_ptr<RowChangeSet> set;
    std::unique_ptr<Model> model;
    size_t pos = 0;
    while (input.size() - pos >= 2) {
        size_t n = (static_cast<unsigned char>(input[pos]) << 8) | static_cast<unsigned char>(input[pos + 1]);
        pos += 2;
        if (n > input.size() - pos) break;
        std::string_view frame = input.substr(pos, n);
        pos += n;
        if (n == 0) {  // the end of a run: the worker flushes and starts over
            if (set) {
                model->compare(*set);
                set->clear();
                model->clear();
                model->compare(*set);
            }
            continue;
        }
        Message m;
        try {
            m = decode(frame);
        } catch (const FormatError &) {
            continue;
        }
        if (m.kind == MessageKind::Relation && !set) {
            // The key as the worker takes it: the columns the first Relation message flags.
            std::vector<int> keys;
            for (size_t i = 0; i < m.relation.columns.size(); i++)
                if (m.relation.columns[i].is_key) keys.push_back(static_cast<int>(i));
            if (!keys.empty()) key_columns = keys;
            continue;
        }
        if (m.kind != MessageKind::Insert && m.kind != MessageKind::Update && m.kind != MessageKind::Delete) continue;
        if (!set) {
            set = std::make_unique<RowChangeSet>(key_columns);
            model = std::make_unique<Model>(key_columns);
        }
        bool applies = model->apply(m.row);
        bool refused = false;
        try {
            set->add(m.row);
        } catch (const FormatError &) {
            refused = true;
        } catch (const std::exception &e) {
            violated(std::string("RowChangeSet::add threw something other than FormatError: ") + e.what());
        }
        require(refused != applies, refused ? "RowChangeSet refused a change the model applies"
                                            : "RowChangeSet took a change that cannot be applied");
    }
    if (set) model->compare(*set);
}

// ---- snapshot: CopySnapshot::parse against a reading of the grammar -------------------------

namespace {

// pg_snapshot's text form: xmin:xmax:xip,xip,... (decimal, 64-bit; PostgreSQL also takes a
// trailing comma). False when the text is not one, or a number does not fit in 64 bits.
struct ParsedSnapshot {
    uint64_t xmin = 0, xmax = 0;
    std::vector<uint64_t> xips;
};

bool read_xid(std::string_view s, size_t &pos, uint64_t &out) {
    size_t start = pos;
    out = 0;
    for (; pos < s.size() && is_digit(s[pos]); pos++) {
        uint64_t d = static_cast<uint64_t>(s[pos] - '0');
        if (out > (UINT64_MAX - d) / 10) return false;
        out = out * 10 + d;
    }
    return pos > start;
}

bool read_snapshot(std::string_view s, ParsedSnapshot &p) {
    size_t pos = 0;
    if (!read_xid(s, pos, p.xmin) || !take(s, pos, ":") || !read_xid(s, pos, p.xmax) || !take(s, pos, ":"))
        return false;
    while (pos < s.size()) {
        uint64_t x;
        if (!read_xid(s, pos, x)) return false;
        p.xips.push_back(x);
        if (pos < s.size() && !take(s, pos, ",")) return false;
    }
    return p.xmin <= p.xmax;
}

bool precedes(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

void check_snapshot(std::string_view input) {
    std::string text(input);
    ParsedSnapshot want;
    bool valid = read_snapshot(text, want);
    CopySnapshot got;
    try {
        got = CopySnapshot::parse(text);
    } catch (const FormatError &) {
        require(!valid, "a valid snapshot was refused: " + text);
        return;
    } catch (const std::exception &e) {
        violated(std::string("CopySnapshot::parse threw something other than FormatError: ") + e.what());
    }
    require(valid, "an invalid snapshot was accepted: " + text);
    require(got.xmin() == want.xmin && got.xmax() == want.xmax, "xmin or xmax read wrongly from " + text);

    // saw(): committed before xmin, or between xmin and xmax and not in progress.
    const uint32_t xmin = static_cast<uint32_t>(want.xmin), xmax = static_cast<uint32_t>(want.xmax);
    std::vector<uint32_t> probes = {xmin - 1, xmin, xmin + 1, xmax - 1, xmax, xmax + 1};
    for (uint64_t x : want.xips) {
        probes.push_back(static_cast<uint32_t>(x));
        probes.push_back(static_cast<uint32_t>(x) + 1);
    }
    for (uint32_t xid : probes) {
        bool in_progress = false;
        for (uint64_t x : want.xips) in_progress = in_progress || static_cast<uint32_t>(x) == xid;
        bool expected = precedes(xid, xmin) || (precedes(xid, xmax) && !in_progress);
        require(got.saw(xid) == expected, "saw(" + std::to_string(xid) + ") is wrong for " + text);
    }
}

const std::vector<Target> &targets() {
    static const std::vector<Target> all = {
        {"change_format", check_change_format},
        {"row_changes", check_row_changes},
        {"snapshot", check_snapshot},
    };
    return all;
}

}  // namespace sgivm::fuzz
