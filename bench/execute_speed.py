"""Execution speed on DuckDB over the sample dataset (default 1M opportunities).

Baselines measured in the same run, on the same file:
- one query per KPI (each KPI compiled and run on its own), for the whole catalog;
- a hand-written SQL statement for a set of opportunity KPIs, against kpiengine's
  statement for the same KPIs (same numbers checked);
- the catalog without its time-function KPIs, to show what windows cost.
Also prints the number of window functions in the biggest statement and peak RSS.

Usage: python bench/execute_speed.py [ROWS]   (generates bench/.data/sample-ROWS.duckdb once)
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from pathlib import Path

import duckdb
import sqlglot
from sqlglot import exp

import kpiengine
from kpiengine.plan.time_functions import has_time_function
from kpiengine.sample import write_sample

#: what is timed here is loading and compiling, not the cache of repeated runs
#: (kpiengine.cache; bench/cold_start.py times that)
os.environ["KPI_CACHE"] = "0"

ROOT = Path(__file__).resolve().parent.parent
START, END = "2025-01-01", "2026-01-01"
HAND_KPIS = [
    "opportunities_created",
    "deals_won",
    "win_rate",
    "revenue",
    "average_deal_size",
    "sales_cycle_length",
    "pipeline_created",
]
HAND_SQL = """
WITH months AS (
  SELECT CAST(range AS DATE) AS period
  FROM range(DATE '2025-01-01', DATE '2026-01-01', INTERVAL 1 MONTH)
), closed AS (
  SELECT DATE_TRUNC('month', closed_at) AS period,
         COUNT(*) FILTER (WHERE stage = 'won') AS won,
         COUNT(*) FILTER (WHERE stage IN ('won', 'lost')) AS closed,
         SUM(amount) FILTER (WHERE stage = 'won') AS revenue,
         AVG(amount) FILTER (WHERE stage = 'won') AS average_deal,
         AVG(DATE_DIFF('day', CAST(created_at AS DATE), CAST(closed_at AS DATE)))
           FILTER (WHERE stage = 'won') AS cycle
  FROM opportunities WHERE closed_at >= '2025-01-01' AND closed_at < '2026-01-01'
    AND region != 'internal'
  GROUP BY 1
), created AS (
  SELECT DATE_TRUNC('month', created_at) AS period, COUNT(*) AS created,
         SUM(amount) AS pipeline
  FROM opportunities WHERE created_at >= '2025-01-01' AND created_at < '2026-01-01'
    AND region != 'internal'
  GROUP BY 1
)
SELECT m.period, COALESCE(created.created, 0), COALESCE(closed.won, 0),
       closed.won / NULLIF(closed.closed, 0), closed.revenue, closed.average_deal,
       closed.cycle, created.pipeline
FROM months m LEFT JOIN closed ON closed.period = m.period
LEFT JOIN created ON created.period = m.period ORDER BY 1
"""


def timed(function, repeat: int = 3):  # type: ignore[no-untyped-def]
    best, value = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def main(rows: int) -> None:
    data = ROOT / "bench" / ".data"
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"sample-{rows}.duckdb"
    if not path.exists():
        began = time.perf_counter()
        write_sample(f"duckdb:///{path}", rows=rows, seed=42)
        print(f"generated {rows:,} opportunities in {time.perf_counter() - began:.1f} s")
    url = f"duckdb:///{path}"
    project = kpiengine.load(ROOT / "definitions")
    names = list(project.kpis)
    timeless = [n for n in names if not _uses_time(project, n)]
    options = {"grain": "month", "start": START, "end": END}
    with kpiengine.connect(url) as connection:
        whole, result = timed(lambda: project.run(names, connection, **options))
        no_time, _ = timed(lambda: project.run(timeless, connection, **options))
        per_kpi, _ = timed(lambda: [project.run([n], connection, **options) for n in names], 1)
        ours, mine = timed(lambda: project.run(HAND_KPIS, connection, **options))
    sql = project.compile(names, **options)
    windows = len(list(sqlglot.parse_one(sql, read="duckdb").find_all(exp.Window)))
    raw = duckdb.connect(str(path), read_only=True)
    hand, rows_hand = timed(lambda: raw.execute(HAND_SQL).fetchall())
    _same_numbers(mine, rows_hand)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"catalog: {len(names)} KPIs ({len(names) - len(timeless)} use time functions), "
        f"{len(result.rows)} values, month grain {START}..{END}"
    )
    print(f"whole catalog, one statement      {whole:7.3f} s")
    print(
        f"catalog without time KPIs         {no_time:7.3f} s  (windows cost x{whole / no_time:.2f})"
    )
    print(f"one query per KPI                 {per_kpi:7.3f} s  (x{per_kpi / whole:.1f} slower)")
    print(
        f"{len(HAND_KPIS)} opportunity KPIs: kpiengine  {ours:7.3f} s | hand-written SQL "
        f"{hand:7.3f} s | ratio {ours / hand:.2f}"
    )
    print(f"window functions in the catalog statement: {windows}")
    print(f"peak RSS {peak:.0f} MB")


def _uses_time(project, name: str) -> bool:  # type: ignore[no-untyped-def]
    from kpiengine.language.names import referenced_kpis

    kpi = project.model.kpis[name]
    if kpi.semi_additive:
        return True
    if kpi.expression.tree is not None and has_time_function(kpi.expression.tree):
        return True
    return any(_uses_time(project, d) for d in referenced_kpis(kpi) if d in project.model.kpis)


def _same_numbers(result, rows) -> None:  # type: ignore[no-untyped-def]
    for index, name in enumerate(HAND_KPIS, start=1):
        ours = [r.value for r in result.rows if r.kpi == name]
        theirs = [row[index] for row in rows]
        for a, b in zip(ours, theirs, strict=True):
            assert (a is None and b is None) or math.isclose(float(a), float(b), rel_tol=1e-9), (
                name,
                a,
                b,
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
