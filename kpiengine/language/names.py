"""Name resolution shared by the check and plan stages.

A column name in a source KPI is a column of the KPI's source (``amount``, optionally
qualified ``opportunities.amount``), a column of a source it reaches through many-to-one
joins (``accounts.segment``: the unique shortest path; ``subscriptions.accounts.region``:
an explicit one), or a conformed dimension of the project (``region``), which the source
may map to a column of its own. A name in a derived KPI is a KPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kpiengine.language.functions import value_names
from kpiengine.loader.model import EXPRESSION_TYPE_OF_COLUMN, Column, Join, Kpi, Project, Source

#: Column types as the checker sees them.
TYPE_OF_COLUMN = EXPRESSION_TYPE_OF_COLUMN  # the name this module has always exported


@dataclass(frozen=True)
class ColumnRef:
    """A resolved column, reached through ``path`` (many-to-one joins, in order; empty for
    the source's own columns). Each distinct path is its own chain of LEFT JOINs."""

    column: Column
    path: tuple[Join, ...] = ()

    @property
    def type(self) -> str:
        return TYPE_OF_COLUMN[self.column.type]

    @property
    def join(self) -> Join | None:
        """The last join of the path (the one that reaches the column's source)."""
        return self.path[-1] if self.path else None

    @property
    def alias(self) -> str | None:
        """The SQL alias of the joined table; None for the source's own columns."""
        return join_alias(self.path) if self.path else None


def join_alias(path: tuple[Join, ...]) -> str:
    """``j_accounts`` for one hop (as always), ``j_subscriptions__accounts`` for two: one
    alias per path, so two paths to the same source never share a join."""
    return "j_" + "__".join(join.source for join in path)


def resolve_column(project: Project, source: Source, parts: tuple[str, ...]) -> ColumnRef | None:
    """What a name means in ``source`` (None: nothing, or an ambiguous join path).

    ``x``: the source's mapping for conformed dimension ``x``, else its column ``x``, else
    conformed dimension ``x`` through joins. ``s.x``: the source's own column when ``s`` is
    the source, else column ``x`` of source ``s`` through the unique shortest join path.
    ``a.b.x``: column ``x`` through the explicit path (join ``a``, then ``b``'s join).
    """
    if len(parts) == 1:
        name = parts[0]
        mapping = source.dimensions.get(name)
        if mapping is not None:
            mapped = tuple(mapping.column.split("."))
            if mapped == parts:  # `region: region`: the source's own column
                column = source.columns.get(name)
                return ColumnRef(column) if column else None
            return _resolve_path(project, source, mapped)
        column = source.columns.get(name)
        if column is not None:
            return ColumnRef(column)
        conformed = project.dimensions.get(name)
        if conformed is None:
            return None
        return _resolve_path(project, source, tuple(conformed.column.split(".")))
    return _resolve_path(project, source, parts)


def _resolve_path(project: Project, source: Source, parts: tuple[str, ...]) -> ColumnRef | None:
    if len(parts) == 1:
        column = source.columns.get(parts[0])
        return ColumnRef(column) if column else None
    if len(parts) == 2:
        owner, name = parts
        if owner == source.name:
            column = source.columns.get(name)
            return ColumnRef(column) if column else None
        paths = shortest_join_paths(project, source, owner)
        if len(paths) != 1:
            return None
        path: tuple[Join, ...] | None = paths[0]
    else:
        path = explicit_join_path(project, source, parts[:-1])
    if not path:
        return None
    target = project.sources[path[-1].source]
    column = target.columns.get(parts[-1])
    return ColumnRef(column, path) if column else None


def explicit_join_path(
    project: Project, source: Source, hops: tuple[str, ...]
) -> tuple[Join, ...] | None:
    """The joins ``hops`` names, each from the previous hop's source (None if one is
    missing, or if the path comes back to a source it passed: a cycle, see
    :func:`_path_reason`)."""
    path: list[Join] = []
    current = source
    seen = {source.name}
    for hop in hops:
        join = current.join_to(hop)
        if join is None or hop not in project.sources or hop in seen:
            return None
        seen.add(hop)
        path.append(join)
        current = project.sources[hop]
    return tuple(path)


def shortest_join_paths(
    project: Project, source: Source, target: str, limit: int = 2
) -> list[tuple[Join, ...]]:
    """Up to ``limit`` shortest join paths from ``source`` to ``target`` (breadth first).

    Between two sources the first declared join is the one followed (as ``join_to``), so
    two paths differ by the sources they pass through. Cycles are harmless: a source is
    visited at its shortest distance only.
    """
    frontier: dict[str, list[tuple[Join, ...]]] = {source.name: [()]}
    seen = {source.name}
    while frontier:
        reached: dict[str, list[tuple[Join, ...]]] = {}
        for name, paths in frontier.items():
            current = project.sources.get(name)
            if current is None:
                continue
            for join in current.joins:
                if join.source in seen or join.source not in project.sources:
                    continue
                if current.join_to(join.source) is not join:
                    continue  # a second join between the same two sources
                bucket = reached.setdefault(join.source, [])
                bucket.extend((*p, join) for p in paths[: limit - len(bucket)])
        if target in reached:
            return reached[target]
        seen.update(reached)
        frontier = reached
    return []


def describe_path(source: Source, path: tuple[Join, ...], column: str) -> str:
    """A path as the explicit name that selects it: ``subscriptions.accounts.region``."""
    return ".".join([*(join.source for join in path), column])


def unresolved_reason(project: Project, source: Source, parts: tuple[str, ...]) -> str | None:
    """Why a name that does not resolve in ``source`` does not, when it is not simply
    unknown: an ambiguous join path (naming both), or a conformed dimension the source
    cannot reach. None otherwise, and None for a name that does resolve (the caller's
    problem is then elsewhere, e.g. a KPI's `dimensions:` list)."""
    if resolve_column(project, source, parts) is not None:
        return None
    if len(parts) == 1:
        mapping = source.dimensions.get(parts[0])
        if mapping is not None:
            return _path_reason(project, source, tuple(mapping.column.split(".")))
        if parts[0] in source.columns:
            return None
        conformed = project.dimensions.get(parts[0])
        if conformed is None:
            return None
        owner = conformed.owner
        inner = _path_reason(project, source, tuple(conformed.column.split(".")))
        if inner is not None:
            return inner
        return (
            f"`{parts[0]}` is the conformed dimension `{conformed.column}`, and source "
            f"`{source.name}` has no join path to `{owner}`: add a join, or map it in the "
            f"source file (`dimensions: {{{parts[0]}: <column>}}`)"
        )
    return _path_reason(project, source, parts)


def _path_reason(project: Project, source: Source, parts: tuple[str, ...]) -> str | None:
    hops = (source.name, *parts[:-1])
    repeated = next((hop for i, hop in enumerate(hops) if hop in hops[:i]), None)
    if len(parts) > 2 and repeated is not None:
        return (
            f"the join path `{'.'.join(parts[:-1])}` from `{source.name}` comes back to "
            f"`{repeated}` (a cycle in joins): name the column of `{repeated}` directly"
        )
    if len(parts) == 2 and parts[0] != source.name:
        paths = shortest_join_paths(project, source, parts[0])
        if len(paths) > 1:
            first, second = (describe_path(source, p, parts[1]) for p in paths[:2])
            return (
                f"ambiguous join path from `{source.name}` to `{parts[0]}`: "
                f"`{first}` or `{second}`; write the one you mean"
            )
    return None


def column_candidates(project: Project, source: Source) -> Iterator[str]:
    """Every name that resolves to a column of ``source``: for did-you-mean hints."""
    yield from source.columns
    yield from source.dimensions
    yield from project.dimensions
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
    for node in value_names(tree):  # not `year` in previous(k, 1, year)
        if len(node.parts) == 1:
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
    """Whether a source KPI can be grouped by ``dimension``: it resolves in the KPI's source
    and, when the KPI declares ``dimensions:``, one of them resolves to the same column
    through the same path (``region`` is ``accounts.region`` where it means that)."""
    source = project.sources.get(kpi.source or "")
    if source is None:
        return False
    ref = resolve_column(project, source, tuple(dimension.split(".")))
    if ref is None:
        return False
    if kpi.dimensions is None or dimension in kpi.dimensions:
        return True
    return any(
        resolve_column(project, source, tuple(declared.split("."))) == ref
        for declared in kpi.dimensions
    )
