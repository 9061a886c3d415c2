"""Results of a run: one row per period × dimension values × KPI (SPEC §5-§6)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class Result:
    grain: str
    start: dt.date | None
    end: dt.date | None
    by: tuple[str, ...]
    rows: list[ResultRow]
    alerts: list[Any] = field(default_factory=list)
    sql: str = ""
    statuses: dict[ResultRow, str] = field(default_factory=dict)  # ok/info/warning/critical

    def to_dicts(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        """The JSON document of ``kpi run --format json`` (SPEC §6)."""
        return {
            "grain": self.grain,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "rows": self.to_dicts(),
            "alerts": [a.to_dict() if hasattr(a, "to_dict") else a for a in self.alerts],
        }

    def value(self, kpi: str, period: str | dt.date | None = None, **dimensions: Any) -> Any:
        """Look up one value (mainly for tests and notebooks)."""
        if isinstance(period, str):
            period = dt.date.fromisoformat(period)
        for row in self.rows:
            if row.kpi == kpi and row.period == period and dict(row.dimensions) == dimensions:
                return row.value
        raise KeyError((kpi, period, dimensions))
