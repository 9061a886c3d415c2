"""Plan stage: which scans, which measures, which layers, which periods.

KPIs that read the same source with the same time column share one **scan** (one pass
over the table, grouped by period and dimensions); their aggregates become the scan's
**measures**, with each KPI's filter and ``where`` folded into a conditional aggregate so
that different filters still share the pass. Identical measures are computed once.
Derived KPIs are ordered into **layers** by dependency depth. The whole plan compiles to
one SQL statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from kpiengine.diagnostics import Diagnostic, did_you_mean
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.language.ast import Binary, Call, Name, Node, walk
from kpiengine.language.check import Scope, check_expression
from kpiengine.language.functions import (
    AGGREGATE,
    TIME,
    FunctionRegistry,
    default_registry,
    unit_argument,
    value_names,
)
from kpiengine.language.names import (
    ColumnRef,
    base_kpis,
    dimension_available,
    referenced_kpis,
    resolve_column,
    unresolved_reason,
)
from kpiengine.loader.model import (
    GRAINS,
    TIME_GRAINS,
    Expression,
    Join,
    Kpi,
    Project,
    Source,
    Window,
)
from kpiengine.plan.periods import (
    DEFAULT_MAX_PERIODS,
    add_periods,
    count_periods,
    period_start,
    spine,
)
from kpiengine.plan.time_functions import (
    AUX_PREFIX,
    finer_unit,
    lift_nested_windows,
    lookback,
    offset_problems,
    references_with_shift,
)


@dataclass(frozen=True)
class RunRequest:
    """What to compute: KPIs, grain, range ``[start, end)``, dimensions, row filter.

    ``history_start`` is filled by the executor for KPIs that need all history
    (``cumulative_sum``, ``streak``): the first period with data. ``max_periods`` caps
    the periods the statement produces, look-back included, so that no range or offset
    can make a run eat the machine (a usage error names the limit). ``bucketed``: the
    ``by`` dimensions (date columns) grouped by the start of their period at the run's
    grain rather than by their value: ``kpi cohort``'s cohort (SPEC §13.6).
    """

    kpis: tuple[str, ...]
    grain: str = "month"
    start: dt.date | None = None
    end: dt.date | None = None
    by: tuple[str, ...] = ()
    where: Expression | None = None
    history_start: dt.date | None = None
    max_periods: int = DEFAULT_MAX_PERIODS
    bucketed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measure:
    alias: str
    function: str
    args: tuple[Node, ...]
    condition: Node | None
    counts: bool  # empty periods give 0, not null
    visibility: bool = False  # counts the rows a filter keeps: which dimension values show
    #: ``last``/``first``: reads only the rows at the period's latest (earliest) snapshot
    #: time; None: every row of the period
    snapshot: str | None = None


@dataclass
class Scan:
    """One pass over a source table, grouped by period and the requested dimensions.

    A ``snapshot`` scan (``semi_additive: last|first``) holds measures that read only the
    rows at the latest (earliest, per measure) snapshot time of each period (of each
    entity, with ``snapshot_per``): ``last`` and ``first`` KPIs of a table share one pass
    and one CTE of edge times. Its row filter cannot be folded into the aggregates, since
    it decides which time is the latest, so it is the scan's own. A ``window`` scan groups
    rows by the periods whose window holds them, not by the period of their time: one row
    counts in many periods.
    """

    alias: str
    source: Source
    time: str
    time_type: str
    dimensions: list[ColumnRef]
    snapshot: bool = False
    row_filter: Node | None = None  # applied in WHERE: a snapshot's, or one all its KPIs share
    #: per-entity snapshot (SPEC §13.4): each value of this column at its own edge time
    snapshot_per: str | None = None
    #: the rows each period's aggregates read (SPEC §13.1); None: the period's own rows
    window: Window | None = None
    lookback: int | None = 0  # whole periods read before the range; None: all history
    #: join paths to LEFT JOIN, each after its prefix (``(subscriptions,)`` before
    #: ``(subscriptions, accounts)``)
    joins: list[tuple[Join, ...]] = field(default_factory=list)
    #: (function, arguments, condition, snapshot edge) → the measure computing it
    measures: dict[tuple[str, tuple[Node, ...], Node | None, str | None], Measure] = field(
        default_factory=dict
    )

    def measure(
        self,
        function: str,
        args: tuple[Node, ...],
        condition: Node | None,
        counts: bool,
        visibility: bool = False,
        snapshot: str | None = None,
    ) -> Measure:
        # a visibility count reads every row of the period, as a KPI's count outside
        # snapshots does under the same condition: one column serves both
        key = (function, args, condition, snapshot)
        found = self.measures.get(key)
        if found is None:
            alias = f"{self.alias}_m{len(self.measures)}"
            found = Measure(alias, function, args, condition, counts, visibility, snapshot)
            self.measures[key] = found
        elif found.visibility and not visibility:  # a KPI's value now: whole-period twin too
            found = dataclasses.replace(found, visibility=False)
            self.measures[key] = found
        return found

    def need_join(self, ref: ColumnRef) -> None:
        for hops in range(1, len(ref.path) + 1):
            if ref.path[:hops] not in self.joins:
                self.joins.append(ref.path[:hops])


@dataclass
class KpiColumn:
    """One column of the result: a KPI, or a hidden step of a nested time function.

    Source KPIs read their scan's measures; derived columns read earlier columns, and
    ``expression`` is their tree with nested time functions lifted into hidden columns.
    """

    name: str
    alias: str
    layer: int
    scans: tuple[str, ...]
    expression: Node
    fill_null: float | None = None
    measures: dict[Call, Measure] = field(default_factory=dict)  # source KPIs only
    flags: tuple[str, ...] = ()  # visibility flags: its dimension values are those seen there


@dataclass(frozen=True)
class Flag:
    """Whether a dimension combination has rows in a scan after one row filter."""

    alias: str
    scan: str
    measure: str


@dataclass(frozen=True)
class Plan:
    """What one run computes, built once by :func:`build_plan` and read by compile and
    execute; :func:`with_range` gives the plan over the range the data has."""

    project: Project
    request: RunRequest
    scans: list[Scan]
    columns: dict[str, KpiColumn]  # every column computed, in dependency order
    outputs: tuple[str, ...]  # the KPIs asked for, in order
    periods: list[dt.date] | None  # the spine; None when it must come from the data
    functions: FunctionRegistry
    lookback: int | None = 0  # periods before the range that time functions read; None: all
    first_period: dt.date | None = None  # the first output period
    flags: list[Flag] = field(default_factory=list)
    #: ``lookback`` with all-history functions counted as 0: how far before the first
    #: period with data the finite windows reach
    finite_lookback: int = 0

    @property
    def layers(self) -> int:
        return max((c.layer for c in self.columns.values()), default=0)

    @property
    def needs_history(self) -> bool:
        return self.lookback is None and self.request.grain != "all"

    def scan_start(self, scan: Scan) -> dt.date | None:
        """A scan's lower time bound: the range start, moved back for its look-back."""
        request = self.request
        if scan.lookback is None:
            return None
        if request.start is None or scan.lookback == 0 or self.first_period is None:
            return request.start
        retail = self.project.retail_calendar
        return add_periods(self.first_period, request.grain, -scan.lookback, retail=retail)


def build_plan(
    project: Project, request: RunRequest, functions: FunctionRegistry | None = None
) -> Plan:
    """Check the request against the definitions and group the work into scans."""
    functions = functions or default_registry()
    _check_request_shape(project, request)
    needed = _dependency_order(project, request.kpis)
    problems = _check_request(project, request, needed, functions)
    for name in needed:
        tree = project.kpis[name].expression.tree
        if tree is not None:
            retail = project.retail_calendar
            problems.extend(
                offset_problems(tree, request.max_periods, request.grain, retail=retail)
            )
    if problems:
        raise DefinitionError(problems)

    scans: dict[tuple[object, ...], Scan] = {}
    columns: dict[str, KpiColumn] = {}
    looks: dict[str, int | None] = {}
    finite: dict[str, int | None] = {}  # the same, all-history functions counted as 0
    flags: dict[tuple[str, Node | None], Flag] = {}

    def add_derived(name: str, tree: Node, fill_null: float | None) -> None:
        def hide(subtree: Node) -> str:
            hidden = f"{AUX_PREFIX}{len(columns)}"
            add_derived(hidden, subtree, None)
            return hidden

        tree = lift_nested_windows(tree, hide)
        inputs = [columns[n.dotted] for n in value_names(tree)]
        layer = 1 + max((c.layer for c in inputs), default=0)
        reads = tuple(sorted({s for c in inputs for s in c.scans}))
        seen = tuple(dict.fromkeys(f for c in inputs for f in c.flags))
        columns[name] = KpiColumn(
            name, f"k{len(columns)}", layer, reads, tree, fill_null, flags=seen
        )
        retail = project.retail_calendar
        looks[name] = lookback(tree, looks, grain=request.grain, retail=retail)
        finite[name] = lookback(tree, finite, unbounded=0, grain=request.grain, retail=retail)

    needs = _input_needs(project, request, needed)
    history = {name for name, need in needs.items() if need is None}
    members = _assign_scans(project, request, needed, scans, history)
    for name in needed:
        kpi = project.kpis[name]
        tree = kpi.expression.tree
        assert tree is not None, "checked by _check_request"
        if kpi.is_derived:
            add_derived(name, tree, kpi.fill_null)
            continue
        scan = members[name]
        row_filter = None if scan.row_filter is not None or kpi.filter is None else kpi.filter.tree
        flag = flags.get((scan.alias, row_filter))
        if flag is None and request.by:  # without dimensions no value needs a flag
            measure = scan.measure("count", (), row_filter, counts=True, visibility=True)
            flag = Flag(f"f{len(flags)}", scan.alias, measure.alias)
            flags[(scan.alias, row_filter)] = flag
        columns[name] = KpiColumn(
            name,
            f"k{len(columns)}",
            0,
            (scan.alias,),
            tree,
            kpi.fill_null,
            _measures(project, kpi, scan, functions, row_filter),
            (flag.alias,) if flag is not None else (),
        )
        looks[name] = finite[name] = 0
    if request.where is not None and request.where.tree is not None:
        for scan in scans.values():
            _join_columns(project, scan, request.where.tree)
    for name, scan in members.items():  # how far before the range each scan reads
        scan.lookback = _combine([scan.lookback, needs.get(name, 0)])

    plan = Plan(
        project,
        request,
        list(scans.values()),
        columns,
        request.kpis,
        None,
        functions,
        _combine(looks[name] for name in request.kpis),
        None,
        list(flags.values()),
        _combine(finite[name] for name in request.kpis) or 0,
    )
    return _place(plan, request)


def with_range(plan: Plan, request: RunRequest) -> Plan:
    """``plan`` for ``request``, which differs from the plan's own only in its range
    (``start``, ``end``, ``history_start``): the executor's answer to
    :func:`data_range_needed`. Scans, measures and layers do not depend on the range, so
    they are kept as built; only the spine is placed again, with the same checks
    :func:`build_plan` makes on a range (one plan per run, not one per stage)."""
    same = dataclasses.replace(
        request, start=plan.request.start, end=plan.request.end, history_start=None
    )
    if same != dataclasses.replace(plan.request, history_start=None):
        raise ValueError("with_range changes the range of a request, nothing else")
    if request.start and request.end and request.start >= request.end:
        raise UsageError(f"empty range: --from {request.start} is not before --to {request.end}")
    return _place(plan, request)


def _place(plan: Plan, request: RunRequest) -> Plan:
    """``plan`` over ``request``'s range: its first output period and its spine, refused
    (usage error) when the range and the look-back hold more than ``max_periods``."""
    project = plan.project
    project_start = project.fiscal_year_start, project.week_start
    retail = project.retail_calendar
    plan_lookback = plan.lookback
    first = None
    if request.grain != "all" and request.start is not None:
        first = period_start(request.start, request.grain, *project_start, retail=retail)
    periods = None
    if request.grain != "all" and request.start is not None and request.end is not None:
        reach = plan_lookback
        if plan_lookback is None:
            # all history, and before the first period with data as far as finite
            # windows reach (those periods are empty, but count)
            reach = plan.finite_lookback
        _check_period_count(project, request, reach or 0)
        spine_start: dt.date | None = request.start
        if reach and first is not None:
            spine_start = add_periods(first, request.grain, -reach, retail=retail)
        if plan_lookback is None:
            if request.history_start is None:
                spine_start = None
            else:
                spine_start = min(request.history_start, spine_start or request.start)
                _check_period_count(project, request, reach or 0, spine_start)
        if spine_start is not None:
            periods = spine(spine_start, request.end, request.grain, *project_start, retail=retail)
    return dataclasses.replace(plan, request=request, periods=periods, first_period=first)


def _input_needs(project: Project, request: RunRequest, needed: list[str]) -> dict[str, int | None]:
    """How many periods before the range each KPI is read by its consumers (None: all
    history, through ``cumulative_sum``/``streak`` at any depth of nesting). It decides
    each scan's look-back, and gives the KPIs read over all history scans of their own,
    so that one running total does not make every other aggregate on the same table
    read years nobody asked for."""
    needs: dict[str, int | None] = dict.fromkeys(request.kpis, 0)
    if request.grain == "all":
        return needs
    retail = project.retail_calendar
    for name in reversed(needed):  # consumers before their inputs
        kpi = project.kpis[name]
        if not kpi.is_derived or kpi.expression.tree is None:
            continue
        need = needs.get(name, 0)
        for used, shift in references_with_shift(kpi.expression.tree, request.grain, retail=retail):
            wanted = None if need is None or shift is None else need + shift
            needs[used] = _combine([needs.get(used, 0), wanted])
    return needs


def _assign_scans(
    project: Project,
    request: RunRequest,
    needed: list[str],
    scans: dict[tuple[object, ...], Scan],
    history: set[str],
) -> dict[str, Scan]:
    """Source KPI → its scan; a row filter every KPI of a scan shares moves to its WHERE."""
    members: dict[str, Scan] = {}
    for name in needed:
        kpi = project.kpis[name]
        if not kpi.is_derived:
            members[name] = _scan_for(project, request, kpi, scans, name in history)
    for scan in scans.values():
        if scan.snapshot:
            continue
        kpis = [project.kpis[n] for n, s in members.items() if s is scan]
        filters = {k.filter.tree if k.filter is not None else None for k in kpis}
        if len(filters) == 1 and None not in filters:
            scan.row_filter = filters.pop()
            assert scan.row_filter is not None
            _join_columns(project, scan, scan.row_filter)
    return members


def _combine(looks: Iterable[int | None]) -> int | None:
    total = 0
    for look in looks:
        if look is None:
            return None
        total = max(total, look)
    return total


def _scan_for(
    project: Project,
    request: RunRequest,
    kpi: Kpi,
    scans: dict[tuple[object, ...], Scan],
    all_history: bool = False,
) -> Scan:
    """The scan a source KPI reads: shared by every KPI on the same table and time column
    (and the same need for all history, see :func:`_input_needs`)."""
    if kpi.conversion is not None:  # a funnel step reads a derived table (SPEC §13.5)
        from kpiengine.plan.conversion import conversion_scan

        return conversion_scan(project, request, kpi, scans)
    source = project.sources[kpi.source or ""]
    time = kpi.time or source.time or ""
    row_filter = kpi.filter.tree if kpi.filter is not None and kpi.semi_additive else None
    window = kpi.window if request.grain != "all" else None
    # windows differing only in where they are written read the same rows
    window_key = None if window is None else (window.kind, window.unit, window.count)
    key = (
        source.name,
        time,
        kpi.semi_additive is not None,  # last and first KPIs share a pass
        kpi.snapshot_per,
        row_filter,
        window_key,
        all_history,
    )
    scan = scans.get(key)
    if scan is None:
        dims = [_dimension_ref(project, source, d) for d in request.by]
        scan = Scan(
            f"s{len(scans)}",
            source,
            time,
            source.columns[time].type,
            dims,
            kpi.semi_additive is not None,
            row_filter,
            kpi.snapshot_per,
            window,
        )
        for ref in dims:
            scan.need_join(ref)
        if row_filter is not None:
            _join_columns(project, scan, row_filter)
        scans[key] = scan
    return scan


def _measures(
    project: Project, kpi: Kpi, scan: Scan, functions: FunctionRegistry, row_filter: Node | None
) -> dict[Call, Measure]:
    """The KPI's aggregates as scan measures; ``row_filter`` is its filter unless the scan
    applies it to every row already."""
    tree = kpi.expression.tree
    assert tree is not None
    if row_filter is not None:
        _join_columns(project, scan, row_filter)
    found: dict[Call, Measure] = {}
    for node in walk(tree):
        if not isinstance(node, Call):
            continue
        spec = functions.get(node.name)
        if spec is None or spec.kind != AGGREGATE:
            continue
        condition = _and(row_filter, node.where)
        _join_columns(project, scan, node)
        found[node] = scan.measure(
            node.name, node.args, condition, spec.counts, snapshot=kpi.semi_additive
        )
    return found


def _and(left: Node | None, right: Node | None) -> Node | None:
    if left is None or right is None:
        return left or right
    return Binary(left.span, "and", left, right)


def _join_columns(project: Project, scan: Scan, tree: Node) -> None:
    for node in walk(tree):
        if isinstance(node, Name):
            ref = resolve_column(project, scan.source, node.parts)
            if ref is not None:
                scan.need_join(ref)


def _dimension_ref(project: Project, source: Source, dimension: str) -> ColumnRef:
    ref = resolve_column(project, source, tuple(dimension.split(".")))
    assert ref is not None, "checked by _check_request"
    return ref


# -- request checks ------------------------------------------------------------------


def _check_request_shape(project: Project, request: RunRequest) -> None:
    """Problems with the request itself are usage errors (exit 2)."""
    if not request.kpis:
        raise UsageError("name at least one KPI, or use --all")
    if request.grain not in GRAINS:
        raise UsageError(f"unknown grain `{request.grain}`; use one of {', '.join(GRAINS)}")
    for name in request.kpis:
        if name not in project.kpis:
            hint = did_you_mean(name, project.kpis)
            raise UsageError(f"unknown KPI `{name}`" + (f"; {hint}" if hint else ""))
    if request.start and request.end and request.start >= request.end:
        raise UsageError(f"empty range: --from {request.start} is not before --to {request.end}")
    if len(set(request.by)) != len(request.by):
        raise UsageError("a dimension is given twice in --by")
    if isinstance(request.max_periods, bool) or not (
        isinstance(request.max_periods, int) and request.max_periods >= 1
    ):
        raise UsageError(f"--max-periods must be at least 1, not {request.max_periods!r}")


def _check_period_count(
    project: Project, request: RunRequest, reach: int, history: dt.date | None = None
) -> None:
    """Refuse (usage error, exit 2) a statement over more than ``request.max_periods``
    periods, counted from the range and the look-back before any spine is built."""
    assert request.start is not None and request.end is not None
    calendar = project.fiscal_year_start, project.week_start
    retail = project.retail_calendar
    in_range = count_periods(request.start, request.end, request.grain, *calendar, retail=retail)
    total = in_range + reach
    before = f", plus {reach:,} before it that time functions read" if reach else ""
    if history is not None:
        held = count_periods(history, request.end, request.grain, *calendar, retail=retail)
        total = max(total, held)
        before = f", from the first period with data ({history}) for all-history functions"
    if total <= request.max_periods:
        return
    raise UsageError(
        f"too many periods: {total:,} {request.grain} periods ({in_range:,} from "
        f"{request.start} to {request.end}{before}), over the limit of "
        f"{request.max_periods:,}; narrow --from/--to, use a coarser --grain, or raise the "
        "limit with --max-periods N (or KPI_MAX_PERIODS)"
    )


def _dependency_order(project: Project, names: tuple[str, ...]) -> list[str]:
    """The KPIs to compute, every input before the KPIs that use it."""
    order: dict[str, None] = {}
    for root in names:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if name in order:
                continue
            kpi = project.kpis[name]
            if expanded or not kpi.is_derived:
                order[name] = None
                continue
            stack.append((name, True))
            stack.extend((d, False) for d in reversed(referenced_kpis(kpi)) if d not in order)
    return list(order)


def _check_request(
    project: Project, request: RunRequest, needed: list[str], functions: FunctionRegistry
) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    time_functions = {s.name for s in functions if s.kind == TIME}
    for name in needed:
        kpi = project.kpis[name]
        if kpi.expression.tree is None:
            problems.append(
                Diagnostic("KPI201", f"KPI `{name}` has a syntax error", kpi.expression.span)
            )
            continue
        for node in walk(kpi.expression.tree):
            if isinstance(node, Call) and node.name in time_functions and request.grain == "all":
                problems.append(
                    Diagnostic(
                        "KPI312",
                        f"`{node.name}` needs a time grain, not `all`",
                        node.name_span or node.span,
                        "run with --grain month (or day, week, quarter, year)",
                    )
                )
            if isinstance(node, Call) and node.name in time_functions:
                unit = finer_unit(node, request.grain)
                if unit is not None:
                    problems.append(_finer_unit(node, unit, request.grain))
    for name in needed:
        problems.extend(_window_problems(project.kpis[name], request.grain))
    for name in request.kpis:
        for base in base_kpis(project, name):
            for dimension in request.by:
                if not dimension_available(project, base, dimension):
                    problems.append(_unavailable(project, name, base, dimension, "--by"))
            if request.where is not None and request.where.tree is not None:
                problems.extend(_check_where(project, name, base, request.where, functions))
    unique: dict[tuple[str, str], Diagnostic] = {}
    for problem in problems:
        unique.setdefault((problem.code, problem.message), problem)
    return list(unique.values())


def _window_problems(kpi: Kpi, grain: str) -> list[Diagnostic]:
    """KPI321: a window needs periods to end at, and ``to_date: G`` a G at least as
    coarse as the grain (a week-to-date at month grain would start inside the month)."""
    window = kpi.window
    if window is None:
        return []
    if grain == "all":
        return [
            Diagnostic(
                "KPI321",
                f"KPI `{kpi.name}` has a window, which needs a time grain, not `all`",
                window.span,
                "run with --grain month (or day, week, quarter, year)",
            )
        ]
    if window.kind == "to_date" and TIME_GRAINS.index(window.unit or "") < TIME_GRAINS.index(grain):
        return [
            Diagnostic(
                "KPI321",
                f"`to_date: {window.unit}` of KPI `{kpi.name}` is finer than the run's "
                f"grain `{grain}`",
                window.span,
                f"use `to_date:` with a unit of at least one {grain}, or run with "
                f"--grain {window.unit}",
            )
        ]
    return []


def _finer_unit(node: Call, unit: str, grain: str) -> Diagnostic:
    """KPI316: ``previous(k, 1, day)`` at month grain: a day before a month's start is in
    the month before, which ``previous(k)`` already says; the unit must be the grain or
    coarser (SPEC §13.2)."""
    argument = unit_argument(node)
    return Diagnostic(
        "KPI316",
        f"the calendar unit `{unit}` of `{node.name}` is finer than the run's grain `{grain}`",
        argument.span if argument is not None else node.span,
        f"use a unit of at least one {grain} (e.g. {node.name}(k, 1, year)), "
        f"or run with a finer --grain",
    )


def _unavailable(project: Project, name: str, base: Kpi, dimension: str, flag: str) -> Diagnostic:
    via = "" if base.name == name else f" (through its input `{base.name}`)"
    declared = base.dimensions
    source = project.sources.get(base.source or "")
    reason = source and unresolved_reason(project, source, tuple(dimension.split(".")))
    hint = reason or (
        f"`{base.name}` declares dimensions: {', '.join(declared) or 'none'}"
        if declared is not None
        else f"`{base.name}` reads source `{base.source}`"
    )
    return Diagnostic(
        "KPI310",
        f"KPI `{name}`{via} cannot be grouped by `{dimension}` ({flag})",
        base.dimension_spans[0] if base.dimension_spans else base.span,
        hint,
    )


def _check_where(
    project: Project, name: str, base: Kpi, where: Expression, functions: FunctionRegistry
) -> list[Diagnostic]:
    assert where.tree is not None
    source = project.sources[base.source or ""]
    scope = Scope("row", project, functions, source)
    kind = check_expression(where.tree, scope)
    problems = list(scope.diagnostics)
    if kind not in ("boolean", "null"):
        problems.append(
            Diagnostic(
                "KPI305",
                "--where must be a condition",
                where.span,
                "e.g. --where \"region = 'emea'\"",
            )
        )
    if problems:
        return problems
    for node in walk(where.tree):
        if isinstance(node, Name) and not dimension_available(project, base, node.dotted):
            problems.append(_unavailable(project, name, base, node.dotted, "--where"))
    return problems


def data_range_needed(plan: Plan) -> bool:
    """Whether the run must first ask the engine for the data's time range or history."""
    request = plan.request
    if request.grain == "all":
        return False
    missing_range = request.start is None or request.end is None
    return missing_range or (plan.needs_history and request.history_start is None)
