"""SQLite: no date type, no DATE_TRUNC, no column names on VALUES aliases, no percentile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules
from kpiengine.compile.dialects.capabilities import native, rewritten


class Rules(DialectRules):
    """SQLite has no date type, no DATE_TRUNC and no column names on VALUES aliases."""

    # SQLite runs the equivalence suite here (tests/test_engines.py)
    CAPABILITIES = {
        "percentile_cont": rewritten(
            "no percentile function: kpi_percentile_cont, which kpiengine's SQLite "
            "connector registers on every connection",
            "https://www.sqlite.org/lang_aggfunc.html",
        ),
        "period_buckets": rewritten(
            "no DATE_TRUNC: DATE(t, 'start of month', '-n months')",
            "https://www.sqlite.org/lang_datefunc.html",
        ),
        "week_buckets": rewritten(
            "no DATE_TRUNC: DATE(t, '-6 days', 'weekday 1')",
            "https://www.sqlite.org/lang_datefunc.html",
        ),
        "modulo": rewritten(
            "% truncates both operands to integers: a - b * CAST(a / b AS INTEGER)",
            "https://www.sqlite.org/lang_expr.html#operators",
        ),
        "greatest_nulls": native(
            "multi-argument MAX/MIN return NULL if any argument is NULL",
            "https://www.sqlite.org/lang_corefunc.html#max_scalar",
        ),
    }

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
        start_of_month = exp.Literal.string("start of month")
        if grain == "month":
            return exp.Anonymous(this="DATE", expressions=[value, start_of_month])
        # quarters and years: back to the first month of the (fiscal) period
        size = 3 if grain == "quarter" else 12
        month = exp.Cast(
            this=exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string("%m"), value]),
            to=exp.DataType.build(exp.DataType.Type.INT),
        )
        back = exp.Mod(
            this=exp.Paren(
                this=exp.Add(
                    this=exp.Sub(this=month, expression=exp.Literal.number(fiscal_year_start)),
                    expression=exp.Literal.number(12),
                )
            ),
            expression=exp.Literal.number(size),
        )
        modifier = exp.DPipe(
            this=exp.DPipe(this=exp.Literal.string("-"), expression=exp.Paren(this=back)),
            expression=exp.Literal.string(" months"),
        )
        return exp.Anonymous(this="DATE", expressions=[value, start_of_month, modifier])

    def modulo(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        # SQLite's % truncates both operands to integers first (7.5 % 2 is 1.0, not 1.5)
        quotient = exp.Cast(
            this=exp.Div(this=left.copy(), expression=right.copy()),
            to=exp.DataType.build(exp.DataType.Type.INT),
        )
        return exp.Paren(
            this=exp.Sub(this=left, expression=exp.Mul(this=right, expression=quotient))
        )

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # registered on every connection by the SQLite connector (builtin/sqlite.py)
        return exp.Anonymous(this="kpi_percentile_cont", expressions=[value, fraction])

    def spine(self, periods: Sequence[dt.date]) -> exp.Select:
        rows = [exp.Tuple(expressions=[exp.Literal.string(p.isoformat())]) for p in periods]
        return exp.select(exp.alias_(exp.column("column1"), "period")).from_(
            exp.Subquery(this=exp.Values(expressions=rows))
        )
