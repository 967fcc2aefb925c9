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
#include "utils/lsyscache.h"
#include "utils/resowner.h"

PG_FUNCTION_INFO_V1(sgivm_try_view_statements);
}

#include <string>

#include "core/view_plan.hpp"
#include "pg/owner_role.hpp"
#include "pg/seam.hpp"

namespace {

// CREATE of an input's delta table, as the worker makes it (mirror_table.cpp, and a view's own
// setup for the views it reads): LIKE the input, in pg_temp.
char *create_delta_table(Oid relid) {
    char *input = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
    return sgivm::pg::run_cpp([&] {
        std::string sql = "CREATE TEMP TABLE IF NOT EXISTS " + sgivm::delta_table(relid).substr(8) + " (LIKE " + input +
                          ") ON COMMIT DELETE ROWS";
        return sgivm::pg::pg_call([&] { return pstrdup(sql.c_str()); });
    });
}

void run(const char *sql) {
    int rc = SPI_execute(sql, false, 0);
    if (rc < 0) elog(ERROR, "stategrid_ivm: %s failed: %s", sql, SPI_result_code_string(rc));
}

}  // namespace

// stategrid_ivm._try_view_statements(role oid, view_name text, inputs oid[], setup text[],
// steps text[], statements text[]): creates the working tables as `role` (as the worker does),
// then runs each statement as `role` in a security-restricted operation; on the first failure,
// an error naming the view and the step. Internal: superusers (_add_view) only.
extern "C" Datum sgivm_try_view_statements(PG_FUNCTION_ARGS) {
    if (!superuser())
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for function _try_view_statements"),
                        errdetail("It is internal to stategrid_ivm.")));
    for (int i = 0; i < 6; i++)
        if (PG_ARGISNULL(i)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("_try_view_statements needs every argument")));
    Oid role = PG_GETARG_OID(0);
    char *view = text_to_cstring(PG_GETARG_TEXT_PP(1));
    Datum *inputs, *setup, *steps, *statements;
    int n_inputs, n_setup, n_steps, n_statements;
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &inputs, nullptr, &n_inputs);
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(3), TEXTOID, -1, false, TYPALIGN_INT, &setup, nullptr, &n_setup);
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(4), TEXTOID, -1, false, TYPALIGN_INT, &steps, nullptr, &n_steps);
    deconstruct_array(PG_GETARG_ARRAYTYPE_P(5), TEXTOID, -1, false, TYPALIGN_INT, &statements, nullptr, &n_statements);
    if (n_steps != n_statements) elog(ERROR, "stategrid_ivm: _try_view_statements needs a step per statement");
    // (every string in this context: SPI's, which the statements run in, goes with the subtransaction)
    char **create = static_cast<char **>(palloc(sizeof(char *) * Max(n_inputs, 1)));
    for (int i = 0; i < n_inputs; i++) create[i] = create_delta_table(DatumGetObjectId(inputs[i]));
    char **setup_sql = static_cast<char **>(palloc(sizeof(char *) * Max(n_setup, 1)));
    for (int i = 0; i < n_setup; i++) setup_sql[i] = TextDatumGetCString(setup[i]);
    char **step_names = static_cast<char **>(palloc(sizeof(char *) * Max(n_steps, 1)));
    char **sql = static_cast<char **>(palloc(sizeof(char *) * Max(n_statements, 1)));
    for (int i = 0; i < n_statements; i++) {
        step_names[i] = TextDatumGetCString(steps[i]);
        sql[i] = TextDatumGetCString(statements[i]);
    }

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
