# Shared helpers of scripts/stategrid/*.sh (sourced, not run): how to reach the State Grid
# database and run SQL in it.
#
# By default the scripts talk to the local cluster of this checkout (scripts/cluster.sh, port
# $SGIVM_PORT or 54329). To point them at another server, set SGIVM_PSQL to the psql command
# to use, e.g. for the Docker image (docker/):
#   SGIVM_PSQL="docker compose -f docker/compose.yaml exec -T postgres psql -U postgres" \
#       bash scripts/stategrid/query-results.sh
#   SGIVM_PSQL="psql -h db.example -U me" bash scripts/stategrid/status.sh
# SGIVM_DB (default stategrid_db) and SGIVM_PIPELINE (default stategrid) name the database and
# the pipeline.
# shellcheck shell=bash

# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# shellcheck disable=SC2034  # used by the scripts that source this file
SG_DB=${SGIVM_DB:-stategrid_db}
SG_PIPELINE=${SGIVM_PIPELINE:-stategrid}

if [ -n "${SGIVM_PSQL:-}" ]; then
    read -r -a SG_PSQL_CMD <<<"$SGIVM_PSQL"
else
    SG_PSQL_CMD=(bash "$SG_ROOT/scripts/cluster.sh" psql)
fi

# sg_conninfo DB [APPLICATION_NAME]: a connection string (passed as psql's -d, so that it also
# reaches a psql run inside a container). NOTICEs ("already exists, skipping") are not shown.
sg_conninfo() {
    echo "dbname=$1 application_name='${2:-stategrid_ivm scripts}' options='-c client_min_messages=warning'"
}

# sgq DB [psql args...]: psql on database DB; stops at the first error; no psqlrc, no pager.
sgq() {
    local db=$1
    shift
    "${SG_PSQL_CMD[@]}" -X -q -v ON_ERROR_STOP=1 -P pager=off -d "$(sg_conninfo "$db")" "$@" </dev/null
}

# sg_value DB SQL: the single value a query returns (unaligned, no header).
sg_value() { sgq "$1" -At -c "$2"; }

# sg_title TEXT: a section header.
sg_title() { echo; echo "---- $*"; }

# Is the server reachable? Explains what to do when it is not.
sg_require_server() {
    if sg_value postgres "SELECT 1" >/dev/null 2>&1; then return 0; fi
    if [ -n "${SGIVM_PSQL:-}" ]; then
        echo "cannot connect with: $SGIVM_PSQL" >&2
    else
        echo "the local cluster is not running: start it with  bash scripts/stategrid/start.sh" >&2
    fi
    exit 1
}

# Does the database exist, with the extension and the pipeline? Explains what is missing.
sg_require_pipeline() {
    sg_require_server
    if [ "$(sg_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$SG_DB'")" = 0 ]; then
        echo "database $SG_DB does not exist: create it with  bash scripts/stategrid/start.sh" >&2
        exit 1
    fi
    if [ "$(sg_value "$SG_DB" "SELECT count(*) FROM pg_extension WHERE extname = 'stategrid_ivm'")" = 0 ] ||
        [ "$(sg_value "$SG_DB" "SELECT count(*) FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'")" = 0 ]; then
        echo "pipeline $SG_PIPELINE does not exist in $SG_DB: create it with  bash scripts/stategrid/start.sh" >&2
        exit 1
    fi
}

# sg_sync [TIMEOUT]: waits until the warehouse has applied every source transaction committed so
# far (stategrid_ivm.sync). Prints how long that took; returns non-zero (with the reason) if
# the pipeline is paused, in error, or did not catch up within TIMEOUT (default 60 s).
sg_sync() {
    local timeout=${1:-60 s} out
    if out=$(sgq "$SG_DB" -At -c "
            SELECT format('synced: pipeline %s applied everything committed up to %s (waited %s ms)',
                          '$SG_PIPELINE', lsn, round(extract(epoch FROM clock_timestamp() - t0) * 1000))
            FROM (SELECT clock_timestamp() AS t0) s,
                 LATERAL stategrid_ivm.sync('$SG_PIPELINE', '$timeout') AS lsn" 2>&1); then
        echo "$out"
    else
        echo "$out" | sed 's/^psql:[^ ]* //' | grep -v -e '^CONTEXT:' >&2
        echo "(bash scripts/stategrid/status.sh shows the pipeline's state)" >&2
        return 1
    fi
}
