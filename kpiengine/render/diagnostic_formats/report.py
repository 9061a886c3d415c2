"""The outcome of one validation as every formatter sees it, and helpers they share."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kpiengine.diagnostics import Diagnostic, Severity
from kpiengine.source import SourceTexts

if TYPE_CHECKING:
    from kpiengine.loader.model import Project


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one validation, as every formatter sees it (``kpi validate``; the
    data of ``kpi report`` is :class:`~kpiengine.render.report_data.ReportData`)."""

    diagnostics: Sequence[Diagnostic]
    texts: SourceTexts = field(default_factory=SourceTexts)
    files: Sequence[str] = ()  # every file validated, in a stable order
    fail_on: Severity = Severity.ERROR
    colour: bool = False
    kpis: int = 0
    sources: int = 0

    @classmethod
    def of(
        cls,
        project: Project,
        diagnostics: Sequence[Diagnostic],
        fail_on: Severity = Severity.ERROR,
        colour: bool = False,
    ) -> ValidationReport:
        return cls(
            diagnostics,
            project.texts,
            validated_files(project, diagnostics),
            fail_on,
            colour,
            len(project.kpis),
            len(project.sources),
        )

    @property
    def failures(self) -> list[Diagnostic]:
        """The diagnostics at or above ``fail_on``: the ones that make the exit code 1."""
        return [d for d in self.diagnostics if d.severity >= self.fail_on]

    @property
    def failed(self) -> bool:
        return any(d.severity >= self.fail_on for d in self.diagnostics)

    def count(self, severity: Severity) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)


def validated_files(project: Project, diagnostics: Iterable[Diagnostic] = ()) -> list[str]:
    """Every definition file of the project: each one defines something (a source, a KPI,
    a rule), is the project file, or has a diagnostic (an empty, unreadable or unknown
    file), so together these name every file the loader read."""
    from kpiengine.loader.definitions import PROJECT_FILES

    files = {d.span.file for d in diagnostics if d.span is not None}
    files.update(s.span.file for s in project.sources.values())
    files.update(k.span.file for k in project.kpis.values())
    files.update(r.span.file for r in project.rules)
    files.update(str(project.root / n) for n in PROJECT_FILES if (project.root / n).is_file())
    return sorted(files)


def display_path(file: str) -> str:
    """A path as CI tools want it: relative to the working directory (the repository
    root in CI) when it lies below it, with forward slashes."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_posix()
    return Path(os.path.normpath(path)).as_posix()


def severity_counts(report: ValidationReport) -> str:
    """``2 errors, 1 warning``: the non-zero counts, most severe first."""
    parts = []
    for severity in sorted(Severity, reverse=True):
        count = report.count(severity)
        if count:
            word = {"error": "error", "warning": "warning", "info": "note"}[str(severity)]
            parts.append(f"{count} {word}{'s' * (count != 1)}")
    return ", ".join(parts)
