#!/usr/bin/env bash
# The upgrade path, run by scripts/test.sh against its scratch cluster (PGHOST,
# PGPORT, PGUSER set). Every earlier version is installed from its frozen
# install script (tests/upgrade/tenancy--<version>.sql) and filled with data
# by the library of the previous release, as a real installation was (one
# library serves the SQL of every version, so an older SQL script run by the
# new library is not what users had); then the new library is installed and
# ALTER EXTENSION tenancy UPDATE runs. The catalog must equal a fresh
# install's, and the data must be there and usable. Prints one
# "N passed, N failed" line per check and the total last.
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}
HERE="$ROOT/tests/upgrade"
EXTDIR=$("$PG_CONFIG" --sharedir)/extension
LIBRARY=$("$PG_CONFIG" --pkglibdir)/tenancy.so
passed=0 failed=0
check() { # check NAME COMMAND…: count one check
    if "${@:2}"; then passed=$((passed + 1)); log "$1: 1 passed, 0 failed"
    else failed=$((failed + 1)); log "$1: 0 passed, 1 failed"; fi
}

# The previous release's library, built once from its commit (git archive,
# not a checkout: the work tree stays as it is) into target/upgrade/.
read -r previous commit <"$HERE/previous-release"
previous_library="$ROOT/target/upgrade/tenancy-$previous-pg$PG_MAJOR.so"
if [ ! -f "$previous_library" ]; then
    log "building the $previous library (commit ${commit:0:7}) for PostgreSQL $PG_MAJOR, for the upgrade test"
    src="$ROOT/target/upgrade/src-$previous"
    rm -rf "$src" && mkdir -p "$src"
    git -C "$ROOT" archive "$commit" | tar -x -C "$src"
    # A release that predates a PostgreSQL major lacks its feature; its code
    # builds unchanged with it (pgrx carries the differences).
    grep -q "^pg$PG_MAJOR = " "$src/Cargo.toml" ||
        sed -i "s/^pg_test = \[\]/pg$PG_MAJOR = [\"pgrx\/pg$PG_MAJOR\", \"pgrx-tests\/pg$PG_MAJOR\"]\npg_test = []/" "$src/Cargo.toml"
    (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/upgrade/target" cargo build --lib --quiet \
        --no-default-features --features "pg$PG_MAJOR") \
        >"$OUT/upgrade-build.log" 2>&1 || { cat "$OUT/upgrade-build.log"; exit 1; }
    cp "$ROOT/target/upgrade/target/debug/libtenancy.so" "$previous_library"
fi

psql -X -q -d postgres -c "CREATE DATABASE tenancy_upgrade_fresh"
psql -X -q -d tenancy_upgrade_fresh -c "CREATE EXTENSION tenancy"
psql -X -q -At -d tenancy_upgrade_fresh -f "$HERE/catalog.sql" >"$OUT/upgrade-fresh.txt"

# Fill every earlier version with the previous library, then put the new one back.
cp "$LIBRARY" "$OUT/tenancy-new.so"
LIBDIR=$(dirname "$LIBRARY")
cp "$previous_library" "$OUT/tenancy.so"
trap 'cp "$OUT/tenancy-new.so" "$OUT/tenancy.so"; put 755 "$OUT/tenancy.so" "$LIBDIR"' EXIT
put 755 "$OUT/tenancy.so" "$LIBDIR"
versions=()
for script in "$HERE"/tenancy--*.sql; do
    from=${script##*/tenancy--} from=${from%.sql} db=tenancy_upgrade_from_${from//./_}
    versions+=("$from")
    put 644 "$script" "$EXTDIR"
    psql -X -q -d postgres -c "CREATE DATABASE $db"
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION tenancy VERSION '$from'" \
        -f "$HERE/fill.sql" >"$OUT/upgrade-$from.log" 2>&1 || echo "filling $from failed" >>"$OUT/upgrade-$from.log"
done
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
echo "$passed passed, $failed failed"
