#!/usr/bin/env bash
# Run by the postgres image's entrypoint on the first start with an empty data directory
# (docker-entrypoint-initdb.d), against its temporary server, which already has the settings
# stategrid_ivm needs (docker/Dockerfile puts them into every new data directory):
#
#   1. database $STATEGRID_DB (default stategrid_db), CREATE EXTENSION stategrid_ivm
#   2. the source tables power_user, power_consumption (examples/stategrid/schema.sql)
#   3. SELECT stategrid_ivm.create_stategrid_pipeline('$STATEGRID_PIPELINE'): the ODS, DWD and
#      DWS tables, maintained by the pipeline's background worker from now on
#   4. sample data, unless STATEGRID_SAMPLE_USERS=0: the hand-written rows of
#      examples/stategrid/sample_data.sql, generate_sample_data(users => $STATEGRID_SAMPLE_USERS,
#      days => $STATEGRID_SAMPLE_DAYS) and generate_follow_up_changes(10), one transaction each
#   5. stategrid_ivm.sync() and verify()
set -euo pipefail

DB=${STATEGRID_DB:-stategrid_db}
PIPELINE=${STATEGRID_PIPELINE:-stategrid}
USERS=${STATEGRID_SAMPLE_USERS:-30}
DAYS=${STATEGRID_SAMPLE_DAYS:-3}
SHARE=${STATEGRID_SHARE:-/usr/share/stategrid_ivm}   # examples/ copied there by docker/Dockerfile

# psql as the entrypoint runs it (unix socket of the temporary server, user $POSTGRES_USER).
sql() {
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --no-password --no-psqlrc -q \
        -v db="$DB" -v pipeline="$PIPELINE" "$@"
}

echo "stategrid_ivm: creating database $DB with the State Grid warehouse (pipeline $PIPELINE)"
if [ -z "$(sql --dbname postgres -At <<<"SELECT 1 FROM pg_database WHERE datname = :'db'")" ]; then
    sql --dbname postgres <<<'CREATE DATABASE :"db"'
fi
sql --dbname "$DB" -c "CREATE EXTENSION IF NOT EXISTS stategrid_ivm" -f "$SHARE/examples/schema.sql"
sql --dbname "$DB" -c "SELECT requirement, current_value, ok FROM stategrid_ivm.check_setup()"
sql --dbname "$DB" -At <<<"SELECT 'pipeline created' FROM stategrid_ivm.create_stategrid_pipeline(:'pipeline')"

if [ "$USERS" -gt 0 ]; then
    sql --dbname "$DB" -f "$SHARE/examples/sample_data.sql"
    sql --dbname "$DB" -At -c "SELECT stategrid_ivm.generate_sample_data(users => $USERS, days => $DAYS,
                                                                     start_date => '2024-03-01') || ' sample readings'"
    sql --dbname "$DB" -At -c "SELECT stategrid_ivm.generate_follow_up_changes(10) || ' follow-up changes'"
fi
sql --dbname "$DB" -At <<<"SELECT 'synced at ' || stategrid_ivm.sync(:'pipeline', '600 s')"
sql --dbname "$DB" <<<"SELECT * FROM stategrid_ivm.verify(:'pipeline')"
echo "stategrid_ivm: $DB ready"
