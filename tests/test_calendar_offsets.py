"""Calendar offsets ``previous(k, n, G)`` / ``growth(k, n, G)`` (SPEC §13.2) against pandas.

The expectations are computed here with pandas' own calendar (``Period`` buckets,
``DateOffset`` shifts, which clamp to a month's last day), not with kpiengine's period
code: k in the period of the run's grain that holds "this period's start − n·G". Month,
quarter, fiscal quarter (``fiscal_year_start: 4``), week and day grains, with and without
a dimension, over a range that starts mid-history (the look-back reads before ``from``),
on every engine of tests/engines.py (PostgreSQL and Spark are marked slow).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest

from kpiengine.errors import DefinitionError, UsageError
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
          amount: number
          ordered_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount)
          - kpi: orders
            source: orders
            expression: count()
          - kpi: revenue_last_year
            expression: previous(revenue, 1, year)
          - kpi: revenue_yoy
            expression: growth(revenue, 1, year)
          - kpi: revenue_two_years_ago
            expression: previous(revenue, 2, year)
          - kpi: revenue_last_quarter
            expression: previous(revenue, 1, quarter)
          - kpi: revenue_mom
            expression: growth(revenue, 1, month)
          - kpi: revenue_three_months_ago
            expression: previous(revenue, 3, month)
          - kpi: revenue_last_week
            expression: previous(revenue, 1, week)
          - kpi: revenue_ten_days_ago
            expression: previous(revenue, 10, day)
          - kpi: orders_last_year
            expression: previous(orders, 1, year)
          - kpi: last_year_growth
            expression: growth(revenue_last_year)
          - kpi: yoy_of_last_year
            expression: growth(previous(revenue, 1, year), 1, year)
          - kpi: rolling_yoy
            expression: growth(rolling_sum(revenue, 3), 1, year)
        """,
}
#: KPI → (function, n, unit, what it reads); "rolling3" is the 3-period rolling sum
OFFSETS = {
    "revenue_last_year": ("previous", 1, "year", "revenue"),
    "revenue_yoy": ("growth", 1, "year", "revenue"),
    "revenue_two_years_ago": ("previous", 2, "year", "revenue"),
    "revenue_last_quarter": ("previous", 1, "quarter", "revenue"),
    "revenue_mom": ("growth", 1, "month", "revenue"),
    "revenue_three_months_ago": ("previous", 3, "month", "revenue"),
    "revenue_last_week": ("previous", 1, "week", "revenue"),
    "revenue_ten_days_ago": ("previous", 10, "day", "revenue"),
    "orders_last_year": ("previous", 1, "year", "orders"),
    "rolling_yoy": ("growth", 1, "year", "rolling3"),
}
NESTED = ("last_year_growth", "yoy_of_last_year")
UNITS = ("day", "week", "month", "quarter", "year")
REGIONS = ("emea", "apac", "latam")


def _orders() -> pd.DataFrame:
    """Four years of orders, about one a day per region; latam has none in some months
    (empty periods), and the days around 29 February and month ends are all covered."""
    rng = np.random.default_rng(13)
    rows = []
    day = dt.datetime(2021, 1, 1)
    order_id = 0
    while day < dt.datetime(2025, 3, 1):
        for region in REGIONS:
            if region == "latam" and day.month in (2, 6, 11):
                continue
            for _ in range(int(rng.integers(0, 3))):
                order_id += 1
                moment = day + dt.timedelta(hours=int(rng.integers(0, 24)))
                rows.append(
                    (order_id, region, float(rng.integers(1, 500)), moment.isoformat(sep=" "))
                )
        day += dt.timedelta(days=1)
    return pd.DataFrame(rows, columns=["order_id", "region", "amount", "ordered_at"])


ORDERS = _orders()


def _tables() -> dict[str, tuple[str, list[tuple]]]:
    return {
        "orders": (
            "order_id INTEGER, region VARCHAR, amount DOUBLE, ordered_at TIMESTAMP",
            list(ORDERS.itertuples(index=False, name=None)),
        )
    }


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"offsets_{request.param}")
    url = engine.load(arrow_tables(_tables()), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


# -- independent expectations in pandas ---------------------------------------------------


def _frequency(grain: str, fiscal: int) -> str:
    if grain == "quarter":  # a fiscal year starting in April ends in March: Q-MAR
        return "Q-" + pd.Timestamp(2000, (fiscal - 2) % 12 + 1, 1).strftime("%b").upper()
    return {"day": "D", "week": "W-SUN", "month": "M", "year": "Y"}[grain]


def _bucket(moment: pd.Timestamp, grain: str, fiscal: int) -> pd.Timestamp:
    return moment.to_period(_frequency(grain, fiscal)).start_time


def _shift(n: int, unit: str) -> pd.DateOffset:
    return {
        "day": pd.DateOffset(days=n),
        "week": pd.DateOffset(weeks=n),
        "month": pd.DateOffset(months=n),
        "quarter": pd.DateOffset(months=3 * n),
        "year": pd.DateOffset(years=n),
    }[unit]


def expected(
    kpi: str, grain: str, start: str, end: str, by_region: bool, fiscal: int = 1
) -> dict[tuple[dt.date, str | None], float | None]:
    """{(period, region or None): value}, from the raw rows; ``start`` is a period start."""
    frequency = _frequency(grain, fiscal)
    frame = ORDERS.assign(moment=pd.to_datetime(ORDERS["ordered_at"]))
    frame = frame[frame["moment"] < pd.Timestamp(end)]
    frame = frame.assign(period=frame["moment"].dt.to_period(frequency).dt.start_time)
    in_range = frame[frame["moment"] >= pd.Timestamp(start)]
    groups = sorted(in_range["region"].unique()) if by_region else [None]
    last = pd.Timestamp(end) - pd.Timedelta(days=1)
    outputs = pd.period_range(pd.Timestamp(start), last, freq=frequency).start_time
    step = pd.Timedelta(days=1)  # the period before p holds p − 1 day
    result = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        revenue = rows.groupby("period")["amount"].sum().to_dict()
        orders = rows.groupby("period")["amount"].size().to_dict()

        def value(
            series: str, period: pd.Timestamp, revenue: dict = revenue, orders: dict = orders
        ) -> float | None:
            if series == "revenue":
                return revenue.get(period)
            if series == "orders":
                return float(orders.get(period, 0))
            # rolling3: the last three periods; nulls skipped, null when all null
            values, at = [], period
            for _ in range(3):
                values.append(revenue.get(at))
                at = _bucket(at - step, grain, fiscal)
            present = [v for v in values if v is not None]
            return sum(present) if present else None

        def before(period: pd.Timestamp, n: int, unit: str) -> pd.Timestamp:
            return _bucket(period - _shift(n, unit), grain, fiscal)

        def growth(now: float | None, base: float | None) -> float | None:
            if now is None or base is None or base == 0:
                return None
            return (now - base) / base

        for period in outputs:
            if kpi in OFFSETS:
                function, n, unit, series = OFFSETS[kpi]
                base = value(series, before(period, n, unit))
                now = value(series, period)
                found = base if function == "previous" else growth(now, base)
            elif kpi == "last_year_growth":  # growth(previous(revenue, 1, year)), one period
                last_period = _bucket(period - step, grain, fiscal)
                found = growth(
                    value("revenue", before(period, 1, "year")),
                    value("revenue", before(last_period, 1, "year")),
                )
            else:  # yoy_of_last_year: growth(previous(revenue, 1, year), 1, year)
                found = growth(
                    value("revenue", before(period, 1, "year")),
                    value("revenue", before(before(period, 1, "year"), 1, "year")),
                )
            result[(period.date(), group)] = found
    return result


def allowed(grain: str) -> list[str]:
    """The KPIs whose unit is not finer than ``grain`` (the others are a check error)."""
    rank = UNITS.index(grain)
    return [k for k, (_, _, unit, _) in OFFSETS.items() if UNITS.index(unit) >= rank] + list(NESTED)


# (grain, fiscal_year_start, from, to): every range starts mid-history, on a period start
CASES = [
    pytest.param("month", 1, "2023-07-01", "2024-11-01", id="month"),
    pytest.param("quarter", 1, "2023-04-01", "2025-01-01", id="quarter"),
    pytest.param("quarter", 4, "2023-10-01", "2025-01-01", id="fiscal_quarter"),
    pytest.param("week", 1, "2024-01-01", "2024-07-01", id="week"),
    pytest.param("day", 1, "2024-02-20", "2024-04-05", id="day"),
]


@pytest.mark.parametrize(("grain", "fiscal", "start", "end"), CASES)
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_calendar_offsets_match_pandas(env, grain, fiscal, start, end, by_region):
    from kpiengine.api import KpiProject

    project, connection = env
    if fiscal != 1:
        project = KpiProject(dataclasses.replace(project.model, fiscal_year_start=fiscal))
    kpis = allowed(grain)
    result = project.run(
        kpis, connection, grain=grain, start=start, end=end, by=["region"] if by_region else []
    )
    for kpi in kpis:
        assert_same(got(result, kpi), expected(kpi, grain, start, end, by_region, fiscal), kpi)


def test_same_month_last_year_is_twelve_months_back(env):
    """At month grain `previous(k, 1, year)` is `previous(k, 12)`, value for value."""
    project, connection = env
    result = project.run(
        ["revenue_last_year", "revenue"],
        connection,
        grain="month",
        start="2022-01-01",
        end="2025-01-01",
        by=["region"],
    )
    revenue = got(result, "revenue")
    for (period, region), value in got(result, "revenue_last_year").items():
        year_ago = (period.replace(year=period.year - 1), region)
        assert value == revenue.get(year_ago, None if period.year > 2022 else value)


# -- the statement ------------------------------------------------------------------------


def _project(tmp_path, extra: str = ""):
    import kpiengine

    files = dict(FILES)
    files["kpis.yaml"] = FILES["kpis.yaml"] + extra
    return kpiengine.load(write_files(tmp_path / "defs", files))


def test_fixed_offsets_compile_to_one_lag(tmp_path):
    """A year at month grain is 12 rows, at quarter grain 4, and the week holding
    (week start − 1 year) is always 53 weeks back: s − 365 or s − 366 days falls before
    the same weekday 52 weeks back."""
    project = _project(tmp_path)
    for grain, rows in (("month", 12), ("quarter", 4), ("year", 1), ("week", 53)):
        sql = project.compile(
            ["revenue_last_year"], grain=grain, start="2024-01-01", end="2025-01-01"
        )
        assert f"LAG(l0.k0, {rows})" in sql, grain
        assert "CASE" not in sql


def test_varying_offsets_pick_a_lag_per_run_of_periods(tmp_path):
    """A month before a day is 28 to 31 days back: one LAG per run of days sharing it."""
    project = _project(tmp_path)
    sql = project.compile(
        ["revenue_three_months_ago"], grain="day", start="2024-03-01", end="2024-06-01"
    )
    # 1 March − 3 months = 1 December: 91 days; 1 May → 1 February (leap year): 90;
    # 31 May → 29 February, clamped: 92
    assert "CASE" in sql
    assert {"LAG(l0.k0, 90)", "LAG(l0.k0, 91)", "LAG(l0.k0, 92)"} <= set(
        re.findall(r"LAG\(l0\.k0, \d+\)", sql)
    )


def test_golden_forms_keep_their_statement(tmp_path):
    """`previous(k, n)` and `previous(k, n, <the grain>)` compile to the same statement."""
    extra = """
          - kpi: by_period
            expression: previous(revenue, 3)
          - kpi: by_unit
            expression: previous(revenue, 3, month)
        """
    project = _project(tmp_path, extra)
    one = project.compile(["by_period"], grain="month", start="2024-01-01", end="2025-01-01")
    two = project.compile(["by_unit"], grain="month", start="2024-01-01", end="2025-01-01")
    assert one == two


def test_look_back_reads_only_what_the_offset_needs(tmp_path):
    """At month grain a year back reads 12 months before `from`; at week grain at most
    53 weeks (the bound for a year: (366 + 6) // 7)."""
    project = _project(tmp_path)
    plan = project.plan(["revenue_last_year"], grain="month", start="2024-03-01", end="2024-06-01")
    assert plan.lookback == 12 and plan.periods[0] == dt.date(2023, 3, 1)
    plan = project.plan(["revenue_last_year"], grain="week", start="2024-01-01", end="2024-02-01")
    assert plan.lookback == 53 and plan.periods[0] == dt.date(2022, 12, 26)
    plan = project.plan(["last_year_growth"], grain="week", start="2024-01-01", end="2024-02-01")
    assert plan.lookback == 54


def test_varying_offsets_need_a_range_to_compile(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(UsageError, match="needs the range"):
        project.compile(["revenue_mom"], grain="week")


# -- bad inputs -----------------------------------------------------------------------------


def _spanned(root, diagnostic) -> str:
    """The text a diagnostic points at, read back from its file."""
    span = diagnostic.span
    assert span is not None and span.line == span.end_line
    line = (root / span.file).read_text().splitlines()[span.line - 1]
    return line[span.col - 1 : span.end_col - 1]


def test_unit_finer_than_the_grain_is_a_positioned_check_error(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(DefinitionError) as error:
        project.plan(["revenue_last_week"], grain="month", start="2024-01-01", end="2025-01-01")
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.code == "KPI316"
    assert "`week`" in diagnostic.message and "`month`" in diagnostic.message
    assert _spanned(tmp_path / "defs", diagnostic) == "week"
    with pytest.raises(DefinitionError) as error:
        project.plan(["revenue_mom"], grain="quarter", start="2024-01-01", end="2025-01-01")
    assert [d.code for d in error.value.diagnostics] == ["KPI316"]


def test_time_functions_need_a_grain(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(DefinitionError) as error:
        project.plan(["revenue_yoy"], grain="all")
    assert [d.code for d in error.value.diagnostics] == ["KPI312"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("previous(revenue, 1, years)", "did you mean `year`?"),
        ("growth(revenue, 1, fortnight)", "one of day, week, month, quarter, year"),
        ("previous(revenue, 1, 'year')", "not `'year'`"),
        ("previous(revenue, 1, revenue.year)", "not `revenue.year`"),
        ("previous(revenue, 1.5, year)", "whole number of at least 1"),
        ("previous(revenue, 0, year)", "whole number of at least 1"),
        ("growth(revenue, -1, year)", "whole number of at least 1"),
    ],
)
def test_bad_units_and_counts_are_kpi316(tmp_path, expression, message):
    import kpiengine

    files = dict(FILES)
    files["bad.yaml"] = f"kpi: bad\nexpression: {expression}\n"
    with pytest.raises(DefinitionError) as error:
        kpiengine.load(write_files(tmp_path / "defs", files))
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.code == "KPI316"
    assert diagnostic.span is not None and diagnostic.span.line == 2
    assert message in f"{diagnostic.message} {diagnostic.hint}"


def test_too_many_arguments_is_kpi304(tmp_path):
    import kpiengine

    files = dict(FILES)
    files["bad.yaml"] = "kpi: bad\nexpression: previous(revenue, 1, year, 2)\n"
    with pytest.raises(DefinitionError) as error:
        kpiengine.load(write_files(tmp_path / "defs", files))
    assert [d.code for d in error.value.diagnostics] == ["KPI304"]


def test_huge_offsets_are_kpi402_in_periods_of_the_grain(tmp_path):
    """Ten thousand years are 10 000 periods at year grain but 120 000 at month grain:
    over the default cap of 100 000 there, a definition error at the offset."""
    extra = """
          - kpi: ancient
            expression: previous(revenue, 10000, year)
        """
    project = _project(tmp_path, extra)
    with pytest.raises(DefinitionError) as error:
        project.plan(["ancient"], grain="month", start="2024-01-01", end="2025-01-01")
    (diagnostic,) = error.value.diagnostics
    assert diagnostic.code == "KPI402" and "120,000 month periods" in diagnostic.message
    assert _spanned(tmp_path / "defs", diagnostic) == "10000"


def test_offsets_over_the_cap_at_any_grain_fail_validation(tmp_path):
    """`kpi validate` knows no grain: an offset over the cap even at its unit's own grain
    (the fewest periods it can be) is KPI402 there."""
    import kpiengine

    files = dict(FILES)
    files["bad.yaml"] = "kpi: bad\nexpression: growth(revenue, 100000000000000000000, year)\n"
    with pytest.raises(DefinitionError) as error:
        kpiengine.load(write_files(tmp_path / "defs", files))
    assert [d.code for d in error.value.diagnostics] == ["KPI402"]


def test_the_look_back_counts_in_the_period_cap(tmp_path):
    """A year before 10 days at day grain reads 366 more days: 376, over a cap of 370,
    which the offset alone fits."""
    project = _project(tmp_path)
    with pytest.raises(UsageError, match="plus 366 before it"):
        project.plan(
            ["revenue_last_year"],
            grain="day",
            start="2024-03-01",
            end="2024-03-11",
            max_periods=370,
        )
    plan = project.plan(
        ["revenue_last_year"], grain="day", start="2024-03-01", end="2024-03-11", max_periods=400
    )
    assert len(plan.periods) == 376


def test_offsets_before_the_calendar_are_a_usage_error(tmp_path):
    extra = """
          - kpi: ancient
            expression: previous(revenue, 3000, year)
        """
    project = _project(tmp_path, extra)
    with pytest.raises(UsageError, match="outside the dates"):
        project.plan(["ancient"], grain="year", start="2024-01-01", end="2025-01-01")


# -- the calendar arithmetic the look-back relies on ---------------------------------------


@pytest.mark.parametrize("grain", ["day", "week"])
@pytest.mark.parametrize("unit", ["month", "quarter", "year"])
@pytest.mark.parametrize("n", [1, 2, 6])
@pytest.mark.parametrize("week_start", ["monday", "sunday"])
def test_the_look_back_bound_covers_every_date(grain, unit, n, week_start):
    """The look-back is computed before the range is known, as a bound: it must cover
    the true offset of every period (1999 to 2031, leap days and month ends included)."""
    from kpiengine.plan.periods import max_offset_rows, offset_rows, period_start

    bound = max_offset_rows(n, unit, grain)
    seen = set()
    day = dt.date(1999, 1, 1)
    while day < dt.date(2031, 1, 1):
        start = period_start(day, grain, 1, week_start)
        seen.add(offset_rows(start, grain, n, unit, 1, week_start))
        day += dt.timedelta(days=1 if grain == "day" else 7)
    assert max(seen) <= bound
    assert bound - max(seen) <= (3 * n if grain == "day" else 1)  # and it is tight


def test_a_year_before_a_week_is_53_weeks_back():
    """The week holding (week start − 1 year) starts 53 weeks earlier, every week: 365
    and 366 days are one and two days more than 52 weeks (SPEC §13.2, taken literally)."""
    from kpiengine.plan.periods import offset_rows, period_start

    day = dt.date(2000, 1, 3)
    while day < dt.date(2030, 1, 1):
        for week_start in ("monday", "sunday"):
            start = period_start(day, "week", 1, week_start)
            assert offset_rows(start, "week", 1, "year", 1, week_start) == 53
        day += dt.timedelta(days=1)
