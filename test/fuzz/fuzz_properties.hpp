// What the fuzz targets check on one input: shared by the libFuzzer targets (test/fuzz/fuzz_*.cpp)
// and by the GoogleTest replay of the saved inputs (test/unit/fuzz_regressions_test.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sgivm::fuzz {

// The code under test misbehaved on an input (a wrong result, or the wrong kind of exception).
// A fuzz target turns it into a crash, so libFuzzer saves the input; the replay reports it.
class PropertyViolation : public std::logic_error {
public:
    using std::logic_error::logic_error;
};

// Each function takes one input as libFuzzer hands it over. It returns when the code under test
// behaved: bad input refused with FormatError, good input handled correctly.
//
// change_format: decode() of one binary message; a decoded message re-encodes to the same bytes
// (also through the plugin's streaming encoder), decodes again to the same message, and has a
// text form on one line (no control character) whose row lines read back, name by name, as the
// values: dates, timestamps and escaped, quoted strings.
void check_change_format(std::string_view input);
// row_changes: a run of messages (each framed by a u16 big-endian length; an empty frame ends a
// run) folded by RowChangeSet under the key of the first Relation message, compared with a model
// that applies the changes one by one to symbolic mirror rows.
void check_row_changes(std::string_view input);
// snapshot: CopySnapshot::parse() of pg_snapshot text; what it accepts it reads exactly, and
// saw() answers as the snapshot says.
void check_snapshot(std::string_view input);

struct Target {
    const char *name;  // directory under test/fuzz/corpus/ and test/fuzz/regressions/
    void (*check)(std::string_view input);
};
const std::vector<Target> &targets();

// The body of a libFuzzer target: a violated property becomes a crash, so libFuzzer keeps the
// input (any other escaping exception ends in std::terminate, also a crash).
inline int run_target(void (*check)(std::string_view), const uint8_t *data, size_t size) {
    try {
        check(std::string_view(reinterpret_cast<const char *>(data), size));
    } catch (const PropertyViolation &e) {
        std::fprintf(stderr, "property violated: %s\n", e.what());
        std::abort();
    }
    return 0;
}

}  // namespace sgivm::fuzz
