"""Calendar arithmetic for grains: period starts, shifts and spines, in Python.

The planner builds the period spine and look-back ranges here; the compiled SQL buckets
rows with the same rules (fiscal year start for quarters and years, week start for
weeks), and the tests hold the two to the same answers.
"""

from __future__ import annotations

import datetime as dt

TIME_GRAINS = ("day", "week", "month", "quarter", "year")
_MONTHS_PER = {"month": 1, "quarter": 3, "year": 12}


def period_start(
    day: dt.date, grain: str, fiscal_year_start: int = 1, week_start: str = "monday"
) -> dt.date:
    """The first day of the period that contains ``day``."""
    if grain == "day":
        return day
    if grain == "week":
        offset = day.weekday() if week_start == "monday" else (day.weekday() + 1) % 7
        return day - dt.timedelta(days=offset)
    size = _MONTHS_PER[grain]
    shift = fiscal_year_start - 1 if grain in ("quarter", "year") else 0
    index = day.year * 12 + day.month - 1 - shift
    index -= index % size
    index += shift
    return dt.date(index // 12, index % 12 + 1, 1)


def add_periods(start: dt.date, grain: str, count: int) -> dt.date:
    """Shift a period start by ``count`` periods (negative goes back)."""
    if grain == "day":
        return start + dt.timedelta(days=count)
    if grain == "week":
        return start + dt.timedelta(weeks=count)
    index = start.year * 12 + start.month - 1 + count * _MONTHS_PER[grain]
    return dt.date(index // 12, index % 12 + 1, start.day)


def spine(
    start: dt.date, end: dt.date, grain: str, fiscal_year_start: int = 1, week_start: str = "monday"
) -> list[dt.date]:
    """Starts of every period that overlaps ``[start, end)``."""
    if end <= start:
        return []
    current = period_start(start, grain, fiscal_year_start, week_start)
    periods = []
    while current < end:
        periods.append(current)
        current = add_periods(current, grain, 1)
    return periods
