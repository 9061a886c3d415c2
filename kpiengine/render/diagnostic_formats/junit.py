"""JUnit XML: one test case per definition file, so CI test reports list every file.

A file with diagnostics at or above ``--fail-on`` is a failed test case whose
``<failure>`` lists them (as the text format shows them: line, caret, hint); diagnostics
below that level go to the test case's ``<system-out>``. Problems that have no file (none
today) form one more test case named ``(project)``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from kpiengine.diagnostics import Diagnostic
from kpiengine.render.diagnostic_formats.report import ValidationReport, display_path
from kpiengine.render.diagnostic_formats.text import render_one

SUITE = "kpi validate"
NO_FILE = "(project)"
# XML 1.0 cannot hold most control characters, even escaped; a bad file may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _case(suite: ET.Element, name: str, found: list[Diagnostic], report: ValidationReport) -> bool:
    case = ET.SubElement(suite, "testcase", classname=SUITE, name=name)
    if name != NO_FILE:
        case.set("file", name)
    failing = [d for d in found if d.severity >= report.fail_on]
    other = [d for d in found if d.severity < report.fail_on]
    if failing:
        first = failing[0]
        where = f"{first.span.line}:{first.span.col}: " if first.span else ""
        more = f" (and {len(failing) - 1} more)" if len(failing) > 1 else ""
        failure = ET.SubElement(
            case,
            "failure",
            message=_clean(f"{where}{first.code} {first.message}{more}"),
            type=first.code,
        )
        failure.text = _clean("\n\n".join(render_one(d, report.texts) for d in failing))
    if other:
        out = ET.SubElement(case, "system-out")
        out.text = _clean("\n\n".join(render_one(d, report.texts) for d in other))
    return bool(failing)


def render(report: ValidationReport) -> str:
    by_file: dict[str, list[Diagnostic]] = {display_path(f): [] for f in report.files}
    for diagnostic in report.diagnostics:
        name = display_path(diagnostic.span.file) if diagnostic.span else NO_FILE
        by_file.setdefault(name, []).append(diagnostic)
    root = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(root, "testsuite", name=SUITE)
    failures = sum(_case(suite, name, by_file[name], report) for name in sorted(by_file))
    for element in (root, suite):
        element.set("tests", str(len(by_file)))
        element.set("failures", str(failures))
        element.set("errors", "0")
    suite.set("skipped", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
