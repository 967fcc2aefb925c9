// Out-of-line parts of the error seam (seam.hpp): capturing a PostgreSQL error for C++ and
// raising a C++ failure as a PostgreSQL error.
#include "pg/seam.hpp"

namespace sgivm::pg {

PgError::~PgError() {
    if (data_) FreeErrorData(data_);
}

void PgError::add_context(const std::string &what, const std::string &after) {
    if (!data_) return;
    std::string text = what + ": " + (data_->message ? data_->message : "") + after;
    // where capture_pg_error copied the error
    char *m = static_cast<char *>(MemoryContextAllocExtended(TopMemoryContext, text.size() + 1, MCXT_ALLOC_NO_OOM));
    if (!m) return;
    memcpy(m, text.c_str(), text.size() + 1);
    if (data_->message) pfree(data_->message);
    data_->message = m;
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
        if (rethrown_error) FreeErrorData(rethrown_error);
        rethrown_error = pg_error;
        ReThrowError(pg_error);
    }
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("stategrid_ivm: %s", message)));
    pg_unreachable();
}

}  // namespace sgivm::pg
