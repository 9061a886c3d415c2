"""Windows over rows (``window:`` on a source KPI, SPEC §13.1) against pandas.

For each output period P = [start, end) the expectation is computed here from the raw
rows: the rows whose time is in ``[lo, end)`` (``to_date: G``: lo is the start of the G
period holding P's start, with pandas' own fiscal periods; ``last: N, unit: U``: lo is
end − N·U with pandas' DateOffset; ``all``: no lo), never past the range's ``to``, and
the aggregate over those rows — distinct counts, medians and ratios included, never a sum
of period values. Month, quarter, fiscal quarter, week and day grains, with and without a
dimension, over ranges that start mid-history, on every engine of tests/engines.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

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
          account_id: integer
          region: string
          status: string
          amount: number
          ordered_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: bookings_ytd
            source: orders
            expression: sum(amount where status = 'won')
            window: {to_date: year}
          - kpi: bookings_qtd
            source: orders
            expression: sum(amount where status = 'won')
            window: {to_date: quarter}
          - kpi: bookings_mtd
            source: orders
            expression: sum(amount where status = 'won')
            window: {to_date: month}
          - kpi: orders_ytd
            source: orders
            expression: count()
            window: {to_date: year}
          - kpi: win_rate_ytd
            source: orders
            expression: count(where status = 'won') / count(where status in ('won', 'lost'))
            window: {to_date: year}
          - kpi: active_accounts_90d
            source: orders
            expression: count_distinct(account_id)
            window: {last: 90, unit: day}
          - kpi: median_amount_90d
            source: orders
            expression: median(amount)
            window: {last: 90, unit: day}
          - kpi: revenue_t12m
            source: orders
            expression: sum(amount)
            window: {last: 12, unit: month}
          - kpi: revenue_to_date
            source: orders
            expression: sum(amount)
            window: all
          - kpi: bookings_ytd_yoy
            expression: growth(bookings_ytd, 1, year)
        """,
}
REGIONS = ("emea", "apac", "latam")
#: KPI → (window kind, unit, count, aggregate name)
WINDOWS = {
    "bookings_ytd": ("to_date", "year", None, "won_sum"),
    "bookings_qtd": ("to_date", "quarter", None, "won_sum"),
    "bookings_mtd": ("to_date", "month", None, "won_sum"),
    "orders_ytd": ("to_date", "year", None, "count"),
    "win_rate_ytd": ("to_date", "year", None, "win_rate"),
    "active_accounts_90d": ("last", "day", 90, "distinct_accounts"),
    "median_amount_90d": ("last", "day", 90, "median"),
    "revenue_t12m": ("last", "month", 12, "sum"),
    "revenue_to_date": ("all", None, None, "sum"),
}
UNITS = ("day", "week", "month", "quarter", "year")


def _orders() -> pd.DataFrame:
    """Three years of orders; latam has none in some months (empty periods, and empty
    90-day windows in 2023), amounts and accounts repeat (distinct counts, medians)."""
    rng = np.random.default_rng(7)
    rows = []
    day = dt.datetime(2022, 1, 1)
    order_id = 0
    while day < dt.datetime(2025, 2, 1):
        for region in REGIONS:
            if region == "latam" and (
                day.month in (2, 7) or dt.datetime(2023, 3, 1) <= day < dt.datetime(2023, 8, 1)
            ):
                continue
            for _ in range(int(rng.integers(0, 2))):
                order_id += 1
                moment = day + dt.timedelta(hours=int(rng.integers(0, 24)))
                status = ("won", "lost", "open")[int(rng.integers(0, 3))]
                rows.append(
                    (
                        order_id,
                        int(rng.integers(1, 40)),
                        region,
                        status,
                        float(rng.integers(1, 50) * 10),
                        moment.isoformat(sep=" "),
                    )
                )
        day += dt.timedelta(days=1)
    return pd.DataFrame(
        rows, columns=["order_id", "account_id", "region", "status", "amount", "ordered_at"]
    )


ORDERS = _orders()


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"windows_{request.param}")
    schema = (
        "order_id INTEGER, account_id INTEGER, region VARCHAR, status VARCHAR, "
        "amount DOUBLE, ordered_at TIMESTAMP"
    )
    tables = {"orders": (schema, list(ORDERS.itertuples(index=False, name=None)))}
    url = engine.load(arrow_tables(tables), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


# -- independent expectations in pandas ---------------------------------------------------


def _frequency(grain: str, fiscal: int) -> str:
    ends = pd.Timestamp(2000, (fiscal - 2) % 12 + 1, 1).strftime("%b").upper()
    return {
        "day": "D",
        "week": "W-SUN",
        "month": "M",
        "quarter": f"Q-{ends}",
        "year": f"Y-{ends}",
    }[grain]


def _start_of(moment: pd.Timestamp, grain: str, fiscal: int) -> pd.Timestamp:
    return moment.to_period(_frequency(grain, fiscal)).start_time


def _aggregate(rows: pd.DataFrame, name: str) -> float | None:
    if name == "count":
        return float(len(rows))
    if name == "distinct_accounts":
        return float(rows["account_id"].nunique())
    if rows.empty:
        return None
    if name == "sum":
        return float(rows["amount"].sum())
    if name == "median":
        return float(rows["amount"].median())
    won = rows[rows["status"] == "won"]
    if name == "won_sum":
        return float(won["amount"].sum()) if len(won) else None
    closed = rows[rows["status"].isin(["won", "lost"])]
    return len(won) / len(closed) if len(closed) else None  # win_rate


def _window_rows(frame: pd.DataFrame, kpi: str, period, grain, fiscal, end) -> pd.DataFrame:
    kind, unit, count, _ = WINDOWS[kpi]
    hi = min((period.to_period(_frequency(grain, fiscal)) + 1).start_time, pd.Timestamp(end))
    period_end = (period.to_period(_frequency(grain, fiscal)) + 1).start_time
    mask = frame["moment"] < hi
    if kind == "to_date":
        mask &= frame["moment"] >= _start_of(period, unit, fiscal)
    elif kind == "last":
        offset = {"day": pd.DateOffset(days=count), "month": pd.DateOffset(months=count)}[unit]
        mask &= frame["moment"] >= period_end - offset
    return frame[mask]


def expected(kpi, grain, start, end, by_region, fiscal=1):
    """{(period, region or None): value}; ``start`` is a period start."""
    frame = ORDERS.assign(moment=pd.to_datetime(ORDERS["ordered_at"]))
    frequency = _frequency(grain, fiscal)
    last = pd.Timestamp(end) - pd.Timedelta(days=1)
    outputs = pd.period_range(pd.Timestamp(start), last, freq=frequency).start_time
    if kpi == "bookings_ytd_yoy":
        now = expected("bookings_ytd", grain, start, end, by_region, fiscal)
        year_ago = {}
        for period in outputs:
            before = _start_of(period - pd.DateOffset(years=1), grain, fiscal)
            for region in {r for (_, r) in now}:
                rows = frame if region is None else frame[frame["region"] == region]
                year_ago[(period.date(), region)] = _aggregate(
                    _window_rows(rows, "bookings_ytd", before, grain, fiscal, end), "won_sum"
                )
        return {
            key: None
            if value is None or not year_ago[key]
            else (value - year_ago[key]) / year_ago[key]
            for key, value in now.items()
        }
    groups: list[str | None] = [None]
    if by_region:  # the values any output period's window reads
        seen: set[str] = set()
        for period in outputs:
            seen |= set(_window_rows(frame, kpi, period, grain, fiscal, end)["region"])
        groups = sorted(seen)
    result = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        for period in outputs:
            window = _window_rows(rows, kpi, period, grain, fiscal, end)
            result[(period.date(), group)] = _aggregate(window, WINDOWS[kpi][3])
    return result


def allowed(grain: str) -> list[str]:
    """The KPIs whose ``to_date`` unit is not finer than ``grain`` (else KPI321)."""
    rank = UNITS.index(grain)
    return [
        kpi
        for kpi, (kind, unit, _, _) in WINDOWS.items()
        if kind != "to_date" or UNITS.index(unit) >= rank
    ] + ["bookings_ytd_yoy"]


# (grain, fiscal_year_start, from, to): every range starts mid-history, on a period start
CASES = [
    pytest.param("month", 1, "2023-05-01", "2024-11-01", id="month"),
    pytest.param("quarter", 1, "2023-04-01", "2025-01-01", id="quarter"),
    pytest.param("quarter", 4, "2023-10-01", "2025-01-01", id="fiscal_quarter"),
    pytest.param("week", 1, "2024-01-01", "2024-04-01", id="week"),
    pytest.param("day", 1, "2024-02-20", "2024-03-10", id="day"),
]


@pytest.mark.parametrize(("grain", "fiscal", "start", "end"), CASES)
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_windows_match_pandas(env, grain, fiscal, start, end, by_region):
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


def test_unaligned_range_reads_whole_windows(env):
    """``--from`` inside a month: the month's year-to-date still starts on 1 January (the
    window belongs to the period; ``from`` only picks the periods shown), and ``--to``
    inside a month stops every window there."""
    project, connection = env
    result = project.run(
        ["bookings_ytd", "active_accounts_90d"],
        connection,
        grain="month",
        start="2024-03-15",
        end="2024-06-20",
    )
    for kpi in ("bookings_ytd", "active_accounts_90d"):
        wanted = expected(kpi, "month", "2024-03-01", "2024-06-20", False)
        assert_same(got(result, kpi), wanted, kpi)


# -- the statement and its checks -----------------------------------------------------------


def _project(tmp_path, extra: str = ""):
    import kpiengine

    files = dict(FILES)
    files["kpis.yaml"] = FILES["kpis.yaml"] + extra
    return kpiengine.load(write_files(tmp_path / "defs", files))


def test_one_statement_joins_rows_to_window_bounds(tmp_path):
    """Windows are a join of the rows to each period's [lo, hi) bounds, in the one
    statement: no per-period query, and KPIs with the same window share the scan."""
    project = _project(tmp_path)
    sql = project.compile(
        ["bookings_ytd", "win_rate_ytd", "orders_ytd", "active_accounts_90d"],
        grain="month",
        start="2024-01-01",
        end="2025-01-01",
    )
    assert sql.count("_window AS (") == 2  # the year-to-date scan, the 90-day scan
    assert sql.count("FROM orders AS t") == 2


def test_window_checks(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(DefinitionError, match=r"KPI321.*finer than the run's grain `quarter`"):
        project.compile(["bookings_mtd"], grain="quarter", start="2024-01-01", end="2025-01-01")
    with pytest.raises(DefinitionError, match=r"KPI321.*needs a time grain"):
        project.compile(["bookings_ytd"], grain="all", start="2024-01-01", end="2025-01-01")
    with pytest.raises(UsageError, match="need the range to compile"):
        project.compile(["bookings_ytd"], grain="month")


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("{to_date: day}", "`window.to_date` must be one of `week`, `month`, `quarter` or `year`"),
        ("{last: 0, unit: day}", "`window.last` must be between 1 and 100000"),
        ("{last: 3}", "missing required key `unit` in `window`"),
        ("{to_date: year, last: 3, unit: day}", "either `to_date:` or `last:` with `unit:`"),
        ("sometimes", "`window` must be one of `all`"),
    ],
)
def test_bad_windows_are_positioned(tmp_path, capsys, window, message):
    from kpiengine.cli import main

    files = dict(FILES)
    files["kpis.yaml"] = f"""
        kpi: bad
        source: orders
        expression: sum(amount)
        window: {window}
        """
    root = write_files(tmp_path / "defs", files)
    code = main(["validate", "--offline", str(root)])
    output = "".join(capsys.readouterr())
    assert code == 1, output
    assert "kpis.yaml:4:" in output and "KPI105" in output
    assert message in output
    assert "Traceback" not in output


def test_window_on_a_derived_kpi_is_refused(tmp_path, capsys):
    from kpiengine.cli import main

    root = write_files(
        tmp_path / "defs",
        {**FILES, "extra.yaml": "kpi: ytd_twice\nexpression: bookings_ytd * 2\nwindow: all\n"},
    )
    code = main(["validate", "--offline", str(root)])
    output = "".join(capsys.readouterr())
    assert code == 1 and "`window` only applies to a KPI with `source:`" in output


def test_explain_shows_the_window_and_a_statement_over_this_year(capsys):
    """`kpi explain` takes no range; window bounds are literals, so it shows this year's."""
    from kpiengine.cli import main

    code = main(["explain", "win_rate_ytd"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "window: year to date" in out
    year = dt.date.today().year
    assert f"{year}-01-01 to {year + 1}-01-01: its bounds need a range" in out
    assert "s0_window AS (" in out


@pytest.mark.parametrize("kpi", ["bookings_ytd", "active_accounts_90d"])
def test_cohorts_of_a_windowed_kpi(env, kpi):
    """`kpi cohort` of a windowed KPI by the month of the row's own time: the cohort is a
    bucketed dimension in both window forms (per-day sums, and the row join)."""
    from kpiengine.cohort import cohort_plans, run_cohort

    project, connection = env
    start, end = "2024-01-01", "2024-05-01"
    plans = cohort_plans(project, kpi, "orders.ordered_at", start=start, end=end)
    table = run_cohort(project, plans, connection, "orders.ordered_at")
    got = {(cell.cohort, cell.period): cell.value for cell in table.cells}
    frame = ORDERS.assign(moment=pd.to_datetime(ORDERS["ordered_at"]))
    frame = frame.assign(cohort=frame["moment"].dt.to_period("M").dt.start_time)
    months = pd.period_range(start, "2024-04-30", freq="M").start_time
    wanted = {}
    for cohort in months:
        rows = frame[frame["cohort"] == cohort]
        for period in months[months >= cohort]:
            window = _window_rows(rows, kpi, period, "month", 1, end)
            wanted[(cohort.date(), period.date())] = _aggregate(window, WINDOWS[kpi][3])
    assert got.keys() == wanted.keys()
    for key, value in wanted.items():
        assert (got[key] is None) == (value is None) or (value == 0 and got[key] == 0), key
        if value is not None and got[key] is not None:
            assert math.isclose(got[key], value, rel_tol=1e-9), (key, got[key], value)
