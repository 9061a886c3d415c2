"""Calendar arithmetic for grains: period starts, shifts and spines, in Python.

The planner builds the period spine and look-back ranges here; the compiled SQL buckets
rows with the same rules (fiscal year start for quarters and years, week start for
weeks), and the tests hold the two to the same answers.

With a retail calendar (SPEC §13.7, ``retail=``), the week, month, quarter and year grains
follow it instead (:mod:`kpiengine.plan.retail`); each function here takes it as a
keyword, and without it keeps the Gregorian answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from kpiengine.errors import UsageError
from kpiengine.plan import retail as retail_calendar

if TYPE_CHECKING:
    from kpiengine.loader.model import RetailCalendar

_T = TypeVar("_T")

_MONTHS_PER = {"month": 1, "quarter": 3, "year": 12}
_DAYS_PER = {"day": 1, "week": 7}

#: The most periods one statement may produce, look-back included (``--max-periods``,
#: ``KPI_MAX_PERIODS``): 100 000 days is 273 years, and computes in about 3 s and 0.6 GB
#: on DuckDB; a range of every day of the calendar would take minutes and end in
#: MemoryError.
DEFAULT_MAX_PERIODS = 100_000
MAX_PERIODS_ENV = "KPI_MAX_PERIODS"


class DateOutOfRange(UsageError):
    """Period arithmetic left the years 1 to 9999, the dates Python (and most engines) hold.

    A usage error (exit 2): only a range or a look-back at the edge of the calendar gets
    here, and the user narrows it.
    """

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is outside the dates kpiengine computes ({dt.date.min} to "
            f"{dt.date.max}); move --from/--to away from that edge"
        )


def max_periods(explicit: int | None = None) -> int:
    """The cap on periods: ``explicit`` (a flag or an API argument), else the environment
    variable ``KPI_MAX_PERIODS``, else :data:`DEFAULT_MAX_PERIODS`."""
    import os

    if explicit is None:
        text = os.environ.get(MAX_PERIODS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PERIODS
        try:
            explicit = int(text)
        except ValueError:
            raise UsageError(
                f"{MAX_PERIODS_ENV}={text[:40]!r} is not a whole number of periods"
            ) from None
    if isinstance(explicit, bool) or not isinstance(explicit, int) or explicit < 1:
        raise UsageError(f"the period limit must be a whole number of at least 1, not {explicit!r}")
    return explicit


def _follows(retail: RetailCalendar | None, grain: str) -> bool:
    """Whether ``grain``'s periods are the retail calendar's."""
    return retail is not None and grain in retail_calendar.RETAIL_GRAINS


def _in_calendar(what: Callable[[], str], compute: Callable[[], _T]) -> _T:
    """``compute()``, with a retail year outside the years 1 to 9999 a usage error."""
    try:
        return compute()
    except (retail_calendar.OutOfCalendar, OverflowError):
        raise DateOutOfRange(what()) from None


def period_start(
    day: dt.date,
    grain: str,
    fiscal_year_start: int = 1,
    week_start: str = "monday",
    *,
    retail: RetailCalendar | None = None,
) -> dt.date:
    """The first day of the period that contains ``day``."""
    if retail is not None and _follows(retail, grain):
        calendar = retail
        return _in_calendar(
            lambda: f"the start of the {grain} holding {day}",
            lambda: retail_calendar.period_start(calendar, day, grain),
        )
    if grain == "day":
        return day
    if grain == "week":
        offset = day.weekday() if week_start == "monday" else (day.weekday() + 1) % 7
        if day.toordinal() <= offset:  # a week that began before year 1
            raise DateOutOfRange(f"the start of the week holding {day}")
        return day - dt.timedelta(days=offset)
    size = _MONTHS_PER[grain]
    shift = fiscal_year_start - 1 if grain in ("quarter", "year") else 0
    index = day.year * 12 + day.month - 1 - shift
    index -= index % size
    index += shift
    if index < 12:  # a fiscal period that began before year 1
        raise DateOutOfRange(f"the start of the {grain} holding {day}")
    return dt.date(index // 12, index % 12 + 1, 1)


def add_periods(
    start: dt.date, grain: str, count: int, *, retail: RetailCalendar | None = None
) -> dt.date:
    """Shift a period start by ``count`` periods (negative goes back).

    Raises :class:`DateOutOfRange` (a usage error) past the years 1 to 9999.
    """
    way = "before" if count < 0 else "after"
    if retail is not None and _follows(retail, grain):
        calendar = retail
        return _in_calendar(
            lambda: f"{abs(count)} {grain}(s) {way} {start}",
            lambda: retail_calendar.add_periods(calendar, start, grain, count),
        )
    try:
        if grain in _DAYS_PER:
            return start + dt.timedelta(days=count * _DAYS_PER[grain])
        index = start.year * 12 + start.month - 1 + count * _MONTHS_PER[grain]
        return dt.date(index // 12, index % 12 + 1, start.day)
    except (OverflowError, ValueError):
        raise DateOutOfRange(f"{abs(count)} {grain}(s) {way} {start}") from None


def count_periods(
    start: dt.date,
    end: dt.date,
    grain: str,
    fiscal_year_start: int = 1,
    week_start: str = "monday",
    *,
    retail: RetailCalendar | None = None,
) -> int:
    """How many periods overlap ``[start, end)``: what :func:`spine` would return, counted
    in constant time, so that a range can be refused before its spine is built."""
    if end <= start:
        return 0
    if retail is not None and _follows(retail, grain):
        calendar = retail
        last_day = end - dt.timedelta(days=1)
        return _in_calendar(
            lambda: f"the {grain} periods from {start} to {end}",
            lambda: retail_calendar.periods_between(calendar, start, last_day, grain) + 1,
        )
    first = period_start(start, grain, fiscal_year_start, week_start)
    last = period_start(end - dt.timedelta(days=1), grain, fiscal_year_start, week_start)
    if grain in _DAYS_PER:
        return (last - first).days // _DAYS_PER[grain] + 1
    months = (last.year - first.year) * 12 + last.month - first.month
    return months // _MONTHS_PER[grain] + 1


def spine(
    start: dt.date,
    end: dt.date,
    grain: str,
    fiscal_year_start: int = 1,
    week_start: str = "monday",
    *,
    retail: RetailCalendar | None = None,
) -> list[dt.date]:
    """Starts of every period that overlaps ``[start, end)``."""
    if end <= start:
        return []
    current = period_start(start, grain, fiscal_year_start, week_start, retail=retail)
    periods = []
    while current < end:
        periods.append(current)
        try:
            current = add_periods(current, grain, 1, retail=retail)
        except DateOutOfRange:  # the period holding 9999-12-31 is the last one there is
            break
    return periods


# -- calendar offsets (SPEC §13.2) --------------------------------------------------------

#: The longest a count of units can be, in days: n months never span more than 31·n days
#: (a month-end clamp included), n years never more than 366·n.
_MAX_DAYS_PER = {"day": 1, "week": 7, "month": 31, "quarter": 93, "year": 366}


def shift_back(
    day: dt.date, count: int, unit: str, *, retail: RetailCalendar | None = None
) -> dt.date:
    """``day`` minus ``count`` calendar units. Months, quarters and years keep the day of
    the month, clamped to the month's last day (2024-03-31 − 1 month = 2024-02-29,
    2024-02-29 − 1 year = 2023-02-28), as SQL interval arithmetic and pandas do. In a
    retail calendar they keep the day's place in its retail period, clamped alike
    (:func:`kpiengine.plan.retail.shift_back`).

    Raises :class:`DateOutOfRange` before the year 1.
    """
    if retail is not None and unit in retail_calendar.PER_YEAR:
        calendar = retail
        return _in_calendar(
            lambda: f"{count} {unit}(s) before {day}",
            lambda: retail_calendar.shift_back(calendar, day, count, unit),
        )
    try:
        if unit in _DAYS_PER:
            return day - dt.timedelta(days=count * _DAYS_PER[unit])
        index = day.year * 12 + day.month - 1 - count * _MONTHS_PER[unit]
        year, month = divmod(index, 12)
        following = dt.date(year + (month == 11), (month + 1) % 12 + 1, 1)
        last = (following - dt.timedelta(days=1)).day
        return dt.date(year, month + 1, min(day.day, last))
    except (OverflowError, ValueError):
        raise DateOutOfRange(f"{count} {unit}(s) before {day}") from None


def offset_rows(
    start: dt.date,
    grain: str,
    count: int,
    unit: str,
    fiscal_year_start: int = 1,
    week_start: str = "monday",
    *,
    retail: RetailCalendar | None = None,
) -> int:
    """How many periods of ``grain`` before the period starting at ``start`` is the period
    holding ``start − count·unit``: the row offset of ``previous(k, count, unit)`` there."""
    calendar = fiscal_year_start, week_start
    shifted = shift_back(start, count, unit, retail=retail)
    target = period_start(shifted, grain, *calendar, retail=retail)
    return count_periods(target, start, grain, *calendar, retail=retail)


def fixed_offset_rows(count: int, unit: str, grain: str) -> int | None:
    """The row offset of ``count`` units at ``grain`` when it is the same for every period
    (None when it varies with the date: months, quarters or years at day or week grain).

    Period starts of month, quarter and year grains are first days of months aligned to
    the grain, so a shift by whole months that the grain divides lands on a period start.
    """
    if unit == grain:
        return count
    if grain in _MONTHS_PER and unit in _MONTHS_PER:
        return count * _MONTHS_PER[unit] // _MONTHS_PER[grain]
    if grain in _DAYS_PER and unit in _DAYS_PER:
        return count * _DAYS_PER[unit] // _DAYS_PER[grain]
    return None


def max_offset_rows(
    count: int, unit: str, grain: str, *, retail: RetailCalendar | None = None
) -> int:
    """An upper bound of :func:`offset_rows` over every date (exact when it is fixed): the
    look-back a calendar offset needs before ``from``, known before the range is.

    :func:`fixed_offset_rows` holds in a retail calendar too: retail months, quarters and
    years nest like Gregorian ones (12 months a year, 3 a quarter)."""
    fixed = fixed_offset_rows(count, unit, grain)
    if fixed is not None:
        return fixed
    days = count * _MAX_DAYS_PER[unit]
    if retail is not None and unit in retail_calendar.PER_YEAR:
        days = retail_calendar.max_days_back(count, unit)
    # the period holding the shifted date starts at most 6 days before it (weeks)
    return days if grain == "day" else (days + _DAYS_PER[grain] - 1) // _DAYS_PER[grain]
