"""Render stage: a report through a Jinja template, always sandboxed and, for HTML,
autoescaped — titles and messages come from definitions and must never become markup."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from kpiengine.present import format_value
from kpiengine.report import Report

PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#b35900", "#1b7c83", "#bf3989", "#57606a"]


def render_html(report: Report, template: Path | None = None) -> str:
    from jinja2.sandbox import SandboxedEnvironment

    from kpiengine.templates_env import add_filters

    text = (
        template.read_text(encoding="utf-8")
        if template is not None
        else resources.files("kpiengine")
        .joinpath("templates/report.html.j2")
        .read_text(encoding="utf-8")
    )
    environment = SandboxedEnvironment(autoescape=True)
    add_filters(environment, report.currency)
    units = {card.name: card.unit for card in report.cards}
    return environment.from_string(text).render(
        report=report, palette=PALETTE, units=units, format_value=format_value
    )
