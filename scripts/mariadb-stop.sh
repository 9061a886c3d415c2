#!/usr/bin/env bash
# Stop the throwaway MariaDB server of scripts/mariadb-start.sh and remove its data.
# Safe to run when nothing is running.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_MARIADB_STATE:-$ROOT/.mariadb}"

if [[ ! -f "$STATE/datadir" ]]; then
    rm -rf "$STATE"
    exit 0
fi
DATA="$(cat "$STATE/datadir")"
PID="$(cat "$STATE/pid" 2>/dev/null || true)"

# only the server this script's state names: by its pid, checked to be a MariaDB server
if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null &&
    grep -q "$DATA" "/proc/$PID/cmdline" 2>/dev/null; then
    mariadb-admin --no-defaults -S "$DATA/mysqld.sock" -u root shutdown >/dev/null 2>&1 ||
        kill "$PID" 2>/dev/null || true
    for _ in $(seq 1 120); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$PID" 2>/dev/null; then
        echo "mariadb-stop: the server did not stop; killing pid $PID" >&2
        kill -9 "$PID" 2>/dev/null || true
    fi
fi

# only ever remove what mariadb-start.sh created
case "$DATA" in
*/kpiengine-mariadb.*) rm -rf "$DATA" ;;
*) echo "mariadb-stop: not removing unexpected data folder $DATA" >&2 ;;
esac
rm -rf "$STATE"
echo "mariadb-stop: stopped" >&2
