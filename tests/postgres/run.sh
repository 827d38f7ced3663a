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
# The suite comes from Debian's source of the major under test, built once
# into target/postgres-regress/ (pg_regress, the test modules and a psql of
# the same version): for 15 and 18 the source package, downloaded with a
# private apt configuration (the machine's own sources are not changed); for
# 17 the upstream tarball of Debian's 17.11 package, by its address and
# SHA-256 (apt's index names only a newer 17 whose files are not served),
# the same minor as the server under test. When no suite serves a major
# (16: no source of it is reachable), the layer says so and runs nothing.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}/postgres
PORT=${TENANCY_POSTGRES_PORT:-25438}
HERE="$ROOT/tests/postgres"
BUILD="$ROOT/target/postgres-regress/$PG_MAJOR"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_cluster "$PORT"' EXIT

# The Debian suite whose postgresql-<major> source package has that major,
# or the address and SHA-256 of the upstream tarball of Debian's package.
declare -A SUITE=([15]=bookworm [18]=sid)
declare -A TARBALL=(
    [17]="pool/main/p/postgresql-17/postgresql-17_17.11.orig.tar.bz2 dd27f2b3c59e73ed14aa3324901242bf69a032a6347805f274e6260322d42979"
)

# The built source tree of PostgreSQL $PG_MAJOR's regression suite, or nothing.
regress_source() {
    local tree
    tree=$(ls -d "$BUILD"/postgresql-*/ 2>/dev/null | head -1)
    if [ -n "$tree" ] && [ -x "$tree/src/test/regress/pg_regress" ] && [ -x "$tree/src/bin/psql/psql" ]; then
        echo "${tree%/}"
        return
    fi
    local suite=${SUITE[$PG_MAJOR]:-} tarball=${TARBALL[$PG_MAJOR]:-} apt="$BUILD/apt" uri
    [ -n "$suite$tarball" ] || return 0
    uri=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    uri=${uri:-http://deb.debian.org/debian}
    rm -rf "$BUILD" && mkdir -p "$BUILD"
    if [ -n "$tarball" ]; then
        read -r path sha256 <<<"$tarball"
        log "downloading PostgreSQL $PG_MAJOR's source from $uri/$path"
        command -v curl >/dev/null || apt_install curl
        (cd "$BUILD" && curl -fsSL -o "${path##*/}" "$uri/$path" &&
            echo "$sha256  ${path##*/}" | sha256sum --check --quiet) >"$BUILD/download.log" 2>&1 ||
            { log "PostgreSQL $PG_MAJOR's source could not be downloaded or has another SHA-256 (see $BUILD/download.log)"; return 0; }
    else
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
        echo "deb-src $uri $suite main" >"$apt/sources.list"
        local options=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
            -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
        [ "$(id -u)" = 0 ] || options[-1]=APT::Sandbox::User=$(id -un)
        log "downloading PostgreSQL $PG_MAJOR's source package from $uri ($suite)"
        (apt-get "${options[@]}" update -qq && cd "$BUILD" &&
            apt-get "${options[@]}" source --download-only -qq "postgresql-$PG_MAJOR") >"$BUILD/download.log" 2>&1 ||
            { log "PostgreSQL $PG_MAJOR's source package could not be downloaded (see $BUILD/download.log)"; return 0; }
    fi
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
    if [ -z "${SUITE[$PG_MAJOR]:-}${TARBALL[$PG_MAJOR]:-}" ]; then
        echo "skipped: no source of PostgreSQL $PG_MAJOR with its regression suite is reachable (PyPI's build carries no tests; no Debian suite serves postgresql-$PG_MAJOR's source)"
    else
        echo "skipped: PostgreSQL $PG_MAJOR's source could not be downloaded (see $BUILD/download.log)"
    fi
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
