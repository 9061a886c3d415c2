"""DuckDB's ``ROUND(double, n)`` in plain double arithmetic, for engines whose own differs.

DuckDB (2.0) rounds a DOUBLE ``x`` to ``n`` decimals by its exact binary value, halves
away from zero: ``round(2.675, 2)`` is 2.67 (2.675 is 2.67499999999999982…), ``round(0.125,
2)`` is 0.13 (an exact half), ``round(1250, -2)`` is 1300. Measured on DuckDB 2.0.1
(tests/test_round_exact.py checks this model against DuckDB on random doubles):

- ``n > 0``: ``s = x * 10^n`` in double; while ``|s| < 2^52``, ``s`` rounded half away from
  zero, except that an ``s`` which is an exact half only because the product was rounded
  goes to the side the exact product ``x·10^n`` is on; then ``/ 10^n``. From ``2^52`` on,
  ``s`` is whole and the result is ``s / 10^n`` (which need not be ``x``). When ``x * 10^n``
  overflows, ``x`` itself. Past ``n = 22``, where ``10^n`` is no double, DuckDB decides
  a half as if multiplying by the next double above ``10^n`` (measured: ``_tie_factor``).
- ``n <= 0``: ``q = x / 10^-n`` rounded half away from zero, then ``* 10^-n``. A quotient
  by a power of ten never lands on a half it is not exactly (2^⌊log₂ m⌋ > m/2, so a
  neighbour of ``x`` moves ``x/m`` by more than half a step there): no correction needed.

SQLite (decimal text, and the ``+0.5`` of ``round(x)``), PostgreSQL (only numeric ROUND:
15 significant digits) and Spark (decimal text, HALF_UP) each give other numbers on some
values, so their rules build this expression instead. Every operation in it is an IEEE
double operation every engine performs exactly alike: ``+ - * /``, comparisons, ``ABS``,
and a whole part (the dialect's ``whole``: truncation of a non-negative double below 2^52).
The exact product error is Dekker's TwoProduct (Veltkamp split of ``x`` in SQL, of ``10^n``
here), so no fused multiply-add or wider type is needed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

from sqlglot import exp

from kpiengine.compile.dialects import as_double, parenthesized

#: doubles from 2^52 on are whole: nothing left to round (and no half to tell apart)
WHOLE_FROM = 2**52
#: Veltkamp's splitter for doubles: 2^27 + 1
_SPLIT = 134217729.0
#: past ±308 digits 10^n is not a finite double: DuckDB gives x back (n > 0) or 0 (n < 0)
MAX_DIGITS = 308

Whole = Callable[[exp.Expression], exp.Expression]


def exact_round(value: exp.Expression, digits: int, whole: Whole) -> exp.Expression:
    """``value`` (any number; computed as a double) rounded to ``digits`` decimals the way
    DuckDB rounds a DOUBLE. ``whole(a)`` is the dialect's whole part of ``a`` (a
    non-negative double below 2^52), as a double."""
    x = as_double(value.copy())
    if digits > MAX_DIGITS:
        return x
    if digits < -MAX_DIGITS:
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=x, expression=exp.Null()), true=exp.Null())],
            default=_number(0.0),
        )
    if digits <= 0:
        return _round_quotient(x, digits, whole)
    return _round_product(x, digits, whole)


def reference_round(x: float, digits: int) -> float:
    """The same rule in Python: what every dialect's SQL must return (tests use it, and
    compare it with DuckDB)."""
    if math.isnan(x) or math.isinf(x):
        return x
    if digits > MAX_DIGITS:
        return x
    if digits < -MAX_DIGITS:
        return 0.0
    if digits <= 0:
        scale = _power_of_ten(-digits)
        q = x / scale
        return _half_away(q, 0.0) * scale if abs(q) < WHOLE_FROM else q * scale
    scale = _power_of_ten(digits)
    if abs(x) > _largest_factor(scale):
        return x
    s = x * scale
    if abs(s) >= WHOLE_FROM:
        return s / scale
    return _half_away(s, _product_error_py(x, _tie_factor(scale), s)) / scale


# -- n <= 0 -------------------------------------------------------------------------------


def _round_quotient(x: exp.Expression, digits: int, whole: Whole) -> exp.Expression:
    scale = _power_of_ten(-digits)
    q = x if digits == 0 else exp.Div(this=parenthesized(x), expression=_number(scale))
    rounded = _half_away_sql(q, None, whole)
    if digits:
        rounded = exp.Mul(this=exp.Paren(this=rounded), expression=_number(scale))
    small = exp.LT(this=exp.Abs(this=q.copy()), expression=exp.Literal.number(WHOLE_FROM))
    big = q.copy()
    if digits:
        big = exp.Mul(this=parenthesized(big), expression=_number(scale))
    ifs = [exp.If(this=small, true=rounded)]
    if digits:
        # below half a step the result is 0, and x / 10^k is not computed: PostgreSQL
        # raises an underflow error for a quotient of 0 from a non-zero subnormal x
        tiny = exp.LT(this=exp.Abs(this=x.copy()), expression=_number(scale / 2))
        ifs.insert(0, exp.If(this=tiny, true=_number(0.0)))
    return exp.Case(ifs=ifs, default=big)


# -- n > 0 --------------------------------------------------------------------------------


def _round_product(x: exp.Expression, digits: int, whole: Whole) -> exp.Expression:
    scale = _power_of_ten(digits)
    s = exp.Mul(this=parenthesized(x.copy()), expression=_number(scale))
    overflows = exp.GT(this=exp.Abs(this=x.copy()), expression=_number(_largest_factor(scale)))
    small = exp.LT(this=exp.Abs(this=s.copy()), expression=exp.Literal.number(WHOLE_FROM))
    error = _product_error_sql(x, _tie_factor(scale), s)
    rounded = exp.Div(
        this=exp.Paren(this=_half_away_sql(s, error, whole)), expression=_number(scale)
    )
    return exp.Case(
        ifs=[exp.If(this=overflows, true=x.copy()), exp.If(this=small, true=rounded)],
        default=exp.Div(this=s.copy(), expression=_number(scale)),
    )


def _half_away_sql(
    value: exp.Expression, error: exp.Expression | None, whole: Whole
) -> exp.Expression:
    """``value`` (below 2^52) to a whole number, halves away from zero; with ``error`` (the
    exact value minus ``value``), a half whose exact value is nearer zero goes down."""
    size = exp.Abs(this=value.copy())
    truncated = whole(size.copy())
    fraction = exp.Sub(this=size.copy(), expression=truncated.copy())
    half = exp.Literal.number("0.5")
    up: exp.Expression = exp.GT(this=fraction.copy(), expression=half.copy())
    tie: exp.Expression = exp.EQ(this=fraction, expression=half)
    if error is not None:
        # the exact value is nearer zero when the error has the other sign than the value
        nearer_zero = exp.LT(
            this=exp.Mul(this=exp.Paren(this=error), expression=parenthesized(value.copy())),
            expression=exp.Literal.number(0),
        )
        tie = exp.And(this=tie, expression=exp.Not(this=exp.Paren(this=nearer_zero)))
    step = exp.Case(
        ifs=[exp.If(this=exp.Or(this=up, expression=exp.Paren(this=tie)), true=_one())],
        default=exp.Literal.number(0),
    )
    magnitude = exp.Paren(this=exp.Add(this=truncated, expression=step))
    negative = exp.LT(this=value.copy(), expression=exp.Literal.number(0))
    sign = exp.Case(ifs=[exp.If(this=negative, true=exp.Neg(this=_one()))], default=_one())
    return exp.Mul(this=magnitude, expression=sign)


def _one() -> exp.Expression:
    return exp.Literal.number(1)


def _product_error_sql(x: exp.Expression, scale: float, product: exp.Expression) -> exp.Expression:
    """The exact ``x * scale - product`` (Dekker's TwoProduct): ``x`` is split into two
    halves of 26 bits in SQL, ``scale`` here; every partial product and sum is exact."""
    big = exp.Mul(this=_number(_SPLIT), expression=parenthesized(x.copy()))
    rest = exp.Paren(this=exp.Sub(this=big.copy(), expression=x.copy()))
    high = exp.Paren(this=exp.Sub(this=big, expression=rest))
    low = exp.Paren(this=exp.Sub(this=parenthesized(x.copy()), expression=high.copy()))
    scale_high, scale_low = _split(scale)
    total: exp.Expression = exp.Sub(
        this=exp.Mul(this=high.copy(), expression=_number(scale_high)),
        expression=parenthesized(product.copy()),
    )
    terms = [(high, scale_low), (low, scale_high), (low, scale_low)]
    for part, factor in terms:
        if factor:
            total = exp.Add(
                this=exp.Paren(this=total),
                expression=exp.Mul(this=part.copy(), expression=_number(factor)),
            )
    return total


# -- the same in Python -------------------------------------------------------------------


def _half_away(value: float, error: float) -> float:
    size = abs(value)
    truncated = float(math.trunc(size))
    fraction = size - truncated
    up = fraction > 0.5 or (fraction == 0.5 and not error * value < 0)
    magnitude = truncated + (1 if up else 0)
    return magnitude * (-1 if value < 0 else 1)


def _product_error_py(x: float, scale: float, product: float) -> float:
    big = _SPLIT * x
    high = big - (big - x)
    low = x - high
    scale_high, scale_low = _split(scale)
    total = high * scale_high - product
    for part, factor in ((high, scale_low), (low, scale_high), (low, scale_low)):
        if factor:
            total = total + part * factor
    return total


# -- constants ----------------------------------------------------------------------------


def _power_of_ten(n: int) -> float:
    """10^n as the nearest double (what DuckDB's ``std::pow(10, n)`` gives)."""
    return 10.0**n


def _tie_factor(scale: float) -> float:
    """What decides the side of a half: ``x * factor`` against the rounded ``x * 10^n``.
    Up to 10^22, the exact power of ten; beyond, where 10^n is no double, DuckDB 2.0.1
    decides as with the next double above it (measured on 6 000 halves, n = 23..30)."""
    return scale if scale <= 1e22 else math.nextafter(scale, math.inf)


def _split(value: float) -> tuple[float, float]:
    """Veltkamp's split: ``value = high + low``, each with at most 26 significant bits."""
    big = _SPLIT * value
    high = big - (big - value)
    return high, value - high


def _largest_factor(scale: float) -> float:
    """The largest double ``x`` with a finite ``x * scale``."""
    x = sys.float_info.max / scale
    while math.isfinite(math.nextafter(x, math.inf) * scale):
        x = math.nextafter(x, math.inf)
    while not math.isfinite(x * scale):
        x = math.nextafter(x, 0.0)
    return x


def _number(value: float) -> exp.Expression:
    """A literal that reads back as exactly the double ``value`` (shortest repr)."""
    text = repr(float(value))
    literal = exp.Literal.number(text.lstrip("-"))
    return exp.Neg(this=literal) if text.startswith("-") else literal
