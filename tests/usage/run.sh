#!/usr/bin/env bash
# Usage and limits (README, "Usage and limits"), run by scripts/test.sh: on a
# cluster of its own with tenancy in shared_preload_libraries (the counters
# and the concurrency cap live in shared memory) and tenancy.stats_max at its
# minimum, so that eviction is reached, the client tests of
# tests/client/tests/usage.rs run as the application role over several
# connections, with a clean restart and a crash in between. (Without preload
# the views raise: tests/pg_regress/sql/usage.sql.) Prints "N passed,
# N failed" last.
set -Eeuo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
OUT=${1:?usage: run.sh OUTPUT_DIR}/usage
PORT=${TENANCY_USAGE_PORT:-25442}
rm -rf "$OUT" && mkdir -p "$OUT"
trap 'stop_cluster "$PORT"' EXIT

fresh_cluster "$PORT" "shared_preload_libraries = 'tenancy'" "tenancy.stats_max = 100"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$ROOT/tests/roles.sql"

dir="$SCRATCH/pg-$PORT"
user=""
[ "$(id -u)" = 0 ] && user="runuser -u postgres --"
# The tests are #[ignore]d in the other client runs (no preload there).
(cd "$ROOT/tests/client" && TENANCY_TEST_PORT=$PORT TENANCY_PG_BIN=$PG_BIN \
    TENANCY_RESTART_COMMAND="$user env -u RUST_BACKTRACE $PG_BIN/pg_ctl -D $dir/data -l $dir/server.log -m fast -w restart >/dev/null" \
    cargo test --quiet --test usage -- --ignored --test-threads=1 2>&1) | tee "$OUT/client.log" || true
tally cargo "$OUT/client.log" "usage: client tests"

echo "$passed passed, $failed failed"
