"""Retail calendars (SPEC §13.7): 4-4-5 / 4-5-4 / 5-4-4 years of 52 or 53 weeks.

Three layers of evidence, none of them using kpiengine's own retail arithmetic to make
the expectation:

- the NRF 4-5-4 calendar as NRF publishes it (fiscal 2023 = 2023-01-29 … 2024-02-03, 53
  weeks; the 53-week years 2006, 2012, 2017 and 2023);
- a second implementation written here from the definition, day by day (walk every day,
  find the year ends by looking at weekdays, count weeks), for 30 years of each pattern,
  both year-end rules and several end months and weekdays;
- ``kpi run`` at retail week, month, quarter and year grains on every engine of
  tests/engines.py (PostgreSQL and Spark are marked slow), against pandas sums over
  periods given by that second implementation, over the 53-week fiscal 2023, with
  ``growth(k, 1, year)`` year over year.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kpiengine.loader.definitions import load_project
from kpiengine.loader.model import WEEKDAYS, RetailCalendar
from kpiengine.plan import periods
from tests.conftest import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require

NRF = RetailCalendar()  # the defaults: 4-5-4, Saturday nearest the end of January

# -- an independent calendar, written from the definition ---------------------------------


def _reference_year_end(calendar: RetailCalendar, year: int) -> dt.date:
    """The last day of the retail year ending around month ``calendar.month`` of ``year``,
    by looking at days: every day with the weekday, in the month (``last``) or within
    three days of its last day (``nearest``); the latest, resp. the closest."""
    wanted = WEEKDAYS.index(calendar.weekday)
    month_end = dt.date(year, calendar.month, 28)
    while (month_end + dt.timedelta(days=1)).month == calendar.month:
        month_end += dt.timedelta(days=1)
    candidates = [
        month_end + dt.timedelta(days=shift)
        for shift in range(-6, 4)
        if (month_end + dt.timedelta(days=shift)).weekday() == wanted
    ]
    if calendar.rule == "last":
        return max(d for d in candidates if d <= month_end)
    return min(candidates, key=lambda d: abs((d - month_end).days))


@cache
def reference(calendar: RetailCalendar, first_year: int, last_year: int) -> dict[str, object]:
    """Every day of the retail years ending in ``first_year`` … ``last_year``, mapped to
    the start of its week, month, quarter and year; and each year's weeks."""
    ends = [_reference_year_end(calendar, y) for y in range(first_year - 1, last_year + 1)]
    weeks = [int(p) for p in calendar.pattern.split("-")] * 4
    starts: dict[str, dict[dt.date, dt.date]] = {g: {} for g in ("week", "month", "quarter")}
    starts["year"] = {}
    lengths = {}
    for before, end in itertools.pairwise(ends):
        first = before + dt.timedelta(days=1)
        total = ((end - first).days + 1) // 7
        assert (end - first).days + 1 == total * 7
        lengths[first] = total
        # month number of each week: weeks[i] weeks for month i, the 53rd in month 12
        month_of_week = [m for m, count in enumerate(weeks) for _ in range(count)]
        month_of_week += [11] * (total - 52)
        month_start: dict[int, dt.date] = {}
        day = first
        while day <= end:
            week = (day - first).days // 7
            month = month_of_week[week]
            month_start.setdefault(month, day)
            starts["week"][day] = first + dt.timedelta(weeks=week)
            starts["month"][day] = month_start[month]
            starts["quarter"][day] = month_start[month - month % 3]
            starts["year"][day] = first
            day += dt.timedelta(days=1)
    return {"starts": starts, "weeks": lengths}


CALENDARS = [
    RetailCalendar(pattern, month, weekday, rule)
    for pattern in ("4-4-5", "4-5-4", "5-4-4")
    for rule in ("last", "nearest")
    for month, weekday in ((1, "saturday"), (12, "sunday"), (8, "wednesday"))
]


# -- published NRF calendars --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fiscal", "first", "last", "weeks"),
    [
        (2006, "2006-01-29", "2007-02-03", 53),
        (2011, "2011-01-30", "2012-01-28", 52),
        (2012, "2012-01-29", "2013-02-02", 53),
        (2016, "2016-01-31", "2017-01-28", 52),
        (2017, "2017-01-29", "2018-02-03", 53),
        (2022, "2022-01-30", "2023-01-28", 52),
        (2023, "2023-01-29", "2024-02-03", 53),
        (2024, "2024-02-04", "2025-02-01", 52),
        (2025, "2025-02-02", "2026-01-31", 52),
    ],
)
def test_nrf_fiscal_years(fiscal: int, first: str, last: str, weeks: int) -> None:
    """NRF names a fiscal year by the calendar year it starts in."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    assert periods.period_start(end, "year", retail=NRF) == start
    assert periods.period_start(start, "year", retail=NRF) == start
    after = periods.add_periods(start, "year", 1, retail=NRF)
    assert after == end + dt.timedelta(days=1)
    assert (after - start).days == 7 * weeks
    assert start.year == fiscal


def test_nrf_fiscal_2023_months() -> None:
    """NRF's published 4-5-4 months of fiscal 2023; January (the 12th) has the 53rd week."""
    months = periods.spine(dt.date(2023, 1, 29), dt.date(2024, 2, 4), "month", retail=NRF)
    assert [m.isoformat() for m in months] == [
        "2023-01-29",
        "2023-02-26",
        "2023-04-02",
        "2023-04-30",
        "2023-05-28",
        "2023-07-02",
        "2023-07-30",
        "2023-08-27",
        "2023-10-01",
        "2023-10-29",
        "2023-11-26",
        "2023-12-31",
    ]
    quarters = periods.spine(dt.date(2023, 1, 29), dt.date(2024, 2, 4), "quarter", retail=NRF)
    assert [q.isoformat() for q in quarters] == [
        "2023-01-29",
        "2023-04-30",
        "2023-07-30",
        "2023-10-29",
    ]
    assert periods.period_start(dt.date(2024, 2, 3), "month", retail=NRF) == dt.date(2023, 12, 31)
    assert periods.period_start(dt.date(2024, 2, 4), "month", retail=NRF) == dt.date(2024, 2, 4)


# -- 30 years of each pattern and rule against the independent calendar -------------------


@pytest.mark.parametrize("calendar", CALENDARS, ids=lambda c: f"{c.pattern}-{c.rule}-{c.month}")
def test_thirty_years_match_the_definition(calendar: RetailCalendar) -> None:
    found = reference(calendar, 2001, 2030)
    starts: dict[str, dict[dt.date, dt.date]] = found["starts"]  # type: ignore[assignment]
    weeks: dict[dt.date, int] = found["weeks"]  # type: ignore[assignment]
    assert len(weeks) == 30 and set(weeks.values()) == {52, 53}
    days = sorted(starts["year"])
    for grain in ("week", "month", "quarter", "year"):
        wanted = starts[grain]
        for day in days:
            assert periods.period_start(day, grain, retail=calendar) == wanted[day], (grain, day)
        # the spine over the 30 years is the distinct starts, and count_periods its length
        spine = periods.spine(days[0], days[-1] + dt.timedelta(days=1), grain, retail=calendar)
        assert spine == sorted(set(wanted.values())), grain
        position = {start: index for index, start in enumerate(spine)}
        for index in range(0, len(spine), 7):
            for step in (-3, -1, 1, 5):
                if 0 <= index + step < len(spine):
                    moved = periods.add_periods(spine[index], grain, step, retail=calendar)
                    assert moved == spine[index + step], (grain, spine[index], step)
        rng = np.random.default_rng(7)
        for _ in range(100):
            a, b = sorted(int(i) for i in rng.integers(0, len(days), 2))
            # the periods of days[a] … days[b - 1]: none when the range is empty
            wanted_count = position[wanted[days[b - 1]]] - position[wanted[days[a]]] + 1
            count = periods.count_periods(days[a], days[b], grain, retail=calendar)
            assert count == (wanted_count if b > a else 0), (grain, days[a], days[b])
    for first, total in weeks.items():  # the 53rd week lengthens the last month only
        last_month = starts["month"][first + dt.timedelta(weeks=total) - dt.timedelta(days=1)]
        last_weeks = int(calendar.pattern.split("-")[2]) + total - 52
        assert (first + dt.timedelta(weeks=total) - last_month).days == 7 * last_weeks


def test_offsets_follow_the_retail_calendar() -> None:
    """previous(k, 1, year) is the same retail month (12 back) or quarter (4 back); at
    week grain the same week of last year, week 53 clamped to week 52."""
    assert periods.fixed_offset_rows(1, "year", "month") == 12
    assert periods.fixed_offset_rows(1, "year", "quarter") == 4
    week_53 = dt.date(2024, 1, 28)  # fiscal 2023's 53rd week
    assert periods.offset_rows(week_53, "week", 1, "year", retail=NRF) == 53  # → week 52
    assert periods.offset_rows(dt.date(2024, 2, 4), "week", 1, "year", retail=NRF) == 53
    assert periods.offset_rows(dt.date(2024, 3, 3), "week", 1, "year", retail=NRF) == 53
    assert periods.offset_rows(dt.date(2025, 3, 2), "week", 1, "year", retail=NRF) == 52
    bound = periods.max_offset_rows(1, "year", "week", retail=NRF)
    assert bound >= 53
    assert periods.max_offset_rows(1, "month", "week", retail=NRF) >= 6


# -- the project file ---------------------------------------------------------------------


def _load(tmp_path: Path, project: str):  # type: ignore[no-untyped-def]
    return load_project(write_files(tmp_path / "defs", {"kpiengine.yaml": project}))


def test_calendar_is_read(tmp_path: Path) -> None:
    model, diagnostics = _load(
        tmp_path,
        "project: r\ncalendar: {pattern: 4-4-5, week_start: monday, "
        "year_end: {month: 12, weekday: sunday, rule: last}}\n",
    )
    assert not diagnostics
    assert model.retail_calendar == RetailCalendar("4-4-5", 12, "sunday", "last")
    assert model.retail_calendar.week_start == "monday"
    model, diagnostics = _load(tmp_path / "b", "project: r\ncalendar: {}\n")
    assert not diagnostics and model.retail_calendar == NRF
    model, _ = _load(tmp_path / "c", "project: r\n")
    assert model.retail_calendar is None


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("calendar: {pattern: 4-6-3}\n", (2, 21), "`4-4-5`, `4-5-4` or `5-4-4`"),
        ("calendar: {year_end: {weekday: satday}}\n", (2, 32), "did you mean `saturday`"),
        ("calendar: {year_end: {month: 13}}\n", (2, 30), "between 1 and 12"),
        ("calendar: {year_end: {rule: near}}\n", (2, 29), "did you mean `nearest`"),
        ("calendar: {week_start: monday}\n", (2, 24), "weeks start on sunday"),
        ("week_start: monday\ncalendar: {}\n", (2, 13), "weeks start on sunday"),
        ("fiscal_year_start: 1\ncalendar: {}\n", (2, 1), "remove `fiscal_year_start`"),
        ("calendar: {weeks: 4}\n", (2, 12), "weeks"),
    ],
)
def test_bad_calendar_settings_are_positioned(
    tmp_path: Path, text: str, where: tuple[int, int], words: str
) -> None:
    _, diagnostics = _load(tmp_path, "project: r\n" + text)
    assert len(diagnostics) == 1, diagnostics
    found = diagnostics[0]
    assert found.code in ("KPI104", "KPI105")
    assert found.span.file.endswith("kpiengine.yaml")
    assert (found.span.line, found.span.col) == where
    assert words in f"{found.message} {found.hint}"


# -- kpi run on every engine against pandas -----------------------------------------------

FILES = {
    "kpiengine.yaml": """
        project: retail
        calendar:
          pattern: 4-5-4
          week_start: sunday
          year_end: {month: 1, weekday: saturday, rule: nearest}
        """,
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
    "visits.yaml": """
        source: visits
        table: visits
        time: visited_on
        columns:
          visited_on: date
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount)
          - kpi: visits
            source: visits
            expression: count()
          - kpi: revenue_yoy
            expression: growth(revenue, 1, year)
          - kpi: revenue_last_year
            expression: previous(revenue, 1, year)
          - kpi: revenue_per_visit
            expression: revenue / visits
          - kpi: revenue_ytd
            source: orders
            expression: sum(amount)
            window: {to_date: year}
        """,
}
REGIONS = ("emea", "apac")


def _orders() -> pd.DataFrame:
    """Four and a half years of orders, zero to two a day per region, at random hours."""
    rng = np.random.default_rng(454)
    rows = []
    day = dt.datetime(2021, 6, 1)
    order_id = 0
    while day < dt.datetime(2025, 12, 1):
        for region in REGIONS:
            for _ in range(int(rng.integers(0, 3))):
                order_id += 1
                moment = day + dt.timedelta(hours=int(rng.integers(0, 24)))
                rows.append(
                    (order_id, region, float(rng.integers(1, 500)), moment.isoformat(sep=" "))
                )
        day += dt.timedelta(days=1)
    return pd.DataFrame(rows, columns=["order_id", "region", "amount", "ordered_at"])


ORDERS = _orders()
VISITS = [
    (dt.date(2021, 6, 1) + dt.timedelta(days=i),) for i in range(1600) for _ in range(1 + i % 3)
]


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"retail_{request.param}")
    tables = {
        "orders": (
            "order_id INTEGER, region VARCHAR, amount DOUBLE, ordered_at TIMESTAMP",
            list(ORDERS.itertuples(index=False, name=None)),
        ),
        "visits": ("visited_on DATE", [(d.isoformat(),) for (d,) in VISITS]),
    }
    url = engine.load(arrow_tables(tables), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


def expected(grain: str, start: str, end: str, by_region: bool) -> dict[tuple, float | None]:
    """{(kpi, period, region or None): value} from the raw rows, with the periods of the
    independent calendar: sums per period; last year's value is that of the period with
    the same index in the year before (the same week, clamped to 52; the same month…)."""
    starts: dict[str, dict[dt.date, dt.date]] = reference(NRF, 2020, 2027)["starts"]  # type: ignore[assignment]
    period_of = starts[grain]
    year_of = starts["year"]
    frame = ORDERS.assign(day=pd.to_datetime(ORDERS["ordered_at"]).dt.date)
    frame = frame[frame["day"] < dt.date.fromisoformat(end)]
    frame = frame.assign(period=frame["day"].map(period_of))
    visit_days = pd.Series([d for (d,) in VISITS])
    visit_days = visit_days[visit_days < dt.date.fromisoformat(end)]
    visits = visit_days.map(period_of).value_counts().to_dict()
    first, stop = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    outputs = sorted({p for d, p in period_of.items() if first <= d < stop})
    all_periods = sorted(set(period_of.values()))

    def last_year(period: dt.date) -> dt.date:
        year = year_of[period]
        index = [p for p in all_periods if year_of[p] == year].index(period)
        before = year_of[year - dt.timedelta(days=1)]
        earlier = [p for p in all_periods if year_of[p] == before]
        return earlier[min(index, len(earlier) - 1)]

    groups = list(REGIONS) if by_region else [None]
    result: dict[tuple, float | None] = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        revenue = rows.groupby("period")["amount"].sum().to_dict()
        for period in outputs:
            now, base = revenue.get(period), revenue.get(last_year(period))
            result[("revenue", period, group)] = now
            result[("revenue_last_year", period, group)] = base
            growth = None
            if now is not None and base not in (None, 0):
                growth = (now - base) / base
            result[("revenue_yoy", period, group)] = growth
            if group is None:
                count = visits.get(period, 0)
                result[("visits", period, group)] = float(count)
                result[("revenue_per_visit", period, group)] = (
                    None if now is None or not count else now / count
                )
    return result


RUNS = [
    pytest.param("month", "2023-01-29", "2024-02-04", id="month-fiscal-2023"),
    pytest.param("month", "2023-10-29", "2024-05-05", id="month-across-the-53rd-week"),
    pytest.param("quarter", "2022-01-30", "2025-02-02", id="quarter"),
    pytest.param("year", "2022-01-30", "2025-02-02", id="year"),
    pytest.param("week", "2023-11-26", "2024-03-03", id="week"),
]


@pytest.mark.parametrize(("grain", "start", "end"), RUNS)
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_kpi_run_matches_pandas(env, grain: str, start: str, end: str, by_region: bool) -> None:  # type: ignore[no-untyped-def]
    project, connection = env
    kpis = ["revenue", "revenue_yoy", "revenue_last_year"]
    if not by_region:
        kpis += ["visits", "revenue_per_visit"]
    result = project.run(
        kpis, connection, grain=grain, start=start, end=end, by=["region"] if by_region else []
    )
    actual = {
        (row.kpi, row.period, dict(row.dimensions).get("region")): row.value for row in result.rows
    }
    wanted = expected(grain, start, end, by_region)
    assert actual.keys() == wanted.keys()
    for key, value in wanted.items():
        if value is None:
            assert actual[key] is None, (key, actual[key])
        else:
            assert actual[key] is not None and math.isclose(actual[key], value, rel_tol=1e-9), (
                key,
                actual[key],
                value,
            )


def test_kpi_run_without_a_range_finds_it(env) -> None:  # type: ignore[no-untyped-def]
    """No --from/--to: the data's range, in whole retail quarters."""
    project, connection = env
    result = project.run(["revenue"], connection, grain="quarter")
    got = {row.period: row.value for row in result.rows}
    wanted = expected("quarter", "2021-05-02", "2025-11-02", False)
    assert min(got) == dt.date(2021, 5, 2)  # the retail quarter holding 2021-06-01
    for period, value in got.items():
        if period < dt.date(2025, 11, 2):
            assert math.isclose(value, wanted[("revenue", period, None)], rel_tol=1e-9)


def test_to_date_starts_at_the_retail_year(env) -> None:  # type: ignore[no-untyped-def]
    """`window: {to_date: year}` at retail month grain: from the start of the retail year
    holding the month to the month's end, across the 53-week fiscal 2023 into 2024."""
    project, connection = env
    start, end = "2023-10-29", "2024-05-05"
    result = project.run(["revenue_ytd"], connection, grain="month", start=start, end=end)
    starts = reference(NRF, 2020, 2027)["starts"]
    months, years = starts["month"], starts["year"]  # type: ignore[index]
    days = pd.to_datetime(ORDERS["ordered_at"]).dt.date
    wanted = {}
    for month in sorted({months[d] for d in months if start <= d.isoformat() < end}):
        following = month + dt.timedelta(weeks=4)
        while months[following] == month:
            following += dt.timedelta(weeks=1)
        rows = ORDERS[(days >= years[month]) & (days < following)]
        wanted[month] = float(rows["amount"].sum())
    got = {row.period: row.value for row in result.rows}
    assert got.keys() == wanted.keys()
    for month, value in wanted.items():
        assert math.isclose(got[month], value, rel_tol=1e-9), month
    assert dt.date(2024, 2, 4) in got  # fiscal 2024's first month restarts the sum
    assert got[dt.date(2024, 2, 4)] < got[dt.date(2023, 12, 31)]


# -- compile ------------------------------------------------------------------------------


def test_compile_without_a_range_is_a_usage_error(tmp_path: Path) -> None:
    import kpiengine
    from kpiengine.errors import UsageError

    project = kpiengine.load(write_files(tmp_path / "defs", FILES))
    with pytest.raises(UsageError, match="need the range to compile"):
        project.compile(["revenue"], grain="month")
    # day grain is the ordinary one, and week grain (Sunday weeks) the dialect's bucket
    assert "CASE" not in project.compile(["revenue"], grain="day")
    assert "CASE" not in project.compile(["revenue"], grain="week")
    sql = project.compile(["revenue"], grain="year", start="2023-01-29", end="2024-02-04")
    assert "CASE" in sql and "'2023-01-29" in sql


def test_cli_compile_without_range_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from kpiengine.cli import main

    root = write_files(tmp_path / "defs", FILES)
    code = main(["compile", "revenue", "--grain", "quarter", "--project", str(root)])
    assert code == 2
    assert "--from and --to" in capsys.readouterr().err


def test_docs_commands_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Every `kpi` command of docs/semantics.md's retail calendar section runs on a
    project with the calendar it shows."""
    import re

    from kpiengine.cli import main

    text = (Path(__file__).parents[1] / "docs" / "semantics.md").read_text(encoding="utf-8")
    section = text.split("## Retail calendars", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(kpi [^\n`]+)$", section, re.M)
    assert commands
    assert "calendar: {pattern: 4-5-4, week_start: sunday" in section
    root = write_files(tmp_path / "defs", FILES)
    for command in commands:
        code = main([*command.split()[1:], "--project", str(root)])
        assert code == 0, (command, capsys.readouterr().err)
        assert "CASE" in capsys.readouterr().out
