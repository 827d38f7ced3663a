#!/usr/bin/env bash
# The whole test suite: #[pg_test] units, SQL regression tests (pg_regress),
# cross-backend isolation specs (pg_isolation_regress) and client tests, against
# scratch clusters this script starts and stops. Ends with "N passed, N failed".
# Every layer runs on PostgreSQL 15 and 18, one after the other, unless
# TENANCY_PG_CONFIG chooses one (15, 18, or a pg_config's path; see lib.sh).
if [ -z "${TENANCY_PG_CONFIG:-}" ]; then
    total_passed=0 total_failed=0
    for major in 15 18; do
        printf '\033[1m==> PostgreSQL %s\033[0m\n' "$major" >&2
        TENANCY_PG_CONFIG=$major "$0" | tee "/tmp/tenancy-test-$$-$major.log"
        if [[ $(tail -1 "/tmp/tenancy-test-$$-$major.log") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
            total_passed=$((total_passed + BASH_REMATCH[1])) total_failed=$((total_failed + BASH_REMATCH[2]))
        else
            total_failed=$((total_failed + 1))
        fi
        rm -f "/tmp/tenancy-test-$$-$major.log"
    done
    echo
    echo "$total_passed passed, $total_failed failed"
    [ "$total_failed" -eq 0 ]
    exit
fi
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_TEST_PORT:-55433}
POOLER_PORT=${TENANCY_POOLER_PORT:-56433}
passed=0 failed=0

ensure_tools pgbouncer
OUT="$ROOT/target/test-output/pg$PG_MAJOR"
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_pgbouncer "$POOLER_PORT"; stop_cluster "$PORT"' EXIT

count() { # add "N passed, M failed" of one suite to the totals
    passed=$((passed + $1)) failed=$((failed + $2))
    log "$3: $1 passed, $2 failed"
}

cargo_counts() { # sum cargo's "test result:" lines of a log
    local p=0 f=0 a b
    while read -r a b; do p=$((p + a)) f=$((f + b)); done < <(
        sed -nE 's/^test result: .* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$1")
    if grep -q '^test result:' "$1"; then count "$p" "$f" "$2"; else count 0 1 "$2 (did not run, see $1)"; fi
}

# 1. #[pg_test]: functions inside one backend, on pgrx's own temporary cluster.
#    pgrx installs the test build with sudo whenever it runs the server "as"
#    someone; initdb refuses root, so root runs it as postgres, a user as itself.
log "unit tests (cargo pgrx test)"
server_dir "$SCRATCH/pgrx-test-$PG_MAJOR"
if [ "$(id -u)" = 0 ]; then runas=postgres; else runas=$(id -un); fi
set +e
(cd "$ROOT" && env -u RUST_BACKTRACE CARGO_PGRX_TEST_RUNAS="$runas" \
    CARGO_PGRX_TEST_PGDATA="$SCRATCH/pgrx-test-$PG_MAJOR" cargo pgrx test "pg$PG_MAJOR" 2>&1) | tee "$OUT/unit.log" |
    grep -E '^test |test result:|panicked|error(\[|:)'
set -e
cargo_counts "$OUT/unit.log" "unit tests"

# 2. The extension as users get it, in a fresh scratch cluster.
install_extension
fresh_cluster "$PORT"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/tests/roles.sql"

# pg_regress / pg_isolation_regress: "All N tests passed." or "M of N tests failed."
regress_counts() {
    local line
    line=$(grep -E 'tests? (passed|failed)' "$1" | tail -1)
    if [[ $line =~ All\ ([0-9]+)\ tests?\ passed ]]; then
        count "${BASH_REMATCH[1]}" 0 "$2"
    elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests?\ failed ]]; then
        count $((BASH_REMATCH[2] - BASH_REMATCH[1])) "${BASH_REMATCH[1]}" "$2"
        sed -n '1,200p' "$3" || true
    else
        count 0 1 "$2 (did not run, see $1)"
    fi
}

log "SQL regression tests (pg_regress)"
# Statement forms that only PostgreSQL 18 has are attacked in their own file.
since_18=()
[ "$PG_MAJOR" -lt 18 ] || since_18=(pg18)
env -u RUST_BACKTRACE "$PGXS_TEST/regress/pg_regress" --bindir="$PG_BIN" --host=127.0.0.1 --port="$PORT" \
    --user=postgres --inputdir="$ROOT/tests/pg_regress" --outputdir="$OUT/regress" \
    --dbname=tenancy_regress --schedule="$ROOT/tests/pg_regress/schedule" "${since_18[@]}" 2>&1 |
    tee "$OUT/regress.log" || true
regress_counts "$OUT/regress.log" "SQL regression tests" "$OUT/regress/regression.diffs"

log "cross-backend isolation specs (pg_isolation_regress)"
env -u RUST_BACKTRACE "$PGXS_TEST/isolation/pg_isolation_regress" --bindir="$PG_BIN" --host=127.0.0.1 --port="$PORT" \
    --user=postgres --inputdir="$ROOT/tests/isolation" --outputdir="$OUT/isolation" \
    --dbname=tenancy_isolation --load-extension=tenancy \
    --schedule="$ROOT/tests/isolation/schedule" 2>&1 | tee "$OUT/isolation.log" || true
regress_counts "$OUT/isolation.log" "isolation specs" "$OUT/isolation/regression.diffs"

layer() { # layer NAME SCRIPT: a layer with its own script ending in "N passed, N failed"
    log "$1"
    local logfile="$OUT/${1// /-}.log"
    "$2" "$OUT" 2>&1 | tee "$logfile" || true
    if [[ $(tail -1 "$logfile") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "$1"
    else
        count 0 1 "$1 (did not run, see $logfile)"
    fi
}

layer "upgrade path" "$ROOT/tests/upgrade/run.sh"

# 3. Client tests: real connections as the application role, several at once,
#    directly and through PgBouncer.
log "client tests (tests/client)"
psql -X -q -d postgres -c "CREATE DATABASE tenancy_client_pooler"
start_pgbouncer "$POOLER_PORT" "$PORT" tenancy_client_pooler
set +e
(cd "$ROOT/tests/client" && TENANCY_TEST_PORT=$PORT TENANCY_SERVER_LOG="$(server_log "$PORT")" TENANCY_PG_BIN=$PG_BIN \
    TENANCY_RESTART_COMMAND="$(restart_command "$PORT")" \
    TENANCY_POOLER_PORT=$POOLER_PORT \
    cargo test --quiet 2>&1) | tee "$OUT/client.log"
set -e
cargo_counts "$OUT/client.log" "client tests"

# 4. Other drivers: Python (psycopg 3, in a venv) and Node (pg), same cluster.
log "driver tests: Python psycopg 3 and Node pg"
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3 python3-venv
command -v npm >/dev/null || apt_install nodejs npm
[ -x "$ROOT/target/py/bin/python" ] || python3 -m venv "$ROOT/target/py"
"$ROOT/target/py/bin/python" -c 'import psycopg, asyncpg' 2>/dev/null ||
    "$ROOT/target/py/bin/pip" install --quiet -r "$ROOT/tests/drivers/python/requirements.txt"
[ -d "$ROOT/tests/drivers/node/node_modules/pg" ] ||
    (cd "$ROOT/tests/drivers/node" && npm ci --no-audit --no-fund --silent)
set +e
TENANCY_TEST_PORT=$PORT "$ROOT/target/py/bin/python" "$ROOT/tests/drivers/python/test_isolation.py" 2>&1 |
    tee "$OUT/python.log"
(cd "$ROOT/tests/drivers/node" && TENANCY_TEST_PORT=$PORT node --test --test-reporter=tap 2>&1) | tee "$OUT/node.log" |
    grep -E '^(not )?ok|^# (pass|fail)'
set -e
if [[ $(tail -1 "$OUT/python.log") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    count "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "Python driver tests"
else
    count 0 1 "Python driver tests (did not run, see $OUT/python.log)"
fi
node_pass=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$OUT/node.log") node_fail=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$OUT/node.log")
if [ -n "$node_pass" ]; then
    count "$node_pass" "$node_fail" "Node driver tests"
else
    count 0 1 "Node driver tests (did not run, see $OUT/node.log)"
fi

# The Python examples' own tests: examples/fastapi directly and through
# PgBouncer in transaction mode, examples/django directly.
log "Python examples (examples/)"
"$ROOT/target/py/bin/python" -c 'import fastapi, sqlalchemy, asyncpg, greenlet, pytest, httpx, django' 2>/dev/null ||
    "$ROOT/target/py/bin/pip" install --quiet -r "$ROOT/examples/fastapi/requirements.txt" \
        -r "$ROOT/examples/django/requirements.txt"
for run in "fastapi $PORT" "fastapi $POOLER_PORT" "django $PORT"; do
    read -r example port <<<"$run"
    set +e
    (cd "$ROOT/examples/$example" && TENANCY_TEST_PORT=$PORT TENANCY_EXAMPLE_PORT=$port \
        "$ROOT/target/py/bin/python" -m pytest 2>&1) | tee "$OUT/$example-$port.log"
    set -e
    summary=$(tail -1 "$OUT/$example-$port.log")
    if [[ $summary =~ ([0-9]+)\ passed ]]; then
        p=${BASH_REMATCH[1]}
        [[ $summary =~ ([0-9]+)\ (failed|error) ]] && f=${BASH_REMATCH[1]} || f=0
        count "$p" "$f" "$example example (port $port)"
    else
        count 0 1 "$example example (port $port; see $OUT/$example-$port.log)"
    fi
done

# 5. Citus: a coordinator and two workers of its own, when Citus is installed.
layer "Citus layer" "$ROOT/tests/citus/run.sh"

# 6. The release artifact (.deb on Debian's layout, else the tarball) installed
#    in place of the source build, the regression suite against it, removal.
layer "package" "$ROOT/tests/package/run.sh"

echo
log "PostgreSQL $PG_MAJOR: $passed passed, $failed failed, in $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
