#!/usr/bin/env bash
# Start a throwaway MariaDB server for the tests (the MySQL-family engine).
#
#   scripts/mariadb-start.sh   # prints `export KPI_TEST_MYSQL_URL=mysql://...`
#                              # and `export KPI_TEST_MYSQL_ADMIN_URL=mysql://...`
#   scripts/mariadb-stop.sh    # stops it and removes its data
#
# Two users, as an operator would set them up (docs/security.md):
# - KPI_TEST_MYSQL_URL connects as `kpi_reader`: SELECT on the test databases
#   (`kpitest%`) only: what the connector under test uses. It cannot write, read server
#   files (no FILE privilege) or see the `mysql` system tables.
# - KPI_TEST_MYSQL_ADMIN_URL connects as `kpi` (all privileges): for the fixtures only.
#
# - installs Debian's mariadb-server with apt-get when it is missing (only as root);
# - as root the server runs as a non-root system user (`mysql` when it exists, else
#   `kpiengine-mariadb`, created here);
# - the data lives in a fresh folder under $TMPDIR (/tmp), the unix socket too (used
#   once, as root, to create the users); the server listens on 127.0.0.1 only, on a free
#   port, and every TCP user needs a password;
# - the state (URLs, data folder, pid, user) is written to .mariadb/ in the repo, which
#   the tests read (`.mariadb/url`, `.mariadb/admin_url`) and mariadb-stop.sh uses.
#
# Running it again while the server is up reuses it. Exit status non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_MARIADB_STATE:-$ROOT/.mariadb}"
DATABASE="kpitest"
ADMIN="kpi"
READER="kpi_reader"

log() { echo "mariadb-start: $*" >&2; }
die() { log "$*"; exit 1; }
source "$ROOT/scripts/lib-server.sh"

find_server() {
    local candidate
    for candidate in "${KPI_MARIADB_BIN:-}" mariadbd /usr/sbin/mariadbd /usr/sbin/mysqld; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

client() {  # client SOCKET SQL...: as the server's root over the unix socket
    local socket="$1"
    shift
    mariadb --no-defaults -S "$socket" -u root --batch --skip-column-names -e "$*"
}

# -- reuse a running server ------------------------------------------------------------
if [[ -f "$STATE/url" && -f "$STATE/datadir" && -f "$STATE/pid" ]]; then
    if kill -0 "$(cat "$STATE/pid")" 2>/dev/null &&
        mariadb-admin --no-defaults -S "$(cat "$STATE/datadir")/mysqld.sock" -u root ping \
            >/dev/null 2>&1; then
        log "reusing the running server in $(cat "$STATE/datadir")"
        echo "export KPI_TEST_MYSQL_URL=$(cat "$STATE/url")"
        echo "export KPI_TEST_MYSQL_ADMIN_URL=$(cat "$STATE/admin_url")"
        exit 0
    fi
    log "stale state in $STATE: cleaning up"
    "$ROOT/scripts/mariadb-stop.sh" >/dev/null 2>&1 || true
fi

# -- install ----------------------------------------------------------------------------
if ! SERVER="$(find_server)" || ! command -v mariadb-install-db >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "MariaDB is not installed: apt-get install -y mariadb-server"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq mariadb-server >&2
        SERVER="$(find_server)" || die "mariadb-server installed but mariadbd not found"
    else
        die "MariaDB is not installed (no mariadbd found). Install it, e.g." \
            "\`sudo apt-get install -y mariadb-server\`, or set KPI_TEST_MYSQL_URL to a server."
    fi
fi

# -- who runs it --------------------------------------------------------------------------
server_owner "${KPI_MARIADB_OWNER:-}" mysql kpiengine-mariadb "the server does not run as root"

# -- create -----------------------------------------------------------------------------
mkdir -p "$STATE"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/kpiengine-mariadb.XXXXXX")"
echo "$DATA" >"$STATE/datadir"
echo "$OWNER" >"$STATE/owner"
chmod 700 "$DATA"
[[ "$(id -u)" -eq 0 ]] && chown "$OWNER" "$DATA"
SOCKET="$DATA/mysqld.sock"

"${as_owner[@]}" mariadb-install-db --no-defaults --datadir="$DATA/data" \
    --auth-root-authentication-method=socket --skip-test-db \
    >"$STATE/install.log" 2>&1 || { cat "$STATE/install.log" >&2; die "mariadb-install-db failed"; }


started=""
for attempt in 1 2 3; do
    PORT="$(free_port)"
    # throwaway: speed over durability, loopback only, no name resolution, no binlog
    "${as_owner[@]}" "$SERVER" --no-defaults --datadir="$DATA/data" --socket="$SOCKET" \
        --pid-file="$DATA/mariadb.pid" --log-error="$DATA/server.log" \
        --bind-address=127.0.0.1 --port="$PORT" --skip-name-resolve --skip-log-bin \
        --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=16M --max-connections=40 --default-time-zone=+00:00 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
        </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
        if mariadb-admin --no-defaults -S "$SOCKET" -u root ping >/dev/null 2>&1; then
            started=1
            break
        fi
        kill -0 $! 2>/dev/null || break
        sleep 0.25
    done
    [[ -n "$started" ]] && break
    log "start on port $PORT failed (attempt $attempt)"
    kill $! 2>/dev/null || true
    wait $! 2>/dev/null || true
done
if [[ -z "$started" ]]; then
    cat "$DATA/server.log" >&2 || true
    die "could not start MariaDB"
fi
cat "$DATA/mariadb.pid" >"$STATE/pid"
echo "$PORT" >"$STATE/port"

# the passwords are hex: no quoting needed
PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
READER_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
client "$SOCKET" "
    CREATE DATABASE $DATABASE;
    CREATE USER '$ADMIN'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
    GRANT ALL PRIVILEGES ON *.* TO '$ADMIN'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER '$READER'@'127.0.0.1' IDENTIFIED BY '$READER_PASSWORD';
    GRANT SELECT ON \`kpitest%\`.* TO '$READER'@'127.0.0.1';
" || die "could not create the users"

ADMIN_URL="mysql://$ADMIN:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
URL="mysql://$READER:$READER_PASSWORD@127.0.0.1:$PORT/$DATABASE"
(umask 077 && echo "$URL" >"$STATE/url" && echo "$ADMIN_URL" >"$STATE/admin_url")
log "MariaDB $("$SERVER" --version | awk '{print $3}') on 127.0.0.1:$PORT" \
    "(data $DATA, user $OWNER; tests connect as $READER, fixtures as $ADMIN)"
echo "export KPI_TEST_MYSQL_URL=$URL"
echo "export KPI_TEST_MYSQL_ADMIN_URL=$ADMIN_URL"
