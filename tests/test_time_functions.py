"""Time functions and semi-additive KPIs against independent pandas computations.

The expectations are computed here in pandas from the raw rows (complete period grid,
shifts, rolling windows, running totals, streaks), not from the product's SQL, and
checked on DuckDB and SQLite: month and fiscal-quarter grains, with and without a
dimension, a range that starts mid-history, a region with empty periods, and a zero base.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from kpiengine.errors import DefinitionError
from kpiengine.plan.periods import period_start
from tests.conftest import ENGINES, engine_url, write_files

FILES = {
    "sources.yaml": """
        source: orders
        table: orders
        time: ordered_at
        columns:
          order_id: integer
          region: string
          amount: number
          ordered_at: timestamp
        """,
    "snapshots.yaml": """
        source: balances
        table: balances
        time: snapshot_date
        columns:
          account: string
          region: string
          mrr: number
          snapshot_date: date
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount)
          - kpi: orders
            source: orders
            expression: count()
          - kpi: previous_revenue
            expression: previous(revenue)
          - kpi: revenue_year_ago
            expression: previous(revenue, 12)
          - kpi: revenue_growth
            expression: growth(revenue)
          - kpi: revenue_rolling
            expression: rolling_sum(revenue, 3)
          - kpi: orders_rolling_avg
            expression: rolling_avg(orders, 3)
          - kpi: revenue_cumulative
            expression: cumulative_sum(revenue)
          - kpi: busy_streak
            expression: streak(orders >= 2)
          - kpi: rolling_growth
            expression: growth(rolling_sum(revenue, 3))
          - kpi: mrr
            source: balances
            expression: sum(mrr)
            semi_additive: last
          - kpi: opening_mrr
            source: balances
            expression: sum(mrr)
            semi_additive: first
          - kpi: big_accounts
            source: balances
            expression: count()
            filter: mrr >= 100
            semi_additive: last
        """,
}
REGIONS = ["emea", "apac", "latam"]


def _orders() -> pd.DataFrame:
    """Two years of orders; latam has no orders in several months, one month is zero."""
    rng = np.random.default_rng(7)
    rows = []
    day = dt.datetime(2023, 1, 1)
    order_id = 0
    while day < dt.datetime(2025, 1, 1):
        for region in REGIONS:
            if region == "latam" and day.month in (2, 3, 7, 11):
                continue  # empty periods for one dimension value
            for _ in range(int(rng.integers(0, 3))):
                order_id += 1
                moment = day + dt.timedelta(
                    days=int(rng.integers(0, 28)), hours=int(rng.integers(0, 24))
                )
                amount = (
                    0.0 if (region == "apac" and day.month == 5) else float(rng.integers(1, 500))
                )
                rows.append((order_id, region, amount, moment.strftime("%Y-%m-%d %H:%M:%S")))
        day = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return pd.DataFrame(rows, columns=["order_id", "region", "amount", "ordered_at"])


def _balances() -> pd.DataFrame:
    """Monthly snapshots; account c3 is missing from the last snapshot of some quarters."""
    rows = []
    for month in range(1, 13):
        for account, region, base in (("c1", "emea", 100), ("c2", "emea", 50), ("c3", "apac", 200)):
            if account == "c3" and month in (3, 9):
                continue
            rows.append((account, region, float(base + month), f"2024-{month:02d}-01"))
    rows.append(("c1", "emea", 999.0, "2024-06-15"))  # a mid-month snapshot: latest in June
    return pd.DataFrame(rows, columns=["account", "region", "mrr", "snapshot_date"])


ORDERS = _orders()
BALANCES = _balances()


def _tables():
    return {
        "orders": (
            "order_id INTEGER, region VARCHAR, amount DOUBLE, ordered_at TIMESTAMP",
            list(ORDERS.itertuples(index=False, name=None)),
        ),
        "balances": (
            "account VARCHAR, region VARCHAR, mrr DOUBLE, snapshot_date DATE",
            list(BALANCES.itertuples(index=False, name=None)),
        ),
    }


@pytest.fixture(scope="module", params=sorted(ENGINES))
def env(request, tmp_path_factory):
    import kpiengine

    folder = tmp_path_factory.mktemp(request.param)
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(engine_url(request.param, folder, _tables()))
    yield project, connection
    connection.close()


# -- independent expectations in pandas ---------------------------------------------------


def _periods(start: dt.date, end: dt.date, grain: str, fiscal: int) -> list[dt.date]:
    out, day = [], period_start(start, grain, fiscal)
    while day < end:
        out.append(day)
        months = 1 if grain == "month" else 3
        index = day.year * 12 + day.month - 1 + months
        day = dt.date(index // 12, index % 12 + 1, 1)
    return out


def expected(kpi: str, grain: str, start: str, end: str, by_region: bool, fiscal: int = 1):
    """{(period, region or None): value} for a time KPI, computed in pandas."""
    start_d, end_d = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    frame = ORDERS.copy()
    frame["day"] = pd.to_datetime(frame["ordered_at"]).dt.date
    frame["period"] = [period_start(d, grain, fiscal) for d in frame["day"]]
    history = _periods(min(frame["day"]), end_d, grain, fiscal)  # complete grid from the data
    in_range = frame[(frame["day"] >= start_d) & (frame["day"] < end_d)]
    groups = sorted(in_range["region"].unique()) if by_region else [None]
    result = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        rows = rows[rows["day"] < end_d]
        revenue = rows.groupby("period")["amount"].sum().reindex(history)  # NaN when empty
        orders = rows.groupby("period")["amount"].size().reindex(history).fillna(0)
        series = {
            "previous_revenue": revenue.shift(1),
            "revenue_year_ago": revenue.shift(12),
            "revenue_growth": _growth(revenue),
            "revenue_rolling": revenue.rolling(3, min_periods=1).sum(),
            "orders_rolling_avg": orders.rolling(3, min_periods=1).mean(),
            "revenue_cumulative": revenue.fillna(0).cumsum().where(revenue.notna().cumsum() > 0),
            "busy_streak": _streak(orders >= 2),
            "rolling_growth": _growth(revenue.rolling(3, min_periods=1).sum()),
        }[kpi]
        for period, value in series.items():
            if period >= period_start(start_d, grain, fiscal):
                result[(period, group)] = None if pd.isna(value) else float(value)
    return result


def _growth(series: pd.Series) -> pd.Series:
    before = series.shift(1)
    return ((series - before) / before).where(before != 0)  # growth from 0 is null


def _streak(condition: pd.Series) -> pd.Series:
    out, run = [], 0
    for holds in condition:
        run = run + 1 if holds else 0
        out.append(run)
    return pd.Series(out, index=condition.index)


def got(result, kpi: str):
    return {
        (row.period, dict(row.dimensions).get("region")): row.value
        for row in result.rows
        if row.kpi == kpi
    }


def assert_same(actual: dict, wanted: dict) -> None:
    assert actual.keys() == wanted.keys()
    for key, value in wanted.items():
        if value is None:
            assert actual[key] is None, key
        else:
            assert actual[key] is not None and math.isclose(actual[key], value, rel_tol=1e-9), (
                key,
                actual[key],
                value,
            )


TIME_KPIS = [
    "previous_revenue",
    "revenue_year_ago",
    "revenue_growth",
    "revenue_rolling",
    "orders_rolling_avg",
    "revenue_cumulative",
    "busy_streak",
    "rolling_growth",
]


@pytest.mark.parametrize("kpi", TIME_KPIS)
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_month_grain_mid_history(env, kpi, by_region):
    project, connection = env
    result = project.run(
        [kpi],
        connection,
        grain="month",
        start="2024-03-01",
        end="2024-11-01",
        by=["region"] if by_region else [],
    )
    assert_same(got(result, kpi), expected(kpi, "month", "2024-03-01", "2024-11-01", by_region))


@pytest.mark.parametrize("kpi", TIME_KPIS)
def test_fiscal_quarters_by_region(env, kpi):
    import dataclasses

    from kpiengine.api import KpiProject

    project, connection = env
    fiscal = KpiProject(dataclasses.replace(project.model, fiscal_year_start=2))
    result = fiscal.run(
        [kpi], connection, grain="quarter", start="2024-02-01", end="2025-01-01", by=["region"]
    )
    assert_same(
        got(result, kpi), expected(kpi, "quarter", "2024-02-01", "2025-01-01", True, fiscal=2)
    )


def test_first_period_has_its_true_previous_value(env):
    project, connection = env
    result = project.run(
        ["revenue", "previous_revenue"],
        connection,
        grain="month",
        start="2024-01-01",
        end="2024-02-01",
    )
    january_2023_to_dec = ORDERS[ORDERS["ordered_at"].str.startswith("2023-12")]["amount"].sum()
    assert got(result, "previous_revenue") == {(dt.date(2024, 1, 1), None): january_2023_to_dec}


def test_zero_base_growth_is_null(env):
    project, connection = env
    result = project.run(
        ["revenue_growth"],
        connection,
        grain="month",
        start="2024-06-01",
        end="2024-07-01",
        by=["region"],
    )
    # apac's May revenue is 0: June's growth against it is null, not infinity
    assert got(result, "revenue_growth")[(dt.date(2024, 6, 1), "apac")] is None


def test_time_functions_need_a_grain(env):
    project, connection = env
    with pytest.raises(DefinitionError) as error:
        project.run(["revenue_growth"], connection, grain="all")
    assert error.value.diagnostics[0].code == "KPI312"


def test_cumulative_without_range_starts_at_the_data(env):
    project, connection = env
    result = project.run(["revenue_cumulative"], connection, grain="year")
    total_2023 = ORDERS[ORDERS["ordered_at"].str.startswith("2023")]["amount"].sum()
    values = got(result, "revenue_cumulative")
    assert values[(dt.date(2023, 1, 1), None)] == pytest.approx(total_2023, rel=1e-12)
    assert values[(dt.date(2024, 1, 1), None)] == pytest.approx(ORDERS["amount"].sum(), rel=1e-12)


# -- semi-additive -------------------------------------------------------------------------


def _snapshot_expected(
    kind: str, grain: str, by_region: bool, filter_min: float | None = None, count: bool = False
):
    frame = BALANCES.copy()
    if filter_min is not None:
        frame = frame[frame["mrr"] >= filter_min]
    frame["day"] = [dt.date.fromisoformat(d) for d in frame["snapshot_date"]]
    frame["period"] = [period_start(d, grain) for d in frame["day"]]
    pick = "max" if kind == "last" else "min"
    edges = frame.groupby("period")["day"].agg(pick)
    at_edge = frame[frame["day"] == frame["period"].map(edges)]
    keys = ["period", "region"] if by_region else ["period"]
    grouped = at_edge.groupby(keys)["mrr"].agg("size" if count else "sum")
    out = {}
    for key, value in grouped.items():
        period, region = key if by_region else (key, None)
        out[(period, region)] = float(value)
    return out


@pytest.mark.parametrize("grain", ["month", "quarter", "year"])
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_semi_additive_last_and_first(env, grain, by_region):
    project, connection = env
    result = project.run(
        ["mrr", "opening_mrr", "big_accounts"],
        connection,
        grain=grain,
        start="2024-01-01",
        end="2025-01-01",
        by=["region"] if by_region else [],
    )
    for kpi, kind, options in (
        ("mrr", "last", {}),
        ("opening_mrr", "first", {}),
        ("big_accounts", "last", {"filter_min": 100, "count": True}),
    ):
        wanted = _snapshot_expected(kind, grain, by_region, **options)
        actual = {k: v for k, v in got(result, kpi).items() if v not in (None, 0)}
        assert_same(actual, wanted)


def test_semi_additive_quarter_example(env):
    """Q1 2024: the last snapshot is 1 March, where c3 is absent: it contributes nothing."""
    project, connection = env
    result = project.run(
        ["mrr"], connection, grain="quarter", start="2024-01-01", end="2024-04-01", by=["region"]
    )
    assert got(result, "mrr") == {
        (dt.date(2024, 1, 1), "emea"): 103.0 + 53.0,
        (dt.date(2024, 1, 1), "apac"): None,
    }
