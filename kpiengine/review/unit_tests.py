"""``kpi test``: run each test file's KPIs over its fixture rows and compare (SPEC §13.9).

Each test gets its own scratch database (:mod:`kpiengine.review.scratch`) holding its
``given:`` rows, runs its KPIs there with the ordinary planner and compiler (one
statement, as ``kpi run`` does), and compares the rows it lists under ``expect:``. Only
the listed rows are compared: a month grid has many rows a test need not spell out. A
value matches within 1e-9 relative error (the cross-engine promise of SPEC §5).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpiengine.diagnostics import Diagnostic
from kpiengine.errors import DefinitionError, EngineError, UsageError
from kpiengine.review.case_files import ExpectRow, TestCase, find_test_files, read_case
from kpiengine.source import SourceTexts

TOLERANCE = 1e-9


@dataclass(frozen=True)
class Mismatch:
    """One expected value that the run did not give."""

    row: ExpectRow
    kpi: str
    expected: float | None
    actual: float | None
    missing: bool = False  # no such row (period × dimensions) in the output

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": str(self.row.span),
            "period": self.row.period.isoformat() if self.row.period else None,
            **{d: v for d, v in self.row.dimensions},
            "kpi": self.kpi,
            "expected": self.expected,
            "actual": self.actual,
            "missing_row": self.missing,
        }


@dataclass
class Outcome:
    """What became of one test: passed, failed (mismatches) or error (diagnostics)."""

    case: TestCase
    mismatches: list[Mismatch] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.diagnostics or self.error:
            return "error"
        return "failed" if self.mismatches else "passed"


@dataclass
class Session:
    """Every outcome of one ``kpi test``, and the texts diagnostics quote."""

    outcomes: list[Outcome]
    texts: SourceTexts
    engine: str

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return all(o.status == "passed" for o in self.outcomes)


def run_tests(project: Any, path: Path | None, url: str | None) -> Session:
    """Run the tests found at ``path`` (default: the project folder) on ``project`` (a
    loaded :class:`~kpiengine.api.KpiProject`)."""
    import time

    from kpiengine.review.scratch import engine_of

    engine = engine_of(url)
    root = project.model.root
    files = find_test_files(path if path is not None else root)
    if not files:
        raise UsageError(
            f"no test files in `{path if path is not None else root}`: a test file is YAML "
            "with a top-level `test:` (see docs/testing-kpis.md)"
        )
    texts = SourceTexts()
    outcomes: list[Outcome] = []
    for file in files:
        case = read_case(file, root, project.model, texts)
        problems = sorted(case.diagnostics, key=Diagnostic.sort_key)
        outcome = Outcome(case, diagnostics=problems)
        if not outcome.diagnostics:
            started = time.perf_counter()
            _run_case(project, case, url, outcome)
            outcome.seconds = time.perf_counter() - started
        outcomes.append(outcome)
    return Session(outcomes, texts, engine)


def _run_case(project: Any, case: TestCase, url: str | None, outcome: Outcome) -> None:
    from kpiengine.review.scratch import scratch_database

    options = {
        "grain": case.grain,
        "start": case.start,
        "end": case.end,
        "by": case.by,
        "where": case.where,
    }
    # A scratch database that cannot be made (no server, no right to create a schema)
    # stops the whole session (exit 3); a statement that fails fails this test only.
    with scratch_database(project.model, case.given, url) as connection:
        try:
            result = project.run(case.kpis, connection, **options)
        except DefinitionError as error:  # e.g. a `by:` dimension a KPI cannot use
            outcome.diagnostics.extend(_at_test(d, case) for d in error.diagnostics)
            return
        except EngineError as error:
            outcome.error = str(error)
            return
    outcome.mismatches = compare(case.expect, result.rows)


def _at_test(diagnostic: Diagnostic, case: TestCase) -> Diagnostic:
    """A run-request problem has no position in a definition file: point at the test."""
    if diagnostic.span is not None:
        return diagnostic
    import dataclasses

    return dataclasses.replace(diagnostic, span=case.span)


def _key(value: Any) -> Any:
    """Dimension values as comparable keys: engines give 1 or 1.0, true or 1."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def compare(expect: Iterable[ExpectRow], rows: Iterable[Any]) -> list[Mismatch]:
    """Every expected value the rows do not hold (within :data:`TOLERANCE`)."""
    actual: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        dims = tuple((name, _key(value)) for name, value in row.dimensions)
        actual[(row.period, tuple(sorted(dims)), row.kpi)] = row.value
    found: list[Mismatch] = []
    for wanted in expect:
        dims = tuple(sorted((name, _key(value)) for name, value in wanted.dimensions))
        for kpi, expected in wanted.values.items():
            key = (wanted.period, dims, kpi)
            if key not in actual:
                found.append(Mismatch(wanted, kpi, expected, None, missing=True))
            elif not same(expected, actual[key]):
                found.append(Mismatch(wanted, kpi, expected, actual[key]))
    return found


def same(expected: float | None, actual: Any) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    return abs(float(actual) - expected) <= TOLERANCE * max(1.0, abs(expected))
