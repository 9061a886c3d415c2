"""What changed between two checked projects, by meaning rather than by text.

Each KPI is reduced to a *fingerprint* of what decides its values: the expression and
filter printed canonically (:func:`kpiengine.language.parse.to_text`: lowercase keywords,
single spaces, minimal parentheses), the source, time column, dimensions, semi-additive
mode and ``fill_null``. Reformatting a file, reordering its keys or re-wrapping an
expression leaves the fingerprint as it was. Title, description, owner, tags, unit,
aliases, target and rules change no value: they are *metadata*, reported apart.

A KPI's values also depend on its source (table, time column, joins, the type of the
columns it keeps) and on the project's calendar (fiscal year, week start): when those
change, the KPIs reading them are *affected* and their values are compared, though their
own definition did not change. So are the derived KPIs downstream of a changed KPI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kpiengine.language.names import referenced_kpis
from kpiengine.language.parse import to_text
from kpiengine.loader.model import Expression, Kpi, Project, Source

#: Fields of a KPI that decide its values, and those that only describe it.
SEMANTIC_FIELDS = (
    "expression",
    "filter",
    "source",
    "time",
    "dimensions",
    "semi_additive",
    "window",
    "conversion",
    "fill_null",
)
METADATA_FIELDS = ("title", "description", "owner", "tags", "aliases", "unit", "target", "rules")
#: Project settings that move every period boundary (conformed dimensions count too).
CALENDAR_FIELDS = ("fiscal_year_start", "week_start", "retail_calendar")


@dataclass
class DefinitionChanges:
    """KPIs added, removed, changed (by field), and which KPIs' values may have moved."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # KPI → semantic fields
    metadata: dict[str, list[str]] = field(default_factory=dict)  # KPI → metadata fields
    sources: dict[str, list[str]] = field(default_factory=dict)  # source → what changed
    calendar: list[str] = field(default_factory=list)  # project settings that changed
    #: KPI → why its values are compared: its own fields, a source, an input KPI
    affected: dict[str, str] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        """Whether anything that can move a value changed (metadata does not count)."""
        return bool(self.added or self.removed or self.changed or self.affected)


def _expression(expression: Expression | None) -> str | None:
    if expression is None:
        return None
    return to_text(expression.tree) if expression.tree is not None else expression.text


def fingerprint(kpi: Kpi) -> dict[str, Any]:
    """What decides a KPI's values, in a form equal for equal meanings."""
    return {
        "expression": _expression(kpi.expression),
        "filter": _expression(kpi.filter),
        "source": kpi.source,
        "time": kpi.time,
        "dimensions": None if kpi.dimensions is None else sorted(kpi.dimensions),
        "semi_additive": (kpi.semi_additive, kpi.snapshot_per),
        "window": None
        if kpi.window is None
        else (
            kpi.window.kind,
            kpi.window.unit,
            kpi.window.count,
        ),
        "conversion": _conversion(kpi),
        "fill_null": kpi.fill_null,
    }


def _conversion(kpi: Kpi) -> tuple[Any, ...] | None:
    """A conversion's meaning without positions: both sides, the window, the value."""
    conversion = kpi.conversion
    if conversion is None:
        return None
    sides = tuple(
        (side.source, side.entity, _expression(side.filter), side.time)
        for side in (conversion.base, conversion.event)
    )
    return (*sides, conversion.within_days, conversion.value)


def metadata(kpi: Kpi) -> dict[str, Any]:
    """What describes a KPI without deciding its values (spans left out)."""
    target = (kpi.target.value, kpi.target.direction) if kpi.target else None
    rules = sorted((r.name, _expression(r.when), r.severity, r.message or "") for r in kpi.rules)
    return {
        "title": kpi.title,
        "description": kpi.description,
        "owner": kpi.owner,
        "tags": sorted(kpi.tags),
        "aliases": sorted(kpi.aliases),
        "unit": kpi.unit,
        "target": target,
        "rules": rules,
    }


def source_changes(base: Source, head: Source) -> list[str]:
    """What changed in a source that can move the values of the KPIs reading it: its
    table, time column, joins, or the type or allowed values of a column both sides have
    (a column added is no change; a column removed fails the KPIs that used it)."""
    changed = []
    if base.table != head.table:
        changed.append("table")
    if base.time != head.time:
        changed.append("time")
    joins_of = lambda s: sorted((j.source, j.left, j.right) for j in s.joins)  # noqa: E731
    if joins_of(base) != joins_of(head):
        changed.append("joins")
    if _mapped(base) != _mapped(head):  # conformed dimensions: what `--by` groups on
        changed.append("dimensions")
    for name, column in base.columns.items():
        other = head.columns.get(name)
        if other is None or (column.type, column.values) != (other.type, other.values):
            changed.append(f"column {name}")
    return changed


def _mapped(owner: Any) -> dict[str, str]:
    """Conformed dimension name → column, of a source or a project (none: empty)."""
    return {name: m.column for name, m in (getattr(owner, "dimensions", None) or {}).items()}


def _project_changes(base: Project, head: Project) -> list[str]:
    """Project settings that move values: the calendar, and the conformed dimensions."""
    changed = [f for f in CALENDAR_FIELDS if getattr(base, f) != getattr(head, f)]
    if _mapped(base) != _mapped(head):
        changed.append("dimensions")
    return changed


def _reads(project: Project, kpi: Kpi) -> set[str]:
    """The sources a source KPI reads: its own and those it joins."""
    source = project.sources.get(kpi.source or "")
    if source is None:
        return set()
    return {source.name, *(j.source for j in source.joins)}


def compare(base: Project, head: Project) -> DefinitionChanges:
    """The changes from ``base`` to ``head``."""
    found = DefinitionChanges(
        added=sorted(set(head.kpis) - set(base.kpis)),
        removed=sorted(set(base.kpis) - set(head.kpis)),
        calendar=_project_changes(base, head),
    )
    for name in sorted(set(base.sources) & set(head.sources)):
        moved = source_changes(base.sources[name], head.sources[name])
        if moved:
            found.sources[name] = moved
    for name in sorted(set(base.kpis) & set(head.kpis)):
        old, new = base.kpis[name], head.kpis[name]
        before, after = fingerprint(old), fingerprint(new)
        fields = [f for f in SEMANTIC_FIELDS if before[f] != after[f]]
        if fields:
            found.changed[name] = fields
            found.affected[name] = "definition: " + ", ".join(fields)
        described = metadata(old), metadata(new)
        labels = [f for f in METADATA_FIELDS if described[0][f] != described[1][f]]
        if labels:
            found.metadata[name] = labels
        if name in found.affected or new.is_derived:
            continue
        if found.calendar:
            found.affected[name] = "project: " + ", ".join(found.calendar)
            continue
        touched = sorted(_reads(head, new) & set(found.sources))
        if touched:
            found.affected[name] = "source: " + ", ".join(touched)
    _downstream(head, base, found)
    return found


def _downstream(head: Project, base: Project, found: DefinitionChanges) -> None:
    """Add every derived KPI (present on both sides) that uses an affected KPI, directly
    or through other derived KPIs, in a stable order."""
    users: dict[str, list[str]] = {}
    for kpi in head.kpis.values():
        for used in referenced_kpis(kpi):
            users.setdefault(used, []).append(kpi.name)
    queue = list(found.affected)
    while queue:
        name = queue.pop(0)
        for user in sorted(users.get(name, [])):
            if user in found.affected or user not in base.kpis:
                continue
            found.affected[user] = f"uses {name}"
            queue.append(user)
    if found.calendar:  # derived KPIs compute on the moved periods too
        for kpi in head.kpis.values():
            if kpi.is_derived and kpi.name in base.kpis:
                found.affected.setdefault(kpi.name, "project: " + ", ".join(found.calendar))
