"""What each dialect can express: one capability table per dialect, and the refusals.

"SQL for any backend" means: the numbers DuckDB gives, or a clear error at compile time.
Each construct the compiler emits whose meaning differs between engines is a
*capability* (:data:`CAPABILITIES`). A dialect's :class:`DialectRules` says, in its
``CAPABILITIES`` table, how it supports each one: natively (the default), through a
rewrite in its rules, or not at all (:func:`refused`, with the engine's documentation).
A KPI that needs a refused capability is a positioned KPI404 from ``kpi compile``,
``kpi run`` and ``kpi validate --dialect D``: at the function call, never as SQL that
fails on the engine or, worse, returns another number.

Functions declare what they need (``FunctionSpec.needs``); operators and ``where``
inside aggregates are mapped here (:data:`OPERATOR_NEEDS`). :func:`render_dialects_doc`
writes docs/dialects.md from the tables (``python -m kpiengine.compile.dialects >
docs/dialects.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kpiengine.diagnostics import Diagnostic
from kpiengine.language.ast import Binary, Call, Node, walk

if TYPE_CHECKING:
    from kpiengine.compile.dialects import DialectRules
    from kpiengine.language.functions import FunctionRegistry
    from kpiengine.loader.model import Project


@dataclass(frozen=True)
class Capability:
    """A construct whose meaning or availability differs between engines."""

    key: str
    title: str
    #: what in a definition or a request needs it (for docs/dialects.md)
    used_by: str
    #: what kpiengine means by it: the DuckDB result every dialect must give
    meaning: str


CAPABILITIES: dict[str, Capability] = {
    c.key: c
    for c in (
        Capability(
            "percentile_cont",
            "continuous percentile",
            "`median`, `percentile`",
            "exact, interpolated (PERCENTILE_CONT); nulls skipped; never an approximation",
        ),
        Capability(
            "round_ties",
            "ROUND ties",
            "`round`",
            "halves away from zero (of the binary value for doubles, as DuckDB)",
        ),
        Capability(
            "greatest_nulls",
            "GREATEST/LEAST with nulls",
            "`greatest`, `least`",
            "null when any argument is null",
        ),
        Capability(
            "day_difference",
            "whole days between dates",
            "`days_between`",
            "calendar days between the dates, time of day ignored",
        ),
        Capability(
            "count_distinct",
            "COUNT(DISTINCT)",
            "`count_distinct`",
            "distinct non-null values",
        ),
        Capability(
            "conditional_aggregate",
            "conditional aggregates",
            "`where` inside an aggregate",
            "compiled as `agg(CASE WHEN cond THEN x END)`, never `FILTER (WHERE ...)`",
        ),
        Capability(
            "exact_division",
            "true division",
            "`/`",
            "`CAST(a AS DOUBLE) / NULLIF(b, 0)`: a fraction, null (not an error) for 0",
        ),
        Capability(
            "modulo",
            "remainder",
            "`%`",
            "remainder with the sign of the dividend, on decimals and doubles too",
        ),
        Capability(
            "windows",
            "window functions",
            "`previous`, `growth`, `rolling_sum`, `rolling_avg`, `cumulative_sum`, `streak`",
            "LAG, ROW_NUMBER, SUM/AVG/MAX over `ROWS BETWEEN n PRECEDING AND CURRENT ROW`",
        ),
        Capability(
            "period_buckets",
            "month, quarter and year buckets",
            "`--grain` month, quarter, year; fiscal years",
            "the first day of the (fiscal) period, as a DATE",
        ),
        Capability(
            "week_buckets",
            "week buckets",
            "`--grain week`",
            "weeks start on Monday (or Sunday with `week_start: sunday`), whatever the session",
        ),
        Capability(
            "null_safe_join",
            "null-safe join",
            "`--by` (dimension values joined across sources)",
            "`IS NOT DISTINCT FROM`: a null dimension value matches a null",
        ),
    )
}

#: Operators and constructs of the expression language → the capability they compile to.
OPERATOR_NEEDS: dict[str, str] = {"/": "exact_division", "%": "modulo"}
WHERE_NEED = "conditional_aggregate"


@dataclass(frozen=True)
class Support:
    """How a dialect supports a capability: ``native``, ``rewritten`` or ``refused``.

    ``note`` says what the engine does (and, for a rewrite, what kpiengine emits instead);
    for a refusal it is the reason shown in KPI404. ``url`` is the engine's documentation
    the decision rests on; ``hint`` what the user can do instead.
    """

    status: str = "native"
    note: str = ""
    url: str = ""
    hint: str = ""

    @property
    def refused(self) -> bool:
        return self.status == "refused"


NATIVE = Support()


def native(note: str, url: str) -> Support:
    """Supported as compiled; the note and URL say why we believe it (engines we cannot run)."""
    return Support("native", note, url)


def rewritten(note: str, url: str) -> Support:
    """Supported through a rewrite in the dialect's rules."""
    return Support("rewritten", note, url)


def refused(reason: str, url: str, hint: str = "") -> Support:
    """Not expressible with DuckDB's meaning: KPIs needing it are refused (KPI404)."""
    return Support("refused", reason, url, hint)


# -- refusals ---------------------------------------------------------------------------


def needs_of(node: Node, functions: FunctionRegistry) -> Iterator[tuple[str, str, Node]]:
    """(capability, what needs it, node) for every node of an expression tree."""
    for current in walk(node):
        if isinstance(current, Call):
            spec = functions.get(current.name)
            for need in spec.needs if spec is not None else ():
                yield need, current.name, current
            if current.where is not None:
                yield WHERE_NEED, f"`{current.name}(... where ...)`", current
        elif isinstance(current, Binary) and current.op in OPERATOR_NEEDS:
            yield OPERATOR_NEEDS[current.op], f"`{current.op}`", current


def refusals(
    trees: Iterable[Node | None], rules: DialectRules, functions: FunctionRegistry
) -> list[Diagnostic]:
    """KPI404 for every call or operator in ``trees`` that the dialect refuses, at its
    position (the function's name when known), each once."""
    found: dict[tuple[object, str], Diagnostic] = {}
    for tree in trees:
        if tree is None:
            continue
        for need, what, node in needs_of(tree, functions):
            support = rules.support(need)
            if not support.refused:
                continue
            span = getattr(node, "name_span", None) or node.span
            hint = support.hint or None
            message = f"{what} is not available on {rules.name}: {support.note}"
            found.setdefault((span, message), Diagnostic("KPI404", message, span, hint))
    return list(found.values())


def check_dialect(
    project: Project, rules: DialectRules, functions: FunctionRegistry
) -> list[Diagnostic]:
    """``kpi validate --dialect D``: KPI404 for every KPI expression and filter that
    ``D`` cannot express, so CI can check the definitions against the warehouse's engine
    without compiling every request."""
    trees: list[Node | None] = []
    for kpi in project.kpis.values():
        trees.append(kpi.expression.tree)
        if kpi.filter is not None:
            trees.append(kpi.filter.tree)
    return refusals(trees, rules, functions)


# -- docs/dialects.md -------------------------------------------------------------------

_MARK = {"native": "yes", "rewritten": "yes (rewritten)", "refused": "**no**"}


def render_dialects_doc(dialects: Mapping[str, DialectRules] | None = None) -> str:
    """docs/dialects.md: which construct works on which built-in dialect, with the reason
    (and the engine's documentation) for each rewrite and each refusal."""
    if dialects is None:
        from kpiengine.compile.dialects import builtin_dialects

        dialects = {spec.name: spec.make_rules() for spec in builtin_dialects()}
    names = list(dialects)
    lines = [
        "# Dialects: what works where",
        "",
        "Generated by `python -m kpiengine.compile.dialects > docs/dialects.md`",
        "from the capability tables of the dialect rules (`kpiengine/compile/dialects/`);",
        "tests/test_dialect_capabilities.py checks it is current.",
        "",
        "Every dialect gives DuckDB's numbers or refuses: a KPI that needs a construct",
        "marked **no** is refused at compile time with KPI404 at the function or operator",
        "(`kpi compile --dialect D`, `kpi run`, and `kpi validate --dialect D` for CI).",
        "DuckDB, SQLite, PostgreSQL and Spark run the equivalence suite here; the other",
        "dialects rest on their engine's documentation (linked below) and on focused tests",
        "of the SQL fragment that differs (tests/test_dialect_fragments.py).",
        "",
        "| construct | used by | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for capability in CAPABILITIES.values():
        cells = [_MARK[dialects[n].support(capability.key).status] for n in names]
        lines.append(f"| {capability.title} | {capability.used_by} | " + " | ".join(cells) + " |")
    lines += ["", "## What each construct means", ""]
    for capability in CAPABILITIES.values():
        lines.append(f"- **{capability.title}** ({capability.used_by}): {capability.meaning}.")
    lines += ["", "## Rewrites and refusals by dialect", ""]
    for name in names:
        rules = dialects[name]
        notes = [
            (CAPABILITIES[key], rules.support(key))
            for key in CAPABILITIES
            if rules.support(key).note
        ]
        lines += [f"### {name}", ""]
        if not notes:
            lines += ["Everything as compiled: the reference engine." if name == "duckdb"
                      else "Everything as compiled.", ""]  # fmt: skip
            continue
        for capability, support in notes:
            text = f"- {capability.title}: {support.status}. {support.note}"
            if support.hint:
                text += f" Instead: {support.hint}"
            if support.url:
                text += f" ({support.url})"
            lines.append(text)
        lines.append("")
    return "\n".join(lines)
