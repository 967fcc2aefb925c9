#!/usr/bin/env bash
# THE test command (README, command (b)): every test suite of stategrid_ivm.
#
#   bash scripts/test.sh
#
# 0. test/scripts/install_deps.sh: scripts/install-deps.sh on every starting state of a machine,
#    against stand-ins for dpkg-query, apt-get, apt-cache and id
# 1. scripts/install-deps.sh (only when root), then shellcheck on every shell script
# 2. scripts/build-install.sh (make && make install)
# 3. GoogleTest suite of src/core: cmake -S . -B build/unit, build, ctest
#    then the fuzz targets (scripts/fuzz.sh: libFuzzer with ASan/UBSan, $SGIVM_FUZZ_SECONDS
#    per target, default 20, from the saved corpus)
# 4. a fresh temporary PostgreSQL cluster with the extension's settings (owned by postgres when
#    run as root, under a mktemp directory, unix socket only, port $SGIVM_TEST_PORT or 54331)
# 5. pg_regress:            make installcheck                 (sql/, expected/)
# 6. isolation specs:       pg_isolation_regress               (test/isolation/specs/*.spec)
# 6b. monitoring:          test/monitoring/run.sh             (promtool check/test rules on
#                           monitoring/alerts.yml; prometheus-postgres-exporter with
#                           monitoring/queries.yaml on a cluster of its own, scraped with curl)
# 7. TAP tests:             prove                              (test/t/*.pl, own clusters; when
#                           root, a 32 MB tmpfs in SGIVM_TMPFS for t/060_disk_full.pl to fill)
# 8. benchmark smoke run:   bench/run --quick                  (own cluster, port
#                           $SGIVM_BENCH_PORT or 54332, rollup's two provinces on the next
#                           two ports; report in build/bench-quick/)
# 9. Debian package:        test/scripts/deb_package.sh        (META.json's version; dpkg-buildpackage
#                           in a clean copy of the tree; apt-get install of the .deb, or with
#                           SGIVM_DEB_ROOT dpkg -x into that private PostgreSQL copy; a subset of
#                           pg_regress against it, own cluster on port $SGIVM_TEST_PORT)
# The temporary cluster and directories are removed at the end, also on failure or interrupt.
#
# Counting (the last line is exactly "N passed, N failed"):
#   - install-deps: each check of test/scripts/install_deps.sh; shellcheck: each script;
#   - monitoring: each check of test/monitoring/run.sh;
#   - deb: each check of test/scripts/deb_package.sh (one per pg_regress file among them);
#   - ctest: each test ctest reports;
#   - fuzz: each fuzz target (no clang or libFuzzer runtime counts as one failure);
#   - pg_regress and isolation: each test file / spec;
#   - TAP: each assertion (a test file that dies or has a bad plan without a failed assertion
#     counts as one failure);
#   - bench-quick: one (passed if every scenario ran and stayed correct; speed never fails it);
#   - a step that cannot run (dependencies, build, install, cmake, cluster start, a suite that
#     reports nothing) counts as one failure.
# Exit status 0 only if nothing failed.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SG_ROOT" || exit 1

# pg_regress, pg_isolation_regress and the TAP modules (postgresql-server-dev-15).
PGXS_DIR=/usr/lib/postgresql/15/lib/pgxs/src
if [ -x "$PG_CONFIG" ]; then PGXS_DIR=$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")"); fi
TEST_PORT=${SGIVM_TEST_PORT:-54331}
JOBS=${SGIVM_JOBS:-$(nproc 2>/dev/null || echo 2)}

PASSED=0
FAILED=0
SUMMARY=()
TMP=""
TAP_TMPFS=""
START=$(date +%s)

step() { echo; echo "==== $*"; }

# record SUITE PASSED FAILED [NOTE]
record() {
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    SUMMARY+=("$(printf '%-12s %4d passed, %4d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}

cleanup() {
    if [ -n "$TMP" ] && [ -d "$TMP" ]; then
        if [ -f "$TMP/pg/data/postmaster.pid" ]; then
            sg_pg_stop "$TMP/pg/data" immediate || true
        fi
        # the TAP tests' small disk, if a failure left it mounted (lazily: a server of a test
        # that died may still hold it)
        if [ -n "$TAP_TMPFS" ]; then umount -l "$TAP_TMPFS" 2>/dev/null || true; fi
        rm -rf "$TMP"
    fi
    TMP=""
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

finish() {
    cleanup
    echo
    echo "==== summary ($(($(date +%s) - START)) s)"
    for line in "${SUMMARY[@]}"; do echo "$line"; done
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

# Prints at most N lines of a file (diffs, logs).
show_head() {
    local file=$1 n=$2
    [ -f "$file" ] || return 0
    echo "---- $file (first $n of $(wc -l <"$file") lines)"
    head -n "$n" "$file"
    echo "---- end of $file"
}

# Prints at most the last N lines of a file (where a TAP log says what went wrong).
show_tail() {
    local file=$1 n=$2
    [ -f "$file" ] || return 0
    echo "---- $file (last $n of $(wc -l <"$file") lines)"
    tail -n "$n" "$file"
    echo "---- end of $file"
}

# Counts "... ok" and "... FAILED" lines of pg_regress / pg_isolation_regress output.
count_regress() {
    local out=$1
    R_OK=$(grep -cE '\.\.\. ok( |$)' "$out")
    R_FAIL=$(grep -cE '\.\.\. (FAILED|failed)' "$out")
}

# record_checks SUITE LOG RC NOTE: a suite that prints "ok N - ..." / "not ok N - ..." per check
# (a non-zero exit without a failed check, or no check at all, counts as one failure).
record_checks() {
    local ok bad
    ok=$(grep -c "^ok " "$2")
    bad=$(grep -c "^not ok " "$2")
    if [ "$3" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    record "$1" "$ok" "$bad" "$4"
}

# ---- 0. the install script on every starting state (stand-ins for dpkg-query and apt) -----------
# Before the real install, so that a broken install-deps.sh is reported as such.
step "install-deps.sh against stand-in package tools (test/scripts/install_deps.sh)"
mkdir -p build
bash test/scripts/install_deps.sh </dev/null 2>&1 | tee build/install-deps-test.log
record_checks install-deps build/install-deps-test.log "${PIPESTATUS[0]}" checks

# ---- 1. dependencies ----------------------------------------------------------------------------
if sg_is_root; then
    step "install-deps"
    if ! bash scripts/install-deps.sh; then
        record deps 0 1 "install-deps.sh failed"
        finish
    fi
fi

# ---- 1b. shellcheck -------------------------------------------------------------------------------
# Every shell script of the repository: *.sh, and files whose first line runs bash or sh.
step "shellcheck (every shell script)"
if ! command -v shellcheck >/dev/null; then
    record shellcheck 0 1 "shellcheck not installed (scripts/install-deps.sh installs it)"
else
    sc_ok=0
    sc_bad=0
    while IFS= read -r f; do
        if shellcheck -x "$f" </dev/null; then sc_ok=$((sc_ok + 1)); else sc_bad=$((sc_bad + 1)); fi
    done < <(sg_shell_scripts)
    if [ $((sc_ok + sc_bad)) -eq 0 ]; then sc_bad=1; fi
    echo "shellcheck: $sc_ok files clean, $sc_bad with findings"
    record shellcheck "$sc_ok" "$sc_bad" "files"
fi

# ---- 2. build and install -----------------------------------------------------------------------
# The same build step as the demo and the Docker image (make, make install).
step "build and install (scripts/build-install.sh)"
if ! SGIVM_JOBS=$JOBS bash scripts/build-install.sh; then
    record build 0 1 "scripts/build-install.sh failed (make or make install; root needed to write into $("$PG_CONFIG" --pkglibdir))"
    finish
fi

# ---- 3. GoogleTest (ctest) ----------------------------------------------------------------------
step "GoogleTest (ctest)"
mkdir -p build
if [ ! -f CMakeLists.txt ]; then
    echo "CMakeLists.txt is missing"
    record unit 0 1 "CMakeLists.txt missing"
elif ! cmake -S . -B build/unit </dev/null; then
    record unit 0 1 "cmake configure failed"
elif ! cmake --build build/unit -j"$JOBS" </dev/null; then
    record unit 0 1 "cmake build failed"
else
    ctest --test-dir build/unit --output-on-failure -j"$JOBS" </dev/null 2>&1 | tee build/ctest.log
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' build/ctest.log | tail -n1)
    if [ -n "$line" ]; then
        total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
        bad=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
        record unit $((total - bad)) "$bad"
    else
        record unit 0 1 "ctest ran no tests"
    fi
fi

# ---- 3b. fuzz targets ---------------------------------------------------------------------------
# Bounded: SGIVM_FUZZ_SECONDS per target (3 targets), over a copy of test/fuzz/corpus/.
step "fuzz (scripts/fuzz.sh, ${SGIVM_FUZZ_SECONDS:-20} s per target)"
bash scripts/fuzz.sh </dev/null 2>&1 | tee build/fuzz.log
rc=${PIPESTATUS[0]}
f_ok=$(grep -cE '^fuzz [a-z_]+: passed' build/fuzz.log)
f_bad=$(grep -cE '^fuzz [a-z_]+: FAILED' build/fuzz.log)
if [ "$rc" -eq 2 ]; then
    record fuzz "$f_ok" $((f_bad + 1)) "targets not built: clang++ with libFuzzer (clang, libclang-rt-14-dev) missing or a build error"
else
    if [ "$rc" -ne 0 ] && [ "$f_bad" -eq 0 ]; then f_bad=1; fi
    if [ "$f_ok" -eq 0 ] && [ "$f_bad" -eq 0 ]; then f_bad=1; fi
    record fuzz "$f_ok" "$f_bad" "$([ "$f_bad" -eq 0 ] && echo targets || echo "targets; reproducers in build/fuzz/artifacts/")"
fi

# ---- 4. temporary cluster -----------------------------------------------------------------------
step "temporary cluster"
# Under /tmp when root: user postgres must be able to reach the cluster directory.
if sg_is_root; then TMP_BASE=/tmp; else TMP_BASE=${TMPDIR:-/tmp}; fi
TMP=$(mktemp -d "$TMP_BASE/sgivm-test.XXXXXX")
chmod 755 "$TMP"
PGDIR=$TMP/pg   # data/, server.log and the unix socket; owned by the cluster owner
sg_mkdir_owned "$PGDIR"
chmod 755 "$PGDIR"
SOCK=$PGDIR
CLUSTER_OK=0
# Settings that only make a throw-away cluster faster. Not synchronous_commit = off: the SQL
# decoding functions read only WAL that is flushed, so the tests would see commits late.
if sg_initdb "$PGDIR/data" "fsync = off
full_page_writes = off
log_min_messages = warning" &&
    sg_pg_start "$PGDIR/data" "$TEST_PORT" "$SOCK" "$PGDIR/server.log" ""; then
    CLUSTER_OK=1
    echo "cluster in $PGDIR/data, socket $SOCK, port $TEST_PORT"
else
    record cluster 0 1 "could not create or start the temporary cluster"
fi
export PGHOST=$SOCK PGPORT=$TEST_PORT PGUSER=postgres
unset PGDATABASE PGSERVICE PGOPTIONS

# ---- 5. pg_regress ------------------------------------------------------------------------------
if [ $CLUSTER_OK -eq 1 ]; then
    step "pg_regress (make installcheck)"
    rm -rf build/regress
    mkdir -p build/regress
    make installcheck </dev/null 2>&1 | tee "$TMP/regress.out"
    rc=${PIPESTATUS[0]}
    count_regress "$TMP/regress.out"
    if [ "$R_OK" -eq 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
    if [ "$rc" -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
    record pg_regress "$R_OK" "$R_FAIL"
    if [ "$R_FAIL" -ne 0 ]; then
        show_head build/regress/regression.diffs 300
        show_head "$PGDIR/server.log" 50
    fi
fi

# ---- 6. isolation -------------------------------------------------------------------------------
shopt -s nullglob
specs=(test/isolation/specs/*.spec)
if [ ${#specs[@]} -gt 0 ] && [ $CLUSTER_OK -eq 1 ]; then
    step "isolation (pg_isolation_regress)"
    names=()
    for s in "${specs[@]}"; do names+=("$(basename "$s" .spec)"); done
    rm -rf build/isolation
    mkdir -p build/isolation
    "$PGXS_DIR/test/isolation/pg_isolation_regress" \
        --inputdir=test/isolation --outputdir=build/isolation --bindir="$PG_BINDIR" \
        --dbname=isolation_regression --load-extension=stategrid_ivm \
        "${names[@]}" </dev/null 2>&1 | tee "$TMP/isolation.out"
    rc=${PIPESTATUS[0]}
    count_regress "$TMP/isolation.out"
    if [ "$R_OK" -eq 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
    if [ "$rc" -ne 0 ] && [ "$R_FAIL" -eq 0 ]; then R_FAIL=1; fi
    record isolation "$R_OK" "$R_FAIL"
    [ "$R_FAIL" -eq 0 ] || show_head build/isolation/regression.diffs 300
elif [ ${#specs[@]} -gt 0 ]; then
    record isolation 0 1 "no cluster"
fi

# The temporary cluster is not needed any more: TAP tests make their own.
if [ $CLUSTER_OK -eq 1 ]; then sg_pg_stop "$PGDIR/data" fast || true; fi

# ---- 6b. monitoring -----------------------------------------------------------------------------
# promtool on monitoring/alerts.yml; prometheus-postgres-exporter with monitoring/queries.yaml
# against a cluster of its own (port $TEST_PORT, free again), scraped with curl.
step "monitoring (test/monitoring/run.sh: promtool, prometheus-postgres-exporter, curl)"
SGIVM_TEST_PORT=$TEST_PORT bash test/monitoring/run.sh 2>&1 | tee build/monitoring.log
rc=${PIPESTATUS[0]}
m_ok=$(grep -c "^ok " build/monitoring.log)
m_bad=$(grep -c "^not ok " build/monitoring.log)
if [ "$rc" -ne 0 ] && [ "$m_bad" -eq 0 ]; then m_bad=1; fi
if [ "$m_ok" -eq 0 ] && [ "$m_bad" -eq 0 ]; then m_bad=1; fi
record monitoring "$m_ok" "$m_bad" "checks"

# ---- 7. TAP -------------------------------------------------------------------------------------
taps=(test/t/*.pl)
if [ ${#taps[@]} -gt 0 ]; then
    step "TAP (prove)"
    # A copy the cluster owner can write (tmp_check/) and read, whatever the checkout's permissions.
    mkdir -p "$TMP/tap/tmp"   # TMPDIR of the tests: sockets and temp dirs stay in $TMP
    cp -a test examples sql README.md "$TMP/tap/"
    rm -rf "$TMP/tap/test/tmp_check"
    sg_write_conf "$TMP/tap/extension.conf"
    if sg_is_root; then chown -R postgres:postgres "$TMP/tap"; fi
    # A small disk that t/060_disk_full.pl fills: a tmpfs owned by the cluster owner. Mounting
    # needs root; without it the test skips, saying why.
    TMPFS_WHY="scripts/test.sh mounts one when run as root"
    if sg_is_root; then
        mkdir -p "$TMP/tap/tmpfs"
        if out=$(mount -t tmpfs -o size=32m,uid=postgres,gid=postgres,mode=0700 tmpfs "$TMP/tap/tmpfs" 2>&1); then
            TAP_TMPFS=$TMP/tap/tmpfs
        else
            TMPFS_WHY="mount -t tmpfs failed: $out"
        fi
    fi
    (
        cd "$TMP/tap/test" &&
            sg_as_owner env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE PATH="$PG_BINDIR:$PATH" \
                PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
                PG_CONFIG="$PG_CONFIG" \
                TESTDIR="$TMP/tap/test" \
                TMPDIR="$TMP/tap/tmp" \
                TEMP_CONFIG="$TMP/tap/extension.conf" \
                SGIVM_SRCDIR="$TMP/tap" \
                SGIVM_TMPFS="$TAP_TMPFS" SGIVM_TMPFS_WHY="$TMPFS_WHY" \
                prove -I "$PGXS_DIR/test/perl" -I . --timer t/*.pl </dev/null
    ) 2>&1 | tee "$TMP/tap.out"
    rc=${PIPESTATUS[0]}
    if [ -n "$TAP_TMPFS" ]; then umount -l "$TAP_TMPFS" && TAP_TMPFS=""; fi
    total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$TMP/tap.out" | tail -n1)
    total=${total:-0}
    # "t/x.pl (Wstat: ... Tests: N Failed: F)" in the Test Summary Report, one per bad file.
    # A file that failed without a failed assertion (died, bad plan) counts as one failure.
    failed_asserts=0
    bad=0
    while read -r f; do
        if [ "$f" -eq 0 ]; then bad=$((bad + 1)); else failed_asserts=$((failed_asserts + f)); fi
    done < <(sed -nE 's/^[^ ].*\(Wstat: .* Failed: ([0-9]+)\)$/\1/p' "$TMP/tap.out")
    bad=$((bad + failed_asserts))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    if [ "$total" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
    passed=$((total - failed_asserts))
    [ "$passed" -ge 0 ] || passed=0
    # a file that skips (t/060_disk_full.pl without a tmpfs) says so in the summary
    skipped=$(grep -cE 't/[^ ]+ \.+ skipped:' "$TMP/tap.out")
    record tap "$passed" "$bad" "assertions$([ "$skipped" -eq 0 ] || echo "; $skipped file(s) skipped, see above")"
    if [ "$bad" -ne 0 ]; then
        for l in "$TMP"/tap/test/tmp_check/log/*; do
            case $l in
                */regress_log_*) show_tail "$l" 60 ;;
                *.log) show_tail "$l" 30 ;;   # server logs of the test's nodes
            esac
        done
    fi
fi

# ---- 8. benchmark smoke run ---------------------------------------------------------------------
# bench/run --quick: every benchmark scenario at tiny sizes, in its own cluster. It fails only if
# a scenario breaks (a step errors, verify() is not clean), never on speed. Its report goes to
# build/bench-quick/, so CI leaves bench/report.md alone.
step "bench-quick (bench/run --quick)"
rm -rf build/bench-quick
mkdir -p build/bench-quick
bench/run --quick --port "${SGIVM_BENCH_PORT:-54332}" --out build/bench-quick </dev/null >build/bench-quick/run.log 2>&1
rc=$?
sed -n '/^==== report/,$p' build/bench-quick/run.log
if [ $rc -eq 0 ]; then
    record bench-quick 1 0 "report in build/bench-quick/report.md"
else
    show_tail build/bench-quick/run.log 80
    record bench-quick 0 1 "bench/run --quick failed; log in build/bench-quick/run.log"
fi

# ---- 9. Debian package --------------------------------------------------------------------------
# Last: in CI its apt-get install replaces the files make install put into the system with the
# package's (the same sources), and its cluster uses $SGIVM_TEST_PORT, free again by now.
step "deb (test/scripts/deb_package.sh: build, install and test the Debian package)"
bash test/scripts/deb_package.sh </dev/null 2>&1 | tee build/deb-package.log
record_checks deb build/deb-package.log "${PIPESTATUS[0]}" "checks${SGIVM_DEB_ROOT:+; installed with dpkg -x into $SGIVM_DEB_ROOT}"

finish
