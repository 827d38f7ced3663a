#!/usr/bin/env bash
# The whole test suite: #[pg_test] units, SQL regression tests (pg_regress),
# cross-backend isolation specs (pg_isolation_regress), the upgrade path,
# client, driver and example tests, the hostile-environment layer,
# PostgreSQL's own regression suite, pg_upgrade, Citus and the release
# packages, against scratch clusters this script starts and
# stops. Ends with "N passed, N failed". Every layer runs on each PostgreSQL
# major, one after the other, unless TENANCY_PG_CONFIG chooses one (see
# lib.sh). Arguments choose layers by name (scripts/test.sh regress client);
# TENANCY_REGRESS and TENANCY_CLIENT choose files within the regression and
# client layers. tests/README.md maps the layers.
set -Eeuo pipefail
source "$(dirname "$0")/lib.sh"
LAYERS=(unit regress isolation upgrade client usage drivers examples hostile postgres pg_upgrade citus package)
for chosen in "$@"; do
    [[ " ${LAYERS[*]} " == *" $chosen "* ]] ||
        { echo "scripts/test.sh: no layer \"$chosen\" (layers: ${LAYERS[*]})" >&2; exit 2; }
done
# wants LAYER: the layer was chosen, or no layer was named.
wants() { [ "${#CHOSEN[@]}" -eq 0 ] || [[ " ${CHOSEN[*]} " == *" $1 "* ]]; }
CHOSEN=("$@")
if [ -z "${TENANCY_PG_CONFIG:-}" ]; then
    # A fresh run of every major writes about 11 GiB under target/ (builds,
    # PostgreSQL binaries, scratch clusters): say so before a full disk makes
    # every layer fail with its own message.
    free_kib=$(df -Pk "$ROOT" | awk 'NR == 2 { print $4 }')
    if [ ! -d "$ROOT/target/debug/deps" ] && [ "${free_kib:-0}" -lt $((12 * 1024 * 1024)) ]; then
        log "warning: $((free_kib / 1024 / 1024)) GiB free on the disk of $ROOT; a first run writes about 11 GiB under target/"
    fi
    total_passed=0 total_failed=0
    for major in "${MAJORS[@]}"; do
        printf '\033[1m==> PostgreSQL %s\033[0m\n' "$major" >&2
        log_file="/tmp/tenancy-test-$$-$major.log"
        TENANCY_PG_CONFIG=$major "$0" "$@" | tee "$log_file" || true
        if [[ $(tail -1 "$log_file") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
            total_passed=$((total_passed + BASH_REMATCH[1])) total_failed=$((total_failed + BASH_REMATCH[2]))
        else
            total_failed=$((total_failed + 1))
        fi
        rm -f "$log_file"
    done
    echo
    echo "$total_passed passed, $total_failed failed"
    [ "$total_failed" -eq 0 ]
    exit
fi
PORT=${TENANCY_TEST_PORT:-25433}
POOLER_PORT=${TENANCY_POOLER_PORT:-26433}

ensure_tools pgbouncer
OUT="$ROOT/target/test-output/pg$PG_MAJOR"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_pgbouncer "$POOLER_PORT"; stop_cluster "$PORT"' EXIT

# 1. #[pg_test]: functions inside one backend, on pgrx's own temporary cluster.
#    pgrx installs the test build with sudo whenever it runs the server "as"
#    someone; initdb refuses root, so root runs it as postgres, a user as itself.
if wants unit; then
    log "unit tests (cargo pgrx test)"
    server_dir "$SCRATCH/pgrx-test-$PG_MAJOR"
    if [ "$(id -u)" = 0 ]; then runas=postgres; else runas=$(id -un); fi
    (cd "$ROOT" && env -u RUST_BACKTRACE CARGO_PGRX_TEST_RUNAS="$runas" \
        CARGO_PGRX_TEST_PGDATA="$SCRATCH/pgrx-test-$PG_MAJOR" cargo pgrx test "pg$PG_MAJOR" 2>&1) | tee "$OUT/unit.log" |
        grep -E '^test |test result:|panicked|error(\[|:)' || true
    tally cargo "$OUT/unit.log" "unit tests"
fi
[ "${CHOSEN[*]}" != unit ] || { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

# 2. The extension as users get it, in a fresh scratch cluster.
install_extension
fresh_cluster "$PORT"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/tests/roles.sql"

if wants regress; then
    log "SQL regression tests (pg_regress)"
    # shellcheck disable=SC2046
    regress "$PORT" "$OUT/regress" --dbname=tenancy_regress $(tenancy_schedule)
    tally regress "$OUT/regress.log" "SQL regression tests"
fi

if wants isolation; then
    log "cross-backend isolation specs (pg_isolation_regress)"
    REGRESS=isolation regress "$PORT" "$OUT/isolation" --inputdir="$ROOT/tests/isolation" \
        --dbname=tenancy_isolation --load-extension=tenancy --schedule="$ROOT/tests/isolation/schedule"
    tally regress "$OUT/isolation.log" "isolation specs"
fi

! wants upgrade || layer "upgrade path" "$ROOT/tests/upgrade/run.sh" "$OUT"

# 3. Client tests: real connections as the application role, several at once,
#    directly and through PgBouncer.
if wants client || wants examples; then
    psql -X -q -d postgres -c "CREATE DATABASE tenancy_client_pooler"
    start_pgbouncer "$POOLER_PORT" "$PORT" tenancy_client_pooler
fi
if wants client; then
    log "client tests (tests/client)"
    client_tests "$PORT" "$POOLER_PORT" "$OUT/client.log"
    tally cargo "$OUT/client.log" "client tests"
fi

# Usage and limits: statements counted in shared memory, so on a cluster of
# its own with tenancy preloaded.
! wants usage || layer "usage and limits" "$ROOT/tests/usage/run.sh" "$OUT"

# 4. Other drivers: Python (psycopg 3, in a venv) and Node (pg), same cluster.
if wants drivers || wants examples; then
    python_venv
fi
if wants drivers; then
    log "driver tests: Python psycopg 3 and Node pg"
    command -v npm >/dev/null || apt_install nodejs npm
    "$ROOT/target/py/bin/python" -c 'import psycopg, asyncpg' 2>/dev/null ||
        "$ROOT/target/py/bin/pip" install --quiet -r "$ROOT/tests/drivers/python/requirements.txt"
    [ -d "$ROOT/tests/drivers/node/node_modules/pg" ] ||
        (cd "$ROOT/tests/drivers/node" && npm ci --no-audit --no-fund --silent)
    TENANCY_TEST_PORT=$PORT "$ROOT/target/py/bin/python" "$ROOT/tests/drivers/python/test_isolation.py" 2>&1 |
        tee "$OUT/python.log" || true
    tally layer "$OUT/python.log" "Python driver tests"
    (cd "$ROOT/tests/drivers/node" && TENANCY_TEST_PORT=$PORT node --test --test-reporter=tap 2>&1) | tee "$OUT/node.log" |
        grep -E '^(not )?ok|^# (pass|fail)' || true
    tally tap "$OUT/node.log" "Node driver tests"
fi

# The Python examples' own tests: examples/fastapi directly and through
# PgBouncer in transaction mode, examples/django directly.
if wants examples; then
    log "Python examples (examples/)"
    "$ROOT/target/py/bin/python" -c 'import fastapi, sqlalchemy, asyncpg, greenlet, pytest, httpx, django, alembic' 2>/dev/null ||
        "$ROOT/target/py/bin/pip" install --quiet -r "$ROOT/examples/fastapi/requirements.txt" \
            -r "$ROOT/examples/django/requirements.txt"
    for run in "fastapi $PORT" "fastapi $POOLER_PORT" "django $PORT"; do
        read -r example port <<<"$run"
        (cd "$ROOT/examples/$example" && TENANCY_TEST_PORT=$PORT TENANCY_EXAMPLE_PORT=$port \
            "$ROOT/target/py/bin/python" -m pytest 2>&1) | tee "$OUT/$example-$port.log" || true
        tally pytest "$OUT/$example-$port.log" "$example example (port $port)"
    done
    log "Node example (examples/node)"
    command -v npm >/dev/null || apt_install nodejs npm
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$node_major" -ge 20 ] ||
        { log "Node.js 20 or later is needed for Fastify 5 (found $(node -v))"; failed=$((failed + 1)); }
    [ -d "$ROOT/examples/node/node_modules/drizzle-kit" ] ||
        (cd "$ROOT/examples/node" && npm ci --no-audit --no-fund --silent)
    for port in "$PORT" "$POOLER_PORT"; do
        (cd "$ROOT/examples/node" && TENANCY_TEST_PORT=$PORT TENANCY_EXAMPLE_PORT=$port \
            node --test --test-reporter=tap 2>&1) | tee "$OUT/node-example-$port.log" |
            grep -E '^(not )?ok|^# (pass|fail)' || true
        tally tap "$OUT/node-example-$port.log" "node example (port $port)"
    done
fi
stop_pgbouncer "$POOLER_PORT"

# 5. The hostile environment: regression, client and upgrade tests again,
#    with every role's search_path led by a schema of shadowing functions
#    and operators that must never run for the extension.
! wants hostile || layer "hostile environment" "$ROOT/tests/hostile/run.sh" "$OUT"

# 6. Do no harm: PostgreSQL's own regression suite with tenancy preloaded and
#    created, against the same without it (from Debian's source of the major).
! wants postgres || layer "PostgreSQL's regression suite" "$ROOT/tests/postgres/run.sh" "$OUT"

# 7. pg_upgrade from 15 with tenancy installed on both sides (in 18's pass).
! wants pg_upgrade || layer "pg_upgrade" "$ROOT/tests/pg_upgrade/run.sh" "$OUT"

# 8. Citus: a coordinator and two workers of its own, when Citus is installed.
! wants citus || layer "Citus layer" "$ROOT/tests/citus/run.sh" "$OUT"

# 9. The release artifacts: the .deb and the tarball built alike; the .deb (on
#    Debian's layout, else the tarball) installed in place of the source
#    build, the regression suite against it, removal.
! wants package || layer "package" "$ROOT/tests/package/run.sh" "$OUT"

echo
log "PostgreSQL $PG_MAJOR: $passed passed, $failed failed, in $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
