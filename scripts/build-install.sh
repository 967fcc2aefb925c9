#!/usr/bin/env bash
# The one build-and-install step of stategrid_ivm: `make` and `make install` against PostgreSQL
# 15's PGXS. scripts/demo.sh, scripts/test.sh and docker/Dockerfile all call this script, so the
# build that CI runs is the build the demo and the Docker image get.
#
#   bash scripts/build-install.sh [--quiet]
#
#   --quiet      print only the result (the make output goes to a log, shown if a step fails)
#
# Environment:
#   PG_CONFIG    pg_config of the PostgreSQL 15 to build against (default from scripts/lib.sh:
#                /usr/lib/postgresql/15/bin/pg_config)
#   SGIVM_JOBS   parallel make jobs (default: the number of CPUs)
#   DESTDIR      install into this staging directory instead of / (as `make install DESTDIR=`;
#                the Docker build uses it to copy only the installed files into the image)
#
# Writes the shared library into `pg_config --pkglibdir` and the control and SQL files into
# `pg_config --sharedir`/extension: run as root (or as a user who may write there). A running
# server keeps the old library until it restarts (it is preloaded); scripts/cluster.sh start
# restarts the local cluster when the installed library changed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SG_ROOT"

QUIET=0
for arg in "$@"; do
    case $arg in
        --quiet | -q) QUIET=1 ;;
        -h | --help)
            sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build-install: unknown argument $arg (usage: $0 [--quiet])" >&2
            exit 2
            ;;
    esac
done

JOBS=${SGIVM_JOBS:-$(nproc 2>/dev/null || echo 2)}
DESTDIR=${DESTDIR:-}

if [ ! -x "$PG_CONFIG" ]; then
    echo "build-install: $PG_CONFIG not found: PostgreSQL 15 and its headers are not installed." >&2
    echo "build-install: run scripts/install-deps.sh (as root), or set PG_CONFIG." >&2
    exit 1
fi
if [ ! -f "$("$PG_CONFIG" --pgxs)" ]; then
    echo "build-install: $("$PG_CONFIG" --pgxs) is missing: install postgresql-server-dev-15 (scripts/install-deps.sh)." >&2
    exit 1
fi

LOG=""
cleanup() { if [ -n "$LOG" ]; then rm -f "$LOG"; fi; }
trap cleanup EXIT
if [ $QUIET -eq 1 ]; then LOG=$(mktemp "${TMPDIR:-/tmp}/sgivm-build.XXXXXX"); fi

# run NAME CMD...: runs a step, its output to the terminal or (quiet) to the log.
run() {
    local name=$1
    shift
    if [ $QUIET -eq 0 ]; then
        echo "build-install: $*"
        "$@" </dev/null && return 0
    else
        "$@" </dev/null >>"$LOG" 2>&1 && return 0
        echo "build-install: $name failed; the last lines of its output:" >&2
        tail -n 40 "$LOG" >&2
    fi
    return 1
}

if ! run make make -j"$JOBS" PG_CONFIG="$PG_CONFIG"; then
    echo "build-install: make failed" >&2
    exit 1
fi
install_args=(install PG_CONFIG="$PG_CONFIG")
[ -z "$DESTDIR" ] || install_args+=(DESTDIR="$DESTDIR")
if ! run "make install" make "${install_args[@]}"; then
    echo "build-install: make install failed; it writes into $DESTDIR$("$PG_CONFIG" --pkglibdir) and $DESTDIR$("$PG_CONFIG" --sharedir)/extension: run it as root." >&2
    exit 1
fi
echo "build-install: installed $DESTDIR$(sg_installed_lib) and $DESTDIR$("$PG_CONFIG" --sharedir)/extension/stategrid_ivm{.control,--*.sql}"
