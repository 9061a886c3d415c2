"""Diagnostic output formats: one module per format behind one function signature.

A formatter takes the diagnostics, the project's file texts (for quoting lines) and
whether colour is wanted, and returns the text to print.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kpiengine.diagnostics import Diagnostic
from kpiengine.source import SourceTexts

Formatter = Callable[[Sequence[Diagnostic], SourceTexts, bool], str]


def formatter(name: str) -> Formatter:
    from kpiengine.formats import json_format, text

    formats: dict[str, Formatter] = {"text": text.render, "json": json_format.render}
    return formats[name]


FORMATS = ("text", "json")
