"""The Python API (SPEC §7): ``load`` a project, ``compile`` or ``run`` KPIs.

This is also what the CLI calls, so the two can never disagree.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kpiengine.diagnostics import Diagnostic, Severity
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.execute.result import Result
from kpiengine.loader.model import Expression, Project
from kpiengine.plan.planner import Plan, RunRequest, build_plan
from kpiengine.source import TextOrigin

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginHost


class KpiProject:
    """A loaded and checked project, with its own plugin host (``plugins``): its
    functions, connectors, renderers and notifiers are looked up there, never in another
    project's."""

    def __init__(
        self,
        model: Project,
        diagnostics: Sequence[Diagnostic] = (),
        plugins: PluginHost | None = None,
    ) -> None:
        from kpiengine.plugins.manager import default_host

        self.model = model
        self.diagnostics = list(diagnostics)
        self.plugins = plugins if plugins is not None else default_host()

    def connect(self, url: str):  # type: ignore[no-untyped-def]
        """Open ``url`` through the connectors of this project's plugins."""
        return self.plugins.connect(url)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def kpis(self) -> list[str]:
        return list(self.model.kpis)

    def request(
        self,
        kpis: Iterable[str] | None = None,
        grain: str = "month",
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        by: Iterable[str] = (),
        where: str | None = None,
        max_periods: int | None = None,
    ) -> RunRequest:
        """The request for ``kpis``; ``max_periods`` caps the periods the statement
        produces, look-back included (default: ``KPI_MAX_PERIODS``, else 100 000)."""
        from kpiengine.plan.periods import max_periods as period_limit

        names = tuple(self.model.kpis) if kpis is None else tuple(kpis)
        return RunRequest(
            names,
            grain,
            _date(start, "start"),
            _date(end, "end"),
            tuple(by),
            parse_where(where) if where is not None else None,
            max_periods=period_limit(max_periods),
        )

    def plan(self, kpis: Iterable[str] | None = None, **options: object) -> Plan:
        try:
            request = self.request(kpis, **options)  # type: ignore[arg-type]
            return build_plan(self.model, request, self.plugins.functions())
        except DefinitionError as error:
            error.texts = error.texts or self.model.texts
            raise

    def compile(
        self, kpis: Iterable[str] | None = None, dialect: str = "duckdb", **options: object
    ) -> str:
        """The one SQL statement computing ``kpis`` (all when None) in ``dialect``."""
        from kpiengine.compile.dialects import require_dialect
        from kpiengine.compile.statement import compile_plan

        require_dialect(dialect, self.plugins)  # any registered dialect, a plugin's too
        note = bool(options.pop("note", False))  # the CLI's no-range comment
        return compile_plan(self.plan(kpis, **options), dialect, host=self.plugins, note=note)

    def run(
        self,
        kpis: Iterable[str] | None,
        connection: object,
        as_of: str | dt.date | None = None,
        **options: object,
    ) -> Result:
        """Compute ``kpis`` (all when None) on an open connection, and evaluate their rules
        (``pace`` and ``partial`` at ``as_of``, default today)."""
        names = self.with_rule_inputs(kpis)
        return self.execute(self.plan(names, **options), connection, as_of, shown=kpis)

    def with_rule_inputs(self, kpis: Iterable[str] | None) -> list[str] | None:
        """``kpis`` and the KPIs their rules read (``require: deals_closed >= 20``)."""
        from kpiengine.rules.evaluate import rule_inputs

        if kpis is None:
            return None
        names = list(kpis)
        return [*names, *rule_inputs(self.model, names)]

    def execute(
        self,
        plan: Plan,
        connection: object,
        as_of: str | dt.date | None = None,
        shown: Iterable[str] | None = None,
    ) -> Result:
        """Compute a plan built by :meth:`plan` on an open connection, and evaluate its
        rules: the CLI builds the plan once (definition errors before the engine opens)
        and hands it on, rather than each stage building its own. ``shown``: the KPIs to
        keep in the result (the plan may hold more for rules, :meth:`with_rule_inputs`)."""
        from kpiengine.execute.run import run
        from kpiengine.rules.evaluate import evaluate, shown_only

        result = run(plan, connection, self.plugins)  # type: ignore[arg-type]
        result = dataclasses.replace(result, as_of=_date(as_of, "as_of") or dt.date.today())
        result = result.evaluated(*evaluate(self.model, result))
        return result if shown is None else shown_only(self.model, result, list(shown))

    def rule_kpis(self) -> list[str]:
        """KPIs that have rules, and those that standalone rule files name."""
        from kpiengine.rules.evaluate import rule_kpis

        names = [k.name for k in self.model.kpis.values() if k.rules]
        for rule in self.model.rules:
            names.extend(rule_kpis(rule))
        return list(dict.fromkeys(n for n in names if n in self.model.kpis))

    def check(
        self,
        kpis: Iterable[str] | None,
        connection: object,
        grain: str = "month",
        start: str | dt.date | None = None,
        end: str | dt.date | None = None,
        as_of: str | dt.date | None = None,
        **options: object,
    ) -> Result:
        """Evaluate rules over ``[start, end)`` (default: the last complete period before
        ``as_of``, default today).

        One extra period before the range is computed so that ``previous`` has a value in
        the first period; its rows and alerts are dropped from the result.
        """
        from kpiengine.plan.periods import add_periods, period_start

        names = list(kpis) if kpis is not None else self.rule_kpis()
        start_date, end_date = _date(start, "start"), _date(end, "end")
        today = _date(as_of, "as_of") or dt.date.today()
        if grain == "all":
            return self.run(
                names, connection, today, grain=grain, start=start_date, end=end_date, **options
            )
        fiscal, week = self.model.fiscal_year_start, self.model.week_start
        retail = self.model.retail_calendar
        if start_date is None and end_date is None:
            end_date = period_start(today, grain, fiscal, week, retail=retail)
            start_date = add_periods(end_date, grain, -1, retail=retail)
        if start_date is None or end_date is None:
            raise UsageError("give both --from and --to, or neither (the last complete period)")
        first = period_start(start_date, grain, fiscal, week, retail=retail)
        earlier = add_periods(first, grain, -1, retail=retail)
        result = self.run(
            names, connection, today, grain=grain, start=earlier, end=end_date, **options
        )
        keep = [r for r in result.rows if r.period is None or r.period >= first]
        kept = set(keep)  # once: a set per status made a long range quadratic
        return dataclasses.replace(
            result,
            start=start_date,
            rows=keep,
            statuses={r: s for r, s in result.statuses.items() if r in kept},
            alerts=[a for a in result.alerts if a.period is None or a.period >= first],
        )


def load(path: str | Path | None = None, plugins: Iterable[str] = ()) -> KpiProject:
    """Load and check a definitions folder; raise DefinitionError listing every error.

    The project gets its own plugin host: the built-ins, ``plugins`` (module names, as
    ``--plugin``), the project file's ``plugins:`` and, when a name is unknown, the
    installed entry points."""
    from kpiengine.plugins.manager import PluginHost

    host = PluginHost(plugins)
    project, diagnostics = load_and_check(path, plugins=host)
    errors = [d for d in diagnostics if d.severity >= Severity.ERROR]
    if errors:
        raise DefinitionError(errors, project.texts)
    return KpiProject(project, diagnostics, host)


@dataclasses.dataclass
class Soundness:
    """Which KPIs of a project with definition errors can still be computed (`kpi run`:
    one broken KPI must not block the others). ``broken``: KPI → the errors that are its
    own; ``fatal``: errors no KPI owns (the project file, a standalone rule that loaded,
    no position), which leave nothing runnable; ``errors``: every error."""

    errors: list[Diagnostic] = dataclasses.field(default_factory=list)
    broken: dict[str, list[Diagnostic]] = dataclasses.field(default_factory=dict)
    fatal: list[Diagnostic] = dataclasses.field(default_factory=list)

    def blocker(self, project: Project, name: str) -> str | None:
        """The broken (or missing) KPI that stops ``name``: itself, or one it reads."""
        from kpiengine.language.names import referenced_kpis

        stack, seen = [name], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self.broken or (current != name and current not in project.kpis):
                return current
            kpi = project.kpis.get(current)
            if kpi is not None:
                stack.extend(referenced_kpis(kpi))
        return None


def load_lenient(
    path: str | Path | None = None, plugins: Iterable[str] = ()
) -> tuple[KpiProject, Soundness]:
    """Like :func:`load`, but a project with errors still loads: the returned
    :class:`Soundness` says which KPIs cannot be computed, so `kpi run` computes the rest."""
    from kpiengine.plugins.manager import PluginHost

    host = PluginHost(plugins)
    project, diagnostics = load_and_check(path, plugins=host)
    errors = [d for d in diagnostics if d.severity >= Severity.ERROR]
    soundness = Soundness(errors)
    if errors:
        _attribute(project, soundness, host.functions())
    return KpiProject(project, diagnostics, host), soundness


def _attribute(project: Project, soundness: Soundness, functions: object) -> None:
    """Give each error to the KPIs it breaks: a KPI's own check problems to it; a problem
    the loader found in a file to the KPI defined at or above its line there (all of the
    file's KPIs when above the first), and to every KPI of a source defined in that file;
    the project file's, a loaded standalone rule's or an unplaced one to nobody (fatal).
    A file in which nothing loaded breaks only what names what it should have defined,
    and that already has its own error (unknown KPI or source)."""
    from kpiengine.language.check import check_kpi
    from kpiengine.loader.definitions import PROJECT_FILES

    owned: set[Diagnostic] = set()
    for kpi in project.kpis.values():
        own = [
            d
            for d in check_kpi(project, kpi, functions)  # type: ignore[arg-type]
            if d.severity >= Severity.ERROR
        ]
        if own:
            soundness.broken.setdefault(kpi.name, []).extend(own)
            owned.update(own)
    project_files = {str(project.root / name) for name in PROJECT_FILES}
    rule_files = {r.span.file for r in project.rules if r.span is not None}
    for error in soundness.errors:
        if error in owned:
            continue
        span = error.span
        if span is None or span.file in project_files or span.file in rule_files:
            soundness.fatal.append(error)
            continue
        in_file = sorted(
            (k for k in project.kpis.values() if k.span.file == span.file),
            key=lambda k: k.span.line,
        )
        above = [k for k in in_file if k.span.line <= span.line]
        hit = [above[-1]] if above else in_file
        sources = {s.name for s in project.sources.values() if s.span.file == span.file}
        hit += [k for k in project.kpis.values() if k.source in sources]
        for kpi in {k.name: k for k in hit}.values():
            soundness.broken.setdefault(kpi.name, []).append(error)


def load_and_check(
    path: str | Path | None = None,
    lint: bool = True,
    allow_plugins: bool = True,
    plugins: PluginHost | Iterable[str] = (),
) -> tuple[Project, list[Diagnostic]]:
    """Every diagnostic of loading, checking and (with ``lint``) the warnings of
    :mod:`kpiengine.language.lint`, without raising on definition errors. Codes listed in the
    project's ``validate: {ignore: [...]}`` are left out, except errors: an error means
    the definitions cannot be computed, and hiding it would only move it to ``kpi run``.

    With ``allow_plugins=False`` (``kpi validate`` of untrusted definitions) the modules
    of the project's ``plugins:`` list are not imported, nor is the project folder put on
    ``sys.path``: checking definitions never runs code that came with them. Functions
    those plugins add are then unknown (KPI303), with a hint saying why.

    ``plugins`` is a :class:`~kpiengine.plugins.manager.PluginHost` to load the project's
    plugins into (the caller keeps it: ``kpi validate --connector``, ``kpi plugins``), or
    module names for a new one."""
    from kpiengine.plugins.manager import PluginHost

    host = plugins if isinstance(plugins, PluginHost) else PluginHost(plugins)
    if path is None:
        from kpiengine.loader.definitions import find_project_root

        path = find_project_root()
    root = Path(path)
    key = _project_key(root, host, lint, allow_plugins)  # before reading: files may change
    cached = _cached_project(key, host, allow_plugins)
    if cached is not None:
        return cached
    # a cache miss: only now the modules that parse YAML and expressions
    from kpiengine.language.check import check_project
    from kpiengine.loader.definitions import load_project, mark_consequences

    project, diagnostics = load_project(root)
    host.attach(project, load_plugins=allow_plugins)
    # Check what did load even when some files did not: one broken file must not hide
    # the problems of the others.
    found = [*diagnostics, *check_project(project, host.functions()), *_offset_problems(project)]
    if project.plugins and not allow_plugins:
        found = [_plugins_hint(d, project.plugins) for d in found]
    if lint:
        from kpiengine.language.lint import lint_project

        found.extend(lint_project(project, found))
    found = mark_consequences(project, found)
    ignore = frozenset(project.validate_ignore)
    if ignore:
        found = [d for d in found if d.code not in ignore or d.severity >= Severity.ERROR]
    found = sorted(found, key=Diagnostic.sort_key)
    _store_project(key, host, project, found)
    return project, found


def _project_key(root: Path, host: PluginHost, lint: bool, allow_plugins: bool) -> str | None:
    """The cache key of this load (:mod:`kpiengine.cache`); None when plugins play a part
    or the cache is off."""
    from kpiengine import cache

    return cache.project_key(root, lint, allow_plugins) if cache.usable(host) else None


def _cached_project(
    key: str | None, host: PluginHost, allow_plugins: bool
) -> tuple[Project, list[Diagnostic]] | None:
    """The project and diagnostics a previous process found for the same files, code and
    options, attached to ``host`` as a fresh load would be."""
    from kpiengine import cache

    found = cache.load(key)
    if key is None or not isinstance(found, tuple) or len(found) != 2 or found[0].plugins:
        return None
    project, diagnostics = found
    host.attach(project, load_plugins=allow_plugins)
    cache.remember_project(project, key)
    return project, diagnostics


def _store_project(
    key: str | None, host: PluginHost, project: Project, found: list[Diagnostic]
) -> None:
    """Keep what was found for the next process, when plugin code played no part in it
    (no project ``plugins:``, no installed plugin consulted while checking)."""
    from kpiengine import cache

    if key is None or project.plugins or not cache.usable(host):
        return
    cache.store(key, (project, found))
    cache.remember_project(project, key)


#: ``KPI_ALLOW_PLUGINS=1``: ``kpi validate`` imports the project's plugins (CI of a
#: repository whose every committer is trusted).
ALLOW_PLUGINS_ENV = "KPI_ALLOW_PLUGINS"


def plugins_allowed_by_environment() -> bool:
    import os

    return os.environ.get(ALLOW_PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _plugins_hint(diagnostic: Diagnostic, plugins: Sequence[str]) -> Diagnostic:
    """An unknown function may come from a project plugin that validation did not load."""
    if diagnostic.code != "KPI303":
        return diagnostic
    hint = (
        f"the project lists plugins: {', '.join(plugins)}; they were not loaded, since "
        "validation runs no project code: run with --allow-plugins (or "
        f"{ALLOW_PLUGINS_ENV}=1) to load them"
    )
    if diagnostic.hint:
        hint = f"{hint}; else {diagnostic.hint}"
    return dataclasses.replace(diagnostic, hint=hint)


def _offset_problems(project: Project) -> list[Diagnostic]:
    """KPI402: time-function offsets over the period limit, found without a run."""
    from kpiengine.plan.periods import max_periods
    from kpiengine.plan.time_functions import offset_problems

    limit = max_periods()
    found: list[Diagnostic] = []
    for kpi in project.kpis.values():
        if kpi.expression.tree is not None:
            found.extend(offset_problems(kpi.expression.tree, limit))
    return found


def parse_where(text: str) -> Expression:
    """``--where`` as an expression; an empty or blank one is a usage error, not "no
    filter": a script that passes an empty variable must not silently widen a run."""
    from kpiengine.language.parse import parse_expression

    if not text.strip():
        raise UsageError(
            "--where is empty; give a condition over dimensions, e.g. "
            "--where \"region = 'emea'\", or leave the flag out"
        )
    origin = TextOrigin.standalone("--where", text)
    tree, problems = parse_expression(text, origin)
    if problems:
        raise DefinitionError(problems)
    return Expression(text, tree, origin.span(1, 1, 1, len(text) + 1))


def _date(value: str | dt.date | None, what: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{what} `{value}` is not a date; write it as YYYY-MM-DD") from None


def connect(url: str):  # type: ignore[no-untyped-def]
    """Open a connection through the connector that owns the URL's scheme, among the
    process's plugins (built-ins, installed ones); ``KpiProject.connect`` uses the
    project's."""
    from kpiengine.execute.connectors import connect as open_connection

    return open_connection(url)
