// libFuzzer target "row_changes": the property check_row_changes of fuzz_properties.hpp on every input.
// Built and run by scripts/fuzz.sh; saved inputs in test/fuzz/corpus/row_changes/.
#include "fuzz_properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return sgivm::fuzz::run_target(sgivm::fuzz::check_row_changes, data, size);
}
