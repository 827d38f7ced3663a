#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a scratch PostgreSQL on
# port 25432, and shows tenants isolated and their lifecycle.
source "$(dirname "$0")/lib.sh"
PORT=${TENANCY_DEMO_PORT:-25432}

if [ "${1:-}" = stop ]; then stop_cluster "$PORT"; exit 0; fi
ensure_tools
install_extension
fresh_cluster "$PORT"
log "scratch PostgreSQL on 127.0.0.1:$PORT (stop it with: scripts/demo.sh stop)"
psql -X -v PORT="$PORT" -d postgres -f "$ROOT/scripts/demo.sql"
