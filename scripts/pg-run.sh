#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server up, then stop it; exit with the
# command's status (also when it fails or is interrupted).
#
#   scripts/pg-run.sh .venv/bin/python -m pytest -q
#
# - KPI_TEST_POSTGRES_URL already set: that server is used, nothing is started
#   (KPI_TEST_POSTGRES_ADMIN_URL, when set, is the role that loads the fixtures; it
#   should not be the same role: the connector is tested with a non-superuser one).
# - A cluster already started by scripts/pg-start.sh is reused and left running.
# - Otherwise scripts/pg-start.sh starts one and scripts/pg-stop.sh removes it at the end.
# - PostgreSQL cannot be started: on CI (CI=true) that fails; elsewhere the command still
#   runs and the PostgreSQL tests are skipped, with the reason.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${KPI_PG_STATE:-$ROOT/.pgdata}"

if [[ $# -eq 0 ]]; then
    echo "usage: scripts/pg-run.sh COMMAND [ARG...]" >&2
    exit 2
fi

started=""
if [[ -z "${KPI_TEST_POSTGRES_URL:-}" ]]; then
    before="$(cat "$STATE/datadir" 2>/dev/null || true)"
    start_ns=$(date +%s%N)
    if exports="$("$ROOT/scripts/pg-start.sh")"; then
        eval "$exports"
        after="$(cat "$STATE/datadir" 2>/dev/null || true)"
        if [[ "$before" != "$after" ]]; then
            started=1
            echo "pg-run: PostgreSQL started in $((($(date +%s%N) - start_ns) / 1000000)) ms" >&2
        fi
    elif [[ "${CI:-}" == "true" || "${CI:-}" == "1" ]]; then
        echo "pg-run: PostgreSQL is required on CI (CI=$CI) and could not be started" >&2
        exit 1
    else
        echo "pg-run: no PostgreSQL server; the PostgreSQL tests will be skipped" >&2
    fi
fi

stop() {
    if [[ -n "$started" ]]; then
        "$ROOT/scripts/pg-stop.sh"
        started=""
    fi
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

"$@"
status=$?
stop
exit $status
