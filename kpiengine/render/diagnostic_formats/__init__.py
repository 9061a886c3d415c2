"""Diagnostic output formats: one module per format behind one interface.

Every format module has ``render(report: ValidationReport) -> str``, where
:class:`~kpiengine.render.diagnostic_formats.report.ValidationReport` holds the diagnostics of one
``kpi validate`` run and what some formats need besides them: the file texts (to quote
lines), every file that was validated (JUnit has a test case per file, clean or not), the
``--fail-on`` level (what counts as a failure) and whether colour is wanted. Adding a
format is adding a module and a line in :data:`_MODULES`; the CLI never chooses between
formats itself.

This module stays import-light: the CLI reads :data:`FORMATS` at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kpiengine.render.diagnostic_formats.report import ValidationReport

Formatter = Callable[["ValidationReport"], str]

#: Format name → module holding its ``render``; imported only when chosen.
_MODULES = {
    "text": "kpiengine.render.diagnostic_formats.text",
    "json": "kpiengine.render.diagnostic_formats.json_format",
    "github": "kpiengine.render.diagnostic_formats.github",
    "sarif": "kpiengine.render.diagnostic_formats.sarif",
    "junit": "kpiengine.render.diagnostic_formats.junit",
}
FORMATS = tuple(_MODULES)


def formatter(name: str) -> Formatter:
    """The ``render`` function of the format called ``name`` (one of :data:`FORMATS`)."""
    if name not in _MODULES:
        raise ValueError(f"unknown format `{name}`; the formats are {', '.join(FORMATS)}")
    render: Formatter = importlib.import_module(_MODULES[name]).render
    return render
