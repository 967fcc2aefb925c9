#!/usr/bin/env bash
# Stops the local cluster of this checkout (the original example's stop-services.sh).
#
#   bash scripts/stategrid/stop.sh
#
# Nothing is lost: the database, the tables and the pipeline stay. The pipeline's replication
# slot keeps every source change not yet applied, and its worker picks up where it stopped when
# the cluster starts again (bash scripts/stategrid/start.sh). To stop only the pipeline and
# keep the server running:  SELECT stategrid_ivm.pause_pipeline('stategrid');
set -euo pipefail
# shellcheck source=scripts/stategrid/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$SG_ROOT"

if [ -n "${SGIVM_PSQL:-}" ]; then
    echo "stop.sh manages the local cluster; stop your own server your way (docker compose -f docker/compose.yaml stop)." >&2
    exit 2
fi
bash scripts/cluster.sh stop
