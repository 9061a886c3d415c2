"""Static checks of rule messages: what ``kpi validate`` can tell before any run.

A message is a Jinja template rendered with the variables :mod:`kpiengine.rules.evaluate` gives
(``value``, ``target``, ``previous``, ``kpi``, ``title``, ``period`` and the dimensions a
run is grouped by, for a KPI's rule; the KPIs it names, ``period`` and the dimensions,
for a standalone rule). At run time an unknown name is an error (``StrictUndefined``); a
typo such as ``{{ valeu }}`` used to render as empty text, so it is caught here, at the
message's line: syntax errors (KPI319), unknown names, filters and tests (KPI320).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from kpiengine.diagnostics import Diagnostic, did_you_mean
from kpiengine.loader.model import Kpi, Project, Rule
from kpiengine.source import Span

#: The variables every KPI rule's message has (see ``evaluate._alert``).
KPI_MESSAGE_VARIABLES = frozenset({"value", "target", "previous", "kpi", "title", "period"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MESSAGE_KEY = re.compile(r"(?:^|[\s{,-])message\s*:\s*")
_RULE_NAME_KEY = re.compile(r"(?:^|[\s{,-])name\s*:")


def check_messages(project: Project) -> list[Diagnostic]:
    """KPI319/KPI320 for every rule message of the project."""
    found: list[Diagnostic] = []
    for kpi in project.kpis.values():
        for rule in kpi.rules:
            if rule.message:
                names = KPI_MESSAGE_VARIABLES | _dimensions(project, [kpi])
                found.extend(check_message(project, rule, names))
    for rule in project.rules:
        if rule.message:
            from kpiengine.rules.evaluate import rule_kpis

            kpis = [project.kpis[n] for n in rule_kpis(rule) if n in project.kpis]
            names = {"period", *rule_kpis(rule)} | _dimensions(project, kpis)
            found.extend(check_message(project, rule, frozenset(names)))
    return sorted(found, key=Diagnostic.sort_key)


def check_message(project: Project, rule: Rule, names: frozenset[str]) -> Iterator[Diagnostic]:
    from jinja2 import TemplateError, nodes

    from kpiengine.rules.messages import describe_error, message_environment

    assert rule.message is not None
    environment = message_environment(project.currency)
    where = _MessagePlace(project, rule)
    try:
        tree = environment.parse(rule.message)
    except Exception as error:  # a syntax error, or nesting past Python's recursion limit
        line = getattr(error, "lineno", None) or 1
        reason = getattr(error, "message", None) or describe_error(error)
        yield Diagnostic(
            "KPI319",
            f"the message of rule `{rule.name}` is not a valid template: {reason}",
            where.line_span(line),
            "messages are Jinja templates: `{{ value | percent }}`, "
            "`{% if previous %}...{% endif %}`",
        )
        return
    known = names | set(environment.globals)
    fixed = sorted(names & (KPI_MESSAGE_VARIABLES | {"period"})) + sorted(
        n for n in names if n in project.kpis
    )
    usable = ", ".join(f"`{n}`" for n in fixed)
    problems = False
    for name in sorted(_undeclared(tree) - known):
        problems = True
        hint = did_you_mean(name, names)
        yield Diagnostic(
            "KPI320",
            f"unknown name `{name}` in the message of rule `{rule.name}`",
            where.name_span(name),
            (f"{hint} A" if hint else "a")
            + f" message can use {usable} and the dimensions a run is grouped by",
        )
    for kind, node_type, table in (
        ("filter", nodes.Filter, environment.filters),
        ("test", nodes.Test, environment.tests),
    ):
        for node in tree.find_all(node_type):
            if node.name not in table:
                problems = True
                hint = did_you_mean(node.name, table)
                yield Diagnostic(
                    "KPI320",
                    f"unknown {kind} `{node.name}` in the message of rule `{rule.name}`",
                    where.name_span(node.name),
                    hint or f"the {kind}s are: {', '.join(sorted(table))}",
                )
    if not problems:
        try:
            environment.from_string(rule.message)
        except TemplateError as error:
            yield Diagnostic(
                "KPI319",
                f"the message of rule `{rule.name}` is not a valid template: "
                f"{describe_error(error)}",
                where.line_span(getattr(error, "lineno", None) or 1),
                None,
            )


def _undeclared(tree: Any) -> set[str]:
    """Names a template reads without setting them. Jinja's own analysis compiles the
    template, which stops at an unknown filter; then the names read are an estimate."""
    from jinja2 import TemplateError, meta, nodes

    try:
        return set(meta.find_undeclared_variables(tree))
    except TemplateError:
        read = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
        stored = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        return read - stored - {"loop", "caller", "varargs", "kwargs"}


def _dimensions(project: Project, kpis: Iterable[Kpi]) -> frozenset[str]:
    """Names a run may be grouped by (``--by region`` gives ``region`` to messages):
    the declared dimensions, or every column of the sources when a KPI declares none."""
    from kpiengine.language.names import base_kpis

    found: set[str] = set()
    for kpi in kpis:
        for base in base_kpis(project, kpi.name) or [kpi]:
            if base.dimensions is not None:
                found.update(base.dimensions)
                continue
            source = project.sources.get(base.source or "")
            if source is not None:
                found.update(source.columns)
    return frozenset(d for d in found if _NAME.fullmatch(d))


class _MessagePlace:
    """Where a rule's message is in its file. The model keeps the rule's name position;
    the message is found from it in the file's text (``message:`` of the same rule)."""

    def __init__(self, project: Project, rule: Rule) -> None:
        self.file = rule.span.file
        self.texts = project.texts
        explicit: Any = getattr(rule, "message_span", None)
        self.start: Span = explicit or self._find(rule) or rule.span

    def _line(self, number: int) -> str | None:
        return self.texts.line(self.file, number)

    def _find(self, rule: Rule) -> Span | None:
        standalone = rule.kpi is None
        origin = rule.span.line
        # the rule's own mapping: after its name up to the next rule, else just before
        for number in range(origin, origin + 200):
            text = self._line(number)
            if text is None:
                break
            if number > origin and not standalone and _RULE_NAME_KEY.search(text):
                break
            match = _MESSAGE_KEY.search(text)
            if match:
                return Span.point(self.file, number, match.end() + 1)
        for number in range(origin - 1, max(origin - 50, 0), -1):
            text = self._line(number)
            if text is None or _RULE_NAME_KEY.search(text):
                break
            match = _MESSAGE_KEY.search(text)
            if match:
                return Span.point(self.file, number, match.end() + 1)
        return None

    def line_span(self, template_line: int) -> Span:
        """The start of the message, moved down to a line of a multi-line message."""
        if template_line <= 1:
            return self.start
        number = self.start.line + template_line - 1
        text = self._line(number)
        if text is None:
            return self.start
        indent = len(text) - len(text.lstrip())
        return Span(self.file, number, indent + 1, number, len(text) + 1)

    def name_span(self, name: str) -> Span:
        """The first place ``name`` is written in the message, else the message start."""
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        for offset in range(0, 30):
            number = self.start.line + offset
            text = self._line(number)
            if text is None:
                break
            begin = self.start.col - 1 if offset == 0 else 0
            match = pattern.search(text, begin)
            if match and "{" in text:
                return Span(self.file, number, match.start() + 1, number, match.end() + 1)
        return self.start
