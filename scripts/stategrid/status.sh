#!/usr/bin/env bash
# Everything about the state of the warehouse, for monitoring and troubleshooting (what the
# Flink UI showed, and more): README.md "Troubleshooting" explains each part.
#
#   bash scripts/stategrid/status.sh [--queries]
#
#   1. the local cluster (scripts/cluster.sh status; skipped with SGIVM_PSQL)
#   2. SELECT * FROM stategrid_ivm.check_setup()      the server settings the extension needs
#   3. SELECT * FROM stategrid_ivm.pipelines           state, worker, lag, retained WAL, errors
#   4. SELECT * FROM stategrid_ivm.views               the maintained tables and their row counts (estimated)
#                                                      (--queries: with their defining SELECT)
#   5. pg_stat_activity                                the launcher and the pipeline workers
#   6. pg_replication_slots                            the pipelines' slots
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

QUERIES=0
case "${1:-}" in
    "") ;;
    --queries) QUERIES=1 ;;
    *)
        echo "usage: $0 [--queries]" >&2
        exit 2
        ;;
esac

if [ -z "${SGIVM_PSQL:-}" ]; then
    sg_title "1. local cluster"
    bash "$SG_ROOT/scripts/cluster.sh" status || true
fi
sg_require_server
if [ "$(sg_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$SG_DB'")" = 0 ] ||
    [ "$(sg_value "$SG_DB" "SELECT count(*) FROM pg_extension WHERE extname = 'stategrid_ivm'")" = 0 ]; then
    echo "database $SG_DB with the extension stategrid_ivm does not exist: bash scripts/stategrid/start.sh creates it" >&2
    exit 1
fi

sg_title "2. server settings: SELECT * FROM stategrid_ivm.check_setup()"
sgq "$SG_DB" -c "SELECT * FROM stategrid_ivm.check_setup()"

sg_title "3. pipelines: SELECT * FROM stategrid_ivm.pipelines"
sgq "$SG_DB" -x -c "SELECT * FROM stategrid_ivm.pipelines ORDER BY name"

sg_title "4. maintained tables: SELECT * FROM stategrid_ivm.views"
if [ $QUERIES -eq 1 ]; then
    sgq "$SG_DB" -c "SELECT * FROM stategrid_ivm.views"
else
    sgq "$SG_DB" -c "SELECT pipeline, view_name, kind, rows, state FROM stategrid_ivm.views"
fi

sg_title "5. workers: pg_stat_activity WHERE backend_type LIKE 'stategrid_ivm%'"
sgq "$SG_DB" -c "
    SELECT pid, backend_type, application_name AS name, datname, state, query AS activity,
           backend_start
    FROM pg_stat_activity WHERE backend_type LIKE 'stategrid_ivm%' ORDER BY backend_start"

sg_title "6. replication slots: pg_replication_slots"
sgq "$SG_DB" -c "
    SELECT s.slot_name, p.name AS pipeline, s.plugin, s.database, s.active, s.restart_lsn,
           s.confirmed_flush_lsn, s.wal_status,
           pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), s.restart_lsn)) AS retained_wal
    FROM pg_replication_slots s LEFT JOIN stategrid_ivm.pipelines p USING (slot_name)
    ORDER BY s.slot_name"
