#!/usr/bin/env bash
# Starts the State Grid warehouse on the local cluster (what the original example's
# start-services.sh + init-postgres-tables.sh + run-all-jobs.sh did, in one step):
#
#   bash scripts/stategrid/start.sh [--no-pipeline]
#
#   1. the local cluster of this checkout (scripts/cluster.sh start: created if missing, with
#      the settings stategrid_ivm needs; port $SGIVM_PORT, default 54329)
#   2. database stategrid_db (SGIVM_DB) and CREATE EXTENSION stategrid_ivm
#   3. the source tables power_user and power_consumption (examples/stategrid/schema.sql;
#      created only if missing)
#   4. the pipeline stategrid (SGIVM_PIPELINE): SELECT stategrid_ivm.create_stategrid_pipeline()
#      if it does not exist (it backfills from the rows already in the source tables, then
#      streams); resume_pipeline() if it is paused. --no-pipeline stops after step 3.
#
# Safe to run any number of times. The extension must be installed first
# (bash scripts/build-install.sh, or bash scripts/demo.sh which does everything).
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$SG_ROOT"

WITH_PIPELINE=1
case "${1:-}" in
    "") ;;
    --no-pipeline) WITH_PIPELINE=0 ;;
    *)
        echo "usage: $0 [--no-pipeline]" >&2
        exit 2
        ;;
esac

if [ -n "${SGIVM_PSQL:-}" ]; then
    echo "start.sh manages the local cluster; with SGIVM_PSQL set, use the other scripts (or unset it)." >&2
    exit 2
fi
if [ ! -f "$("$PG_CONFIG" --sharedir 2>/dev/null)/extension/stategrid_ivm.control" ] || [ ! -f "$(sg_installed_lib)" ]; then
    echo "stategrid_ivm is not installed: run  bash scripts/build-install.sh  (as root) first," >&2
    echo "or  bash scripts/demo.sh  which installs the packages, builds and starts everything." >&2
    exit 1
fi

bash scripts/cluster.sh start

if [ "$(sg_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$SG_DB'")" = 0 ]; then
    sgq postgres -c "CREATE DATABASE $SG_DB"
    echo "created database $SG_DB"
fi
sgq "$SG_DB" -c "CREATE EXTENSION IF NOT EXISTS stategrid_ivm"
bad=$(sg_value "$SG_DB" "SELECT string_agg(requirement || ' = ' || coalesce(current_value, '?'), ', ') FROM stategrid_ivm.check_setup() WHERE NOT ok")
if [ -n "$bad" ]; then
    echo "the server is not set up for stategrid_ivm ($bad):" >&2
    sgq "$SG_DB" -c "SELECT requirement, current_value, fix FROM stategrid_ivm.check_setup() WHERE NOT ok" >&2
    exit 1
fi
sgq "$SG_DB" -f examples/stategrid/schema.sql
echo "source tables power_user, power_consumption ready in $SG_DB"

if [ $WITH_PIPELINE -eq 1 ]; then
    state=$(sg_value "$SG_DB" "SELECT state FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'")
    case $state in
        "")
            sgq "$SG_DB" -c "SELECT stategrid_ivm.create_stategrid_pipeline('$SG_PIPELINE')" >/dev/null
            echo "created pipeline $SG_PIPELINE: ODS, DWD and DWS tables maintained from power_user and power_consumption"
            ;;
        paused)
            sgq "$SG_DB" -c "SELECT stategrid_ivm.resume_pipeline('$SG_PIPELINE')" >/dev/null
            echo "resumed pipeline $SG_PIPELINE"
            ;;
        *) echo "pipeline $SG_PIPELINE exists (state $state)" ;;
    esac
    sg_sync "60 s" || true
    sgq "$SG_DB" -c "SELECT name, state, worker_pid, round(lag_seconds::numeric, 3) AS lag_seconds, lag_bytes,
                            transactions_applied, rows_applied, last_error
                     FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'"
fi
echo "connect:  eval \"\$(scripts/cluster.sh env)\"; psql $SG_DB"
