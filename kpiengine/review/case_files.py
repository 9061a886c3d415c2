"""Test files of ``kpi test`` (SPEC §13.9): read, check against the project, position errors.

A test file is a YAML mapping with a top-level ``test:`` (the project loader skips such
files)::

    test: win_rate_counts_closed_deals_only
    given:                      # rows per source; missing sources are empty tables,
      opportunities:            # missing columns are null, types come from the source
        - {opportunity_id: 1, stage: won, closed_at: 2024-01-10}
    run: {grain: month, from: 2024-01-01, to: 2024-02-01, by: [region], where: "..."}
    expect:                     # {period, <dimensions>, <kpi>: value}
        - {period: 2024-01-01, win_rate: 0.5}

Test files come with the definitions, so they are untrusted the same way (docs/security.md):
they are read only from inside the project folder, regular files only, at most the size
cap of definition files; a test holds at most :data:`MAX_FIXTURE_ROWS` rows. Every
problem is a :class:`~kpiengine.diagnostics.Diagnostic` at its line and column, with the
codes definitions use (KPI104 unknown key, KPI301 unknown column, KPI302 unknown KPI,
KPI305 a value of the wrong type, KPI311 unknown source).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node

from kpiengine.diagnostics import Diagnostic, did_you_mean
from kpiengine.loader.definitions import max_file_bytes
from kpiengine.loader.model import GRAINS, Project, Source
from kpiengine.loader.positioned_yaml import Converter, compose, key_span, locate, node_span
from kpiengine.source import SourceTexts, Span

#: Rows of ``given:`` one test may hold, all sources together: a unit test states a few
#: rows by hand; a file of a million rows is a mistake or an attack on the scratch database.
MAX_FIXTURE_ROWS = 10_000
TOP_KEYS = ("test", "description", "given", "run", "expect")
RUN_KEYS = ("grain", "from", "to", "by", "where")
_TEST_LINE = re.compile(rb"^test\s*:", re.MULTILINE)


@dataclass(frozen=True)
class ExpectRow:
    """One expected row: the period, the dimension values, and KPI → value."""

    period: dt.date | None
    dimensions: tuple[tuple[str, Any], ...]
    values: dict[str, float | None]
    span: Span


@dataclass
class TestCase:
    """A checked test file, ready to run (``diagnostics`` empty) or to report."""

    name: str
    file: str
    span: Span
    description: str | None = None
    given: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    grain: str = "month"
    start: dt.date | None = None
    end: dt.date | None = None
    by: tuple[str, ...] = ()
    where: str | None = None
    expect: list[ExpectRow] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def kpis(self) -> list[str]:
        """The KPIs the expected rows name, in order of first appearance."""
        return list(dict.fromkeys(k for row in self.expect for k in row.values))


def find_test_files(path: Path) -> list[Path]:
    """``path`` itself when a file, else every YAML file below it (hidden ones skipped)
    whose text has a top-level ``test:`` line; links to folders are not followed."""
    if path.is_file():
        return [path]
    found: list[Path] = []
    for folder, subfolders, names in os.walk(path):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.endswith((".yaml", ".yml")):
                continue
            file = Path(folder) / name
            head = _read_capped(file, 1 << 16)
            if head is not None and _TEST_LINE.search(head):
                found.append(file)
    return found


def _read_capped(path: Path, limit: int) -> bytes | None:
    """At most ``limit`` bytes of a regular file, without blocking on a FIFO."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            return handle.read(limit)
    except OSError:
        return None


def read_case(path: Path, root: Path, project: Project, texts: SourceTexts) -> TestCase:
    """The test in ``path``, checked against ``project``; problems in ``diagnostics``."""
    file = str(path)
    case = TestCase(name=path.stem, file=file, span=Span.point(file, 1, 1))
    text = _read_text(path, root, case)
    if text is None:
        return case
    texts.add(file, text)
    node, problems = compose(text, file)
    case.diagnostics.extend(problems)
    if node is None:
        return case
    converter = Converter(file)
    data = converter.convert(node)
    case.diagnostics.extend(converter.diagnostics)
    if not isinstance(data, dict) or not isinstance(node, MappingNode):
        case.diagnostics.append(
            Diagnostic("KPI106", "a test file is a mapping that starts with `test:`", case.span)
        )
        return case
    _Reader(case, data, node, text, project).read()
    return case


def _read_text(path: Path, root: Path, case: TestCase) -> str | None:
    """The file's text, when it is a regular UTF-8 file inside ``root`` within the cap."""
    here = case.span
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        case.diagnostics.append(Diagnostic("KPI100", "cannot read the test file", here))
        return None
    if not real.is_relative_to(root.resolve()):
        case.diagnostics.append(
            Diagnostic(
                "KPI100",
                "the test file is outside the project folder (or a link to outside it); "
                "it was not read",
                here,
                "test files are read only from inside the project folder",
            )
        )
        return None
    cap = max_file_bytes()
    data = _read_capped(real, cap + 1)
    if data is None:
        case.diagnostics.append(
            Diagnostic("KPI100", "the test file is not a regular file; it was not read", here)
        )
        return None
    if len(data) > cap:
        case.diagnostics.append(
            Diagnostic("KPI100", f"the test file is larger than {cap:,} bytes", here)
        )
        return None
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        case.diagnostics.append(Diagnostic("KPI100", "the test file is not valid UTF-8", here))
        return None


class _Reader:
    """Turns the converted mapping of one test file into a :class:`TestCase`."""

    def __init__(
        self, case: TestCase, data: dict[str, Any], node: Node, text: str, project: Project
    ) -> None:
        self.case = case
        self.data = data
        self.root = node
        self.lines = text.splitlines()
        self.project = project
        self.index: dict[int, Any] = {}

    # -- positions

    def span(self, *path: str | int) -> Span:
        return node_span(locate(self.root, path, self.index)[1], self.case.file, self.lines)

    def key(self, *path: str | int) -> Span:
        key, value = locate(self.root, path, self.index)
        return key_span(key if key is not None else value, self.case.file)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.case.diagnostics.append(Diagnostic(code, message, span, hint))

    def unknown_keys(self, mapping: dict[str, Any], allowed: tuple[str, ...], *at: str) -> None:
        for key in mapping:
            if key not in allowed:
                where = f" in `{at[-1]}`" if at else ""
                hint = did_you_mean(key, allowed) or f"the keys are {', '.join(allowed)}"
                self.error("KPI104", f"unknown key `{key}`{where}", self.key(*at, key), hint)

    # -- parts

    def read(self) -> None:
        data, case = self.data, self.case
        self.unknown_keys(data, TOP_KEYS)
        name = data.get("test")
        if not isinstance(name, str) or not name.strip():
            self.error("KPI105", "`test:` names the test (text)", self.span("test"))
        else:
            case.name, case.span = name, self.span("test")
        if isinstance(data.get("description"), str):
            case.description = data["description"]
        self.run(data.get("run", {}))
        self.given(data.get("given", {}))
        self.expect(data.get("expect"))

    def run(self, run: Any) -> None:
        case = self.case
        if not isinstance(run, dict):
            message = "`run:` is a mapping of grain, from, to, by, where"
            self.error("KPI105", message, self.span("run"))
            return
        self.unknown_keys(run, RUN_KEYS, "run")
        grain = run.get("grain", "month")
        if grain not in GRAINS:
            hint = did_you_mean(str(grain), GRAINS) or f"one of {', '.join(GRAINS)}"
            self.error("KPI105", f"unknown grain `{grain}`", self.span("run", "grain"), hint)
        else:
            case.grain = grain
        case.start = self.date(run.get("from"), "run", "from")
        case.end = self.date(run.get("to"), "run", "to")
        by = run.get("by", [])
        by = [by] if isinstance(by, str) else by
        if not isinstance(by, list) or not all(isinstance(d, str) for d in by):
            self.error("KPI105", "`by:` is a list of dimensions", self.span("run", "by"))
        else:
            case.by = tuple(by)
        where = run.get("where")
        if where is not None and not isinstance(where, str):
            self.error("KPI105", "`where:` is a condition (text)", self.span("run", "where"))
        else:
            case.where = where

    def date(self, value: Any, *path: str | int) -> dt.date | None:
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.error("KPI105", f"`{value}` is not a date", self.span(*path), "write YYYY-MM-DD")
            return None

    def given(self, given: Any) -> None:
        if not isinstance(given, dict):
            self.error("KPI105", "`given:` maps source names to lists of rows", self.span("given"))
            return
        sources = self.project.sources
        total = 0
        for name, rows in given.items():
            if name not in sources:
                known = ", ".join(sorted(sources))
                hint = did_you_mean(name, sources) or f"the sources are {known}"
                self.error("KPI311", f"unknown source `{name}`", self.key("given", name), hint)
                continue
            if not isinstance(rows, list):
                self.error("KPI105", f"`{name}:` is a list of rows", self.span("given", name))
                continue
            total += len(rows)
            if total > MAX_FIXTURE_ROWS:
                self.error(
                    "KPI105",
                    f"more than {MAX_FIXTURE_ROWS:,} fixture rows in one test",
                    self.span("given", name),
                    "a unit test states a few rows; test volumes on a real warehouse",
                )
                return
            self.case.given[name] = [
                self.fixture_row(sources[name], row, ("given", name, i))
                for i, row in enumerate(rows)
            ]

    def fixture_row(self, source: Source, row: Any, at: tuple[str | int, ...]) -> dict[str, Any]:
        if not isinstance(row, dict):
            self.error("KPI105", "a row is a mapping of column: value", self.span(*at))
            return {}
        values: dict[str, Any] = {}
        for column, value in row.items():
            declared = source.columns.get(column)
            if declared is None:
                hint = did_you_mean(column, source.columns) or (
                    f"the columns of `{source.name}` are {', '.join(source.columns)}"
                )
                self.error(
                    "KPI301",
                    f"unknown column `{column}` in source `{source.name}`",
                    self.key(*at, column),
                    hint,
                )
                continue
            converted, problem = convert_value(value, declared.type)
            if problem is not None:
                self.error(
                    "KPI305",
                    f"column `{column}` of `{source.name}` is {declared.type}: {problem}",
                    self.span(*at, column),
                    _TYPE_HINTS[declared.type],
                )
                continue
            values[column] = converted
        return values

    def expect(self, expect: Any) -> None:
        if not isinstance(expect, list) or not expect:
            self.error(
                "KPI105",
                "`expect:` is a list of rows {period, <dimensions>, <kpi>: value}",
                self.span("expect") if "expect" in self.data else self.case.span,
            )
            return
        kpis = self.project.kpis
        for index, row in enumerate(expect):
            at: tuple[str | int, ...] = ("expect", index)
            if not isinstance(row, dict):
                self.error("KPI105", "an expected row is a mapping", self.span(*at))
                continue
            period = self.period(row, at)
            dimensions = tuple((d, row.get(d)) for d in self.case.by)
            values: dict[str, float | None] = {}
            reported = len(self.case.diagnostics)
            for key, value in row.items():
                if key == "period" or key in self.case.by:
                    continue
                if key not in kpis:
                    hint = did_you_mean(key, [*kpis, "period", *self.case.by])
                    self.error(
                        "KPI302",
                        f"unknown KPI `{key}` in an expected row",
                        self.key(*at, key),
                        hint
                        or "an expected row holds `period`, the `by:` dimensions and KPI names",
                    )
                    continue
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    self.error(
                        "KPI305",
                        f"the expected value of `{key}` is not a number: `{value}`",
                        self.span(*at, key),
                        "KPI values are numbers, or null",
                    )
                    continue
                values[key] = value
            if not values:
                if len(self.case.diagnostics) == reported:  # else said already
                    self.error("KPI105", "an expected row names no KPI", self.span(*at))
                continue
            self.case.expect.append(ExpectRow(period, dimensions, values, self.span(*at)))

    def period(self, row: dict[str, Any], at: tuple[str | int, ...]) -> dt.date | None:
        if self.case.grain == "all":
            return None
        if "period" not in row:
            self.error(
                "KPI105",
                "an expected row needs `period:` (the first day of the period)",
                self.span(*at),
            )
            return None
        return self.date(row["period"], *at, "period")


_TYPE_HINTS = {
    "string": "write text",
    "integer": "write a whole number",
    "number": "write a number (without quotes)",
    "boolean": "write true or false",
    "date": "write YYYY-MM-DD",
    "timestamp": "write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS",
}


def convert_value(value: Any, kind: str) -> tuple[Any, str | None]:
    """``value`` as the Python value of a column of type ``kind``, or why it is not one.
    Nulls are fine everywhere; numbers are fine as text (an id written `1`)."""
    if value is None:
        return None, None
    if isinstance(value, dict | list):
        return None, "a list or a mapping is not a value"
    if kind == "string":
        if isinstance(value, bool):
            return None, f"`{value}` is a boolean; quote it"
        return (value if isinstance(value, str) else str(value)), None
    if kind == "boolean":
        return (value, None) if isinstance(value, bool) else (None, f"`{value}` is not a boolean")
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"`{value}` is not a number"
        if not math.isfinite(value) or abs(value) >= 2**63:
            return None, f"`{value}` is not a finite number an engine holds"
        if kind == "integer" and value != int(value):
            return None, f"`{value}` is not a whole number"
        return (int(value) if kind == "integer" else value), None
    text = str(value)
    try:
        if kind == "date":
            return dt.date.fromisoformat(text), None
        return dt.datetime.fromisoformat(text), None
    except ValueError:
        return None, f"`{value}` is not a {kind}"
