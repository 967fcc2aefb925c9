// Folds a sequence of INSERT/UPDATE/DELETE messages of one table into their net effect per key,
// resolving unchanged TOAST values against earlier changes of the same run where possible.
#include "core/row_changes.hpp"

#include "core/cpp_only.hpp"

namespace sgivm {

namespace {

// Heap memory of a row: its values, and text that does not fit in a string's own buffer.
size_t row_bytes(const Row &r) {
    size_t n = r.capacity() * sizeof(Value);
    for (const Value &v : r)
        if (v.text.capacity() > std::string().capacity()) n += v.text.capacity() + 1;
    return n;
}

// A node of the key index (next pointer, cached hash, the key's string, its position) and its
// bucket.
constexpr size_t kIndexEntry = 3 * sizeof(void *) + sizeof(std::string) + sizeof(size_t) + sizeof(void *);

}  // namespace

std::string RowChangeSet::key_bytes(const Row &key) const {
    key_encoder_.clear();
    for (const Value &v : key) key_encoder_.value(v);
    return key_encoder_.bytes();
}

Row RowChangeSet::key_of(const Row &full_row) const {
    Row k;
    k.reserve(key_columns_.size());
    for (int c : key_columns_) {
        if (c < 0 || static_cast<size_t>(c) >= full_row.size())
            throw FormatError("row has fewer columns than its key needs");
        if (full_row[c].kind == ValueKind::UnchangedToast)
            throw FormatError("key column carries an unchanged-TOAST marker");
        k.push_back(full_row[c]);
    }
    return k;
}

Row RowChangeSet::old_key_of(const RowMessage &m) const {
    switch (m.old_kind) {
        case OldRowKind::None: return key_of(m.new_row);
        case OldRowKind::Full: return key_of(m.old_row);
        case OldRowKind::Key:
            if (m.old_row.size() != key_columns_.size())
                throw FormatError("old key has " + std::to_string(m.old_row.size()) + " values, the key has " +
                                  std::to_string(key_columns_.size()) + " columns");
            return m.old_row;
    }
    throw FormatError("unknown old row kind");
}

RowChangeSet::KeyState &RowChangeSet::state_for(const Row &key) {
    std::string b = key_bytes(key);
    auto it = index_.find(b);
    if (it != index_.end()) return order_[it->second];
    // (order_'s capacity may be twice its size)
    bytes_ += 2 * sizeof(KeyState) + kIndexEntry + b.size() + row_bytes(key);
    index_.emplace(std::move(b), order_.size());
    KeyState s;
    s.key = key;
    order_.push_back(std::move(s));
    return order_.back();
}

void RowChangeSet::add(const RowMessage &m) {
    changes_++;
    // (a row replaced later in the run is still counted: the estimate errs on the high side)
    bytes_ += row_bytes(m.new_row);
    switch (m.kind) {
        case MessageKind::Insert: {
            KeyState &s = state_for(key_of(m.new_row));
            s.present = true;
            s.final = FinalRow{m.new_row, false, {}};
            break;
        }
        case MessageKind::Delete: {
            KeyState &s = state_for(old_key_of(m));
            s.present = false;
            s.final = FinalRow{};
            break;
        }
        case MessageKind::Update: {
            Row old_key = old_key_of(m);
            Row new_key = key_of(m.new_row);
            FinalRow next{m.new_row, false, {}};
            // Where does an unchanged value come from: an earlier change of this run, or the
            // mirror as it was before the run?
            bool known = index_.count(key_bytes(old_key)) > 0;
            const KeyState *prev = known ? &state_for(old_key) : nullptr;
            for (size_t c = 0; c < next.row.size(); c++) {
                if (next.row[c].kind != ValueKind::UnchangedToast) continue;
                if (prev && prev->present && c < prev->final.row.size()) {
                    next.row[c] = prev->final.row[c];
                    if (next.row[c].kind == ValueKind::UnchangedToast) {
                        next.needs_base = true;
                        next.base_key = prev->final.base_key;
                    }
                } else if (prev && prev->present) {
                    // e.g. a column added since: its earlier version has no value to keep
                    throw FormatError("unchanged-TOAST marker for column " + std::to_string(c + 1) +
                                      ", which the row's earlier version in the run does not have");
                } else if (prev) {
                    // the row was deleted earlier in the run: an UPDATE cannot follow
                    throw FormatError("update of a row deleted earlier in the same run");
                } else {
                    next.needs_base = true;
                    next.base_key = old_key;
                }
            }
            KeyState &o = state_for(old_key);
            o.present = false;
            o.final = FinalRow{};
            KeyState &n = state_for(new_key);
            n.present = true;
            n.final = std::move(next);
            break;
        }
        default: throw FormatError("not a row change");
    }
}

void RowChangeSet::clear() {
    index_.clear();
    order_.clear();
    changes_ = 0;
    bytes_ = 0;
}

std::vector<const Row *> RowChangeSet::touched_keys() const {
    std::vector<const Row *> keys;
    keys.reserve(order_.size());
    for (const KeyState &s : order_) keys.push_back(&s.key);
    return keys;
}

std::vector<const FinalRow *> RowChangeSet::final_rows() const {
    std::vector<const FinalRow *> rows;
    rows.reserve(order_.size());
    for (const KeyState &s : order_)
        if (s.present) rows.push_back(&s.final);
    return rows;
}

}  // namespace sgivm

namespace sgivm {

std::vector<FinalRow *> RowChangeSet::final_rows() {
    std::vector<FinalRow *> rows;
    rows.reserve(order_.size());
    for (KeyState &s : order_)
        if (s.present) rows.push_back(&s.final);
    return rows;
}

}  // namespace sgivm
