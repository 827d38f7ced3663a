#!/usr/bin/env bash
# The upgrade path, run by scripts/test.sh against its scratch cluster (PGHOST,
# PGPORT, PGUSER set). Every release of tests/upgrade/releases is installed
# from its own install script and filled with data by its own library, both
# rebuilt from its commit, as a real installation was (an older SQL script
# run by a newer library is not what users had); then the new library is
# installed and ALTER EXTENSION tenancy UPDATE runs. The catalog must equal a
# fresh install's, and the data must be there and usable. The upgrade script
# must also be what scripts/upgrade-script.sh writes. Prints one "N passed,
# N failed" line per check and the total last.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}
HERE="$ROOT/tests/upgrade"
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
LIBRARY=$("$PG_CONFIG" --pkglibdir)/tenancy.so
LIBDIR=$(dirname "$LIBRARY")

read -r last _ < <(release_list | tail -1)

psql -X -q -d postgres -c "CREATE DATABASE tenancy_upgrade_fresh"
psql -X -q -d tenancy_upgrade_fresh -c "CREATE EXTENSION tenancy"
psql -X -q -At -d tenancy_upgrade_fresh -f "$HERE/catalog.sql" >"$OUT/upgrade-fresh.txt"

# Fill every release with its own library, as installations ran it; then put
# the new one back.
cp "$LIBRARY" "$OUT/tenancy-new.so"
trap 'cp "$OUT/tenancy-new.so" "$OUT/tenancy.so"; put 755 "$OUT/tenancy.so" "$LIBDIR"' EXIT
versions=()
while read -r version commit; do
    db=tenancy_upgrade_from_${version//./_}
    versions+=("$version")
    cp "$(release_sql "$version" "$commit")" "$OUT/tenancy--$version.sql"
    put 644 "$OUT/tenancy--$version.sql" "$EXTDIR"
    cp "$(release_library "$version" "$commit")" "$OUT/tenancy.so"
    put 755 "$OUT/tenancy.so" "$LIBDIR"
    psql -X -q -d postgres -c "CREATE DATABASE $db"
    # With PostgreSQL's own search_path: older releases did not pin theirs
    # (the hostile-environment layer runs this file too).
    PGOPTIONS='-c search_path="$user",public' psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
        -c "CREATE EXTENSION tenancy VERSION '$version'" -f "$HERE/fill.sql" >"$OUT/upgrade-$version.log" 2>&1 ||
        echo "filling $version failed" >>"$OUT/upgrade-$version.log"
done < <(release_list)
cp "$OUT/tenancy-new.so" "$OUT/tenancy.so"
put 755 "$OUT/tenancy.so" "$LIBDIR"

for from in "${versions[@]}"; do
    db=tenancy_upgrade_from_${from//./_}
    updated() {
        ! grep -q "filling $from failed" "$OUT/upgrade-$from.log" &&
            psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "ALTER EXTENSION tenancy UPDATE" >>"$OUT/upgrade-$from.log" 2>&1 &&
            psql -X -q -At -d "$db" -f "$HERE/catalog.sql" >"$OUT/upgrade-$from.txt" &&
            diff -u "$OUT/upgrade-fresh.txt" "$OUT/upgrade-$from.txt" || { cat "$OUT/upgrade-$from.log"; false; }
    }
    usable() {
        psql -X -d "$db" <"$HERE/check.sql" >"$OUT/upgrade-$from-check.out" 2>&1
        diff -u "$HERE/expected/check.out" "$OUT/upgrade-$from-check.out"
    }
    check "upgrade from $from: catalog equals a fresh install's" updated
    check "upgrade from $from: data kept and usable" usable
done

# The committed upgrade script is the one the generator writes now (the
# release's install script is in the extension directory already).
generated() {
    "$ROOT/scripts/upgrade-script.sh" --check "$OUT/upgrade-generated.sql" >"$OUT/upgrade-generate.log" 2>&1 &&
        diff -u "$ROOT/sql/tenancy--$last--$(version).sql" "$OUT/upgrade-generated.sql" ||
        { cat "$OUT/upgrade-generate.log"; log "run scripts/upgrade-script.sh and commit what it writes"; false; }
}
# (Generated with PostgreSQL 15, the default: later majors print some
# definitions differently, e.g. views without table-qualified columns.)
if [ "$last" != "$(version)" ] && [ "$PG_MAJOR" = 15 ]; then
    check "the upgrade script from $last is what scripts/upgrade-script.sh writes" generated
fi
echo "$passed passed, $failed failed"
