"""The report's funnel section: conversion KPIs (SPEC §13.5) drawn as funnel steps.

A *funnel* gathers the conversion KPIs of a report (``value: rate``) that share their
base events: the same base source, time column and filter (leads captured; leads
qualified). Its first bar is the base events (100 %); then one bar per conversion KPI,
widest first, its length the KPI's rate: the share of base events that reached that
step. The *step rate* is a step's rate over the previous step's: the share of those
that reached the previous step that also reached this one, exact when every base event
converting at a step converted at the previous one (a lead that became a customer was an
opportunity first).

Every step of a funnel shows one period: the latest whose windows have closed by the
report's end (period end + ``within`` days ≤ end), so that no step is cut short by the
data's end; without such a period, the latest period with values. Only total rows count:
a report grouped ``--by`` a dimension shows no funnel (one per dimension value would be
as many funnels as values).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kpiengine.loader.model import Kpi, Project
from kpiengine.plan.periods import add_periods
from kpiengine.render.terminal import format_value

if TYPE_CHECKING:
    from kpiengine.render.report_data import ReportData


@dataclass
class FunnelStep:
    kpi: str | None  # None for the base events
    label: str
    share: float  # of the base events, 0..1 (bar length)
    share_text: str
    step_text: str  # the step rate, "" for the base bar


@dataclass
class Funnel:
    title: str  # the base events in words
    period: dt.date | None
    steps: list[FunnelStep] = field(default_factory=list)


def funnel_views(project: Project, report: ReportData) -> list[Funnel]:
    """The report's funnels, in the order their KPIs appear; empty when it has none."""
    if report.by:
        return []
    groups: dict[tuple[Any, ...], list[Kpi]] = {}
    for card in report.cards:
        kpi = project.kpis.get(card.name)
        if kpi is None or kpi.conversion is None or kpi.conversion.value != "rate":
            continue
        base = kpi.conversion.base
        key = (base.source, kpi.time, kpi.filter.text if kpi.filter is not None else None)
        groups.setdefault(key, []).append(kpi)
    values = {
        (row.kpi, row.period): row.value
        for row in report.rows
        if not row.dimensions and isinstance(row.value, int | float)
    }
    funnels = []
    for (source, _, condition), kpis in groups.items():
        period = _period(report, kpis, values)
        if period is None:
            continue
        funnels.append(_funnel(project, source, condition, kpis, period, values))
    return funnels


def _period(
    report: ReportData, kpis: list[Kpi], values: dict[tuple[str, Any], Any]
) -> dt.date | None:
    """The latest period where every step has a value, preferring one whose windows have
    all closed by the report's end."""
    periods = sorted(
        {p for (name, p) in values if p is not None and name in {k.name for k in kpis}}
    )
    complete = [p for p in periods if all((k.name, p) in values for k in kpis)]
    if not complete:
        return None
    longest = max((k.conversion.within_days or 0 for k in kpis if k.conversion), default=0)
    if report.end is not None and report.grain != "all":
        closed = [
            p
            for p in complete
            if add_periods(p, report.grain, 1) + dt.timedelta(days=longest) <= report.end
        ]
        if closed:
            return closed[-1]
    return complete[-1]


def _funnel(
    project: Project,
    source: str,
    condition: str | None,
    kpis: list[Kpi],
    period: dt.date,
    values: dict[tuple[str, Any], Any],
) -> Funnel:
    time = kpis[0].time or project.sources[source].time
    where = f" where {condition.strip()}" if condition else ""
    title = f"{source} by {time}{where}"
    funnel = Funnel(title, period)
    funnel.steps.append(FunnelStep(None, f"{source} (base events)", 1.0, "100.0 %", ""))
    ranked = sorted(kpis, key=lambda k: -float(values[(k.name, period)]))
    previous = 1.0
    for kpi in ranked:
        share = float(values[(kpi.name, period)])
        step = share / previous if previous else None
        funnel.steps.append(
            FunnelStep(
                kpi.name,
                kpi.title or kpi.name,
                max(0.0, min(share, 1.0)),
                format_value(share, "percent"),
                format_value(step, "percent"),
            )
        )
        previous = share
    return funnel
