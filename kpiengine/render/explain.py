"""``kpi explain``: what a KPI reads, from its inputs down to source columns, and its SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kpiengine.errors import UsageError
from kpiengine.language.ast import Name, walk
from kpiengine.language.names import referenced_kpis, resolve_column


def explain_kpi(project: Any, name: str, dialect: str = "duckdb") -> str:
    model = project.model
    lines: list[str] = []
    seen: set[str] = set()

    def describe(kpi_name: str, depth: int) -> None:
        kpi = model.kpis[kpi_name]
        pad = "  " * depth
        title = f" — {kpi.title}" if kpi.title else ""
        if kpi_name in seen:
            lines.append(f"{pad}{kpi_name}{title} (see above)")
            return
        seen.add(kpi_name)
        lines.append(f"{pad}{kpi_name}{title}")
        lines.append(f"{pad}  expression: {kpi.expression.text.strip()}")
        if kpi.is_derived:
            for dependency in referenced_kpis(kpi):
                if dependency in model.kpis:
                    describe(dependency, depth + 1)
            return
        source = model.sources[kpi.source]
        lines.append(
            f"{pad}  source: {source.name} (table {source.table}, time {kpi.time or source.time})"
        )
        if kpi.filter is not None:
            lines.append(f"{pad}  filter: {kpi.filter.text.strip()}")
        if kpi.window is not None:
            lines.append(f"{pad}  window: {kpi.window.describe()}")
        if kpi.semi_additive is not None:
            per = f" per {kpi.snapshot_per}" if kpi.snapshot_per else ""
            lines.append(f"{pad}  semi-additive: {kpi.semi_additive} snapshot{per}")
        columns: dict[str, None] = {}
        trees = [kpi.expression.tree, kpi.filter.tree if kpi.filter else None]
        for tree in trees:
            for node in walk(tree) if tree is not None else ():
                if isinstance(node, Name) and resolve_column(model, source, node.parts):
                    columns.setdefault(node.dotted, None)
        lines.append(f"{pad}  columns: {', '.join(columns) or '(rows only)'}")

    describe(name, 0)
    heading = f"SQL ({dialect}, grain month):"
    try:
        sql = project.compile([name], dialect=dialect, note=True)
    except UsageError as error:
        if "--from and --to" not in str(error):
            raise
        # window bounds (and retail periods) are literals: show this year's statement
        year = dt.date.today().year
        start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
        sql = project.compile([name], dialect=dialect, start=start, end=end)
        heading = f"SQL ({dialect}, grain month, {start} to {end}: its bounds need a range):"
    lines += ["", heading, sql + ";"]
    return "\n".join(lines)
