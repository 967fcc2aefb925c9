#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz/ (clang, ASan + UBSan) and runs each for a bounded time.
#
#   bash scripts/fuzz.sh [TARGET...]     # default: every target (change_format row_changes snapshot)
#   bash scripts/fuzz.sh --seeds         # rewrites the hand-made seeds test/fuzz/corpus/*/seed_*
#
# Each target starts from test/fuzz/corpus/<target>/ and test/fuzz/regressions/<target>/, copied
# into build/fuzz/work/ (the checkout is never written). A crash, a sanitizer report, a violated
# property, a timeout or too much memory fails the target; its input is kept in
# build/fuzz/artifacts/<target>/ and shown in hex. Add it to test/fuzz/regressions/<target>/ with
# the fix: the GoogleTest suite replays that directory (test/unit/fuzz_regressions_test.cpp).
#
# Environment:
#   SGIVM_FUZZ_SECONDS  seconds per target (default 20)
#   SGIVM_FUZZ_ARGS     more libFuzzer flags, e.g. "-jobs=1 -workers=1" or "-runs=100000"
#   SGIVM_FUZZ_MERGE=1  afterwards, add the inputs that found new coverage to test/fuzz/corpus/
#   SGIVM_FUZZ_CXX      the compiler (default clang++, else clang++-14)
#
# Prints one line per target, "fuzz <target>: passed|FAILED ...", then "fuzz: N passed, N failed".
# Exit status: 0 if every target passed, 1 if one failed, 2 if the targets cannot be built (no
# clang or no libFuzzer runtime: scripts/install-deps.sh installs clang and libclang-rt-14-dev).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

ALL_TARGETS=(change_format row_changes snapshot)
SECONDS_PER_TARGET=${SGIVM_FUZZ_SECONDS:-20}
BUILD=$ROOT/build/fuzz

CXX=${SGIVM_FUZZ_CXX:-}
if [ -z "$CXX" ]; then
    for c in clang++ clang++-14; do
        if command -v "$c" >/dev/null 2>&1; then CXX=$c; break; fi
    done
fi
if [ -z "$CXX" ] || ! command -v "$CXX" >/dev/null 2>&1; then
    echo "fuzz: ${CXX:-clang++} not found (Debian 12: apt-get install clang libclang-rt-14-dev, or scripts/install-deps.sh)" >&2
    exit 2
fi

COMMON=(-std=c++17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Werror -I"$ROOT/src" -I"$ROOT/test/fuzz")
# shellcheck disable=SC2054  # one compiler flag whose value is a comma-separated list
SANITIZE=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
mkdir -p "$BUILD/obj"

if [ "${1:-}" = --seeds ]; then
    "$CXX" "${COMMON[@]}" -o "$BUILD/make_seeds" test/fuzz/make_seeds.cpp src/core/*.cpp || exit 2
    for t in "${ALL_TARGETS[@]}"; do
        mkdir -p "test/fuzz/corpus/$t"
        rm -f "test/fuzz/corpus/$t"/seed_*
    done
    "$BUILD/make_seeds" "$ROOT/test/fuzz/corpus" || exit 2
    echo "fuzz: seeds written to test/fuzz/corpus/"
    exit 0
fi

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    [ -f "test/fuzz/fuzz_$t.cpp" ] || { echo "fuzz: no target $t (test/fuzz/fuzz_$t.cpp)" >&2; exit 2; }
done

# ---- build: the core and the properties once, instrumented; one binary per target ----------------
echo "fuzz: building with $CXX ($("$CXX" --version | head -n1))"
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }' |
    "$CXX" -x c++ -fsanitize=fuzzer,address,undefined -o "$BUILD/probe" - 2>"$BUILD/probe.log"; then
    cat "$BUILD/probe.log" >&2
    echo "fuzz: $CXX cannot build a libFuzzer target (Debian 12: apt-get install libclang-rt-14-dev)" >&2
    exit 2
fi
# Compiles run in parallel, at most SGIVM_JOBS (default: the number of CPUs) at a time; a failed
# one leaves the file build/fuzz/failed.
jobs_max=${SGIVM_JOBS:-$(nproc 2>/dev/null || echo 2)}
rm -f "$BUILD/failed"
run_parallel() {
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    ("$@" || touch "$BUILD/failed") &
}
wait_all() {
    wait
    if [ -f "$BUILD/failed" ]; then
        echo "fuzz: build failed" >&2
        exit 2
    fi
}
objs=()
for src in src/core/*.cpp test/fuzz/fuzz_properties.cpp; do
    obj=$BUILD/obj/$(basename "$src" .cpp).o
    objs+=("$obj")
    if [ ! -f "$obj" ] || [ -n "$(find "$src" src/core test/fuzz -newer "$obj" -name '*.[ch]pp' 2>/dev/null | head -n1)" ]; then
        rm -f "$obj"
        run_parallel "$CXX" "${COMMON[@]}" "${SANITIZE[@]}" -fsanitize=fuzzer-no-link -c -o "$obj" "$src"
    fi
done
wait_all
for t in "${TARGETS[@]}"; do
    run_parallel "$CXX" "${COMMON[@]}" "${SANITIZE[@]}" -fsanitize=fuzzer -o "$BUILD/fuzz_$t" "test/fuzz/fuzz_$t.cpp" "${objs[@]}"
done
wait_all

# ---- run ----------------------------------------------------------------------------------------
symbolizer=$(command -v llvm-symbolizer || command -v llvm-symbolizer-14 || true)
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}${symbolizer:+:external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
read -r -a extra <<<"${SGIVM_FUZZ_ARGS:-}"

passed=0
failed=0
for t in "${TARGETS[@]}"; do
    work=$BUILD/work/$t
    artifacts=$BUILD/artifacts/$t
    rm -rf "$work" "$artifacts"
    mkdir -p "$work/corpus" "$artifacts"
    for d in "test/fuzz/corpus/$t" "test/fuzz/regressions/$t"; do
        [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$work/corpus/" \;
    done
    # -malloc_limit_mb=1: no input of at most 4 KB needs a 1 MB block; a larger one is an
    # allocation sized by an unchecked length (docs/change-format.md promises there is none).
    (cd "$work" && "$BUILD/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1 -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "${extra[@]}" "$work/corpus") >"$work/fuzz.log" 2>&1
    rc=$?
    # with -jobs, the workers write fuzz-N.log in the work directory
    runs=$(cat "$work/fuzz.log" "$work"/fuzz-*.log 2>/dev/null |
        sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "fuzz $t: passed (${runs:-?} executions, $(find "$work/corpus" -maxdepth 1 -type f | wc -l) inputs in the corpus)"
        if [ "${SGIVM_FUZZ_MERGE:-0}" = 1 ]; then
            mkdir -p "test/fuzz/corpus/$t"
            (cd "$work" && "$BUILD/fuzz_$t" -merge=1 -max_len=4096 "$ROOT/test/fuzz/corpus/$t" "$work/corpus") \
                >"$work/merge.log" 2>&1 && echo "fuzz $t: merged into test/fuzz/corpus/$t"
        fi
    else
        failed=$((failed + 1))
        echo "fuzz $t: FAILED (exit $rc)"
        for log in "$work/fuzz.log" "$work"/fuzz-*.log; do
            [ -f "$log" ] || continue
            grep -E 'ERROR: |runtime error|property violated|terminate called|what\(\)' "$log" | head -n 5
            tail -n 40 "$log"
        done
        for f in "$artifacts"/*; do
            [ -f "$f" ] || continue
            echo "fuzz $t: reproducer $f ($(wc -c <"$f") bytes):"
            od -An -tx1 -v "$f" | head -n 16
            echo "fuzz $t: replay with $BUILD/fuzz_$t $f; keep it in test/fuzz/regressions/$t/ once fixed"
        done
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
