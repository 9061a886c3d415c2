"""Human-readable diagnostics: ``file:line:col: CODE message``, the line, a caret, a hint."""

from __future__ import annotations

from collections.abc import Sequence

from kpiengine.diagnostics import Diagnostic, Severity
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
        lines.append(f"  hint: {diagnostic.hint}")
    return "\n".join(lines)


def render(diagnostics: Sequence[Diagnostic], texts: SourceTexts, colour: bool = False) -> str:
    return "\n".join(render_one(d, texts, colour) for d in diagnostics)
