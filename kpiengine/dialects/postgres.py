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

from kpiengine.dialects import DialectRules


def _numeric(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string:
        return value  # a number literal is integer or numeric already
    return exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DECIMAL))


def _double(value: exp.Expression) -> exp.Expression:
    return exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DOUBLE))


class Rules(DialectRules):
    """PostgreSQL: ROUND and % on numeric, null-propagating GREATEST/LEAST."""

    def finish(self, query: exp.Select) -> exp.Select:
        # deepest first, so a rewritten node never holds a node still to rewrite
        nodes = list(query.find_all(exp.Round, exp.Mod, exp.Greatest, exp.Least))
        for node in reversed(nodes):
            if isinstance(node, exp.Round):
                node.replace(self._round(node))
            elif isinstance(node, exp.Mod):
                node.replace(self._mod(node))
            else:
                node.replace(self._greatest_least(node))  # type: ignore[arg-type]
        return query

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # PostgreSQL has round(numeric, int) but no round(double precision, int): ROUND of
        # an average or a ratio fails ("function round(double precision, integer) does
        # not exist"). Round the value as numeric and give back a double, as DuckDB does.
        decimals = node.args.get("decimals")
        rounded = exp.Round(this=_numeric(node.this), decimals=decimals)
        return _double(rounded)

    @staticmethod
    def _mod(node: exp.Mod) -> exp.Expression:
        # `%` exists for integers and numeric, not for double precision ("operator does
        # not exist: double precision % integer"). numeric % numeric truncates like
        # DuckDB's fmod (the result has the sign of the dividend).
        return exp.Mod(this=_numeric(node.this), expression=_numeric(node.expression))

    @staticmethod
    def _greatest_least(node: exp.Greatest | exp.Least) -> exp.Expression:
        # PostgreSQL's GREATEST/LEAST skip nulls; kpiengine's (as rendered for DuckDB,
        # SQLite, BigQuery, Snowflake) are null when any argument is null.
        if node.args.get("ignore_nulls") or not node.expressions:
            return node
        args = [node.this, *node.expressions]
        nullable = [a for a in args if not isinstance(a, exp.Literal)]
        if not nullable:
            return node
        any_null = exp.or_(*(exp.Is(this=a.copy(), expression=exp.Null()) for a in nullable))
        kept = type(node)(this=args[0], expressions=args[1:])
        return exp.Case(ifs=[exp.If(this=any_null, true=exp.Null())], default=kept)
