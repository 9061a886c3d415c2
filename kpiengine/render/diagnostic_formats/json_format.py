"""Diagnostics as one JSON document, for tools and scripts.

``{"diagnostics": [{code, title, severity, message, hint, file, line, column, end_line,
end_column}], "summary": {errors, warnings, infos, total, failed, fail_on}}``; positions
are 1-based, ends exclusive, ``null`` for a problem that has no place in a file.
"""

from __future__ import annotations

import json

from kpiengine.diagnostics import CODES, Diagnostic, Severity
from kpiengine.render.diagnostic_formats.report import ValidationReport


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


def render(report: ValidationReport) -> str:
    return json.dumps(
        {
            "diagnostics": [as_dict(d) for d in report.diagnostics],
            "summary": {
                "errors": report.count(Severity.ERROR),
                "warnings": report.count(Severity.WARNING),
                "infos": report.count(Severity.INFO),
                "total": len(report.diagnostics),
                "files": len(report.files),
                "fail_on": str(report.fail_on),
                "failed": report.failed,
            },
        },
        indent=2,
        ensure_ascii=False,
    )
