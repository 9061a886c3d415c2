"""DuckDB: the portable rendering, built from nodes that cost less to build and print.

DuckDB is the reference engine and the one ``kpi compile`` prints by default, so a warm
compile for it is timed (bench/compile_speed.py, issue 16). tests/test_compile_golden.py
pins DuckDB's statements; tests/test_engines.py compares their numbers with every engine's.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules


class Rules(DialectRules):
    """DuckDB: ``DATE_TRUNC`` as a ``DateTrunc`` node; a regular spine as a series;
    conversion KPIs through ``EXISTS``."""

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        """``DATE_TRUNC('MONTH', value)``. The portable ``TimestampTrunc`` prints the same
        text for DuckDB, but sqlglot renders it by building a second ``DATE_TRUNC`` call
        through its function registry, copying ``value`` (≈ 15 % of a warm one-KPI
        compile); ``DateTrunc`` is printed directly."""
        unit = exp.Literal.string(grain.upper())
        return exp.DateTrunc(this=value, unit=unit)  # type: ignore[no-untyped-call]

    def runs_exists_as_join(self) -> bool:
        """A correlated ``EXISTS`` is decorrelated into one hash (mark) join."""
        return True

    def spine(self, periods: Sequence[dt.date]) -> exp.Select:
        """Periods a fixed step apart (every calendar but a retail one's 4-4-5 months) as
        ``GENERATE_SERIES(first, last, INTERVAL step)``: a handful of nodes, where the
        portable ``VALUES`` list has three per period (a year of days: 1 000 nodes)."""
        step = series_step(periods)
        if step is None:
            return super().spine(periods)
        amount, unit = step
        series = exp.Anonymous(
            this="GENERATE_SERIES",
            expressions=[
                self.date_literal(periods[0]),
                self.date_literal(periods[-1]),
                exp.Interval(this=exp.Literal.number(amount), unit=exp.var(unit)),
            ],
        )
        alias = exp.TableAlias(
            this=exp.Identifier(this="spine_values", quoted=False),
            columns=[exp.Identifier(this="p", quoted=False)],
        )
        period = exp.Cast(this=exp.column("p"), to=exp.DataType.build(exp.DataType.Type.DATE))
        return exp.Select(expressions=[exp.alias_(period, "period", copy=False)]).from_(
            exp.Table(this=series, alias=alias), copy=False
        )


def series_step(periods: Sequence[dt.date]) -> tuple[int, str] | None:
    """(amount, ``DAY`` or ``MONTH``) when each period is the previous one plus the same
    step, so that a series from the first to the last period gives exactly ``periods``;
    None otherwise. Months only between firsts of months, where adding months is exact
    (from the 31st it would clamp and drift)."""
    if len(periods) < 2:
        return None
    days = (periods[1] - periods[0]).days
    if days > 0 and all((b - a).days == days for a, b in itertools.pairwise(periods)):
        return days, "DAY"
    if any(p.day != 1 for p in periods):
        return None
    months = [p.year * 12 + p.month for p in periods]
    step = months[1] - months[0]
    if step > 0 and all(b - a == step for a, b in itertools.pairwise(months)):
        return step, "MONTH"
    return None
