#!/usr/bin/env bash
# Writes sql/tenancy--<last release>--<version>.sql, the upgrade script from
# the last release of tests/upgrade/releases to the version in Cargo.toml:
# both are installed in a scratch cluster (the release's install script
# rebuilt from its commit, this build's from the sources), and
# scripts/upgrade_script.py generates what changed from their catalogs,
# keeping the script's hand-written part (between its marker lines). Run it
# after changing the extension's SQL (sql/*.sql or a #[pg_extern]) and commit
# the result; the upgrade test fails when it is not up to date.
#   scripts/upgrade-script.sh            build, install, write the script
#   scripts/upgrade-script.sh --check F  write it to F instead, on the cluster
#                                        of PGPORT where the build and the
#                                        release's install script are installed
set -Eeuo pipefail
# With PostgreSQL 15 (the default), which the upgrade test compares it with.
export TENANCY_PG_CONFIG=${TENANCY_PG_CONFIG:-15}
source "$(dirname "$0")/lib.sh"
read -r last commit < <(release_list | tail -1)
new=$(version)
if [ "$last" = "$new" ]; then
    log "$new is the last release: nothing to upgrade from (scripts/release.sh makes the next version)"
    exit 0
fi
script="$ROOT/sql/tenancy--$last--$new.sql"
# (With --check, the upgrade test has set the tools up already; otherwise
# they come first: the release's install script is built with cargo-pgrx.)
[ "${1:-}" = --check ] || ensure_tools
old_sql=$(release_sql "$last" "$commit")

if [ "${1:-}" = --check ]; then
    target=${2:?usage: upgrade-script.sh --check FILE}
else
    target=$script
    install_extension
    PORT=${TENANCY_UPGRADE_SCRIPT_PORT:-25437}
    trap 'stop_cluster "$PORT"' EXIT
    fresh_cluster "$PORT"
    put 644 "$old_sql" "$("$PG_CONFIG" --sharedir)/extension"
fi
for db in tenancy_generate_old tenancy_generate_new; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
psql -X -q -v ON_ERROR_STOP=1 -d tenancy_generate_old -c "CREATE EXTENSION tenancy VERSION '$last'"
psql -X -q -v ON_ERROR_STOP=1 -d tenancy_generate_new -c "CREATE EXTENSION tenancy"
python3 "$ROOT/scripts/upgrade_script.py" "$last" "$new" tenancy_generate_old tenancy_generate_new "$script" >"$target.new"
mv "$target.new" "$target"
log "wrote $target"
