"""Per-dialect SQL fixes on top of sqlglot.

sqlglot transpiles most of what we emit, but not everything is valid or equivalent on
every engine (e.g. it renders a month bucket for SQLite as ``TIMESTAMP_TRUNC(t, MONTH)``,
which SQLite does not have). Each engine whose rendering needs a fix gets a small
:class:`DialectRules` subclass; everything else uses the portable default.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from sqlglot import exp

DIALECTS = (
    "duckdb",
    "sqlite",
    "postgres",
    "bigquery",
    "snowflake",
    "spark",
    "databricks",
    "trino",
    "redshift",
    "tsql",
    "mysql",
)


_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
#: Words reserved in at least one supported dialect: quoted when used as a name.
RESERVED = frozenset(
    [
        "all",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "at",
        "between",
        "both",
        "by",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "cross",
        "current",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "delete",
        "desc",
        "distinct",
        "do",
        "drop",
        "else",
        "end",
        "except",
        "exists",
        "false",
        "fetch",
        "filter",
        "for",
        "foreign",
        "from",
        "full",
        "grant",
        "group",
        "having",
        "ilike",
        "in",
        "inner",
        "insert",
        "intersect",
        "interval",
        "into",
        "is",
        "join",
        "lateral",
        "leading",
        "left",
        "like",
        "limit",
        "natural",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "outer",
        "over",
        "partition",
        "primary",
        "qualify",
        "range",
        "references",
        "right",
        "rows",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "update",
        "user",
        "using",
        "values",
        "when",
        "where",
        "window",
        "with",
    ]
)


def identifier(name: str) -> exp.Identifier:
    """A user-given name, quoted only when it must be.

    Lower-case plain names stay unquoted so engines that fold case (Snowflake upper-cases
    unquoted names) still find tables created without quotes; anything else, and reserved
    words, are quoted so they are always read as names, never as SQL.
    """
    return exp.Identifier(this=name, quoted=name in RESERVED or not _PLAIN_IDENTIFIER.match(name))


def column_ref(name: str, table: str) -> exp.Column:
    return exp.Column(this=identifier(name), table=exp.to_identifier(table))


def table_ref(dotted: str, alias: str) -> exp.Table:
    """``schema.table`` (or ``table``) with an alias; each part is an identifier."""
    *schema, name = dotted.split(".")
    return exp.Table(
        this=identifier(name),
        db=identifier(schema[-1]) if schema else None,
        catalog=identifier(schema[-2]) if len(schema) > 1 else None,
        alias=exp.TableAlias(this=exp.to_identifier(alias)),
    )


def as_double(value: exp.Expression) -> exp.Expression:
    """``CAST(value AS DOUBLE)``, once: a value already cast to double is kept."""
    double = exp.DataType.Type.DOUBLE
    if isinstance(value, exp.Cast) and value.to.is_type(double):
        return value
    return exp.Cast(this=value, to=exp.DataType.build(double))


def null_if_any_null(node: exp.Greatest | exp.Least) -> exp.Expression:
    """GREATEST/LEAST that are null when any argument is null, as kpiengine's are (and as
    sqlglot renders them for DuckDB and SQLite), on engines whose own skip nulls."""
    if node.args.get("ignore_nulls") or not node.expressions:
        return node
    args = [node.this, *node.expressions]
    nullable = [a for a in args if not isinstance(a, exp.Literal)]
    if not nullable:
        return node
    any_null = exp.or_(*(exp.Is(this=a.copy(), expression=exp.Null()) for a in nullable))
    kept = type(node)(this=args[0], expressions=args[1:])
    return exp.Case(ifs=[exp.If(this=any_null, true=exp.Null())], default=kept)


def _date_type() -> exp.DataType:
    return exp.DataType.build(exp.DataType.Type.DATE)


class DialectRules:
    """Portable rendering (standard SQL that sqlglot transpiles correctly)."""

    name = "duckdb"

    def __init__(self, name: str) -> None:
        self.name = name

    # -- literals -----------------------------------------------------------------------
    def date_literal(self, value: dt.date) -> exp.Expression:
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=_date_type())

    def time_bound(self, value: dt.date, column_type: str) -> exp.Expression:
        """A range bound compared with a time column of the given type."""
        if column_type == "date":
            return self.date_literal(value)
        return exp.Cast(
            this=exp.Literal.string(f"{value.isoformat()} 00:00:00"),
            to=exp.DataType.build(exp.DataType.Type.TIMESTAMP),
        )

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        """Continuous (interpolated) percentile of ``value``: PERCENTILE_CONT."""
        return exp.WithinGroup(
            this=exp.PercentileCont(this=fraction),
            expression=exp.Order(expressions=[exp.Ordered(this=value, nulls_first=False)]),
        )

    def to_double(self, value: exp.Expression) -> exp.Expression:
        return as_double(value)

    def natural_order(self, value: exp.Expression) -> exp.Ordered:
        """Ascending order, nulls where the engine puts them anyway, for a key that is never
        null (the period, inside windows). Left unsaid, sqlglot would ask for NULLS LAST,
        which it emulates with an extra sort key outside windows but cannot inside a
        window frame on MySQL or T-SQL (it warns and drops it)."""
        from sqlglot.dialects.dialect import Dialect

        small = Dialect.get_or_raise(self.name).NULL_ORDERING == "nulls_are_small"
        return exp.Ordered(this=value, nulls_first=small)

    # -- periods ------------------------------------------------------------------------
    def bucket(
        self, value: exp.Expression, grain: str, fiscal_year_start: int, week_start: str
    ) -> exp.Expression:
        """The start date of the period holding ``value``."""
        if grain == "day":
            return exp.Cast(this=value, to=_date_type())
        shift = 0
        if grain in ("quarter", "year"):
            shift = fiscal_year_start - 1
        elif grain == "week" and week_start == "sunday":
            shift = -1  # in days: Sunday-started weeks are Monday weeks moved back a day
        unit = "DAY" if grain == "week" else "MONTH"
        if shift:
            value = self.add(value, -shift, unit)
        truncated = self.truncate(value, grain)
        if shift:
            truncated = self.add(truncated, shift, unit)
        return exp.Cast(this=truncated, to=_date_type())

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        return exp.TimestampTrunc(this=value, unit=exp.var(grain.upper()))

    def add(self, value: exp.Expression, amount: int, unit: str) -> exp.Expression:
        return exp.DateAdd(this=value, expression=exp.Literal.number(amount), unit=exp.var(unit))

    def modulo(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        """``left % right``, truncated like DuckDB (sign of the left operand)."""
        return exp.Mod(this=left, expression=right)

    #: Node type → rewrite, applied by :meth:`finish` wherever such a node appears: for
    #: operators and functions an engine renders wrongly (empty for the portable default).
    REWRITES: ClassVar[dict[type[exp.Expression], Callable[[Any], exp.Expression]]] = {}

    def finish(self, query: exp.Select) -> exp.Select:
        """The whole statement, last: apply :attr:`REWRITES`, deepest node first, so a
        rewritten node never holds a node still to rewrite."""
        if not self.REWRITES:
            return query
        for node in reversed(list(query.find_all(*self.REWRITES))):
            rewrite = next(f for kind, f in self.REWRITES.items() if isinstance(node, kind))
            node.replace(rewrite(node))
        return query

    def spine(self, periods: Sequence[dt.date]) -> exp.Select:
        """A query with one row per period, column ``period``."""
        rows = [exp.Tuple(expressions=[exp.Literal.string(p.isoformat())]) for p in periods]
        values = exp.Values(
            expressions=rows,
            alias=exp.TableAlias(
                this=exp.to_identifier("spine_values"), columns=[exp.to_identifier("p")]
            ),
        )
        return exp.select(
            exp.alias_(exp.Cast(this=exp.column("p"), to=_date_type()), "period")
        ).from_(values)


#: dialect → module of its rules (a subclass of DialectRules named ``Rules``), imported
#: only when that dialect is compiled for.
_RULE_MODULES = {
    "sqlite": "kpiengine.compile.dialects.sqlite",
    "postgres": "kpiengine.compile.dialects.postgres",
    "spark": "kpiengine.compile.dialects.spark",
    "databricks": "kpiengine.compile.dialects.spark",
}


def rules_for(dialect: str) -> DialectRules:
    module = _RULE_MODULES.get(dialect)
    if module is None:
        return DialectRules(dialect)
    import importlib

    return importlib.import_module(module).Rules(dialect)
