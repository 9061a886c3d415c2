"""Load stage: a definitions folder → :class:`~kpiengine.model.Project` (SPEC §3).

Every ``*.yaml`` / ``*.yml`` below the folder is read, composed with positions
(:mod:`kpiengine.yaml_nodes`), validated against the JSON Schema of its kind, and turned
into model objects; expressions go through the parse stage with a
:class:`~kpiengine.source.TextOrigin` so their positions point into the YAML file.

Nothing here raises on bad definitions: every problem in every file becomes a
:class:`~kpiengine.diagnostics.Diagnostic`, and what is valid is still built, so one run
reports everything. A definition whose name (or a KPI whose expression) is invalid is
left out; an invalid optional field is left at its default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import CODES, Diagnostic, did_you_mean
from kpiengine.errors import UsageError
from kpiengine.model import Column, Expression, Join, Kpi, Project, Rule, Source, Target
from kpiengine.schema_check import is_valid, schema_for, validator
from kpiengine.schema_errors import first_line, schema_diagnostics
from kpiengine.source import SourceTexts, Span
from kpiengine.yaml_nodes import (
    Converter,
    compose,
    key_span,
    locate,
    node_span,
    scalar_origin,
    text_span,
)

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["KINDS", "PROJECT_FILES", "find_project_root", "load_project", "schema_for"]

#: The top-level keys that say what a file defines.
KINDS = ("project", "source", "kpi", "kpis", "rule")
#: Names of the project file; the first one is what SPEC §6 looks for.
PROJECT_FILES = ("kpiengine.yaml", "kpiengine.yml")
# Which kind wins when a file has several kind keys: a KPI file also has `source:`.
_KIND_ORDER = ("kpi", "kpis", "rule", "source", "project")
_SUFFIXES = (".yaml", ".yml")


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


def _definition_files(root: Path) -> list[Path]:
    """Every YAML file below ``root``, hidden files and folders skipped, in a stable order
    with the root project file first (so a second project file is the one reported)."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        base = Path(folder)
        found.extend(
            base / name
            for name in sorted(names)
            if name.endswith(_SUFFIXES) and not name.startswith(".")
        )
    project_files = {root / name for name in PROJECT_FILES}
    return sorted(found, key=lambda p: (p not in project_files, p.relative_to(root).parts))


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
    for file in _definition_files(root):
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

    def node(self, *path: str | int) -> Node:
        return locate(self.root, path, self._index)[1]

    def span(self, *path: str | int) -> Span:
        return node_span(self.node(*path), self.file, self.lines)

    def key_span(self, *path: str | int) -> Span:
        key, value = locate(self.root, path, self._index)
        return key_span(key if key is not None else value, self.file)

    def expression(self, *path: str | int) -> Expression:
        """Parse the expression scalar at ``path``; its problems go to the diagnostics."""
        from kpiengine.parse import parse_expression

        node = self.node(*path)
        text, origin = scalar_origin(node, self.file, self.lines)  # type: ignore[arg-type]
        tree, problems = parse_expression(text, origin)
        self.diagnostics.extend(problems)
        return Expression(text, tree, text_span(text, origin))


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
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
        file = str(path)
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
        if kind == "project":
            self._project(data, document)
        elif kind == "source":
            self._source(data, document)
        elif kind == "rule":
            self._rule_file(data, document)
        elif "kpis" in data:
            for index, item in enumerate(data["kpis"] if document.intact("kpis") else ()):
                self._kpi(item, document, ("kpis", index))
        else:
            self._kpi(data, document, ())

    def _read(self, path: Path, file: str) -> str | None:
        try:
            data = path.read_bytes()
        except OSError as error:
            reason = error.strerror or str(error)
            self.diagnostics.append(
                Diagnostic("KPI100", f"cannot read the file: {reason}", Span.point(file, 1, 1))
            )
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

    def _kind(self, data: dict[str, Any], node: Node, path: Path, file: str) -> str | None:
        kind = next((k for k in _KIND_ORDER if k in data), None)
        if kind is None and path.name in PROJECT_FILES:
            return "project"
        if kind is not None:
            return kind
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
        if doc.get(data, "plugins") is not None:
            self.settings["plugins"] = tuple(data["plugins"])
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
        for index, join in enumerate(data.get("joins") or ()):
            if doc.fine("joins", index):
                on = join["on"]
                left, right = (on, on) if isinstance(on, str) else (on["left"], on["right"])
                where = doc.span("joins", index, "source")
                joins.append(Join(join["source"], left, right, where))
        self.sources[name] = Source(
            name=name,
            table=doc.get(data, "table") or name,
            columns=columns,
            span=span,
            time=doc.get(data, "time"),
            joins=tuple(joins),
            description=doc.get(data, "description"),
        )

    def _kpi(self, data: dict[str, Any], doc: _Document, at: tuple[str | int, ...]) -> None:
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
        for index, rule in enumerate(data.get("rules") or ()):
            if not doc.fine(*at, "rules", index):
                continue
            rule_span = doc.span(*at, "rules", index, "name")
            if rule["name"] in rules:
                first = rules[rule["name"]].span
                self._duplicate("rule", rule["name"], rule_span, first, f" in KPI `{name}`")
                continue
            when = doc.expression(*at, "rules", index, "when")
            message = rule.get("message")
            rules[rule["name"]] = Rule(
                rule["name"], when, rule["severity"], rule_span, message, name
            )
        fill_null = get("fill_null")
        self.kpis[name] = Kpi(
            name=name,
            expression=doc.expression(*at, "expression"),
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
            semi_additive=get("semi_additive"),
            fill_null=float(fill_null) if fill_null is not None else None,
        )

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
        self.rules[name] = Rule(name, when, data["severity"], span, message)
