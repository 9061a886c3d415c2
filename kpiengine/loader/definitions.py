"""Load stage: a definitions folder → :class:`~kpiengine.loader.model.Project` (SPEC §3).

Every ``*.yaml`` / ``*.yml`` below the folder is read, composed with positions
(:mod:`kpiengine.loader.positioned_yaml`), validated against the JSON Schema of its kind, and turned
into model objects; expressions go through the parse stage with a
:class:`~kpiengine.source.TextOrigin` so their positions point into the YAML file.

Nothing here raises on bad definitions: every problem in every file becomes a
:class:`~kpiengine.diagnostics.Diagnostic`, and what is valid is still built, so one run
reports everything. A definition whose name (or a KPI whose expression) is invalid is
left out; an invalid optional field is left at its default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import CODES, Diagnostic, did_you_mean
from kpiengine.errors import UsageError
from kpiengine.loader.conversion import conversion_kpi, has_formula, no_expression
from kpiengine.loader.files import PROJECT_FILES, definition_files
from kpiengine.loader.model import (
    Column,
    ConformedDimension,
    DimensionMapping,
    Expression,
    Join,
    Kpi,
    Project,
    Rule,
    Source,
    Target,
    Window,
)
from kpiengine.loader.positioned_yaml import (
    Converter,
    compose,
    key_span,
    locate,
    node_span,
    scalar_origin,
    text_span,
)
from kpiengine.loader.retail_config import read_calendar
from kpiengine.loader.schema import is_valid, schema_for, validator
from kpiengine.loader.schema_messages import first_line, schema_diagnostics
from kpiengine.source import SourceTexts, Span

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "KINDS",
    "MAX_FILE_BYTES_ENV",
    "PROJECT_FILES",
    "find_project_root",
    "load_project",
    "max_file_bytes",
    "schema_for",
]

#: The top-level keys that say what a file defines.
KINDS = ("project", "source", "kpi", "kpis", "rule")
#: Names of the project file; the first one is what SPEC §6 looks for.
# Which kind wins when a file has several kind keys: a KPI file also has `source:`.
_KIND_ORDER = ("kpi", "kpis", "rule", "source", "project")

#: Largest definition file read, in bytes (10 MiB); the environment variable below
#: changes it. Not a project setting: the definitions are untrusted input, and the cap is
#: there to protect the machine from them.
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILE_BYTES_ENV = "KPI_MAX_FILE_BYTES"
#: Last parts of a `table:` that DuckDB's replacement scans take for a file to read (in
#: the working directory): `table: secrets.csv` reads ./secrets.csv. The schema only
#: checks the shape of an identifier, so these are refused here, whatever their case.
FILE_SUFFIXES = frozenset(
    {
        "csv", "tsv", "txt", "tbl", "dat", "psv",
        "json", "jsonl", "ndjson", "geojson",
        "parquet", "arrow", "ipc", "feather", "avro", "orc",
        "xlsx", "xls", "gz", "gzip", "zst", "zstd", "bz2", "xz", "lz4", "snappy", "zip",
        "db", "sqlite", "sqlite3", "duckdb", "ddb", "delta", "iceberg",
    }
)  # fmt: skip
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_KINDS_OF_FILE = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def max_file_bytes() -> int:
    """The size cap on one definition file: ``KPI_MAX_FILE_BYTES``, else 10 MiB."""
    text = os.environ.get(MAX_FILE_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_FILE_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(
            f"{MAX_FILE_BYTES_ENV}={text[:40]!r} is not a whole number of bytes of at least 1"
        )
    return value


# -- finding files ------------------------------------------------------------------------------


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder from ``start`` (default: the working directory) upward that holds
    ``kpiengine.yaml``; else ``start/definitions``. Relative to the working directory when
    ``start`` is not given, so diagnostics show short paths."""
    here = Path.cwd() if start is None else Path(start)
    absolute = here.resolve()
    for depth, folder in enumerate((absolute, *absolute.parents)):
        if any((folder / name).is_file() for name in PROJECT_FILES):
            if start is not None:
                return here if depth == 0 else folder
            try:
                return Path(os.path.relpath(folder))
            except ValueError:  # another drive on Windows
                return folder
    return Path("definitions") if start is None else here / "definitions"


def _display_name(path: Path) -> str:
    """The path as text that is safe to print: bytes that are not UTF-8 (which the OS
    gives back as lone surrogates) show as U+FFFD, and control characters (a newline
    would start a new line of `--format github` output, an escape sequence would drive
    the terminal) as ``\\xNN`` escapes."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", "replace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# -- loading ------------------------------------------------------------------------------------


def load_project(path: str | Path) -> tuple[Project, list[Diagnostic]]:
    """Load every definition file below ``path``; the project and every problem found.

    Raises :class:`UsageError` when ``path`` is not a folder.
    """
    root = Path(path)
    if not root.exists():
        raise UsageError(
            f"project folder `{root}` does not exist; pass the folder that holds the "
            "definition files (or run from inside it)"
        )
    if not root.is_dir():
        raise UsageError(f"`{root}` is not a folder; pass the folder that holds it")
    loader = _Loader(root)
    for file in definition_files(root):
        loader.load_file(file)
    return loader.project(), sorted(loader.diagnostics, key=Diagnostic.sort_key)


class _Document:
    """One file being built: its nodes and text, and which paths failed the schema."""

    def __init__(self, file: str, text: str, root: Node, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.root = root
        self.diagnostics = diagnostics
        self.bad: set[tuple[str | int, ...]] = set()
        self._index: dict[int, Any] = {}

    def fine(self, *path: str | int) -> bool:
        """No schema error at ``path``, inside it, or on a mapping that holds it."""
        return not any(bad == path[: len(bad)] or path == bad[: len(path)] for bad in self.bad)

    def intact(self, *path: str | int) -> bool:
        """No schema error at ``path`` or on a mapping that holds it (inside is not looked at)."""
        return not any(bad == path[: len(bad)] for bad in self.bad)

    def get(self, data: dict[str, Any], *path: str | int) -> Any:
        """``data[path[-1]]`` when present and valid, else None."""
        key = path[-1]
        return data[key] if key in data and self.fine(*path) else None

    def items(self, data: dict[str, Any], *path: str | int) -> list[Any]:
        """The list ``data[path[-1]]`` when present and not refused by the schema, else
        empty. Its items may still be bad: check each with :meth:`fine` before reading it.
        Never iterate a raw value: `rules: true` is refused by the schema, not removed."""
        value = data.get(path[-1]) if self.intact(*path) else None
        return value if isinstance(value, list) else []

    def node(self, *path: str | int) -> Node:
        return locate(self.root, path, self._index)[1]

    def span(self, *path: str | int) -> Span:
        return node_span(self.node(*path), self.file, self.lines)

    def key_span(self, *path: str | int) -> Span:
        key, value = locate(self.root, path, self._index)
        return key_span(key if key is not None else value, self.file)

    def expression(self, *path: str | int) -> Expression:
        """Parse the expression scalar at ``path``; its problems go to the diagnostics."""
        from kpiengine.language.parse import parse_expression

        node = self.node(*path)
        text, origin = scalar_origin(node, self.file, self.lines)  # type: ignore[arg-type]
        tree, problems = parse_expression(text, origin)
        self.diagnostics.extend(problems)
        return Expression(text, tree, text_span(text, origin))


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.max_bytes = max_file_bytes()
        self.texts = SourceTexts()
        self.diagnostics: list[Diagnostic] = []
        self.settings: dict[str, Any] = {}
        self.project_span: Span | None = None
        self.sources: dict[str, Source] = {}
        self.kpis: dict[str, Kpi] = {}
        self.rules: dict[str, Rule] = {}

    def project(self) -> Project:
        return Project(
            root=self.root,
            sources=self.sources,
            kpis=self.kpis,
            rules=tuple(self.rules.values()),
            texts=self.texts,
            **self.settings,
        )

    # -- one file

    def load_file(self, path: Path) -> None:
        file = _display_name(path)
        text = self._read(path, file)
        if text is None:
            return
        self.texts.add(file, text)
        node, problems = compose(text, file)
        self.diagnostics.extend(problems)
        if node is None:
            return
        from yaml.nodes import MappingNode

        if not isinstance(node, MappingNode):
            self.diagnostics.append(
                Diagnostic(
                    "KPI106",
                    "a definition file is a mapping that starts with `kpi:`, `kpis:`, "
                    "`source:`, `rule:` or `project:`",
                    first_line(node_span(node, file)),
                    hint="see the examples in the documentation of definition files",
                )
            )
            return
        converter = Converter(file)
        data = converter.convert(node)
        self.diagnostics.extend(converter.diagnostics)
        if not isinstance(data, dict) or any(d.code == "KPI105" for d in converter.diagnostics):
            return  # alias loops, runaway aliases, keys that are not text: no schema noise
        kind = self._kind(data, node, path, file)
        if kind is None:
            return
        document = _Document(file, text, node, self.diagnostics)
        if not is_valid(kind)(data):
            for error in validator(kind).iter_errors(data):
                self.diagnostics.extend(schema_diagnostics(error, kind, document))
        self._numbers(data, document, ())
        if kind == "project":
            self._project(data, document)
        elif kind == "source":
            self._source(data, document)
        elif kind == "rule":
            self._rule_file(data, document)
        elif "kpis" in data:
            for index, item in enumerate(document.items(data, "kpis")):
                self._kpi(item, document, ("kpis", index))
        else:
            self._kpi(data, document, ())

    def _numbers(self, value: Any, doc: _Document, path: tuple[str | int, ...]) -> None:
        """Refuse (KPI105, at the value) every number an engine cannot hold: YAML's
        ``.nan``, ``.inf`` and ``-.inf``, and integers beyond the range of a double
        (about ±1.8e308). The schema's ``type: number`` takes them all, and they would
        reach SQL as a column named ``nan`` or a literal no engine converts."""
        if isinstance(value, dict):
            for key, item in value.items():
                self._numbers(item, doc, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._numbers(item, doc, (*path, index))
        elif isinstance(value, float | int) and not isinstance(value, bool):
            if abs(value) <= sys.float_info.max:  # exact for ints; false for nan
                return
            if not doc.intact(*path):  # the schema refused it already (e.g. a title)
                return
            doc.bad.add(path)
            node = doc.node(*path)
            text = getattr(node, "value", "")
            if isinstance(value, float) and math.isnan(value):
                message = f"`{text}` is not a number"
            elif text.lstrip("+-") in (".inf", ".Inf", ".INF"):
                message = f"`{text}` is not a finite number"
            else:
                message = f"number `{_shorten(text)}` is too large"
            self.diagnostics.append(
                Diagnostic(
                    "KPI105",
                    message,
                    doc.span(*path),
                    hint="write a finite number: engines hold numbers as doubles, "
                    "at most about ±1.8e308",
                )
            )

    def _read(self, path: Path, file: str) -> str | None:
        try:
            data = self._read_bytes(path, file)
        except OSError as error:
            reason = error.strerror or type(error).__name__  # never the path's target
            self._cannot_read(file, f"cannot read the file: {reason}")
            return None
        if data is None:
            return None
        data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM some editors write
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            before = data[: error.start]
            line = before.count(b"\n") + 1
            col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
            self.texts.add(file, data.decode("utf-8", "replace"))
            byte = data[error.start]
            self.diagnostics.append(
                Diagnostic(
                    "KPI100",
                    f"the file is not valid UTF-8 (byte 0x{byte:02X} at offset {error.start})",
                    Span.point(file, line, col),
                    hint="save the file as UTF-8 (it was probably saved as Latin-1 or "
                    "Windows-1252)",
                )
            )
            return None

    def _read_bytes(self, path: Path, file: str) -> bytes | None:
        """The bytes of a regular file inside the project folder, at most the size cap;
        None (and a diagnostic) for anything else.

        Definitions are untrusted: a link to ``/proc/self/environ`` or ``~/.aws/credentials``
        must not be read (its text would be quoted back in caret excerpts), ``/dev/zero``
        never ends, and opening a FIFO blocks. So the link is resolved and must stay in
        the project folder, the target must be a regular file both before opening (no
        side effect of opening a device) and after (the opened file, not a swapped one),
        the open never blocks, and no more than the cap is read.
        """
        try:
            real = path.resolve(strict=True)
        except RuntimeError:  # a loop of links (Python < 3.13; later ones raise OSError)
            self._cannot_read(file, "the file is a loop of symbolic links; it was not read")
            return None
        if not real.is_relative_to(self.real_root):
            self._cannot_read(
                file,
                "the file is a link to a file outside the project folder; it was not read",
                "definitions are only read from inside the project folder: copy the file "
                "in, or remove the link",
            )
            return None
        if not self._regular(os.stat(real), file):
            return None
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(real, flags)
        with os.fdopen(descriptor, "rb") as handle:
            if not self._regular(os.fstat(descriptor), file):
                return None
            data = handle.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            self._too_large(file)
            return None
        return data

    def _regular(self, status: os.stat_result, file: str) -> bool:
        """Whether ``status`` is a regular file within the size cap (else: a diagnostic)."""
        if not stat.S_ISREG(status.st_mode):
            what = next((w for test, w in _KINDS_OF_FILE if test(status.st_mode)), None)
            self._cannot_read(
                file,
                f"the file is {what or 'not a regular file'}; it was not read",
                "definition files are plain YAML files; remove this one or rename it "
                "so it does not end in .yaml",
            )
            return False
        if status.st_size > self.max_bytes:
            self._too_large(file, status.st_size)
            return False
        return True

    def _too_large(self, file: str, size: int | None = None) -> None:
        actual = f"{size:,} bytes" if size is not None else "more than that"
        self._cannot_read(
            file,
            f"the file is too large: {actual}; the limit is {self.max_bytes:,} bytes",
            "split the definitions into several files; the operator can raise the limit "
            f"with the environment variable {MAX_FILE_BYTES_ENV}",
        )

    def _cannot_read(self, file: str, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("KPI100", message, Span.point(file, 1, 1), hint))

    def _kind(self, data: dict[str, Any], node: Node, path: Path, file: str) -> str | None:
        kind = next((k for k in _KIND_ORDER if k in data), None)
        if kind is None and path.name in PROJECT_FILES:
            return "project"
        if kind is not None:
            return kind
        if "test" in data:  # a `kpi test` file (SPEC §13.9), read by kpiengine.review
            return None
        first_key = node.value[0][0] if node.value else node
        guesses = (did_you_mean(key, KINDS) for key in data)
        hint = next((g for g in guesses if g), None)
        kinds = ", ".join(f"`{k}:`" for k in KINDS)
        self.diagnostics.append(
            Diagnostic(
                "KPI106",
                f"cannot tell what this file defines: it needs one of the keys {kinds}",
                key_span(first_key, file),
                hint=hint or "start a KPI file with `kpi: name`, a source with `source: name`",
            )
        )
        return None

    def _duplicate(self, what: str, name: str, span: Span, first: Span, where: str = "") -> None:
        self.diagnostics.append(
            Diagnostic(
                "KPI107",
                f"duplicate {what} `{name}`{where}",
                span,
                hint=f"`{name}` is already defined at {first}; rename one of them",
            )
        )

    # -- kinds

    def _project(self, data: dict[str, Any], doc: _Document) -> None:
        span = doc.key_span("project") if "project" in data else first_line(doc.span())
        if self.project_span is not None:
            self.diagnostics.append(
                Diagnostic(
                    "KPI107",
                    "a second project file",
                    span,
                    hint=f"the project is already defined at {self.project_span}; "
                    "keep one project file (kpiengine.yaml at the root)",
                )
            )
            return
        self.project_span = span
        fields = {
            "project": "name",
            "connector": "connector",
            "fiscal_year_start": "fiscal_year_start",
            "week_start": "week_start",
            "currency": "currency",
        }
        for key, field in fields.items():
            if doc.get(data, key) is not None:
                self.settings[field] = data[key]
        self.settings["retail_calendar"] = read_calendar(data, doc, self.diagnostics)
        if doc.get(data, "plugins") is not None:
            self.settings["plugins"] = tuple(data["plugins"])
        if doc.get(data, "plugin_config") is not None:
            self.settings["plugin_config"] = {
                name: dict(config or {}) for name, config in data["plugin_config"].items()
            }
        if doc.intact("dimensions") and isinstance(data.get("dimensions"), dict):
            self.settings["dimensions"] = {
                name: ConformedDimension(
                    name,
                    spec["column"],
                    doc.key_span("dimensions", name),
                    spec.get("title"),
                    spec.get("description"),
                )
                for name, spec in data["dimensions"].items()
                if doc.fine("dimensions", name)
            }
        validate = doc.get(data, "validate") or {}
        if "ignore" in validate:
            for index, code in enumerate(validate["ignore"]):
                if code not in CODES:
                    self.diagnostics.append(
                        Diagnostic(
                            "KPI105",
                            f"unknown diagnostic code `{code}` in `validate.ignore`",
                            doc.span("validate", "ignore", index),
                            hint=did_you_mean(code, CODES)
                            or "the codes are listed in docs/diagnostics.md",
                        )
                    )
            self.settings["validate_ignore"] = tuple(validate["ignore"])
        if "fail_on" in validate:
            self.settings["validate_fail_on"] = validate["fail_on"]

    def _source(self, data: dict[str, Any], doc: _Document) -> None:
        if not doc.fine("source"):
            return
        name: str = data["source"]
        span = doc.span("source")
        if name in self.sources:
            self._duplicate("source", name, span, self.sources[name].span)
            return
        columns: dict[str, Column] = {}
        for column, spec in (data["columns"] if doc.intact("columns") else {}).items():
            if not doc.fine("columns", column):
                continue
            where = doc.key_span("columns", column)
            if isinstance(spec, str):
                columns[column] = Column(column, spec, where)
                continue
            values = spec.get("values")
            columns[column] = Column(
                column,
                spec["type"],
                where,
                unit=spec.get("unit"),
                key=spec.get("key", False),
                values=tuple(values) if values is not None else None,
                description=spec.get("description"),
            )
        joins: list[Join] = []
        for index, join in enumerate(doc.items(data, "joins")):
            if doc.fine("joins", index):
                on = join["on"]
                left, right = (on, on) if isinstance(on, str) else (on["left"], on["right"])
                where = doc.span("joins", index, "source")
                joins.append(Join(join["source"], left, right, where))
        mappings = {
            dimension: DimensionMapping(dimension, column, doc.span("dimensions", dimension))
            for dimension, column in (
                data["dimensions"].items()
                if doc.intact("dimensions") and isinstance(data.get("dimensions"), dict)
                else ()
            )
            if doc.fine("dimensions", dimension)
        }
        table = doc.get(data, "table")
        if table is not None and "." in table and table.rsplit(".", 1)[-1].lower() in FILE_SUFFIXES:
            suffix = table.rsplit(".", 1)[-1]
            self.diagnostics.append(
                Diagnostic(
                    "KPI105",
                    f"`{table}` is not a table name: it ends like a file name (`.{suffix}`)",
                    doc.span("table"),
                    hint="a definition cannot read files: load the data into the warehouse "
                    "(or create a view there) and name that table here",
                )
            )
            table = None
        self.sources[name] = Source(
            name=name,
            table=table or name,
            columns=columns,
            span=span,
            time=doc.get(data, "time"),
            joins=tuple(joins),
            description=doc.get(data, "description"),
            dimensions=mappings,
        )

    def _kpi(self, data: dict[str, Any], doc: _Document, at: tuple[str | int, ...]) -> None:
        if not has_formula(data, doc, at):  # `expression:` or `conversion:` (SPEC §13.5)
            return
        if not (doc.fine(*at, "kpi") and doc.fine(*at, "expression")):
            return
        name: str = data["kpi"]
        span = doc.span(*at, "kpi")
        if name in self.kpis:
            self._duplicate("KPI", name, span, self.kpis[name].span)
            return

        def get(key: str) -> Any:
            return doc.get(data, *at, key)

        source, time, dimensions, target = (
            get("source"),
            get("time"),
            get("dimensions"),
            get("target"),
        )
        rules: dict[str, Rule] = {}
        for index, rule in enumerate(doc.items(data, *at, "rules")):
            if not doc.fine(*at, "rules", index):
                continue
            rule_span = doc.span(*at, "rules", index, "name")
            if rule["name"] in rules:
                first = rules[rule["name"]].span
                self._duplicate("rule", rule["name"], rule_span, first, f" in KPI `{name}`")
                continue
            when = doc.expression(*at, "rules", index, "when")
            message = rule.get("message")
            require = _require(rule, doc, *at, "rules", index)
            rules[rule["name"]] = Rule(
                rule["name"], when, rule["severity"], rule_span, message, name, require
            )
        fill_null = get("fill_null")
        self.kpis[name] = Kpi(
            name=name,
            expression=doc.expression(*at, "expression")
            if "expression" in data
            else no_expression(doc, at),
            span=span,
            title=get("title"),
            description=get("description"),
            owner=get("owner"),
            tags=tuple(get("tags") or ()),
            aliases=tuple(get("aliases") or ()),
            source=source,
            source_span=doc.span(*at, "source") if source is not None else None,
            filter=doc.expression(*at, "filter") if get("filter") is not None else None,
            time=time,
            time_span=doc.span(*at, "time") if time is not None else None,
            unit=get("unit"),
            dimensions=tuple(dimensions) if dimensions is not None else None,
            dimension_spans=tuple(
                doc.span(*at, "dimensions", i) for i in range(len(dimensions or ()))
            ),
            target=Target(
                float(target["value"]),
                target.get("direction", "higher"),
                doc.span(*at, "target"),
            )
            if target is not None
            else None,
            rules=tuple(rules.values()),
            **_snapshot(get("semi_additive"), doc, at),
            window=_window(get("window"), doc, at),
            fill_null=float(fill_null) if fill_null is not None else None,
        )
        if "conversion" in data:  # a funnel step (SPEC §13.5): kpiengine/loader/conversion.py
            self.kpis[name] = conversion_kpi(self.kpis[name], data, doc, at)

    def _rule_file(self, data: dict[str, Any], doc: _Document) -> None:
        if not all(doc.fine(key) for key in ("rule", "when", "severity")):
            return
        name: str = data["rule"]
        span = doc.span("rule")
        if name in self.rules:
            self._duplicate("rule", name, span, self.rules[name].span)
            return
        when = doc.expression("when")
        message = doc.get(data, "message")
        require = _require(data, doc)
        self.rules[name] = Rule(name, when, data["severity"], span, message, None, require)


def _require(rule: dict[str, Any], doc: _Document, *at: str | int) -> Expression | None:
    """A rule's ``require:`` guard (SPEC §13.8), parsed like its ``when``."""
    if "require" not in rule or not doc.fine(*at, "require"):
        return None
    return doc.expression(*at, "require")


def _snapshot(value: Any, doc: _Document, at: tuple[str | int, ...]) -> dict[str, Any]:
    """``semi_additive: last`` or ``{take: last, per: account_id}`` (checked by the
    schema) as the KPI's ``semi_additive`` and ``snapshot_per`` fields."""
    if not isinstance(value, dict):
        return {"semi_additive": value}
    return {
        "semi_additive": value["take"],
        "snapshot_per": value["per"],
        "snapshot_per_span": doc.span(*at, "semi_additive", "per"),
    }


def _window(value: Any, doc: _Document, at: tuple[str | int, ...]) -> Window | None:
    """``window: all``, ``{to_date: G}`` or ``{last: N, unit: U}`` (checked by the schema)."""
    if value is None:
        return None
    span = doc.span(*at, "window")
    if value == "all":
        return Window("all", span)
    if "to_date" in value:
        if "last" in value or "unit" in value:
            doc.diagnostics.append(
                Diagnostic(
                    "KPI105",
                    "a window is either `to_date:` or `last:` with `unit:`, not both",
                    span,
                    "e.g. window: {to_date: year} or window: {last: 90, unit: day}",
                )
            )
        return Window("to_date", span, unit=value["to_date"])
    return Window("last", span, unit=value["unit"], count=int(value["last"]))


# -- errors that follow from a file that could not be read ---------------------------------

_UNKNOWN_NAME = re.compile(r"^unknown (KPI|source) `([^`]+)`")


def mark_consequences(project: Project, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """An unknown KPI or source (KPI302, KPI311) that a file with invalid YAML (KPI101)
    defines by the look of its text is a consequence of that file, not a second mistake:
    say so in the hint, so the analyst fixes the file rather than the name. The error
    stays (the KPI naming it cannot be computed until the file is fixed)."""
    broken = sorted({d.span.file for d in diagnostics if d.code == "KPI101" and d.span})
    if not broken:
        return diagnostics
    marked: list[Diagnostic] = []
    for diagnostic in diagnostics:
        match = _UNKNOWN_NAME.match(diagnostic.message)
        if diagnostic.code in ("KPI302", "KPI311") and match:
            key = "kpi" if match.group(1) == "KPI" else "source"
            file = _defining_file(project.texts, broken, key, match.group(2))
            if file is not None:
                hint = (
                    f"`{match.group(2)}` seems to be defined in {file}, which has invalid "
                    "YAML (see the error there): fix that file first"
                )
                diagnostic = dataclasses.replace(diagnostic, hint=hint)
        marked.append(diagnostic)
    return marked


def _defining_file(texts: SourceTexts, files: list[str], key: str, name: str) -> str | None:
    """The first of ``files`` with a line ``kpi: name`` (or ``source: name``, possibly as
    ``- kpi: name``, quoted or not; a source only at the top level, not a KPI's
    ``source:``): a file that did not parse is read as lines."""
    lead = r"\s*(?:-\s+)?" if key == "kpi" else ""  # a source file starts `source:`
    value = rf"['\"]?{re.escape(name)}['\"]?"
    pattern = re.compile(rf"^{lead}{key}\s*:\s*{value}\s*(?:#.*)?$")
    for file in files:
        number = 1
        while (line := texts.line(file, number)) is not None:
            if pattern.match(line):
                return file
            number += 1
    return None
