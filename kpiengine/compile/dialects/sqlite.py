"""SQLite: no date type, no DATE_TRUNC, no column names on VALUES aliases, no percentile."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, as_double, int_literal
from kpiengine.compile.dialects.capabilities import native, rewritten
from kpiengine.compile.dialects.rounding import exact_round


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
        "round_ties": rewritten(
            "ROUND rounds the decimal text (round(2.675, 2) is 2.68), adds 0.5 for 0 digits "
            "and ignores negative digits: built from + - * / and CAST AS INTEGER instead, "
            "DuckDB's rounding of the binary value (kpiengine/compile/dialects/rounding.py)",
            "https://www.sqlite.org/lang_corefunc.html#round",
        ),
    }

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # SQLite's ROUND(x, n) prints x with n decimals and reads it back, round(x) adds
        # 0.5 (0.49999999999999994 becomes 1), and negative digits count as 0. Its numbers
        # are doubles or integers (no DECIMAL): DuckDB's rounding of a double fits both.
        decimals = node.args.get("decimals")
        digits = 0 if decimals is None else int_literal(decimals)
        if digits is None:
            return node  # not from kpiengine: its digits are a checked literal
        return exact_round(node.this, digits, _whole)

    REWRITES = {exp.Round: _round}

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

    def date_rows(self, names: Sequence[str], rows: Sequence[Sequence[dt.date]]) -> exp.Select:
        # SQLite names VALUES columns column1, column2...: no alias list (dates are text)
        values = [
            exp.Tuple(expressions=[exp.Literal.string(d.isoformat()) for d in row]) for row in rows
        ]
        return exp.select(
            *(exp.alias_(exp.column(f"column{i + 1}"), name) for i, name in enumerate(names))
        ).from_(exp.Subquery(this=exp.Values(expressions=values)))


def _whole(value: exp.Expression) -> exp.Expression:
    """The whole part of a non-negative double below 2^52, as a double (SQLite's FLOOR
    and TRUNC exist only when it is built with its math functions)."""
    return as_double(exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.BIGINT)))
