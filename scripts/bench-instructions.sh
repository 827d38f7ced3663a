#!/usr/bin/env bash
# Instructions per statement: the measure of the benchmark suite that does
# not move with the machine (docs/benchmarks.md). Loads the suite's data set
# (bench/setup.sql) into a scratch cluster, stops it, then runs each workload
# in one single-user backend under valgrind's callgrind, as the application
# role, twice (N1 and N2 statements); the difference, divided by N2 - N1, is
# what one more statement costs, start-up excluded. Product and baseline are
# printed side by side with their ratio and target.
#
#   scripts/bench-instructions.sh [--statements N1,N2]
#
# Results also go to target/bench/instructions.tsv and .md.
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_BENCH_INSTRUCTIONS_PORT:-25443}
N1=500 N2=1500
while (($#)); do
    case $1 in
    --statements) IFS=, read -r N1 N2 <<<"$2"; shift 2 ;;
    *) echo "usage: $0 [--statements N1,N2]" >&2; exit 2 ;;
    esac
done
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_tools valgrind
install_extension --release
fresh_cluster "$PORT" "shared_buffers = 256MB" "synchronous_commit = off"
trap 'stop_cluster "$PORT"' EXIT
psql -X -q -c "CREATE ROLE bench_app LOGIN" -c "CREATE ROLE bench_migrator NOLOGIN" -c "CREATE DATABASE bench" -d postgres
log "loading the benchmark data set (bench/setup.sql)"
psql -X -q -d bench -f "$ROOT/bench/setup.sql"
# Registration against its physical limit: the same rows into a table with
# the same constraints and indexes; a schema tenant's 10-migration history
# against the same DDL by hand.
psql -X -q -d bench -c "CREATE TABLE bench.tenants_like (LIKE tenancy.tenants INCLUDING ALL)" \
    -c "SELECT tenancy.set_migration_owner('bench_migrator')" >/dev/null
for i in $(seq -w 1 10); do
    psql -X -q -d bench -c "CALL tenancy.add_migration('i$i', 'CREATE TABLE t$i (id bigint PRIMARY KEY, body text); CREATE INDEX ON t$i (body)')" 2>/dev/null
done
# The tenants' ids, for the baselines' explicit WHERE tenant_id.
mapfile -t IDS < <(psql -X -At -d bench -c "SELECT id FROM tenancy.tenants WHERE identifier ~ '^t-[0-9]+$'
    AND substr(identifier, 3)::int <= 1000 ORDER BY substr(identifier, 3)::int")
DATA="$SCRATCH/pg-$PORT/data"
# A clean shutdown: the single-user runs must not start with crash recovery.
psql -X -q -d bench -c CHECKPOINT
as_server "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
WORK="$SCRATCH/instructions"
rm -rf "$WORK" && server_dir "$WORK"

# statements WORKLOAD N: the SQL of N statements of a workload, one per line,
# after what puts the session in place (the application role, a tenant).
statements() {
    local workload=$1 n=$2 i k id t
    case $workload in
    register_* | by_hand_*) ;;
    *) echo "SET ROLE bench_app;" ;;
    esac
    case $workload in
    point_rls* | range_rls | insert_rls*) echo "SELECT tenancy.set_tenant('t-1');" ;;
    # A full cache (1,100 distinct tenants for its 1,024 entries) in both
    # runs: every statement counted is a miss that evicts.
    set_tenant_miss) for ((i = 1; i <= 1100; i++)); do echo "SELECT tenancy.set_tenant('t-$((90000 + i))');"; done ;;
    usage_*) echo "SELECT tenancy.set_tenant('t-1');" ;;
    esac
    # Prepared statements, as drivers run them: PostgreSQL plans them once
    # (a generic plan) or on each execution (a custom plan), as it chooses.
    case $workload in
    point_plain_prepared) echo "PREPARE q(uuid, bigint) AS SELECT amount FROM bench.orders_plain WHERE tenant_id = \$1 AND id = \$2;" ;;
    point_rls_prepared) echo "PREPARE q(bigint) AS SELECT amount FROM bench.orders WHERE id = \$1;" ;;
    insert_plain_prepared) echo "PREPARE q(uuid) AS INSERT INTO bench.orders_plain (tenant_id, id, amount) VALUES (\$1, nextval('bench.order_ids'), 1);" ;;
    insert_rls_prepared) echo "PREPARE q AS INSERT INTO bench.orders (id, amount) VALUES (nextval('bench.order_ids'), 1);" ;;
    esac
    for ((i = 0; i < n; i++)); do
        # 100 tenants: all of them met in the first 100 statements, so
        # that the difference between the two runs holds no cache miss.
        k=$((i % 100 + 1)) id=$((i * 7 % 1000 + 1))
        case $workload in
        set_config) echo "SELECT set_config('app.tenant', 't-$k', false);" ;;
        set_tenant) echo "SELECT tenancy.set_tenant('t-$k');" ;;
        set_tenant_miss) echo "SELECT tenancy.set_tenant('t-$((1000 + i * 37 % 80000))');" ;;
        set_tenant_limits) echo "SELECT tenancy.set_tenant('t-$((k + 100))');" ;;
        usage_on | usage_off) echo "SELECT amount FROM bench.orders WHERE id = $id;" ;;
        switch_plain) echo "SELECT set_config('app.tenant', 't-$k', false); SELECT amount FROM bench.orders_plain WHERE tenant_id = '${IDS[k - 1]}' AND id = $(((k - 1) * 1000 + id));" ;;
        switch_rls) echo "SELECT tenancy.set_tenant('t-$k'); SELECT amount FROM bench.orders WHERE id = $(((k - 1) * 1000 + id));" ;;
        # (as a transaction-mode pooler's clients do: the tenant for one transaction)
        switch_plain_local) echo "BEGIN; SELECT set_config('app.tenant', 't-$k', true); SELECT amount FROM bench.orders_plain WHERE tenant_id = '${IDS[k - 1]}' AND id = $(((k - 1) * 1000 + id)); COMMIT;" ;;
        switch_rls_local) echo "BEGIN; SELECT tenancy.set_tenant('t-$k', true); SELECT amount FROM bench.orders WHERE id = $(((k - 1) * 1000 + id)); COMMIT;" ;;
        point_plain) echo "SELECT amount FROM bench.orders_plain WHERE tenant_id = '${IDS[0]}' AND id = $id;" ;;
        point_rls) echo "SELECT amount FROM bench.orders WHERE id = $id;" ;;
        range_plain) echo "SELECT sum(amount) FROM bench.orders_plain WHERE tenant_id = '${IDS[0]}' AND id BETWEEN $id AND $id + 99;" ;;
        range_rls) echo "SELECT sum(amount) FROM bench.orders WHERE id BETWEEN $id AND $id + 99;" ;;
        insert_plain) echo "INSERT INTO bench.orders_plain (tenant_id, id, amount) VALUES ('${IDS[0]}', nextval('bench.order_ids'), 1);" ;;
        insert_rls) echo "INSERT INTO bench.orders (id, amount) VALUES (nextval('bench.order_ids'), 1);" ;;
        point_plain_prepared) echo "EXECUTE q('${IDS[0]}', $id);" ;;
        point_rls_prepared) echo "EXECUTE q($id);" ;;
        insert_plain_prepared) echo "EXECUTE q('${IDS[0]}');" ;;
        insert_rls_prepared) echo "EXECUTE q;" ;;
        # (as the superuser who administers; names unique per run)
        register_shared) echo "SELECT tenancy.register_tenant('r$n-$i', 'Registered $i');" ;;
        by_hand_shared) echo "INSERT INTO bench.tenants_like (identifier, name) VALUES ('r$n-$i', 'Registered $i');" ;;
        register_schema) echo "SELECT tenancy.register_tenant('s$n-$i', 'Schema $i', '{}', 'schema');" ;;
        by_hand_schema)
            printf "DO \$\$ BEGIN CREATE SCHEMA h%s_%s;" "$n" "$i"
            for t in $(seq -w 1 10); do
                printf " CREATE TABLE h%s_%s.t%s (id bigint PRIMARY KEY, body text); CREATE INDEX ON h%s_%s.t%s (body);" "$n" "$i" "$t" "$n" "$i" "$t"
            done
            echo " END \$\$;" ;;
        esac
    done
}

# The protected point query with tenancy preloaded, counting each statement
# in tenancy.tenant_stats or not.
declare -A OPTIONS=(
    [usage_on]="-c shared_preload_libraries=tenancy"
    [usage_off]="-c shared_preload_libraries=tenancy -c tenancy.track_usage=off"
)

# instructions WORKLOAD N: what one single-user backend executed for it.
instructions() {
    local file="$WORK/$1-$2"
    statements "$1" "$2" >"$file.sql"
    # shellcheck disable=SC2086 # OPTIONS: several, split at spaces
    as_server valgrind --tool=callgrind --callgrind-out-file="$file.out" \
        "$PG_BIN/postgres" --single -D "$DATA" -c jit=off ${OPTIONS[$1]:-} bench <"$file.sql" >"$file.log" 2>&1
    if grep -q ERROR "$file.log"; then
        grep -m3 ERROR "$file.log" >&2
        log "$1 raised an error"
        exit 1
    fi
    sed -nE 's/^==[0-9]+== Collected : ([0-9]+)$/\1/p' "$file.log"
}

# per_statement WORKLOAD [N1 N2]: instructions of one more statement.
declare -A PER
per_statement() {
    local a b n1=${2:-$N1} n2=${3:-$N2}
    a=$(instructions "$1" "$n1") b=$(instructions "$1" "$n2")
    PER[$1]=$(((b - a) / (n2 - n1)))
    log "$1: ${PER[$1]} instructions per statement"
}

for workload in set_config set_tenant set_tenant_miss switch_plain switch_rls switch_plain_local switch_rls_local point_plain point_rls \
    range_plain range_rls insert_plain insert_rls point_plain_prepared point_rls_prepared \
    insert_plain_prepared insert_rls_prepared register_shared by_hand_shared usage_on usage_off; do
    per_statement "$workload"
done
# With limits on tenants t-101 … t-200 (a statement timeout and a work_mem
# below the session's), set in the data set for this workload only; the
# others ran without any limit.
single() { as_server "$PG_BIN/postgres" --single -D "$DATA" bench <<<"$1" >/dev/null 2>&1; }
single "SELECT tenancy.set_tenant_config('t-' || i, key, value) FROM generate_series(101, 200) i, (VALUES ('limits.statement_timeout', '\"5s\"'::jsonb), ('limits.work_mem', '\"2MB\"')) l(key, value);"
single "VACUUM ANALYZE tenancy.tenant_config;"
per_statement set_tenant_limits
single "DELETE FROM tenancy.tenant_config WHERE key LIKE 'limits.%';"
single "VACUUM ANALYZE tenancy.tenant_config;"
# A schema tenant costs a thousand statements: fewer of them.
for workload in register_schema by_hand_schema; do
    per_statement "$workload" 10 30
done

pair() { # pair LABEL PRODUCT BASELINE TARGET
    local ratio
    ratio=$(awk -v p="${PER[$2]}" -v b="${PER[$3]}" 'BEGIN { printf "%.3f", p / b }')
    row "$1" "${PER[$2]}" "${PER[$3]}" "$ratio" "≤ $4" "$(at_most "$ratio" "$4")"
}
{
    row "workload (instructions per statement)" product baseline ratio target pass
    pair "set_tenant vs set_config" set_tenant set_config 1.03
    # (the miss path's target is one of throughput, ≥ 0.5 the hot path's,
    # with each request's round trip: scripts/bench-scale.sh decides it)
    row "set_tenant, a miss on a full cache vs a hit" "${PER[set_tenant_miss]}" "${PER[set_tenant]}" \
        "$(awk -v p="${PER[set_tenant_miss]}" -v b="${PER[set_tenant]}" 'BEGIN { printf "%.3f", p / b }')" "(timed, at scale)" "—"
    pair "switching request: set_tenant + protected point vs set_config + WHERE" switch_rls switch_plain 1.03
    pair "the same in a transaction: set_tenant(…, true) vs set_config(…, true)" switch_rls_local switch_plain_local 1.03
    pair "point: protected vs plain + WHERE tenant_id" point_rls point_plain 1.03
    pair "range: protected vs plain + WHERE tenant_id" range_rls range_plain 1.03
    pair "insert: protected vs plain + tenant_id" insert_rls insert_plain 1.03
    pair "point, prepared: protected vs plain + WHERE tenant_id" point_rls_prepared point_plain_prepared 1.03
    pair "insert, prepared: protected vs plain + tenant_id" insert_rls_prepared insert_plain_prepared 1.03
    # (the targets of registration are ratios of throughput, ≥ 0.5: ≤ 2 here)
    pair "register a shared tenant vs a plain INSERT of its row" register_shared by_hand_shared 2
    pair "register a schema tenant (10 migrations) vs the same DDL by hand" register_schema by_hand_schema 2
    # (throughput targets ≥ 0.95 and ≥ 0.97: ≤ 1.05 and ≤ 1.03 here)
    pair "set_tenant to a tenant with limits vs without" set_tenant_limits set_tenant 1.05
    pair "protected point, preloaded: usage counted vs not (tenancy.track_usage)" usage_on usage_off 1.03
} >"$OUT/instructions.tsv"
publish_table "$OUT/instructions.tsv" "$OUT/instructions.md"
# Shared memory of the usage counters (tenancy.stats_max entries and one
# slot per backend), per 1,000 tenants it can hold.
# (One line: a single-user backend ends a statement at a newline.)
echo "SELECT 'usage shared memory: ' || shared_memory_bytes || ' bytes for ' || stats_max || ' tenants, ' || round(shared_memory_bytes * 1000.0 / stats_max / 1024) || ' KiB per 1,000' FROM tenancy.tenant_stats_info;" |
    as_server "$PG_BIN/postgres" --single -D "$DATA" -c shared_preload_libraries=tenancy bench 2>&1 |
    sed -nE 's/.*"(usage shared memory: [^"]*)".*/\1/p' | tee "$OUT/usage-memory.txt"
log "table: $OUT/instructions.md; callgrind profiles: $WORK/*.out (callgrind_annotate)"
