#!/usr/bin/env bash
# Run a command with the throwaway test servers up (PostgreSQL and MariaDB), then stop
# them; exit with the command's status (also when it fails or is interrupted).
#
#   scripts/engines-run.sh .venv/bin/python -m pytest -q
#
# PostgreSQL is handled by scripts/pg-run.sh (which wraps the rest). MariaDB:
# - KPI_TEST_MYSQL_URL already set: that server is used, nothing is started
#   (KPI_TEST_MYSQL_ADMIN_URL loads the fixtures; it should be another user).
# - A server already started by scripts/mariadb-start.sh is reused and left running.
# - Otherwise scripts/mariadb-start.sh starts one and scripts/mariadb-stop.sh removes it.
# - MariaDB cannot be started: on CI (CI=true) that fails; elsewhere the command still
#   runs and the MariaDB tests are skipped, with the reason.
# ClickHouse (chDB) runs in the test process: nothing to start.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_MARIADB_STATE:-$ROOT/.mariadb}"

if [[ $# -eq 0 ]]; then
    echo "usage: scripts/engines-run.sh COMMAND [ARG...]" >&2
    exit 2
fi

started=""
if [[ -z "${KPI_TEST_MYSQL_URL:-}" ]]; then
    before="$(cat "$STATE/datadir" 2>/dev/null || true)"
    start_ns=$(date +%s%N)
    if exports="$("$ROOT/scripts/mariadb-start.sh")"; then
        eval "$exports"
        after="$(cat "$STATE/datadir" 2>/dev/null || true)"
        if [[ "$before" != "$after" ]]; then
            started=1
            echo "engines-run: MariaDB started in $((($(date +%s%N) - start_ns) / 1000000)) ms" >&2
        fi
    elif [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then
        echo "engines-run: MariaDB is required on CI (CI=$CI) and could not be started" >&2
        exit 1
    else
        echo "engines-run: no MariaDB server; the MariaDB tests will be skipped" >&2
    fi
fi

stop() {
    if [[ -n "$started" ]]; then
        "$ROOT/scripts/mariadb-stop.sh"
        started=""
    fi
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

"$ROOT/scripts/pg-run.sh" "$@"
status=$?
stop
exit $status
