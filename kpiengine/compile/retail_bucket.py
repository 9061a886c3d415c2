"""The period of a row in a retail calendar (SPEC §13.7), in SQL, without a calendar table.

Retail months, quarters and years do not start on a fixed day of a Gregorian month, and a
53rd week now and then moves every later boundary: no date function of any engine knows
them. But the plan knows the spine (every period of the statement, look-back included,
from :mod:`kpiengine.plan.retail`), and the scan's WHERE already keeps rows inside its
span. So the bucket is a plain searched CASE over the spine's starts, newest first:

    CASE WHEN t >= <p_n> THEN <p_n> WHEN t >= <p_n-1> THEN <p_n-1> … END

Comparisons, CASE and date literals only: the same on every dialect, with each dialect's
own literal (``time_bound`` for the time column's type, ``date_literal`` for the period).
Weeks starting on Monday or Sunday keep the dialect's own bucket; other week starts (a
year ending on another weekday) use the CASE too. Every other grain is the dialect's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from kpiengine.errors import UsageError

if TYPE_CHECKING:
    from kpiengine.compile.dialects import DialectRules
    from kpiengine.plan.planner import Plan

#: Week starts the dialects' own week bucket knows.
_DIALECT_WEEK_STARTS = frozenset({"monday", "sunday"})


def period_bucket(
    rules: DialectRules, plan: Plan, time: exp.Expression, time_type: str
) -> exp.Expression:
    """The first day of the period of ``plan``'s grain holding ``time``: the dialect's
    bucket for Gregorian grains, a CASE over the spine for retail ones."""
    project = plan.project
    grain = plan.request.grain
    calendar = project.retail_calendar
    if calendar is None or grain == "day":
        return rules.bucket(time, grain, project.fiscal_year_start, project.week_start)
    if grain == "week" and calendar.week_start in _DIALECT_WEEK_STARTS:
        return rules.bucket(time, grain, project.fiscal_year_start, calendar.week_start)
    if plan.periods is None:
        raise UsageError(
            f"the retail calendar's {grain} periods need the range to compile: give --from "
            "and --to (kpi run finds the range in the data)"
        )
    return spine_case(rules, plan.periods, time, time_type)


def cohort_bucket(
    rules: DialectRules, plan: Plan, value: exp.Expression, value_type: str
) -> exp.Expression:
    """The period of a cohort date (``kpi cohort``, SPEC §13.6): as :func:`period_bucket`,
    but no WHERE bounds a cohort date, so in a retail calendar one outside the spine
    (before the first period or from ``--to`` on) is NULL rather than a wrong period."""
    end = plan.request.end
    bucket = period_bucket(rules, plan, value, value_type)
    if not isinstance(bucket, exp.Case) or end is None:
        return bucket
    after = exp.If(
        this=exp.GTE(this=value.copy(), expression=rules.time_bound(end, value_type)),
        true=exp.Null(),
    )
    bucket.set("ifs", [after, *bucket.args["ifs"]])
    return bucket


def spine_case(
    rules: DialectRules, periods: Sequence[dt.date], time: exp.Expression, time_type: str
) -> exp.Expression:
    """``CASE WHEN time >= p THEN p … END`` over ``periods`` (ascending starts), newest
    first; a time before the first period is NULL (the WHERE keeps none there)."""
    if not periods:
        return exp.Null()
    ifs = [
        exp.If(
            this=exp.GTE(this=time.copy(), expression=rules.time_bound(start, time_type)),
            true=rules.date_literal(start),
        )
        for start in reversed(periods)
    ]
    return exp.Case(ifs=ifs)
