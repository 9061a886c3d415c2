"""Compile the derived table a conversion KPI's scan reads (SPEC §13.5).

Shape (every name generated; tables, columns and filters from the definitions enter as
identifiers and compiled trees, never as text)::

    (SELECT <base columns>, CASE WHEN kpi__next IS NOT NULL [AND kpi__next <= kpi__deadline]
                                 THEN 1 ELSE 0 END AS kpi__converted
     FROM (SELECT *, MIN(CASE WHEN kpi__kind = 1 THEN kpi__at END)
                       OVER (PARTITION BY kpi__entity ORDER BY kpi__at, kpi__kind
                             ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS kpi__next
           FROM (SELECT <base columns>, entity, at, at + within, 0 AS kpi__kind
                   FROM <base table> WHERE <base time in the scan's range>
                 UNION ALL
                 SELECT NULL.., entity, at, NULL, 1 FROM <event table> LEFT JOIN ..
                   WHERE entity IS NOT NULL AND <event time from the range's start>
                     [AND before the range's end + within] AND <event filter>) AS kpi__events
          ) AS kpi__marked
     WHERE kpi__kind = 0) AS t

``kpi__next`` is the first event time at or after each base row in its entity (events sort
after base rows at the same time, so an event at the base event's own time counts). The
scan around it then reads ``t`` like a table: its time range, filters, joins and grouping
are the ordinary ones. One window pass over the two tables: it runs on every engine that
has window functions (all of kpiengine's), in the same one statement.

Where the engine runs a correlated ``EXISTS`` as a hash join
(:meth:`DialectRules.runs_exists_as_join`: DuckDB), the derived table asks it directly::

    (SELECT <base columns>,
            CASE WHEN EXISTS (SELECT 1 FROM <event table> AS t LEFT JOIN ..
                              WHERE t.entity = kpi__base.entity AND at >= base at
                                [AND at <= base at + within] AND <event bounds, filter>)
                 THEN 1 ELSE 0 END AS kpi__converted
     FROM <base table> AS kpi__base WHERE <base time in the scan's range>) AS t

Same rows, same flags (a null entity matches no event in either form).

Times are compared exactly: a date side meeting a timestamp side is cast to a timestamp.
SQLite stores times as ISO text, so there both sides are normalized to
``YYYY-MM-DD HH:MM:SS.SSS`` (``strftime``), whose text order is time order, and the
window end is computed with its date modifiers.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, column_ref, table_ref
from kpiengine.language.ast import Name, Node, walk
from kpiengine.language.names import ColumnRef, join_alias, resolve_column
from kpiengine.loader.conversion import CONVERTED
from kpiengine.loader.model import Conversion, Join, Project, Source
from kpiengine.plan.conversion import ConversionScan

if TYPE_CHECKING:
    from kpiengine.plan.planner import Plan, Scan

_ALIAS = "t"  # each inner SELECT reads its own table as t (its own scope)
_BASE = "kpi__base"  # the base table under an EXISTS, whose subquery reads events as t
_ENTITY, _AT, _DEADLINE, _KIND, _NEXT = (
    "kpi__entity",
    "kpi__at",
    "kpi__deadline",
    "kpi__kind",
    "kpi__next",
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%f"
#: sqlglot dialects where ``time + INTERVAL n DAY`` is the portable form
_INTERVAL_ADDING = frozenset({"spark", "databricks", "clickhouse", "duckdb", "postgres"})


def _dialect(rules: DialectRules) -> str:
    """The sqlglot dialect's name (a plugin may give a Dialect class)."""
    printed = rules.sqlglot
    return printed if isinstance(printed, str) else printed.__name__.lower()


def conversion_table(
    plan: Plan, rules: DialectRules, scan: Scan, alias: str
) -> exp.Expression | None:
    """The derived table of a conversion scan, aliased ``alias``; None for other scans."""
    if not isinstance(scan, ConversionScan) or scan.conversion is None:
        return None
    return _Derived(plan, rules, scan, scan.conversion).build().subquery(alias, copy=False)


class _Derived:
    def __init__(
        self, plan: Plan, rules: DialectRules, scan: ConversionScan, conversion: Conversion
    ) -> None:
        self.plan = plan
        self.rules = rules
        self.scan = scan
        self.conversion = conversion
        project = plan.project
        self.base = project.sources[conversion.base.source]
        self.event = project.sources[conversion.event.source]
        self.base_time = scan.time
        self.event_time = conversion.event.time or self.event.time or ""
        self.base_type = self.base.columns[self.base_time].type
        self.event_type = self.event.columns[self.event_time].type
        self.sqlite = _dialect(rules) == "sqlite"
        self.kept = _used_columns(plan, scan)
        #: both sides' times compared as timestamps when one of them is one
        self.mixed = self.base_type != self.event_type

    def build(self) -> exp.Select:
        if self.rules.runs_exists_as_join():
            return self._by_exists()
        marked = self._marked()
        kept = self.kept
        converted: exp.Expression = _not_null(exp.column(_NEXT))
        if self.conversion.within_days is not None:
            within = exp.LTE(this=exp.column(_NEXT), expression=exp.column(_DEADLINE))
            converted = exp.And(this=converted, expression=within)
        flag = exp.Case(
            ifs=[exp.If(this=converted, true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
        return (
            exp.select(*(column_ref(c, "kpi__marked") for c in kept), exp.alias_(flag, CONVERTED))
            .from_(marked.subquery("kpi__marked", copy=False), copy=False)
            .where(exp.EQ(this=exp.column(_KIND), expression=exp.Literal.number(0)), copy=False)
        )

    def _marked(self) -> exp.Select:
        """The two sides in one set, each row with the first event at or after it."""
        events = exp.union(self._base_rows(), self._event_rows(), distinct=False, copy=False)
        first_event = exp.Window(
            this=exp.Min(
                this=exp.Case(
                    ifs=[
                        exp.If(
                            this=exp.EQ(this=exp.column(_KIND), expression=exp.Literal.number(1)),
                            true=exp.column(_AT),
                        )
                    ]
                )
            ),
            partition_by=[exp.column(_ENTITY)],
            order=exp.Order(
                expressions=[
                    self.rules.natural_order(exp.column(_AT)),  # never null: see _base_rows
                    self.rules.natural_order(exp.column(_KIND)),
                ]
            ),
            spec=exp.WindowSpec(
                kind="ROWS",
                start="CURRENT ROW",
                end="UNBOUNDED",
                end_side="FOLLOWING",
            ),
        )
        return exp.select(exp.Star(), exp.alias_(first_event, _NEXT)).from_(
            events.subquery("kpi__events", copy=False), copy=False
        )

    def _by_exists(self) -> exp.Select:
        """Each base row with a flag: does an event of its entity fall in its window?"""
        time = column_ref(self.base_time, _BASE)
        at = self._at(time, self.base_type)
        event_time = column_ref(self.event_time, _ALIAS)
        event_at = self._at(event_time, self.event_type)
        entity = column_ref(self.conversion.event.entity, _ALIAS)
        matches: list[exp.Expression] = [
            exp.EQ(this=entity, expression=column_ref(self.conversion.base.entity, _BASE)),
            exp.GTE(this=event_at, expression=at.copy()),
        ]
        if self.conversion.within_days is not None:
            deadline = self._plus_days(time, self.conversion.within_days)
            matches.append(exp.LTE(this=event_at.copy(), expression=deadline))
        events = self._event_query(exp.select(exp.Literal.number(1)), event_time, matches)
        flag = exp.Case(
            ifs=[exp.If(this=exp.Exists(this=events), true=exp.Literal.number(1))],
            default=exp.Literal.number(0),
        )
        query = exp.select(
            *(column_ref(c, _BASE) for c in self.kept), exp.alias_(flag, CONVERTED)
        ).from_(table_ref(self.base.table, _BASE), copy=False)
        conditions = [_not_null(time), *self._bounds(time, self.base_type, ahead=0)]
        return query.where(exp.and_(*conditions, copy=False), copy=False)

    def _base_rows(self) -> exp.Select:
        kept = self.kept
        time = column_ref(self.base_time, _ALIAS)
        at = self._at(time, self.base_type)
        deadline: exp.Expression = exp.Null()
        if self.conversion.within_days is not None:
            deadline = self._plus_days(time, self.conversion.within_days)
        query = exp.select(
            *(column_ref(c, _ALIAS) for c in kept),
            exp.alias_(column_ref(self.conversion.base.entity, _ALIAS), _ENTITY),
            exp.alias_(at, _AT),
            exp.alias_(deadline, _DEADLINE),
            exp.alias_(exp.Literal.number(0), _KIND),
        ).from_(table_ref(self.base.table, _ALIAS), copy=False)
        conditions = [_not_null(time), *self._bounds(time, self.base_type, ahead=0)]
        return query.where(exp.and_(*conditions, copy=False), copy=False)

    def _event_rows(self) -> exp.Select:
        kept = self.kept
        time = column_ref(self.event_time, _ALIAS)
        entity = column_ref(self.conversion.event.entity, _ALIAS)
        query = exp.select(
            *(exp.alias_(exp.Null(), c) for c in kept),
            exp.alias_(entity, _ENTITY),
            exp.alias_(self._at(time, self.event_type), _AT),
            exp.alias_(exp.Null(), _DEADLINE),
            exp.alias_(exp.Literal.number(1), _KIND),
        )
        return self._event_query(query, time, [_not_null(entity), _not_null(time)])

    def _event_query(
        self, query: exp.Select, time: exp.Expression, conditions: list[exp.Expression]
    ) -> exp.Select:
        """``query`` over the event table (and the joins its filter needs), keeping the
        events that can convert a base row of the range and pass the event filter."""
        side = self.conversion.event
        tree = side.filter.tree if side.filter is not None else None
        query = _with_joins(query, self.plan.project, self.event, tree)
        ahead = self.conversion.within_days
        conditions = [
            *conditions,
            *self._bounds(time, self.event_type, ahead=ahead, lower_only=ahead is None),
        ]
        if tree is not None:
            conditions.append(exp.Paren(this=self._compile_filter(tree)))
        return query.where(exp.and_(*conditions, copy=False), copy=False)

    def _bounds(
        self, time: exp.Expression, column_type: str, ahead: int | None, lower_only: bool = False
    ) -> list[exp.Expression]:
        """Rows from the scan's lower bound; below its end (+ ``ahead`` days for events:
        an event after ``to`` still converts a base event before it)."""
        found: list[exp.Expression] = []
        lower = self.plan.scan_start(self.scan)
        if lower is not None:
            found.append(
                exp.GTE(this=time.copy(), expression=self.rules.time_bound(lower, column_type))
            )
        end = self.plan.request.end
        if end is not None and not lower_only:
            upper = end + dt.timedelta(days=ahead or 0)
            found.append(
                exp.LT(this=time.copy(), expression=self.rules.time_bound(upper, column_type))
            )
        return found

    def _at(self, time: exp.Expression, column_type: str) -> exp.Expression:
        """A side's time in the type both sides compare in."""
        if self.sqlite:
            return _strftime(time)
        if self.mixed and column_type == "date":
            return exp.Cast(this=time, to=exp.DataType.build(exp.DataType.Type.TIMESTAMP))
        return time

    def _plus_days(self, time: exp.Expression, days: int) -> exp.Expression:
        """The base side's time plus ``days``: the last time an event still converts it.
        Dates add days as dates; timestamps as timestamps (``DATE_ADD`` on a timestamp
        drops its time of day on some engines), as ``+ INTERVAL`` where sqlglot's
        three-argument form is not the engine's."""
        if self.sqlite:
            return _strftime(time.copy(), f"+{days} days")
        at = self._at(time.copy(), self.base_type)
        amount, unit = exp.Literal.number(days), exp.var("DAY")
        if _dialect(self.rules) in _INTERVAL_ADDING:
            return exp.Add(this=at, expression=exp.Interval(this=amount, unit=unit))
        if self.base_type == "date" and not self.mixed:
            return exp.DateAdd(this=at, expression=amount, unit=unit)
        return exp.TimestampAdd(this=at, expression=amount, unit=unit)

    def _compile_filter(self, tree: Node) -> exp.Expression:
        from kpiengine.compile.statement import ExpressionCompiler

        project = self.plan.project

        def name(node: Name) -> exp.Expression:
            ref = resolve_column(project, self.event, node.parts)
            assert ref is not None, "checked by the checker"
            return _column(ref)

        return ExpressionCompiler(self.rules, self.plan.functions, name).compile(tree)


def _used_columns(plan: Plan, scan: ConversionScan) -> list[str]:
    """The base columns the scan around the derived table reads (time, dimensions,
    filters, ``--where``, join keys), in the source's order: the derived table carries
    only those through its window."""
    trees: list[Node | None] = [scan.row_filter]
    where = plan.request.where
    trees.append(where.tree if where is not None else None)
    for measure in scan.measures.values():
        trees.extend([*measure.args, measure.condition])
    used = {scan.time}
    used.update(path[0].left for path in scan.joins)
    used.update(ref.column.name for ref in scan.dimensions if not ref.path)
    for tree in trees:
        for node in walk(tree) if tree is not None else ():
            if isinstance(node, Name):
                ref = resolve_column(plan.project, scan.source, node.parts)
                if ref is not None and not ref.path:
                    used.add(ref.column.name)
    return [c for c in scan.source.columns if c in used and c != CONVERTED]


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))


def _strftime(time: exp.Expression, *modifiers: str) -> exp.Expression:
    """SQLite: ``strftime('%Y-%m-%d %H:%M:%f', time[, '+N days'])``."""
    return exp.Anonymous(
        this="STRFTIME",
        expressions=[
            exp.Literal.string(_SQLITE_TIME),
            time,
            *(exp.Literal.string(m) for m in modifiers),
        ],
    )


def _column(ref: ColumnRef) -> exp.Column:
    return column_ref(ref.column.name, ref.alias or _ALIAS)


def _with_joins(
    query: exp.Select, project: Project, source: Source, tree: Node | None
) -> exp.Select:
    """``FROM <source> AS t`` and the LEFT JOIN chains the filter's columns need."""
    query = query.from_(table_ref(source.table, _ALIAS), copy=False)
    paths: list[tuple[Join, ...]] = []
    for node in walk(tree) if tree is not None else ():
        ref = resolve_column(project, source, node.parts) if isinstance(node, Name) else None
        for hops in range(1, len(ref.path) + 1 if ref is not None else 1):
            assert ref is not None
            if ref.path[:hops] not in paths:
                paths.append(ref.path[:hops])
    for path in paths:
        join = path[-1]
        alias = join_alias(path)
        left = join_alias(path[:-1]) if len(path) > 1 else _ALIAS
        target = project.sources[join.source]
        on = exp.EQ(this=column_ref(join.left, left), expression=column_ref(join.right, alias))
        query = query.join(
            exp.Join(this=table_ref(target.table, alias), on=on, side="LEFT"), copy=False
        )
    return query
