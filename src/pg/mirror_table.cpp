// Applies the net changes of a batch to one ODS mirror with three prepared statements:
// DELETE the touched keys (= ANY of an array), INSERT the final rows (unnest of one array per
// column), and, only for rows whose TOASTed values the stream left out, a lookup of the old
// value by key. Values become Datums with the mirror column's type.
#include "pg/mirror_table.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/syscache.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include "core/view_plan.hpp"
#include "pg/seam.hpp"

namespace sgivm::pg {

MirrorTable::MirrorTable(Oid source_relid, Oid mirror_relid, std::string source_name)
    : source_relid_(source_relid), mirror_relid_(mirror_relid), source_name_(std::move(source_name)) {
    pg_call([&] {
        cxt_ = AllocSetContextCreate(TopMemoryContext, "stategrid_ivm mirror", ALLOCSET_SMALL_SIZES);
        flush_cxt_ = AllocSetContextCreate(TopMemoryContext, "stategrid_ivm flush", ALLOCSET_DEFAULT_SIZES);
    });
}

MirrorTable::~MirrorTable() {
    // Destructors never raise: free what PostgreSQL allocated, ignoring its errors.
    try {
        free_plans();
        pg_call([&] {
            MemoryContextDelete(cxt_);
            MemoryContextDelete(flush_cxt_);
        });
    } catch (...) {
    }
}

void MirrorTable::free_plans() {
    pg_call([&] {
        for (SPIPlanPtr *p : {&insert_plan_, &delete_plan_, &base_plan_, &truncate_plan_}) {
            if (*p) SPI_freeplan(*p);
            *p = nullptr;
        }
    });
}

void MirrorTable::describe(const RelationMessage &rel) {
    if (changes_ && rel.columns == described_.columns) return;
    if (pending()) flush();

    // Which of the stream's columns does the mirror have? Add the ones the source gained.
    std::vector<std::string> missing;
    auto mirror_columns = [&]() {
        std::vector<std::pair<std::string, AttrNumber>> names;
        char *nsp = nullptr, *relname = nullptr;
        List *atts = NIL;
        pg_call([&] {
            Relation r = table_open(mirror_relid_, AccessShareLock);
            nsp = get_namespace_name(RelationGetNamespace(r));
            relname = pstrdup(RelationGetRelationName(r));
            TupleDesc d = RelationGetDescr(r);
            for (int i = 0; i < d->natts; i++) {
                Form_pg_attribute a = TupleDescAttr(d, i);
                if (!a->attisdropped && !a->attgenerated) atts = lappend_int(atts, a->attnum);
            }
            table_close(r, AccessShareLock);
        });
        mirror_sql_name_ = quote_identifier(nsp) + "." + quote_identifier(relname);
        ListCell *lc;
        foreach (lc, atts) {
            AttrNumber n = static_cast<AttrNumber>(lfirst_int(lc));
            char *name = pg_call([&] { return get_attname(mirror_relid_, n, false); });
            names.emplace_back(name, n);
        }
        return names;
    };
    auto names = mirror_columns();
    auto find = [&](const std::string &n) -> AttrNumber {
        for (auto &p : names)
            if (p.first == n) return p.second;
        return 0;
    };
    std::string alter;
    for (const Column &c : rel.columns) {
        if (find(c.name)) continue;
        char *type = pg_call([&] { return format_type_with_typemod(c.type_oid, c.typmod); });
        alter += std::string(alter.empty() ? "" : ", ") + "ADD COLUMN " + quote_identifier(c.name) + " " + type;
    }
    if (!alter.empty()) {
        std::string sql = "ALTER TABLE " + mirror_sql_name_ + " " + alter;
        pg_call([&] {
            if (SPI_execute(sql.c_str(), false, 0) != SPI_OK_UTILITY)
                elog(ERROR, "stategrid_ivm: could not add columns to %s", mirror_sql_name_.c_str());
        });
        names = mirror_columns();
        delta_stale_ = true;
    }

    stream_lacks_.clear();
    for (auto &p : names) {
        bool in_stream = false;
        for (const Column &c : rel.columns) in_stream = in_stream || c.name == p.first;
        if (!in_stream) stream_lacks_.push_back(p.first);
    }
    cols_.clear();
    key_cols_.clear();
    std::vector<int> key_positions;
    for (size_t i = 0; i < rel.columns.size(); i++) {
        const Column &c = rel.columns[i];
        MirrorColumn m;
        m.name = c.name;
        m.is_key = c.is_key;
        m.mirror_attnum = find(c.name);
        cols_.push_back(std::move(m));
        if (c.is_key) {
            key_cols_.push_back(static_cast<int>(i));
            key_positions.push_back(static_cast<int>(i));
        }
    }
    if (key_cols_.empty())
        throw std::runtime_error("source table " + source_name_ + " has no replica identity key in the stream");
    pg_call([&] {
        MemoryContextReset(cxt_);
        for (MirrorColumn &m : cols_) {
            HeapTuple tp = SearchSysCacheAttNum(mirror_relid_, m.mirror_attnum);
            if (!HeapTupleIsValid(tp))
                elog(ERROR, "stategrid_ivm: column %s of %s disappeared", m.name.c_str(), mirror_sql_name_.c_str());
            Form_pg_attribute a = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tp));
            m.type = a->atttypid;
            m.typmod = a->atttypmod;
            ReleaseSysCache(tp);
            m.array_type = get_array_type(m.type);
            if (!OidIsValid(m.array_type))
                ereport(ERROR, (errmsg("stategrid_ivm: type %s of column %s has no array type",
                                       format_type_be(m.type), m.name.c_str())));
            get_typlenbyvalalign(m.type, &m.typlen, &m.typbyval, &m.typalign);
            m.raw_text = m.type == TEXTOID || m.type == VARCHAROID;
            Oid func;
            getTypeInputInfo(m.type, &func, &m.ioparam);
            fmgr_info_cxt(func, &m.input, cxt_);
        }
    });
    // Columns whose type the source changed (ALTER COLUMN ... TYPE): their values would go in
    // through the mirror's old type, rounded or refused. The worker stops and names them.
    stream_retyped_.clear();
    for (size_t i = 0; i < cols_.size(); i++) {
        const Column &c = rel.columns[i];
        const MirrorColumn &m = cols_[i];
        if (c.type_oid == m.type && (m.typmod == -1 || c.typmod == m.typmod)) continue;
        char *was = pg_call([&] { return format_type_with_typemod(m.type, m.typmod); });
        char *now = pg_call([&] { return format_type_with_typemod(c.type_oid, c.typmod); });
        stream_retyped_.push_back(RetypedColumn{m.name, was, now});
    }
    described_ = rel;
    changes_ = std::make_unique<RowChangeSet>(key_positions);
    prepare_statements();
}

void MirrorTable::prepare_statements() {
    free_plans();
    std::string collist, params, keycond, basecols;
    std::vector<Oid> types;
    for (size_t i = 0; i < cols_.size(); i++) {
        collist += (i ? ", " : "") + quote_identifier(cols_[i].name);
        params += (i ? ", $" : "$") + std::to_string(i + 1);
        types.push_back(cols_[i].array_type);
    }
    std::string insert_sql = "INSERT INTO " + mirror_sql_name_ + " (" + collist + ") SELECT * FROM unnest(" + params + ")";

    std::string delete_sql;
    std::vector<Oid> key_types, key_array_types;
    if (key_cols_.size() == 1) {
        const MirrorColumn &k = cols_[key_cols_[0]];
        delete_sql = "DELETE FROM " + mirror_sql_name_ + " WHERE " + quote_identifier(k.name) + " = ANY($1)";
    } else {
        std::string kp, kn, cond;
        for (size_t i = 0; i < key_cols_.size(); i++) {
            const MirrorColumn &k = cols_[key_cols_[i]];
            kp += (i ? ", $" : "$") + std::to_string(i + 1);
            kn += (i ? ", k" : "k") + std::to_string(i + 1);
            cond += std::string(i ? " AND " : "") + "m." + quote_identifier(k.name) + " = k.k" + std::to_string(i + 1);
        }
        delete_sql = "DELETE FROM " + mirror_sql_name_ + " m USING unnest(" + kp + ") AS k(" + kn + ") WHERE " + cond;
    }
    std::string base_sql = "SELECT " + collist + " FROM " + mirror_sql_name_ + " WHERE ";
    for (size_t i = 0; i < key_cols_.size(); i++) {
        const MirrorColumn &k = cols_[key_cols_[i]];
        base_sql += std::string(i ? " AND " : "") + quote_identifier(k.name) + " = $" + std::to_string(i + 1);
        key_types.push_back(k.type);
        key_array_types.push_back(k.array_type);
    }
    std::string truncate_sql = "DELETE FROM " + mirror_sql_name_;
    if (capture_) {
        ensure_delta_table();
        std::string delta = delta_table(mirror_relid_);
        // (the mirror's columns only: RETURNING * of the DELETE by a composite key would add
        // the key list's)
        // (with their sign: -1 for the rows removed, +1 for those added)
        auto wrap = [&](const std::string &modify, int sign, const char *returning = "*") {
            return "WITH sgivm_changed AS (" + modify + " RETURNING " + returning + ") INSERT INTO " + delta +
                   " SELECT *, " + std::to_string(sign) + " FROM sgivm_changed";
        };
        insert_sql = wrap(insert_sql, 1);
        delete_sql = wrap(delete_sql, -1, key_cols_.size() == 1 ? "*" : "m.*");
        truncate_sql = wrap(truncate_sql, -1);
    }

    pg_call([&] {
        // Custom plans always: a generic plan for "key = ANY($1)" over a small, analysed mirror
        // is a sequential scan, and then each flush compares every row with every key.
        auto prep = [](const std::string &sql, int n, Oid *t) {
            SPIPlanPtr p = SPI_prepare_cursor(sql.c_str(), n, t, CURSOR_OPT_CUSTOM_PLAN);
            if (!p) elog(ERROR, "stategrid_ivm: could not prepare \"%s\": %s", sql.c_str(), SPI_result_code_string(SPI_result));
            SPI_keepplan(p);
            return p;
        };
        insert_plan_ = prep(insert_sql, static_cast<int>(types.size()), types.data());
        delete_plan_ = prep(delete_sql, static_cast<int>(key_array_types.size()), key_array_types.data());
        base_plan_ = prep(base_sql, static_cast<int>(key_types.size()), key_types.data());
        truncate_plan_ = prep(truncate_sql, 0, nullptr);
    });
}

void MirrorTable::add(const RowMessage &m) { changes_->add(m); }

void MirrorTable::forget_stream() {
    delta_ready_ = false;
    changes_.reset();
    stream_lacks_.clear();
    stream_retyped_.clear();
}

void MirrorTable::set_capture(bool on) {
    if (on == capture_) return;
    if (pending()) flush();
    capture_ = on;
    if (changes_) prepare_statements();
}

void MirrorTable::ensure_delta_table() {
    if (!capture_ || (delta_ready_ && !delta_stale_)) return;
    if (mirror_sql_name_.empty()) {
        mirror_sql_name_ = pg_call([&] {
            return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(mirror_relid_)),
                                                          get_rel_name(mirror_relid_)));
        });
    }
    std::string name = delta_table(mirror_relid_);
    std::string drop = "DROP TABLE IF EXISTS " + name;
    std::string create = delta_table_ddl(mirror_relid_, mirror_sql_name_);
    bool stale = delta_stale_;
    pg_call([&] {
        if (stale && SPI_execute(drop.c_str(), false, 0) != SPI_OK_UTILITY) elog(ERROR, "stategrid_ivm: %s failed", drop.c_str());
        if (SPI_execute(create.c_str(), false, 0) != SPI_OK_UTILITY) elog(ERROR, "stategrid_ivm: %s failed", create.c_str());
    });
    delta_stale_ = false;
    delta_ready_ = true;
}

namespace {

// Does the value travel in a form that goes straight into a Datum of this type?
bool direct(const Value &v, Oid type) {
    switch (v.kind) {
        case ValueKind::Null:
        case ValueKind::UnchangedToast:
        case ValueKind::Text: return true;
        case ValueKind::Int32: return type == INT4OID || type == INT2OID || type == INT8OID;
        case ValueKind::Int64: return type == INT8OID;
        case ValueKind::Timestamp: return type == TIMESTAMPOID;
        case ValueKind::TimestampTz: return type == TIMESTAMPTZOID;
        case ValueKind::Date: return type == DATEOID;
    }
    return false;
}

// PostgreSQL-side conversion; no C++ objects are created here.
Datum to_datum(const Value &v, MirrorColumn &c, bool *isnull) {
    *isnull = false;
    switch (v.kind) {
        case ValueKind::Null:
        case ValueKind::UnchangedToast: *isnull = true; return (Datum)0;
        case ValueKind::Int32:
            if (c.type == INT2OID) return Int16GetDatum(static_cast<int16>(v.integer));
            if (c.type == INT8OID) return Int64GetDatum(v.integer);
            return Int32GetDatum(static_cast<int32>(v.integer));
        case ValueKind::Int64: return Int64GetDatum(v.integer);
        case ValueKind::Timestamp: return TimestampGetDatum(v.integer);
        case ValueKind::TimestampTz: return TimestampTzGetDatum(v.integer);
        case ValueKind::Date: return DateADTGetDatum(static_cast<DateADT>(v.integer));
        case ValueKind::Text:
            if (c.raw_text) return PointerGetDatum(cstring_to_text_with_len(v.text.data(), static_cast<int>(v.text.size())));
            return InputFunctionCall(&c.input, const_cast<char *>(v.text.c_str()), c.ioparam, c.typmod);
    }
    *isnull = true;
    return (Datum)0;
}

Datum build_array(Datum *elems, bool *nulls, int n, const MirrorColumn &c) {
    int dims[1] = {n};
    int lbs[1] = {1};
    return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, c.type, c.typlen, c.typbyval, c.typalign));
}

}  // namespace

void MirrorTable::convert_for_input(std::vector<FinalRow *> &rows) {
    for (FinalRow *r : rows)
        for (size_t c = 0; c < r->row.size() && c < cols_.size(); c++)
            if (!direct(r->row[c], cols_[c].type)) r->row[c] = Value::of_text(input_text(r->row[c]));
}

void MirrorTable::flush() {
    if (!pending()) return;
    std::vector<const Row *> keys = changes_->touched_keys();
    std::vector<FinalRow *> rows = changes_->final_rows();
    for (const Row *k : keys)
        for (size_t i = 0; i < k->size(); i++)
            if (!direct((*k)[i], cols_[key_cols_[i]].type))
                throw std::runtime_error("key of " + source_name_ + " travelled in a form the mirror's key type cannot take");
    convert_for_input(rows);
    for (FinalRow *r : rows)
        if (r->row.size() != cols_.size())
            throw std::runtime_error("a row of " + source_name_ + " has " + std::to_string(r->row.size()) +
                                     " columns, its relation " + std::to_string(cols_.size()));

    const int ncols = static_cast<int>(cols_.size());
    const int nkeys = static_cast<int>(key_cols_.size());
    const int nrows = static_cast<int>(rows.size());
    const int ntouched = static_cast<int>(keys.size());
    pg_call([&] {
        MemoryContext old = MemoryContextSwitchTo(flush_cxt_);
        // 1. Old values the stream left out (unchanged TOAST): read them before the delete.
        Datum *base = nullptr;
        bool *base_null = nullptr;
        for (int r = 0; r < nrows; r++) {
            if (!rows[r]->needs_base) continue;
            if (!base) {
                base = static_cast<Datum *>(palloc0(sizeof(Datum) * nrows * ncols));
                base_null = static_cast<bool *>(palloc0(sizeof(bool) * nrows * ncols));
            }
            Datum kv[INDEX_MAX_KEYS];
            char kn[INDEX_MAX_KEYS];
            for (int k = 0; k < nkeys; k++) {
                bool isnull;
                kv[k] = to_datum(rows[r]->base_key[k], cols_[key_cols_[k]], &isnull);
                kn[k] = isnull ? 'n' : ' ';
            }
            int rc = SPI_execute_plan(base_plan_, kv, kn, true, 1);
            MemoryContextSwitchTo(flush_cxt_);  // SPI returns in its procedure context
            if (rc != SPI_OK_SELECT || SPI_processed != 1)
                ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
                                errmsg("stategrid_ivm: the old row of an UPDATE to %s is missing from its mirror %s",
                                       source_name_.c_str(), mirror_sql_name_.c_str()),
                                errdetail("The update kept a TOASTed value the stream does not repeat."),
                                errhint("Repair the mirror by dropping and re-creating the pipeline.")));
            for (int c = 0; c < ncols; c++) {
                bool isnull;
                Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, c + 1, &isnull);
                base_null[r * ncols + c] = isnull;
                base[r * ncols + c] = isnull ? (Datum)0 : datumCopy(d, cols_[c].typbyval, cols_[c].typlen);
            }
            SPI_freetuptable(SPI_tuptable);
        }

        // 2. Remove every touched key.
        Datum kparams[INDEX_MAX_KEYS];
        for (int k = 0; k < nkeys; k++) {
            Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * Max(ntouched, 1)));
            bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * Max(ntouched, 1)));
            for (int i = 0; i < ntouched; i++) elems[i] = to_datum((*keys[i])[k], cols_[key_cols_[k]], &nulls[i]);
            kparams[k] = build_array(elems, nulls, ntouched, cols_[key_cols_[k]]);
        }
        int rc = SPI_execute_plan(delete_plan_, kparams, nullptr, false, 0);
        // SPI returns in its procedure context, which lives until the apply transaction ends:
        // the insert's arrays below must go to the flush context (one large source transaction
        // used to leave ~280 bytes per row there; test/t/040_large_transaction_memory.pl).
        MemoryContextSwitchTo(flush_cxt_);
        captured += capture_ ? SPI_processed : 0;
        if (rc != (capture_ ? SPI_OK_INSERT : SPI_OK_DELETE)) elog(ERROR, "stategrid_ivm: delete from %s failed: %s", mirror_sql_name_.c_str(), SPI_result_code_string(rc));

        // 3. Insert the rows as they are now.
        if (nrows > 0) {
            Datum *params = static_cast<Datum *>(palloc(sizeof(Datum) * ncols));
            for (int c = 0; c < ncols; c++) {
                Datum *elems = static_cast<Datum *>(palloc(sizeof(Datum) * nrows));
                bool *nulls = static_cast<bool *>(palloc(sizeof(bool) * nrows));
                for (int r = 0; r < nrows; r++) {
                    const Value &v = rows[r]->row[c];
                    if (v.kind == ValueKind::UnchangedToast && base) {
                        elems[r] = base[r * ncols + c];
                        nulls[r] = base_null[r * ncols + c];
                    } else {
                        elems[r] = to_datum(v, cols_[c], &nulls[r]);
                    }
                }
                params[c] = build_array(elems, nulls, nrows, cols_[c]);
            }
            rc = SPI_execute_plan(insert_plan_, params, nullptr, false, 0);
            captured += capture_ ? SPI_processed : 0;
            if (rc != SPI_OK_INSERT) elog(ERROR, "stategrid_ivm: insert into %s failed: %s", mirror_sql_name_.c_str(), SPI_result_code_string(rc));
        }
        MemoryContextSwitchTo(old);
        MemoryContextReset(flush_cxt_);
    });
    changes_->clear();
}

void MirrorTable::truncate() {
    if (pending()) flush();
    if (!truncate_plan_) throw std::runtime_error("TRUNCATE of " + source_name_ + " before its relation message");
    pg_call([&] {
        int rc = SPI_execute_plan(truncate_plan_, nullptr, nullptr, false, 0);
        captured += capture_ ? SPI_processed : 0;
        if (rc != (capture_ ? SPI_OK_INSERT : SPI_OK_DELETE)) elog(ERROR, "stategrid_ivm: could not empty %s", mirror_sql_name_.c_str());
    });
}

}  // namespace sgivm::pg
