#!/usr/bin/env bash
# Installs every Debian 12 package that building, testing and the demo need.
#
#   bash scripts/install-deps.sh
#
# As root: `apt-get update` and ONE `apt-get install` (the PostgreSQL server and its headers in
# the same install, so they are the same minor version). Idempotent: when everything is already
# installed (and server and headers agree on the version) apt is not called at all; set
# SGIVM_FORCE_APT=1 to call it anyway. Not root: prints what is missing and the command to run.
set -euo pipefail

PACKAGES=(
    postgresql-15             # the server (test_decoding, pgoutput are part of it)
    postgresql-server-dev-15  # headers, pg_config, PGXS, pg_regress, pg_isolation_regress, TAP modules
    build-essential g++ make  # the extension is C++17
    cmake libgtest-dev        # the GoogleTest suite of src/core (ctest)
    clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer targets with ASan and UBSan (clang 14's runtimes)
    llvm-14                   # llvm-symbolizer: source lines in the fuzzers' crash reports
    pkg-config
    libipc-run-perl libio-pty-perl  # PostgreSQL::Test::Cluster (TAP tests) needs IPC::Run
    perl                      # prove
    util-linux                # runuser (clusters are owned by postgres when we are root)
    procps                    # ps / kill, used by the scripts' cleanup
    ca-certificates
)

# postgresql-contrib-15 is a virtual package on Debian 12 (provided by postgresql-15); install
# it by name only where it is a real package.
candidate_of() {
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }'
}

installed_version() {
    dpkg-query -W -f='${db:Status-Status} ${Version}\n' "$1" 2>/dev/null | awk '$1 == "installed" { print $2 }'
}

missing=()
for p in "${PACKAGES[@]}"; do
    [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
server_v=$(installed_version postgresql-15)
headers_v=$(installed_version postgresql-server-dev-15)
version_skew=0
if [ -n "$server_v" ] && [ -n "$headers_v" ] && [ "$server_v" != "$headers_v" ]; then
    version_skew=1
fi

if [ ${#missing[@]} -eq 0 ] && [ $version_skew -eq 0 ] && [ "${SGIVM_FORCE_APT:-0}" != 1 ]; then
    echo "install-deps: all packages present (postgresql-15 $server_v)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: not root, not calling apt-get." >&2
    [ ${#missing[@]} -eq 0 ] || echo "install-deps: missing packages: ${missing[*]}" >&2
    [ $version_skew -eq 0 ] || echo "install-deps: postgresql-15 ($server_v) and postgresql-server-dev-15 ($headers_v) differ" >&2
    echo "install-deps: run as root:  apt-get update && apt-get install -y ${PACKAGES[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
apt-get update -qq </dev/null

install=("${PACKAGES[@]}")
contrib=$(candidate_of postgresql-contrib-15)
if [ -n "$contrib" ] && [ "$contrib" != "(none)" ]; then
    install+=(postgresql-contrib-15)
fi

echo "install-deps: apt-get install ${install[*]}"
apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${install[@]}" </dev/null >/tmp/sgivm-apt.$$.log 2>&1 || {
    tail -n 40 /tmp/sgivm-apt.$$.log >&2
    rm -f /tmp/sgivm-apt.$$.log
    echo "install-deps: apt-get install failed" >&2
    exit 1
}
rm -f /tmp/sgivm-apt.$$.log
echo "install-deps: done (postgresql-15 $(installed_version postgresql-15), server-dev $(installed_version postgresql-server-dev-15))"
