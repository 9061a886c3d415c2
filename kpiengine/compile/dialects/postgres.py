"""PostgreSQL: where sqlglot's rendering is not valid or not equivalent.

Each rule here has a test in tests/test_postgres.py that runs sqlglot's plain rendering
on a real server and shows the error or the different number it prevents. Checked and
left to sqlglot (equivalent as rendered): PERCENTILE_CONT ... WITHIN GROUP, days_between
(whole days between the dates), TRUE/FALSE, division (CAST AS DOUBLE PRECISION / NULLIF),
DATE_TRUNC of a date (through timestamptz, the same date back in every time zone), window
frames, NULLS LAST (PostgreSQL's default for ascending order), string literals (with
``standard_conforming_strings`` on, which the connector sets).
"""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, as_double, int_literal, null_if_any_null
from kpiengine.compile.dialects.capabilities import rewritten
from kpiengine.compile.dialects.rounding import exact_round

_DOCS = "https://www.postgresql.org/docs/current"


def _numeric(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string:
        return value  # a number literal is integer or numeric already
    return exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DECIMAL))


def _trunc(value: exp.Expression) -> exp.Expression:
    """TRUNC(double precision): the whole part, a double."""
    return exp.Anonymous(this="TRUNC", expressions=[value])


class Rules(DialectRules):
    """PostgreSQL: ROUND and % on numeric, null-propagating GREATEST/LEAST."""

    # PostgreSQL runs the equivalence suite here (tests/test_postgres.py)
    CAPABILITIES = {
        "round_ties": rewritten(
            "no round(double precision, int), and a double cast to numeric keeps 15 digits "
            "(round(2.675, 2) would be 2.68): a double is rounded by its binary value in "
            "double arithmetic (kpiengine/compile/dialects/rounding.py), a numeric by ROUND",
            f"{_DOCS}/functions-math.html",
        ),
        "modulo": rewritten(
            "no % for double precision: computed on numeric", f"{_DOCS}/functions-math.html"
        ),
        "greatest_nulls": rewritten(
            "GREATEST/LEAST ignore NULL values; kpiengine's are NULL when an argument is",
            f"{_DOCS}/functions-conditional.html#FUNCTIONS-GREATEST-LEAST",
        ),
    }

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # PostgreSQL has round(numeric, int) but no round(double precision, int): ROUND of
        # an average or a ratio fails ("function round(double precision, integer) does
        # not exist"). Round the value as numeric and give back a double, as DuckDB does.
        # A double cast to numeric keeps only 15 significant digits (2.675 becomes
        # exactly 2.675, which rounds to 2.68), where DuckDB rounds the binary value
        # (2.67499999…: 2.67): doubles get DuckDB's rounding in double arithmetic, other
        # numbers (numeric, integers) PostgreSQL's exact ROUND of numeric, as DuckDB's of
        # DECIMAL. pg_typeof is the type of the argument expression, the same on every row.
        decimals = node.args.get("decimals")
        rounded = as_double(exp.Round(this=_numeric(node.this.copy()), decimals=decimals))
        digits = 0 if decimals is None else int_literal(decimals)
        if digits is None:
            return rounded  # not from kpiengine: its digits are a checked literal
        kind = exp.Cast(
            this=exp.Anonymous(this="PG_TYPEOF", expressions=[node.this.copy()]),
            to=exp.DataType.build(exp.DataType.Type.TEXT),
        )
        is_double = exp.EQ(this=kind, expression=exp.Literal.string("double precision"))
        exact = exact_round(node.this, digits, _trunc)
        return exp.Case(ifs=[exp.If(this=is_double, true=exact)], default=rounded)

    @staticmethod
    def _mod(node: exp.Mod) -> exp.Expression:
        # `%` exists for integers and numeric, not for double precision ("operator does
        # not exist: double precision % integer"). numeric % numeric truncates like
        # DuckDB's fmod (the result has the sign of the dividend).
        return exp.Mod(this=_numeric(node.this), expression=_numeric(node.expression))

    # PostgreSQL's GREATEST/LEAST skip nulls; kpiengine's are null when an argument is
    REWRITES = {
        exp.Round: _round,
        exp.Mod: _mod,
        exp.Greatest: null_if_any_null,
        exp.Least: null_if_any_null,
    }
