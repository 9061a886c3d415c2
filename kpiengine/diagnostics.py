"""Diagnostics: one record for every problem any stage finds, with a stable code.

Stages *return* diagnostics instead of raising on the first problem, so one run of
``kpi validate`` lists every problem in every file. Codes are grouped by stage:
``KPI1xx`` load, ``KPI2xx`` parse, ``KPI3xx`` check, ``KPI4xx`` plan/compile,
``KPI5xx`` engine, ``KPI6xx`` lint warnings. Every code is documented in ``docs/diagnostics.md``.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from kpiengine.source import Span


class Severity(enum.IntEnum):
    """Ordered so that ``severity >= Severity.ERROR`` reads naturally."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


#: Every diagnostic code the code base can raise, with a one-line title.
CODES: dict[str, str] = {
    "KPI100": "file cannot be read",
    "KPI101": "invalid YAML",
    "KPI102": "empty definition file",
    "KPI103": "duplicate key",
    "KPI104": "unknown key",
    "KPI105": "invalid value",
    "KPI106": "unknown file kind",
    "KPI107": "duplicate name",
    "KPI108": "project not found",
    "KPI201": "syntax error",
    "KPI202": "expression nested too deeply",
    "KPI301": "unknown column",
    "KPI302": "unknown KPI",
    "KPI303": "unknown function",
    "KPI304": "wrong number of arguments",
    "KPI305": "type mismatch",
    "KPI306": "column outside an aggregate",
    "KPI307": "aggregate not allowed here",
    "KPI308": "`where` outside an aggregate",
    "KPI309": "dependency cycle",
    "KPI310": "dimension not available",
    "KPI311": "unknown source",
    "KPI312": "time function not allowed here",
    "KPI313": "invalid join",
    "KPI314": "not supported yet",
    "KPI315": "invalid time column",
    "KPI316": "invalid argument",
    "KPI319": "invalid message template",
    "KPI320": "unknown name in a message template",
    "KPI321": "window not possible",
    "KPI322": "unknown snapshot entity",
    "KPI323": "pace of a KPI that is not additive",
    "KPI401": "invalid run request",
    "KPI402": "time offset over the period limit",
    "KPI404": "not available on this dialect",
    "KPI405": "dialect cannot express this",
    "KPI501": "engine error",
    "KPI502": "table missing in the warehouse",
    "KPI503": "column missing in the warehouse",
    "KPI504": "column type mismatch with the warehouse",
    "KPI505": "warehouse type not known",
    # KPI6xx: warnings from `kpi validate` (kpiengine.language.lint); never errors.
    "KPI601": "unused source",
    "KPI602": "KPI without description",
    "KPI603": "KPI without owner",
    "KPI604": "KPI without unit",
    "KPI605": "target without a rule",
    "KPI606": "percent KPI that is not a ratio",
    "KPI607": "dimension missing from an input's source",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.col, self.code)

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        text = f"{where}{self.code} {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint naming the closest candidate, or None when nothing is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity >= Severity.ERROR for d in diagnostics)
