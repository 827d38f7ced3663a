#!/usr/bin/env bash
# The benchmark suite at SaaS sizes (docs/benchmarks.md, "Scale"): shared
# tenants up to a million, schema tenants up to ten thousand, hundreds of
# clients through PgBouncer, 1 to 16 clients. Every figure is a ratio to a
# baseline measured in the same run, or a flatness (the cost per tenant at
# the largest size against the smallest), so that machines of different
# speeds decide the same way. Not part of scripts/test.sh: the full size
# takes about half an hour on 2 cores.
#
#   scripts/bench-scale.sh [--quick]     # --quick: 100,000 and 1,000
#   scripts/bench-scale.sh [--shared N] [--schemas N] [--no-dump]
#   (--no-dump: without the pg_dump and pg_restore of the database, a third
#   of the time and twice the database's disk space)
#
# Results: target/bench/scale.tsv and .md, target/bench/scale-points.tsv
# (cost against size) and docs/benchmarks-scale.svg.
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_BENCH_SCALE_PORT:-25441}
POOLER_PORT=${TENANCY_BENCH_SCALE_POOLER_PORT:-26441}
SHARED=1000000 SCHEMAS=10000 DUMP_TOO=1
while (($#)); do
    case $1 in
    --quick) SHARED=100000 SCHEMAS=1000; shift ;;
    --shared) SHARED=$2; shift 2 ;;
    --schemas) SCHEMAS=$2; shift 2 ;;
    --no-dump) DUMP_TOO=; shift ;;
    *) echo "usage: $0 [--quick] [--shared N] [--schemas N] [--no-dump]" >&2; exit 2 ;;
    esac
done
OUT="$ROOT/target/bench"
mkdir -p "$OUT"

ensure_tools pgbouncer
install_extension --release
fresh_cluster "$PORT" "shared_buffers = 1GB" "max_wal_size = 16GB" "checkpoint_timeout = 1h" \
    "synchronous_commit = off" "max_connections = 300"
trap 'stop_pgbouncer "$POOLER_PORT"; stop_cluster "$PORT"' EXIT
psql -X -q -d postgres -c "CREATE ROLE bench_app LOGIN" -c "CREATE ROLE bench_migrator NOLOGIN" \
    -c "GRANT pg_read_all_stats TO bench_app" -c "CREATE DATABASE scale"
q() { psql -X -q -At -d scale "$@"; }
app() { PGUSER=bench_app psql -X -q -At -d scale "$@"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
q -c "CREATE EXTENSION tenancy" -c "SELECT tenancy.set_migration_owner('bench_migrator')" >/dev/null
POINTS="$OUT/scale-points.tsv"
printf 'series\tsize\tvalue\n' >"$POINTS"
point() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$POINTS"; }

# timed SQL: seconds one statement took.
timed() {
    local start
    start=$(now)
    q -c "$1" >/dev/null
    elapsed "$start" "$(now)"
}

# ---- Shared tenants ----------------------------------------------------------
log "shared tenants: registering $SHARED, in batches of 10,000 (and plain INSERTs of the same rows)"
q -c "CREATE SCHEMA scale" \
    -c "CREATE TABLE scale.tenants_plain (LIKE tenancy.tenants INCLUDING ALL)"
BATCH=10000
register_batch() { timed "SELECT count(tenancy.register_tenant('s-' || g, 'Shared ' || g)) FROM generate_series($1, $2) g"; }
# The physical limit: the same rows, one INSERT per tenant (a registration
# is one call per tenant), into a table with the same constraints and indexes.
insert_batch() { timed "DO \$\$ BEGIN FOR g IN $1..$2 LOOP
    INSERT INTO scale.tenants_plain (identifier, name) VALUES ('s-' || g, 'Shared ' || g); END LOOP; END \$\$"; }
done_shared=0 first_register="" first_insert=""
while ((done_shared < SHARED)); do
    from=$((done_shared + 1)) to=$((done_shared + BATCH))
    r=$(register_batch "$from" "$to") i=$(insert_batch "$from" "$to")
    [ -n "$first_register" ] || first_register=$r first_insert=$i
    done_shared=$to
    # (every tenth batch, and the last, on the plot)
    if ((done_shared % (BATCH * 10) == 0 || done_shared == SHARED)); then
        point "register, µs per shared tenant" "$done_shared" "$(awk -v s="$r" 'BEGIN { printf "%.0f", s * 1e6 / 10000 }')"
        log "  $done_shared: ${r}s per 10,000 (plain INSERT ${i}s)"
    fi
done
last_register=$r last_insert=$i
q -c "VACUUM ANALYZE tenancy.tenants" -c CHECKPOINT
VERIFY_SHARED=$(timed "SELECT count(*) FROM tenancy.verify()")
log "verify() with $SHARED shared tenants: ${VERIFY_SHARED}s"

# The miss path over every tenant against the hot path, as the application role.
cat >"$OUT/scale_hot.pgbench" <<'EOF'
\set n random(1, 100)
SELECT tenancy.set_tenant('s-' || :n);
EOF
cat >"$OUT/scale_miss.pgbench" <<EOF
\\set n random(1, $SHARED)
SELECT tenancy.set_tenant('s-' || :n);
EOF
tps() { # tps SCRIPT CLIENTS [PORT] [DB]
    pgbench -n -M prepared -c "$2" -j "$(($2 < 2 ? 1 : 2))" -T 5 -h 127.0.0.1 -p "${3:-$PORT}" -U bench_app \
        -f "$1" "${4:-scale}" 2>&1 | sed -nE 's/^tps = ([0-9.]+) .*without initial connection time.*/\1/p'
}
HOT=$(tps "$OUT/scale_hot.pgbench" 2) MISS=$(tps "$OUT/scale_miss.pgbench" 2)
point "set_tenant miss ÷ hot" "$SHARED" "$(div "$MISS" "$HOT")"

# Memory of one backend that switches through 10,000 distinct tenants.
MEMORY_SHARED=$(app <<'EOF' | tail -1
SELECT sum(total_bytes) FROM pg_backend_memory_contexts \gset before_
DO $$ BEGIN FOR i IN 1..10000 LOOP PERFORM tenancy.set_tenant('s-' || i); END LOOP; END $$;
SELECT round((sum(total_bytes) - :before_sum) / 1048576.0, 1) FROM pg_backend_memory_contexts;
EOF
)

# ---- Schema tenants ----------------------------------------------------------
log "schema tenants: a 10-migration history, then $SCHEMAS tenants in batches of 500"
for i in $(seq -w 1 10); do
    q -c "CALL tenancy.add_migration('m$i', 'CREATE TABLE t$i (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text); CREATE INDEX ON t$i (body)')" 2>/dev/null
done
register_schemas() {
    timed "DO \$\$ BEGIN FOR i IN $1..$2 LOOP
        PERFORM tenancy.register_tenant('t-' || i, 'Schema ' || i, '{}', 'schema'); COMMIT; END LOOP; END \$\$"
}
# The same DDL by hand: a schema and the ten migrations' statements.
by_hand() {
    timed "DO \$\$ BEGIN FOR i IN $1..$2 LOOP
        EXECUTE format('CREATE SCHEMA hand_%s', i);
        FOR j IN 1..10 LOOP
            EXECUTE format('CREATE TABLE hand_%s.t%s (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text); CREATE INDEX ON hand_%s.t%s (body)', i, lpad(j::text, 2, '0'), i, lpad(j::text, 2, '0'));
        END LOOP; COMMIT; END LOOP; END \$\$"
}
migrate_all() { # migrate_all NAME: seconds for one more migration across every schema
    timed "CALL tenancy.add_migration('$1', 'CREATE TABLE $1 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text)')"
}
migrate_by_hand() { # the same table in every hand-made schema
    timed "DO \$\$ BEGIN FOR i IN 1..$1 LOOP
        EXECUTE format('CREATE TABLE hand_%s.$2 (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text)', i); COMMIT; END LOOP; END \$\$"
}
done_schemas=0 first_schema="" first_hand="" MIGRATE_1K=""
# The per-schema cost of one migration is compared between this size and the last.
SMALL=$((SCHEMAS > 1000 ? 1000 : SCHEMAS / 2))
while ((done_schemas < SCHEMAS)); do
    from=$((done_schemas + 1)) to=$((done_schemas + 500))
    r=$(register_schemas "$from" "$to")
    [ -n "$first_schema" ] || { first_schema=$r; first_hand=$(by_hand 1 500); }
    done_schemas=$to
    point "register, ms per schema tenant" "$done_schemas" "$(awk -v s="$r" 'BEGIN { printf "%.1f", s * 1000 / 500 }')"
    log "  $done_schemas: ${r}s per 500"
    if ((done_schemas == SMALL)); then
        MIGRATE_1K=$(migrate_all x_small)
        point "one migration, ms per schema" "$SMALL" "$(awk -v s="$MIGRATE_1K" -v n="$SMALL" 'BEGIN { printf "%.2f", s * 1000 / n }')"
    fi
done
last_schema=$r
by_hand 501 "$SCHEMAS" >/dev/null
last_hand=$(by_hand $((SCHEMAS + 1)) $((SCHEMAS + 500)))
q -c "VACUUM ANALYZE" -c CHECKPOINT
MIGRATE=$(migrate_all x_large)
MIGRATE_HAND=$(migrate_by_hand "$SCHEMAS" x_large)
point "one migration, ms per schema" "$SCHEMAS" "$(awk -v s="$MIGRATE" -v n="$SCHEMAS" 'BEGIN { printf "%.2f", s * 1000 / n }')"
LAGGING=$(q -c "SELECT count(*) FROM tenancy.pending_migrations()")
PENDING=$(timed "SELECT count(*) FROM tenancy.pending_migrations()")
VERIFY_SCHEMAS=$(timed "SELECT count(*) FROM tenancy.verify()")
log "one migration: ${MIGRATE}s across $SCHEMAS (${MIGRATE_1K}s across $SMALL; by hand ${MIGRATE_HAND}s); pending_migrations() ${PENDING}s, verify() ${VERIFY_SCHEMAS}s"
# Memory of one backend that works in 1,000 schema tenants (PostgreSQL's
# caches of their relations, and the extension's own).
q -c "GRANT USAGE ON SCHEMA $(q -c "SELECT string_agg(schema_name, ', ') FROM tenancy.tenants WHERE identifier ~ '^t-([1-9][0-9]{0,2}|1000)\$'") TO bench_app" \
    -c "ALTER DEFAULT PRIVILEGES FOR ROLE bench_migrator GRANT SELECT ON TABLES TO bench_app"
q -c "DO \$\$ DECLARE s text; BEGIN FOR s IN SELECT schema_name FROM tenancy.tenants WHERE identifier ~ '^t-([1-9][0-9]{0,2}|1000)\$' LOOP EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO bench_app', s); END LOOP; END \$\$"
MEMORY_SCHEMAS=$(app <<'EOF' | tail -2 | paste -sd ' '
SELECT sum(total_bytes) AS total, sum(total_bytes) FILTER (WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext') AS cache FROM pg_backend_memory_contexts \gset before_
DO $$ BEGIN FOR i IN 1..1000 LOOP PERFORM tenancy.set_tenant('t-' || i); PERFORM count(*) FROM t01; PERFORM count(*) FROM t02; END LOOP; END $$;
SELECT round((sum(total_bytes) - :before_total) / 1048576.0, 1) FROM pg_backend_memory_contexts;
SELECT round((sum(total_bytes) FILTER (WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext') - :before_cache) / 1048576.0, 1) FROM pg_backend_memory_contexts;
EOF
)
read -r MEMORY_SCHEMAS MEMORY_RELCACHE <<<"$MEMORY_SCHEMAS"
point "memory, MiB after touching N schema tenants" 1000 "$MEMORY_SCHEMAS"
TABLES=$(q -c "SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'p', 'S', 'v', 'm')")
DUMP="(not run: --no-dump)" RESTORE=""
if [ -n "$DUMP_TOO" ]; then
    log "pg_dump and pg_restore of the database"
    # pg_dump locks every table in one transaction: with thousands of tenant
    # schemas the default lock table (max_locks_per_transaction 64 × connections)
    # is too small, as for any database with that many tables.
    q -c "ALTER SYSTEM SET max_locks_per_transaction = $((TABLES / 200 + 64))"
    as_server "$PG_BIN/pg_ctl" -D "$SCRATCH/pg-$PORT/data" -l "$(server_log "$PORT")" -w restart >/dev/null
    start=$(now)
    pg_dump -h 127.0.0.1 -p "$PORT" -U postgres -Fc -f "$SCRATCH/scale.dump" scale
    DUMP=$(elapsed "$start" "$(now)")
    q -c "SELECT 1" -d postgres >/dev/null
    psql -X -q -d postgres -c "CREATE DATABASE scale_restored"
    start=$(now)
    pg_restore -h 127.0.0.1 -p "$PORT" -U postgres --disable-triggers -d scale_restored "$SCRATCH/scale.dump" 2>"$OUT/restore.log" || true
    RESTORE=$(elapsed "$start" "$(now)")
    psql -X -q -d postgres -c "DROP DATABASE scale_restored"
    rm -f "$SCRATCH/scale.dump"
fi

# ---- Clients -----------------------------------------------------------------
log "200 clients through PgBouncer (transaction mode, 20 server connections), and 1 to 16 clients"
# The baseline keys its rows by the tenant's number, which the application
# knows already (as a hand-written WHERE tenant_id = $1 does).
q -c "CREATE TABLE scale.orders (tenant_id uuid NOT NULL, id bigint NOT NULL, amount int NOT NULL, PRIMARY KEY (tenant_id, id))" \
    -c "CREATE TABLE scale.orders_plain (tenant_n int NOT NULL, id bigint NOT NULL, amount int NOT NULL, PRIMARY KEY (tenant_n, id))" \
    -c "INSERT INTO scale.orders SELECT t.id, i, i % 100 FROM tenancy.tenants t, generate_series(1, 100) i WHERE t.identifier ~ '^s-[0-9]{1,3}\$'" \
    -c "INSERT INTO scale.orders_plain SELECT n, i, i % 100 FROM generate_series(1, 999) n, generate_series(1, 100) i" \
    -c "GRANT USAGE ON SCHEMA scale TO bench_app" -c "GRANT SELECT ON scale.orders, scale.orders_plain TO bench_app" \
    -c "VACUUM ANALYZE scale.orders, scale.orders_plain"
{
    echo '\set n random(1, 999)'
    echo '\set i random(1, 100)'
    echo 'BEGIN;'
    echo "SELECT tenancy.set_tenant('s-' || :n, true);"
    echo 'SELECT amount FROM scale.orders WHERE id = :i;'
    echo 'END;'
} >"$OUT/scale_request.pgbench"
{
    echo '\set n random(1, 999)'
    echo '\set i random(1, 100)'
    echo 'BEGIN;'
    echo "SELECT set_config('app.tenant', 's-' || :n, true);"
    echo 'SELECT amount FROM scale.orders_plain WHERE tenant_n = :n AND id = :i;'
    echo 'END;'
} >"$OUT/scale_request_plain.pgbench"
dir="$SCRATCH/pgbouncer-$POOLER_PORT"
stop_pgbouncer "$POOLER_PORT"
rm -rf "$dir" && server_dir "$dir"
as_server tee "$dir/pgbouncer.ini" >/dev/null <<INI
[databases]
scale = host=127.0.0.1 port=$PORT dbname=scale pool_mode=transaction pool_size=20
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $POOLER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
max_client_conn = 500
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
printf '"bench_app" ""\n' | as_server tee "$dir/userlist.txt" >/dev/null
as_server /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
sleep 1
pooled() { pgbench -n -M simple -c 200 -j 2 -T 10 -h 127.0.0.1 -p "$POOLER_PORT" -U bench_app -f "$1" scale 2>&1 |
    sed -nE 's/^tps = ([0-9.]+) .*without initial connection time.*/\1/p'; }
POOLED=$(pooled "$OUT/scale_request.pgbench") POOLED_PLAIN=$(pooled "$OUT/scale_request_plain.pgbench")
stop_pgbouncer "$POOLER_PORT"
declare -A CONC
for c in 1 2 4 8 16; do
    p=$(tps "$OUT/scale_request.pgbench" "$c") b=$(tps "$OUT/scale_request_plain.pgbench" "$c")
    CONC[$c]=$(div "$p" "$b")
    point "request ÷ baseline, by clients" "$c" "${CONC[$c]}"
done

# ---- Report --------------------------------------------------------------------
{
    row figure result baseline ratio target pass
    f=$(div "$last_register" "$first_register")
    row "register shared tenants: per-tenant cost at $SHARED ÷ at 10,000" "${last_register}s / 10k" "${first_register}s / 10k" "$f" "≤ 1.3" "$(at_most "$f" 1.3)"
    f=$(div "$last_insert" "$last_register")
    row "register vs a plain INSERT per tenant of the same rows (at $SHARED)" "${last_register}s / 10k" "${last_insert}s / 10k" "$f" "≥ 0.5" "$(at_least "$f" 0.5)"
    f=$(div "$MISS" "$HOT")
    row "set_tenant miss over $SHARED tenants vs hot (default cache)" "$MISS tps" "$HOT tps" "$f" "≥ 0.5" "$(at_least "$f" 0.5)"
    row "verify() with $SHARED shared tenants" "${VERIFY_SHARED}s" "-" "-" "< 2 s" "$(at_most "$VERIFY_SHARED" 2)"
    row "backend memory after 10,000 distinct tenants" "${MEMORY_SHARED} MiB" "-" "-" "< 32 MiB" "$(at_most "$MEMORY_SHARED" 32)"
    f=$(div "$last_schema" "$first_schema")
    row "register schema tenants: per-tenant cost at $SCHEMAS ÷ first 500" "${last_schema}s / 500" "${first_schema}s / 500" "$f" "≤ 1.3" "$(at_most "$f" 1.3)"
    f=$(div "$last_hand" "$last_schema")
    row "register schema tenants vs the same DDL by hand (at $SCHEMAS)" "${last_schema}s / 500" "${last_hand}s / 500" "$f" "≥ 0.5" "$(at_least "$f" 0.5)"
    f=$(awk -v a="$MIGRATE" -v n="$SCHEMAS" -v b="$MIGRATE_1K" -v m="$SMALL" 'BEGIN { printf "%.3f", (a / n) / (b / m) }')
    row "one migration: per-schema cost at $SCHEMAS ÷ at $SMALL" "${MIGRATE}s / $SCHEMAS" "${MIGRATE_1K}s / $SMALL" "$f" "≤ 1.3" "$(at_most "$f" 1.3)"
    f=$(div "$MIGRATE_HAND" "$MIGRATE")
    row "one migration vs the same DDL by hand ($LAGGING left behind)" "${MIGRATE}s" "${MIGRATE_HAND}s" "$f" "≥ 0.5" "$(at_least "$f" 0.5)"
    row "pending_migrations() with $SCHEMAS schema tenants" "${PENDING}s" "-" "-" "< 5 s" "$(at_most "$PENDING" 5)"
    row "verify() with $SCHEMAS schema tenants" "${VERIFY_SCHEMAS}s" "-" "-" "< 5 s" "$(at_most "$VERIFY_SCHEMAS" 5)"
    row "backend memory after 1,000 schema tenants (PostgreSQL's relation cache: ${MEMORY_RELCACHE} MiB)" "${MEMORY_SCHEMAS} MiB" "-" "-" "(measured)" "-"
    row "pg_dump -Fc / pg_restore of the database ($TABLES relations; max_locks_per_transaction raised for it)" "${DUMP}${RESTORE:+s / ${RESTORE}s}" "-" "-" "(measured)" "-"
    f=$(div "$POOLED" "$POOLED_PLAIN")
    row "200 clients via PgBouncer: set_tenant(…, true) + point vs set_config + WHERE" "$POOLED tps" "$POOLED_PLAIN tps" "$f" "≥ 0.95" "$(at_least "$f" 0.95)"
    for c in 1 2 4 8 16; do
        row "request vs baseline, $c client(s)" "-" "-" "${CONC[$c]}" "not falling" "-"
    done
} >"$OUT/scale.tsv"
publish_table "$OUT/scale.tsv" "$OUT/scale.md"
python3 "$ROOT/bench/scale_chart.py" "$POINTS" "$ROOT/docs/benchmarks-scale.svg"
log "table: $OUT/scale.md, points: $POINTS, chart: docs/benchmarks-scale.svg"
