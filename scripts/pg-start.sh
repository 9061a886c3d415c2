#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests.
#
#   scripts/pg-start.sh        # prints `export KPI_TEST_POSTGRES_URL=postgresql://...`
#                              # and `export KPI_TEST_POSTGRES_ADMIN_URL=postgresql://...`
#   scripts/pg-stop.sh         # stops it and removes its data
#
# Two roles, as an operator would set them up (docs/security.md):
# - KPI_TEST_POSTGRES_URL connects as `kpi_reader`: LOGIN, no superuser, no CREATEDB /
#   CREATEROLE, member of pg_read_all_data only (SELECT on every table): what the
#   connector under test uses. It cannot COPY TO PROGRAM, read server files or write.
# - KPI_TEST_POSTGRES_ADMIN_URL connects as the superuser `kpi`: for the tests' fixtures
#   only (CREATE DATABASE, loading tables, the sample writer).
#
# - installs PostgreSQL with apt-get when it is missing (only when run as root);
# - PostgreSQL refuses to run as root: as root the cluster runs as a non-root system user
#   (`postgres` when it exists, else `kpiengine-pg`, created here);
# - the data lives in a fresh folder under $TMPDIR (/tmp); the server listens on
#   127.0.0.1 only, on a free port, with no unix socket; a password is required;
# - the state (URL, data folder, user) is written to .pgdata/ in the repo, which the
#   tests read (`.pgdata/url`, `.pgdata/admin_url`) and pg-stop.sh uses.
#
# Running it again while the cluster is up reuses it. Exit status non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_PG_STATE:-$ROOT/.pgdata}"
DATABASE="kpitest"
SUPERUSER="kpi"
READER="kpi_reader"

log() { echo "pg-start: $*" >&2; }
die() { log "$*"; exit 1; }
source "$ROOT/scripts/lib-server.sh"

find_bindir() {
    local dir
    if [[ -n "${KPI_PG_BINDIR:-}" ]]; then
        echo "$KPI_PG_BINDIR"
        return 0
    fi
    # Debian/Ubuntu keep the server binaries per version; take the newest.
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$dir" && -x "$dir/initdb" ]]; then
        echo "$dir"
        return 0
    fi
    for candidate in initdb /usr/pgsql-*/bin/initdb /usr/local/pgsql/bin/initdb; do
        if command -v "$candidate" >/dev/null 2>&1; then
            dirname "$(command -v "$candidate")"
            return 0
        fi
    done
    return 1
}

# -- reuse a running cluster ------------------------------------------------------------
if [[ -f "$STATE/url" && -f "$STATE/datadir" ]]; then
    BINDIR="$(cat "$STATE/bindir" 2>/dev/null || true)"
    DATA="$(cat "$STATE/datadir")"
    if [[ -n "$BINDIR" && -f "$DATA/cluster/postmaster.pid" ]] &&
        "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$(cat "$STATE/port")" 2>/dev/null; then
        if [[ -f "$STATE/admin_url" ]]; then
            log "reusing the running cluster in $DATA"
            echo "export KPI_TEST_POSTGRES_URL=$(cat "$STATE/url")"
            echo "export KPI_TEST_POSTGRES_ADMIN_URL=$(cat "$STATE/admin_url")"
            exit 0
        fi
        log "the running cluster in $DATA predates the reader role: recreating it"
    fi
    log "stale state in $STATE: cleaning up"
    "$ROOT/scripts/pg-stop.sh" >/dev/null 2>&1 || true
fi

# -- install ----------------------------------------------------------------------------
if ! BINDIR="$(find_bindir)"; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "PostgreSQL is not installed: apt-get install -y postgresql"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        BINDIR="$(find_bindir)" || die "postgresql installed but initdb not found"
    else
        die "PostgreSQL is not installed (no initdb found). Install it, e.g." \
            "\`sudo apt-get install -y postgresql\`, or set KPI_TEST_POSTGRES_URL to a server."
    fi
fi

# -- who runs it --------------------------------------------------------------------------
server_owner "${KPI_PG_OWNER:-}" postgres kpiengine-pg "PostgreSQL refuses to run as root"

# -- create -----------------------------------------------------------------------------
mkdir -p "$STATE"
DATA="$(mktemp -d "${TMPDIR:-/tmp}/kpiengine-pg.XXXXXX")"
echo "$DATA" >"$STATE/datadir"
echo "$BINDIR" >"$STATE/bindir"
echo "$OWNER" >"$STATE/owner"
chmod 700 "$DATA"
[[ "$(id -u)" -eq 0 ]] && chown "$OWNER" "$DATA"

PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PWFILE="$DATA/.pw"
(umask 077 && echo "$PASSWORD" >"$PWFILE")
[[ "$(id -u)" -eq 0 ]] && chown "$OWNER" "$PWFILE"

"${as_owner[@]}" "$BINDIR/initdb" -D "$DATA/cluster" -U "$SUPERUSER" --pwfile="$PWFILE" \
    --auth=scram-sha-256 -E UTF8 --locale=C --no-sync >"$STATE/initdb.log" 2>&1 ||
    { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
rm -f "$PWFILE"

cat >>"$DATA/cluster/postgresql.conf" <<'EOF'
# throwaway test cluster: speed over durability, loopback only, no unix socket
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 40
shared_buffers = 64MB
timezone = 'UTC'
log_min_messages = warning
EOF


started=""
for attempt in 1 2 3; do
    PORT="$(free_port)"
    if "${as_owner[@]}" "$BINDIR/pg_ctl" -D "$DATA/cluster" -l "$DATA/server.log" -w -t 60 \
        -o "-p $PORT" start >/dev/null 2>&1; then
        started=1
        break
    fi
    log "start on port $PORT failed (attempt $attempt)"
done
if [[ -z "$started" ]]; then
    cat "$DATA/server.log" >&2 || true
    die "could not start PostgreSQL"
fi
echo "$PORT" >"$STATE/port"

export PGPASSWORD="$PASSWORD"
"$BINDIR/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres \
    -c "CREATE DATABASE $DATABASE" >/dev/null

# the connector's role: reads every table, nothing else (the password is hex: no quoting)
READER_PASSWORD="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
"$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$SUPERUSER" -d postgres \
    -c "CREATE ROLE $READER LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$READER_PASSWORD'" \
    -c "GRANT pg_read_all_data TO $READER" >/dev/null

ADMIN_URL="postgresql://$SUPERUSER:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
URL="postgresql://$READER:$READER_PASSWORD@127.0.0.1:$PORT/$DATABASE"
(umask 077 && echo "$URL" >"$STATE/url" && echo "$ADMIN_URL" >"$STATE/admin_url")
log "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT" \
    "(data $DATA, user $OWNER; tests connect as $READER, fixtures as $SUPERUSER)"
echo "export KPI_TEST_POSTGRES_URL=$URL"
echo "export KPI_TEST_POSTGRES_ADMIN_URL=$ADMIN_URL"
