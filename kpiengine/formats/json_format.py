"""Diagnostics as a JSON document, for tools."""

from __future__ import annotations

import json
from collections.abc import Sequence

from kpiengine.diagnostics import CODES, Diagnostic
from kpiengine.source import SourceTexts


def as_dict(diagnostic: Diagnostic) -> dict[str, object]:
    span = diagnostic.span
    return {
        "code": diagnostic.code,
        "title": CODES.get(diagnostic.code, ""),
        "severity": str(diagnostic.severity),
        "message": diagnostic.message,
        "hint": diagnostic.hint,
        "file": span.file if span else None,
        "line": span.line if span else None,
        "column": span.col if span else None,
        "end_line": span.end_line if span else None,
        "end_column": span.end_col if span else None,
    }


def render(diagnostics: Sequence[Diagnostic], texts: SourceTexts, colour: bool = False) -> str:
    errors = sum(1 for d in diagnostics if str(d.severity) == "error")
    return json.dumps(
        {
            "diagnostics": [as_dict(d) for d in diagnostics],
            "summary": {"errors": errors, "total": len(diagnostics)},
        },
        indent=2,
    )
