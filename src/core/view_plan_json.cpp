// A view's plan as the catalog stores it: plan_to_json and its inverse plan_from_json, side by
// side, so that the plan has one definition (view_plan.hpp) and nothing else parses it.
#include <cstdio>
#include <utility>

#include "core/cpp_only.hpp"
#include "core/view_plan.hpp"

namespace sgivm {

namespace {

std::string json_string(const std::string &s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': o += "\\\""; break;
            case '\\': o += "\\\\"; break;
            case '\n': o += "\\n"; break;
            case '\r': o += "\\r"; break;
            case '\t': o += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    o += buf;
                } else {
                    o += static_cast<char>(c);
                }
        }
    }
    return o + "\"";
}

std::string json_array(const std::vector<std::string> &v) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); i++) o += (i ? "," : "") + json_string(v[i]);
    return o + "]";
}

// A JSON value as far as a plan needs one: strings and numbers keep their text.
struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    std::string text;
    std::vector<JsonValue> items;
    std::vector<std::pair<std::string, JsonValue>> members;

    const JsonValue *member(const std::string &key) const {
        for (const auto &m : members)
            if (m.first == key) return &m.second;
        return nullptr;
    }
};

class JsonReader {
public:
    explicit JsonReader(const std::string &s) : s_(s) {}

    JsonValue document() {
        JsonValue v = value();
        space();
        if (i_ != s_.size()) fail("text after the value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string &what) const {
        throw PlanFormatError("view plan: " + what + " at offset " + std::to_string(i_));
    }
    void space() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
    }
    bool take(char c) {
        space();
        if (i_ < s_.size() && s_[i_] == c) {
            i_++;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("expected '") + c + "'");
    }
    void word(const char *w) {
        for (const char *p = w; *p; p++, i_++)
            if (i_ >= s_.size() || s_[i_] != *p) fail("invalid literal");
    }

    JsonValue value() {
        space();
        if (i_ >= s_.size()) fail("unexpected end");
        JsonValue v;
        char c = s_[i_];
        if (c == '{') {
            v.type = JsonValue::Type::Object;
            i_++;
            if (take('}')) return v;
            do {
                space();
                std::string key = string();
                expect(':');
                v.members.emplace_back(std::move(key), value());
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            v.type = JsonValue::Type::Array;
            i_++;
            if (take(']')) return v;
            do v.items.push_back(value());
            while (take(','));
            expect(']');
        } else if (c == '"') {
            v.type = JsonValue::Type::String;
            v.text = string();
        } else if (c == 't' || c == 'f') {
            v.type = JsonValue::Type::Bool;
            v.text = c == 't' ? "true" : "false";
            word(c == 't' ? "true" : "false");
        } else if (c == 'n') {
            word("null");
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            v.type = JsonValue::Type::Number;
            size_t from = i_;
            while (i_ < s_.size() && std::string("+-0123456789.eE").find(s_[i_]) != std::string::npos) i_++;
            v.text = s_.substr(from, i_ - from);
        } else {
            fail("unexpected character");
        }
        return v;
    }

    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        unsigned u = 0;
        for (int k = 0; k < 4; k++) {
            char h = s_[i_++];
            u <<= 4;
            if (h >= '0' && h <= '9') u |= h - '0';
            else if (h >= 'a' && h <= 'f') u |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F') u |= h - 'A' + 10;
            else fail("invalid \\u escape");
        }
        return u;
    }

    static void append_utf8(std::string &o, unsigned cp) {
        if (cp < 0x80) {
            o += static_cast<char>(cp);
        } else if (cp < 0x800) {
            o += static_cast<char>(0xC0 | (cp >> 6));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            o += static_cast<char>(0xE0 | (cp >> 12));
            o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            o += static_cast<char>(0xF0 | (cp >> 18));
            o += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            o += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    std::string string() {
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string");
        i_++;
        std::string o;
        for (;;) {
            if (i_ >= s_.size()) fail("unterminated string");
            char c = s_[i_++];
            if (c == '"') return o;
            if (c != '\\') {
                o += c;
                continue;
            }
            if (i_ >= s_.size()) fail("unterminated escape");
            char e = s_[i_++];
            // (the escapes of json_string, and those other writers use)
            static const std::string escaped = "\"\\/bfnrt", meant = "\"\\/\b\f\n\r\t";
            if (e == 'u') {
                unsigned cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                    i_ += 2;
                    unsigned low = hex4();
                    if (low < 0xDC00 || low > 0xDFFF) fail("invalid surrogate pair");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                append_utf8(o, cp);
            } else if (size_t k = escaped.find(e); k != std::string::npos) {
                o += meant[k];
            } else {
                fail("invalid escape");
            }
        }
    }

    const std::string &s_;
    size_t i_ = 0;
};

// The plan's keys, read leniently: absent or null is empty.
std::string text_at(const JsonValue &o, const char *key) {
    const JsonValue *v = o.member(key);
    if (!v || v->type == JsonValue::Type::Null) return {};
    if (v->type != JsonValue::Type::String) throw PlanFormatError(std::string("view plan: \"") + key + "\" is not a string");
    return v->text;
}

std::vector<std::string> texts_of(const JsonValue &v, const char *key) {
    if (v.type == JsonValue::Type::Null) return {};
    if (v.type == JsonValue::Type::String || v.type == JsonValue::Type::Number) return {v.text};
    if (v.type != JsonValue::Type::Array) throw PlanFormatError(std::string("view plan: \"") + key + "\" is not a list");
    std::vector<std::string> out;
    for (const JsonValue &item : v.items) {
        if (item.type != JsonValue::Type::String && item.type != JsonValue::Type::Number)
            throw PlanFormatError(std::string("view plan: \"") + key + "\" holds a value that is not a string");
        out.push_back(item.text);
    }
    return out;
}

std::vector<std::string> texts_at(const JsonValue &o, const char *key) {
    const JsonValue *v = o.member(key);
    return v ? texts_of(*v, key) : std::vector<std::string>{};
}

}  // namespace

StoredViewPlan stored_plan(const ViewShape &s, const ViewPlan &p) {
    StoredViewPlan st;
    st.kind = s.kind;
    for (const ViewInput &in : s.inputs) st.input_relids.push_back(in.relid);
    st.input_columns = s.input_columns;
    st.columns = s.columns;
    st.types = s.types;
    for (size_t i = 0; i < s.columns.size(); i++)
        if (s.audit[i]) st.audit_columns.push_back(s.columns[i]);
    st.key = s.key;
    st.deparsed = s.deparsed;
    st.plan = p;
    return st;
}

std::string plan_to_json(const ViewShape &s, const ViewPlan &p) { return plan_to_json(stored_plan(s, p)); }

std::string plan_to_json(const StoredViewPlan &s) {
    const ViewPlan &p = s.plan;
    std::string o = "{";
    o += "\"kind\":" + json_string(s.kind == ViewShape::Kind::Projection ? "projection" : "aggregate");
    o += ",\"input_relids\":[";
    for (size_t i = 0; i < s.input_relids.size(); i++) o += (i ? "," : "") + std::to_string(s.input_relids[i]);
    o += "]";
    o += ",\"input_columns\":[";
    for (size_t i = 0; i < s.input_columns.size(); i++) o += (i ? "," : "") + json_array(s.input_columns[i]);
    o += "]";
    o += ",\"columns\":" + json_array(s.columns);
    o += ",\"types\":" + json_array(s.types);
    o += ",\"audit_columns\":" + json_array(s.audit_columns);
    o += ",\"key\":" + json_array(s.key);
    o += ",\"deparsed\":" + json_string(s.deparsed);
    o += ",\"setup\":" + json_array(p.setup);
    o += ",\"fill_affected\":" + json_string(p.fill_affected);
    if (!p.compute.empty()) {
        o += ",\"compute\":" + json_string(p.compute);
        o += ",\"replace_remove\":" + json_array(p.replace_remove);
        o += ",\"replace_insert\":" + json_string(p.replace_insert);
        o += ",\"update\":" + json_array(p.update);
    }
    o += ",\"remove\":" + json_array(p.remove);
    o += ",\"recompute\":" + json_string(p.recompute);
    // (an object: workers of 0.2.0 read the plan's top-level keys only)
    o += ",\"uncaptured\":{\"remove\":" + json_array(p.uncaptured.remove) +
         ",\"recompute\":" + json_string(p.uncaptured.recompute);
    if (!p.compute.empty()) {
        o += ",\"update\":" + json_array(p.uncaptured.update);
        o += ",\"replace_remove\":" + json_array(p.uncaptured.replace_remove);
        o += ",\"replace_insert\":" + json_string(p.uncaptured.replace_insert);
    }
    o += "}";
    o += ",\"populate\":" + json_string(p.populate);
    o += ",\"verify\":" + json_string(p.verify);
    o += ",\"indexes\":" + json_array(p.indexes);
    o += ",\"strategy\":" + json_string(p.strategy);
    o += ",\"strategy_reason\":" + json_string(p.strategy_reason);
    if (!p.state_tables.empty()) {
        o += ",\"state_tables\":" + json_array(p.state_tables);
        o += ",\"state_setup\":" + json_array(p.state_setup);
        o += ",\"state_fill\":" + json_array(p.state_fill);
        o += ",\"state_apply\":" + json_array(p.state_apply);
    }
    return o + "}";
}

StoredViewPlan plan_from_json(const std::string &json) {
    JsonValue o = JsonReader(json).document();
    if (o.type != JsonValue::Type::Object) throw PlanFormatError("view plan: not a JSON object");
    StoredViewPlan s;
    std::string kind = text_at(o, "kind");
    if (kind == "aggregate") s.kind = ViewShape::Kind::Aggregate;
    else if (kind == "projection" || kind.empty()) s.kind = ViewShape::Kind::Projection;
    else throw PlanFormatError("view plan: unknown kind \"" + kind + "\"");
    for (const std::string &relid : texts_at(o, "input_relids")) {
        if (relid.empty() || relid.find_first_not_of("0123456789") != std::string::npos || relid.size() > 10)
            throw PlanFormatError("view plan: input relid \"" + relid + "\" is not an OID");
        s.input_relids.push_back(static_cast<uint32_t>(std::stoul(relid)));
    }
    if (const JsonValue *cols = o.member("input_columns")) {
        if (cols->type == JsonValue::Type::Array)
            for (const JsonValue &c : cols->items) s.input_columns.push_back(texts_of(c, "input_columns"));
        else if (cols->type != JsonValue::Type::Null)
            throw PlanFormatError("view plan: \"input_columns\" is not a list");
    }
    s.columns = texts_at(o, "columns");
    s.types = texts_at(o, "types");
    s.audit_columns = texts_at(o, "audit_columns");
    s.key = texts_at(o, "key");
    s.deparsed = text_at(o, "deparsed");
    ViewPlan &p = s.plan;
    p.setup = texts_at(o, "setup");
    p.fill_affected = text_at(o, "fill_affected");
    p.compute = text_at(o, "compute");
    p.replace_remove = texts_at(o, "replace_remove");
    p.replace_insert = text_at(o, "replace_insert");
    p.update = texts_at(o, "update");
    p.remove = texts_at(o, "remove");
    p.recompute = text_at(o, "recompute");
    if (const JsonValue *nc = o.member("uncaptured")) {
        if (nc->type == JsonValue::Type::Object) {
            p.uncaptured.update = texts_at(*nc, "update");
            p.uncaptured.remove = texts_at(*nc, "remove");
            p.uncaptured.replace_remove = texts_at(*nc, "replace_remove");
            p.uncaptured.recompute = text_at(*nc, "recompute");
            p.uncaptured.replace_insert = text_at(*nc, "replace_insert");
        } else if (nc->type != JsonValue::Type::Null) {
            throw PlanFormatError("view plan: \"uncaptured\" is not an object");
        }
    }
    p.populate = text_at(o, "populate");
    p.verify = text_at(o, "verify");
    p.indexes = texts_at(o, "indexes");
    p.strategy = text_at(o, "strategy");
    p.strategy_reason = text_at(o, "strategy_reason");
    p.state_tables = texts_at(o, "state_tables");
    p.state_setup = texts_at(o, "state_setup");
    p.state_fill = texts_at(o, "state_fill");
    p.state_apply = texts_at(o, "state_apply");
    return s;
}

}  // namespace sgivm
