"""Plain-text presentation of results and KPI lists for the terminal (no heavy imports)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from kpiengine.execute.result import Result
from kpiengine.loader.model import Kpi, Project


def format_value(value: Any, unit: str | None, currency: str = "EUR") -> str:
    """A value as a person reads it: 47.0 %, 12,400 EUR, 31.5 days."""
    if value is None:
        return "—"
    if not isinstance(value, int | float):
        return str(value)
    if unit == "percent":
        return f"{value * 100:,.1f} %"
    if unit == "currency":
        return f"{value:,.0f} {currency}" if abs(value) >= 100 else f"{value:,.2f} {currency}"
    if unit == "days":
        return f"{value:,.1f} days"
    if unit == "count" or isinstance(value, int):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """Columns aligned with spaces, numbers right-aligned."""
    right = right or [False] * len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def result_table(result: Result, project: Project) -> str:
    headers = ["period", *result.by, "kpi", "value"]
    rows = []
    for row in result.rows:
        kpi = project.kpis.get(row.kpi)
        unit = kpi.unit if kpi else None
        rows.append(
            [
                row.period.isoformat() if row.period else "all",
                *("∅" if v is None else str(v) for _, v in row.dimensions),
                row.kpi,
                format_value(row.value, unit, project.currency),
            ]
        )
    if not rows:
        return "(no rows: no data in the range)"
    return table(headers, rows, [False] * (len(headers) - 1) + [True])


def result_csv(result: Result) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", *result.by, "kpi", "value"])
    for row in result.rows:
        writer.writerow(
            [
                row.period.isoformat() if row.period else "",
                *("" if v is None else v for _, v in row.dimensions),
                row.kpi,
                "" if row.value is None else repr(row.value),
            ]
        )
    return out.getvalue()


def result_json(result: Result) -> str:
    return json.dumps(result.to_json(), indent=2, default=str)


def kpi_list(kpis: Sequence[Kpi], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [
                {
                    "name": k.name,
                    "title": k.title,
                    "unit": k.unit,
                    "source": k.source,
                    "owner": k.owner,
                    "tags": list(k.tags),
                    "description": k.description,
                }
                for k in kpis
            ],
            indent=2,
        )
    rows = [
        [
            k.name,
            k.title or "",
            k.unit or "",
            k.source or "(derived)",
            k.owner or "",
            ", ".join(k.tags),
        ]
        for k in kpis
    ]
    headers = ["kpi", "title", "unit", "source", "owner", "tags"]
    if fmt == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines)
    return table(headers, rows)


def summary_table(report: Any) -> str:
    """Demo summary: KPI, latest value with unit, change vs previous period, status."""
    rows = []
    for card in report.cards:
        series = card.series[0]
        change = "" if series.change is None else f"{series.change * 100:+.1f} %"
        rows.append(
            [
                card.title,
                format_value(series.latest, card.unit, report.currency),
                change,
                card.status,
            ]
        )
    return table(["KPI", "latest", "vs previous", "status"], rows, [False, True, True, False])
