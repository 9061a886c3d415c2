"""Report data: what a person reads from a run — latest values, changes, trends, alerts.

The renderers (HTML, Markdown, JSON, CSV) all start from :func:`build_report`, so every
format shows the same numbers; the HTML trend charts are computed here as SVG points.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kpiengine.execute.result import Result, ResultRow
from kpiengine.loader.model import Project
from kpiengine.render.funnel import funnel_views
from kpiengine.render.terminal import format_value
from kpiengine.rules.evaluate import INSUFFICIENT_DATA, STATUS_ORDER, Alert

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 240, 64, 4


@dataclass
class Series:
    label: str  # dimension values, or "" for the total
    values: list[Any]
    points: str = ""  # SVG polyline points
    latest: Any = None
    previous: Any = None
    change: float | None = None
    status: str = "ok"
    partial: bool = False  # its latest period is in progress at the run's as-of date


@dataclass
class KpiCard:
    name: str
    title: str
    unit: str | None
    description: str | None
    target: float | None
    direction: str | None
    periods: list[dt.date | None]
    series: list[Series] = field(default_factory=list)
    status: str = "ok"
    target_y: float | None = None
    group: str = "other"  # the KPI's first tag: the report's sections

    def value_text(self, value: Any, currency: str) -> str:
        return format_value(value, self.unit, currency)


@dataclass
class ReportData:
    """Everything one ``kpi report`` shows, built once by :func:`build_report` and handed to
    every renderer (built-in or plugin). Named apart from
    :class:`~kpiengine.render.diagnostic_formats.report.ValidationReport`, the outcome of
    ``kpi validate``: the two were both called ``Report``."""

    project: str
    currency: str
    grain: str
    start: dt.date | None
    end: dt.date | None
    generated: str
    by: tuple[str, ...]
    cards: list[KpiCard]
    alerts: list[Alert]
    rows: list[ResultRow]
    statuses: dict[ResultRow, str] = field(default_factory=dict)
    as_of: dt.date | None = None
    #: rows of periods in progress at ``as_of`` (SPEC §13.8)
    partial_rows: frozenset[ResultRow] = frozenset()
    #: the cohort heat map's section (``kpi demo``): a render.cohort_formats.CohortView
    cohort: Any = None
    #: the funnel section: conversion KPIs as funnel steps (render/funnel.py)
    funnels: list[Any] = field(default_factory=list)

    @property
    def last_period(self) -> dt.date | None:
        return max((r.period for r in self.rows if r.period is not None), default=None)

    def partial(self, row: ResultRow) -> bool:
        """The row's period is in progress at :attr:`as_of`."""
        return row in self.partial_rows

    @property
    def insufficient(self) -> list[ResultRow]:
        """Rows whose guarded rules were not evaluated (``require:`` not true)."""
        return [r for r in self.rows if self.statuses.get(r) == INSUFFICIENT_DATA]


def build_report(
    project: Project, result: Result, alerts: list[Alert], statuses: dict[ResultRow, str]
) -> ReportData:
    cards: dict[str, KpiCard] = {}
    grouped: dict[tuple[str, tuple[Any, ...]], list[ResultRow]] = {}
    periods = sorted({r.period for r in result.rows if r.period is not None}) or [None]
    for row in result.rows:
        grouped.setdefault((row.kpi, row.dimensions), []).append(row)
    for (name, dimensions), rows in grouped.items():
        kpi = project.kpis[name]
        card = cards.get(name)
        if card is None:
            card = KpiCard(
                name,
                kpi.title or name,
                kpi.unit,
                kpi.description,
                kpi.target.value if kpi.target else None,
                kpi.target.direction if kpi.target else None,
                list(periods),
                group=kpi.tags[0] if kpi.tags else "other",
            )
            cards[name] = card
        by_period = {r.period: r for r in rows}
        values = [by_period[p].value if p in by_period else None for p in periods]
        label = ", ".join("∅" if v is None else str(v) for _, v in dimensions)
        series = Series(label, values)
        if rows:
            last = rows[-1]
            series.latest = last.value
            series.status = statuses.get(last, "ok")
            series.partial = result.partial(last)
            if len(rows) > 1:
                series.previous = rows[-2].value
        if (
            isinstance(series.latest, int | float)
            and isinstance(series.previous, int | float)
            and series.previous != 0
        ):
            series.change = (series.latest - series.previous) / abs(series.previous)
        card.series.append(series)
    for card in cards.values():
        _chart(card)
        card.status = max(
            (s.status for s in card.series), key=STATUS_ORDER.__getitem__, default="ok"
        )
    report = ReportData(
        project.name,
        project.currency,
        result.grain,
        result.start,
        result.end,
        dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        result.by,
        list(cards.values()),
        alerts,
        result.rows,
        statuses,
        result.as_of,
        frozenset(r for r in result.rows if result.partial(r)),
    )
    report.funnels = funnel_views(project, report)  # conversion KPIs (SPEC §13.5)
    return report


def _chart(card: KpiCard) -> None:
    """SVG polyline points for every series of a card, on one shared scale."""
    numbers = [v for s in card.series for v in s.values if isinstance(v, int | float)]
    if card.target is not None:
        numbers.append(card.target)
    if not numbers:
        return
    low, high = min(numbers), max(numbers)
    if high == low:
        low, high = low - 1, high + 1
    count = max(len(card.periods) - 1, 1)

    def y(value: float) -> float:
        share = (value - low) / (high - low)
        return round(CHART_HEIGHT - CHART_PAD - share * (CHART_HEIGHT - 2 * CHART_PAD), 1)

    for series in card.series:
        points = []
        for index, value in enumerate(series.values):
            if isinstance(value, int | float):
                x = round(CHART_PAD + index * (CHART_WIDTH - 2 * CHART_PAD) / count, 1)
                points.append(f"{x},{y(value)}")
        series.points = " ".join(points)
    if card.target is not None:
        card.target_y = y(card.target)
