"""GitHub Actions workflow commands: one annotation per diagnostic.

``::error file=F,line=L,col=C,endLine=L2,endColumn=C2,title=KPI301 unknown column::msg``
GitHub shows these on the pull request's "Files changed" tab at the line. Errors are
``error``, warnings ``warning``, infos ``notice``. Values are escaped as the Actions
runner expects (``%``, CR and LF everywhere; also ``:`` and ``,`` in properties), so a
message can never end a command early or inject another one.
"""

from __future__ import annotations

from kpiengine.diagnostics import CODES, Diagnostic, Severity
from kpiengine.render.diagnostic_formats.report import ValidationReport, display_path

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_one(diagnostic: Diagnostic) -> str:
    properties: list[tuple[str, object]] = []
    span = diagnostic.span
    if span is not None:
        properties += [("file", display_path(span.file)), ("line", span.line), ("col", span.col)]
        properties.append(("endLine", span.end_line))
        if span.end_line == span.line:  # GitHub ignores endColumn across lines
            properties.append(("endColumn", span.end_col))
    title = f"{diagnostic.code} {CODES.get(diagnostic.code, '')}".strip()
    properties.append(("title", title))
    message = diagnostic.message
    if diagnostic.hint:
        message = f"{message}\nhint: {diagnostic.hint}"
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties)
    return f"::{COMMANDS[diagnostic.severity]} {props}::{escape_data(message)}"


def render(report: ValidationReport) -> str:
    return "\n".join(render_one(d) for d in report.diagnostics)
