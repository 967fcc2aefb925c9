#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and the demo need.
#
#   bash scripts/install-deps.sh
#
# As root: `apt-get update` and ONE `apt-get install` (the PostgreSQL server and its headers in
# the same install, so they are the same minor version). Idempotent: when everything is already
# installed (and server and headers agree on the version) apt is not called at all; set
# SGIVM_FORCE_APT=1 to call it anyway. Not root: prints what is missing and the command to run.
#
# Every exit prints why, on every starting state (nothing installed, server without headers,
# headers without server, the two at different versions, everything present):
# test/scripts/install_deps.sh runs this script against each with stand-ins for dpkg-query,
# apt-get and apt-cache.
set -euo pipefail
# Under set -e a failing command ends the script; say which one, so that no exit is silent.
trap 'echo "install-deps: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

PACKAGES=(
    postgresql-15             # the server (test_decoding, pgoutput are part of it)
    postgresql-server-dev-15  # headers, pg_config, PGXS, pg_regress, pg_isolation_regress, TAP modules
    build-essential g++ make  # the extension is C++17
    debhelper dpkg-dev postgresql-server-dev-all  # dpkg-buildpackage of debian/ (pg_buildext, dh --with pgxs_loop)
    cmake libgtest-dev        # the GoogleTest suite of src/core (ctest)
    clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer targets with ASan and UBSan (clang 14's runtimes)
    llvm-14                   # llvm-symbolizer: source lines in the fuzzers' crash reports
    pkg-config
    libipc-run-perl libio-pty-perl  # PostgreSQL::Test::Cluster (TAP tests) needs IPC::Run
    perl                      # prove
    shellcheck                # scripts/test.sh lints every shell script of the repository
    prometheus prometheus-postgres-exporter curl  # test/monitoring/run.sh: promtool, the exporter, scrapes
    util-linux                # runuser (clusters are owned by postgres when we are root)
    procps                    # ps / kill, used by the scripts' cleanup
    ca-certificates
)

# The candidate version apt would install, or nothing (an unknown package, no apt-cache).
candidate_of() {
    { apt-cache policy "$1" 2>/dev/null || true; } | awk '/Candidate:/ { print $2; exit }'
}

# The installed version of a package, or nothing when it is not installed. dpkg-query exits 1
# for a package it has never heard of: that is an answer ("not installed"), not a failure, so it
# must not end the script under set -e / pipefail (the bug of issue 12).
installed_version() {
    { dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null || true; } |
        awk '$1 == "installed" { print $2; exit }'
}

# Reads the state of every package into missing[], server_v, headers_v and version_skew.
read_state() {
    missing=()
    local p
    for p in "${PACKAGES[@]}"; do
        [ -n "$(installed_version "$p")" ] || missing+=("$p")
    done
    server_v=$(installed_version postgresql-15)
    headers_v=$(installed_version postgresql-server-dev-15)
    version_skew=0
    if [ -n "$server_v" ] && [ -n "$headers_v" ] && [ "$server_v" != "$headers_v" ]; then
        version_skew=1
    fi
}

# Prints, one line each, what is wrong with the current state (nothing when it is complete).
describe_state() {
    [ ${#missing[@]} -eq 0 ] || echo "install-deps: missing packages: ${missing[*]}"
    if [ $version_skew -eq 1 ]; then
        echo "install-deps: postgresql-15 ($server_v) and postgresql-server-dev-15 ($headers_v) differ: the extension must be built with the headers of the server that loads it"
    fi
}

read_state
if [ ${#missing[@]} -eq 0 ] && [ $version_skew -eq 0 ] && [ "${SGIVM_FORCE_APT:-0}" != 1 ]; then
    echo "install-deps: all packages present (postgresql-15 $server_v)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    describe_state >&2
    [ "${SGIVM_FORCE_APT:-0}" != 1 ] || echo "install-deps: SGIVM_FORCE_APT=1 asks for apt-get, which needs root" >&2
    echo "install-deps: the command that installs them, to run as root (or with sudo):" >&2
    echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}" >&2
    echo "install-deps: not root, so apt-get was not called: run the command above, then this script again" >&2
    exit 1
fi

describe_state
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
if ! apt-get update -qq </dev/null; then
    echo "install-deps: apt-get update failed (see its messages above); the package lists may be stale, trying the install anyway" >&2
fi

install=("${PACKAGES[@]}")
# postgresql-contrib-15 is a virtual package on Debian 12 (provided by postgresql-15); install it
# by name only where it is a real package.
contrib=$(candidate_of postgresql-contrib-15)
if [ -n "$contrib" ] && [ "$contrib" != "(none)" ]; then
    install+=(postgresql-contrib-15)
fi

# One install of everything, the server and its headers together (apt upgrades the older of the
# two when they differ).
log=$(mktemp "${TMPDIR:-/tmp}/sgivm-apt.XXXXXX")
echo "install-deps: apt-get install ${install[*]}"
if ! apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${install[@]}" </dev/null >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "install-deps: apt-get install failed (its last lines are above)" >&2
    exit 1
fi
rm -f "$log"

read_state
if [ ${#missing[@]} -ne 0 ] || [ $version_skew -ne 0 ]; then
    describe_state >&2
    echo "install-deps: apt-get install succeeded, but the packages above are still not right; check the apt sources (Debian 12 bookworm main, with bookworm-updates and the security updates)" >&2
    exit 1
fi
echo "install-deps: done (postgresql-15 $server_v, postgresql-server-dev-15 $headers_v)"
