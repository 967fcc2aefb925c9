// The net effect of a run of row changes on one table, keyed by primary key: what the apply
// step deletes and inserts so that a mirror moves from its old state to the new one at once.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/change_format.hpp"

namespace sgivm {

// A row that exists after the run. Values still marked UnchangedToast must be copied from the
// mirror's row with key base_key as it was before the run.
struct FinalRow {
    Row row;
    bool needs_base = false;
    Row base_key;
};

class RowChangeSet {
public:
    // key_columns: positions of the key in a full row, ascending (as the relation message
    // marks them); old keys of kind Key list exactly these columns in this order.
    explicit RowChangeSet(std::vector<int> key_columns) : key_columns_(std::move(key_columns)) {}

    void add(const RowMessage &m);
    void clear();
    bool empty() const { return order_.empty(); }
    size_t changes() const { return changes_; }
    // About how much memory the run holds (rows, keys, index; never less than it holds): the
    // apply step flushes on it too, so that wide rows or a large batch_size cannot make one
    // large source transaction grow the worker.
    size_t bytes() const { return bytes_; }

    // Every key touched by the run: the apply step removes these rows first...
    std::vector<const Row *> touched_keys() const;
    // ...then inserts these, in the order their keys were first touched.
    std::vector<const FinalRow *> final_rows() const;
    std::vector<FinalRow *> final_rows();

    const std::vector<int> &key_columns() const { return key_columns_; }

private:
    struct KeyState {
        Row key;
        bool present = false;  // after the run
        FinalRow final;
    };

    Row key_of(const Row &full_row) const;
    Row old_key_of(const RowMessage &m) const;
    KeyState &state_for(const Row &key);
    std::string key_bytes(const Row &key) const;

    std::vector<int> key_columns_;
    std::unordered_map<std::string, size_t> index_;
    std::vector<KeyState> order_;
    size_t changes_ = 0;
    size_t bytes_ = 0;
    mutable Encoder key_encoder_;
};

}  // namespace sgivm
