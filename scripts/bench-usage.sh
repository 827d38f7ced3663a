#!/usr/bin/env bash
# Usage and limits at work (docs/benchmarks.md, "Usage"): a cluster with
# tenancy preloaded and the suite's data set (bench/setup.sql), a skewed
# load of requests over 1,000 tenants (bench/usage_request.pgbench) run with
# the counting on and off in alternate rounds — the throughput ratio — and
# the per-tenant usage it recorded, drawn as docs/benchmarks-usage.svg.
#
#   scripts/bench-usage.sh [--duration SECONDS] [--rounds N] [--clients N]
#
# Results also go to target/bench/usage.md and target/bench/usage-stats.tsv.
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_BENCH_USAGE_PORT:-25444}
bench_options "$@"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_tools
install_extension --release
fresh_cluster "$PORT" "shared_preload_libraries = 'tenancy'" "shared_buffers = 512MB" \
    "max_wal_size = 8GB" "checkpoint_timeout = 1h" "synchronous_commit = off"
trap 'stop_cluster "$PORT"' EXIT
psql -X -q -c "CREATE ROLE bench_app LOGIN" -c "CREATE ROLE bench_migrator NOLOGIN" -c "CREATE DATABASE bench" -d postgres
log "loading the benchmark data set (bench/setup.sql)"
psql -X -q -d bench -f "$ROOT/bench/setup.sql"

# tps of one run, with tenancy.track_usage as given (a superuser's setting:
# the role's stored value).
tps() {
    psql -X -q -d postgres -c "ALTER ROLE bench_app SET tenancy.track_usage = $1"
    pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -h 127.0.0.1 -p "$PORT" -U bench_app \
        -f "$ROOT/bench/usage_request.pgbench" bench 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*without initial connection time.*/\1/p'
}
psql -X -q -d bench -c "SELECT tenancy.tenant_stats_reset()" >/dev/null
ON=() OFF=()
for round in $(seq "$ROUNDS"); do
    log "round $round/$ROUNDS (${DURATION}s per side, $CLIENTS clients)"
    psql -X -q -d bench -c CHECKPOINT
    if ((round % 2)); then ON+=("$(tps on)") OFF+=("$(tps off)"); else OFF+=("$(tps off)") ON+=("$(tps on)"); fi
done
log "rounds: on ${ON[*]}; off ${OFF[*]}"
ratio=$(paste -d' ' <(printf '%s\n' "${ON[@]}") <(printf '%s\n' "${OFF[@]}") | awk '{ print $1 / $2 }' | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

psql -X -At -F $'\t' -d bench -c "SELECT coalesce(identifier, ''), calls, round(total_time::numeric, 1)
    FROM tenancy.tenant_stats" >"$OUT/usage-stats.tsv"
read -r tenants calls top10 < <(psql -X -At -F ' ' -d bench -c "
    WITH s AS (SELECT * FROM tenancy.tenant_stats WHERE tenant_id IS NOT NULL)
    SELECT count(*), sum(calls),
           round((100 * (SELECT sum(total_time) FROM (SELECT total_time FROM s ORDER BY total_time DESC LIMIT 10) t)
                 / sum(total_time))::numeric, 1)
    FROM s")
memory=$(psql -X -At -d bench -c "SELECT shared_memory_bytes || ' bytes for ' || stats_max || ' tenants' FROM tenancy.tenant_stats_info")
{
    row workload result baseline ratio target pass
    row "skewed requests: usage counted vs not (track_usage)" "$(median "${ON[@]}") tps" "$(median "${OFF[@]}") tps" \
        "$ratio" 0.97 "$(at_least "$ratio" 0.97)"
    row "tenants seen, statements counted (counting rounds)" "$tenants, $calls" "-" "-" "-" "-"
    row "share of time of the 10 busiest tenants" "$top10 %" "-" "-" "-" "-"
    row "shared memory of the counters" "$memory" "-" "-" "-" "-"
} >"$OUT/usage.tsv"
publish_table "$OUT/usage.tsv" "$OUT/usage.md"
python3 "$ROOT/bench/usage_chart.py" "$OUT/usage-stats.tsv" "$ROOT/docs/benchmarks-usage.svg"
log "table: $OUT/usage.md, chart: docs/benchmarks-usage.svg"
