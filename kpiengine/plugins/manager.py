"""The plugin host: one pluggy manager per loaded project (or CLI command), passed explicitly.

A :class:`PluginHost` holds the built-in plugin, the ``--plugin`` modules, the project's
``plugins:`` list and, lazily, the installed entry points. Whatever needs plugins (the
checker's function registry, connector lookup, renderers, notifiers, sample writers) is
given the host of the project it works for, so two projects loaded in one process never
see each other's plugins. The plain Python API without a project
(``kpiengine.connect(url)``) uses :func:`default_host`, which project loading never touches.

Hooks are called through pluggy (``pm.hook`` / ``subset_hook_caller``), one plugin at a time,
so that a plugin whose hook raises is recorded with the reason (shown by ``kpi plugins``
and as a warning) while the rest keep working, as sqlfluff does; and so that each plugin
receives its own :class:`PluginContext` (its ``plugin_config`` section). Each hook of each
plugin is called at most once per host; the results are kept.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from kpiengine import hookspecs

if TYPE_CHECKING:
    from kpiengine.execute.connectors import Connection, ConnectorSpec
    from kpiengine.language.functions import FunctionRegistry
    from kpiengine.loader.model import Project

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kpiengine"
BUILTIN = "builtin"

#: what ``kpi plugins`` calls each hook's items, in the order it lists them
LABELS = {
    "kpiengine_connectors": "connectors",
    "kpiengine_functions": "functions",
    "kpiengine_renderers": "renderers",
    "kpiengine_notifiers": "notifiers",
    "kpiengine_sample_writers": "sample writers",
    "kpiengine_dialects": "dialects",
}


@dataclass(frozen=True)
class PluginFailure:
    name: str
    reason: str


@dataclass(frozen=True)
class PluginContext:
    """What every hook may take as its ``context`` argument.

    ``project`` is the loaded project (None for the Python API without a project and for
    commands such as ``kpi sample-data``); ``config`` is this plugin's section of the
    project file's ``plugin_config:`` (empty when there is none), keyed by the name
    ``kpi plugins`` shows.
    """

    plugin: str
    project: Project | None = None
    config: Mapping[str, Any] = field(default_factory=dict)


class PluginHost:
    """One pluggy manager and everything looked up through it, for one project."""

    def __init__(self, modules: Iterable[str] = (), *, entry_points: bool = False) -> None:
        self.manager = pluggy.PluginManager("kpiengine")
        self.manager.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.project: Project | None = None
        self.config: Mapping[str, Mapping[str, Any]] = {}
        self.entry_points_loaded = False
        self._distributions: dict[str, Any] = {}  # plugin name → its entry point's dist
        self._results: dict[tuple[str, str], list[Any] | PluginFailure] = {}
        self._functions: FunctionRegistry | None = None
        from kpiengine.plugins import builtin

        self._register(BUILTIN, lambda: builtin)
        self.add_modules(modules)
        if entry_points:
            self.load_entry_points()

    # -- registration --------------------------------------------------------------------

    def add_modules(self, modules: Iterable[str]) -> None:
        """Register ``--plugin`` (or ``plugins:``) modules by import name."""
        for module in modules:
            self._register(module, lambda module=module: importlib.import_module(module))

    def attach(self, project: Project, load_plugins: bool = True) -> None:
        """Give the hooks ``project`` and its ``plugin_config``; register its ``plugins:``
        modules unless ``load_plugins`` is false (``kpi validate`` runs no project code).

        A module of the list may sit in the project folder, next to kpiengine.yaml.
        """
        self.project = project
        self.config = dict(getattr(project, "plugin_config", None) or {})
        self._forget()
        if load_plugins and project.plugins:
            root = str(project.root.resolve())
            if root not in sys.path:
                sys.path.append(root)
            self.add_modules(project.plugins)

    def load_entry_points(self) -> bool:
        """Register the ``kpiengine`` entry points once; True when this call loaded them.

        Done lazily (on an unknown function, URL scheme, renderer, notifier or sample
        writer, or for ``kpi plugins``) because reading installed distributions' metadata
        costs start-up time on every command.
        """
        if self.entry_points_loaded:
            return False
        self.entry_points_loaded = True
        from importlib import metadata

        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self._register(ep.name, ep.load):
                self._distributions[ep.name] = getattr(ep, "dist", None)
        return True

    def _register(self, name: str, load: Callable[[], Any]) -> bool:
        """Import and register one plugin; a failure is recorded, never raised. A hook
        name pluggy does not know (``kpiengine_renderer``) refuses the whole plugin:
        half a plugin would fail later, far from the typo."""
        if self.manager.has_plugin(name):
            return False
        try:
            plugin = load()
            if self.manager.is_registered(plugin):  # one module, two ways (entry point too)
                return False
            self.manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:  # a hook taking unknown arguments
            reason = " ".join(str(error).split())
            self.report(PluginFailure(name, f"failed to load: {reason}"))
            return False
        except Exception as error:
            self.report(PluginFailure(name, f"failed to load: {error!r}"))
            return False
        unknown = self._unknown_hooks(plugin)
        if unknown:
            self.manager.unregister(plugin, name=name)
            self.report(PluginFailure(name, f"failed to load: {'; '.join(unknown)}"))
            return False
        self._forget()
        return True

    def _unknown_hooks(self, plugin: Any) -> list[str]:
        """What ``pm.check_pending()`` finds, for this plugin only, with a suggestion."""
        try:
            self.manager.check_pending()
        except pluggy.PluginValidationError:
            pass
        else:
            return []
        from kpiengine.diagnostics import did_you_mean

        found = []
        for name, caller in vars(self.manager.hook).items():
            if name.startswith("_") or caller.has_spec():
                continue
            if any(impl.plugin is plugin for impl in caller.get_hookimpls()):
                hint = did_you_mean(name, sorted(_hook_names()))
                found.append(f"`{name}` is not a kpiengine hook" + (f" ({hint})" if hint else ""))
        return found

    def _forget(self) -> None:
        """Drop kept hook results: the plugins or the context changed."""
        self._results.clear()
        self._functions = None

    def plugins(self) -> list[tuple[str, Any]]:
        """(name, plugin) in registration order: built-ins first, so they win name clashes.

        ``manager.get_plugins()`` is a set, whose order changes from run to run.
        """
        return [(name, plugin) for name, plugin in self.manager.list_name_plugin() if plugin]

    def report(self, failure: PluginFailure) -> None:
        """Record a problem once and warn."""
        if failure not in self.failures:
            self.failures.append(failure)
            log.warning("plugin %s: %s", failure.name, failure.reason)

    # -- calling hooks -------------------------------------------------------------------

    def context(self, plugin: str) -> PluginContext:
        return PluginContext(plugin, self.project, dict(self.config.get(plugin) or {}))

    def results(self, name: str, plugin: Any, hook: str) -> list[Any] | PluginFailure | None:
        """What ``plugin``'s ``hook`` returned (None when it does not implement it), called
        once per host through pluggy with this plugin's context; a raised error is
        recorded and returned as a :class:`PluginFailure`."""
        caller = getattr(self.manager.hook, hook, None)
        if caller is None or not any(i.plugin is plugin for i in caller.get_hookimpls()):
            return None
        key = (name, hook)
        if key not in self._results:
            others = [p for _, p in self.plugins() if p is not plugin]
            one = self.manager.subset_hook_caller(hook, remove_plugins=others)
            spec_args = caller.spec.argnames if caller.spec else ()
            kwargs = {"context": self.context(name)} if "context" in spec_args else {}
            try:
                found: list[Any] | PluginFailure = [
                    _stamped(item, name) for result in one(**kwargs) for item in result or []
                ]
            except Exception as error:  # a plugin's bug must not take the engine down
                found = PluginFailure(name, f"{hook} raised {error!r}")
                self.report(found)
            self._results[key] = found
        return self._results[key]

    def collect(self, hook: str) -> list[Any]:
        """Every plugin's items for ``hook``, in registration order (built-ins first)."""
        items: list[Any] = []
        for name, plugin in self.plugins():
            found = self.results(name, plugin, hook)
            if isinstance(found, list):
                items.extend(found)
        return items

    # -- lookups -------------------------------------------------------------------------

    def functions(self) -> FunctionRegistry:
        """The function registry of this host's plugins, built-ins first; entry points are
        read on the first unknown name."""
        if self._functions is None:
            from kpiengine.language.functions import FunctionRegistry

            def entry_point_functions() -> list[Any]:
                return self.collect("kpiengine_functions") if self.load_entry_points() else []

            def report_clash(spec: Any, message: str) -> None:
                self.report(PluginFailure(spec.plugin, message))

            registry = FunctionRegistry(
                self.collect("kpiengine_functions"),
                more=entry_point_functions,
                on_clash=report_clash,
            )
            self._functions = registry
            return registry
        return self._functions

    def find(self, hook: str, key: Callable[[Any], str], wanted: str) -> Any | None:
        """The first item of ``hook`` whose ``key`` is ``wanted``, loading entry points
        only if the plugins already loaded do not have it."""
        found = next((i for i in self.collect(hook) if key(i) == wanted), None)
        if found is None and self.load_entry_points():
            found = next((i for i in self.collect(hook) if key(i) == wanted), None)
        return found

    def find_named(self, hook: str, name: str, what: str) -> Any:
        """The renderer, notifier... called ``name``; a usage error listing the known ones."""
        found = self.find(hook, lambda item: item.name, name)
        if found is None:
            from kpiengine.errors import UsageError

            known = ", ".join(sorted(item.name for item in self.collect(hook)))
            raise UsageError(f"unknown {what} `{name}`; installed: {known}")
        return found

    def find_connector(self, url: str) -> ConnectorSpec:
        from kpiengine.execute.connectors import find_connector, scheme_of

        scheme = scheme_of(url)
        self.find("kpiengine_connectors", lambda spec: spec.scheme, scheme)
        return find_connector(url, self.collect("kpiengine_connectors"))

    def connect(self, url: str) -> Connection:
        """Open ``url`` through the connector of this host that owns its scheme."""
        return self.find_connector(url).open(url)

    def sample_writer(self, url: str) -> Any:
        """The :class:`kpiengine.sample.write.SampleWriterSpec` for ``url``'s scheme."""
        from kpiengine.errors import UsageError

        scheme = url.partition("://")[0].lower() if "://" in url else ""
        found = self.find("kpiengine_sample_writers", lambda spec: spec.scheme, scheme)
        if found is None:
            known = ", ".join(f"{s.scheme}://" for s in self.collect("kpiengine_sample_writers"))
            raise UsageError(
                f"cannot write the sample data to `{url}`: use one of {known}, or install "
                "the plugin that writes it (PostgreSQL: `pip install ./plugins/postgres`)"
            )
        return found

    # -- kpi plugins ---------------------------------------------------------------------

    def describe(self) -> str:
        """One block per plugin: name, version, and what it adds, hook by hook."""
        self.load_entry_points()
        lines = []
        owners: dict[tuple[str, str], str] = {}  # (label, name) → the plugin that has it
        hooks = [h for h in LABELS if h in _hook_names()]
        hooks += sorted(_hook_names() - set(LABELS))
        for name, plugin in self.plugins():
            adds = []
            for hook in hooks:
                label = LABELS.get(hook, hook.removeprefix("kpiengine_"))
                found = self.results(name, plugin, hook)
                if found is None:
                    continue
                if isinstance(found, PluginFailure):
                    adds.append(f"{label}: failed ({found.reason.split(' raised ', 1)[-1]})")
                    continue
                names = []
                for item in found:
                    item_name = (
                        getattr(item, "scheme", None) or getattr(item, "name", None) or repr(item)
                    )
                    owner = owners.setdefault((label, str(item_name).lower()), name)
                    if owner != name:  # the first registered wins, as in the registries
                        item_name = f"{item_name} (ignored: clashes with {owner})"
                    names.append(item_name)
                if names:
                    adds.append(f"{label}: {', '.join(names)}")
            lines.append(f"{name} {self.version_of(name, plugin)}".rstrip())
            lines.extend(f"  {a}" for a in adds)
        loaded = {name for name, _ in self.plugins()}
        for configured in self.config:
            if configured not in loaded:
                self.report(PluginFailure(configured, "named in `plugin_config:` but not loaded"))
        if self.failures:
            lines.append("problems (the plugins above still work):")
            lines.extend(f"  {failure.name}: {failure.reason}" for failure in self.failures)
        return "\n".join(lines)

    def version_of(self, name: str, plugin: Any) -> str:
        """The version of the distribution that provides the plugin, and its name when it
        is not the plugin's: the entry point's distribution, else the one
        ``packages_distributions()`` names for the module, else the module's
        ``__version__``. A module name is not a distribution name (``kpiengine_postgres``
        comes in ``kpiengine-postgres``)."""
        from importlib import metadata

        module = getattr(plugin, "__name__", "") or type(plugin).__module__
        top = module.split(".")[0]
        if top == "kpiengine":
            from kpiengine import __version__

            return __version__
        dist = self._distributions.get(name)
        if dist is None:
            for candidate in metadata.packages_distributions().get(top, []):
                try:
                    dist = metadata.distribution(candidate)
                except metadata.PackageNotFoundError:
                    continue
                break
        if dist is None:
            return str(getattr(plugin, "__version__", ""))
        dist_name = dist.metadata["Name"]
        same = _normalized(dist_name) == _normalized(name)
        return dist.version if same else f"{dist.version} ({dist_name})"


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _hook_names() -> set[str]:
    return {n for n, v in vars(hookspecs).items() if hasattr(v, "kpiengine_spec")}


def _stamped(item: Any, plugin: str) -> Any:
    """Specs that leave ``plugin`` at its default are stamped with the plugin's name, so
    a clash names the plugins involved."""
    if (
        plugin != BUILTIN
        and dataclasses.is_dataclass(item)
        and not isinstance(item, type)
        and getattr(item, "plugin", None) == BUILTIN
    ):
        return dataclasses.replace(item, plugin=plugin)
    return item


def build_host(modules: Iterable[str] = (), entry_points: bool = True) -> PluginHost:
    """A new host with the built-ins, ``modules`` and (unless told not to) entry points."""
    return PluginHost(modules, entry_points=entry_points)


_default: list[PluginHost] = []  # created on first use; never given a project's plugins


def default_host() -> PluginHost:
    """The host of the Python API without a project (``kpiengine.connect(url)``): built-ins
    now, entry points when first needed. Loading a project never adds to it."""
    if not _default:
        _default.append(PluginHost())
    return _default[0]
