// One ODS mirror as the worker applies to it: the mapping of the stream's columns onto the
// mirror's, the prepared set-at-a-time statements, and the pending changes of the batch.
#pragma once

extern "C" {
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
}

#include <memory>
#include <string>
#include <vector>

#include "core/change_format.hpp"
#include "core/row_changes.hpp"

namespace sgivm::pg {

struct MirrorColumn {
    std::string name;
    bool is_key = false;
    AttrNumber mirror_attnum = 0;
    Oid type = InvalidOid;  // the mirror column's type
    int32 typmod = -1;
    Oid array_type = InvalidOid;
    int16 typlen = 0;
    bool typbyval = false;
    char typalign = 'i';
    bool raw_text = false;  // text/varchar: bytes go in as they are
    FmgrInfo input;
    Oid ioparam = InvalidOid;
};

class MirrorTable {
public:
    MirrorTable(Oid source_relid, Oid mirror_relid, std::string source_name);
    ~MirrorTable();

    Oid source_relid() const { return source_relid_; }
    const std::string &source_name() const { return source_name_; }

    // The stream described the source's columns: map them onto the mirror (adding columns the
    // source gained), prepare statements. Cheap when nothing changed.
    void describe(const RelationMessage &rel);
    bool described() const { return changes_ != nullptr; }

    // Columns of the mirror the stream no longer has (dropped or renamed in the source).
    const std::vector<std::string> &stream_lacks() const { return stream_lacks_; }
    // Columns whose type in the stream differs from the mirror's (retyped in the source).
    struct RetypedColumn {
        std::string name, mirror_type, stream_type;
    };
    const std::vector<RetypedColumn> &stream_retyped() const { return stream_retyped_; }

    // After an aborted batch: drop its pending changes; the next relation message re-describes,
    // and the delta table is made again (the abort may have undone its creation).
    void forget_stream();

    void add(const RowMessage &m);
    size_t pending() const { return changes_ ? changes_->changes() : 0; }
    size_t pending_bytes() const { return changes_ ? changes_->bytes() : 0; }
    // Applies the pending changes: delete touched keys, insert final rows. Needs an open
    // transaction with SPI connected, running as the pipeline owner.
    void flush();
    void truncate();

    // Keep the old and new rows of every change in pg_temp.sgivm_delta_<mirror> for the
    // views that read this mirror.
    void set_capture(bool on);
    bool capture() const { return capture_; }
    // Creates the delta table once per session (a batch that touches no temporary table
    // writes no WAL).
    void ensure_delta_table();
    Oid mirror_relid() const { return mirror_relid_; }
    uint64_t captured = 0;  // rows written to the delta table in this batch

private:
    void prepare_statements();
    void free_plans();
    void convert_for_input(std::vector<FinalRow *> &rows);

    Oid source_relid_;
    Oid mirror_relid_;
    std::string source_name_;
    std::string mirror_sql_name_;
    RelationMessage described_;
    std::vector<MirrorColumn> cols_;
    std::vector<int> key_cols_;  // indexes into cols_
    std::unique_ptr<RowChangeSet> changes_;
    SPIPlanPtr insert_plan_ = nullptr;
    SPIPlanPtr delete_plan_ = nullptr;
    SPIPlanPtr base_plan_ = nullptr;
    SPIPlanPtr truncate_plan_ = nullptr;
    std::vector<std::string> stream_lacks_;
    std::vector<RetypedColumn> stream_retyped_;
    bool capture_ = false;
    bool delta_stale_ = false;           // the mirror gained columns: recreate the delta table
    bool delta_ready_ = false;           // the delta table exists in this session
    MemoryContext cxt_ = nullptr;        // column input functions
    MemoryContext flush_cxt_ = nullptr;  // reset after every flush
};


}  // namespace sgivm::pg
