"""Window bounds (SPEC §13.1): for each output period, the time range its rows come from.

Computed here, in Python, with the spine's own calendar arithmetic (fiscal years, week
starts), so that every dialect compares times with plain date literals: the statement
joins each row to the periods whose ``[lo, hi)`` holds its time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from kpiengine.loader.model import Project, Window
from kpiengine.plan.periods import DateOutOfRange, add_periods, period_start, shift_back


@dataclass(frozen=True)
class WindowBounds:
    """Period ``period`` reads the rows with ``lo <= time < hi`` (no ``lo``: all before)."""

    period: dt.date
    lo: dt.date | None
    hi: dt.date


def window_bounds(
    window: Window, periods: Sequence[dt.date], grain: str, project: Project
) -> list[WindowBounds]:
    """The bounds of every period of the spine: ``hi`` is the period's end; ``lo`` the
    start of the ``to_date`` period holding the period's start, ``last`` units before
    ``hi``, or nothing for ``all``. A bound before the year 1 reads from the first row."""
    found: list[WindowBounds] = []
    for period in periods:
        hi = add_periods(period, grain, 1, retail=project.retail_calendar)
        lo: dt.date | None = None
        try:
            if window.kind == "to_date":
                unit = window.unit or grain
                lo = period_start(
                    period,
                    unit,
                    project.fiscal_year_start,
                    project.week_start,
                    retail=project.retail_calendar,
                )
            elif window.kind == "last":
                count, unit = window.count or 1, window.unit or "day"
                lo = shift_back(hi, count, unit, retail=project.retail_calendar)
        except DateOutOfRange:
            lo = None
        found.append(WindowBounds(period, lo, hi))
    return found


def earliest(bounds: Sequence[WindowBounds]) -> dt.date | None:
    """Where the scan must start reading: the lowest ``lo``; None when a window is open."""
    if not bounds or any(b.lo is None for b in bounds):
        return None
    return min(b.lo for b in bounds if b.lo is not None)
