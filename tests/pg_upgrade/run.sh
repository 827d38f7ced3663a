#!/usr/bin/env bash
# pg_upgrade with tenancy installed, run by scripts/test.sh in PostgreSQL 18's
# pass: a cluster of PostgreSQL 15 gets shared and schema tenants in every
# state, protected tables (one partitioned), configuration, signing keys,
# migrations, an administrator and the audit log (tests/upgrade/fill.sql,
# then fill.sql here); the pg_upgrade of the PostgreSQL under test moves it
# to a new cluster, the same build of tenancy installed on both sides. Then
# every row, sequence, policy, trigger, owner and grant is what it was
# (snapshot.sql), the extension's objects equal a fresh install's on the new
# major (tests/upgrade/catalog.sql), and isolation holds for the application
# role, with a token issued before the upgrade and the audit log continued
# (check.sql, expected/check.out). Prints "N passed, N failed" last.
#
# The old side is PyPI's build of 15.19 (lib.sh), not Debian's 15.20: 15.20
# records a version on every column (the column option pg_attver, which its
# own pg_dump leaves out) that 16.15, 17.11 and 18.6 do not know; their
# pg_dump, which pg_upgrade runs, writes it out and their server refuses it,
# for any table, with or without tenancy. TENANCY_PG_UPGRADE_FROM (a major
# or a pg_config's path) chooses another old side, and with it set the layer
# runs in any newer major's pass.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}/pg_upgrade
HERE="$ROOT/tests/pg_upgrade"
OLD_PORT=${TENANCY_PG_UPGRADE_PORT:-25439} NEW_PORT=$((${TENANCY_PG_UPGRADE_PORT:-25439} + 1))
DB=tenancy_pg_upgrade
rm -rf "$OUT" && mkdir -p "$OUT"

if [ -z "${TENANCY_PG_UPGRADE_FROM:-}" ] && [ "$PG_MAJOR" != 18 ]; then
    echo "skipped: runs in PostgreSQL 18's pass (TENANCY_PG_UPGRADE_FROM=<major or pg_config> runs it here)"
    echo "0 passed, 0 failed"
    exit 0
fi

FROM=${TENANCY_PG_UPGRADE_FROM:-$(binaries_pg_config 15)}

# on_old COMMAND…: a command of lib.sh with the old PostgreSQL chosen.
on_old() (
    TENANCY_PG_CONFIG=$FROM
    choose_postgres
    "$@"
)
read -r OLD_MAJOR OLD_BIN < <(on_old eval 'echo "$PG_MAJOR $PG_BIN"')
if [ "$OLD_MAJOR" -ge "$PG_MAJOR" ]; then
    echo "skipped: PostgreSQL $OLD_MAJOR is not older than $PG_MAJOR"
    echo "0 passed, 0 failed"
    exit 0
fi
log "pg_upgrade from PostgreSQL $OLD_MAJOR to $PG_MAJOR"
trap 'on_old stop_cluster "$OLD_PORT"; stop_cluster "$NEW_PORT"' EXIT

# The same build of tenancy in the old PostgreSQL (the new one has it: test.sh
# installed it). cargo pgrx knows 15 already, as Debian's: the same major's
# headers; another old major is made known to it first.
on_old eval '[ "$PG_MAJOR" = 15 ] || ensure_tools; install_extension'

# The old cluster, filled as an installation is.
on_old fresh_cluster "$OLD_PORT"
old_psql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$OLD_PORT" -U postgres "$@"; }
old_psql -d postgres -f "$ROOT/tests/roles.sql" -c "CREATE DATABASE $DB"
filled() {
    old_psql -d "$DB" -c "CREATE EXTENSION tenancy" -f "$ROOT/tests/upgrade/fill.sql" -f "$HERE/fill.sql" \
        >"$OUT/fill.log" 2>&1 || { cat "$OUT/fill.log"; false; }
}
check "PostgreSQL $OLD_MAJOR: tenancy installed and filled" filled
token=$(old_psql -At -d "$DB" -c "SELECT tenancy.issue_token('acme', '1 hour')")
audit_max=$(old_psql -At -d "$DB" -c "SELECT max(id) FROM tenancy.audit_log")
old_psql -At -d "$DB" -f "$HERE/snapshot.sql" >"$OUT/before.txt"
# pg_upgrade wants the old cluster shut down cleanly.
as_server "$OLD_BIN/pg_ctl" -D "$SCRATCH/pg-$OLD_PORT/data" -m fast -w stop >/dev/null

# The new cluster: empty, with the old one's data-checksum setting (off; on
# is initdb's default since PostgreSQL 18), stopped.
# (The help read whole first: `initdb --help | grep -q` fails now and then
# under pipefail, when grep quits before initdb has written everything.)
checksums=()
initdb_help=$("$PG_BIN/initdb" --help)
[[ $initdb_help == *--no-data-checksums* ]] && checksums=(--no-data-checksums)
INITDB_OPTIONS="${checksums[*]}" fresh_cluster "$NEW_PORT"
as_server "$PG_BIN/pg_ctl" -D "$SCRATCH/pg-$NEW_PORT/data" -m fast -w stop >/dev/null

# pg_upgrade as the clusters' OS user, from a directory it can write.
work="$SCRATCH/pg-upgrade-$NEW_PORT"
rm -rf "$work" && server_dir "$work"
pg_upgrade() {
    (cd "$work" && as_server env -u RUST_BACKTRACE "$PG_BIN/pg_upgrade" -U postgres \
        -b "$OLD_BIN" -B "$PG_BIN" -d "$SCRATCH/pg-$OLD_PORT/data" -D "$SCRATCH/pg-$NEW_PORT/data" \
        -p "$OLD_PORT" -P "$NEW_PORT" -s "$work" "$@") >>"$OUT/pg_upgrade.log" 2>&1 ||
        { cat "$OUT/pg_upgrade.log"; cat "$SCRATCH/pg-$NEW_PORT/data"/pg_upgrade_output.d/*/log/* 2>/dev/null | tail -40; false; }
}
check "pg_upgrade --check from $OLD_MAJOR to $PG_MAJOR" pg_upgrade --check
check "pg_upgrade from $OLD_MAJOR to $PG_MAJOR" pg_upgrade
as_server env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$SCRATCH/pg-$NEW_PORT/data" -l "$(server_log "$NEW_PORT")" \
    -w start >/dev/null
new_psql() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$NEW_PORT" -U postgres "$@"; }

same_rows() {
    new_psql -At -d "$DB" -f "$HERE/snapshot.sql" >"$OUT/after.txt" && diff -u "$OUT/before.txt" "$OUT/after.txt"
}
check "every row, sequence, policy, trigger, owner and grant as before" same_rows

# The fresh install gets the same administrator. A CHECK constraint comes
# back from pg_dump's text with its ANDs nested otherwise (a BETWEEN's):
# constraints are compared without their parentheses.
same_catalog() {
    new_psql -d postgres -c "CREATE DATABASE tenancy_pg_upgrade_fresh" &&
        new_psql -d tenancy_pg_upgrade_fresh -c "CREATE EXTENSION tenancy" \
            -c "SELECT tenancy.grant_admin('tenancy_admin')" >/dev/null &&
        new_psql -At -d tenancy_pg_upgrade_fresh -f "$ROOT/tests/upgrade/catalog.sql" >"$OUT/catalog-fresh.txt" &&
        new_psql -At -d "$DB" -f "$ROOT/tests/upgrade/catalog.sql" >"$OUT/catalog-upgraded.txt" &&
        diff -u <(sed -E '/^constraint /s/[()]//g' "$OUT/catalog-fresh.txt") \
            <(sed -E '/^constraint /s/[()]//g' "$OUT/catalog-upgraded.txt")
}
check "the extension's objects equal a fresh install's on $PG_MAJOR" same_catalog

isolated() {
    psql -X -h 127.0.0.1 -p "$NEW_PORT" -U postgres -d "$DB" -v token="$token" -v audit_max="$audit_max" \
        <"$HERE/check.sql" >"$OUT/check.out" 2>&1
    diff -u "$HERE/expected/check.out" "$OUT/check.out"
}
check "isolation, tokens, administrators and the audit log after pg_upgrade" isolated

no_crash() {
    ! grep -E 'server process .* was terminated|terminated by signal|PANIC' "$(server_log "$NEW_PORT")"
}
check "no backend crashed" no_crash

echo "$passed passed, $failed failed"
