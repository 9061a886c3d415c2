"""Retail calendar arithmetic (SPEC §13.7): 4-4-5 / 4-5-4 / 5-4-4 years of 52 or 53 weeks.

A retail year ends on a fixed weekday: the last one in its end month (``rule: last``) or
the one nearest to that month's last day (``rule: nearest``, up to three days into the
next month). So it holds 52 weeks, or 53 when the weekday has drifted far enough (every
five or six years). Each quarter is 13 weeks split into three months by the pattern (4, 5
and 4 weeks for 4-5-4); a 53rd week joins the year's last month. Periods are named by
their first day, like every other grain.

Everything here is computed from the definition, per year, in constant time: the planner's
spine, look-back and period counts, and the compiled SQL's buckets (built from the spine)
come from the same functions, so the statement and the Python agree by construction.
Weeks (``week`` grain) start the day after the year's last weekday, so they tile the
retail years; the ``day`` grain is untouched.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from kpiengine.loader.model import WEEKDAYS, RetailCalendar

#: Periods of each retail grain in a year.
PER_YEAR = {"month": 12, "quarter": 4, "year": 1}
#: Grains whose periods this module computes (``day`` is the ordinary one).
RETAIL_GRAINS = frozenset({"week", *PER_YEAR})


class OutOfCalendar(ValueError):
    """A retail year that starts or ends outside the years 1 to 9999."""


def year_end(calendar: RetailCalendar, year: int) -> dt.date:
    """The last day of the retail year ending in the calendar year ``year``.

    Raises :class:`OutOfCalendar` outside the dates Python holds.
    """
    return _year_end(calendar.month, WEEKDAYS.index(calendar.weekday), calendar.rule, year)


@lru_cache(maxsize=4096)
def _year_end(month: int, weekday: int, rule: str, year: int) -> dt.date:
    try:
        following = dt.date(year + (month == 12), month % 12 + 1, 1)
        last = following - dt.timedelta(days=1)
        back = (last.weekday() - weekday) % 7  # days from the last such weekday to `last`
        if rule == "nearest" and back > 3:
            return last + dt.timedelta(days=7 - back)
        return last - dt.timedelta(days=back)
    except (OverflowError, ValueError):
        raise OutOfCalendar(f"the retail year ending in {year}") from None


def year_bounds(calendar: RetailCalendar, year: int) -> tuple[dt.date, dt.date]:
    """``(first day, day after the last)`` of the retail year ending in ``year``."""
    return year_end(calendar, year - 1) + dt.timedelta(days=1), year_end(
        calendar, year
    ) + dt.timedelta(days=1)


def weeks_in_year(calendar: RetailCalendar, year: int) -> int:
    """52, or 53 for a long year."""
    start, end = year_bounds(calendar, year)
    return (end - start).days // 7


def year_of(calendar: RetailCalendar, day: dt.date) -> int:
    """The calendar year in which the retail year holding ``day`` ends."""
    year = day.year
    if day > year_end(calendar, year):
        return year + 1
    if year > 1 and day <= year_end(calendar, year - 1):
        return year - 1
    return year


def month_offsets(calendar: RetailCalendar, weeks: int) -> tuple[int, ...]:
    """Week offsets of the 12 month starts in a year of ``weeks`` weeks, and its end (13
    values): 0, 4, 9, 13, … for 4-5-4. The 53rd week lengthens the last month only."""
    offsets = [0]
    for index in range(12):
        offsets.append(offsets[-1] + calendar.month_weeks[index % 3])
    offsets[-1] += weeks - 52
    return tuple(offsets)


@lru_cache(maxsize=4096)
def _starts(calendar: RetailCalendar, year: int, grain: str) -> tuple[dt.date, ...]:
    """Starts of the ``grain`` periods of the retail year ending in ``year`` (cached: a
    spine asks for the same year once per period)."""
    start, end = year_bounds(calendar, year)
    months = month_offsets(calendar, (end - start).days // 7)
    step = 12 // PER_YEAR[grain]
    return tuple(start + dt.timedelta(weeks=months[index]) for index in range(0, 12, step))


def locate(calendar: RetailCalendar, day: dt.date, grain: str) -> tuple[int, int]:
    """``(year, index)``: the retail year (by its end) and the period's index in it (0 to
    11 for months, 0 to 3 for quarters, 0 for years) of the period holding ``day``."""
    year = year_of(calendar, day)
    starts = _starts(calendar, year, grain)
    index = len(starts) - 1
    while starts[index] > day:
        index -= 1
    return year, index


def start_of(calendar: RetailCalendar, year: int, index: int, grain: str) -> dt.date:
    """First day of period ``index`` (counted from the first of the retail year ending in
    ``year``; any integer: it rolls over into other years)."""
    shift, index = divmod(index, PER_YEAR[grain])
    return _starts(calendar, year + shift, grain)[index]


def week_start_of(calendar: RetailCalendar, day: dt.date) -> dt.date:
    """First day of the retail week holding ``day``."""
    first = WEEKDAYS.index(calendar.week_start)
    return day - dt.timedelta(days=(day.weekday() - first) % 7)


def period_start(calendar: RetailCalendar, day: dt.date, grain: str) -> dt.date:
    """First day of the ``grain`` period holding ``day`` (week, month, quarter, year)."""
    if grain == "week":
        return week_start_of(calendar, day)
    return start_of(calendar, *locate(calendar, day, grain), grain)


def add_periods(calendar: RetailCalendar, start: dt.date, grain: str, count: int) -> dt.date:
    """The start of the period ``count`` periods after (before, negative) the one holding
    ``start``."""
    if grain == "week":
        return week_start_of(calendar, start) + dt.timedelta(weeks=count)
    year, index = locate(calendar, start, grain)
    return start_of(calendar, year, index + count, grain)


def periods_between(calendar: RetailCalendar, first: dt.date, last: dt.date, grain: str) -> int:
    """How many periods from the one holding ``first`` to the one holding ``last``
    (0 when they are the same period)."""
    if grain == "week":
        return (week_start_of(calendar, last) - week_start_of(calendar, first)).days // 7
    first_year, first_index = locate(calendar, first, grain)
    last_year, last_index = locate(calendar, last, grain)
    return (last_year - first_year) * PER_YEAR[grain] + last_index - first_index


def shift_back(calendar: RetailCalendar, day: dt.date, count: int, unit: str) -> dt.date:
    """``day`` minus ``count`` retail months, quarters or years: the day as far into the
    earlier period as ``day`` is into its own, clamped to that period's last day (a day in
    a 53rd week, one year back, is the last day of a 52-week year)."""
    start = period_start(calendar, day, unit)
    earlier = add_periods(calendar, start, unit, -count)
    length = (add_periods(calendar, earlier, unit, 1) - earlier).days
    return earlier + dt.timedelta(days=min((day - start).days, length - 1))


#: The longest a retail unit is, in days: a 4-4-5 month with the 53rd week is 6 weeks.
MAX_DAYS = {"month": 42, "quarter": 98, "year": 371}


def max_days_back(count: int, unit: str) -> int:
    """An upper bound of ``day − shift_back(day, count, unit)``, for the look-back."""
    return count * MAX_DAYS[unit] + 7
