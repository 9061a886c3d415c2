"""Plain-text presentation of results and KPI lists for the terminal (no heavy imports)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from kpiengine.execute.result import Result, ResultRow
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
    """The table of ``kpi run``: a ``status`` column when the run's KPIs have rules, a
    ``partial`` one when a period is in progress, and the alerts below the table."""
    with_status, partial = has_rules(result, project), any(map(result.partial, result.rows))
    headers = ["period", *result.by, "kpi", "value"]
    headers += ["status"] * with_status + ["partial"] * partial
    rows = []
    for row in result.rows:
        kpi = project.kpis.get(row.kpi)
        unit = kpi.unit if kpi else None
        cells = [
            row.period.isoformat() if row.period else "all",
            *("∅" if v is None else str(v) for _, v in row.dimensions),
            row.kpi,
            format_value(row.value, unit, project.currency),
        ]
        cells += [row_status(result, project, row)] * with_status
        cells += ["partial" if result.partial(row) else ""] * partial
        rows.append(cells)
    if not rows:
        return "(no rows: no data in the range)"
    right = [False] * (len(result.by) + 2) + [True] + [False] * (with_status + partial)
    return table(headers, rows, right) + alert_lines(result)


def alert_lines(result: Result) -> str:
    """The alerts of a run under its table, one line each (nothing when none fired)."""
    if not result.alerts:
        return ""
    lines = [f"\n\n{len(result.alerts)} alert(s):"]
    for alert in result.alerts:
        where = " ".join(
            [
                alert.period.isoformat() if alert.period else "all",
                *(f"{k}={'∅' if v is None else v}" for k, v in alert.dimensions),
            ]
        )
        lines.append(f"  {alert.severity}  {alert.kpi or alert.rule}  {where}: {alert.message}")
    return "\n".join(lines)


def has_rules(result: Result, project: Project) -> bool:
    """Whether the run's KPIs have rules: then rows carry a status."""
    names = {row.kpi for row in result.rows}
    return any(project.kpis[n].rules for n in names if n in project.kpis)


def row_status(result: Result, project: Project, row: ResultRow) -> str:
    """The row's status, or "" for a KPI without rules (nothing was checked)."""
    kpi = project.kpis.get(row.kpi)
    if kpi is None or not kpi.rules:
        return ""
    return result.statuses.get(row, "ok")


def _fired(result: Result) -> dict[tuple[Any, ...], list[str]]:
    """(KPI, period, dimensions) → the rules that fired on that row."""
    fired: dict[tuple[Any, ...], list[str]] = {}
    for alert in result.alerts:
        if alert.kpi is not None:
            fired.setdefault((alert.kpi, alert.period, alert.dimensions), []).append(alert.rule)
    return fired


def result_csv(result: Result, project: Project | None = None) -> str:
    """The CSV of ``kpi run``: always a ``partial`` column; ``status`` and ``alerts`` (the
    rules that fired on the row, ``;``-separated) when the run's KPIs have rules."""
    with_status = project is not None and has_rules(result, project)
    fired = _fired(result)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    headers = ["period", *result.by, "kpi", "value"]
    writer.writerow(headers + ["status", "alerts"] * with_status + ["partial"])
    for row in result.rows:
        cells = [
            row.period.isoformat() if row.period else "",
            *("" if v is None else v for _, v in row.dimensions),
            row.kpi,
            "" if row.value is None else repr(row.value),
        ]
        if with_status and project is not None:
            rules = fired.get((row.kpi, row.period, row.dimensions), [])
            cells += [row_status(result, project, row), ";".join(rules)]
        cells.append("true" if result.partial(row) else "false")
        writer.writerow(cells)
    return out.getvalue()


def result_document(result: Result, project: Project | None = None) -> dict[str, Any]:
    """The JSON document of ``kpi run``/``kpi check``: SPEC §6's, with ``as_of``, and on
    every row ``partial`` (and ``status`` when the run's KPIs have rules)."""
    document = result.to_json()
    with_status = project is not None and has_rules(result, project)
    rows = []
    for row, data in zip(result.rows, document["rows"], strict=True):
        if with_status and project is not None:
            data["status"] = row_status(result, project, row) or None
        data["partial"] = result.partial(row)
        rows.append(data)
    as_of = result.as_of.isoformat() if result.as_of else None
    return {"grain": document["grain"], "from": document["from"], "to": document["to"],
            "as_of": as_of, "rows": rows, "alerts": document["alerts"]}  # fmt: skip


def result_json(
    result: Result, project: Project | None = None, checked: dict[str, Any] | None = None
) -> str:
    document = result_document(result, project)
    if checked is not None:
        document["checked"] = {k: v for k, v in checked.items() if k != "text"}
    return json.dumps(document, indent=2, default=str)


def checked_period(result: Result, default: bool) -> dict[str, Any]:
    """What ``kpi check`` checked: grain, range, as-of date, whether it is the default
    range, in progress, or empty (every value null or 0: no data), and a sentence."""
    start = result.start.isoformat() if result.start else None
    end = result.end.isoformat() if result.end else None
    as_of = result.as_of.isoformat() if result.as_of else None
    partial = any(map(result.partial, result.rows))
    span = f"{start} to {end} (end excluded)" if start and end else "all data"
    what = f"{result.grain} {span}" if result.grain != "all" else span
    last = default and result.grain != "all"
    how = f"the last complete {result.grain} before {as_of}" if last else f"as of {as_of}"
    text = f"checked {what}, {how}" + (", in progress" if partial else "")
    return {
        "grain": result.grain,
        "from": start,
        "to": end,
        "as_of": as_of,
        "default": default,
        "partial": partial,
        "empty": all(r.value in (None, 0) for r in result.rows),
        "insufficient_data": sum(1 for s in result.statuses.values() if s == "insufficient_data"),
        "text": text,
    }


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
