"""Results of a run: one row per period × dimension values × KPI (SPEC §5-§6), with the
alerts and row statuses that evaluating rules adds.

:class:`Alert` lives here, before the rules stage that makes alerts, so that a
:class:`Result` can name the type of what it holds. A Result is frozen: the rules stage
gives a new one (:meth:`Result.evaluated`) rather than filling in the executor's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from kpiengine.loader.model import RetailCalendar


@dataclass(frozen=True)
class ResultRow:
    period: dt.date | None
    kpi: str
    value: int | float | None
    dimensions: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "period": self.period.isoformat() if self.period else None,
            "kpi": self.kpi,
            "value": self.value,
        }
        row.update(self.dimensions)
        return row


@dataclass(frozen=True)
class Alert:
    """A rule that fired. ``kpi`` is None for a standalone rule file (it names several)."""

    kpi: str | None
    rule: str
    period: dt.date | None
    dimensions: tuple[tuple[str, Any], ...]
    value: Any
    target: float | None
    severity: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "rule": self.rule,
            "period": self.period.isoformat() if self.period else None,
            "dimensions": dict(self.dimensions),
            "value": self.value,
            "target": self.target,
            "severity": self.severity,
            "message": self.message,
        }


@dataclass(frozen=True)
class Result:
    grain: str
    start: dt.date | None
    end: dt.date | None
    by: tuple[str, ...]
    rows: list[ResultRow]
    alerts: list[Alert] = field(default_factory=list)
    sql: str = ""
    statuses: dict[ResultRow, str] = field(default_factory=dict)  # ok/insufficient_data/info/...
    #: the date rules project in-progress periods at (``pace``) and rows are ``partial`` at
    as_of: dt.date | None = None
    #: the project's retail calendar (SPEC §13.7): where its periods end
    retail_calendar: RetailCalendar | None = None

    def partial(self, row: ResultRow) -> bool:
        """The row's period is in progress at :attr:`as_of` (SPEC §13.8)."""
        from kpiengine.rules.pace import is_partial, period_bounds

        if self.as_of is None:
            return False
        bounds = period_bounds(
            row.period, self.grain, self.start, self.end, retail=self.retail_calendar
        )
        return is_partial(bounds, self.as_of)

    def evaluated(self, alerts: list[Alert], statuses: dict[ResultRow, str]) -> Result:
        """This result with the alerts and statuses of its rules."""
        return replace(self, alerts=alerts, statuses=statuses)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``kpi run --format json`` (SPEC §6)."""
        return {
            "grain": self.grain,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "rows": self.to_dicts(),
            "alerts": [a.to_dict() for a in self.alerts],
        }

    def value(self, kpi: str, period: str | dt.date | None = None, **dimensions: Any) -> Any:
        """Look up one value (mainly for tests and notebooks)."""
        if isinstance(period, str):
            period = dt.date.fromisoformat(period)
        for row in self.rows:
            if row.kpi == kpi and row.period == period and dict(row.dimensions) == dimensions:
                return row.value
        raise KeyError((kpi, period, dimensions))
