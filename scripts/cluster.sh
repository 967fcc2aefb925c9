#!/usr/bin/env bash
# A local PostgreSQL 15 cluster for this checkout, with the settings stategrid_ivm needs.
#
#   scripts/cluster.sh start          create (initdb) if missing, start; restart if the
#                                     installed stategrid_ivm.so is newer than the server
#   scripts/cluster.sh stop
#   scripts/cluster.sh status
#   scripts/cluster.sh psql [args]    psql as user postgres (database postgres by default)
#   scripts/cluster.sh env            export lines:  eval "$(scripts/cluster.sh env)"
#
# Lives in .cluster/ of the checkout (data/, server.log, the unix socket). Port: $SGIVM_PORT
# (default 54329). Connections: the unix socket in .cluster/ only (mode 700, trust
# authentication); SGIVM_LISTEN=localhost also listens on TCP (trust for local TCP too).
# Run as root, the cluster belongs to user postgres (initdb refuses root); run as a normal user,
# it belongs to that user. If user postgres cannot reach the checkout (e.g. a clone under /root),
# the data lives in /var/lib/postgresql/stategrid_ivm-<hash> instead; .cluster/LOCATION says so.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${SGIVM_PORT:-54329}
LISTEN=${SGIVM_LISTEN:-}
CLUSTER=$SG_ROOT/.cluster

# Where data, log and socket go.
base_dir() {
    local want=$CLUSTER
    mkdir -p "$CLUSTER"
    if sg_is_root && ! sg_owner_can_reach "$SG_ROOT"; then
        want=/var/lib/postgresql/stategrid_ivm-$(echo "$SG_ROOT" | cksum | cut -d' ' -f1)
        echo "$want" >"$CLUSTER/LOCATION"
    fi
    echo "$want"
}
BASE=$(base_dir)
DATA=$BASE/data
LOG=$BASE/server.log
SOCK=$BASE
# A unix socket path is limited to 107 bytes: fall back to a short directory.
if [ ${#SOCK} -gt 80 ]; then
    SOCK=/tmp/sgivm-$(echo "$BASE" | cksum | cut -d' ' -f1)
fi

ensure_dirs() {
    sg_mkdir_owned "$BASE"
    [ -d "$SOCK" ] || sg_mkdir_owned "$SOCK"
}

lib_sum() { cksum <"$(sg_installed_lib)" 2>/dev/null || echo none; }

running() { [ -f "$DATA/postmaster.pid" ] && sg_pg_running "$DATA"; }

current_port() { if running; then sg_pg_port "$DATA"; else echo "$PORT"; fi; }

cmd_start() {
    ensure_dirs
    if [ ! -f "$DATA/PG_VERSION" ]; then
        echo "cluster: initdb $DATA"
        sg_initdb "$DATA"
    fi
    local lib started
    lib=$(sg_installed_lib)
    if running; then
        started=$(sg_pg_start_time "$DATA")
        # The library is preloaded: a newer one takes effect only after a restart. make install
        # rewrites it every time, so a library with the same content as the loaded one is not
        # a reason to restart.
        if [ -f "$lib" ] && [ -n "$started" ] && [ "$(stat -c %Y "$lib")" -ge "$started" ] &&
            [ "$(lib_sum)" != "$(cat "$BASE/loaded-lib.sum" 2>/dev/null)" ]; then
            echo "cluster: $lib is newer than the server, restarting (preloaded library)"
            sg_pg_stop "$DATA" fast
        else
            echo "cluster: already running on port $(current_port), socket $SOCK"
            return 0
        fi
    fi
    lib_sum >"$BASE/loaded-lib.sum"
    sg_pg_start "$DATA" "$PORT" "$SOCK" "$LOG" "$LISTEN"
    echo "cluster: running on port $PORT, socket $SOCK, data $DATA, log $LOG"
}

cmd_stop() {
    if running; then
        sg_pg_stop "$DATA" fast
        echo "cluster: stopped"
    else
        echo "cluster: not running"
    fi
}

cmd_status() {
    if running; then
        echo "cluster: running (pid $(head -n1 "$DATA/postmaster.pid")), port $(current_port), socket $SOCK"
        echo "cluster: data $DATA, log $LOG"
    elif [ -f "$DATA/PG_VERSION" ]; then
        echo "cluster: stopped (data $DATA)"
        return 3
    else
        echo "cluster: not created (scripts/cluster.sh start creates it)"
        return 3
    fi
}

cmd_psql() {
    running || {
        echo "cluster: not running; start it with scripts/cluster.sh start" >&2
        exit 1
    }
    exec "$PG_BINDIR/psql" -h "$SOCK" -p "$(current_port)" -U postgres "$@"
}

cmd_env() {
    echo "export PGHOST='$SOCK'"
    echo "export PGPORT='$(current_port)'"
    echo "export PGUSER=postgres"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    psql) shift; cmd_psql "$@" ;;
    env) cmd_env ;;
    *)
        echo "usage: $0 start|stop|status|psql [args]|env" >&2
        exit 2
        ;;
esac
