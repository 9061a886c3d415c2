"""Windows of sums and counts computed from partial aggregates (compile/window_periods.py).

A window whose aggregates are sums, counts, mins and maxes is computed from partials:
per period, as columns of the scan that already reads the table (the *host*), when its
bounds are whole periods of the grain (year/quarter to date, the last N months, ``all``,
at month or quarter grain); else per day, in one pass shared by the windows of the
table (the last 90 days). Each number is checked twice: against an expectation computed
here in pandas from the raw rows, and against the same run with this switched off (one
per-day pass per windowed scan, as before). The data has empty months, null amounts,
null times, a region with rows only before the range (only earlier in the windows) and
one with rows only late, an excluded region (the KPIs' filter), ``--where``, and fiscal
years starting in April.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kpiengine.compile import statement
from kpiengine.compile.window_periods import whole_periods
from kpiengine.plan.windows import window_bounds
from kpiengine.source import Span
from tests.conftest import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require
from tests.series import assert_same, got

FILES = {
    "orders.yaml": """
        source: orders
        table: orders
        time: ordered_at
        columns:
          order_id: integer
          region: string
          status: string
          amount: number
          ordered_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount where status = 'won')
            filter: region != 'internal'
          - kpi: orders
            source: orders
            expression: count()
          - kpi: revenue_ytd
            source: orders
            expression: sum(amount where status = 'won')
            filter: region != 'internal'
            window: {to_date: year}
          - kpi: win_rate_ytd
            source: orders
            expression: count(where status = 'won') / count(where status in ('won', 'lost'))
            filter: region != 'internal'
            window: {to_date: year}
          - kpi: orders_t6m
            source: orders
            expression: count()
            window: {last: 6, unit: month}
          - kpi: amount_max_qtd
            source: orders
            expression: max(amount)
            window: {to_date: quarter}
          - kpi: won_min_t3m
            source: orders
            expression: min(amount where status = 'won')
            filter: region != 'internal'
            window: {last: 3, unit: month}
          - kpi: revenue_90d
            source: orders
            expression: sum(amount where status = 'won')
            filter: region != 'internal'
            window: {last: 90, unit: day}
          - kpi: amounts_all
            source: orders
            expression: count(amount)
            window: all
          - kpi: revenue_yoy
            expression: growth(revenue, 1, year)
          - kpi: revenue_running
            expression: cumulative_sum(revenue)
          - kpi: revenue_ytd_yoy
            expression: growth(revenue_ytd, 1, year)
        """,
}

#: KPI → (window kind, unit, count, aggregate, filtered by region != 'internal')
WINDOWS = {
    "revenue_ytd": ("to_date", "year", None, "won_sum", True),
    "win_rate_ytd": ("to_date", "year", None, "win_rate", True),
    "orders_t6m": ("last", "month", 6, "count", False),
    "amount_max_qtd": ("to_date", "quarter", None, "max", False),
    "won_min_t3m": ("last", "month", 3, "won_min", True),
    "revenue_90d": ("last", "day", 90, "won_sum", True),
    "amounts_all": ("all", None, None, "count_amount", False),
}
#: the window KPIs alone (passes of their own), with plain KPIs on the same table (hosts),
#: and with a look-back and all history (hosts reading before the range)
SETS = {
    "windows": list(WINDOWS),
    "hosts": [*WINDOWS, "revenue", "orders"],
    "history": [*WINDOWS, "revenue", "orders", "revenue_yoy", "revenue_running"],
}


def _orders() -> list[tuple]:
    """Two years and a quarter of orders: none at all in July 2023 and November 2024,
    apac only before April 2023, latam only from June 2024; every 7th amount and every
    11th time null; an internal region the filters drop."""
    rng = np.random.default_rng(16)
    rows = []
    day = dt.datetime(2023, 1, 1)
    order_id = 0
    while day < dt.datetime(2025, 4, 1):
        empty = (day.year, day.month) in ((2023, 7), (2024, 11))
        for region in ("emea", "amer", "apac", "latam", "internal"):
            if empty or (region == "apac" and day >= dt.datetime(2023, 4, 1)):
                continue
            if region == "latam" and day < dt.datetime(2024, 6, 1):
                continue
            for _ in range(int(rng.integers(0, 2))):
                order_id += 1
                moment = day + dt.timedelta(hours=int(rng.integers(0, 24)))
                rows.append(
                    (
                        order_id,
                        region,
                        ("won", "lost", "open")[int(rng.integers(0, 3))],
                        None if order_id % 7 == 0 else float(rng.integers(1, 90) * 10),
                        None if order_id % 11 == 0 else moment.isoformat(sep=" "),
                    )
                )
        day += dt.timedelta(days=1)
    return rows


ORDERS = _orders()
FRAME = pd.DataFrame(ORDERS, columns=["order_id", "region", "status", "amount", "ordered_at"])


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"window_periods_{request.param}")
    schema = "order_id INTEGER, region VARCHAR, status VARCHAR, amount DOUBLE, ordered_at TIMESTAMP"
    url = engine.load(arrow_tables({"orders": (schema, ORDERS)}), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


# -- independent expectations in pandas ---------------------------------------------------


def _frequency(grain: str, fiscal: int) -> str:
    ends = pd.Timestamp(2000, (fiscal - 2) % 12 + 1, 1).strftime("%b").upper()
    return {"month": "M", "quarter": f"Q-{ends}", "year": f"Y-{ends}"}[grain]


def _value(rows: pd.DataFrame, aggregate: str) -> float | None:
    won = rows[rows["status"] == "won"]
    if aggregate == "count":
        return float(len(rows))
    if aggregate == "count_amount":
        return float(rows["amount"].notna().sum())
    if aggregate == "won_sum":
        return float(won["amount"].sum()) if won["amount"].notna().any() else None
    if aggregate == "won_min":
        return float(won["amount"].min()) if won["amount"].notna().any() else None
    if aggregate == "max":
        return float(rows["amount"].max()) if rows["amount"].notna().any() else None
    closed = rows[rows["status"].isin(["won", "lost"])]
    return len(won) / len(closed) if len(closed) else None  # win_rate


def expected(kpi, grain, fiscal, start, end, by_region, where=None):
    """{(period, region or None): value}: the rows of each output period's window."""
    kind, unit, count, aggregate, filtered = WINDOWS[kpi]
    frame = FRAME.assign(moment=pd.to_datetime(FRAME["ordered_at"]))
    frame = frame[frame["moment"].notna() & (frame["moment"] < pd.Timestamp(end))]
    if filtered:
        frame = frame[frame["region"] != "internal"]
    if where is not None:
        frame = frame[frame["region"] != where]
    frequency = _frequency(grain, fiscal)
    periods = pd.period_range(
        pd.Timestamp(start), pd.Timestamp(end) - pd.Timedelta(days=1), freq=frequency
    )

    def window(rows: pd.DataFrame, period: pd.Period) -> pd.DataFrame:
        hi = (period + 1).start_time
        mask = rows["moment"] < hi
        if kind == "to_date":
            mask &= (
                rows["moment"] >= period.start_time.to_period(_frequency(unit, fiscal)).start_time
            )
        elif kind == "last":
            mask &= rows["moment"] >= hi - pd.DateOffset(**{f"{unit}s": count})
        return rows[mask]

    groups: list[str | None] = [None]
    if by_region:
        groups = sorted({r for p in periods for r in window(frame, p)["region"]})
    result = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        for period in periods:
            result[(period.start_time.date(), group)] = _value(window(rows, period), aggregate)
    return result


# -- the runs ---------------------------------------------------------------------------

CASES = [
    pytest.param("month", 1, "2024-01-01", "2025-01-01", None, id="month"),
    pytest.param("month", 4, "2024-04-01", "2025-04-01", "emea", id="fiscal_month_where"),
    pytest.param("quarter", 4, "2023-10-01", "2025-04-01", None, id="fiscal_quarter"),
]


def _run(project, connection, kpis, grain, start, end, by_region, where, fast=True):
    options = {"by": ["region"] if by_region else []}
    if where is not None:
        options["where"] = f"region != '{where}'"
    if fast:
        return project.run(kpis, connection, grain=grain, start=start, end=end, **options)
    with pytest.MonkeyPatch.context() as patch:  # the per-day path, as before
        patch.setattr(statement, "plan_fast_windows", lambda *args: {})
        return project.run(kpis, connection, grain=grain, start=start, end=end, **options)


@pytest.mark.parametrize(("grain", "fiscal", "start", "end", "where"), CASES)
@pytest.mark.parametrize("chosen", list(SETS))
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_period_windows_match_pandas_and_the_day_path(
    env, grain, fiscal, start, end, where, chosen, by_region
):
    from kpiengine.api import KpiProject

    project, connection = env
    if fiscal != 1:
        project = KpiProject(dataclasses.replace(project.model, fiscal_year_start=fiscal))
    kpis = SETS[chosen]
    fast = _run(project, connection, kpis, grain, start, end, by_region, where)
    slow = _run(project, connection, kpis, grain, start, end, by_region, where, fast=False)
    assert "_p0" in fast.sql and "_p0" not in slow.sql  # partial columns
    for kpi in kpis:
        assert_same(got(fast, kpi), got(slow, kpi), kpi)
        if kpi in WINDOWS:
            wanted = expected(kpi, grain, fiscal, start, end, by_region, where)
            assert_same(got(fast, kpi), wanted, kpi)
    if chosen != "windows":  # partials in the plain KPIs' scans: fewer passes over orders
        assert fast.sql.count("FROM orders AS t") < slow.sql.count("FROM orders AS t")


def test_windowed_look_back(env):
    """A time function over a windowed KPI: the windows of the look-back periods too."""
    project, connection = env
    kpis = ["revenue_ytd_yoy", "revenue_ytd", "revenue"]
    args = ("month", "2024-03-01", "2025-02-01", True, None)
    fast = _run(project, connection, kpis, *args)
    slow = _run(project, connection, kpis, *args, fast=False)
    assert "_p0" in fast.sql
    for kpi in kpis:
        assert_same(got(fast, kpi), got(slow, kpi), kpi)


# -- which bounds are whole periods --------------------------------------------------------


SPAN = Span.point("test", 1, 1)  # no definition file: the window is built here


def _bounds_whole(project, window: dict, grain: str, start: str, end: str) -> bool:
    from kpiengine.loader.model import Window
    from kpiengine.plan.planner import RunRequest, build_plan

    plan = build_plan(
        project.model,
        RunRequest(("orders",), grain, dt.date.fromisoformat(start), dt.date.fromisoformat(end)),
    )
    kind = next(iter(window))
    if kind == "last":
        shape = Window("last", SPAN, unit=window["unit"], count=window["last"])
    else:
        shape = Window(kind, SPAN, unit=window[kind])
    bounds = window_bounds(shape, plan.periods or [], grain, plan.project)
    return whole_periods(plan, bounds)


@pytest.mark.parametrize(
    ("window", "grain", "whole"),
    [
        ({"to_date": "year"}, "month", True),
        ({"to_date": "quarter"}, "month", True),
        ({"last": 6, "unit": "month"}, "month", True),
        ({"last": 2, "unit": "quarter"}, "month", True),
        ({"last": 90, "unit": "day"}, "month", False),
        ({"last": 4, "unit": "week"}, "month", False),
        ({"to_date": "month"}, "week", False),
        ({"to_date": "year"}, "week", False),
        ({"last": 14, "unit": "day"}, "week", True),
        ({"last": 3, "unit": "month"}, "quarter", True),
        ({"last": 2, "unit": "month"}, "quarter", False),
        ({"last": 90, "unit": "day"}, "day", True),
        ({"all": None}, "month", True),
    ],
)
def test_whole_periods(tmp_path, window, grain, whole):
    import kpiengine

    project = kpiengine.load(write_files(tmp_path / "defs", FILES))
    assert _bounds_whole(project, window, grain, "2025-01-01", "2026-01-01") is whole


@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_retail_calendar_hosts_match_the_day_path(env, grain):
    """A retail (4-5-4) calendar: its months and quarters are a CASE over the spine, so
    partials per period are used only when each ``lo`` is on the spine."""
    from kpiengine.api import KpiProject
    from kpiengine.loader.model import RetailCalendar

    project, connection = env
    project = KpiProject(dataclasses.replace(project.model, retail_calendar=RetailCalendar()))
    kpis = SETS["history"]
    args = (grain, "2024-02-04", "2025-02-02", True, None)  # retail fiscal 2024
    fast = _run(project, connection, kpis, *args)
    slow = _run(project, connection, kpis, *args, fast=False)
    assert "_p0" in fast.sql
    for kpi in kpis:
        assert_same(got(fast, kpi), got(slow, kpi), kpi)
