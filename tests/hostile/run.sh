#!/usr/bin/env bash
# The hostile-environment layer, run by scripts/test.sh: on a cluster of its
# own, every role's search_path starts with schema `hostile`
# (tests/hostile/shadows.sql), whose functions and operators shadow
# PostgreSQL's wherever PostgreSQL's own is not an exact match for the
# arguments. The regression, client and upgrade tests run again there; a
# shadow reached from anything but a client's own statement raises and logs
# "tenancy-hostile", and one such line in the server log fails the layer,
# even when the error was caught. (tests/pg_regress/sql/hostile.sql attacks
# the entry points with pg_catalog placed after the attacker's schema.)
# Prints "N passed, N failed" last.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}/hostile
PORT=${TENANCY_HOSTILE_PORT:-25436}
POOLER_PORT=${TENANCY_HOSTILE_POOLER_PORT:-26436}
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_pgbouncer "$POOLER_PORT"; stop_cluster "$PORT"' EXIT

fresh_cluster "$PORT"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/tests/roles.sql" -c "CREATE ROLE tenancy_hostile NOLOGIN"
# In template1, so that every database the tests create has it.
for db in template1 postgres; do
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$ROOT/tests/hostile/shadows.sql"
done
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c 'ALTER ROLE ALL SET search_path = hostile, "$user", public' \
    -c "CREATE DATABASE tenancy_regress" -c "CREATE DATABASE tenancy_client_pooler"

log "hostile: SQL regression tests"
# shellcheck disable=SC2046
regress "$PORT" "$OUT/regress" --use-existing --dbname=tenancy_regress $(tenancy_schedule)
tally regress "$OUT/regress.log" "hostile: SQL regression tests"

log "hostile: client tests"
start_pgbouncer "$POOLER_PORT" "$PORT" tenancy_client_pooler
client_tests "$PORT" "$POOLER_PORT" "$OUT/client.log"
tally cargo "$OUT/client.log" "hostile: client tests"

"$ROOT/tests/upgrade/run.sh" "$OUT" 2>&1 | tee "$OUT/upgrade.log" || true
tally layer "$OUT/upgrade.log" "hostile: upgrade path"

no_shadow_ran() {
    ! grep -A3 'tenancy-hostile' "$(server_log "$PORT")"
}
check "hostile: no shadow ran for the extension" no_shadow_ran

echo "$passed passed, $failed failed"
