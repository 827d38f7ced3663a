#!/usr/bin/env bash
# The Citus layer, run by scripts/test.sh: a coordinator and two workers on
# loopback (ports 27640-27642), the citus extension in database
# tenancy_citus on each (tenancy preloaded after citus, for usage), then
# tests/citus/sql/*.sql through pg_regress
# against the coordinator (the scripts connect to the workers themselves).
# Needs a Citus build for the PostgreSQL under test (from its packages);
# without one it says "skipped: Citus not installed". Prints
# "N passed, N failed" last.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}
HERE="$ROOT/tests/citus"
PORTS=(27640 27641 27642)
DB=tenancy_citus

if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
    echo "skipped: Citus not installed"
    echo "0 passed, 0 failed"
    exit 0
fi
trap 'for port in "${PORTS[@]}"; do stop_cluster "$port"; done' EXIT
for port in "${PORTS[@]}"; do
    fresh_cluster "$port" "shared_preload_libraries = 'citus,tenancy'" \
        "citus.node_conninfo = 'sslmode=disable'" "max_prepared_transactions = 100" \
        "citus.log_remote_commands = off"
    psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres \
        -c "CREATE DATABASE $DB" -c "\\c $DB" -c "CREATE EXTENSION citus"
done
coordinator=${PORTS[0]}
psql -X -q -v ON_ERROR_STOP=1 -p "$coordinator" -d "$DB" \
    -c "SELECT citus_set_coordinator_host('127.0.0.1', $coordinator)" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORTS[1]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORTS[2]})" >/dev/null
# Roles are cluster-wide objects: Citus propagates them from the coordinator.
psql -X -q -v ON_ERROR_STOP=1 -p "$coordinator" -d "$DB" -f "$ROOT/tests/roles.sql"

schedule=$(cd "$HERE/sql" && ls *.sql | sed 's/\.sql$//')
# shellcheck disable=SC2086
regress "$coordinator" "$OUT/citus" --inputdir="$HERE" --use-existing --dbname="$DB" $schedule
result=$(summary regress "$OUT/citus.log")
[ -n "$result" ] || result="0 1"
echo "${result% *} passed, ${result#* } failed"
