// Out-of-line parts of the error seam (seam.hpp): capturing a PostgreSQL error for C++ and
// raising a C++ failure as a PostgreSQL error.
#include "pg/seam.hpp"

namespace sgivm::pg {

PgError::~PgError() {
    if (data_) FreeErrorData(data_);
}

std::string PgError::folded() const {
    std::string s = what_;
    if (!data_) return s;
    s += std::string(" (SQLSTATE ") + unpack_sql_state(data_->sqlerrcode) + ")";
    if (data_->detail) s += std::string(" DETAIL: ") + data_->detail;
    if (data_->hint) s += std::string(" HINT: ") + data_->hint;
    // CONTEXT, one line: its lines are the stack of what ran, innermost first. Lines quoting an
    // SQL statement are left out here (the server log has them): in the worker they are the
    // view's generated statements, kilobytes long, which the view's plan holds.
    // (a statement of several lines is skipped up to the line that ends its quotes)
    std::string context, rest = data_->context ? data_->context : "";
    bool in_statement = false;
    while (!rest.empty()) {
        size_t end = rest.find('\n');
        std::string line = rest.substr(0, end);
        rest = end == std::string::npos ? "" : rest.substr(end + 1);
        if (!in_statement && line.rfind("SQL statement \"", 0) != 0) {
            context += (context.empty() ? "" : "; ") + line;
            continue;
        }
        in_statement = line.empty() || line.back() != '"' || line == "SQL statement \"";
    }
    if (!context.empty()) s += " CONTEXT: " + context;
    return s;
}

ErrorData *capture_pg_error() {
    // ErrorContext is reset by FlushErrorState: copy into a context that survives it. The
    // copy is freed by ~PgError, or by the transaction abort if the error is rethrown.
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    ErrorData *e = CopyErrorData();
    MemoryContextSwitchTo(old);
    FlushErrorState();
    return e;
}

// The last error handed back to PostgreSQL: ReThrowError copies it and never returns, so
// the copy is freed at the next rethrow instead of leaking one per error.
static ErrorData *rethrown_error = nullptr;

void raise_cpp_failure(ErrorData *pg_error, const char *message) {
    if (pg_error) {
        if (message[0]) {
            if (pg_error->message) pfree(pg_error->message);
            pg_error->message = MemoryContextStrdup(TopMemoryContext, message);
        }
        if (rethrown_error) FreeErrorData(rethrown_error);
        rethrown_error = pg_error;
        ReThrowError(pg_error);
    }
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("stategrid_ivm: %s", message)));
    pg_unreachable();
}

}  // namespace sgivm::pg
