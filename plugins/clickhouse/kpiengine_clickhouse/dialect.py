"""ClickHouse: where sqlglot's rendering is not valid or not equivalent to DuckDB's.

Each rule has a test in tests/test_clickhouse.py that runs the rendering without the
rule on chDB and shows the error or the different number it prevents. The connection
sets ``join_use_nulls=1`` (the missing side of an outer join is NULL, not 0),
``aggregate_functions_null_for_empty=1`` and ``cast_keep_nullable=1`` (see
:mod:`kpiengine_clickhouse.connection`); the rules below assume them.

Checked and left to sqlglot (equivalent as rendered, with those settings): period
buckets (``CAST(dateTrunc('MONTH', t) AS Nullable(DATE))``, ``DATE_ADD`` shifts), true
division (``CAST(x AS Nullable(Float64)) / nullIf(y, 0)``), ``COUNT(DISTINCT x)``
(``uniqExact``, exact), window frames, ``lag``, the ``UNION ALL`` spine, ``IS NOT DISTINCT
FROM`` joins, ``NULLS LAST``.
"""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import (
    DialectRules,
    as_double,
    int_literal,
    null_if_any_null,
    parenthesized,
)


class Rules(DialectRules):
    """ClickHouse: exact interpolated percentiles, DuckDB's ROUND of doubles,
    null-propagating GREATEST/LEAST, explicit names for selected columns."""

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # sqlglot renders PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) for ClickHouse as
        # quantile(p)(x): a sampled estimate (reservoir of 8 192 values), not the exact
        # value beyond 8 192 rows. quantileExactInclusive interpolates linearly between
        # the two closest values, as PERCENTILE_CONT does, and skips nulls.
        return exp.ParameterizedAgg(
            this="quantileExactInclusive", expressions=[fraction], params=[value]
        )

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # ClickHouse rounds a Float64 half to even (round(2.5) is 2, round(0.125, 2) is
        # 0.12). DuckDB (2.0) rounds the exact binary value, half away from zero: 0.125
        # is 0.13, but 2.675 (2.67499999999999982...) is 2.67. Rebuilt: y = x * 10^n
        # rounded half away from zero, except where y is an exact half only because the
        # product was rounded: the product's exact error (Dekker's TwoProduct, in plain
        # double arithmetic) says on which side of the half x * 10^n really is.
        decimals = node.args.get("decimals")
        digits = int_literal(decimals)
        value = as_double(node.this.copy())
        if decimals is not None and digits is None:
            return node  # a computed number of digits: ClickHouse's round as it is
        if not digits:
            return _half_away(value)
        scale = 10.0 ** abs(digits)
        if digits < 0:  # x / 10^n: ties of an inexact quotient are not corrected
            scaled = exp.Div(this=parenthesized(value), expression=_number(scale))
            return exp.Mul(this=parenthesized(_half_away(scaled)), expression=_number(scale))
        return exp.Div(this=parenthesized(_exact_round(value, scale)), expression=_number(scale))

    # ClickHouse's greatest/least skip nulls (since 24.12); kpiengine's are null
    REWRITES = {
        exp.Round: _round,
        exp.Greatest: null_if_any_null,
        exp.Least: null_if_any_null,
    }

    def finish(self, query: exp.Select) -> exp.Select:
        query = super().finish(query)
        # With two or more joins, ClickHouse names a selected `grid.period` "grid.period",
        # not "period", so an outer `l0.period` is unknown (UNKNOWN_IDENTIFIER): every
        # selected column gets its own name as an explicit alias.
        for select in query.find_all(exp.Select):
            select.set(
                "expressions",
                [
                    exp.alias_(e, e.name) if isinstance(e, exp.Column) and e.name else e
                    for e in select.expressions
                ],
            )
        return query


def _half_away(value: exp.Expression) -> exp.Expression:
    """``value`` rounded to a whole number, halves away from zero (C's round)."""
    whole = exp.Anonymous(this="trunc", expressions=[parenthesized(value.copy())])
    fraction = exp.Abs(this=exp.Sub(this=parenthesized(value.copy()), expression=whole.copy()))
    step = exp.Anonymous(this="sign", expressions=[parenthesized(value.copy())])
    return exp.If(
        this=exp.GTE(this=fraction, expression=exp.Literal.number("0.5")),
        true=exp.Add(this=whole.copy(), expression=step),
        false=whole,
    )


def _exact_round(value: exp.Expression, scale: float) -> exp.Expression:
    """``value * scale`` rounded to a whole number as if the product were exact, halves
    away from zero. Correct while ``value * scale`` stays below 2**52."""
    product = exp.Mul(this=parenthesized(value.copy()), expression=_number(scale))
    error = _product_error(value, scale, product)
    whole = exp.Anonymous(this="trunc", expressions=[product.copy()])
    fraction = exp.Abs(this=exp.Sub(this=parenthesized(product.copy()), expression=whole.copy()))
    is_half = exp.EQ(this=fraction, expression=exp.Literal.number("0.5"))
    smaller = exp.LT(
        this=exp.Mul(this=parenthesized(error), expression=parenthesized(product.copy())),
        expression=exp.Literal.number(0),
    )
    return exp.If(
        this=exp.And(this=is_half, expression=smaller), true=whole, false=_half_away(product)
    )


def _product_error(value: exp.Expression, scale: float, product: exp.Expression) -> exp.Expression:
    """The exact ``value * scale - product`` (Dekker's TwoProduct): ``value`` is split
    into two 26-bit halves in SQL, ``scale`` here."""
    split = 134217729.0  # 2**27 + 1
    big = exp.Mul(this=_number(split), expression=parenthesized(value.copy()))
    high = exp.Sub(
        this=big, expression=exp.Paren(this=exp.Sub(this=big.copy(), expression=value.copy()))
    )
    low = exp.Sub(this=parenthesized(value.copy()), expression=exp.Paren(this=high.copy()))
    scaled_big = split * scale
    scale_high = scaled_big - (scaled_big - scale)
    scale_low = scale - scale_high
    terms = [
        exp.Sub(
            this=exp.Mul(this=exp.Paren(this=high.copy()), expression=_number(scale_high)),
            expression=parenthesized(product.copy()),
        ),
        exp.Mul(this=exp.Paren(this=high.copy()), expression=_number(scale_low)),
        exp.Mul(this=exp.Paren(this=low.copy()), expression=_number(scale_high)),
        exp.Mul(this=exp.Paren(this=low.copy()), expression=_number(scale_low)),
    ]
    total = exp.Paren(this=terms[0])
    for term in terms[1:]:
        total = exp.Paren(this=exp.Add(this=total, expression=term))
    return total


def _number(value: float) -> exp.Expression:
    """A Float64 literal that reads back as exactly ``value``."""
    text = repr(float(value))
    literal = exp.Literal.number(text.lstrip("-"))
    return exp.Neg(this=literal) if text.startswith("-") else literal
