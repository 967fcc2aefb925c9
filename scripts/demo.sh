#!/usr/bin/env bash
# The demo (README, command (a)): from a fresh Debian 12 machine to the stategrid_ivm change
# stream of sample State Grid rows.
#
#   bash scripts/demo.sh
#
# Steps (each prints a "==== step" header):
#   1. packages        scripts/install-deps.sh (apt-get when root)
#   2. build           make && make install
#   3. cluster         scripts/cluster.sh start: a local cluster in .cluster/ with the settings
#                      the extension needs (port $SGIVM_PORT, default 54329)
#   4. database        database stategrid_db, CREATE EXTENSION stategrid_ivm, check_setup()
#   5. source tables   examples/stategrid/schema.sql (power_user, power_consumption); the
#                      demo's own rows of an earlier run are removed (TRUNCATE)
#   6. slot            replication slot stategrid_demo with the plugin stategrid_ivm
#   7. sample data     examples/stategrid/sample_data.sql: 5 users, 10 readings, 1 update, 1 delete
#   8. change stream   the slot's changes in the text form, then the binary messages decoded
#                      with stategrid_ivm.change_to_text()
#   9. clean up        the slot is dropped (the cluster keeps running; tables and rows stay)
# Safe to re-run. Afterwards:  eval "$(scripts/cluster.sh env)"; psql stategrid_db
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SG_ROOT"

DB=stategrid_db
SLOT=stategrid_demo
TABLES=power_user,power_consumption

step() { echo; echo "==== $*"; }

# psql on the demo cluster; ON_ERROR_STOP so that a failing step stops the demo; no NOTICEs
# ("already exists, skipping" on a re-run).
demo_psql() {
    PGOPTIONS="-c client_min_messages=warning" \
        bash scripts/cluster.sh psql -X -q -v ON_ERROR_STOP=1 -P pager=off "$@" </dev/null
}

step_packages() {
    step "1. packages"
    if ! bash scripts/install-deps.sh; then
        echo "demo: packages are missing; run this script as root, or install them as shown above." >&2
        exit 1
    fi
}

step_build() {
    step "2. build and install the extension"
    make -j"$(nproc 2>/dev/null || echo 2)" </dev/null >/dev/null
    if ! make install </dev/null >/dev/null; then
        echo "demo: make install failed; it writes into $("$PG_CONFIG" --pkglibdir): run as root." >&2
        exit 1
    fi
    echo "installed $(sg_installed_lib)"
}

step_cluster() {
    step "3. local PostgreSQL cluster (.cluster/)"
    bash scripts/cluster.sh start
}

step_database() {
    step "4. database $DB, extension, check_setup()"
    if [ "$(demo_psql -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DB'")" = 0 ]; then
        demo_psql -d postgres -c "CREATE DATABASE $DB"
        echo "created database $DB"
    fi
    demo_psql -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS stategrid_ivm"
    demo_psql -d "$DB" -c "SELECT requirement, current_value, ok, fix FROM stategrid_ivm.check_setup()"
}

step_source_tables() {
    step "5. State Grid source tables (examples/stategrid/schema.sql)"
    demo_psql -d "$DB" -f examples/stategrid/schema.sql
    # The demo owns stategrid_db: start every run from empty tables, before the slot exists.
    demo_psql -d "$DB" -c "TRUNCATE power_consumption, power_user RESTART IDENTITY"
    demo_psql -d "$DB" -c "\\dt power_*"
}

step_slot() {
    step "6. replication slot $SLOT with the output plugin stategrid_ivm"
    demo_psql -d "$DB" -c "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT'" >/dev/null
    demo_psql -d "$DB" -c "SELECT slot_name, lsn FROM pg_create_logical_replication_slot('$SLOT', 'stategrid_ivm')"
}

step_sample_data() {
    step "7. sample rows (examples/stategrid/sample_data.sql)"
    demo_psql -d "$DB" -f examples/stategrid/sample_data.sql
    demo_psql -d "$DB" -c "
        SELECT u.user_name, u.usage_type, u.region_name, c.consumption_id, c.consumption_date,
               c.consumption_amount AS kwh, c.consumption_cost AS yuan, c.remark
        FROM power_consumption c JOIN power_user u USING (user_id)
        ORDER BY c.consumption_id"
}

step_change_stream() {
    step "8a. the change stream, text form: pg_logical_slot_peek_changes(..., 'format', 'text')"
    demo_psql -d "$DB" -At -c "
        SELECT data FROM pg_logical_slot_peek_changes('$SLOT', NULL, NULL,
                                                     'format', 'text', 'tables', '$TABLES')"
    step "8b. the same stream, binary (what a pipeline reads), decoded by stategrid_ivm.change_to_text(data)"
    demo_psql -d "$DB" -c "
        SELECT lsn, octet_length(data) AS bytes, stategrid_ivm.change_to_text(data) AS message
        FROM pg_logical_slot_peek_binary_changes('$SLOT', NULL, NULL, 'tables', '$TABLES')"
}

step_clean_up() {
    step "9. clean up"
    demo_psql -d "$DB" -c "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null
    echo "dropped slot $SLOT; the cluster keeps running (scripts/cluster.sh stop stops it)."
    echo "explore:  eval \"\$(scripts/cluster.sh env)\"; psql $DB"
}

step_packages
step_build
step_cluster
step_database
step_source_tables
step_slot
step_sample_data
step_change_stream
step_clean_up
