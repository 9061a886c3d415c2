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


def _numeric(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string:
        return value  # a number literal is integer or numeric already
    return exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DECIMAL))


class Rules(DialectRules):
    """PostgreSQL: ROUND and % on numeric, null-propagating GREATEST/LEAST."""

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
