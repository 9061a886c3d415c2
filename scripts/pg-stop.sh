#!/usr/bin/env bash
# Stop the throwaway PostgreSQL cluster of scripts/pg-start.sh and remove its data.
# Safe to run when nothing is running.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_PG_STATE:-$ROOT/.pgdata}"

if [[ ! -f "$STATE/datadir" ]]; then
    rm -rf "$STATE"
    exit 0
fi
DATA="$(cat "$STATE/datadir")"
BINDIR="$(cat "$STATE/bindir" 2>/dev/null || true)"
OWNER="$(cat "$STATE/owner" 2>/dev/null || true)"

as_owner=()
if [[ "$(id -u)" -eq 0 && -n "$OWNER" && "$OWNER" != root ]]; then
    as_owner=(runuser -u "$OWNER" --)
fi

if [[ -n "$BINDIR" && -f "$DATA/cluster/postmaster.pid" ]]; then
    "${as_owner[@]}" "$BINDIR/pg_ctl" -D "$DATA/cluster" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        "${as_owner[@]}" "$BINDIR/pg_ctl" -D "$DATA/cluster" -m immediate -w stop >/dev/null 2>&1 ||
        echo "pg-stop: could not stop the server in $DATA" >&2
fi

# only ever remove what pg-start.sh created
case "$DATA" in
*/kpiengine-pg.*) rm -rf "$DATA" ;;
*) echo "pg-stop: not removing unexpected data folder $DATA" >&2 ;;
esac
rm -rf "$STATE"
echo "pg-stop: stopped" >&2
