"""``kpi test`` output: a text summary with a table of mismatches, JSON, or JUnit XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from kpiengine.review.unit_tests import Mismatch, Outcome, Session

FORMATS = ("text", "json", "junit")
# XML 1.0 cannot hold most control characters, even escaped; a test file may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render(session: Session, fmt: str) -> str:
    return {"text": render_text, "json": render_json, "junit": render_junit}[fmt](session)


def number_text(value: Any) -> str:
    """A value as the review outputs print it: ``null``, floats to 10 significant digits."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def mismatch_table(mismatches: list[Mismatch]) -> list[str]:
    """Expected vs actual per row, aligned, dimensions as columns."""
    dims = list(dict.fromkeys(d for m in mismatches for d, _ in m.row.dimensions))
    header = ["at", "period", *dims, "kpi", "expected", "actual"]
    body = []
    for m in mismatches:
        values = dict(m.row.dimensions)
        body.append(
            [
                f"line {m.row.span.line}",
                m.row.period.isoformat() if m.row.period else "",
                *(number_text(values.get(d)) for d in dims),
                m.kpi,
                number_text(m.expected),
                "(no such row)" if m.missing else number_text(m.actual),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]


def _error_lines(outcome: Outcome, session: Session) -> list[str]:
    from kpiengine.render.diagnostic_formats.text import render_one

    lines = [render_one(d, session.texts) for d in outcome.diagnostics]
    if outcome.error:
        lines.append(f"kpi: engine error: {outcome.error}")
    return lines


def render_text(session: Session) -> str:
    lines: list[str] = []
    for outcome in session.outcomes:
        case = outcome.case
        word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[outcome.status]
        lines.append(f"{word}  {case.name}  ({case.span})")
        if outcome.status == "failed":
            lines.extend(f"      {line}" for line in mismatch_table(outcome.mismatches))
        elif outcome.status == "error":
            lines.extend(_error_lines(outcome, session))
    counts = ", ".join(
        f"{session.count(s)} {s}" for s in ("passed", "failed", "error") if session.count(s)
    )
    lines.append(f"{len(session.outcomes)} tests on {session.engine}: {counts}")
    return "\n".join(lines)


def render_json(session: Session) -> str:
    tests = []
    for outcome in session.outcomes:
        case = outcome.case
        tests.append(
            {
                "name": case.name,
                "file": case.file,
                "line": case.span.line,
                "status": outcome.status,
                "kpis": case.kpis,
                "mismatches": [m.to_dict() for m in outcome.mismatches],
                "diagnostics": [str(d) for d in outcome.diagnostics],
                "error": outcome.error,
            }
        )
    document = {
        "engine": session.engine,
        "passed": session.count("passed"),
        "failed": session.count("failed"),
        "errors": session.count("error"),
        "tests": tests,
    }
    return json.dumps(document, indent=2)


def render_junit(session: Session) -> str:
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="kpi test",
        tests=str(len(session.outcomes)),
        failures=str(session.count("failed")),
        errors=str(session.count("error")),
    )
    for outcome in session.outcomes:
        case = outcome.case
        element = ET.SubElement(
            suite,
            "testcase",
            name=_xml(case.name),
            classname=_xml(case.file),
            file=_xml(case.file),
            line=str(case.span.line),
            time=f"{outcome.seconds:.3f}",
        )
        if outcome.status == "failed":
            failure = ET.SubElement(
                element, "failure", message=f"{len(outcome.mismatches)} values differ"
            )
            failure.text = _xml("\n".join(mismatch_table(outcome.mismatches)))
        elif outcome.status == "error":
            error = ET.SubElement(element, "error", message="the test could not run")
            error.text = _xml("\n".join(_error_lines(outcome, session)))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")
