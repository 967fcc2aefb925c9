// add_view's proof that a view can be maintained: the statements the worker will run for it are
// planned and run once, on an empty change, before add_view commits.
//
// A statement the worker cannot run (the analyser let through what the maintenance SQL cannot
// express) would otherwise put the whole pipeline in error at its first change, every healthy
// view with it. Here it fails add_view, naming the view. The run happens in a subtransaction
// that is always rolled back: the working tables it creates, and whatever the statements did,
// go. Plain PostgreSQL code (no C++ objects while PostgreSQL errors can unwind).
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"

PG_FUNCTION_INFO_V1(sgivm_try_view_statements);
}

#include <string>

#include "core/view_plan.hpp"
#include "pg/owner_role.hpp"
#include "pg/seam.hpp"
#include "pg/view_maintenance.hpp"

namespace {

void run(const char *sql) {
    int rc = SPI_execute(sql, false, 0);
    if (rc < 0) elog(ERROR, "stategrid_ivm: %s failed: %s", sql, SPI_result_code_string(rc));
}

// What the dry run needs of a view's plan, read through plan_from_json (the one reader of a
// plan) into palloc'd strings: the CREATE of each input's delta table, as the worker makes it
// (mirror_table.cpp, and a view's own setup for the views it reads: LIKE the input, in pg_temp),
// the view's working tables, then the statements with their steps.
struct DryRun {
    int n_create = 0, n_setup = 0, n_statements = 0;
    char **create = nullptr, **setup = nullptr, **steps = nullptr, **sql = nullptr;
};

// PostgreSQL calls only (palloc): called under pg_call.
char **pstrdup_all(const std::vector<std::string> &strings) {
    char **out = static_cast<char **>(palloc(sizeof(char *) * Max(strings.size(), 1)));
    for (size_t i = 0; i < strings.size(); i++) out[i] = pstrdup(strings[i].c_str());
    return out;
}

DryRun read_plan(const char *plan_json) {
    return sgivm::pg::run_cpp([&] {
        sgivm::StoredViewPlan plan = sgivm::plan_from_json(plan_json);
        std::vector<std::string> create, steps, sql;
        for (uint32_t relid : plan.input_relids) {
            std::string input = sgivm::pg::pg_call([&] {
                Oid rel = static_cast<Oid>(relid);
                return std::string(quote_qualified_identifier(get_namespace_name(get_rel_namespace(rel)), get_rel_name(rel)));
            });
            create.push_back(sgivm::delta_table_ddl(relid, input));
        }
        for (auto &named : sgivm::pg::named_statements(plan)) {
            steps.push_back(named.first);
            sql.push_back(named.second);
        }
        return sgivm::pg::pg_call([&] {
            DryRun r;
            r.n_create = static_cast<int>(create.size());
            r.create = pstrdup_all(create);
            r.n_setup = static_cast<int>(plan.plan.setup.size());
            r.setup = pstrdup_all(plan.plan.setup);
            r.n_statements = static_cast<int>(sql.size());
            r.steps = pstrdup_all(steps);
            r.sql = pstrdup_all(sql);
            return r;
        });
    });
}

}  // namespace

// stategrid_ivm._try_view_statements(role oid, view_name text, plan jsonb): creates the view's
// working tables as `role` (as the worker does), then runs each maintenance statement of the
// plan as `role` in a security-restricted operation; on the first failure, an error naming the
// view and the step. Internal: superusers (_add_view) only.
extern "C" Datum sgivm_try_view_statements(PG_FUNCTION_ARGS) {
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for function _try_view_statements"),
                        errdetail("It is internal to stategrid_ivm.")));
    for (int i = 0; i < 3; i++)
        if (PG_ARGISNULL(i)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("_try_view_statements needs every argument")));
    Oid role = PG_GETARG_OID(0);
    char *view = text_to_cstring(PG_GETARG_TEXT_PP(1));
    Jsonb *plan = PG_GETARG_JSONB_P(2);
    // (every string in this context: SPI's, which the statements run in, goes with the subtransaction)
    DryRun d = read_plan(JsonbToCString(nullptr, &plan->root, VARSIZE(plan)));
    int n_inputs = d.n_create, n_setup = d.n_setup, n_statements = d.n_statements;
    char **create = d.create, **setup_sql = d.setup, **step_names = d.steps, **sql = d.sql;

    MemoryContext caller = CurrentMemoryContext;
    ResourceOwner caller_owner = CurrentResourceOwner;
    const char *volatile step = "setup";
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(caller);
    PG_TRY();
    {
        // Working tables first: a restricted operation may not create temporary tables.
        sgivm::pg::OwnerContext ctx = sgivm::pg::enter_owner_context(role, false);
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "stategrid_ivm: SPI_connect failed");
        for (int i = 0; i < n_inputs; i++) run(create[i]);
        for (int i = 0; i < n_setup; i++) run(setup_sql[i]);
        sgivm::pg::restrict_owner_context(ctx, role);
        for (int i = 0; i < n_statements; i++) {
            step = step_names[i];
            run(sql[i]);
        }
        SPI_finish();
        sgivm::pg::leave_owner_context(ctx);
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller);
        CurrentResourceOwner = caller_owner;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(caller);
        ErrorData *e = CopyErrorData();
        FlushErrorState();
        // (the abort undoes the user id, the settings and SPI's connection)
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(caller);
        CurrentResourceOwner = caller_owner;
        ereport(ERROR, (errcode(e->sqlerrcode), errmsg("stategrid_ivm cannot maintain view %s: %s", view, e->message),
                        e->detail ? errdetail("add_view ran the statements that keep the view current once, on an empty "
                                              "change, and its %s step failed: %s", step, e->detail)
                                  : errdetail("add_view ran the statements that keep the view current once, on an empty "
                                              "change, and its %s step failed.", step),
                        errhint("The pipeline could not maintain this view: change its query, or the table it adopts.")));
    }
    PG_END_TRY();
    PG_RETURN_VOID();
}
