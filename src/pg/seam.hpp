// The error seam between C++ and PostgreSQL: the only two ways an error crosses it.
//
// PostgreSQL reports errors with longjmp, which skips C++ destructors; C++ reports them with
// exceptions, which PostgreSQL cannot catch (an exception escaping into the server is
// std::terminate, and in a background worker that restarts the whole cluster). So:
//   * run_cpp(f)  is used where PostgreSQL calls into C++ (fmgr functions, plugin callbacks,
//     worker entry). It runs f, catches every exception, leaves the catch block, and only then
//     raises ereport(ERROR) with the message: no exception object is alive during the longjmp.
//   * pg_call(f)  is used where C++ that owns resources calls PostgreSQL. It runs f under
//     PG_TRY; a PostgreSQL error is copied out of ErrorContext and rethrown as PgError, so C++
//     unwinds normally. The transaction is left in the aborted state; the catcher must abort it.
// Code that only holds PostgreSQL memory (palloc) and plain values may call PostgreSQL directly.
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

#include <exception>
#include <optional>
#include <type_traits>
#include <string>
#include <utility>

namespace sgivm::pg {

// A PostgreSQL error carried through C++ frames. Owns a copy of the ErrorData, which stays as
// PostgreSQL made it (SQLSTATE, message, DETAIL, HINT, CONTEXT) up to where it is reported.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData *data) : data_(data), what_(message()) {}
    PgError(PgError &&o) noexcept
        : data_(std::exchange(o.data_, nullptr)), what_(std::move(o.what_)), framed_(o.framed_) {}
    PgError(const PgError &) = delete;
    ~PgError() override;
    // The message, framed by what the C++ code was doing when it failed.
    const char *what() const noexcept override { return what_.c_str(); }
    ErrorData *data() const { return data_; }
    // Says what failed around PostgreSQL's message ("maintaining view v: " ... "; advice"): the
    // rest of the error is left as it is.
    void frame(const std::string &before, const std::string &after) {
        what_ = before + what_ + after;
        framed_ = true;
    }
    bool framed() const { return framed_; }
    // what(), then the SQLSTATE, DETAIL, HINT and CONTEXT, on one line:
    // "message (SQLSTATE 55P03) DETAIL: ... HINT: ... CONTEXT: ...".
    std::string folded() const;
    // Hands the error back to PostgreSQL (ReThrowError); frees nothing the server needs.
    ErrorData *release() { return std::exchange(data_, nullptr); }

private:
    std::string message() const { return data_ && data_->message ? data_->message : "PostgreSQL error"; }

    ErrorData *data_;
    std::string what_;
    bool framed_ = false;
};

// Copies the current PostgreSQL error into a context that outlives the transaction and
// clears the error state. Called only from the PG_CATCH of pg_call.
ErrorData *capture_pg_error();

template <typename F>
void pg_call_void(F &&f) {
    ErrorData *volatile caught = nullptr;
    MemoryContext oldcxt = CurrentMemoryContext;
    PG_TRY();
    { f(); }
    PG_CATCH();
    {
        MemoryContextSwitchTo(oldcxt);
        caught = capture_pg_error();
    }
    PG_END_TRY();
    if (caught) throw PgError(caught);
}

template <typename F>
auto pg_call(F &&f) -> decltype(f()) {
    using R = decltype(f());
    if constexpr (std::is_void_v<R>) {
        pg_call_void(std::forward<F>(f));
    } else {
        std::optional<R> result;
        pg_call_void([&] { result.emplace(f()); });
        return std::move(*result);
    }
}

// Raises the error held for run_cpp (a PostgreSQL error with, if message is not empty, that
// message instead of its own). Never returns.
[[noreturn]] void raise_cpp_failure(ErrorData *pg_error, const char *message);

template <typename F>
auto run_cpp(F &&f) -> decltype(f()) {
    ErrorData *pg_error = nullptr;
    char message[1024];
    message[0] = '\0';
    try {
        return f();
    } catch (PgError &e) {
        if (e.framed()) strlcpy(message, e.what(), sizeof message);
        pg_error = e.release();
    } catch (const std::exception &e) {
        strlcpy(message, e.what(), sizeof message);
    } catch (...) {
        strlcpy(message, "unknown C++ exception", sizeof message);
    }
    // The catch blocks have ended: no exception object is alive, longjmp is safe now.
    raise_cpp_failure(pg_error, message);
}

}  // namespace sgivm::pg
