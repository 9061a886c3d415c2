"""SQLite: no date type, no DATE_TRUNC, no column names on VALUES aliases, no percentile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from kpiengine.dialects import DialectRules


class Rules(DialectRules):
    """SQLite has no date type, no DATE_TRUNC and no column names on VALUES aliases."""

    def date_literal(self, value: dt.date) -> exp.Expression:
        return exp.Literal.string(value.isoformat())

    def time_bound(self, value: dt.date, column_type: str) -> exp.Expression:
        # ISO text compares correctly with ISO dates and timestamps stored as text.
        return exp.Literal.string(value.isoformat())

    def bucket(
        self, value: exp.Expression, grain: str, fiscal_year_start: int, week_start: str
    ) -> exp.Expression:
        day = exp.Anonymous(this="DATE", expressions=[value])
        if grain == "day":
            return day
        if grain == "week":
            # back 6 days, then forward to the first Monday (Sunday): the week's first day
            weekday = "weekday 1" if week_start == "monday" else "weekday 0"
            return exp.Anonymous(
                this="DATE",
                expressions=[value, exp.Literal.string("-6 days"), exp.Literal.string(weekday)],
            )
        months = {"month": 1, "quarter": 3, "year": 12}[grain]
        shift = fiscal_year_start - 1 if grain in ("quarter", "year") else 0
        # month index since year 0, shifted to the fiscal year, truncated to the grain
        year = exp.Cast(
            this=exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string("%Y"), value]),
            to=exp.DataType.build(exp.DataType.Type.INT),
        )
        month = exp.Cast(
            this=exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string("%m"), value]),
            to=exp.DataType.build(exp.DataType.Type.INT),
        )
        index = exp.Sub(
            this=exp.Add(
                this=exp.Mul(this=year, expression=exp.Literal.number(12)),
                expression=exp.Sub(this=month, expression=exp.Literal.number(1)),
            ),
            expression=exp.Literal.number(shift),
        )
        index = exp.Paren(this=index)
        start = exp.Add(
            this=exp.Sub(
                this=index, expression=exp.Mod(this=index, expression=exp.Literal.number(months))
            ),
            expression=exp.Literal.number(shift),
        )
        start = exp.Paren(this=start)
        # months since 0000-01: add to the first day of year 0 is not portable in SQLite,
        # so build 'YYYY-MM-01' text from the index.
        year_part = exp.Cast(
            this=exp.Div(this=start, expression=exp.Literal.number(12)),
            to=exp.DataType.build(exp.DataType.Type.INT),
        )
        month_part = exp.Add(
            this=exp.Mod(this=start, expression=exp.Literal.number(12)),
            expression=exp.Literal.number(1),
        )
        return exp.Anonymous(
            this="PRINTF", expressions=[exp.Literal.string("%04d-%02d-01"), year_part, month_part]
        )

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # registered on every connection by the SQLite connector (builtin/sqlite.py)
        return exp.Anonymous(this="kpi_percentile_cont", expressions=[value, fraction])

    def spine(self, periods: Sequence[dt.date]) -> exp.Select:
        rows = [exp.Tuple(expressions=[exp.Literal.string(p.isoformat())]) for p in periods]
        return exp.select(exp.alias_(exp.column("column1"), "period")).from_(
            exp.Subquery(this=exp.Values(expressions=rows))
        )
