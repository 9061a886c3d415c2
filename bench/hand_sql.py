"""kpiengine's one statement against hand-written DuckDB SQL computing the same numbers
(issue 16: within 1.05x; time-function KPIs within 1.2x).

Sets, each at month grain over 2025 on the sample dataset:
- ``10``: ten opportunity KPIs on two time columns (closed_at, created_at);
- ``10 by region``: the same, grouped by the deals' region;
- ``time``: revenue and units with `growth`, `previous` (a look-back of one month) and
  `cumulative_sum` (all history) KPIs;
- ``28`` and ``28 by region``: 28 common KPIs over seven tables (bench/hand_sql_catalog.py),
  one of them a median the catalog lacks (added to a copy of definitions/ for the bench);
  ``28 by region, LEFT JOIN`` is the same hand SQL with the left join to `accounts` that
  kpiengine writes (SPEC §5), to tell the join's cost from the statement's;
- ``catalog``: the whole bundled catalog, 133 KPIs (issue 16): 24 aggregates over 2025,
  8 narrow all-history aggregates on a month spine for the 16 time-function KPIs, window
  sums for the to-date KPIs, a range join for the 90-day distinct count, a join of the
  leads to their deals for the conversions (bench/hand_sql_catalog.py).

The numbers of both statements are compared (same rows, same values to 1e-9) before any
time is printed. Timings interleave the two statements and keep the median of ``RUNS``.
Only the statements are timed (kpiengine's compile time is in compile_speed.py); the
kpiengine statement is the one `kpi run` executes, data-range query excluded.

Usage: python bench/hand_sql.py [ROWS] [RUNS] [SET...] [--memory-limit SIZE]
(SET: a label prefix, e.g. "28"; default all; sample data generated once in bench/.data;
the DuckDB pool is the connector's 800 MB unless ``--memory-limit=4GB`` or so is given)
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["KPI_CACHE"] = "0"  # compile for real; only the statements are timed anyway

import kpiengine
from kpiengine.sample import write_sample

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hand_sql_catalog import BENCH_KPIS, CATALOG, K28, catalog_sql, k28_sql

ROOT = Path(__file__).resolve().parent.parent
START, END = "2025-01-01", "2026-01-01"

TEN = [
    "opportunities_created",
    "pipeline_created",
    "deals_won",
    "deals_lost",
    "deals_closed",
    "win_rate",
    "revenue",
    "average_deal_size",
    "units_sold",
    "sales_cycle_length",
]


def ten_sql(by_region: bool) -> str:
    """The ten KPIs by hand: one aggregate per time column, joined to the month spine."""
    key = ", region" if by_region else ""
    spine = (
        "SELECT CAST(range AS DATE) AS period FROM range(DATE '2025-01-01', "
        "DATE '2026-01-01', INTERVAL 1 MONTH)"
    )
    closed = f"""
        SELECT CAST(DATE_TRUNC('month', closed_at) AS DATE) AS period{key},
               COUNT(*) FILTER (WHERE stage = 'won') AS won,
               COUNT(*) FILTER (WHERE stage = 'lost') AS lost,
               COUNT(*) FILTER (WHERE stage IN ('won', 'lost')) AS closed,
               SUM(amount) FILTER (WHERE stage = 'won') AS revenue,
               AVG(amount) FILTER (WHERE stage = 'won') AS average_deal,
               SUM(quantity) FILTER (WHERE stage = 'won') AS units,
               AVG(DATE_DIFF('day', CAST(created_at AS DATE), CAST(closed_at AS DATE)))
                 FILTER (WHERE stage = 'won') AS cycle
        FROM opportunities
        WHERE closed_at >= '2025-01-01' AND closed_at < '2026-01-01' AND region != 'internal'
        GROUP BY ALL"""
    created = f"""
        SELECT CAST(DATE_TRUNC('month', created_at) AS DATE) AS period{key},
               COUNT(*) AS created, SUM(amount) AS pipeline
        FROM opportunities
        WHERE created_at >= '2025-01-01' AND created_at < '2026-01-01' AND region != 'internal'
        GROUP BY ALL"""
    values = """COALESCE(n.created, 0), COALESCE(n.pipeline, 0), COALESCE(c.won, 0),
        COALESCE(c.lost, 0), COALESCE(c.closed, 0), c.won / NULLIF(c.closed, 0), c.revenue,
        c.average_deal, c.units, c.cycle"""
    if not by_region:
        return f"""WITH months AS ({spine}), c AS ({closed}), n AS ({created})
            SELECT m.period, {values} FROM months m
            LEFT JOIN c ON c.period = m.period LEFT JOIN n ON n.period = m.period"""
    return f"""WITH c AS ({closed}), n AS ({created})
        SELECT COALESCE(c.period, n.period) AS period, COALESCE(c.region, n.region), {values}
        FROM c FULL JOIN n ON c.period = n.period AND c.region = n.region"""


TIME = ["revenue", "units_sold", "monthly_sales_growth", "marginal_revenue", "pipeline_value"]
TIME_SQL = """
WITH monthly AS (
  SELECT CAST(DATE_TRUNC('month', closed_at) AS DATE) AS period,
         SUM(amount) FILTER (WHERE stage = 'won') AS revenue,
         SUM(quantity) FILTER (WHERE stage = 'won') AS units
  FROM opportunities
  WHERE closed_at >= '2024-12-01' AND closed_at < '2026-01-01' AND region != 'internal'
  GROUP BY 1
), months AS (
  SELECT CAST(range AS DATE) AS period
  FROM range(DATE '2024-12-01', DATE '2026-01-01', INTERVAL 1 MONTH)
), lagged AS (
  SELECT m.period, x.revenue, x.units,
         LAG(x.revenue) OVER (ORDER BY m.period) AS revenue_before,
         LAG(x.units) OVER (ORDER BY m.period) AS units_before
  FROM months m LEFT JOIN monthly x ON x.period = m.period
), opened AS (  -- all history: the running totals start at the first month with data
  SELECT CAST(DATE_TRUNC('month', created_at) AS DATE) AS period, SUM(amount) AS amount
  FROM opportunities WHERE created_at < '2026-01-01' AND region != 'internal' GROUP BY 1
), shut AS (
  SELECT CAST(DATE_TRUNC('month', closed_at) AS DATE) AS period,
         SUM(amount) FILTER (WHERE stage IN ('won', 'lost')) AS amount
  FROM opportunities WHERE closed_at < '2026-01-01' AND region != 'internal' GROUP BY 1
), balance AS (
  SELECT period,
         SUM(COALESCE(o.amount, 0) - COALESCE(s.amount, 0)) OVER (ORDER BY period) AS value
  FROM opened o FULL JOIN shut s USING (period)
)
SELECT l.period, l.revenue, l.units,
       CASE WHEN l.revenue_before = 0 THEN NULL
            ELSE (l.revenue - l.revenue_before) / l.revenue_before END,
       (l.revenue - l.revenue_before) / NULLIF(l.units - l.units_before, 0),
       b.value
FROM lagged l LEFT JOIN balance b ON b.period = l.period
WHERE l.period >= DATE '2025-01-01'
"""

SETS: list[tuple[str, list[str], dict[str, Any], str]] = [
    ("10 KPIs", TEN, {}, ten_sql(False)),
    ("10 KPIs by region", TEN, {"by": ["region"]}, ten_sql(True)),
    ("time functions (5)", TIME, {}, TIME_SQL),
    ("28 KPIs", K28, {}, k28_sql(False)),
    ("28 KPIs by region", K28, {"by": ["region"]}, k28_sql(True)),
    ("28 by region, LEFT JOIN", K28, {"by": ["region"]}, k28_sql(True, "LEFT")),
    ("catalog (133 KPIs)", CATALOG, {}, catalog_sql()),
]


def bench_project() -> Any:
    """The bundled catalog plus the bench's own KPIs (BENCH_KPIS), from a temporary copy
    of definitions/ so that the catalog itself stays as shipped."""
    folder = Path(tempfile.mkdtemp(prefix="kpi-bench-")) / "definitions"
    shutil.copytree(ROOT / "definitions", folder)
    (folder / "kpis" / "bench.yaml").write_text(BENCH_KPIS, encoding="utf-8")
    return kpiengine.load(folder)


def sample(rows: int) -> Path:
    path = ROOT / "bench" / ".data" / f"sample-{rows}.duckdb"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        write_sample(f"duckdb:///{path}", rows=rows, seed=42)
        print(f"generated {rows:,} opportunities in {time.perf_counter() - began:.1f} s")
    return path


def table(result: Any, names: list[str], by: bool) -> dict[tuple[Any, ...], Any]:
    """kpiengine's result as (kpi, period, region) -> value."""
    return {
        (r.kpi, r.period.isoformat(), dict(r.dimensions).get("region") if by else None): r.value
        for r in result.rows
        if r.kpi in names
    }


def hand_table(rows: list[tuple[Any, ...]], names: list[str], by: bool) -> dict[Any, Any]:
    found = {}
    for row in rows:
        period, region = row[0].isoformat(), (row[1] if by else None)
        values = row[2:] if by else row[1:]
        for name, value in zip(names, values, strict=True):
            found[(name, period, region)] = value
    return found


def same(ours: dict[Any, Any], theirs: dict[Any, Any], label: str) -> int:
    """Equal values where the hand SQL has a row; kpiengine's other rows empty (0 or null).
    Returns how many non-null values were compared (printed, so that an empty check shows)."""
    compared = 0
    for key, value in theirs.items():
        mine = ours.get(key)
        if value is None or mine is None:
            assert value == mine or (value in (0, None) and mine in (0, None)), (label, key)
            continue
        assert math.isclose(float(mine), float(value), rel_tol=1e-9, abs_tol=1e-9), (
            label,
            key,
            mine,
            value,
        )
        compared += 1
    extra = {k: v for k, v in ours.items() if k not in theirs and v not in (0, None)}
    assert not extra, (label, list(extra.items())[:5])
    return compared


def duckdb_version() -> str:
    import duckdb

    return str(duckdb.__version__)


def print_interleaved(
    connection: Any, label: str, ours: str, theirs: str, runs: int, checked: int = 0
) -> None:
    """Median times of the two statements, run alternately (so that load changes hit
    both alike), and their ratio, as one table row."""
    mine, hand = [], []
    for _ in range(runs):
        began = time.perf_counter()
        connection.execute(ours)
        mine.append(time.perf_counter() - began)
        began = time.perf_counter()
        connection.execute(theirs)
        hand.append(time.perf_counter() - began)
    a, b = statistics.median(mine), statistics.median(hand)
    note = f"   ({checked} values equal)" if checked else ""
    print(f"{label:26} {a * 1000:8.1f} ms {b * 1000:8.1f} ms {a / b:6.2f}{note}")


def check_set(
    project: Any, connection: Any, label: str, names: list[str], options: dict[str, Any], hand: str
) -> tuple[str, int]:
    """Run one set both ways and check the numbers (tests/test_hand_sql_bench.py calls it
    on a small sample); returns kpiengine's statement and how many values were compared."""
    by = bool(options.get("by"))
    result = project.run(names, connection, grain="month", start=START, end=END, **options)
    sql = result.sql  # what `kpi run` executes (after its data-range query, if any)
    expected = hand_table(connection.execute(hand)[1], names, by)
    return sql, same(table(result, names, by), expected, label)


def duckdb_url(path: Path, memory_limit: str | None) -> str:
    """The DuckDB URL of ``path``, with ``?memory_limit=`` when one is chosen (else the
    connector's default pool)."""
    return f"duckdb:///{path}" + (f"?memory_limit={memory_limit}" if memory_limit else "")


def main(rows: int, runs: int, chosen: list[str], memory_limit: str | None = None) -> None:
    path = sample(rows)
    project = bench_project()
    connection = kpiengine.connect(duckdb_url(path, memory_limit))  # the same for both
    load = os.getloadavg()
    loads = " ".join(f"{x:.2f}" for x in load)
    pool = f"; pool {memory_limit}" if memory_limit else ""
    print(f"DuckDB {duckdb_version()}, {rows:,} opportunities; load average {loads}{pool}")
    print(f"{'statement':26} {'kpiengine':>10} {'hand SQL':>10} {'ratio':>6}")
    for label, names, options, hand in SETS:
        if chosen and not any(label.startswith(prefix) for prefix in chosen):
            continue
        sql, checked = check_set(project, connection, label, names, options, hand)
        print_interleaved(connection, label, sql, hand, runs, checked)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("runs", type=int, nargs="?", default=9)
    parser.add_argument("sets", nargs="*", metavar="SET", help="label prefixes; default all")
    parser.add_argument("--memory-limit", metavar="SIZE", help="DuckDB pool, e.g. 4GB")
    args = parser.parse_args()
    main(args.rows, args.runs, args.sets, args.memory_limit)
