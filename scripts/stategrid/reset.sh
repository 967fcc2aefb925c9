#!/usr/bin/env bash
# Starts the State Grid warehouse over from nothing (scripts/demo.sh runs it before each demo):
#
#   bash scripts/stategrid/reset.sh
#
#   - drops the pipeline stategrid with its tables: SELECT stategrid_ivm.drop_pipeline('stategrid', true)
#     (worker, replication slot and origin, the ODS, DWD and DWS tables);
#   - empties the source tables: TRUNCATE power_consumption, power_user RESTART IDENTITY;
#   - drops the slot stategrid_demo left by older versions of the demo.
#
# The database, the extension and the (empty) source tables stay. Recreate the pipeline with
# bash scripts/stategrid/start.sh. This deletes the rows of power_user and power_consumption
# in stategrid_db: do not run it on a database whose data you want to keep.
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$SG_ROOT"

sg_require_server
if [ "$(sg_value postgres "SELECT count(*) FROM pg_database WHERE datname = '$SG_DB'")" = 0 ]; then
    echo "reset: database $SG_DB does not exist, nothing to reset"
    exit 0
fi
if [ "$(sg_value "$SG_DB" "SELECT count(*) FROM pg_extension WHERE extname = 'stategrid_ivm'")" = 1 ] &&
    [ "$(sg_value "$SG_DB" "SELECT count(*) FROM stategrid_ivm.pipelines WHERE name = '$SG_PIPELINE'")" = 1 ]; then
    sgq "$SG_DB" -c "SELECT stategrid_ivm.drop_pipeline('$SG_PIPELINE', true)" >/dev/null
    echo "reset: dropped pipeline $SG_PIPELINE with its ODS, DWD and DWS tables"
fi
sgq "$SG_DB" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
                 WHERE slot_name = 'stategrid_demo' AND NOT active" >/dev/null
if [ -n "$(sg_value "$SG_DB" "SELECT to_regclass('power_user')::text || to_regclass('power_consumption')::text")" ]; then
    sgq "$SG_DB" -c "TRUNCATE power_consumption, power_user RESTART IDENTITY"
    echo "reset: emptied power_user and power_consumption"
fi
