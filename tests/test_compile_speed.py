"""The smaller statement of a warm compile (issue 16): same numbers, fewer nodes.

A one-KPI statement no longer repeats its last layer in a final SELECT, reads a single
scan's dimension values without a union, has no count for a visibility flag that is
always 1, and DuckDB's period spine is a series when the periods are a fixed step apart.
Each change is checked on a real engine against numbers computed here with pandas.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import kpiengine
from kpiengine.compile.dialects.duckdb import Rules, series_step
from tests.conftest import OPPORTUNITIES, SALES_FILES, SALES_TABLES, engine_url, write_files

D = dt.date


def _weeks(first: dt.date, count: int, days: int = 7) -> list[dt.date]:
    return [first + dt.timedelta(days=days * i) for i in range(count)]


SPINES = {
    "months": [D(2024, m, 1) for m in range(1, 13)],
    "fiscal quarters": [D(2024, 2, 1), D(2024, 5, 1), D(2024, 8, 1), D(2024, 11, 1)],
    "years across a century": [D(1999, 1, 1), D(2000, 1, 1), D(2001, 1, 1)],
    "sunday weeks": _weeks(D(2023, 12, 31), 10),
    "days over a leap day": _weeks(D(2024, 2, 25), 10, days=1),
    "retail 4-4-5 months": [D(2024, 2, 4), D(2024, 3, 3), D(2024, 3, 31), D(2024, 5, 5)],
    "month ends": [D(2024, 1, 31), D(2024, 2, 29), D(2024, 3, 31)],
    "one period": [D(2024, 3, 1)],
}


def test_series_step_only_for_a_fixed_step() -> None:
    assert series_step(SPINES["months"]) == (1, "MONTH")
    assert series_step(SPINES["fiscal quarters"]) == (3, "MONTH")
    assert series_step(SPINES["years across a century"]) == (12, "MONTH")
    assert series_step(SPINES["sunday weeks"]) == (7, "DAY")
    assert series_step(SPINES["days over a leap day"]) == (1, "DAY")
    assert series_step(SPINES["retail 4-4-5 months"]) is None  # 28, 28, 35 days
    assert series_step(SPINES["month ends"]) is None  # adding a month to the 31st clamps
    assert series_step(SPINES["one period"]) is None
    assert series_step([D(2024, 1, 1), D(2024, 2, 1), D(2024, 4, 1)]) is None


@pytest.mark.parametrize("name", sorted(SPINES))
def test_duckdb_spine_gives_exactly_the_periods(name: str) -> None:
    periods = SPINES[name]
    sql = Rules("duckdb").spine(periods).sql(dialect="duckdb")
    assert ("GENERATE_SERIES" in sql) == (series_step(periods) is not None), sql
    got = [row[0] for row in duckdb.sql(sql).fetchall()]
    assert got == periods


def _expected(start: str, end: str) -> dict[tuple[str, dt.date, Any], Any]:
    """win_rate and external_deals per month and region, with pandas: every region seen in
    range for win_rate (no filter); for external_deals only the regions of its own rows
    (`region != 'internal'`, which drops the null region too); empty months filled."""
    ddl, rows = OPPORTUNITIES
    frame = pd.DataFrame(rows, columns=[part.split()[0] for part in ddl.split(", ")])
    frame["closed_at"] = pd.to_datetime(frame["closed_at"])
    frame = frame[(frame["closed_at"] >= start) & (frame["closed_at"] < end)].copy()
    frame["month"] = frame["closed_at"].dt.to_period("M").dt.start_time.dt.date
    months = [p.start_time.date() for p in pd.period_range(start, end, freq="M")[:-1]]
    external = frame[frame["region"].notna() & (frame["region"] != "internal")]
    found: dict[tuple[str, dt.date, Any], Any] = {}
    for region in frame["region"].drop_duplicates():
        missing = pd.isna(region)
        mine = frame[frame["region"].isna()] if missing else frame[frame["region"] == region]
        for month in months:
            rows_in = mine[mine["month"] == month]
            won = int((rows_in["stage"] == "won").sum())
            closed = int(rows_in["stage"].isin(["won", "lost"]).sum())
            found["win_rate", month, None if missing else region] = won / closed if closed else None
    for region in external["region"].drop_duplicates():
        for month in months:
            found["external_deals", month, region] = int(
                ((external["region"] == region) & (external["month"] == month)).sum()
            )
    return found


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_one_scan_statement_numbers(engine: str, tmp_path: Path) -> None:
    """Two KPIs of one scan by region: one flag always 1 (win_rate has no filter), one
    counted (external_deals' filter); the last layer is the statement itself."""
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    options: dict[str, Any] = {
        "grain": "month",
        "by": ["region"],
        "start": "2024-01-01",
        "end": "2024-06-01",
    }
    sql = project.compile(["win_rate", "external_deals"], **options)
    assert "l0 AS" not in sql and "COUNT(*)" not in sql and "seen" not in sql
    assert "1 AS f0" in sql and "MAX(CASE WHEN s0_m3 > 0 THEN 1 ELSE 0 END) AS f1" in sql
    with kpiengine.connect(engine_url(engine, tmp_path, SALES_TABLES)) as connection:
        result = project.run(["win_rate", "external_deals"], connection, **options)
    got = {(r.kpi, r.period, r.dimensions[0][1]): r.value for r in result.rows}
    expected = _expected("2024-01-01", "2024-06-01")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (None if value is None else pytest.approx(value, rel=1e-12)), key


def test_derived_kpi_last_layer_is_the_statement(tmp_path: Path) -> None:
    """A derived KPI's layer selects every output column: it ends the statement too, and
    its numbers are the inputs' ratio computed here."""
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    options: dict[str, Any] = {"grain": "month", "start": "2024-01-01", "end": "2024-06-01"}
    names = ["revenue", "won_count", "avg_deal"]
    sql = project.compile(names, **options)
    assert "l1 AS" not in sql and "FROM l0" in sql
    with kpiengine.connect(engine_url("duckdb", tmp_path, SALES_TABLES)) as connection:
        result = project.run(names, connection, **options)
    values = {(r.kpi, r.period): r.value for r in result.rows}
    ddl, rows = OPPORTUNITIES
    frame = pd.DataFrame(rows, columns=[part.split()[0] for part in ddl.split(", ")])
    frame["closed_at"] = pd.to_datetime(frame["closed_at"])
    won = frame[frame["stage"] == "won"]
    for month in pd.period_range("2024-01", "2024-05", freq="M"):
        in_month = won[won["closed_at"].dt.to_period("M") == month]
        revenue = in_month["amount"].sum(min_count=1)
        count = len(in_month)
        expected = None if count == 0 or pd.isna(revenue) else revenue / count
        got = values["avg_deal", month.start_time.date()]
        assert got == (None if expected is None else pytest.approx(expected, rel=1e-12))
