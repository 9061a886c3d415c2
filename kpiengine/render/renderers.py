"""Render stage: a report through a Jinja template, always sandboxed; HTML autoescaped.

Titles, descriptions and messages come from definitions and users: they must never
become markup or code. Every built-in renderer is one template users can replace with
``--template``; more renderers come through the ``kpiengine_renderers`` hook, looked up on
the project's plugin host. A renderer returns text or bytes (a PDF, an image);
:func:`render_report` gives either with its content type.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpiengine.render.report_data import ReportData
from kpiengine.render.terminal import format_value

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginHost

PALETTE = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#b35900", "#1b7c83", "#bf3989", "#57606a"]


@dataclass(frozen=True)
class TemplateRenderer:
    name: str
    suffix: str
    template: str  # file name under kpiengine/render/templates/
    autoescape: bool = False
    content_type: str = "text/plain; charset=utf-8"

    def render(self, report: ReportData, template: Path | None = None) -> str:
        from kpiengine.errors import UsageError
        from kpiengine.rules.messages import (
            REPORT_LIMITS,
            BoundedEnvironment,
            add_filters,
            describe_error,
        )

        if template is not None:
            text = template.read_text(encoding="utf-8")
        else:
            resource = resources.files("kpiengine.render").joinpath(f"templates/{self.template}")
            text = resource.read_text(encoding="utf-8")
        environment = BoundedEnvironment(
            REPORT_LIMITS,
            autoescape=self.autoescape,
            keep_trailing_newline=True,
            loader=_partials_loader(),
        )
        add_filters(environment, report.currency)
        environment.add_filter("csv_row", csv_row)
        environment.add_filter("md", markdown_text)
        environment.add_filter("json", lambda value: json.dumps(value, default=str, indent=2))
        context = {
            "report": report,
            "palette": PALETTE,
            "units": {card.name: card.unit for card in report.cards},
            "format_value": format_value,
            "data": report_data(report),
        }
        try:
            return environment.render_bounded(environment.from_string(text), context)
        except Exception as error:  # a user's template: say where and why, never a traceback
            line = getattr(error, "lineno", None) or _template_line(error)
            where = f"{template or self.template}{f':{line}' if line else ''}"
            raise UsageError(f"template {where}: {describe_error(error)}") from None


def _partials_loader() -> Any:
    """Built-in templates may include the partials beside them (``_statuses.html.j2``):
    only names starting with ``_`` in ``kpiengine/render/templates/``, nothing else on
    disk, so a user's ``--template`` can include them too but reads no other file."""
    from jinja2 import FunctionLoader

    def load(name: str) -> str | None:
        if not re.fullmatch(r"_[a-z0-9_]+\.[a-z]+\.j2", name):
            return None
        resource = resources.files("kpiengine.render").joinpath(f"templates/{name}")
        return resource.read_text(encoding="utf-8") if resource.is_file() else None

    return FunctionLoader(load)


def _template_line(error: BaseException) -> int | None:
    """The template line a runtime error happened on (Jinja keeps it in the traceback)."""
    traceback = error.__traceback__
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


#: A CSV cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...)).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_row(values: list[Any]) -> str:
    """One CSV line; text cells a spreadsheet would run as a formula get a leading `'`
    (numbers, negative ones included, stay numbers)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([_csv_cell(v) for v in values])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    formula = isinstance(value, str) and value.startswith(_FORMULA_STARTS)
    if formula and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def markdown_text(value: Any) -> str:
    """Text from definitions or data, safe inside a Markdown table cell or heading:
    HTML special characters escaped (no raw ``<script>``), Markdown punctuation that
    could start a link, emphasis or code escaped with a backslash, ``|`` escaped so it
    cannot split a cell, and line breaks as ``<br>`` so they cannot end a row."""
    text = "" if value is None else str(value)
    text = html.escape(text, quote=False)
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"\r\n|\r|\n", "<br>", text)


def report_data(report: ReportData) -> dict[str, Any]:
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
                        "partial": s.partial,
                    }
                    for s in card.series
                ],
            }
            for card in report.cards
        ],
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "alerts": [a.to_dict() for a in report.alerts],
        "rows": [
            {**r.to_dict(), "status": report.statuses.get(r, "ok"), "partial": report.partial(r)}
            for r in report.rows
        ],
    }


BUILTIN_RENDERERS = (
    TemplateRenderer(
        "html", ".html", "report.html.j2", autoescape=True, content_type="text/html; charset=utf-8"
    ),
    TemplateRenderer(
        "markdown", ".md", "report.md.j2", content_type="text/markdown; charset=utf-8"
    ),
    TemplateRenderer("json", ".json", "report.json.j2", content_type="application/json"),
    TemplateRenderer("csv", ".csv", "report.csv.j2", content_type="text/csv; charset=utf-8"),
)


def find_renderer(name: str, plugins: PluginHost | None = None) -> Any:
    """The renderer called ``name`` among ``plugins``' (the project's host; by default the
    process's: built-ins and installed plugins)."""
    from kpiengine.plugins.manager import default_host

    return (plugins or default_host()).find_named("kpiengine_renderers", name, "renderer")


@dataclass(frozen=True)
class RenderedReport:
    """What a renderer produced: text (written as UTF-8) or bytes, and what it is."""

    content: str | bytes
    content_type: str


def render_report(
    renderer: Any, report: ReportData, template: Path | None = None
) -> RenderedReport:
    """``renderer.render(...)`` checked: text or bytes, with the renderer's
    ``content_type``, else one guessed from its ``suffix``."""
    import mimetypes

    from kpiengine.errors import UsageError

    content = renderer.render(report, template)
    if isinstance(content, bytearray | memoryview):
        content = bytes(content)
    if not isinstance(content, str | bytes):
        raise UsageError(
            f"renderer `{renderer.name}` returned {type(content).__name__}, not text or bytes"
        )
    declared = getattr(renderer, "content_type", None)
    if not declared:
        guessed, _ = mimetypes.guess_type(f"report{getattr(renderer, 'suffix', '')}")
        text = isinstance(content, str)
        declared = guessed or ("text/plain" if text else "application/octet-stream")
        if text and declared.startswith("text/"):
            declared += "; charset=utf-8"
    return RenderedReport(content, declared)


def suffix_mismatch(renderer: Any, output: Path) -> str | None:
    """A warning when ``-o`` does not end in the renderer's ``suffix`` (``report.md`` from
    the html renderer): the file would open in the wrong program. Only a warning: a
    suffix such as ``.htm`` or none at all can be the user's choice."""
    suffix = getattr(renderer, "suffix", "") or ""
    if not suffix or output.suffix.lower() == suffix.lower():
        return None
    return (
        f"{output} does not end in {suffix}, the suffix of the `{renderer.name}` renderer's files"
    )


def render_html(report: ReportData, template: Path | None = None) -> str:
    return BUILTIN_RENDERERS[0].render(report, template)
