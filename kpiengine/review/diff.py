"""``kpi diff`` (SPEC §13.9): what a change to the definitions does to the KPIs' values.

The two sides (folders, or git revisions read into temporary folders by
:mod:`kpiengine.review.revisions`) are loaded and checked like ``kpi validate`` loads
untrusted definitions: the projects' own ``plugins:`` are not imported unless allowed.
:mod:`kpiengine.review.definition_changes` says which KPIs changed by meaning; only those
and the KPIs downstream of them are computed, one plan (so one statement) per side, on the
same connection, over the same range. The rows are then matched cell by cell
(period × dimension values × KPI).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpiengine.diagnostics import Diagnostic, Severity
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.review.definition_changes import DefinitionChanges, compare
from kpiengine.review.revisions import Side

#: Two values are the same within this relative error (the cross-engine promise, SPEC §5).
TOLERANCE = 1e-9
#: Changed rows listed per KPI.
FIRST_ROWS = 5

Cell = tuple[dt.date | None, tuple[tuple[str, Any], ...]]


@dataclass(frozen=True)
class CellChange:
    """One cell whose value differs; ``None`` on a side that has no such row or a null."""

    period: dt.date | None
    dimensions: tuple[tuple[str, Any], ...]
    base: float | None
    head: float | None
    base_row: bool = True  # whether BASE has the row at all
    head_row: bool = True

    @property
    def change(self) -> float | None:
        if self.base is None or self.head is None:
            return None
        return float(self.head) - float(self.base)

    @property
    def relative(self) -> float | None:
        change = self.change
        if change is None or not self.base:
            return None
        return change / abs(float(self.base))

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.isoformat() if self.period else None,
            "dimensions": {name: _plain(value) for name, value in self.dimensions},
            "base": self.base,
            "head": self.head,
            "change": self.change,
            "relative_change": self.relative,
            "in_base": self.base_row,
            "in_head": self.head_row,
        }


@dataclass
class ValueChanges:
    """How one affected KPI's values moved."""

    kpi: str
    reason: str
    cells: int = 0  # cells compared (the union of both sides' rows)
    changes: list[CellChange] = field(default_factory=list)

    @property
    def largest(self) -> CellChange | None:
        moved = [c for c in self.changes if c.change is not None]
        return max(moved, key=lambda c: abs(c.change or 0.0), default=None)

    @property
    def largest_relative(self) -> CellChange | None:
        moved = [c for c in self.changes if c.relative is not None]
        return max(moved, key=lambda c: abs(c.relative or 0.0), default=None)

    def to_dict(self) -> dict[str, Any]:
        largest, relative = self.largest, self.largest_relative
        return {
            "kpi": self.kpi,
            "reason": self.reason,
            "cells": self.cells,
            "changed_cells": len(self.changes),
            "largest_change": largest.to_dict() if largest else None,
            "largest_relative_change": relative.to_dict() if relative else None,
            "first_changed_rows": [c.to_dict() for c in self.changes[:FIRST_ROWS]],
        }


@dataclass
class Diff:
    """Everything ``kpi diff`` reports."""

    base: str
    head: str
    project: str
    definitions: DefinitionChanges
    values: list[ValueChanges] = field(default_factory=list)
    #: why values were not compared (no connector), else None
    values_skipped: str | None = None
    grain: str = "month"
    start: dt.date | None = None
    end: dt.date | None = None
    by: tuple[str, ...] = ()
    connector: str | None = None  # the redacted URL

    @property
    def changed(self) -> bool:
        """Whether anything that can move a value changed (metadata-only changes do not)."""
        return self.definitions.any or any(v.changes for v in self.values)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class SideError(DefinitionError):
    """One side's definitions have errors: the diagnostics, and which side it is."""

    def __init__(self, label: str, diagnostics: list[Diagnostic], texts: Any) -> None:
        super().__init__(diagnostics, texts)
        self.label = label


def load_side(side: Side, allow_plugins: bool, plugins: tuple[str, ...]) -> Any:
    """The side's project, checked; its errors stop the diff (exit 1), naming the side."""
    from kpiengine import api
    from kpiengine.plugins.manager import PluginHost

    host = PluginHost(plugins)
    model, diagnostics = api.load_and_check(
        side.folder, lint=False, allow_plugins=allow_plugins, plugins=host
    )
    errors = [d for d in diagnostics if d.severity >= Severity.ERROR]
    if errors:
        raise SideError(side.label, errors, model.texts)
    return api.KpiProject(model, diagnostics, host)


def diff_projects(
    base: Any,
    head: Any,
    labels: tuple[str, str],
    connector_url: str | None,
    options: dict[str, Any],
) -> Diff:
    """Compare two loaded projects (:class:`~kpiengine.api.KpiProject`); compute the
    affected KPIs on ``connector_url`` (None: definitions only)."""
    from kpiengine.execute.connectors import redact_url

    changes = compare(base.model, head.model)
    found = Diff(
        labels[0],
        labels[1],
        head.model.name,
        changes,
        grain=options.get("grain", "month"),
        by=tuple(options.get("by", ())),
    )
    names = [n for n in head.model.kpis if n in changes.affected]
    if not names:
        return found
    if connector_url is None:
        found.values_skipped = (
            "no connector: pass --connector URL or set `connector:` in kpiengine.yaml"
        )
        return found
    found.connector = redact_url(connector_url)
    base_plan = base.plan(names, **options)  # definition errors before the engine opens
    head_plan = head.plan(names, **options)
    with head.connect(connector_url) as connection:
        before = base.execute(base_plan, connection)
        after = head.execute(head_plan, connection)
    found.start = after.start or before.start
    found.end = after.end or before.end
    found.values = [
        compare_values(name, changes.affected[name], before.rows, after.rows) for name in names
    ]
    return found


def _cells(rows: Any, kpi: str) -> dict[Cell, Any]:
    return {
        (row.period, tuple(sorted(row.dimensions, key=lambda d: d[0]))): row.value
        for row in rows
        if row.kpi == kpi
    }


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if a != a or b != b:  # NaN: the same when both are
        return a != a and b != b
    return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))


def _order(cell: Cell) -> tuple[Any, ...]:
    period, dims = cell
    return (period or dt.date.min, tuple((n, str(v)) for n, v in dims))


def compare_values(kpi: str, reason: str, base_rows: Any, head_rows: Any) -> ValueChanges:
    """Cell by cell, the changes of ``kpi`` from the base rows to the head rows."""
    before, after = _cells(base_rows, kpi), _cells(head_rows, kpi)
    found = ValueChanges(kpi, reason)
    keys = sorted(set(before) | set(after), key=_order)
    found.cells = len(keys)
    for key in keys:
        old, new = before.get(key), after.get(key)
        if key in before and key in after and same(old, new):
            continue
        if (key not in before and new is None) or (key not in after and old is None):
            continue  # a row of nulls on one side, no row on the other: nothing to see
        found.changes.append(CellChange(key[0], key[1], old, new, key in before, key in after))
    return found


def run_diff(
    base_name: str,
    head_name: str | None,
    project_path: Path,
    connector_url: str | None,
    options: dict[str, Any],
    allow_plugins: bool = False,
    plugins: tuple[str, ...] = (),
) -> Diff:
    """``kpi diff BASE [HEAD]`` for the project at ``project_path`` (the working tree's,
    whose repository holds the revisions). ``connector_url`` None: HEAD's ``connector:``
    (relative to ``project_path``), else no values; an empty ``connector_url`` (a CI secret
    a fork does not get) means definitions only, never the pull request's ``connector:``."""
    from kpiengine.review.revisions import side

    if head_name is not None and base_name == head_name:
        raise UsageError(f"BASE and HEAD are both `{base_name}`: there is nothing to compare")
    with side(base_name, project_path) as base_side, side(head_name, project_path) as head_side:
        base = load_side(base_side, allow_plugins, plugins)
        head = load_side(head_side, allow_plugins, plugins)
        if connector_url is None:
            url = _configured(head.model.connector, project_path, head_side)
        else:
            url = connector_url or None
        return diff_projects(base, head, (base_side.label, head_side.label), url, options)


def _configured(url: str | None, project_path: Path, head: Side) -> str | None:
    """HEAD's ``connector:``; a relative file path in it is relative to the real project
    folder (the working tree's), since a revision's temporary folder holds no warehouse."""
    if not url:
        return None
    root = head.folder if head.revision is None else project_path
    scheme, sep, rest = url.partition(":///")
    if sep and scheme in ("duckdb", "sqlite", "files") and rest and not rest.startswith("/"):
        path, query_sep, query = rest.partition("?")
        return f"{scheme}:///{(root / path).resolve()}{query_sep}{query}"
    return url
