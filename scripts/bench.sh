#!/usr/bin/env bash
# The benchmark suite (docs/benchmarks.md): loads the data sets into a scratch
# cluster (port 25434), runs every workload with pgbench as a non-superuser
# application role, baseline and product interleaved in rounds, and prints
# workload, result, baseline, ratio, target, pass/fail.
#
#   scripts/bench.sh [--duration SECONDS] [--rounds N] [--clients N]
#
# Results also go to target/bench/results.md and docs/benchmarks.svg.
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_BENCH_PORT:-25434}
bench_options "$@"
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_tools
install_extension --release
# No timed checkpoint in the middle of a run (it would flush the load's
# gigabyte under one side of a pair only): each round starts with one instead.
fresh_cluster "$PORT" "shared_buffers = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 1h" "synchronous_commit = off"
trap 'stop_cluster "$PORT"' EXIT
psql -X -q -c "CREATE ROLE bench_app LOGIN" -c "CREATE ROLE bench_migrator NOLOGIN" -c "CREATE DATABASE bench" -d postgres


log "loading 100,000 tenants and 2 × 1,000,000 orders"
psql -X -q -d bench -f "$ROOT/bench/setup.sql"
T1=$(psql -X -At -d bench -c "SELECT id FROM tenancy.tenants WHERE identifier = 't-1'")
# Pin the application role to tenant t-1 (a superuser may), so the isolation
# workloads measure queries, not a set_tenant per transaction.
psql -X -q -d postgres -c "ALTER ROLE bench_app SET tenancy.tenant = '$T1'"

# tps of one pgbench run of bench/$1.pgbench (extra settings in $2, as PGOPTIONS)
tps() {
    PGOPTIONS=${2:-} pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -h 127.0.0.1 -p "$PORT" -U bench_app \
        -D t="$T1" -f "$ROOT/bench/$1.pgbench" bench 2>&1 |
        sed -nE 's/^tps = ([0-9.]+) .*without initial connection time.*/\1/p'
}

# Each ratio's two sides run next to each other (set_config between SELECT 1
# and set_tenant, the hot path between set_config and the miss path).
SCRIPTS=(handrolled plpgsql select1 set_config set_tenant_hot set_tenant_miss
    point_plain point_rls range_plain range_rls insert_plain insert_rls)
declare -A RUNS
# Even rounds run the workloads in reverse order, so that neither side of a
# pair always runs first (after a checkpoint, on a bigger table, ...).
reversed() { for ((i = $# ; i > 0 ; i--)); do echo "${!i}"; done; }
for round in $(seq "$ROUNDS"); do
    log "round $round/$ROUNDS (${DURATION}s per workload, $CLIENTS clients)"
    psql -X -q -d bench -c CHECKPOINT
    order=("${SCRIPTS[@]}") generic=(range_plain range_rls)
    if ((round % 2 == 0)); then
        mapfile -t order < <(reversed "${order[@]}")
        generic=(range_rls range_plain)
    fi
    for s in "${order[@]}"; do
        RUNS[$s]+="$(tps "$s") "
    done
    # The range query once more with one plan-cache mode for both sides (see docs/benchmarks.md).
    for s in "${generic[@]}"; do
        RUNS[${s}_generic]+="$(tps "$s" "-c plan_cache_mode=force_generic_plan") "
    done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { printf "%.0f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A TPS
for s in "${SCRIPTS[@]}" range_plain_generic range_rls_generic; do TPS[$s]=$(median "${RUNS[$s]}"); done
# A ratio is the median of the per-round ratios of runs made back to back, so
# that drift of the machine between rounds affects both sides alike.
ratio() {
    paste -d' ' <(tr ' ' '\n' <<<"${RUNS[$1]}" | grep .) <(tr ' ' '\n' <<<"${RUNS[$2]}" | grep .) |
        awk '{ print $1 / $2 }' | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

log "EXPLAIN of the product's point select, as the application role"
PGUSER=bench_app psql -X -d bench -c "EXPLAIN (COSTS OFF) SELECT amount FROM bench.orders WHERE id = 5" | tee "$OUT/explain.txt"

log "lifecycle: register 10,000 shared tenants"
start=$(now)
psql -X -q -d bench -c "SELECT count(tenancy.register_tenant('r-' || g, 'R ' || g)) FROM generate_series(1, 10000) g" >/dev/null
REGISTER=$(elapsed "$start" "$(now)")

log "lifecycle: 1,000 schema tenants with a 10-migration history"
for i in $(seq -w 1 10); do
    psql -X -q -d bench -c "CALL tenancy.add_migration('m$i', 'CREATE TABLE t$i (id bigint PRIMARY KEY, body text); CREATE INDEX ON t$i (body)')" 2>/dev/null
done
start=$(now)
psql -X -q -d bench -c "DO \$\$ BEGIN FOR i IN 1..1000 LOOP
    PERFORM tenancy.register_tenant('s-' || i, 'S ' || i, '{}', 'schema'); COMMIT; END LOOP; END \$\$"
SCHEMA_REGISTER=$(elapsed "$start" "$(now)")

log "lifecycle: one migration across 1,000 schemas (max_locks_per_transaction $(psql -X -At -d bench -c 'SHOW max_locks_per_transaction'))"
start=$(now)
psql -X -q -d bench -c "CALL tenancy.add_migration('m11', 'CREATE TABLE t11 (id bigint PRIMARY KEY, body text)')" 2>/dev/null
MIGRATE=$(elapsed "$start" "$(now)")
LAGGING=$(psql -X -At -d bench -c "SELECT count(*) FROM tenancy.pending_migrations()")

log "lifecycle: suspension seen by 50 connections"
PROBE=$(cd "$ROOT/tests/client" && cargo run -q --release --bin suspension_probe -- "$PORT" bench 50 t-7)
SERVED=${PROBE#* }

# workload | result | baseline | ratio | target | pass
{
    row workload result baseline ratio target pass
    row "set_config (unvalidated) vs SELECT 1" "${TPS[set_config]} tps" "${TPS[select1]} tps" \
        "$(ratio set_config select1)" "(reference)" "-"
    for base in set_config handrolled plpgsql; do
        r=$(ratio set_tenant_hot "$base")
        if [ "$base" = set_config ]; then t=0.98; v=$(at_least "$r" 0.98); else t="(reference)" v="-"; fi
        row "set_tenant hot vs $base" "${TPS[set_tenant_hot]} tps" "${TPS[$base]} tps" "$r" "$t" "$v"
    done
    r=$(ratio set_tenant_miss set_tenant_hot)
    row "set_tenant miss (100k tenants, cache 1024) vs hot" "${TPS[set_tenant_miss]} tps" "${TPS[set_tenant_hot]} tps" "$r" 0.5 "$(at_least "$r" 0.5)"
    for q in point range insert; do
        r=$(ratio "${q}_rls" "${q}_plain")
        row "$q: protected, no WHERE vs plain + WHERE tenant_id" "${TPS[${q}_rls]} tps" "${TPS[${q}_plain]} tps" "$r" 0.97 "$(at_least "$r" 0.97)"
    done
    r=$(ratio range_rls_generic range_plain_generic)
    row "range, both with plan_cache_mode = force_generic_plan" "${TPS[range_rls_generic]} tps" "${TPS[range_plain_generic]} tps" "$r" 0.97 "$(at_least "$r" 0.97)"
    row "register 10,000 shared tenants" "${REGISTER} s" "-" "-" "< 10 s" "$(awk -v s="$REGISTER" 'BEGIN { print (s < 10) ? "pass" : "FAIL" }')"
    row "register 1,000 schema tenants (10 migrations each)" "${SCHEMA_REGISTER} s" "-" "-" "< 60 s" "$(awk -v s="$SCHEMA_REGISTER" 'BEGIN { print (s < 60) ? "pass" : "FAIL" }')"
    row "one migration across 1,000 schemas ($LAGGING left behind)" "${MIGRATE} s" "-" "-" "< 60 s" "$(awk -v s="$MIGRATE" -v l="$LAGGING" 'BEGIN { print (s < 60 && l == 0) ? "pass" : "FAIL" }')"
    row "statements served after suspension (50 connections)" "$SERVED" "-" "-" "0" "$([ "$SERVED" = 0 ] && echo pass || echo FAIL)"
} >"$OUT/results.tsv"
for s in "${!RUNS[@]}"; do printf '%s\t%s\n' "$s" "${RUNS[$s]}"; done | sort >"$OUT/rounds.tsv"

publish_table "$OUT/results.tsv" "$OUT/results.md"
mkdir -p "$ROOT/docs"
python3 "$ROOT/bench/chart.py" "$OUT/results.tsv" "$ROOT/docs/benchmarks.svg"
log "table: $OUT/results.md, every round's tps: $OUT/rounds.tsv, chart: docs/benchmarks.svg"
