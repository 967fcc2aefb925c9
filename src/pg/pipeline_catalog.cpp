// The pipeline worker's catalog operations (pipeline_catalog.hpp): each one statement, run with
// the bootstrap superuser's rights, its row read as binary values into a typed struct.
#include "pg/pipeline_catalog.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
}

#include <type_traits>

#include "pg/seam.hpp"

namespace sgivm::pg {

namespace {

// Runs f with the bootstrap superuser's rights (slot functions, our catalog), then returns to
// the pipeline owner. The search_path is pinned meanwhile: a function or operator that the
// owner's code could have put on the session's path must not be what our catalog queries
// call. The security context and the setting are restored by the transaction abort on error.
template <typename F>
auto as_superuser(F &&f) {
    Oid saved_user;
    int saved_ctx;
    GetUserIdAndSecContext(&saved_user, &saved_ctx);
    int guc_level = NewGUCNestLevel();
    SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, saved_ctx | SECURITY_LOCAL_USERID_CHANGE);
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
                            0, false);
    auto restore = [&] {
        AtEOXact_GUC(true, guc_level);
        SetUserIdAndSecContext(saved_user, saved_ctx);
    };
    if constexpr (std::is_void_v<decltype(f())>) {
        f();
        restore();
    } else {
        auto r = f();
        restore();
        return r;
    }
}

// One catalog statement: its parameters, how many rows it may return, and the result it must
// have (0: any). PostgreSQL-style: raises ERROR naming `what` otherwise.
struct CatalogQuery {
    const char *sql;
    const char *what;
    int expected_rc;
    bool read_only = false;
    long count = 0;
};

void run(const CatalogQuery &q, std::initializer_list<std::pair<Oid, Datum>> args, const char *nulls = nullptr) {
    Oid types[8];
    Datum values[8];
    int n = 0;
    for (const auto &a : args) {
        types[n] = a.first;
        values[n++] = a.second;
    }
    int rc = as_superuser([&] { return SPI_execute_with_args(q.sql, n, types, values, nulls, q.read_only, q.count); });
    if (q.expected_rc != 0 && rc != q.expected_rc) elog(ERROR, "stategrid_ivm: could not %s", q.what);
}

std::pair<Oid, Datum> pipeline_arg(int32 pipeline_id) { return {INT4OID, Int32GetDatum(pipeline_id)}; }

// Column `col` (1-based) of row `row` of the last SPI result, as a binary value.
Datum value_at(uint64 row, int col, bool *isnull) {
    return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}
std::string text_at(uint64 row, int col) {
    bool isnull;
    Datum d = value_at(row, col, &isnull);
    if (isnull) return {};
    if (SPI_gettypeid(SPI_tuptable->tupdesc, col) == NAMEOID) return NameStr(*DatumGetName(d));
    return TextDatumGetCString(d);
}
bool bool_at(uint64 row, int col) {
    bool isnull;
    Datum d = value_at(row, col, &isnull);
    return !isnull && DatumGetBool(d);
}
Oid oid_at(uint64 row, int col) {
    bool isnull;
    Datum d = value_at(row, col, &isnull);
    return isnull ? InvalidOid : DatumGetObjectId(d);
}

PipelineState state_of(const std::string &s) {
    if (s == "backfilling") return PipelineState::Backfilling;
    if (s == "running") return PipelineState::Running;
    if (s == "paused") return PipelineState::Paused;
    if (s == "error") return PipelineState::Error;
    if (s != "created") elog(ERROR, "stategrid_ivm: unknown pipeline state \"%s\"", s.c_str());
    return PipelineState::Created;
}

}  // namespace

const char *state_name(PipelineState state) {
    switch (state) {
        case PipelineState::Created: return "created";
        case PipelineState::Backfilling: return "backfilling";
        case PipelineState::Running: return "running";
        case PipelineState::Paused: return "paused";
        case PipelineState::Error: return "error";
    }
    return "unknown";
}

bool extension_exists() {
    return pg_call([] { return OidIsValid(get_extension_oid("stategrid_ivm", true)); });
}

std::optional<Pipeline> load_pipeline(int32 pipeline_id) {
    return pg_call([&]() -> std::optional<Pipeline> {
        run({"SELECT name, state, slot_name, origin_name, owner, backfill_snapshot::text, backfill_lsn,"
             " (SELECT string_agg(source_relid::text, ',') FROM stategrid_ivm.source s WHERE s.pipeline_id = p.pipeline_id),"
             " EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots r"
             "         WHERE r.slot_name = p.slot_name AND r.database = pg_catalog.current_database())"
             " FROM stategrid_ivm.pipeline p WHERE pipeline_id = $1",
             "read the pipeline catalog", SPI_OK_SELECT, false, 1},
            {pipeline_arg(pipeline_id)});
        if (SPI_processed != 1) return std::nullopt;
        Pipeline p;
        p.name = text_at(0, 1);
        p.state = state_of(text_at(0, 2));
        p.slot = text_at(0, 3);
        p.origin = text_at(0, 4);
        p.owner = oid_at(0, 5);
        bool isnull;
        Datum snapshot = value_at(0, 6, &isnull);
        if (!isnull) p.backfill_snapshot = TextDatumGetCString(snapshot);
        Datum lsn = value_at(0, 7, &isnull);
        p.backfill_lsn = isnull ? InvalidXLogRecPtr : DatumGetLSN(lsn);
        p.relids = text_at(0, 8);
        p.slot_exists = bool_at(0, 9);
        return p;
    });
}

std::vector<Source> load_sources(int32 pipeline_id) {
    return pg_call([&] {
        run({"SELECT source_relid, ods_relid, source_name,"
             " EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = s.source_relid),"
             " (SELECT i.inhrelid::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i"
             "  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid"
             "  WHERE i.inhparent = s.source_relid AND NOT c.relispartition ORDER BY 1 LIMIT 1)"
             " FROM stategrid_ivm.source s WHERE pipeline_id = $1 ORDER BY source_relid",
             "read the pipeline's sources", SPI_OK_SELECT, true},
            {pipeline_arg(pipeline_id)});
        std::vector<Source> sources;
        for (uint64 i = 0; i < SPI_processed; i++) {
            Source s;
            s.source_relid = oid_at(i, 1);
            s.mirror_relid = oid_at(i, 2);
            s.source_name = text_at(i, 3);
            s.exists = bool_at(i, 4);
            s.inheritance_child = text_at(i, 5);
            sources.push_back(std::move(s));
        }
        return sources;
    });
}

std::optional<int32> read_views_version(int32 pipeline_id) {
    return pg_call([&]() -> std::optional<int32> {
        run({"SELECT views_version FROM stategrid_ivm.pipeline WHERE pipeline_id = $1", "read the pipeline catalog",
             SPI_OK_SELECT, false, 1},
            {pipeline_arg(pipeline_id)});
        bool isnull = true;
        Datum v = SPI_processed == 1 ? value_at(0, 1, &isnull) : Datum(0);
        if (isnull) return std::nullopt;
        return DatumGetInt32(v);
    });
}

std::optional<LockedPipeline> lock_pipeline(int32 pipeline_id) {
    return pg_call([&]() -> std::optional<LockedPipeline> {
        run({"SELECT state, views_version FROM stategrid_ivm.pipeline WHERE pipeline_id = $1 FOR NO KEY UPDATE",
             "lock the pipeline catalog", SPI_OK_SELECT, false, 1},
            {pipeline_arg(pipeline_id)});
        if (SPI_processed != 1) return std::nullopt;
        LockedPipeline locked;
        locked.state = state_of(text_at(0, 1));
        bool isnull;
        locked.views_version = DatumGetInt32(value_at(0, 2, &isnull));
        return locked;
    });
}

std::vector<StoredView> load_view_plans(int32 pipeline_id) {
    struct Row {
        Oid relid;
        std::string name, plan;
    };
    std::vector<Row> rows = pg_call([&] {
        run({"SELECT relid, view_name, plan FROM stategrid_ivm.view WHERE pipeline_id = $1 ORDER BY view_id",
             "read the pipeline's views", SPI_OK_SELECT},
            {pipeline_arg(pipeline_id)});
        std::vector<Row> out;
        for (uint64 i = 0; i < SPI_processed; i++) {
            bool isnull;
            Jsonb *plan = DatumGetJsonbP(value_at(i, 3, &isnull));
            out.push_back(Row{oid_at(i, 1), text_at(i, 2), JsonbToCString(nullptr, &plan->root, VARSIZE(plan))});
        }
        return out;
    });
    // (parsed outside pg_call: a C++ exception must not cross its PG_TRY)
    std::vector<StoredView> views;
    for (Row &r : rows) {
        StoredView v;
        v.relid = r.relid;
        v.name = std::move(r.name);
        try {
            v.plan = plan_from_json(r.plan);
        } catch (const PlanFormatError &e) {
            throw std::runtime_error("the plan of view " + v.name + " cannot be read: " + e.what());
        }
        views.push_back(std::move(v));
    }
    return views;
}

void record_progress(int32 pipeline_id, const BatchProgress &progress) {
    pg_call([&] {
        const char nulls[5] = {' ', progress.end_lsn ? ' ' : 'n', progress.commit_time ? ' ' : 'n', ' ', ' '};
        run({"UPDATE stategrid_ivm.pipeline SET applied_lsn = coalesce($2, applied_lsn),"
             " applied_commit_time = coalesce($3, applied_commit_time),"
             " transactions_applied = transactions_applied + $4, rows_applied = rows_applied + $5,"
             " state = CASE WHEN state = 'error' THEN 'running' ELSE state END"
             " WHERE pipeline_id = $1",
             "record progress", SPI_OK_UPDATE},
            {pipeline_arg(pipeline_id), {LSNOID, LSNGetDatum(progress.end_lsn)},
             {TIMESTAMPTZOID, TimestampTzGetDatum(progress.commit_time)},
             {INT8OID, Int64GetDatum(static_cast<int64>(progress.transactions))},
             {INT8OID, Int64GetDatum(static_cast<int64>(progress.rows))}},
            nulls);
    });
}

BackfillPoint read_backfill_point() {
    return pg_call([] {
        run({"SELECT pg_catalog.pg_current_snapshot()::text, pg_catalog.pg_current_wal_insert_lsn()::text",
             "read the snapshot", SPI_OK_SELECT, true, 1},
            {});
        if (SPI_processed != 1) elog(ERROR, "stategrid_ivm: could not read the snapshot");
        return BackfillPoint{text_at(0, 1), text_at(0, 2)};
    });
}

MirrorCopy mirror_copy(Oid source_relid, Oid mirror_relid) {
    return pg_call([&] {
        run({"SELECT format('DELETE FROM %s', $2::regclass), "
             // a partitioned table is read whole, partitions included
             " format('INSERT INTO %s (%s) SELECT %s FROM %s%s', $2::regclass, cols, cols,"
             "        CASE (SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1) WHEN 'p' THEN '' ELSE 'ONLY ' END,"
             "        $1::regclass) FROM ("
             " SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) AS cols"
             " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attribute m"
             "   ON m.attrelid = $2 AND m.attname = a.attname AND NOT m.attisdropped AND m.attgenerated = ''"
             " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '') c",
             "plan the copy", SPI_OK_SELECT, true, 1},
            {{OIDOID, ObjectIdGetDatum(source_relid)}, {OIDOID, ObjectIdGetDatum(mirror_relid)}});
        if (SPI_processed != 1) elog(ERROR, "stategrid_ivm: could not plan the copy");
        return MirrorCopy{text_at(0, 1), text_at(0, 2)};
    });
}

void record_backfill(int32 pipeline_id, const BackfillPoint &point, uint64 rows_copied) {
    pg_call([&] {
        run({"UPDATE stategrid_ivm.pipeline SET state = 'running', backfill_snapshot = $2::pg_snapshot,"
             " backfill_lsn = $3::pg_lsn, rows_applied = rows_applied + $4"
             " WHERE pipeline_id = $1 AND state IN ('backfilling', 'error')",
             "record the backfill", SPI_OK_UPDATE},
            {pipeline_arg(pipeline_id), {TEXTOID, CStringGetTextDatum(point.snapshot.c_str())},
             {TEXTOID, CStringGetTextDatum(point.lsn.c_str())}, {INT8OID, Int64GetDatum(static_cast<int64>(rows_copied))}});
    });
}

void record_error(int32 pipeline_id, const std::string &last_error, const std::string &slot) {
    pg_call([&] {
        run({"UPDATE stategrid_ivm.pipeline SET state = 'error', last_error = $2, last_error_at = now(),"
             " error_count = error_count + 1 WHERE pipeline_id = $1 AND state IN ('running', 'backfilling', 'error')"
             " AND ($3 = '' OR slot_name = $3)",
             "record the error", 0},
            {pipeline_arg(pipeline_id), {TEXTOID, CStringGetTextDatum(last_error.c_str())},
             {TEXTOID, CStringGetTextDatum(slot.c_str())}});
    });
}

void record_backfill_needed(int32 pipeline_id) {
    pg_call([&] {
        run({"UPDATE stategrid_ivm.pipeline SET state = 'backfilling' WHERE pipeline_id = $1 AND state IN ('running', 'error')",
             "record the new backfill", SPI_OK_UPDATE},
            {pipeline_arg(pipeline_id)});
    });
}

}  // namespace sgivm::pg
