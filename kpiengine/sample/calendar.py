"""The fixed time window of the sample data, and random dates and times inside it.

Dates are int64 day numbers since 1970-01-01 and timestamps int64 seconds since then;
-1 stands for null. The window is fixed (2024-01-01 to 2026-10-31, 34 whole months) so
that the same seed always gives the same data, whenever it is generated.
"""

from __future__ import annotations

import numpy as np

DAY = 86_400
MONTHS = 34
_FIRST_MONTH = np.datetime64("2024-01", "M")


# First day of every month from 2010 to 2039, for fast lookups (the data needs 2018-2027).
_TABLE_FIRST = -14 * 12  # month index of January 2010
_TABLE_DAYS = (
    (_FIRST_MONTH + np.arange(_TABLE_FIRST, 16 * 12 + 1).astype("m8[M]"))
    .astype("M8[D]")
    .astype(np.int64)
)


def month_start_day(months: np.ndarray | int) -> np.ndarray:
    """Day number of the first day of month ``months`` (0 = January 2024; may be negative)."""
    return _TABLE_DAYS[np.asarray(months, dtype=np.int64) - _TABLE_FIRST]


def month_of_day(days: np.ndarray) -> np.ndarray:
    """Month index (0 = January 2024) of day numbers; works before and after the window."""
    return np.searchsorted(_TABLE_DAYS, days, side="right") - 1 + _TABLE_FIRST


def year_of_day(days: np.ndarray) -> np.ndarray:
    return month_of_day(days) // 12 + 2024


MONTH_DAYS = month_start_day(np.arange(MONTHS + 1))  # month boundaries, last one exclusive
START_DAY = int(MONTH_DAYS[0])  # 2024-01-01
END_DAY = int(MONTH_DAYS[-1])  # 2026-11-01, the first day after the window
assert str(np.datetime64(END_DAY, "D")) == "2026-11-01"
START = START_DAY * DAY
END = END_DAY * DAY  # first second after the window

# Relative volume by calendar month: quarter-end pushes, a Q4 peak, an August dip.
SEASON = np.array([0.92, 0.95, 1.08, 0.97, 1.0, 1.05, 0.9, 0.72, 1.02, 1.1, 1.18, 1.22])


def month_weights(monthly_growth: float = 0.025, seasonal: bool = True) -> np.ndarray:
    """Share of a volume falling in each month of the window: compound growth x season."""
    months = np.arange(MONTHS)
    weights = (1 + monthly_growth) ** months
    if seasonal:
        weights = weights * SEASON[months % 12]
    return weights / weights.sum()


def spread_over_months(rng: np.random.Generator, total: int, weights: np.ndarray) -> np.ndarray:
    """Month index of ``total`` events drawn with ``weights``, in ascending order."""
    counts = rng.multinomial(total, weights)
    return np.repeat(np.arange(len(weights)), counts)


def random_days(rng: np.random.Generator, months: np.ndarray, weekdays: float = 0.9) -> np.ndarray:
    """A random day in each given month; a weekend day moves to a weekday with p=weekdays."""
    first = month_start_day(months)
    length = month_start_day(np.asarray(months) + 1) - first
    days = first + (rng.random(len(first)) * length).astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    move = (weekday >= 5) & (rng.random(len(days)) < weekdays)
    # To a random weekday of the same week, or of the next one at the start of a month.
    sunday = (weekday == 6).astype(np.int64)
    back = days - rng.integers(1, 6, len(days)) - sunday
    forward = days + rng.integers(2, 7, len(days)) - sunday
    moved = np.where(back >= first, back, forward)
    return np.where(move, moved, days)


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight, around office hours (07:00-20:00, busiest early afternoon)."""
    hours = np.clip(rng.normal(13.0, 2.6, n), 7.0, 19.99)
    return (hours * 3600).astype(np.int64)


def random_times(rng: np.random.Generator, months: np.ndarray) -> np.ndarray:
    """A random office-hours timestamp in each given month."""
    return random_days(rng, months) * DAY + time_of_day(rng, len(months))


def lognormal_seconds(
    rng: np.random.Generator, median_days: np.ndarray | float, sigma: float, n: int
) -> np.ndarray:
    """Durations (whole seconds, at least one minute) with the given median in days."""
    days = np.asarray(median_days, dtype=np.float64) * rng.lognormal(0.0, sigma, n)
    return np.maximum((days * DAY).astype(np.int64), 60)
