"""Windows (SPEC §13.1) against hand-written DuckDB SQL computing the same numbers
(issue 13: YTD/trailing KPIs on 1M and 10M opportunities; issue 16: within 1.2x).

Sets, each at month grain over 2025 on the sample dataset:
- ``ytd``: revenue and win rate year to date (a ratio over the year's rows);
- ``trailing``: revenue over the trailing 12 months;
- ``active 90d``: accounts with an activity in the trailing 90 days (a distinct count,
  which no sum of period values can give);
- ``lead → opportunity 60d``: the conversion KPI (SPEC §13.5) against a correlated
  ``EXISTS`` per lead.

The hand-written statements are what an analyst fluent in SQL writes: monthly sums
accumulated with window functions where the aggregate is additive, and a range join of
the rows to the months' bounds where it is not (distinct counts). The numbers of both
statements are compared before any time is printed; timings interleave the two and keep
the median of ``RUNS``.

Usage: python bench/windows_speed.py [ROWS] [RUNS]   (sample data generated once in bench/.data)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["KPI_CACHE"] = "0"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hand_sql import ROOT, duckdb_version, hand_table, print_interleaved, same, sample, table

import kpiengine

START, END = "2025-01-01", "2026-01-01"
MONTHS = (
    "SELECT CAST(range AS DATE) AS period "
    "FROM range(DATE '{lo}', DATE '2026-01-01', INTERVAL 1 MONTH)"
)

YTD_SQL = f"""
WITH monthly AS (
  SELECT CAST(DATE_TRUNC('month', closed_at) AS DATE) AS period,
         SUM(amount) FILTER (WHERE stage = 'won') AS revenue,
         COUNT(*) FILTER (WHERE stage = 'won') AS won,
         COUNT(*) FILTER (WHERE stage IN ('won', 'lost')) AS closed
  FROM opportunities
  WHERE closed_at >= '2025-01-01' AND closed_at < '2026-01-01' AND region != 'internal'
  GROUP BY 1
), months AS ({MONTHS.format(lo="2025-01-01")})
SELECT m.period,
       SUM(x.revenue) OVER year_so_far,
       SUM(COALESCE(x.won, 0)) OVER year_so_far
         / NULLIF(SUM(COALESCE(x.closed, 0)) OVER year_so_far, 0)
FROM months m LEFT JOIN monthly x ON x.period = m.period
WINDOW year_so_far AS (PARTITION BY YEAR(m.period) ORDER BY m.period)
"""

TRAILING_SQL = f"""
WITH monthly AS (
  SELECT CAST(DATE_TRUNC('month', closed_at) AS DATE) AS period,
         SUM(amount) FILTER (WHERE stage = 'won') AS revenue
  FROM opportunities
  WHERE closed_at >= '2024-02-01' AND closed_at < '2026-01-01' AND region != 'internal'
  GROUP BY 1
), months AS ({MONTHS.format(lo="2024-02-01")}),
summed AS (
  SELECT m.period, SUM(x.revenue) OVER (ORDER BY m.period ROWS 11 PRECEDING) AS value
  FROM months m LEFT JOIN monthly x ON x.period = m.period
)
SELECT period, value FROM summed WHERE period >= DATE '2025-01-01'
"""

ACTIVE_SQL = f"""
WITH months AS ({MONTHS.format(lo="2025-01-01")}),
bounds AS (
  SELECT period, CAST(period + INTERVAL 1 MONTH - INTERVAL 90 DAY AS DATE) AS lo,
         CAST(period + INTERVAL 1 MONTH AS DATE) AS hi
  FROM months
)
SELECT b.period, COUNT(DISTINCT a.account_id)
FROM bounds b LEFT JOIN activities a ON a.occurred_at >= b.lo AND a.occurred_at < b.hi
GROUP BY b.period
"""

CONVERSION_SQL = f"""
WITH months AS ({MONTHS.format(lo="2025-01-01")}),
base AS (
  SELECT l.lead_id, l.created_at,
         EXISTS (
           SELECT 1 FROM opportunities o
           WHERE o.lead_id = l.lead_id AND o.created_at >= l.created_at
             AND o.created_at <= l.created_at + INTERVAL 60 DAY
         ) AS converted
  FROM leads l
  WHERE l.created_at >= '2025-01-01' AND l.created_at < '2026-01-01' AND l.region != 'internal'
), monthly AS (
  SELECT CAST(DATE_TRUNC('month', created_at) AS DATE) AS period,
         COUNT(*) FILTER (WHERE converted) / COUNT(*) AS rate
  FROM base GROUP BY 1
)
SELECT m.period, x.rate FROM months m LEFT JOIN monthly x ON x.period = m.period
"""

SETS = [
    ("ytd", ["revenue_ytd", "win_rate_ytd"], YTD_SQL),
    ("trailing", ["revenue_t12m"], TRAILING_SQL),
    ("active 90d", ["active_accounts_90d"], ACTIVE_SQL),
    ("lead → opportunity 60d", ["lead_to_opportunity_rate"], CONVERSION_SQL),
]


def main(rows: int, runs: int) -> None:
    path = sample(rows)
    project = kpiengine.load(ROOT / "definitions")
    connection = kpiengine.connect(f"duckdb:///{path}")
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"DuckDB {duckdb_version()}, {rows:,} opportunities; load average {loads}")
    print(f"{'statement':22} {'kpiengine':>10} {'hand SQL':>10} {'ratio':>6}")
    for label, names, hand in SETS:
        result = project.run(names, connection, grain="month", start=START, end=END)
        expected = hand_table(connection.execute(hand)[1], names, False)
        same(table(result, names, False), expected, label)
        print_interleaved(connection, label, result.sql, hand, runs)


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
        int(sys.argv[2]) if len(sys.argv) > 2 else 9,
    )
