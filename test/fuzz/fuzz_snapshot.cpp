// libFuzzer target "snapshot": the property check_snapshot of fuzz_properties.hpp on every input.
// Built and run by scripts/fuzz.sh; saved inputs in test/fuzz/corpus/snapshot/.
#include "fuzz_properties.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return sgivm::fuzz::run_target(sgivm::fuzz::check_snapshot, data, size);
}
