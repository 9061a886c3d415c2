"""Plan a conversion KPI (SPEC §13.5) as a scan over a derived table.

A conversion KPI is a source KPI on its base source whose scan reads, instead of the
base table, a derived table: the base rows, each with a flag ``kpi__converted`` (1 when
an event of the same non-null entity follows it, within the window when there is one),
built by kpiengine/compile/conversion.py. Everything else is the ordinary machinery:
the scan groups the base rows by period and the base source's dimensions (its joins
apply), the KPI's synthetic expression ``count(where kpi__converted = 1) / count()``
(or the count alone) becomes the scan's measures, and derived KPIs and time functions
read it like any source KPI. Conversion KPIs with the same base, event, entity and
window share one scan (a rate and a count of the same step: one pass).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kpiengine.language.names import resolve_column
from kpiengine.loader.conversion import CONVERTED
from kpiengine.loader.model import Column, Conversion, Kpi, Project
from kpiengine.plan.planner import RunRequest, Scan


@dataclass
class ConversionScan(Scan):
    """A scan whose table is the derived table of ``conversion`` (its ``source`` is the
    base source with the generated column :data:`CONVERTED` added, so the synthetic
    expression resolves like any column)."""

    conversion: Conversion | None = None


def conversion_scan(
    project: Project, request: RunRequest, kpi: Kpi, scans: dict[tuple[object, ...], Scan]
) -> Scan:
    """The scan of a conversion KPI, shared with the conversion KPIs of the same step."""
    conversion = kpi.conversion
    assert conversion is not None and kpi.source is not None
    base = project.sources[kpi.source]
    time = kpi.time or base.time or ""
    key = ("conversion", base.name, time, step_key(conversion))
    scan = scans.get(key)
    if scan is not None:
        return scan
    flag = Column(CONVERTED, "integer", conversion.span)
    source = dataclasses.replace(base, columns={**base.columns, CONVERTED: flag})
    dims = []
    for dimension in request.by:
        ref = resolve_column(project, source, tuple(dimension.split(".")))
        assert ref is not None, "checked by _check_request"
        dims.append(ref)
    scan = ConversionScan(
        alias=f"s{len(scans)}",
        source=source,
        time=time,
        time_type=base.columns[time].type,
        dimensions=dims,
        conversion=conversion,
    )
    for ref in dims:
        scan.need_join(ref)
    scans[key] = scan
    return scan


def step_key(conversion: Conversion) -> tuple[object, ...]:
    """What decides which base rows convert (not where it is written, nor rate/count)."""
    event = conversion.event
    return (
        event.source,
        event.time,
        event.filter.tree if event.filter is not None else None,
        conversion.base.entity,
        event.entity,
        conversion.within_days,
    )
