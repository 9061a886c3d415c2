"""Compile stage: a plan becomes one sqlglot tree, then SQL text for a dialect.

Shape of the statement (every name below is generated, never user text)::

    WITH s0 AS (SELECT <bucket> AS period, <dims> AS d0.., <measures> AS s0_m0..
                FROM <table> AS t LEFT JOIN <joined> AS j_<source> ON ..
                WHERE <time range> AND <--where> GROUP BY ..),      -- one per scan
         spine AS (<one row per period>),
         combos AS (<dimension values seen in range, a flag per scan and row filter>),
         grid AS (spine × combos),
         l0 AS (grid LEFT JOIN every scan: source KPIs as columns k0..),
         l1 .. ln AS (derived KPIs, layer by layer)
    SELECT period, d0.., f0.., k0.. FROM ln        -- unordered: kpi run sorts the rows

When the last layer selects exactly the result's columns (no hidden step, no look-back
to cut off), it is the final SELECT itself rather than a CTE read back: a one-KPI
statement ends with ``SELECT grid.period, .., <KPI> AS k0 FROM grid LEFT JOIN s0 ..``.
Smaller trees are faster to build and print (issue 16: warm compile of one KPI < 1 ms).

User text (tables, columns, literals) only ever enters as sqlglot identifiers and
literals, so it is quoted and escaped by sqlglot, never pasted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError

from kpiengine.compile.conversion import conversion_table
from kpiengine.compile.dialects import DialectRules, column_ref, rules_for, table_ref
from kpiengine.compile.dialects.capabilities import refusals
from kpiengine.compile.retail_bucket import cohort_bucket, period_bucket
from kpiengine.compile.window_periods import (
    COMBINE,
    FastWindow,
    Partials,
    combinable,
    plan_fast_windows,
)
from kpiengine.diagnostics import Diagnostic
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.language.ast import (
    Between,
    Binary,
    Call,
    InList,
    IsNull,
    Literal,
    Name,
    Node,
    Unary,
    dispatch_table,
    walk,
)
from kpiengine.language.functions import AGGREGATE, TIME, FunctionRegistry
from kpiengine.language.names import join_alias, resolve_column
from kpiengine.plan.periods import (
    DateOutOfRange,
    add_periods,
    fixed_offset_rows,
    offset_rows,
    spine,
)
from kpiengine.plan.planner import Flag, KpiColumn, Measure, Plan, Scan
from kpiengine.plan.time_functions import offset_unit, periods_argument
from kpiengine.plan.windows import WindowBounds, earliest, window_bounds

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginHost

SOURCE_ALIAS = "t"

_BINARY = {
    "+": exp.Add,
    "-": exp.Sub,
    "*": exp.Mul,
    "=": exp.EQ,
    "!=": exp.NEQ,
    "<": exp.LT,
    "<=": exp.LTE,
    ">": exp.GT,
    ">=": exp.GTE,
    "and": exp.And,
    "or": exp.Or,
}


class ExpressionCompiler:
    """Translate an expression tree; ``name`` and ``aggregate`` say what leaves become."""

    def __init__(
        self,
        rules: DialectRules,
        functions: FunctionRegistry,
        name: Callable[[Name], exp.Expression],
        aggregate: Callable[[Call], exp.Expression] | None = None,
        time_call: Callable[[Call, list[exp.Expression]], exp.Expression] | None = None,
    ) -> None:
        self.rules = rules
        self.functions = functions
        self.name = name
        self.aggregate = aggregate
        self.time_call = time_call

    def compile(self, node: Node) -> exp.Expression:
        return _COMPILE[type(node)](self, node)

    def _name(self, node: Name) -> exp.Expression:
        return self.name(node)

    def _unary(self, node: Unary) -> exp.Expression:
        operand = _paren(self.compile(node.operand))
        return exp.Neg(this=operand) if node.op == "-" else exp.Not(this=operand)

    def _in_list(self, node: InList) -> exp.Expression:
        result: exp.Expression = exp.In(
            this=self.compile(node.operand), expressions=[self.compile(i) for i in node.items]
        )
        return exp.Not(this=exp.Paren(this=result)) if node.negated else result

    def _between(self, node: Between) -> exp.Expression:
        return exp.Between(
            this=self.compile(node.operand),
            low=self.compile(node.low),
            high=self.compile(node.high),
        )

    def _is_null(self, node: IsNull) -> exp.Expression:
        result = exp.Is(this=self.compile(node.operand), expression=exp.Null())
        return exp.Not(this=result) if node.negated else result

    def _literal(self, node: Literal) -> exp.Expression:
        if node.kind == "number":
            return exp.Literal.number(node.value)
        if node.kind == "string":
            return exp.Literal.string(str(node.value))
        if node.kind == "boolean":
            return exp.true() if node.value else exp.false()
        if node.kind == "date":
            return self.rules.date_literal(node.value)  # type: ignore[arg-type]
        return exp.Null()

    def _binary(self, node: Binary) -> exp.Expression:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op == "/":
            return divide(self.rules, left, right)
        if node.op == "%":
            return self.rules.modulo(_paren(left), _nonzero(right))
        return _BINARY[node.op](this=_paren(left), expression=_paren(right))

    def _call(self, node: Call) -> exp.Expression:
        spec = self.functions.get(node.name)
        assert spec is not None and spec.sql is not None, "checked before compiling"
        if spec.kind == AGGREGATE:
            assert self.aggregate is not None, "aggregates are planned as measures"
            return self.aggregate(node)
        if spec.kind == TIME:
            assert self.time_call is not None, "time functions only in derived layers"
            return self.time_call(node, [self.compile(a) for a in node.args[:1]])
        return spec.sql([self.compile(a) for a in node.args], self.rules.name)


#: Node class → the compiler's method translating it (see ``dispatch_table``).
_COMPILE: Mapping[type[Node], Callable[[ExpressionCompiler, Any], exp.Expression]] = dispatch_table(
    "compile",
    {
        Literal: ExpressionCompiler._literal,
        Name: ExpressionCompiler._name,
        Unary: ExpressionCompiler._unary,
        Binary: ExpressionCompiler._binary,
        InList: ExpressionCompiler._in_list,
        Between: ExpressionCompiler._between,
        IsNull: ExpressionCompiler._is_null,
        Call: ExpressionCompiler._call,
    },
)


def divide(rules: DialectRules, left: exp.Expression, right: exp.Expression) -> exp.Expression:
    """True division that gives null, never an error, when the divisor is 0."""
    return exp.Div(this=rules.to_double(left), expression=_nonzero(right))


def _nonzero(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string and float(value.this) != 0:
        return value
    return exp.Nullif(this=value, expression=exp.Literal.number(0))


def _paren(value: exp.Expression) -> exp.Expression:
    """Parenthesize compound operands so the tree prints with the intended precedence."""
    if isinstance(value, exp.Binary | exp.Not | exp.Neg | exp.In | exp.Between | exp.Is):
        return exp.Paren(this=value)
    return value


# -- the statement ----------------------------------------------------------------------


def compile_plan(
    plan: Plan,
    dialect: str | DialectRules = "duckdb",
    pretty: bool = True,
    host: PluginHost | None = None,
    note: bool = False,
) -> str:
    """The plan's one SQL statement in ``dialect``: a registered dialect's name (looked
    up in ``host``, by default the process's), printed in its sqlglot dialect; or a
    rules object (tests compare with plain ``DialectRules("spark")``). ``note``: head a
    statement without a range with a comment saying its grid is the data's (what
    ``kpi compile``/``kpi explain`` print; the statement itself stays plain SQL)."""
    rules = rules_for(dialect, host) if isinstance(dialect, str) else dialect
    query = build_query(plan, rules)
    if note and (text := _grid_note(plan)):
        # on the WITH clause, which sqlglot prints first: the note heads the statement
        holder = query.args.get("with_") or query.args.get("with") or query
        holder.add_comments([text])
    try:
        # what sqlglot cannot translate is an error, not a warning and SQL that fails
        # copy=False: the tree is built for this call alone (its deep copy was 28 % of
        # a warm compile)
        return query.sql(
            dialect=rules.sqlglot, pretty=pretty, unsupported_level=ErrorLevel.RAISE, copy=False
        )
    except UnsupportedError as error:
        raise DefinitionError(_untranslatable(plan, query, rules, error)) from None


def build_query(
    plan: Plan, dialect: str | DialectRules = "duckdb", host: PluginHost | None = None
) -> exp.Select:
    """The statement's tree; a KPI the dialect cannot express raises DefinitionError
    (KPI404 at the function or operator, per the dialect's capability table)."""
    rules = rules_for(dialect, host) if isinstance(dialect, str) else dialect
    problems = refusals(_plan_trees(plan), rules, plan.functions)
    if problems:
        raise DefinitionError(problems)
    return rules.finish(_QueryBuilder(plan, rules).build())


def _plan_trees(plan: Plan) -> list[Node | None]:
    """Every expression the statement compiles: KPIs, row filters, ``--where``."""
    where = plan.request.where
    return [
        *(column.expression for column in plan.columns.values()),
        *(scan.row_filter for scan in plan.scans),
        where.tree if where is not None else None,
    ]


def _untranslatable(
    plan: Plan, query: exp.Select, rules: DialectRules, error: UnsupportedError
) -> list[Diagnostic]:
    """KPI405 for what sqlglot cannot print in the dialect, at the KPI whose column holds
    it: each KPI's and each measure's expression is printed alone to find which."""
    owners: dict[str, KpiColumn] = {}
    for column in plan.columns.values():
        owners[column.alias] = column
        for measure in column.measures.values():
            owners.setdefault(measure.alias, column)
    found: list[Diagnostic] = []
    for alias in query.find_all(exp.Alias):
        column = owners.get(alias.alias)
        if column is None:
            continue
        try:
            alias.this.sql(dialect=rules.sqlglot, unsupported_level=ErrorLevel.RAISE)
        except UnsupportedError as part:
            message = f"{rules.name} cannot express KPI `{column.name}`: {_first(part)}"
            found.append(Diagnostic("KPI405", message, column.expression.span))
    if not found:  # a part no KPI owns (the grid, the joins)
        found.append(Diagnostic("KPI405", f"{rules.name} cannot express this: {_first(error)}"))
    return list({(d.span, d.message): d for d in found}.values())


def _first(error: UnsupportedError) -> str:
    """sqlglot's first message (it joins every unsupported construct with newlines)."""
    return str(error).strip().splitlines()[0]


class _QueryBuilder:
    def __init__(self, plan: Plan, rules: DialectRules) -> None:
        self.plan = plan
        self.rules = rules
        self.dims = [f"d{i}" for i in range(len(plan.request.by))]
        self.timed = plan.request.grain != "all"
        #: scans reading the whole first period of an unaligned range (docs/semantics.md,
        #: "Unaligned from"): their rows before ``from`` are history for time functions,
        #: so each measure is computed twice, on the rows in ``[from, to)`` (the period's
        #: own value) and on the whole period (``<alias>_w``, what time functions read)
        self.split = _split_scans(plan) if self.timed else frozenset()
        #: flags whose count has no condition: every group of a scan has a row, so the
        #: count is never 0 and the flag is 1 wherever the scan has the value; their
        #: counts are not computed (unless a KPI reads the same count)
        #: window bounds per window scan, when the spine is known
        self.bounds: dict[str, list[WindowBounds]] = {}
        if self.timed and plan.periods is not None:
            self.bounds = {
                s.alias: self._window_bounds(s) for s in plan.scans if s.window is not None
            }
        #: window scans computed from per-period partials (compile/window_periods.py), and
        #: the scans whose CTE carries partial columns for them
        self.always_seen = _always_seen(plan, self.split)
        self.fast = (
            plan_fast_windows(plan, self.split, self.bounds, self._computed) if self.bounds else {}
        )
        self.hosts = {
            f.partials.table: f.partials for f in self.fast.values() if not f.partials.own
        }
        if self.fast:  # a windowed count combines partials that can be 0: not always seen
            self.always_seen = frozenset(s for s in self.always_seen if s[0] not in self.fast)

    def build(self) -> exp.Select:
        ctes: list[tuple[str, exp.Expression]] = []
        for scan in self.plan.scans:
            if scan.alias not in self.fast:
                ctes.extend(self._scan_ctes(scan))
        ctes.extend(self._fast_window_ctes())  # after the scans holding their partials
        keys = (["period"] if self.timed else []) + self.dims
        ctes.append(("grid", self._grid(ctes)))
        ctes.extend(self._layers())
        last = ctes[-1][0]
        columns = [
            *keys,
            *(f.alias for f in self.plan.flags if self.dims),
            *(c.alias for c in self.plan.columns.values() if c.name in self.plan.outputs),
        ]
        start = self.plan.first_period
        restricted = start is not None and self.timed and self._grid_starts_early()
        if not restricted and _selected_names(ctes) == columns:
            # the last layer selects exactly the result: it is the statement itself, not
            # a CTE that a last SELECT repeats (a tenth of a warm one-KPI compile's nodes)
            query = ctes.pop()[1]
            assert isinstance(query, exp.Select)
            last = query.args["from_"].this.name
        else:
            query = _select(*(_col(c, table=last) for c in columns)).from_(_table(last), copy=False)
        if restricted:
            assert start is not None
            query = query.where(
                exp.GTE(this=_col("period", table=last), expression=self.rules.date_literal(start)),
                copy=False,
            )
        # no ORDER BY: `kpi run` sorts the rows itself (execute/run.py, one key on every
        # engine); the sort in SQL cost a fixed 0.4-0.7 ms of DuckDB CPU, 1-1.5 points of
        # the 10-KPI by-region ratio to hand SQL at 1M (docs/performance.md, issue 16)

        # the WITH clause built directly: ``with_`` parses each CTE's name as SQL and
        # deep-copies its body (13 % of building a one-KPI statement)
        query.set("with_", exp.With(expressions=[_cte(name, body) for name, body in ctes]))
        return query

    # -- scans ------------------------------------------------------------------------
    def _scan_ctes(self, scan: Scan) -> list[tuple[str, exp.Expression]]:
        """The scan's CTE, preceded for a snapshot scan by the CTE of its snapshot times."""
        request = self.plan.request
        compiler = self._scan_compiler(scan)
        time = column_ref(scan.time, SOURCE_ALIAS)
        bucket = None
        if self.timed:
            bucket = period_bucket(self.rules, self.plan, time, scan.time_type)
        ctes: list[tuple[str, exp.Expression]] = []
        query = self._scan_source(scan)
        filters = self._row_filters(scan, compiler)
        if scan.window is not None and bucket is not None:
            window_alias = f"{scan.alias}_window"
            bounds = self.bounds.get(scan.alias) or self._window_bounds(scan)
            ctes.append((window_alias, self._window_rows(scan, bounds)))
            conditions = self._window_range(scan, time, bounds) + filters
            if combinable(scan):
                ctes.extend(self._window_by_days(scan, compiler, time, conditions, window_alias))
                return ctes
            query = query.join(self._window_join(window_alias, scan, time), copy=False)
            bucket = _col("period", table=window_alias)
        else:
            conditions = self._time_range(scan, time) + filters
        at_edge: dict[str | None, exp.Expression] = {}
        if scan.snapshot:
            # every row in range keeps its dimension values visible; only rows at the
            # period's snapshot time (the entity's own, with `per`) count in aggregates
            edge_alias = f"{scan.alias}_edge"
            kinds = _snapshot_kinds(scan)
            ctes.append((edge_alias, self._snapshot_edges(scan, kinds, time, bucket, conditions)))
            for kind in kinds:
                edge = _col(f"{kind}_edge", table=edge_alias)
                at_edge[kind] = exp.EQ(this=time.copy(), expression=edge)
            on_parts: list[exp.Expression] = []
            if bucket is not None:
                on_parts.append(
                    exp.EQ(this=bucket.copy(), expression=_col("period", table=edge_alias))
                )
            if scan.snapshot_per is not None:
                on_parts.append(
                    exp.EQ(
                        this=column_ref(scan.snapshot_per, SOURCE_ALIAS),
                        expression=_col("entity", table=edge_alias),
                    )
                )
            on = exp.and_(*on_parts, copy=False) if on_parts else exp.true()
            query = query.join(_left_join(_table(edge_alias), on), copy=False)
        selects: list[exp.Expression] = []
        groups: list[exp.Expression] = []
        if bucket is not None:
            selects.append(_alias(bucket, "period"))
            groups.append(bucket.copy())
        for alias, column in self._dimension_columns(scan):
            selects.append(_alias(column, alias))
            groups.append(column.copy())
        own = None
        if scan.alias in self.split:
            assert request.start is not None, "a split scan has an unaligned start"
            own = exp.GTE(
                this=time.copy(), expression=self.rules.time_bound(request.start, scan.time_type)
            )
        for measure in self._computed(scan):
            # visibility counts every row in range; values only the rows at the snapshot
            value = self._measure(
                compiler,
                measure,
                own if measure.visibility else (own or at_edge.get(measure.snapshot)),
            )
            selects.append(_alias(value, measure.alias))
            if own is not None and not measure.visibility:
                whole = self._measure(compiler, measure)
                selects.append(_alias(whole, f"{measure.alias}{WHOLE}"))
        if scan.alias in self.hosts:  # the partials of windows over the same rows
            selects.extend(self._partial_columns(self.hosts[scan.alias], compiler))
        query = query.select(*selects, copy=False)
        if conditions:
            query = query.where(exp.and_(*conditions, copy=False), copy=False)
        if groups:
            query = query.group_by(*groups, copy=False)
        ctes.append((scan.alias, query))
        return ctes

    def _computed(self, scan: Scan) -> list[Measure]:
        """The scan's measures that something reads: not a count only a flag that is
        always 1 would read."""
        return [
            m
            for m in scan.measures.values()
            if not (m.visibility and (scan.alias, m.alias) in self.always_seen)
        ]

    def _dimension_columns(self, scan: Scan) -> list[tuple[str, exp.Expression]]:
        """(alias, column) of each ``--by`` dimension in a scan's rows; a cohort's column
        is the start of its date's period."""
        request = self.plan.request
        found: list[tuple[str, exp.Expression]] = []
        for alias, ref, name in zip(self.dims, scan.dimensions, request.by, strict=True):
            column: exp.Expression = self._ref(ref)
            if name in request.bucketed:
                column = cohort_bucket(self.rules, self.plan, column, ref.type)
            found.append((alias, column))
        return found

    def _scan_source(self, scan: Scan) -> exp.Select:
        """``FROM <table> AS t LEFT JOIN <joined> ...`` with nothing selected yet (a
        conversion KPI's table is derived: kpiengine/compile/conversion.py)."""
        table = conversion_table(self.plan, self.rules, scan, SOURCE_ALIAS)
        query = exp.Select().from_(table or table_ref(scan.source.table, SOURCE_ALIAS), copy=False)
        for path in scan.joins:  # each path after its prefix: chains of LEFT JOINs
            join = path[-1]
            alias = join_alias(path)
            left = join_alias(path[:-1]) if len(path) > 1 else SOURCE_ALIAS
            target = self.plan.project.sources[join.source]
            on = exp.EQ(this=column_ref(join.left, left), expression=column_ref(join.right, alias))
            query = query.join(_left_join(table_ref(target.table, alias), on), copy=False)
        return query

    def _snapshot_edges(
        self,
        scan: Scan,
        kinds: list[str],
        time: exp.Expression,
        bucket: exp.Expression | None,
        conditions: list[exp.Expression],
    ) -> exp.Select:
        """Per period, the latest (``last_edge``) and/or earliest (``first_edge``) snapshot
        time present after the filters: one time for all dimension values (SPEC §5), or one
        per value of ``per`` (SPEC §13.4; a null entity has none, so its rows never count)."""
        edges = {"last": exp.Max, "first": exp.Min}
        selects: list[exp.Expression] = [
            _alias(edges[kind](this=time.copy()), f"{kind}_edge") for kind in kinds
        ]
        groups: list[exp.Expression] = []
        query = self._scan_source(scan)
        if bucket is not None:
            selects.insert(0, _alias(bucket.copy(), "period"))
            groups.append(bucket.copy())
        if scan.snapshot_per is not None:
            entity = column_ref(scan.snapshot_per, SOURCE_ALIAS)
            selects.insert(0, _alias(entity, "entity"))
            groups.append(entity.copy())
        if groups:
            query = query.group_by(*groups, copy=False)
        query = query.select(*selects, copy=False)
        if conditions:
            query = query.where(exp.and_(*(c.copy() for c in conditions), copy=False), copy=False)
        return query

    # -- windows (SPEC §13.1) -----------------------------------------------------------
    def _window_bounds(self, scan: Scan) -> list[WindowBounds]:
        plan = self.plan
        request = plan.request
        assert scan.window is not None
        periods = plan.periods
        if periods is None and plan.first_period is not None and request.end is not None:
            # all history, whose first period only the data knows (a statement compiled
            # without a connection): the windows of the range and its finite look-back
            project = plan.project
            periods = spine(
                add_periods(
                    plan.first_period,
                    request.grain,
                    -plan.finite_lookback,
                    retail=project.retail_calendar,
                ),
                request.end,
                request.grain,
                project.fiscal_year_start,
                project.week_start,
                retail=project.retail_calendar,
            )
        if periods is None:
            raise UsageError(
                f"`{scan.source.name}` KPIs with `window:` need the range to compile: "
                "give --from and --to"
            )
        if scan.lookback is not None and plan.first_period is not None:
            # only the periods this scan's consumers read, not the whole grid (which
            # reaches back to the first data when another KPI needs all history)
            first = add_periods(
                plan.first_period,
                request.grain,
                -scan.lookback,
                retail=plan.project.retail_calendar,
            )
            periods = [period for period in periods if period >= first]
        return window_bounds(scan.window, periods, request.grain, plan.project)

    def _window_rows(self, scan: Scan, bounds: list[WindowBounds]) -> exp.Select:
        """``(period, lo, hi)`` per spine period (``all``: no ``lo``): dates only."""
        assert scan.window is not None
        if scan.window.kind == "all":
            return self.rules.date_rows(["period", "hi"], [[b.period, b.hi] for b in bounds])
        floor = dt.date(1, 1, 1)  # a bound before the year 1: from the first row
        rows = [[b.period, b.lo or floor, b.hi] for b in bounds]
        return self.rules.date_rows(["period", "lo", "hi"], rows)

    def _window_by_days(
        self,
        scan: Scan,
        compiler: ExpressionCompiler,
        time: exp.Expression,
        conditions: list[exp.Expression],
        window_alias: str,
    ) -> list[tuple[str, exp.Expression]]:
        """A window of sums and counts (and min/max): aggregate the rows per day first,
        then combine the days each window holds. Exactly the row-level result (the
        bounds are dates, so no day straddles one), at the cost of one pass over the
        rows instead of one per window holding them (2.3x faster on year-to-date)."""
        days_alias = f"{scan.alias}_days"
        aggregates = [
            _alias(self._measure(compiler, measure), measure.alias)
            for measure in self._computed(scan)
        ]
        partial = self._per_day(scan, time, "day", aggregates, conditions)
        columns = {m.alias: m.alias for m in self._computed(scan)}
        query = self._combine(scan, days_alias, "day", columns, window_alias)
        return [(days_alias, partial), (scan.alias, query)]

    def _fast_window_ctes(self) -> list[tuple[str, exp.Expression]]:
        """The CTEs of the windows computed from per-period partials: each pass of
        partials of its own (once), then per window its bounds and the combination."""
        ctes: list[tuple[str, exp.Expression]] = []
        done: set[str] = set()
        for fast in self.fast.values():
            partials = fast.partials
            if partials.own is not None and partials.table not in done:
                done.add(partials.table)
                ctes.append((partials.table, self._own_partials(partials)))
            window_alias = f"{fast.scan.alias}_window"
            ctes.append((window_alias, self._window_rows(fast.scan, fast.bounds)))
            ctes.append((fast.scan.alias, self._combine_periods(fast, window_alias)))
        return ctes

    def _partial_columns(
        self, partials: Partials, compiler: ExpressionCompiler
    ) -> list[exp.Expression]:
        """Each partial aggregate, restricted by the window's row filter the pass lacks."""
        found: list[exp.Expression] = []
        for alias, _, measure, extra in partials.columns:
            condition = None if extra is None else _paren(compiler.compile(extra))
            found.append(_alias(self._measure(compiler, measure, condition), alias))
        return found

    def _own_partials(self, partials: Partials) -> exp.Select:
        """A pass of partials per day and dimensions over the rows the windows read: from
        their earliest ``lo`` (or the first row) to the range's end."""
        scan = partials.own
        assert scan is not None
        request = self.plan.request
        compiler = self._scan_compiler(scan)
        time = column_ref(scan.time, SOURCE_ALIAS)
        conditions: list[exp.Expression] = []
        if not partials.opened and partials.lowest is not None:
            bound = self.rules.time_bound(partials.lowest, scan.time_type)
            conditions.append(exp.GTE(this=time.copy(), expression=bound))
        if request.end is not None:
            bound = self.rules.time_bound(request.end, scan.time_type)
            conditions.append(exp.LT(this=time.copy(), expression=bound))
        conditions.extend(self._row_filters(scan, compiler))
        # per day, whatever the grain: the bounds are dates, and on DuckDB a day's cast
        # costs less per row than a month's truncation (11 vs 18 ms over 700k rows)
        aggregates = self._partial_columns(partials, compiler)
        return self._per_day(scan, time, "period", aggregates, conditions)

    def _per_day(
        self,
        scan: Scan,
        time: exp.Expression,
        key: str,
        aggregates: list[exp.Expression],
        conditions: list[exp.Expression],
    ) -> exp.Select:
        """One pass over ``scan``'s rows meeting ``conditions``: ``aggregates`` per day
        (named ``key``) and dimension values, the parts a window combines."""
        project = self.plan.project
        day = self.rules.bucket(time, "day", project.fiscal_year_start, project.week_start)
        selects: list[exp.Expression] = [_alias(day, key)]
        groups: list[exp.Expression] = [day.copy()]
        for alias, column in self._dimension_columns(scan):
            selects.append(_alias(column, alias))
            groups.append(column.copy())
        query = self._scan_source(scan).select(*selects, *aggregates, copy=False)
        if conditions:
            query = query.where(exp.and_(*conditions, copy=False), copy=False)
        return query.group_by(*groups, copy=False)

    def _scan_compiler(self, scan: Scan) -> ExpressionCompiler:
        """Compiles a scan's expressions: names are the scan's columns (joins included)."""
        return ExpressionCompiler(
            self.rules, self.plan.functions, lambda node: self._column(scan, node)
        )

    def _row_filters(self, scan: Scan, compiler: ExpressionCompiler) -> list[exp.Expression]:
        """The scan's own row filter and the request's ``--where``, each parenthesised."""
        where = self.plan.request.where
        return [
            _paren(compiler.compile(tree))
            for tree in (scan.row_filter, where.tree if where else None)
            if tree is not None
        ]

    def _combine_periods(self, fast: FastWindow, window_alias: str) -> exp.Select:
        """Each window's value from its periods' partials (in a host scan or a pass of
        their own)."""
        return self._combine(fast.scan, fast.partials.table, "period", fast.columns, window_alias)

    def _combine(
        self, scan: Scan, source: str, key: str, columns: dict[str, str], window_alias: str
    ) -> exp.Select:
        """Each window's value: the partial rows of ``source`` (per day or per period, by
        ``key``) whose key falls in the window, combined (sums and counts added, min of
        mins, max of maxes) per period of the spine and dimension values; ``columns``
        names each measure's partial column."""
        on = _in_window(_col(key, table=source), window_alias, scan)
        period = _col("period", table=window_alias)
        combined: list[exp.Expression] = [_alias(period, "period")]
        groups: list[exp.Expression] = [period.copy()]
        for alias in self.dims:
            combined.append(_alias(_col(alias, table=source), alias))
            groups.append(_col(alias, table=source))
        for measure in self._computed(scan):
            partial = _col(columns[measure.alias], table=source)
            combined.append(_alias(COMBINE[measure.function](this=partial), measure.alias))
        return (
            _select(*combined)
            .from_(_table(source), copy=False)
            .join(exp.Join(this=_table(window_alias), on=on, kind="INNER"), copy=False)
            .group_by(*groups, copy=False)
        )

    @staticmethod
    def _window_join(alias: str, scan: Scan, time: exp.Expression) -> exp.Join:
        """Each row joins every period whose window holds its time (inner: a row in no
        window counts nowhere)."""
        return exp.Join(this=_table(alias), on=_in_window(time, alias, scan), kind="INNER")

    def _window_range(
        self, scan: Scan, time: exp.Expression, bounds: list[WindowBounds]
    ) -> list[exp.Expression]:
        """The rows any window reads: from the earliest ``lo`` (rows before ``from`` are
        read as needed) to the range's end."""
        found: list[exp.Expression] = []
        lower = earliest(bounds)
        if lower is not None:
            found.append(
                exp.GTE(this=time.copy(), expression=self.rules.time_bound(lower, scan.time_type))
            )
        end = self.plan.request.end
        if end is not None:
            found.append(
                exp.LT(this=time.copy(), expression=self.rules.time_bound(end, scan.time_type))
            )
        return found

    def _time_range(self, scan: Scan, time: exp.Expression) -> list[exp.Expression]:
        """Rows in ``[start, end)``, plus whole earlier periods that time functions read."""
        plan = self.plan
        request = plan.request
        found: list[exp.Expression] = []
        lower = plan.scan_start(scan)
        if lower is not None:
            found.append(
                exp.GTE(this=time.copy(), expression=self.rules.time_bound(lower, scan.time_type))
            )
        if request.end is not None:
            found.append(
                exp.LT(
                    this=time.copy(), expression=self.rules.time_bound(request.end, scan.time_type)
                )
            )
        first = plan.first_period
        # history before the range is read in whole periods; the range itself starts
        # exactly at `start`, so rows in [first period, start) stay out
        if (
            request.start is not None
            and first is not None
            and lower != request.start
            and first < request.start
            and scan.alias not in self.split
        ):
            found.append(
                exp.Paren(
                    this=exp.Or(
                        this=exp.LT(
                            this=time.copy(),
                            expression=self.rules.time_bound(first, scan.time_type),
                        ),
                        expression=exp.GTE(
                            this=time.copy(),
                            expression=self.rules.time_bound(request.start, scan.time_type),
                        ),
                    )
                )
            )
        return found

    def _measure(
        self, compiler: ExpressionCompiler, measure: Measure, extra: exp.Expression | None = None
    ) -> exp.Expression:
        """The aggregate, its first argument restricted to rows meeting its condition."""
        spec = self.plan.functions.get(measure.function)
        assert spec is not None and spec.sql is not None
        args = [compiler.compile(a) for a in measure.args]
        conditions = [] if extra is None else [extra.copy()]
        if measure.condition is not None:
            conditions.append(compiler.compile(measure.condition))
        if conditions:
            first = args[0] if args else exp.Literal.number(1)
            condition = (
                conditions[0]
                if len(conditions) == 1
                else exp.and_(*(_paren(c) for c in conditions), copy=False)
            )
            args = [exp.Case(ifs=[exp.If(this=condition, true=first)]), *args[1:]]
        return spec.sql(args, self.rules.name)

    def _column(self, scan: Scan, node: Name) -> exp.Expression:
        ref = resolve_column(self.plan.project, scan.source, node.parts)
        assert ref is not None, "checked before planning"
        return self._ref(ref)

    @staticmethod
    def _ref(ref) -> exp.Column:  # type: ignore[no-untyped-def]
        table = ref.alias or SOURCE_ALIAS
        return column_ref(ref.column.name, table)

    # -- grid -------------------------------------------------------------------------
    def _grid(self, ctes: list[tuple[str, exp.Expression]]) -> exp.Select:
        plan = self.plan
        spine: exp.Expression | None = None
        if self.timed:
            if plan.periods is None:
                spine = self._data_spine()
            elif plan.periods:
                spine = self.rules.spine(plan.periods)
            else:
                spine = _no_rows(_null_period())
        if not self.dims:
            if spine is None:
                return _select(_alias(exp.Literal.number(1), "one"))
            return _select(_col("period")).from_(spine.subquery("spine", copy=False), copy=False)
        combos = self._combos()
        if spine is None:
            return combos
        keys = [
            _col("period", table="spine"),
            *(_col(c, table="combos") for c in self.dims),
            *(_col(f.alias, table="combos") for f in plan.flags),
        ]
        return (
            _select(*keys)
            .from_(spine.subquery("spine", copy=False), copy=False)
            .join(exp.Join(this=combos.subquery("combos", copy=False), kind="CROSS"), copy=False)
        )

    def _combos(self) -> exp.Select:
        """Dimension values seen in the range, with a flag per (scan, row filter) that saw
        them: a KPI shows the values its own rows have after its filter."""
        flags = self.plan.flags
        if not self.plan.scans:  # only constant KPIs: no source saw any value
            return _no_rows(
                *(_alias(exp.Null(), d) for d in self.dims),
                *(_alias(exp.Literal.number(0), f.alias) for f in flags),
            )
        dims = [_col(d) for d in self.dims]
        if len(self.plan.scans) == 1:
            # one scan: its own rows grouped, without a union of scans to read them from
            scan = self.plan.scans[0]
            maxima = [_alias(self._seen(scan, f), f.alias) for f in flags]
            only = self._seen_rows(scan, [*dims, *maxima])
            return only.group_by(*(d.copy() for d in dims), copy=False)
        parts = []
        for scan in self.plan.scans:
            seen = [_alias(self._seen(scan, f), f.alias) for f in flags]
            parts.append(self._seen_rows(scan, [*(d.copy() for d in dims), *seen]))
        union: exp.Expression = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=False, copy=False)
        return (
            _select(*dims, *(_alias(exp.Max(this=_col(f.alias)), f.alias) for f in flags))
            .from_(union.subquery("seen", copy=False), copy=False)
            .group_by(*(d.copy() for d in dims), copy=False)
        )

    def _seen_rows(self, scan: Scan, columns: list[exp.Expression]) -> exp.Select:
        """``columns`` over the rows of a scan's CTE in the output range."""
        start = self.plan.first_period
        part = _select(*columns).from_(_table(scan.alias), copy=False)
        if start is not None and self.timed and self._reads_before_range(scan):
            part = part.where(
                exp.GTE(this=_col("period"), expression=self.rules.date_literal(start)),
                copy=False,
            )
        return part

    def _seen(self, scan: Scan, flag: Flag) -> exp.Expression:
        """1 where a row of ``scan`` counts for ``flag`` (its count is above 0), else 0;
        0 for another scan's flag. The maximum over the scan's rows when it is the only
        scan (read directly, not through a union of scans)."""
        if flag.scan != scan.alias:
            return exp.Literal.number(0)
        if (scan.alias, flag.measure) in self.always_seen:
            return exp.Literal.number(1)
        positive = exp.GT(this=_col(flag.measure), expression=exp.Literal.number(0))
        seen = exp.Case(
            ifs=[exp.If(this=positive, true=exp.Literal.number(1))], default=exp.Literal.number(0)
        )
        return exp.Max(this=seen) if len(self.plan.scans) == 1 else seen

    def _grid_starts_early(self) -> bool:
        """Whether the grid holds periods before the first output period (look-back or
        history): only then does the statement restrict its rows to the range. Without
        look-back the condition would be pushed into every table scan as a per-row date
        check for nothing (issue 16: 39.8 → 32.3 ms on a 10-KPI statement)."""
        periods = self.plan.periods
        first = self.plan.first_period
        return periods is None or first is None or (bool(periods) and periods[0] < first)

    def _reads_before_range(self, scan: Scan) -> bool:
        """Whether a scan has rows of periods before the first output period."""
        if scan.window is not None:
            return self._grid_starts_early()
        return self.plan.scan_start(scan) != self.plan.request.start or scan.alias in self.split

    def _data_spine(self) -> exp.Expression:
        """Without a connection to ask, the periods present in the data; with a range,
        those before it (history for time functions) plus the range's complete spine."""
        plan = self.plan
        request = plan.request
        parts: list[exp.Expression] = []
        for scan in plan.scans:
            part = _select(_col("period")).from_(_table(scan.alias), copy=False)
            if plan.first_period is not None and request.end is not None:
                part = part.where(
                    exp.LT(
                        this=_col("period"),
                        expression=self.rules.date_literal(plan.first_period),
                    ),
                    copy=False,
                )
            parts.append(part)
        if plan.first_period is not None and request.end is not None:
            periods = spine(
                plan.first_period,
                request.end,
                request.grain,
                plan.project.fiscal_year_start,
                plan.project.week_start,
                retail=plan.project.retail_calendar,
            )
            parts.append(self.rules.spine(periods))
        if not parts:  # only constant KPIs and no range: no period at all
            return _no_rows(_null_period())
        union = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=True, copy=False)
        return union

    # -- KPI layers -------------------------------------------------------------------
    def _layers(self) -> list[tuple[str, exp.Expression]]:
        plan = self.plan
        layers: list[tuple[str, exp.Expression]] = []
        by_layer: dict[int, list[KpiColumn]] = {}
        for column in plan.columns.values():
            by_layer.setdefault(column.layer, []).append(column)
        keys = (["period"] if self.timed else []) + self.dims
        flags = [f.alias for f in plan.flags] if self.dims else []
        # the grid's one column when it has no key: a SELECT needs a column
        grid_columns = [*keys, *flags] or ["one"]
        base = _select(*(_col(k, table="grid") for k in grid_columns)).from_(
            _table("grid"), copy=False
        )
        for scan in plan.scans:
            on = [
                exp.NullSafeEQ(this=_col(k, table=scan.alias), expression=_col(k, table="grid"))
                for k in self.dims
            ]
            if self.timed:
                on.insert(
                    0,
                    exp.EQ(
                        this=_col("period", table=scan.alias),
                        expression=_col("period", table="grid"),
                    ),
                )
            condition = exp.and_(*on, copy=False) if on else exp.true()
            base = base.join(_left_join(_table(scan.alias), condition), copy=False)
        if self.timed and _uses(plan, "streak"):  # period ordinal per partition
            ordinal = exp.Window(
                this=exp.RowNumber(),
                partition_by=[_col(d, table="grid") for d in self.dims] or None,
                order=exp.Order(
                    expressions=[self.rules.natural_order(_col("period", table="grid"))]
                ),
            )
            base = base.select(_alias(ordinal, "n"), append=True, copy=False)
        for column in by_layer.get(0, []):
            base = base.select(
                _alias(self._source_kpi(column), column.alias), append=True, copy=False
            )
            if self.split:
                whole = self._source_kpi(column, whole=True)
                base = base.select(_alias(whole, f"{column.alias}{WHOLE}"), append=True, copy=False)
        layers.append(("l0", base))
        aliases = {c.name: c.alias for c in plan.columns.values()}
        for layer in range(1, plan.layers + 1):
            previous = layers[-1][0]

            def compiler_for(suffix: str, window_suffix: str, previous: str = previous):
                """Names read ``<alias><suffix>``; time functions read whole periods."""
                if window_suffix != suffix:
                    reader = compiler_for(window_suffix, window_suffix)

                    def time_call(node: Call, args: list[exp.Expression]) -> exp.Expression:
                        whole = [reader.compile(a) for a in node.args[:1]]
                        return self._time_call(node, whole, previous)
                else:

                    def time_call(node: Call, args: list[exp.Expression]) -> exp.Expression:
                        return self._time_call(node, args, previous)

                return ExpressionCompiler(
                    self.rules,
                    plan.functions,
                    lambda node: _col(aliases[node.parts[0]] + suffix, table=previous),
                    time_call=time_call,
                )

            compiler = compiler_for("", WHOLE if self.split else "")
            query = _select(exp.Star()).from_(_table(previous), copy=False)
            for column in by_layer.get(layer, []):
                value = _fill(compiler.compile(column.expression), column)
                query = query.select(_alias(value, column.alias), append=True, copy=False)
                if self.split:
                    whole = _fill(compiler_for(WHOLE, WHOLE).compile(column.expression), column)
                    query = query.select(
                        _alias(whole, f"{column.alias}{WHOLE}"), append=True, copy=False
                    )
            layers.append((f"l{layer}", query))
        return layers

    # -- time functions ---------------------------------------------------------------
    def _time_call(self, node: Call, args: list[exp.Expression], table: str) -> exp.Expression:
        """A time function as a window over the previous layer's complete grid."""
        value = args[0]
        n = periods_argument(node)
        if node.name == "previous":
            return self._before(node, value, table)
        if node.name == "growth":
            before = self._before(node, value.copy(), table)
            return divide(
                self.rules, exp.Sub(this=_paren(value.copy()), expression=before), before.copy()
            )
        if node.name in ("rolling_sum", "rolling_avg"):
            aggregate = exp.Sum if node.name == "rolling_sum" else exp.Avg
            return self._window(aggregate(this=value), table, preceding=n - 1)
        if node.name == "cumulative_sum":
            return self._window(exp.Sum(this=value), table, preceding=None)
        if node.name == "streak":
            # periods since the last one where the condition did not hold (null = not)
            ordinal = _col("n", table=table)
            breaks = exp.Case(ifs=[exp.If(this=value, true=exp.Null())], default=ordinal.copy())
            last_break = self._window(exp.Max(this=breaks), table, preceding=None)
            return exp.Sub(
                this=ordinal,
                expression=exp.Coalesce(this=last_break, expressions=[exp.Literal.number(0)]),
            )
        raise AssertionError(f"unknown time function {node.name}")

    def _before(self, node: Call, value: exp.Expression, table: str) -> exp.Expression:
        """``value`` at the period ``previous``/``growth`` compares with (SPEC §13.2).

        A fixed number of rows back over the complete grid is one ``LAG`` (every period
        form, and calendar offsets a grain divides: a year at month grain is 12 rows).
        Where the offset varies with the date (months or years at day or week grain), the
        rows back are computed here per period with the spine's own calendar arithmetic,
        and the statement picks the ``LAG`` of each run of periods sharing an offset:
        ``CASE WHEN period >= <run start> THEN LAG(value, m) ...``. Plain LAG, CASE and
        date literals, so it runs on every dialect, in the same one statement."""
        grain = self.plan.request.grain
        n = periods_argument(node)
        unit = offset_unit(node, grain)
        fixed = fixed_offset_rows(n, unit, grain)
        if fixed is not None:
            return self._window(exp.Lag(this=value, offset=exp.Literal.number(fixed)), table)
        runs = self._offset_runs(node, n, unit)
        *earlier, (_, last_rows) = runs
        result = self._window(exp.Lag(this=value, offset=exp.Literal.number(last_rows)), table)
        if not earlier:
            return result
        ifs = []
        for start, rows in reversed(runs[1:]):
            lag = exp.Lag(this=value.copy(), offset=exp.Literal.number(rows))
            since = exp.GTE(
                this=_col("period", table=table), expression=self.rules.date_literal(start)
            )
            ifs.append(exp.If(this=since, true=self._window(lag, table)))
        first = exp.Lag(this=value.copy(), offset=exp.Literal.number(runs[0][1]))
        return exp.Case(ifs=ifs, default=self._window(first, table))

    def _offset_runs(self, node: Call, n: int, unit: str) -> list[tuple[dt.date, int]]:
        """(first period, rows back) of each run of consecutive spine periods whose
        calendar offset is the same number of rows, oldest first."""
        plan = self.plan
        if plan.periods is None:
            raise UsageError(
                f"`{node.name}(…, {n}, {unit})` at {plan.request.grain} grain needs the range "
                "to compile: give --from and --to"
            )
        calendar = plan.project.fiscal_year_start, plan.project.week_start
        retail = plan.project.retail_calendar
        runs: list[tuple[dt.date, int]] = []
        for index, period in enumerate(plan.periods):
            try:
                rows = offset_rows(period, plan.request.grain, n, unit, *calendar, retail=retail)
            except DateOutOfRange:  # before the year 1: before the grid, null
                rows = index + 1
            if not runs or runs[-1][1] != rows:
                runs.append((period, rows))
        return runs or [(dt.date.min, n)]

    def _window(
        self, function: exp.Expression, table: str, preceding: int | bool | None = False
    ) -> exp.Window:
        """``function OVER (PARTITION BY dims ORDER BY period [ROWS frame])``.

        ``preceding``: False for no frame, None for all earlier rows, k for k rows.
        """
        spec = None
        if preceding is not False:
            start = "UNBOUNDED" if preceding is None else exp.Literal.number(preceding)
            spec = exp.WindowSpec(
                kind="ROWS", start=start, start_side="PRECEDING", end="CURRENT ROW"
            )
        return exp.Window(
            this=function,
            partition_by=[_col(d, table=table) for d in self.dims] or None,
            order=exp.Order(expressions=[self.rules.natural_order(_col("period", table=table))]),
            spec=spec,
        )

    def _source_kpi(self, column: KpiColumn, whole: bool = False) -> exp.Expression:
        """A source KPI from its scan's measures; ``whole``: from the whole-period
        measures of a split scan (the same measures for a scan that is not split)."""
        scan_alias = column.scans[0]
        suffix = WHOLE if whole and scan_alias in self.split else ""

        def aggregate(node: Call) -> exp.Expression:
            measure = column.measures[node]
            value: exp.Expression = _col(measure.alias + suffix, table=scan_alias)
            if measure.counts:  # an empty period has a count of 0, not null
                value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
            return value

        compiler = ExpressionCompiler(
            self.rules, self.plan.functions, name=_no_columns, aggregate=aggregate
        )
        return _fill(compiler.compile(column.expression), column)


def _grid_note(plan: Plan) -> str | None:
    """Why a statement's numbers can differ from ``kpi run``'s: without a range its period
    grid comes from the data (decisions.md #3), which ``kpi run`` never leaves to it."""
    if plan.request.grain == "all" or plan.periods is not None or plan.request.start:
        return None
    return (
        " no --from/--to: the period grid is the periods with data; kpi run first "
        "asks the engine for the data's range and fills empty periods "
    )


WHOLE = "_w"  # suffix of a column's whole-period twin in a split statement


def _split_scans(plan: Plan) -> frozenset[str]:
    """Scans whose whole first period is read: the range starts inside a period and the
    scan feeds time functions (look-back). Snapshot scans are not split: their snapshot
    time is chosen among the rows in range, so the part before ``from`` stays out."""
    start, first = plan.request.start, plan.first_period
    if start is None or first is None or first >= start:
        return frozenset()
    return frozenset(
        s.alias for s in plan.scans if s.lookback != 0 and not s.snapshot and s.window is None
    )


def _in_window(value: exp.Expression, alias: str, scan: Scan) -> exp.Expression:
    """``lo <= value < hi`` against the window CTE ``alias`` (``all``: no ``lo``)."""
    condition: exp.Expression = exp.LT(this=value.copy(), expression=_col("hi", table=alias))
    if scan.window is not None and scan.window.kind != "all":
        lower = exp.GTE(this=value.copy(), expression=_col("lo", table=alias))
        condition = exp.and_(lower, condition, copy=False)
    return condition


#: aggregates whose value over a window is the combination of their values per day


def _snapshot_kinds(scan: Scan) -> list[str]:
    """The edges (``last``, ``first``) a snapshot scan's measures read, in that order."""
    used = {m.snapshot for m in scan.measures.values()}
    return [kind for kind in ("last", "first") if kind in used]


def _always_seen(plan: Plan, split: frozenset[str]) -> frozenset[tuple[str, str]]:
    """(scan, count) of each flag that counts every row of its scan's groups: a group has
    at least one row, so such a count is never 0. Not in a split scan, whose count is
    restricted to the rows from ``from`` on."""
    found = set()
    for scan in plan.scans:
        if scan.alias in split:
            continue
        for measure in scan.measures.values():
            if (
                measure.function == "count"
                and not measure.args
                and measure.condition is None
                and measure.snapshot is None
            ):
                found.add((scan.alias, measure.alias))
    return frozenset(found)


def _uses(plan: Plan, function: str) -> bool:
    return any(
        isinstance(node, Call) and node.name == function
        for column in plan.columns.values()
        for node in walk(column.expression)
    )


def _selected_names(ctes: list[tuple[str, exp.Expression]]) -> list[str] | None:
    """The names of the columns the last CTE selects, in order (``SELECT *`` expanded from
    the CTE it reads); None when one has no name of its own."""
    names: dict[str, list[str]] = {}
    for name, body in ctes:
        if not isinstance(body, exp.Select):
            continue
        found: list[str] = []
        for column in body.expressions:
            if isinstance(column, exp.Star):
                source = body.args.get("from_")
                found.extend(names.get(source.this.name, [""]) if source else [""])
            else:
                found.append(column.alias_or_name)
        names[name] = found
    last = names.get(ctes[-1][0]) if ctes else None
    return None if last is None or "" in last else last


def _alias(value: exp.Expression, name: str) -> exp.Expression:
    """``value AS name`` around a node built for this statement alone, so not copied
    (sqlglot's default deep copy of ``value`` was 20 % of building a one-KPI tree)."""
    return exp.alias_(value, name, copy=False)


def _cte(name: str, body: exp.Expression) -> exp.CTE:
    """``name AS (body)``: a generated name (never user text), so never quoted."""
    return exp.CTE(this=body, alias=exp.TableAlias(this=exp.Identifier(this=name, quoted=False)))


def _select(*columns: exp.Expression) -> exp.Select:
    """A SELECT of ready-made expressions: no parsing, no copying (compile speed)."""
    return exp.select(*columns, copy=False)


def _null_period() -> exp.Expression:
    """``CAST(NULL AS DATE) AS period``: the column of a spine without periods."""
    return _alias(
        exp.Cast(this=exp.Null(), to=exp.DataType.build(exp.DataType.Type.DATE)), "period"
    )


def _no_rows(*columns: exp.Expression) -> exp.Select:
    """A query with these columns and no row (``WHERE 1 = 0`` is valid on every engine)."""
    never = exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0))
    return _select(*columns).where(never, copy=False)


def _left_join(table: exp.Expression, on: exp.Expression) -> exp.Join:
    return exp.Join(this=table, on=on, side="LEFT")


def _col(name: str, table: str | None = None) -> exp.Column:
    """A generated column name (``period``, ``d0``, ``k0``; never user text), qualified by
    a generated table name: built directly, without ``exp.column``'s quoting checks (half
    the cost; there are dozens per statement)."""
    column = exp.Column(this=exp.Identifier(this=name, quoted=False))
    if table is not None:
        column.set("table", exp.Identifier(this=table, quoted=False))
    return column


def _table(name: str) -> exp.Table:
    """A generated CTE name as a table (never user text, so never quoted)."""
    return exp.Table(this=exp.Identifier(this=name, quoted=False))


def _fill(value: exp.Expression, column: KpiColumn) -> exp.Expression:
    if column.fill_null is None:
        return value
    fill = column.fill_null
    # a whole number stays an integer literal, so counts keep an integer type everywhere
    literal = exp.Literal.number(int(fill) if float(fill).is_integer() else fill)
    return exp.Coalesce(this=value, expressions=[literal])


def _no_columns(node: Name) -> exp.Expression:
    raise AssertionError(f"column {node.dotted} outside an aggregate passed the checker")
