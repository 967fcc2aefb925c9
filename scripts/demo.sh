#!/usr/bin/env bash
# The demo (README, command (a)): from a fresh Debian 12 machine to the State Grid warehouse
# running inside PostgreSQL, with sample data and its results.
#
#   bash scripts/demo.sh
#
# Steps (each prints a "==== step" header):
#   1. packages        scripts/install-deps.sh (apt-get when root)
#   2. build           scripts/build-install.sh (make && make install)
#   3. cluster         scripts/stategrid/start.sh --no-pipeline: a local cluster in .cluster/
#                      with the settings the extension needs (scripts/cluster.sh start; port
#                      $SGIVM_PORT, default 54329), database stategrid_db, CREATE EXTENSION
#                      stategrid_ivm, check_setup(), the source tables power_user and
#                      power_consumption (examples/stategrid/schema.sql)
#   4. start over      scripts/stategrid/reset.sh: drops the pipeline of an earlier run with its
#                      tables (drop_pipeline('stategrid', true)) and empties the source tables
#   5. change stream   a temporary slot with the output plugin stategrid_ivm sees the hand-written
#                      rows of examples/stategrid/sample_data.sql (5 transactions) committed;
#                      a few lines of its text form
#   6. pipeline        scripts/stategrid/start.sh: SELECT stategrid_ivm.create_stategrid_pipeline()
#                      backfills the ODS, DWD and DWS tables from those rows, then streams
#   7. more data       streamed, one transaction each: generate_sample_data(users => 30,
#                      days => 3) and generate_follow_up_changes(10) (corrections, users moving,
#                      late readings, deletions); SELECT stategrid_ivm.sync('stategrid')
#   8. results         scripts/stategrid/query-results.sh: row counts, the newest DWD rows, the
#                      region daily stats, the top users per day and region, verify(), and the
#                      pipeline's state and lag
# Safe to re-run (it starts over at step 4). The cluster keeps running afterwards; the step
# scripts in scripts/stategrid/ (live.sh, insert-more-data.sh, query-results.sh, status.sh,
# stop.sh, start.sh) work on it.
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/stategrid/common.sh"
cd "$SG_ROOT"
unset SGIVM_PSQL   # the demo always uses the local cluster
SG_PSQL_CMD=(bash "$SG_ROOT/scripts/cluster.sh" psql)

PEEK_SLOT=stategrid_demo_peek
STARTED=$(date +%s)

step() { echo; echo "==== $*"; }

step "1. packages (scripts/install-deps.sh)"
if ! bash scripts/install-deps.sh; then
    echo "demo: packages are missing; run this script as root, or install them as shown above." >&2
    exit 1
fi

step "2. build and install the extension (scripts/build-install.sh)"
bash scripts/build-install.sh --quiet

step "3. local cluster, database $SG_DB, extension, source tables (scripts/stategrid/start.sh --no-pipeline)"
bash scripts/stategrid/start.sh --no-pipeline
sgq "$SG_DB" -c "SELECT requirement, current_value, ok FROM stategrid_ivm.check_setup()"

step "4. start over (scripts/stategrid/reset.sh)"
bash scripts/stategrid/reset.sh

step "5. the change stream: hand-written rows (examples/stategrid/sample_data.sql) seen by a slot"
echo "A temporary slot with the plugin stategrid_ivm, created before the rows are committed:"
echo "  SELECT pg_create_logical_replication_slot('$PEEK_SLOT', 'stategrid_ivm', temporary => true);"
echo "then the 5 transactions of sample_data.sql, then"
echo "  SELECT data FROM pg_logical_slot_peek_changes('$PEEK_SLOT', NULL, NULL, 'format', 'text',"
echo "                                               'tables', 'power_user,power_consumption');"
echo "(first and last lines; the slot is dropped when the session ends; docs/change-format.md)"
echo
sgq "$SG_DB" -At \
    -c "DO \$\$ BEGIN PERFORM pg_create_logical_replication_slot('$PEEK_SLOT', 'stategrid_ivm', temporary => true); END \$\$" \
    -f examples/stategrid/sample_data.sql \
    -c "WITH c AS (SELECT row_number() OVER () AS n, count(*) OVER () AS total, data
                   FROM pg_logical_slot_peek_changes('$PEEK_SLOT', NULL, NULL, 'format', 'text',
                                                     'tables', 'power_user,power_consumption'))
        SELECT CASE WHEN n = 5 THEN format('    ... %s more lines ...', total - 10)
                    ELSE '    ' || left(data, 200) || CASE WHEN length(data) > 200 THEN ' ...' ELSE '' END END
        FROM c WHERE n <= 5 OR n > total - 6 ORDER BY n"
echo
sgq "$SG_DB" -c "
    SELECT u.user_id, u.user_name, u.usage_type, u.region_name, c.consumption_id, c.consumption_date,
           c.consumption_amount AS kwh, c.consumption_cost AS yuan, c.remark
    FROM power_consumption c JOIN power_user u USING (user_id)
    ORDER BY c.consumption_id"

step "6. the warehouse: SELECT stategrid_ivm.create_stategrid_pipeline() (scripts/stategrid/start.sh)"
bash scripts/stategrid/start.sh

step "7. more data, streamed: generated users and readings, then follow-up changes"
echo "SELECT stategrid_ivm.generate_sample_data(users => 30, days => 3, start_date => '2024-03-01');"
sgq "$SG_DB" -At -c "SELECT '  ' || stategrid_ivm.generate_sample_data(users => 30, days => 3, start_date => '2024-03-01')
                            || ' readings of 30 new users committed'"
echo "SELECT stategrid_ivm.generate_follow_up_changes(10);"
sgq "$SG_DB" -At -c "SELECT '  ' || stategrid_ivm.generate_follow_up_changes(10)
                            || ' follow-up changes committed (corrected readings, users moving region, late readings, deletions)'"
echo "SELECT stategrid_ivm.sync('$SG_PIPELINE');"
sg_sync "120 s"

step "8. results (scripts/stategrid/query-results.sh)"
bash scripts/stategrid/query-results.sh --no-sync

step "done in $(($(date +%s) - STARTED)) s; the cluster keeps running"
cat <<EOF
Next:
  bash scripts/stategrid/live.sh --rate 200 --seconds 30   # readings streaming in, the warehouse following
  bash scripts/stategrid/insert-more-data.sh 10 3          # more users, readings and follow-up changes
  bash scripts/stategrid/query-results.sh                  # the results again
  bash scripts/stategrid/status.sh                         # pipeline state, lag, workers, slots
  bash scripts/stategrid/stop.sh                           # stop the cluster (start.sh starts it again)
  eval "\$(scripts/cluster.sh env)"; psql $SG_DB         # look around
EOF
