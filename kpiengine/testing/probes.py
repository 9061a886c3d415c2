"""Probe KPIs the bundled catalog lacks, shared by every cross-engine equivalence test.

The catalog uses no ``round``, median, percentile or ``greatest``/``least``, so the engine
tests add this small project over one generated table: ROUND ties (decimal ties that are
not exact in binary, exact halves, negative digits), median and percentile over more
than 8 192 rows a month (where ClickHouse's ``quantile`` and Trino's
``approx_percentile`` stop being exact), GREATEST/LEAST with nulls, ``%`` on integers and
doubles, ``days_between`` and distinct counts. Values are compared with DuckDB's (no
hand-computed numbers here: that is :mod:`kpiengine.testing.cases`' job).

Used by tests/test_clickhouse.py and tests/test_probes.py; a connector author can run it
too: load :func:`probe_tables` into the engine, :func:`run_probes` on both, compare.
Nothing here imports pytest; pyarrow is imported when the tables are built.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: Rows of the probe table: two months of more than 8 192 rows each.
PROBE_ROWS = 20_000

#: The probe project: path → YAML text (for :func:`kpiengine.testing.dataset.write_files`).
PROBE_FILES: dict[str, str] = {
    "kpiengine.yaml": "project: probes\n",
    "sources/probe.yaml": """\
source: probe
table: probe
time: day
columns:
  id: {type: integer, key: true}
  day: date
  started: timestamp
  grp: string
  x: number
  y: number
  h: number
  n: integer
""",
    "kpis/probes.yaml": """\
kpis:
  - kpi: round_ties_2
    source: probe
    expression: sum(round(x, 2))
  - kpi: round_halves
    source: probe
    expression: sum(round(h))
  - kpi: round_tens
    source: probe
    expression: sum(round(x * 10, -1))
  - kpi: median_x
    source: probe
    expression: median(x)
  - kpi: p90_x
    source: probe
    expression: percentile(x, 0.9)
  - kpi: greatest_xy
    source: probe
    expression: sum(greatest(x, y))
  - kpi: least_xy
    source: probe
    expression: sum(least(x, y))
  - kpi: greatest_null_count
    source: probe
    expression: count(where greatest(x, y) > 0)
  - kpi: mod_n
    source: probe
    expression: sum(n % 7)
  - kpi: mod_x
    source: probe
    expression: sum(x % 3)
  - kpi: days
    source: probe
    expression: sum(days_between(started, day))
  - kpi: distinct_grp
    source: probe
    expression: count_distinct(grp)
  - kpi: avg_y
    source: probe
    expression: avg(y)
""",
}

#: The range the probes run over: both months of the table.
PROBE_RANGE: dict[str, str] = {"start": "2025-01-01", "end": "2025-03-01"}

#: Probe KPIs that use ``round`` / a continuous percentile (refused where a dialect
#: cannot express them, e.g. KPI404 on mysql).
ROUNDING_PROBES = ("round_ties_2", "round_halves", "round_tens")
PERCENTILE_PROBES = ("median_x", "p90_x")


def probe_kpis() -> list[str]:
    """The probe KPIs' names, in file order."""
    text = PROBE_FILES["kpis/probes.yaml"]
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if "- kpi:" in line]


def probe_tables(rows: int = PROBE_ROWS) -> dict[str, Any]:
    """``{"probe": pyarrow.Table}``, deterministic: x with many decimal ties
    (k * 0.005), y null every 7th row, h exact halves (k + 0.5, negative too), started a
    timestamp up to 40 days before ``day``, grp null every 11th row."""
    import pyarrow as pa

    start = dt.date(2025, 1, 1)
    ids = list(range(rows))
    day = [start + dt.timedelta(days=i % 59) for i in ids]
    started = [
        dt.datetime.combine(d, dt.time(hour=(i * 7) % 24, minute=i % 60))
        - dt.timedelta(days=i % 41)
        for i, d in zip(ids, day, strict=True)
    ]
    x = [round((i * 37 % 4001) * 0.005 - 3.0, 3) for i in ids]
    y = [None if i % 7 == 0 else (i * 13 % 997) / 8 - 40 for i in ids]
    h = [(i % 21) - 10 + 0.5 for i in ids]
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "day": pa.array(day, pa.date32()),
            "started": pa.array(started, pa.timestamp("us")),
            "grp": pa.array([f"g{i % 13}" if i % 11 else None for i in ids], pa.string()),
            "x": pa.array(x, pa.float64()),
            "y": pa.array(y, pa.float64()),
            "h": pa.array(h, pa.float64()),
            "n": pa.array([i * 31 % 1000 - 500 for i in ids], pa.int64()),
        }
    )
    return {"probe": table}


def run_probes(
    project: Any, url: str, grain: str, kpis: list[str] | None = None
) -> dict[tuple[Any, ...], Any]:
    """(kpi, period) → value of the probe KPIs (all by default) on the engine at ``url``."""
    import kpiengine

    with kpiengine.connect(url) as connection:
        result = project.run(kpis or list(project.kpis), connection, grain=grain, **PROBE_RANGE)
    return {(row.kpi, row.period): row.value for row in result.rows}
