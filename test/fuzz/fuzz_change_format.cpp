// libFuzzer target "change_format": the property check_change_format of fuzz_properties.hpp on every input.
// Built and run by scripts/fuzz.sh; saved inputs in test/fuzz/corpus/change_format/.
#include "fuzz_properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return sgivm::fuzz::run_target(sgivm::fuzz::check_change_format, data, size);
}
