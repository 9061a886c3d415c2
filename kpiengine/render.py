"""Render stage: a report through a Jinja template, always sandboxed; HTML autoescaped.

Titles, descriptions and messages come from definitions and users: they must never
become markup or code. Every built-in renderer is one template users can replace with
``--template``; more renderers come through the ``kpiengine_renderers`` hook.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from kpiengine.present import format_value
from kpiengine.report import Report

PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#b35900", "#1b7c83", "#bf3989", "#57606a"]


@dataclass(frozen=True)
class TemplateRenderer:
    name: str
    suffix: str
    template: str  # file name under kpiengine/templates/
    autoescape: bool = False

    def render(self, report: Report, template: Path | None = None) -> str:
        from jinja2 import TemplateError
        from jinja2.sandbox import SandboxedEnvironment

        from kpiengine.errors import UsageError
        from kpiengine.templates_env import add_filters

        if template is not None:
            text = template.read_text(encoding="utf-8")
        else:
            resource = resources.files("kpiengine").joinpath(f"templates/{self.template}")
            text = resource.read_text(encoding="utf-8")
        environment = SandboxedEnvironment(autoescape=self.autoescape, keep_trailing_newline=True)
        add_filters(environment, report.currency)
        environment.filters["csv_row"] = _csv_row
        environment.filters["json"] = lambda value: json.dumps(value, default=str, indent=2)
        context = {
            "report": report,
            "palette": PALETTE,
            "units": {card.name: card.unit for card in report.cards},
            "format_value": format_value,
            "data": report_data(report),
        }
        try:
            return environment.from_string(text).render(**context)
        except TemplateError as error:  # a user's template: say where, never a traceback
            line = getattr(error, "lineno", None)
            where = f"{template or self.template}{f':{line}' if line else ''}"
            raise UsageError(f"template {where}: {type(error).__name__}: {error}") from None


def _csv_row(values: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


def report_data(report: Report) -> dict[str, Any]:
    """The report as plain data (the JSON renderer's document)."""
    return {
        "project": report.project,
        "grain": report.grain,
        "from": report.start.isoformat() if report.start else None,
        "to": report.end.isoformat() if report.end else None,
        "generated": report.generated,
        "kpis": [
            {
                "kpi": card.name,
                "title": card.title,
                "unit": card.unit,
                "status": card.status,
                "target": card.target,
                "series": [
                    {
                        "dimensions": s.label,
                        "latest": s.latest,
                        "previous": s.previous,
                        "change": s.change,
                        "status": s.status,
                    }
                    for s in card.series
                ],
            }
            for card in report.cards
        ],
        "alerts": [a.to_dict() for a in report.alerts],
        "rows": [r.to_dict() for r in report.rows],
    }


BUILTIN_RENDERERS = (
    TemplateRenderer("html", ".html", "report.html.j2", autoescape=True),
    TemplateRenderer("markdown", ".md", "report.md.j2"),
    TemplateRenderer("json", ".json", "report.json.j2"),
    TemplateRenderer("csv", ".csv", "report.csv.j2"),
)


def find_renderer(name: str) -> Any:
    from kpiengine.plugins import find_named

    return find_named("kpiengine_renderers", name, "renderer")


def render_html(report: Report, template: Path | None = None) -> str:
    return BUILTIN_RENDERERS[0].render(report, template)
