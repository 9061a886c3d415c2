"""Human-readable diagnostics: ``file:line:col: CODE message``, the line, a caret, a hint,
then a one-line summary. Colour only when the CLI says the output is a terminal."""

from __future__ import annotations

from kpiengine.diagnostics import Diagnostic, Severity
from kpiengine.render.diagnostic_formats.report import ValidationReport, severity_counts
from kpiengine.source import SourceTexts, caret_excerpt

_COLOURS = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_RESET, _BOLD = "\033[0m", "\033[1m"


def render_one(diagnostic: Diagnostic, texts: SourceTexts, colour: bool = False) -> str:
    where = f"{diagnostic.span}: " if diagnostic.span else ""
    label = diagnostic.code
    if diagnostic.severity != Severity.ERROR:
        label = f"{diagnostic.code} {diagnostic.severity}:"
    if colour:
        label = f"{_BOLD}{_COLOURS[diagnostic.severity]}{label}{_RESET}"
    lines = [f"{where}{label} {diagnostic.message}"]
    span = diagnostic.span
    if span is not None:
        line_text = texts.line(span.file, span.line)
        if line_text is not None:
            lines.extend(caret_excerpt(line_text, span))
    if diagnostic.hint:
        hint = diagnostic.hint.replace("\n", "\n        ")  # under the first line's text
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)


def summary(report: ValidationReport) -> str:
    counts = severity_counts(report)
    if report.failed:
        files = len({d.span.file for d in report.diagnostics if d.span})
        return f"{counts} in {files} file{'s' * (files != 1)}"
    ok = f"ok: {report.kpis} KPIs, {report.sources} sources, no errors"
    return f"{ok} ({counts})" if counts else ok


def render(report: ValidationReport) -> str:
    parts = [render_one(d, report.texts, report.colour) for d in report.diagnostics]
    parts.append(summary(report))
    return "\n".join(parts)
