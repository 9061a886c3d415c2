"""One exception hierarchy; the CLI maps each class to an exit code and never shows a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kpiengine.diagnostics import Diagnostic

if TYPE_CHECKING:
    from kpiengine.source import SourceTexts


class KpiError(Exception):
    """Base of every error kpiengine raises on purpose."""

    exit_code = 1


class DefinitionError(KpiError):
    """The definitions (or an expression given on the command line) are wrong."""

    exit_code = 1

    def __init__(self, diagnostics: Sequence[Diagnostic], texts: SourceTexts | None = None) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.texts = texts  # the files' text, so the CLI can quote the offending line
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class UsageError(KpiError):
    """A command-line or API argument is wrong (exit 2)."""

    exit_code = 2


class EngineError(KpiError):
    """The engine or the connection failed (exit 3)."""

    exit_code = 3
