"""``kpi cohort`` outputs: text and Markdown triangles, JSON and CSV rows, an HTML heat map.

The heat map is a plain table whose cells carry their colour as an inline style and their
numbers as text: it reads the same with JavaScript off, printed, or in a screen reader,
and loads nothing. :func:`cohort_view` prepares it for both the standalone page
(``cohort.html.j2``) and the demo report's section (``_cohort.html.j2``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from kpiengine.cohort import CohortCell, CohortTable
from kpiengine.render.terminal import format_value, table

FORMATS = ("text", "json", "csv", "markdown", "html")
EMPTY = "—"


@dataclass(frozen=True)
class HeatCell:
    text: str  # the retention, as read
    value: str  # the KPI's value, as read
    title: str  # what a tooltip says: period, value, retention
    style: str  # inline colours: no stylesheet or script needed


@dataclass(frozen=True)
class HeatRow:
    cohort: str
    start: str  # the value at age 0: what the cohort started with
    cells: list[HeatCell]


@dataclass(frozen=True)
class CohortView:
    """A triangle ready to draw: cohorts as rows, ages as columns."""

    kpi: str
    title: str
    column: str
    grain: str
    start: str
    end: str
    ages: list[int]
    rows: list[HeatRow]
    gross: list[HeatRow] = field(default_factory=list)  # with --per: gross retention
    per: str | None = None


def percent(value: float | None) -> str:
    return EMPTY if value is None else f"{value * 100:,.1f} %"


def heat_style(retention: float | None, low: float = 0.0) -> str:
    """Background from near white (``low``, the triangle's lowest retention) to deep blue
    (100 % and above), white text on dark: retention often stays within 80-100 %, where a
    scale from 0 would paint every cell alike. The text carries the number itself."""
    if retention is None:
        return "background-color: #f6f8fa; color: #59636e"
    share = 1.0 if low >= 1 else max(0.0, min((retention - low) / (1 - low), 1.0))
    light, dark = (246, 248, 250), (9, 105, 218)
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(light, dark, strict=True))
    ink = "#ffffff" if share >= 0.55 else "#1f2328"
    return f"background-color: #{red:02x}{green:02x}{blue:02x}; color: {ink}"


def cohort_view(cohorts: CohortTable) -> CohortView:
    def lowest(gross: bool) -> float:
        shares = [c.gross_retention if gross else c.retention for c in cohorts.cells]
        return min([min(s, 1.0) for s in shares if s is not None] or [0.0])

    def row(cohort: Any, cells: list[CohortCell], gross: bool) -> HeatRow:
        first = cells[0].value if cells else None
        heat = []
        low = lowest(gross)
        for cell in cells:
            share = cell.gross_retention if gross else cell.retention
            value = format_value(cell.value, cohorts.unit, cohorts.currency)
            what = "gross retention" if gross else "retention"
            title = f"{cell.period}: {cohorts.kpi} {value}, {what} {percent(share)}"
            heat.append(HeatCell(percent(share), value, title, heat_style(share, low)))
        start = format_value(first, cohorts.unit, cohorts.currency)
        return HeatRow(cohort.isoformat(), start, heat)

    grouped = cohorts.by_cohort()
    return CohortView(
        cohorts.kpi,
        cohorts.title,
        cohorts.column,
        cohorts.grain,
        cohorts.start.isoformat() if cohorts.start else "",
        cohorts.end.isoformat() if cohorts.end else "",
        list(range(cohorts.ages)),
        [row(c, cells, False) for c, cells in grouped],
        [row(c, cells, True) for c, cells in grouped] if cohorts.per else [],
        cohorts.per,
    )


# -- formats ---------------------------------------------------------------------------


def render_cohort(cohorts: CohortTable, fmt: str) -> str:
    """``cohorts`` in one of :data:`FORMATS`."""
    return _RENDER[fmt](cohorts)


def cohort_json(cohorts: CohortTable) -> str:
    return json.dumps(cohorts.to_json(), indent=2) + "\n"


def cohort_csv(cohorts: CohortTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    gross = cohorts.per is not None
    writer.writerow(
        ["cohort", "age", "period", "value", "retention", *(["gross_retention"] if gross else [])]
    )
    for cell in cohorts.cells:
        numbers = [cell.value, cell.retention, *([cell.gross_retention] if gross else [])]
        writer.writerow(
            [
                cell.cohort.isoformat(),
                cell.age,
                cell.period.isoformat(),
                *("" if n is None else repr(n) for n in numbers),
            ]
        )
    return out.getvalue()


def _triangles(cohorts: CohortTable) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, headers, rows) of the retention triangle, and of gross retention."""
    view = cohort_view(cohorts)
    headers = ["cohort", "age 0 value", *(str(a) for a in view.ages)]
    found = []
    for heading, rows in (("retention", view.rows), ("gross retention", view.gross)):
        if not rows and heading != "retention":
            continue
        lines = []
        for row in rows:
            cells = [c.text for c in row.cells]
            lines.append([row.cohort, row.start, *cells, *[""] * (len(view.ages) - len(cells))])
        found.append((heading, headers, lines))
    return found


def _caption(cohorts: CohortTable) -> str:
    by = f", per {cohorts.per}" if cohorts.per else ""
    span = f", {cohorts.start} to {cohorts.end} (end excluded)" if cohorts.start else ""
    return (
        f"{cohorts.kpi} by cohort of {cohorts.column}, {cohorts.grain} grain{span}{by}; "
        "retention = value / value at age 0"
    )


def cohort_text(cohorts: CohortTable) -> str:
    if not cohorts.cohorts:
        return "(no cohorts: no data in the range)\n"
    parts = [_caption(cohorts)]
    for heading, headers, rows in _triangles(cohorts):
        right = [False] + [True] * (len(headers) - 1)
        parts.append(f"\n{heading} by age ({cohorts.grain}s since the cohort's):\n")
        parts.append(table(headers, rows, right))
    return "\n".join(parts) + "\n"


def cohort_markdown(cohorts: CohortTable) -> str:
    from kpiengine.render.renderers import markdown_text

    parts = [f"### {markdown_text(cohorts.title)}", "", markdown_text(_caption(cohorts))]
    if not cohorts.cohorts:
        return "\n".join([*parts, "", "No cohorts: no data in the range.", ""])
    for heading, headers, rows in _triangles(cohorts):
        parts += ["", f"**{heading}** by age", ""]
        parts.append("| " + " | ".join(headers) + " |")
        parts.append("|---|" + "---:|" * (len(headers) - 1))
        parts += ["| " + " | ".join(markdown_text(c) for c in row) + " |" for row in rows]
    return "\n".join(parts) + "\n"


def cohort_html(cohorts: CohortTable) -> str:
    """The standalone heat-map page (``cohort.html.j2``), rendered in the sandbox."""
    from kpiengine.rules.messages import REPORT_LIMITS, BoundedEnvironment

    environment = BoundedEnvironment(
        REPORT_LIMITS, autoescape=True, keep_trailing_newline=True, loader=partials()
    )
    template = environment.get_template("cohort.html.j2")
    return environment.render_bounded(template, {"cohort": cohort_view(cohorts)})


def partials() -> Any:
    """A Jinja loader for the built-in templates, so a report can include a section
    (``{% include "_cohort.html.j2" %}``), a user's ``--template`` too."""
    from jinja2 import FunctionLoader

    def load(name: str) -> str | None:
        if "/" in name or "\\" in name or not name.endswith(".j2"):
            return None
        resource = resources.files("kpiengine.render").joinpath(f"templates/{name}")
        return resource.read_text(encoding="utf-8") if resource.is_file() else None

    return FunctionLoader(load)


_RENDER = {
    "text": cohort_text,
    "json": cohort_json,
    "csv": cohort_csv,
    "markdown": cohort_markdown,
    "html": cohort_html,
}


# -- the demo report's section -----------------------------------------------------------

#: What ``kpi demo``'s report shows as cohorts: revenue retention by first-paid month,
#: net (``retention``) and gross (per account, expansion excluded).
DEMO_COHORT = ("mrr", "accounts.customer_since", "account_id")


def demo_cohort(project: Any, connection: Any, start: Any, end: Any) -> CohortView | None:
    """The demo report's heat map over ``[start, end)``; None when the catalog lacks it."""
    from kpiengine.cohort import cohort_plans, run_cohort

    kpi, column, per = DEMO_COHORT
    if kpi not in project.model.kpis:
        return None
    plans = cohort_plans(project, kpi, column, per, start=start, end=end)
    return cohort_view(run_cohort(project, plans, connection, column, per))
