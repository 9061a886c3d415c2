"""Dialects: per-dialect SQL fixes on top of sqlglot, and the registry of dialects.

sqlglot transpiles most of what we emit, but not everything is valid or equivalent on
every engine (e.g. it renders a month bucket for SQLite as ``TIMESTAMP_TRUNC(t, MONTH)``,
which SQLite does not have). Each engine whose rendering needs a fix gets a small
:class:`DialectRules` subclass; everything else uses the portable default.

A dialect is registered through the ``kpiengine_dialects`` hook as a :class:`DialectSpec`
(name, sqlglot dialect, rules, engine type names); the built-in ones below register
through the same hook (``kpiengine.plugins.builtin``), so a plugin can add ClickHouse the
way DuckDB is added. ``kpi compile --dialect`` and the conformance kit accept any
registered dialect.

Each rules class also has a capability table (``CAPABILITIES``, see
:mod:`kpiengine.compile.dialects.capabilities`): what the engine does natively, what the
rules rewrite, and what it cannot express at all, which is refused (KPI404) rather than
compiled into SQL that fails or gives another number. docs/dialects.md is generated from
these tables.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from kpiengine.compile.dialects.capabilities import NATIVE, Support

if TYPE_CHECKING:
    from sqlglot.dialects.dialect import Dialect

    from kpiengine.plugins.manager import PluginHost

#: The built-in dialects, in the order ``kpi compile --help`` and the golden tests use.
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


def parenthesized(value: exp.Expression) -> exp.Expression:
    """``value`` wrapped in parentheses when it is an operation (``a + b``, ``-a``), so a
    rewrite that multiplies or divides it keeps its meaning."""
    if isinstance(value, exp.Binary | exp.Neg):
        return exp.Paren(this=value)
    return value


def int_literal(value: exp.Expression | None) -> int | None:
    """The value of an integer literal, also a negative one (``-1`` is ``Neg(1)``)."""
    sign = 1
    if isinstance(value, exp.Neg):
        sign, value = -1, value.this
    if isinstance(value, exp.Literal) and value.is_int:
        return sign * int(value.to_py())
    return None


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


class DialectName(str):
    """A dialect's name as ``FunctionSpec.sql(args, dialect)`` receives it: a plain
    ``str`` (``dialect == "clickhouse"`` works, a plugin's dialect too) that also carries
    the dialect's :class:`DialectRules` as ``rules``, so that a function asks the rules of
    the dialect being compiled for (``median`` asks ``rules.percentile``) without a
    second lookup in a registry it cannot see."""

    rules: DialectRules

    def __new__(cls, name: str, rules: DialectRules) -> DialectName:
        made = super().__new__(cls, name)
        made.rules = rules
        return made


def _date_type() -> exp.DataType:
    return exp.DataType.build(exp.DataType.Type.DATE)


class DialectRules:
    """Portable rendering (standard SQL that sqlglot transpiles correctly)."""

    name = "duckdb"

    def __init__(self, name: str, sqlglot: str | type[Dialect] | None = None) -> None:
        #: the kpiengine dialect name: what ``FunctionSpec.sql`` receives (a str that
        #: also carries these rules: :class:`DialectName`)
        self.name: str = DialectName(name, self)
        #: the sqlglot dialect the statement is printed in (a plugin's dialect may be
        #: built on another one's: ``duckdb_strict`` prints as ``duckdb``)
        self.sqlglot: str | type[Dialect] = sqlglot if sqlglot is not None else name

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

        small = Dialect.get_or_raise(self.sqlglot).NULL_ORDERING == "nulls_are_small"
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

    def runs_exists_as_join(self) -> bool:
        """Whether the engine turns a correlated ``EXISTS`` in a select list into one hash
        join (DuckDB's mark join) rather than a subquery per row (PostgreSQL's SubPlan).
        Conversion KPIs use it then: on DuckDB it is ≈ 1.7× faster than the portable
        window pass over both tables (docs/performance.md). No by default: a per-row
        subquery over a table without an index would be quadratic."""
        return False

    #: Capability key → how this dialect supports it (absent: natively). A rewrite or a
    #: refusal cites the engine's documentation; docs/dialects.md shows the table.
    CAPABILITIES: ClassVar[Mapping[str, Support]] = {}

    def support(self, capability: str) -> Support:
        """How this dialect supports ``capability`` (a key of ``CAPABILITIES``)."""
        return self.CAPABILITIES.get(capability, NATIVE)

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

    def date_rows(self, names: Sequence[str], rows: Sequence[Sequence[dt.date]]) -> exp.Select:
        """A query with one row per item of ``rows`` and date columns ``names``: the
        bounds of each period's window (SPEC §13.1), like :meth:`spine` with more
        columns."""
        values = exp.Values(
            expressions=[
                exp.Tuple(expressions=[exp.Literal.string(d.isoformat()) for d in row])
                for row in rows
            ],
            alias=exp.TableAlias(
                this=exp.to_identifier("date_values"),
                columns=[exp.to_identifier(f"c{i}") for i in range(len(names))],
            ),
        )
        return exp.select(
            *(
                exp.alias_(exp.Cast(this=exp.column(f"c{i}"), to=_date_type()), name)
                for i, name in enumerate(names)
            )
        ).from_(values)


#: built-in dialect → module of its rules (a subclass of DialectRules named ``Rules``),
#: imported only when that dialect is compiled for.
_RULE_MODULES = {
    "duckdb": "kpiengine.compile.dialects.duckdb",
    "sqlite": "kpiengine.compile.dialects.sqlite",
    "postgres": "kpiengine.compile.dialects.postgres",
    "bigquery": "kpiengine.compile.dialects.bigquery",
    "snowflake": "kpiengine.compile.dialects.snowflake",
    "spark": "kpiengine.compile.dialects.spark",
    "databricks": "kpiengine.compile.dialects.spark",
    "trino": "kpiengine.compile.dialects.trino",
    "redshift": "kpiengine.compile.dialects.redshift",
    "tsql": "kpiengine.compile.dialects.tsql",
    "mysql": "kpiengine.compile.dialects.mysql",
}


@dataclass(frozen=True)
class DialectSpec:
    """A dialect kpiengine compiles for: what ``kpiengine_dialects`` returns.

    ``sqlglot`` is the sqlglot dialect the SQL is printed in: a name sqlglot knows
    (``"clickhouse"``) or a :class:`sqlglot.dialects.dialect.Dialect` subclass; it
    defaults to ``name``. ``rules`` is a :class:`DialectRules` subclass, or the dotted
    path of a module holding one named ``Rules`` (``"pkg.module"`` or
    ``"pkg.module:MyRules"``), imported only when that dialect is compiled for.

    ``type_names`` and ``unwrap`` extend the engine type names ``kpi validate
    --connector`` knows (KPI504): lower-case type name → category (``string``,
    ``integer``, ``number``, ``boolean``, ``date``, ``timestamp``, ``time``, ``binary``,
    ``nested``, ``other``), and wrapper types whose argument is the real type
    (ClickHouse's ``Nullable(Float64)``, ``LowCardinality(String)``).
    """

    name: str
    sqlglot: str | type[Dialect] = ""
    rules: type[DialectRules] | str = DialectRules
    type_names: Mapping[str, str] = field(default_factory=dict)
    unwrap: tuple[str, ...] = ()
    description: str = ""
    plugin: str = "builtin"

    @property
    def sqlglot_dialect(self) -> str | type[Dialect]:
        return self.sqlglot or self.name

    def make_rules(self) -> DialectRules:
        """The rules object for this dialect (imports a rules module named by path)."""
        rules = self.rules
        if isinstance(rules, str):
            module, _, attribute = rules.partition(":")
            rules = getattr(importlib.import_module(module), attribute or "Rules")
        if not (isinstance(rules, type) and issubclass(rules, DialectRules)):
            raise TypeError(f"dialect {self.name}: rules must be a DialectRules subclass")
        return rules(self.name, self.sqlglot_dialect)


def builtin_dialects() -> list[DialectSpec]:
    """The built-in dialects, returned by the built-in plugin's ``kpiengine_dialects``:
    registered like a plugin's, their rules modules imported only when compiled for."""
    return [DialectSpec(name, rules=_RULE_MODULES.get(name, DialectRules)) for name in DIALECTS]


def dialect_specs(host: PluginHost | None = None) -> dict[str, DialectSpec]:
    """Registered dialects by name, built-ins first. A name registered twice is a clash:
    the first keeps it, the other is reported (``kpi plugins``, a warning) and ignored."""
    from kpiengine.plugins.manager import PluginFailure, default_host

    host = host or default_host()
    found: dict[str, DialectSpec] = {}
    for spec in host.collect("kpiengine_dialects"):
        name = str(getattr(spec, "name", "")).lower()
        if name in found:
            owner = found[name].plugin
            host.report(
                PluginFailure(spec.plugin, f"dialect `{name}` clashes with {owner}; ignored")
            )
            continue
        found[name] = spec
    return found


def find_dialect(name: str, host: PluginHost | None = None) -> DialectSpec | None:
    """The registered dialect called ``name``; entry-point plugins are loaded only when
    the loaded plugins do not have it."""
    from kpiengine.plugins.manager import default_host

    host = host or default_host()
    specs = dialect_specs(host)
    if name.lower() not in specs and host.load_entry_points():
        specs = dialect_specs(host)
    return specs.get(name.lower())


def dialect_names(host: PluginHost | None = None) -> list[str]:
    """Every registered dialect name (built-ins in :data:`DIALECTS` order, then plugins')."""
    from kpiengine.plugins.manager import default_host

    host = host or default_host()
    host.load_entry_points()
    return list(dialect_specs(host))


def require_dialect(name: str, host: PluginHost | None = None) -> DialectSpec:
    """The registered dialect ``name``, or a UsageError listing the registered ones."""
    spec = find_dialect(name, host)
    if spec is None:
        from kpiengine.errors import UsageError

        known = ", ".join(dialect_names(host))
        raise UsageError(
            f"unknown dialect `{name}`; use one of {known} (a plugin may add more: "
            "see `kpi plugins`)"
        )
    return spec


def rules_for(dialect: str, host: PluginHost | None = None) -> DialectRules:
    """The rules of a registered dialect. A name only sqlglot knows gets the portable
    rules printed in that sqlglot dialect, as before dialects were registered."""
    spec = find_dialect(dialect, host)
    if spec is None:
        return DialectRules(dialect)
    return spec.make_rules()


def sqlglot_dialect(dialect: str, host: PluginHost | None = None) -> str | type[Dialect]:
    """The sqlglot dialect that SQL for ``dialect`` (a connection's) is printed in."""
    spec = find_dialect(dialect, host)
    return dialect if spec is None else spec.sqlglot_dialect
