"""Compile stage: a plan becomes one sqlglot tree, then SQL text for a dialect.

Shape of the statement (every name below is generated, never user text)::

    WITH s0 AS (SELECT <bucket> AS period, <dims> AS d0.., <measures> AS s0_m0..
                FROM <table> AS t LEFT JOIN <joined> AS j_<source> ON ..
                WHERE <time range> AND <--where> GROUP BY ..),      -- one per scan
         spine AS (<one row per period>),
         combos AS (<dimension values seen in range, with one flag per scan>),
         grid AS (spine × combos),
         l0 AS (grid LEFT JOIN every scan: source KPIs as columns k0..),
         l1 .. ln AS (derived KPIs, layer by layer)
    SELECT period, d0.., f0.., k0.. FROM ln ORDER BY period, d0..

User text (tables, columns, literals) only ever enters as sqlglot identifiers and
literals, so it is quoted and escaped by sqlglot, never pasted.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from kpiengine.ast import Between, Binary, Call, InList, IsNull, Literal, Name, Node, Unary
from kpiengine.dialects import DialectRules, column_ref, rules_for, table_ref
from kpiengine.functions import AGGREGATE, FunctionRegistry
from kpiengine.plan import KpiColumn, Plan, Scan, first_period
from kpiengine.resolve import resolve_column

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
    ) -> None:
        self.rules = rules
        self.functions = functions
        self.name = name
        self.aggregate = aggregate

    def compile(self, node: Node) -> exp.Expression:
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            return (
                exp.Neg(this=_paren(operand)) if node.op == "-" else exp.Not(this=_paren(operand))
            )
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, InList):
            result: exp.Expression = exp.In(
                this=self.compile(node.operand), expressions=[self.compile(i) for i in node.items]
            )
            return exp.Not(this=exp.Paren(this=result)) if node.negated else result
        if isinstance(node, Between):
            return exp.Between(
                this=self.compile(node.operand),
                low=self.compile(node.low),
                high=self.compile(node.high),
            )
        if isinstance(node, IsNull):
            result = exp.Is(this=self.compile(node.operand), expression=exp.Null())
            return exp.Not(this=result) if node.negated else result
        if isinstance(node, Call):
            return self._call(node)
        raise TypeError(f"cannot compile {type(node).__name__}")

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
            return exp.Mod(this=_paren(left), expression=_nonzero(right))
        return _BINARY[node.op](this=_paren(left), expression=_paren(right))

    def _call(self, node: Call) -> exp.Expression:
        spec = self.functions.get(node.name)
        assert spec is not None and spec.sql is not None, "checked before compiling"
        if spec.kind == AGGREGATE:
            assert self.aggregate is not None, "aggregates are planned as measures"
            return self.aggregate(node)
        return spec.sql([self.compile(a) for a in node.args], self.rules.name)


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


def compile_plan(plan: Plan, dialect: str = "duckdb", pretty: bool = True) -> str:
    """The plan's one SQL statement in ``dialect``."""
    return build_query(plan, dialect).sql(dialect=dialect, pretty=pretty, copy=False)


def build_query(plan: Plan, dialect: str = "duckdb") -> exp.Select:
    return _QueryBuilder(plan, rules_for(dialect)).build()


class _QueryBuilder:
    def __init__(self, plan: Plan, rules: DialectRules) -> None:
        self.plan = plan
        self.rules = rules
        self.dims = [f"d{i}" for i in range(len(plan.request.by))]
        self.timed = plan.request.grain != "all"

    def build(self) -> exp.Select:
        ctes: list[tuple[str, exp.Expression]] = []
        for scan in self.plan.scans:
            ctes.append((scan.alias, self._scan(scan)))
        keys = (["period"] if self.timed else []) + self.dims
        ctes.append(("grid", self._grid(ctes)))
        ctes.extend(self._layers())
        last = ctes[-1][0]
        columns = [
            *keys,
            *(f"f{i}" for i in range(len(self.plan.scans)) if self.dims),
            *(c.alias for c in self.plan.columns.values() if c.kpi.name in self.plan.outputs),
        ]
        query = _select(*(exp.column(c, table=last) for c in columns)).from_(
            _table(last), copy=False
        )
        start = first_period(self.plan)
        if start is not None and self.timed:
            query = query.where(
                exp.GTE(
                    this=exp.column("period", table=last), expression=self.rules.date_literal(start)
                ),
                copy=False,
            )
        if keys:
            query = query.order_by(
                *(exp.Ordered(this=exp.column(k, table=last), nulls_first=False) for k in keys),
                copy=False,
            )
        for name, body in ctes:
            query = query.with_(name, as_=body, copy=False)
        return query

    # -- scans ------------------------------------------------------------------------
    def _scan(self, scan: Scan) -> exp.Select:
        request = self.plan.request
        project = self.plan.project
        compiler = ExpressionCompiler(
            self.rules, self.plan.functions, lambda node: self._column(scan, node)
        )
        time = column_ref(scan.time, SOURCE_ALIAS)
        selects: list[exp.Expression] = []
        groups: list[exp.Expression] = []
        if self.timed:
            bucket = self.rules.bucket(
                time, request.grain, project.fiscal_year_start, project.week_start
            )
            selects.append(exp.alias_(bucket, "period"))
            groups.append(bucket.copy())
        for alias, ref in zip(self.dims, scan.dimensions, strict=True):
            column = self._ref(ref)
            selects.append(exp.alias_(column, alias))
            groups.append(column.copy())
        for measure in scan.measures.values():
            selects.append(exp.alias_(self._measure(compiler, measure), measure.alias))
        query = _select(*selects).from_(table_ref(scan.source.table, SOURCE_ALIAS), copy=False)
        for join in scan.joins:
            alias = f"j_{join.source}"
            target = self.plan.project.sources[join.source]
            on = exp.EQ(
                this=column_ref(join.left, SOURCE_ALIAS), expression=column_ref(join.right, alias)
            )
            query = query.join(_left_join(table_ref(target.table, alias), on), copy=False)
        conditions = self._time_range(scan, time)
        if request.where is not None and request.where.tree is not None:
            conditions.append(_paren(compiler.compile(request.where.tree)))
        if conditions:
            query = query.where(exp.and_(*conditions, copy=False), copy=False)
        if groups:
            query = query.group_by(*groups, copy=False)
        return query

    def _time_range(self, scan: Scan, time: exp.Expression) -> list[exp.Expression]:
        request = self.plan.request
        found: list[exp.Expression] = []
        if request.start is not None:
            found.append(
                exp.GTE(
                    this=time.copy(),
                    expression=self.rules.time_bound(request.start, scan.time_type),
                )
            )
        if request.end is not None:
            found.append(
                exp.LT(
                    this=time.copy(), expression=self.rules.time_bound(request.end, scan.time_type)
                )
            )
        return found

    def _measure(self, compiler: ExpressionCompiler, measure) -> exp.Expression:  # type: ignore[no-untyped-def]
        spec = self.plan.functions.get(measure.function)
        assert spec is not None and spec.sql is not None
        args = [compiler.compile(a) for a in measure.args]
        if measure.condition is not None:
            condition = compiler.compile(measure.condition)
            first = args[0] if args else exp.Literal.number(1)
            args = [exp.Case(ifs=[exp.If(this=condition, true=first)]), *args[1:]]
        return spec.sql(args, self.rules.name)

    def _column(self, scan: Scan, node: Name) -> exp.Expression:
        ref = resolve_column(self.plan.project, scan.source, node.parts)
        assert ref is not None, "checked before planning"
        return self._ref(ref)

    @staticmethod
    def _ref(ref) -> exp.Column:  # type: ignore[no-untyped-def]
        table = SOURCE_ALIAS if ref.join is None else f"j_{ref.join.source}"
        return column_ref(ref.column.name, table)

    # -- grid -------------------------------------------------------------------------
    def _grid(self, ctes: list[tuple[str, exp.Expression]]) -> exp.Select:
        plan = self.plan
        spine: exp.Expression | None = None
        if self.timed:
            if plan.periods is not None:
                spine = self.rules.spine(plan.periods)
            else:  # no range given: the periods present in the data
                parts = [
                    _select(exp.column("period")).from_(_table(s.alias), copy=False)
                    for s in plan.scans
                ]
                spine = parts[0]
                for part in parts[1:]:
                    spine = exp.union(spine, part, distinct=True, copy=False)
        if not self.dims:
            if spine is None:
                return _select(exp.alias_(exp.Literal.number(1), "one"))
            return _select(exp.column("period")).from_(
                spine.subquery("spine", copy=False), copy=False
            )
        combos = self._combos()
        if spine is None:
            return combos
        keys = [
            exp.column("period", table="spine"),
            *(exp.column(c, table="combos") for c in self.dims),
            *(exp.column(f"f{i}", table="combos") for i in range(len(plan.scans))),
        ]
        return (
            _select(*keys)
            .from_(spine.subquery("spine", copy=False), copy=False)
            .join(exp.Join(this=combos.subquery("combos", copy=False), kind="CROSS"), copy=False)
        )

    def _combos(self) -> exp.Select:
        """Dimension values seen in the range, with a flag per scan that saw them."""
        start = first_period(self.plan)
        parts: list[exp.Select] = []
        for index, scan in enumerate(self.plan.scans):
            flags = [
                exp.alias_(exp.Literal.number(int(i == index)), f"f{i}")
                for i in range(len(self.plan.scans))
            ]
            part = _select(*(exp.column(d) for d in self.dims), *flags).from_(
                _table(scan.alias), copy=False
            )
            if start is not None and self.timed:
                part = part.where(
                    exp.GTE(this=exp.column("period"), expression=self.rules.date_literal(start)),
                    copy=False,
                )
            parts.append(part)
        union: exp.Expression = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=False, copy=False)
        return (
            _select(
                *(exp.column(d) for d in self.dims),
                *(
                    exp.alias_(exp.Max(this=exp.column(f"f{i}")), f"f{i}")
                    for i in range(len(self.plan.scans))
                ),
            )
            .from_(union.subquery("seen", copy=False), copy=False)
            .group_by(*(exp.column(d) for d in self.dims), copy=False)
        )

    # -- KPI layers -------------------------------------------------------------------
    def _layers(self) -> list[tuple[str, exp.Expression]]:
        plan = self.plan
        layers: list[tuple[str, exp.Expression]] = []
        by_layer: dict[int, list[KpiColumn]] = {}
        for column in plan.columns.values():
            by_layer.setdefault(column.layer, []).append(column)
        keys = (["period"] if self.timed else []) + self.dims
        flags = [f"f{i}" for i in range(len(plan.scans))] if self.dims else []
        base = _select(*(exp.column(k, table="grid") for k in [*keys, *flags])).from_(
            _table("grid"), copy=False
        )
        for scan in plan.scans:
            on = [
                exp.NullSafeEQ(
                    this=exp.column(k, table=scan.alias), expression=exp.column(k, table="grid")
                )
                for k in self.dims
            ]
            if self.timed:
                on.insert(
                    0,
                    exp.EQ(
                        this=exp.column("period", table=scan.alias),
                        expression=exp.column("period", table="grid"),
                    ),
                )
            condition = exp.and_(*on, copy=False) if on else exp.true()
            base = base.join(_left_join(_table(scan.alias), condition), copy=False)
        for column in by_layer.get(0, []):
            base = base.select(
                exp.alias_(self._source_kpi(column), column.alias), append=True, copy=False
            )
        layers.append(("l0", base))
        aliases = {c.kpi.name: c.alias for c in plan.columns.values()}
        for layer in range(1, plan.layers + 1):
            previous = layers[-1][0]
            compiler = ExpressionCompiler(
                self.rules,
                plan.functions,
                lambda node, previous=previous: exp.column(aliases[node.parts[0]], table=previous),
            )
            query = _select(exp.Star()).from_(_table(previous), copy=False)
            for column in by_layer.get(layer, []):
                assert column.kpi.expression.tree is not None
                value = _fill(compiler.compile(column.kpi.expression.tree), column)
                query = query.select(exp.alias_(value, column.alias), append=True, copy=False)
            layers.append((f"l{layer}", query))
        return layers

    def _source_kpi(self, column: KpiColumn) -> exp.Expression:
        scan_alias = column.scans[0]

        def aggregate(node: Call) -> exp.Expression:
            measure = column.measures[node]
            value: exp.Expression = exp.column(measure.alias, table=scan_alias)
            if measure.counts:  # an empty period has a count of 0, not null
                value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
            return value

        compiler = ExpressionCompiler(
            self.rules, self.plan.functions, name=_no_columns, aggregate=aggregate
        )
        assert column.kpi.expression.tree is not None
        return _fill(compiler.compile(column.kpi.expression.tree), column)


def _select(*columns: exp.Expression) -> exp.Select:
    """A SELECT of ready-made expressions: no parsing, no copying (compile speed)."""
    return exp.select(*columns, copy=False)


def _left_join(table: exp.Expression, on: exp.Expression) -> exp.Join:
    return exp.Join(this=table, on=on, side="LEFT")


def _table(name: str) -> exp.Table:
    """A generated CTE name as a table (never user text, so never quoted)."""
    return exp.Table(this=exp.to_identifier(name))


def _fill(value: exp.Expression, column: KpiColumn) -> exp.Expression:
    if column.kpi.fill_null is None:
        return value
    return exp.Coalesce(this=value, expressions=[exp.Literal.number(column.kpi.fill_null)])


def _no_columns(node: Name) -> exp.Expression:
    raise AssertionError(f"column {node.dotted} outside an aggregate passed the checker")
