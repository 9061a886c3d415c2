"""Name resolution shared by the check and plan stages.

A column name in a source KPI is either a column of the KPI's source (``amount``,
optionally qualified ``opportunities.amount``) or a column of a source joined to it
(``accounts.segment``). A name in a derived KPI is a KPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kpiengine.language.ast import Name, walk
from kpiengine.loader.model import EXPRESSION_TYPE_OF_COLUMN, Column, Join, Kpi, Project, Source

#: Column types as the checker sees them.
TYPE_OF_COLUMN = EXPRESSION_TYPE_OF_COLUMN  # the name this module has always exported


@dataclass(frozen=True)
class ColumnRef:
    """A resolved column: ``join`` is None for the source's own columns."""

    column: Column
    join: Join | None = None

    @property
    def type(self) -> str:
        return TYPE_OF_COLUMN[self.column.type]


def resolve_column(project: Project, source: Source, parts: tuple[str, ...]) -> ColumnRef | None:
    if len(parts) == 1:
        column = source.columns.get(parts[0])
        return ColumnRef(column) if column else None
    if len(parts) != 2:
        return None
    owner, name = parts
    if owner == source.name:
        column = source.columns.get(name)
        return ColumnRef(column) if column else None
    join = source.join_to(owner)
    target = project.sources.get(owner)
    if join is None or target is None:
        return None
    column = target.columns.get(name)
    return ColumnRef(column, join) if column else None


def column_candidates(project: Project, source: Source) -> Iterator[str]:
    """Every name that resolves to a column of ``source``: for did-you-mean hints."""
    yield from source.columns
    for join in source.joins:
        target = project.sources.get(join.source)
        if target is not None:
            yield from (f"{join.source}.{name}" for name in target.columns)


def referenced_kpis(kpi: Kpi) -> list[str]:
    """KPI names a derived KPI's expression mentions, in order, without repeats."""
    tree = kpi.expression.tree
    if tree is None or not kpi.is_derived:
        return []
    seen: dict[str, None] = {}
    for node in walk(tree):
        if isinstance(node, Name) and len(node.parts) == 1:
            seen.setdefault(node.parts[0], None)
    return list(seen)


def base_kpis(project: Project, name: str) -> list[Kpi]:
    """The source KPIs a KPI ultimately reads, in dependency order (cycles are cut)."""
    found: dict[str, Kpi] = {}
    stack, seen = [name], set()
    while stack:
        current = stack.pop()
        if current in seen or current not in project.kpis:
            continue
        seen.add(current)
        kpi = project.kpis[current]
        if kpi.is_derived:
            stack.extend(reversed(referenced_kpis(kpi)))
        else:
            found[current] = kpi
    return list(found.values())


def dimension_available(project: Project, kpi: Kpi, dimension: str) -> bool:
    """Whether a source KPI can be grouped by ``dimension`` (declared, or any column)."""
    source = project.sources.get(kpi.source or "")
    if source is None:
        return False
    if kpi.dimensions is not None and dimension not in kpi.dimensions:
        return False
    return resolve_column(project, source, tuple(dimension.split("."))) is not None
