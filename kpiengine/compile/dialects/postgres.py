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

from kpiengine.compile.dialects import DialectRules, as_double, null_if_any_null
from kpiengine.compile.dialects.capabilities import rewritten

_DOCS = "https://www.postgresql.org/docs/current"


def _numeric(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string:
        return value  # a number literal is integer or numeric already
    return exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DECIMAL))


class Rules(DialectRules):
    """PostgreSQL: ROUND and % on numeric, null-propagating GREATEST/LEAST."""

    # PostgreSQL runs the equivalence suite here (tests/test_postgres.py)
    CAPABILITIES = {
        "round_ties": rewritten(
            "no round(double precision, int): rounded as numeric, given back as a double",
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
        decimals = node.args.get("decimals")
        rounded = exp.Round(this=_numeric(node.this), decimals=decimals)
        return as_double(rounded)

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
