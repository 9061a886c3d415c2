"""SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

One run of the tool ``kpiengine``; its rules are the codes that occur, each with its
title; one result per diagnostic, located by a URI relative to the repository root (the
working directory in CI) and a region with 1-based lines and columns counted in Unicode
code points (``columnKind``). Validated against the official SARIF schema in the tests.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from kpiengine.diagnostics import CODES, Diagnostic, Severity
from kpiengine.render.diagnostic_formats.report import ValidationReport, display_path

SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kpiengine")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def _rule(code: str) -> dict[str, object]:
    title = CODES.get(code, code)
    return {
        "id": code,
        "name": "".join(word.capitalize() for word in title.replace("`", "").split()),
        "shortDescription": {"text": title},
        "help": {"text": f"docs/diagnostics.md#{code.lower()}-{_anchor(title)}"},
        "defaultConfiguration": {"level": "warning" if code.startswith("KPI6") else "error"},
    }


def _anchor(title: str) -> str:
    """The anchor GitHub gives the heading ``## CODE title`` in docs/diagnostics.md."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def _result(diagnostic: Diagnostic, rule_index: int) -> dict[str, object]:
    text = diagnostic.message
    if diagnostic.hint:
        text = f"{text}\nhint: {diagnostic.hint}"
    result: dict[str, object] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": LEVELS[diagnostic.severity],
        "message": {"text": text},
    }
    span = diagnostic.span
    if span is not None:
        result["locations"] = [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": quote(display_path(span.file)),
                        "uriBaseId": "%SRCROOT%",
                    },
                    "region": {
                        "startLine": span.line,
                        "startColumn": span.col,
                        "endLine": max(span.end_line, span.line),
                        "endColumn": max(span.end_col, 1),
                    },
                }
            }
        ]
    return result


def render(report: ValidationReport) -> str:
    codes = sorted({d.code for d in report.diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    run = {
        "tool": {
            "driver": {
                "name": "kpiengine",
                "semanticVersion": _version(),
                "rules": [_rule(code) for code in codes],
            }
        },
        "columnKind": "unicodeCodePoints",
        "artifacts": [
            {"location": {"uri": quote(display_path(f)), "uriBaseId": "%SRCROOT%"}}
            for f in report.files
        ],
        "results": [_result(d, index[d.code]) for d in report.diagnostics],
    }
    return json.dumps(
        {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False
    )
