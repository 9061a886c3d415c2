"""Lint: warnings about definitions that work but are probably not what was meant.

Runs after the check stage on whatever loaded, and returns diagnostics with
``Severity.WARNING`` and ``KPI6xx`` codes. A warning never stops a run and never makes
``kpi validate`` fail unless the project asks for it (``validate: {fail_on: warning}``);
a project silences a code with ``validate: {ignore: [KPI603]}``.

Each rule is one small function ``(context) -> diagnostics``; :data:`RULES` lists them,
so adding a warning is adding a function (and its code in ``CODES`` and its page in
``docs/diagnostics.md``, which a test enforces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from kpiengine.diagnostics import Diagnostic, Severity
from kpiengine.language.ast import Binary, Call, Name, Node
from kpiengine.language.functions import AGGREGATE, default_registry
from kpiengine.language.names import base_kpis, dimension_available, referenced_kpis
from kpiengine.loader.model import Kpi, Project
from kpiengine.source import Span


@dataclass(frozen=True)
class Context:
    """What a lint rule sees: the project, and which files failed to load cleanly.

    A file with a load error (``KPI1xx``) is only partly in the model: a KPI whose
    ``unit:`` is invalid has no unit, a rule that failed has gone. Warnings about such a
    file would be noise that the error already explains, so rules skip it; and when any
    file failed, a source may look unused only because the KPI using it did not load.
    """

    project: Project
    broken_files: frozenset[str] = frozenset()

    def kpis(self) -> Iterator[Kpi]:
        return (k for k in self.project.kpis.values() if k.span.file not in self.broken_files)


Rule = Callable[[Context], Iterator[Diagnostic]]

#: Units whose values are shares: a percent KPI built from them is still a share.
_SHARE_UNITS = frozenset({"percent", "ratio"})
#: Aggregates whose result stays in the unit of their argument (an average of shares is
#: a share), so a percent KPI may be one of them without a division.
_UNIT_PRESERVING = frozenset({"avg", "median", "percentile", "min", "max"})
#: KPI-level functions that give a ratio whatever their input.
_RATIO_FUNCTIONS = frozenset({"growth"})


def _warning(code: str, message: str, span: Span | None, hint: str | None) -> Diagnostic:
    return Diagnostic(code, message, span, hint, Severity.WARNING)


def unused_sources(context: Context) -> Iterator[Diagnostic]:
    """KPI601: a source no KPI reads, directly or as a join of a source a KPI reads."""
    if context.broken_files:
        return
    project = context.project
    used = {kpi.source for kpi in project.kpis.values() if kpi.source in project.sources}
    pending = list(used)
    while pending:
        source = project.sources.get(pending.pop())
        for join in source.joins if source else ():
            if join.source not in used:
                used.add(join.source)
                pending.append(join.source)
    for name, source in project.sources.items():
        if name not in used:
            yield _warning(
                "KPI601",
                f"source `{name}` is not used by any KPI",
                source.span,
                "define a KPI with `source: " + name + "`, join it from a source that "
                "is used, or delete the file",
            )


def undocumented_kpis(context: Context) -> Iterator[Diagnostic]:
    """KPI602-604: a KPI without description, owner or unit (what readers of a report
    need to trust a number)."""
    for kpi in context.kpis():
        if not (kpi.description or "").strip():
            yield _warning(
                "KPI602",
                f"KPI `{kpi.name}` has no description",
                kpi.span,
                "add `description:` saying what it measures and how to read it",
            )
        if not (kpi.owner or "").strip():
            yield _warning(
                "KPI603",
                f"KPI `{kpi.name}` has no owner",
                kpi.span,
                "add `owner:` naming the team or person who answers for it, e.g. `sales-ops`",
            )
        if kpi.unit is None:
            yield _warning(
                "KPI604",
                f"KPI `{kpi.name}` has no unit",
                kpi.span,
                "add `unit:` (percent, ratio, currency, count, days, score or number) "
                "so reports format it right",
            )


def targets_without_rules(context: Context) -> Iterator[Diagnostic]:
    """KPI605: a ``target:`` that no rule of the KPI compares with: nobody is told when
    the KPI misses it."""
    for kpi in context.kpis():
        if kpi.target is None:
            continue
        if any(_mentions(rule.when.tree, "target") for rule in kpi.rules):
            continue
        comparison = "value > target" if kpi.target.direction == "lower" else "value < target"
        yield _warning(
            "KPI605",
            f"KPI `{kpi.name}` has a target but no rule compares with it",
            kpi.target.span,
            f"add a rule, e.g. `rules: [{{name: off_target, when: {comparison}, "
            "severity: warning}]`",
        )


def percent_not_ratio(context: Context) -> Iterator[Diagnostic]:
    """KPI606: ``unit: percent`` on an expression that cannot give a share (no division,
    no ``growth``, no average, no percent input): usually a count labelled as a rate."""
    aggregates = {spec.name for spec in default_registry() if spec.kind == AGGREGATE}
    for kpi in context.kpis():
        if kpi.unit != "percent" or kpi.expression.tree is None:
            continue
        if _looks_like_share(context.project, kpi, aggregates):
            continue
        yield _warning(
            "KPI606",
            f"KPI `{kpi.name}` is a percent but its expression is not a ratio",
            kpi.expression.span,
            "a percent is a part divided by a whole, e.g. "
            "`count(where stage = 'won') / count()`; or change `unit:`",
        )


def dimensions_missing_from_inputs(context: Context) -> Iterator[Diagnostic]:
    """KPI607: a derived KPI combines inputs where one declares a dimension that another
    input's source does not have, so the derived KPI cannot be grouped by it although one
    of its inputs can."""
    project = context.project
    for kpi in context.kpis():
        if not kpi.is_derived or kpi.dimensions is not None:
            continue  # a derived KPI's own `dimensions:` are checked as errors (KPI310)
        bases = base_kpis(project, kpi.name)
        declared: dict[str, str] = {}
        for base in bases:
            for dimension in base.dimensions or ():
                declared.setdefault(dimension, base.name)
        for dimension, owner in declared.items():
            missing = next(
                (b for b in bases if not dimension_available(project, b, dimension)), None
            )
            if missing is None:
                continue
            yield _warning(
                "KPI607",
                f"KPI `{kpi.name}` cannot be grouped by `{dimension}`: input `{owner}` "
                f"declares it but input `{missing.name}` (source `{missing.source}`) "
                "does not have it",
                kpi.span,
                f"add `{dimension}` to source `{missing.source}` (or join the source that "
                f"has it), or declare `dimensions:` on `{kpi.name}` without it",
            )


#: Every lint rule, in the order their warnings are produced (output is sorted anyway).
RULES: tuple[Rule, ...] = (
    unused_sources,
    undocumented_kpis,
    targets_without_rules,
    percent_not_ratio,
    dimensions_missing_from_inputs,
)


def lint_project(project: Project, known: Iterable[Diagnostic] = ()) -> list[Diagnostic]:
    """Every warning for the project, sorted like every other diagnostic. ``known`` are
    the diagnostics of loading and checking: files with load errors are not linted."""
    broken = frozenset(
        d.span.file
        for d in known
        if d.span is not None and d.code.startswith("KPI1") and d.severity >= Severity.ERROR
    )
    context = Context(project, broken)
    found = [diagnostic for rule in RULES for diagnostic in rule(context)]
    # Not warnings: rule messages that cannot render (KPI319/KPI320 errors). They are
    # checked here, with `kpi validate`, because a run still goes on when a message
    # fails (the alert says why); see kpiengine.language.template_check.
    from kpiengine.language.template_check import check_messages

    found.extend(check_messages(project))
    return sorted(found, key=Diagnostic.sort_key)


# -- helpers ------------------------------------------------------------------------------


def _mentions(tree: Node | None, name: str) -> bool:
    return tree is not None and any(
        isinstance(node, Name) and node.parts == (name,) for node in _walk(tree, frozenset())
    )


def _walk(node: Node, stop_at: frozenset[str]) -> Iterator[Node]:
    """The nodes of a tree, not descending into calls named in ``stop_at``."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, Call) and current.name in stop_at:
            continue
        stack.extend(reversed(current.children()))


def _looks_like_share(project: Project, kpi: Kpi, aggregates: set[str]) -> bool:
    assert kpi.expression.tree is not None
    # Look at the KPI level only: `sum(a / b)` adds up row ratios, it is not a share.
    for node in _walk(kpi.expression.tree, frozenset(aggregates)):
        if isinstance(node, Binary) and node.op == "/":
            return True
        if isinstance(node, Call) and (
            node.name in _RATIO_FUNCTIONS or node.name in _UNIT_PRESERVING
        ):
            return True
    return any(
        project.kpis[name].unit in _SHARE_UNITS
        for name in referenced_kpis(kpi)
        if name in project.kpis
    )
