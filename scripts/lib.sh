# Shared shell helpers of scripts/*.sh (sourced, not run): where PostgreSQL 15 is, and how to
# create, start and stop a cluster with the settings stategrid_ivm needs. One place for them, so
# the demo cluster (scripts/cluster.sh) and the test clusters (scripts/test.sh) cannot drift.
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the scripts that source this file
SG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}

sg_is_root() { [ "$(id -u)" -eq 0 ]; }

# The account that owns and runs clusters: postgres when we are root (initdb refuses root).
sg_owner() { if sg_is_root; then echo postgres; else id -un; fi; }

# Runs a command as the cluster owner.
sg_as_owner() {
    if sg_is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Same, from / (the owner may not be allowed into the current directory; paths are absolute).
sg_as_owner_in_root() { (cd / && sg_as_owner "$@"); }

# True if the cluster owner can reach (search) directory $1.
sg_owner_can_reach() {
    if sg_is_root; then
        runuser -u postgres -- test -x "$1" 2>/dev/null
    else
        test -x "$1"
    fi
}

# Creates directory $1 owned by the cluster owner, mode 700.
sg_mkdir_owned() {
    mkdir -p "$1"
    if sg_is_root; then chown postgres:postgres "$1"; fi
    chmod 700 "$1"
}

# The server settings the extension needs (README.md explains each), plus $2 extra lines.
sg_write_conf() {
    local conf=$1 extra=${2:-}
    {
        echo "# stategrid_ivm: settings the extension needs"
        echo "wal_level = logical"
        echo "shared_preload_libraries = 'stategrid_ivm'"
        echo "output_plugin_libraries = 'pgoutput, test_decoding, stategrid_ivm'"
        echo "max_replication_slots = 10"
        echo "max_worker_processes = 16"
        echo "max_wal_senders = 10"
        [ -z "$extra" ] || printf '%s\n' "$extra"
    } >"$conf"
    if sg_is_root; then chown postgres:postgres "$conf"; fi
}

# sg_initdb DATADIR [EXTRA_CONF_LINES]: a UTF8 / C.UTF-8 cluster, superuser postgres, trust auth
# for local connections, the settings above in stategrid_ivm.conf (included by postgresql.conf).
sg_initdb() {
    local data=$1 extra=${2:-}
    sg_mkdir_owned "$data"
    sg_as_owner_in_root "$PG_BINDIR/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-instructions >"$data.initdb.log" 2>&1 </dev/null || {
        cat "$data.initdb.log" >&2
        return 1
    }
    rm -f "$data.initdb.log"
    sg_write_conf "$data/stategrid_ivm.conf" "$extra"
    echo "include_if_exists = 'stategrid_ivm.conf'" | sg_as_owner_in_root tee -a "$data/postgresql.conf" >/dev/null
}

# sg_pg_start DATADIR PORT SOCKETDIR LOGFILE [LISTEN]: start and wait (LISTEN: listen_addresses,
# default '' = unix socket only).
sg_pg_start() {
    local data=$1 port=$2 sock=$3 log=$4 listen=${5:-}
    sg_as_owner_in_root "$PG_BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-p $port -k '$sock' -c listen_addresses='$listen'" start >/dev/null </dev/null || {
        echo "could not start the cluster in $data; last lines of $log:" >&2
        tail -n 30 "$log" >&2 || true
        return 1
    }
}

# sg_pg_stop DATADIR [MODE]
sg_pg_stop() {
    sg_as_owner_in_root "$PG_BINDIR/pg_ctl" -D "$1" -m "${2:-fast}" -w -t 60 stop >/dev/null 2>&1 </dev/null
}

sg_pg_running() {
    sg_as_owner_in_root "$PG_BINDIR/pg_ctl" -D "$1" status >/dev/null 2>&1 </dev/null
}

# Start time (epoch seconds) of the running server of DATADIR (postmaster.pid line 3).
sg_pg_start_time() { sed -n 3p "$1/postmaster.pid" 2>/dev/null; }
# Port of the running server of DATADIR (postmaster.pid line 4).
sg_pg_port() { sed -n 4p "$1/postmaster.pid" 2>/dev/null; }

# The installed shared library (what shared_preload_libraries loads).
sg_installed_lib() { echo "$("$PG_CONFIG" --pkglibdir)/stategrid_ivm.so"; }

# Lists the repository's shell scripts (paths relative to $SG_ROOT): *.sh, and files whose first
# line runs bash or sh. From git when the tree is a checkout, else from the file system.
sg_shell_scripts() {
    (
        cd "$SG_ROOT" || exit 1
        if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
            git ls-files
        else
            find . -path ./build -prune -o -path ./.cluster -prune -o -type f -print | sed 's|^\./||'
        fi | while IFS= read -r f; do
            [ -f "$f" ] || continue
            case $f in
                *.sh) echo "$f" ;;
                *) head -n1 "$f" 2>/dev/null | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f" ;;
            esac
        done | sort -u
    )
}
