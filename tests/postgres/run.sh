#!/usr/bin/env bash
# PostgreSQL's own regression suite (src/test/regress, the installcheck
# schedule) against a cluster with tenancy preloaded and created in the test
# database, compared with the same suite on a cluster without it: the
# extension must leave every other statement exactly as PostgreSQL runs it.
# The only tests whose output may differ are those in tests/postgres/allowed
# (listings that show the extension's own objects), and there only by rows
# that name them (tests/postgres/compare.py). Run by scripts/test.sh; prints
# "N passed, N failed" last.
#
# The suite comes from Debian's source package of the major under test,
# downloaded with a private apt configuration (the machine's own sources are
# not changed) and built once into target/postgres-regress/ (pg_regress, the
# test modules and a psql of the same version); when no suite serves it,
# the layer says so and runs nothing.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}/postgres
PORT=${TENANCY_POSTGRES_PORT:-25438}
HERE="$ROOT/tests/postgres"
BUILD="$ROOT/target/postgres-regress/$PG_MAJOR"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_cluster "$PORT"' EXIT

# The Debian suite whose postgresql-<major> source package has that major.
declare -A SUITE=([15]=bookworm [17]=trixie [18]=sid)

# The built source tree of PostgreSQL $PG_MAJOR's regression suite, or nothing.
regress_source() {
    local tree
    tree=$(ls -d "$BUILD"/postgresql-*/ 2>/dev/null | head -1)
    if [ -n "$tree" ] && [ -x "$tree/src/test/regress/pg_regress" ] && [ -x "$tree/src/bin/psql/psql" ]; then
        echo "${tree%/}"
        return
    fi
    local suite=${SUITE[$PG_MAJOR]:-} apt="$BUILD/apt" uri
    [ -n "$suite" ] || return 0
    uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    uri=${uri:-http://deb.debian.org/debian}
    rm -rf "$BUILD" && mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb-src $uri $suite main" >"$apt/sources.list"
    local options=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    [ "$(id -u)" = 0 ] || options[-1]=APT::Sandbox::User=$(id -un)
    log "downloading PostgreSQL $PG_MAJOR's source package from $uri ($suite)"
    (apt-get "${options[@]}" update -qq && cd "$BUILD" &&
        apt-get "${options[@]}" source --download-only -qq "postgresql-$PG_MAJOR") >"$BUILD/download.log" 2>&1 ||
        { log "PostgreSQL $PG_MAJOR's source package could not be downloaded (see $BUILD/download.log)"; return 0; }
    tar -xjf "$BUILD"/postgresql-"$PG_MAJOR"_*.orig.tar.bz2 -C "$BUILD"
    tree=$(ls -d "$BUILD"/postgresql-*/ | head -1)
    tree=${tree%/}
    log "building its regression suite and psql (once)"
    # Since PostgreSQL 17 the source tarball leaves the parsers to bison and flex.
    [ "$PG_MAJOR" -lt 17 ] || apt_install bison flex
    (cd "$tree" && ./configure --without-icu --without-readline &&
        make -s -j"$(nproc)" -C src/test/regress && make -s -j"$(nproc)" -C src/bin/psql) >"$BUILD/build.log" 2>&1 ||
        { cat "$BUILD/build.log" >&2; log "building PostgreSQL $PG_MAJOR's regression suite failed"; return 1; }
    echo "$tree"
}

SRC=$(regress_source)
if [ -z "$SRC" ]; then
    echo "skipped: no regression suite of PostgreSQL $PG_MAJOR is reachable"
    echo "0 passed, 0 failed"
    exit 0
fi

# installcheck NAME [pg_regress options…]: the whole schedule on the running
# cluster, as the server's OS user (server-side COPY writes into its results).
installcheck() {
    local out="$OUT/$1"
    shift
    server_dir "$out"
    as_server env -u RUST_BACKTRACE "$SRC/src/test/regress/pg_regress" --inputdir="$SRC/src/test/regress" \
        --bindir="$SRC/src/bin/psql" --dlpath="$SRC/src/test/regress" \
        --schedule="$SRC/src/test/regress/parallel_schedule" --host=127.0.0.1 --port="$PORT" \
        --user=postgres --outputdir="$out" "$@" >"$out.log" 2>&1 || true
    grep -E 'tests? (passed|failed)' "$out.log" | tail -1
}

log "PostgreSQL $PG_MAJOR's regression suite without tenancy"
fresh_cluster "$PORT"
installcheck plain
stop_cluster "$PORT"
log "and with tenancy preloaded and created in the test database"
fresh_cluster "$PORT" "shared_preload_libraries = 'tenancy'"
installcheck tenancy --load-extension=tenancy

ran() { # both runs went through the whole schedule
    [ "$(ls "$OUT/plain/results" | wc -l)" -gt 100 ] &&
        [ "$(ls "$OUT/plain/results")" = "$(ls "$OUT/tenancy/results")" ]
}
check "PostgreSQL $PG_MAJOR's regression suite ran with and without tenancy" ran

no_crash() {
    ! grep -E 'server process .* was terminated|terminated by signal|PANIC' "$(server_log "$PORT")"
}
check "no backend crashed with tenancy loaded" no_crash

same_output() {
    python3 "$HERE/compare.py" "$OUT/plain/results" "$OUT/tenancy/results" "$HERE/allowed"
}
check "every other test's output is the same with tenancy loaded" same_output

echo "$passed passed, $failed failed"
