"""Check stage: names, types, aggregation levels and dependency cycles.

Runs on the loaded project and returns every problem found (it never stops at the
first). The same expression checker serves four contexts, which differ only in what a
name means and which functions are allowed:

* ``aggregate`` — a source KPI's expression: names are columns, and every column must sit
  inside an aggregate;
* ``row`` — filters, ``where`` clauses, ``--where``: names are columns, no aggregates;
* ``derived`` — a derived KPI: names are KPIs, time functions allowed;
* ``rule`` — a rule condition: names are KPIs plus ``value``, ``target``, ``previous``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kpiengine.diagnostics import Diagnostic, did_you_mean
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
from kpiengine.language.functions import AGGREGATE, TIME, FunctionRegistry, default_registry
from kpiengine.language.names import (
    TYPE_OF_COLUMN,
    base_kpis,
    column_candidates,
    dimension_available,
    referenced_kpis,
    resolve_column,
    unresolved_reason,
)
from kpiengine.loader.model import Expression, Kpi, Project, Rule, Source
from kpiengine.loader.vocabulary import TIME_GRAINS
from kpiengine.source import Span

TEMPORAL = frozenset({"date", "timestamp"})
#: Bound on round()'s digits: past it a double no longer changes (rules clamp there too),
#: and engines refuse digits beyond 32 bits.
MAX_DIGITS = 400
#: How messages name each of the expression types (loader.model.EXPRESSION_TYPES).
TYPE_WORDS = {
    "number": "a number",
    "string": "text",
    "boolean": "a true/false condition",
    "date": "a date",
    "timestamp": "a timestamp",
    "null": "null",
}


#: A literal's kind → its type: each kind of literal is written as one type.
_LITERAL_TYPES = {kind: kind for kind in ("number", "string", "boolean", "null", "date")}


def _describe(kind: str) -> str:
    return TYPE_WORDS.get(kind, kind)


@dataclass
class Scope:
    """What names mean in one expression, and what is allowed in it."""

    mode: str  # "aggregate" | "row" | "derived" | "rule"
    project: Project
    functions: FunctionRegistry
    source: Source | None = None
    variables: dict[str, str] = field(default_factory=dict)  # rule variables → type
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))


def check_expression(node: Node, scope: Scope) -> str:
    """Infer the type of ``node``; problems go to ``scope.diagnostics``."""
    return _Checker(scope).infer(node, inside_aggregate=False)


class _Checker:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def infer(self, node: Node, inside_aggregate: bool) -> str:
        return _INFER[type(node)](self, node, inside_aggregate)

    # -- leaves -----------------------------------------------------------------------
    def _infer_literal(self, node: Literal, inside: bool) -> str:
        return _LITERAL_TYPES[node.kind]

    def _infer_name(self, node: Name, inside: bool) -> str:
        scope = self.scope
        if scope.mode in ("aggregate", "row"):
            return self._column(node, inside)
        if len(node.parts) == 1 and node.parts[0] in scope.variables:
            return scope.variables[node.parts[0]]
        if len(node.parts) == 1 and node.parts[0] in scope.project.kpis:
            return "number"
        # In a rule, `value`, `target` and `previous` are what a near miss most often
        # means (`valeu < target`): offer them before the project's KPIs, whose many
        # names would otherwise win the did-you-mean (`utilization` for `target`).
        near = [*scope.variables, "target"] if "value" in scope.variables else scope.variables
        hint = did_you_mean(node.dotted, near)
        hint = hint or did_you_mean(node.dotted, [*scope.project.kpis, *scope.variables])
        if hint is None and any(
            node.parts[-1] in s.columns for s in scope.project.sources.values()
        ):
            hint = (
                f"`{node.dotted}` is a column; columns are used inside aggregates of a "
                "KPI that has `source:`, and derived KPIs combine KPIs"
            )
        scope.error("KPI302", f"unknown KPI `{node.dotted}`", node.span, hint)
        return "null"

    def _column(self, node: Name, inside: bool) -> str:
        scope = self.scope
        assert scope.source is not None
        ref = resolve_column(scope.project, scope.source, node.parts)
        if ref is None:
            reason = unresolved_reason(scope.project, scope.source, node.parts)
            if reason is not None and reason.startswith("ambiguous"):
                scope.error("KPI313", reason.split(";")[0], node.span, _EXPLICIT_PATH)
                return "null"
            hint = reason or did_you_mean(
                node.dotted, column_candidates(scope.project, scope.source)
            )
            if hint is None and node.dotted in scope.project.kpis:
                hint = (
                    f"`{node.dotted}` is a KPI; KPIs are combined in a derived KPI "
                    "(one without `source:`)"
                )
            scope.error(
                "KPI301",
                f"unknown column `{node.dotted}` in source `{scope.source.name}`",
                node.span,
                hint,
            )
            return "null"
        if scope.mode == "aggregate" and not inside:
            scope.error(
                "KPI306",
                f"column `{node.dotted}` is used outside an aggregate",
                node.span,
                f"a KPI gives one value per period: wrap it, e.g. "
                f"`sum({node.dotted})` or `count_distinct({node.dotted})`",
            )
        return ref.type

    # -- operators --------------------------------------------------------------------
    def _infer_unary(self, node: Unary, inside: bool) -> str:
        kind = self.infer(node.operand, inside)
        if node.op == "-":
            self._expect(kind, ("number",), node.operand.span, "`-`")
            return "number"
        self._expect(kind, ("boolean",), node.operand.span, "`not`")
        return "boolean"

    def _infer_binary(self, node: Binary, inside: bool) -> str:
        # A flat chain `a + b + ... + z` is a left-deep tree as tall as it is long: walk
        # its left spine in a loop, so only real nesting costs Python stack. (The parser
        # still counts a chain as nesting, because plan and compile recurse on it.)
        spine = [node]
        while isinstance(spine[-1].left, Binary):
            spine.append(spine[-1].left)
        kind = self.infer(spine[-1].left, inside)
        for current in reversed(spine):
            kind = self._binary(current, kind, self.infer(current.right, inside))
        return kind

    def _binary(self, node: Binary, left: str, right: str) -> str:
        """The type of ``node`` given the types of its two sides."""
        if node.op in ("and", "or"):
            self._expect(left, ("boolean",), node.left.span, f"`{node.op}`")
            self._expect(right, ("boolean",), node.right.span, f"`{node.op}`")
            return "boolean"
        if node.op in ("+", "-", "*", "/", "%"):
            for kind, side in ((left, node.left), (right, node.right)):
                if kind not in ("number", "null"):
                    self.scope.error(
                        "KPI305",
                        f"`{node.op}` needs numbers on both sides, but "
                        f"`{_text(side)}` is {_describe(kind)}",
                        side.span,
                        "use days_between(a, b) for dates" if kind in TEMPORAL else None,
                    )
            return "number"
        self._comparable(left, right, node.right.span, f"`{node.op}`")
        return "boolean"

    def _infer_in_list(self, node: InList, inside: bool) -> str:
        kind = self.infer(node.operand, inside)
        for item in node.items:
            self._comparable(kind, self.infer(item, inside), item.span, "`in`")
        return "boolean"

    def _infer_between(self, node: Between, inside: bool) -> str:
        kind = self.infer(node.operand, inside)
        for bound in (node.low, node.high):
            self._comparable(kind, self.infer(bound, inside), bound.span, "`between`")
        return "boolean"

    def _infer_is_null(self, node: IsNull, inside: bool) -> str:
        self.infer(node.operand, inside)
        return "boolean"

    # -- calls ------------------------------------------------------------------------
    def _infer_call(self, node: Call, inside: bool) -> str:
        scope = self.scope
        span = node.name_span or node.span
        if node.name == "pace" and scope.mode == "rule":
            # rule syntax, not a function: asked of the registry, a miss would make it
            # look through installed plugins (and turn the compile cache off)
            return self._infer_pace(node)
        spec = scope.functions.get(node.name)
        if spec is None:
            scope.error(
                "KPI303",
                f"unknown function `{node.name}`",
                span,
                did_you_mean(node.name, scope.functions.names()),
            )
            for arg in node.children():  # as if an aggregate: no KPI306 echoing this error
                self.infer(arg, True)
            return "null"
        if spec.kind == AGGREGATE:
            if scope.mode != "aggregate":
                scope.error(
                    "KPI307",
                    f"aggregate `{node.name}` is not allowed here",
                    span,
                    _AGGREGATE_HINTS[scope.mode],
                )
            elif inside:
                scope.error(
                    "KPI307",
                    f"aggregate `{node.name}` inside another aggregate",
                    span,
                    "aggregates cannot be nested; compute each one in its own "
                    "KPI and combine them in a derived KPI",
                )
        if spec.kind == TIME and scope.mode != "derived":
            scope.error(
                "KPI312",
                f"time function `{node.name}` is not allowed here",
                span,
                "time functions work on KPIs: use it in a derived KPI (one without `source:`)",
            )
        if node.where is not None and spec.kind != AGGREGATE:
            scope.error(
                "KPI308",
                f"`where` can only be used inside an aggregate, not in `{node.name}`",
                node.where.span,
                "use if(condition, a, b) to choose between values",
            )
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            scope.error(
                "KPI304",
                f"`{node.name}` takes {spec.arity_text()} argument"
                f"{'' if spec.arity_text() == '1' else 's'}, got {count}",
                span,
                spec.description,
            )
        if spec.needs_column and scope.mode == "aggregate" and node.args:
            self._needs_column(node)
        now_inside = inside or spec.kind == AGGREGATE
        kinds: list[str] = []
        for index, arg in enumerate(node.args):
            param = spec.params[min(index, len(spec.params) - 1)] if spec.params else "any"
            if param == "unit" and index >= len(spec.params):
                param = "any"  # an argument too many: KPI304 already, no KPI316 echo
            if param == "unit":  # a bare word, not a KPI: never inferred as a name
                self._check_unit(node.name, arg)
                kinds.append("null")
                continue
            kind = self.infer(arg, now_inside)
            kinds.append(kind)
            self._check_param(node.name, param, arg, kind)
        if node.where is not None:  # misplaced `where` is KPI308 already: no KPI306 echo
            where_kind = self.infer(node.where, now_inside or spec.kind != AGGREGATE)
            self._expect(where_kind, ("boolean",), node.where.span, "`where`")
        if spec.returns == "arg0":
            return kinds[0] if kinds else "null"
        if spec.returns == "common":
            branches = kinds[1:] if node.name == "if" else kinds
            return self._common(branches, node)
        return spec.returns

    def _infer_pace(self, node: Call) -> str:
        """``pace(kpi)`` in a rule (SPEC §13.8): one KPI by name, or ``value``; whether that
        KPI can be paced is :func:`_pace_problems`' question."""
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, Name) or node.where is not None:
            self.scope.error(
                "KPI304",
                "`pace` takes one argument: a KPI name",
                node.name_span or node.span,
                "e.g. pace(revenue) < quota; in a KPI's own rule, pace < target",
            )
            return "null"
        self.infer(arg, False)
        return "number"

    def _needs_column(self, node: Call) -> None:
        """Refuse a constant as the value of an aggregate such as `percentile`: it
        passes here but fails on the engine (`percentile(0.0, 0.5)` is a binder error)."""
        value = node.args[0]
        if not any(isinstance(n, Name) for n in walk(value)):
            self.scope.error(
                "KPI316",
                f"the value of `{node.name}` must use a column; "
                f"`{_shorten(_text(value))}` is a constant",
                value.span,
                f"e.g. {node.name}(amount{', 0.9' if len(node.args) > 1 else ''})",
            )

    def _check_unit(self, function: str, arg: Node) -> None:
        """The calendar unit of ``previous(k, n, year)``: one of the time grains, written
        as a bare word. Whether it is finer than the run's grain is the planner's check
        (the grain is a run option)."""
        word = arg.parts[0] if isinstance(arg, Name) and len(arg.parts) == 1 else None
        if word in TIME_GRAINS:
            return
        shown = word if word is not None else _shorten(_text(arg))
        self.scope.error(
            "KPI316",
            f"the calendar unit of `{function}` must be one of {', '.join(TIME_GRAINS)}, "
            f"not `{shown}`",
            arg.span,
            (did_you_mean(word, TIME_GRAINS) if word is not None else None)
            or f"e.g. {function}(revenue, 1, year): the same period a year earlier",
        )

    def _check_param(self, function: str, param: str, arg: Node, kind: str) -> None:
        if param == "digits":
            digits = _whole_literal(arg)
            if digits is None or not -MAX_DIGITS <= digits <= MAX_DIGITS:
                self.scope.error(
                    "KPI316",
                    f"the number of decimals in `{function}` must be a whole number "
                    f"from -{MAX_DIGITS} to {MAX_DIGITS}",
                    arg.span,
                    f"e.g. {function}(x, 2); {function}(x, -3) rounds to thousands",
                )
            return
        if param in ("fraction", "periods"):
            value = arg.value if isinstance(arg, Literal) and arg.kind == "number" else None
            assert not isinstance(value, str | dt.date), "a number literal holds a number"
            if param == "fraction" and (value is None or not 0 <= value <= 1):
                self.scope.error(
                    "KPI316",
                    f"the second argument of `{function}` must be a number between 0 and 1",
                    arg.span,
                    "e.g. percentile(x, 0.9)",
                )
            if param == "periods" and (not isinstance(value, int) or value < 1):
                self.scope.error(
                    "KPI316",
                    f"the number of periods in `{function}` must be a whole number of at least 1",
                    arg.span,
                    f"e.g. {function}(revenue, 3)",
                )
            return
        allowed = {
            "number": ("number",),
            "string": ("string",),
            "boolean": ("boolean",),
            "temporal": ("date", "timestamp"),
            "orderable": ("number", "string", "date", "timestamp"),
        }.get(param)
        if allowed is not None:
            self._expect(kind, allowed, arg.span, f"`{function}`")

    # -- type helpers -----------------------------------------------------------------
    def _expect(self, kind: str, allowed: Iterable[str], span: Span, what: str) -> None:
        allowed = tuple(allowed)
        if kind == "null" or kind in allowed:
            return
        wanted = " or ".join(_describe(a) for a in allowed)
        self.scope.error(
            "KPI305",
            f"{what} needs {wanted}, not {_describe(kind)}",
            span,
            "compare it to get a condition, e.g. `stage = 'won'`" if "boolean" in allowed else None,
        )

    def _comparable(self, left: str, right: str, span: Span, what: str) -> None:
        if "null" in (left, right) or left == right:
            return
        if left in TEMPORAL and right in TEMPORAL:
            return
        hint = None
        if {left, right} == {"string"} | ({left, right} & TEMPORAL) and len({left, right}) == 2:
            hint = "write a date as date '2024-01-31'"
        elif {left, right} & TEMPORAL and "number" in (left, right):
            hint = (
                "compare with a date literal, e.g. `date '2024-01-01'`, or count days "
                "with days_between(a, b), e.g. `days_between(created_at, closed_at) > 30`"
            )
        self.scope.error(
            "KPI305", f"{what} compares {_describe(left)} with {_describe(right)}", span, hint
        )

    def _common(self, kinds: list[str], node: Call) -> str:
        known = [k for k in kinds if k != "null"]
        if not known:
            return "null"
        first = known[0]
        for kind in known[1:]:
            if kind != first and not (kind in TEMPORAL and first in TEMPORAL):
                self.scope.error(
                    "KPI305",
                    f"the arguments of `{node.name}` mix {_describe(first)} and {_describe(kind)}",
                    node.span,
                )
                break
        return first


#: Node class → the checker's method inferring its type (see ``dispatch_table``).
_INFER: Mapping[type[Node], Callable[[_Checker, Any, bool], str]] = dispatch_table(
    "check",
    {
        Literal: _Checker._infer_literal,
        Name: _Checker._infer_name,
        Unary: _Checker._infer_unary,
        Binary: _Checker._infer_binary,
        InList: _Checker._infer_in_list,
        Between: _Checker._infer_between,
        IsNull: _Checker._infer_is_null,
        Call: _Checker._infer_call,
    },
)

_AGGREGATE_HINTS = {
    "row": "filters and `where` conditions apply to single rows; aggregates belong in "
    "the KPI's expression",
    "derived": "a derived KPI combines other KPIs by name; aggregate columns in a KPI "
    "that has `source:`",
    "rule": "a rule compares KPI values; aggregate in a KPI and name that KPI here",
}


def _whole_literal(node: Node) -> int | None:
    """The value of a whole-number literal such as `2` or `-3`; None for anything else."""
    sign = 1
    if isinstance(node, Unary) and node.op == "-":
        sign, node = -1, node.operand
    if isinstance(node, Literal) and node.kind == "number" and isinstance(node.value, int):
        return sign * node.value
    return None


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(node: Node) -> str:
    from kpiengine.language.parse import to_text

    return to_text(node)


# -- project-level checks ---------------------------------------------------------------


def check_project(project: Project, functions: FunctionRegistry | None = None) -> list[Diagnostic]:
    """Every problem in the project's sources, KPIs and rules."""
    functions = functions or default_registry()
    found: list[Diagnostic] = []
    found.extend(_check_conformed(project))
    for source in project.sources.values():
        found.extend(_check_source(project, source))
        found.extend(_check_mappings(project, source))
    for kpi in project.kpis.values():
        found.extend(check_kpi(project, kpi, functions))
    found.extend(_check_cycles(project))
    for rule in project.rules:
        found.extend(_check_rule(project, rule, None, functions))
    return sorted(found, key=Diagnostic.sort_key)


def _check_source(project: Project, source: Source) -> list[Diagnostic]:
    found = []
    if source.time is not None:
        found.extend(_check_time_column(source, source.time, source.span))
    for join in source.joins:
        target = project.sources.get(join.source)
        if target is None:
            found.append(
                Diagnostic(
                    "KPI311",
                    f"join to unknown source `{join.source}`",
                    join.span,
                    did_you_mean(join.source, project.sources),
                )
            )
            continue
        if join.left not in source.columns:
            found.append(
                Diagnostic(
                    "KPI313",
                    f"join column `{join.left}` is not a column of `{source.name}`",
                    join.span,
                    did_you_mean(join.left, source.columns),
                )
            )
        if join.right not in target.columns:
            found.append(
                Diagnostic(
                    "KPI313",
                    f"join column `{join.right}` is not a column of `{target.name}`",
                    join.span,
                    did_you_mean(join.right, target.columns),
                )
            )
    return found


_EXPLICIT_PATH = "name the path explicitly, e.g. `subscriptions.accounts.region`"


def _check_conformed(project: Project) -> list[Diagnostic]:
    """Each conformed dimension names ``source.column`` of a known source."""
    found = []
    for dimension in project.dimensions.values():
        owner, column = dimension.column.split(".", 1)
        source = project.sources.get(owner)
        if source is None:
            found.append(
                Diagnostic(
                    "KPI311",
                    f"conformed dimension `{dimension.name}`: unknown source `{owner}`",
                    dimension.span,
                    did_you_mean(owner, project.sources),
                )
            )
        elif column not in source.columns:
            found.append(
                Diagnostic(
                    "KPI301",
                    f"conformed dimension `{dimension.name}`: unknown column `{column}` "
                    f"in source `{owner}`",
                    dimension.span,
                    did_you_mean(column, source.columns),
                )
            )
    return found


def _check_mappings(project: Project, source: Source) -> list[Diagnostic]:
    """A source maps only conformed dimensions, each to a column it can reach."""
    found = []
    for mapping in source.dimensions.values():
        if mapping.name not in project.dimensions:
            hint = did_you_mean(mapping.name, project.dimensions) or (
                "declare it under `dimensions:` in kpiengine.yaml, e.g. "
                f"`{mapping.name}: {{column: {source.name}.{mapping.column}}}`"
            )
            found.append(
                Diagnostic(
                    "KPI310",
                    f"unknown conformed dimension `{mapping.name}` in source `{source.name}`",
                    mapping.span,
                    hint,
                )
            )
            continue
        if resolve_column(project, source, (mapping.name,)) is None:
            reason = unresolved_reason(project, source, tuple(mapping.column.split(".")))
            found.append(
                Diagnostic(
                    "KPI313" if reason else "KPI301",
                    reason.split(";")[0]
                    if reason
                    else f"dimension `{mapping.name}` maps to unknown column `{mapping.column}` "
                    f"in source `{source.name}`",
                    mapping.span,
                    _EXPLICIT_PATH
                    if reason
                    else did_you_mean(mapping.column, column_candidates(project, source)),
                )
            )
    return found


def _check_time_column(source: Source, name: str, span: Span) -> list[Diagnostic]:
    column = source.columns.get(name)
    if column is None:
        return [
            Diagnostic(
                "KPI315",
                f"time column `{name}` is not a column of `{source.name}`",
                span,
                did_you_mean(name, source.columns),
            )
        ]
    if TYPE_OF_COLUMN[column.type] not in TEMPORAL:
        return [
            Diagnostic(
                "KPI315",
                f"time column `{name}` is {column.type}, not a date or timestamp",
                span,
                "declare it as `date` or `timestamp`",
            )
        ]
    return []


def check_kpi(project: Project, kpi: Kpi, functions: FunctionRegistry) -> list[Diagnostic]:
    """The problems of one KPI and its rules alone: what `kpi run` needs to tell a KPI it
    cannot compute from the ones it can (the project's other problems are not its own)."""
    if kpi.conversion is not None:  # a funnel step (SPEC §13.5)
        from kpiengine.language.conversion import check_conversion

        found = check_conversion(project, kpi, functions)
    elif kpi.is_derived:
        found = _check_derived(project, kpi, functions)
    else:
        found = _check_source_kpi(project, kpi, functions)
    for rule in kpi.rules:
        found.extend(_check_rule(project, rule, kpi, functions))
    return found


def _check_source_kpi(project: Project, kpi: Kpi, functions: FunctionRegistry) -> list[Diagnostic]:
    source = project.sources.get(kpi.source or "")
    if source is None:
        return [
            Diagnostic(
                "KPI311",
                f"unknown source `{kpi.source}`",
                kpi.source_span or kpi.span,
                did_you_mean(kpi.source or "", project.sources),
            )
        ]
    scope = Scope("aggregate", project, functions, source)
    if kpi.expression.tree is not None:
        kind = check_expression(kpi.expression.tree, scope)
        _expect_number(scope, kind, kpi.expression)
    if kpi.filter is not None and kpi.filter.tree is not None:
        row = Scope("row", project, functions, source, diagnostics=scope.diagnostics)
        kind = check_expression(kpi.filter.tree, row)
        if kind not in ("boolean", "null"):
            scope.error(
                "KPI305",
                f"a filter must be a condition, not {_describe(kind)}",
                kpi.filter.span,
                "e.g. filter: region != 'internal'",
            )
    time = kpi.time or source.time
    if time is None:
        scope.error(
            "KPI315",
            f"KPI `{kpi.name}` has no time column",
            kpi.span,
            f"add `time:` to the KPI or to source `{source.name}`",
        )
    else:
        scope.diagnostics.extend(_check_time_column(source, time, kpi.time_span or kpi.span))
    scope.diagnostics.extend(_check_snapshot_and_window(kpi, source))
    for dimension, span in zip(kpi.dimensions or (), kpi.dimension_spans, strict=False):
        parts = tuple(dimension.split("."))
        if resolve_column(project, source, parts) is None:
            reason = unresolved_reason(project, source, parts)
            if reason is not None and reason.startswith("ambiguous"):
                scope.error("KPI313", reason.split(";")[0], span, _EXPLICIT_PATH)
                continue
            scope.error(
                "KPI310",
                f"dimension `{dimension}` is not a column of `{source.name}`, "
                "of a source it joins to, or a conformed dimension it reaches",
                span,
                reason or did_you_mean(dimension, column_candidates(project, source)),
            )
    return scope.diagnostics


def _check_snapshot_and_window(kpi: Kpi, source: Source) -> list[Diagnostic]:
    """A per-entity snapshot names a column of the source (SPEC §13.4); a window and a
    snapshot do not combine: a snapshot is one time of the period, a window spans many."""
    found: list[Diagnostic] = []
    if kpi.snapshot_per is not None and kpi.snapshot_per not in source.columns:
        found.append(
            Diagnostic(
                "KPI322",
                f"`per: {kpi.snapshot_per}` is not a column of source `{source.name}`",
                kpi.snapshot_per_span or kpi.span,
                did_you_mean(kpi.snapshot_per, source.columns)
                or f"columns of `{source.name}`: {', '.join(source.columns)}",
            )
        )
    if kpi.window is not None and kpi.semi_additive is not None:
        found.append(
            Diagnostic(
                "KPI321",
                "a KPI with `window:` cannot also be `semi_additive`",
                kpi.window.span,
                "a snapshot is one time of each period; keep one of the two",
            )
        )
    return found


def _check_derived(project: Project, kpi: Kpi, functions: FunctionRegistry) -> list[Diagnostic]:
    scope = Scope("derived", project, functions)
    if kpi.expression.tree is not None:
        kind = check_expression(kpi.expression.tree, scope)
        _expect_number(scope, kind, kpi.expression)
        named = any(isinstance(node, Name) for node in walk(kpi.expression.tree))
        if not named and kind in ("number", "null"):  # else KPI305 says enough
            # A constant has no data to span periods with: `kpi run` had no range to
            # default to, and nothing to group by. Not a KPI: refuse it by name.
            scope.error(
                "KPI105",
                f"a derived KPI combines other KPIs by name, but "
                f"`{_shorten(kpi.expression.text)}` names none",
                kpi.expression.span,
                "give it `source:` and an aggregate, e.g. `count()`, or name a KPI, "
                "e.g. `revenue / 2`",
            )
    for key, value in (
        ("filter", kpi.filter),
        ("time", kpi.time),
        ("semi_additive", kpi.semi_additive),
        ("window", kpi.window),
    ):
        if value is not None:
            scope.error(
                "KPI105",
                f"`{key}` only applies to a KPI with `source:`",
                kpi.span,
                f"put the {key} on the source KPIs this KPI combines",
            )
    for dimension, span in zip(kpi.dimensions or (), kpi.dimension_spans, strict=False):
        for base in base_kpis(project, kpi.name):
            if not dimension_available(project, base, dimension):
                base_source = project.sources.get(base.source or "")
                reason = base_source and unresolved_reason(
                    project, base_source, tuple(dimension.split("."))
                )
                scope.error(
                    "KPI310",
                    f"dimension `{dimension}` is not available: input KPI "
                    f"`{base.name}` cannot be grouped by it",
                    span,
                    reason or None,
                )
                break
    return scope.diagnostics


def _expect_number(scope: Scope, kind: str, expression: Expression) -> None:
    if kind not in ("number", "null"):
        scope.error(
            "KPI305",
            f"a KPI must compute a number, but this expression gives {_describe(kind)}",
            expression.span,
            "count rows where it holds instead, e.g. count(where stage = 'won')"
            if kind == "boolean"
            else None,
        )


def _check_rule(
    project: Project, rule: Rule, kpi: Kpi | None, functions: FunctionRegistry
) -> list[Diagnostic]:
    variables = {}
    if kpi is not None:
        variables = {"value": "number", "previous": "number"}
        if kpi.target is not None:
            variables["target"] = "number"
        variables["pace"] = "number"
    scope = Scope("rule", project, functions, variables=variables)
    for key, expression, example in (
        ("when", rule.when, "when: value < target"),
        ("require", rule.require, "require: deals_closed >= 20"),
    ):
        if expression is None or expression.tree is None:
            continue
        kind = check_expression(expression.tree, scope)
        if kind not in ("boolean", "null"):
            scope.error(
                "KPI305",
                f"a rule's `{key}` must be a condition, not {_describe(kind)}",
                expression.span,
                f"e.g. {example}",
            )
        scope.diagnostics.extend(_pace_problems(project, expression.tree, kpi, variables))
    if kpi is not None and kpi.target is None:
        for diagnostic in scope.diagnostics:
            if diagnostic.code == "KPI302" and "`target`" in diagnostic.message:
                scope.diagnostics[scope.diagnostics.index(diagnostic)] = Diagnostic(
                    "KPI302",
                    diagnostic.message,
                    diagnostic.span,
                    f"KPI `{kpi.name}` has no `target:`; add one to compare with it",
                )
    return scope.diagnostics


def _pace_problems(
    project: Project, tree: Node, kpi: Kpi | None, variables: Mapping[str, str]
) -> list[Diagnostic]:
    """KPI323 where a rule paces a KPI that is not additive (SPEC §13.8): ``pace`` in a
    KPI's rule, or ``pace(k)``."""
    from kpiengine.rules.pace import not_additive

    found = []
    for node in walk(tree):
        paced: Kpi | None = None
        if isinstance(node, Name) and node.parts == ("pace",) and "pace" in variables:
            paced = kpi
        elif isinstance(node, Call) and node.name == "pace" and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, Name):
                name = arg.dotted
                paced = kpi if name == "value" and "value" in variables else project.kpis.get(name)
        reason = not_additive(project, paced) if paced is not None else None
        if reason:
            found.append(
                Diagnostic(
                    "KPI323",
                    f"`pace` needs an additive KPI (sums and counts): {reason}",
                    node.span,
                    "pace projects a value that grows with the days of a period; compare the "
                    "KPI itself (value < target), or pace the sums or counts it is built from",
                )
            )
    return found


def _check_cycles(project: Project) -> list[Diagnostic]:
    """Report each dependency cycle among derived KPIs once, at its first KPI."""
    graph = {
        name: [d for d in referenced_kpis(k) if d in project.kpis]
        for name, k in project.kpis.items()
        if k.is_derived
    }
    found: list[Diagnostic] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()
    for start in graph:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            name, index = stack.pop()
            if index == 0:
                state[name] = 1
                path.append(name)
            children = graph.get(name, [])
            if index < len(children):
                stack.append((name, index + 1))
                child = children[index]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        first = project.kpis[cycle[0]]
                        found.append(
                            Diagnostic(
                                "KPI309",
                                "dependency cycle: " + " → ".join([*cycle, cycle[0]]),
                                first.expression.span,
                                "a derived KPI cannot depend on itself, directly or through others",
                            )
                        )
                elif not state.get(child):
                    stack.append((child, 0))
            else:
                state[name] = 2
                path.pop()
    return found
