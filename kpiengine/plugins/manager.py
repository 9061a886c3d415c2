"""The plugin manager: built-ins, entry points, project plugins, ``--plugin`` modules.

Each plugin is loaded on its own; one that fails to import or whose hook raises is
recorded with the reason (shown by ``kpi plugins`` and as a warning) and the rest keep
working, as sqlfluff does.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from kpiengine import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kpiengine"


@dataclass
class PluginFailure:
    name: str
    reason: str


@dataclass
class PluginHost:
    manager: pluggy.PluginManager
    failures: list[PluginFailure] = field(default_factory=list)
    entry_points_loaded: bool = False

    def load_entry_points(self) -> bool:
        """Register the ``kpiengine`` entry points once; True when this call loaded them.

        Done lazily (on an unknown function or URL scheme, or for ``kpi plugins``) because
        reading installed distributions' metadata costs start-up time on every command.
        """
        if self.entry_points_loaded:
            return False
        self.entry_points_loaded = True
        from importlib import metadata

        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            _register(self, ep.name, ep.load)
        return True

    def plugins(self) -> list[tuple[str, Any]]:
        """(name, plugin) in registration order: built-ins first, so they win name clashes.

        ``manager.get_plugins()`` is a set, whose order changes from run to run.
        """
        return [(name, plugin) for name, plugin in self.manager.list_name_plugin() if plugin]

    def report(self, failure: PluginFailure) -> None:
        """Record a problem once (hooks are called again on every lookup) and warn."""
        if failure not in self.failures:
            self.failures.append(failure)
            log.warning("plugin %s: %s", failure.name, failure.reason)

    def collect(self, hook_name: str) -> list[Any]:
        """Call one hook on every plugin separately, so one broken plugin is isolated.

        Specs that leave ``plugin`` at its default are stamped with the plugin's name, so
        a clash names the plugins involved.
        """
        items: list[Any] = []
        for name, plugin in self.plugins():
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            try:
                found = list(impl() or [])
            except Exception as error:  # a plugin's bug must not take the engine down
                self.report(PluginFailure(name, f"{hook_name} raised {error!r}"))
                continue
            items.extend(_stamped(item, name) for item in found)
        return items


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("kpiengine")
    manager.add_hookspecs(hookspecs)
    from kpiengine.plugins import builtin

    manager.register(builtin, name="builtin")
    return manager


def build_host(modules: Iterable[str] = (), entry_points: bool = True) -> PluginHost:
    host = PluginHost(_new_manager())
    if entry_points:
        host.load_entry_points()
    for module in modules:
        _register(host, module, lambda module=module: importlib.import_module(module))
    return host


def _register(host: PluginHost, name: str, load: Any) -> None:
    if host.manager.has_plugin(name):
        return
    try:
        host.manager.register(load(), name=name)
    except Exception as error:
        host.report(PluginFailure(name, f"failed to load: {error!r}"))


def _stamped(item: Any, plugin: str) -> Any:
    if (
        plugin != "builtin"
        and dataclasses.is_dataclass(item)
        and not isinstance(item, type)
        and getattr(item, "plugin", None) == "builtin"
    ):
        return dataclasses.replace(item, plugin=plugin)
    return item


_host: PluginHost | None = None


def default_host() -> PluginHost:
    """The process-wide host: built-ins now, entry points when first needed."""
    global _host
    if _host is None:
        _host = build_host(entry_points=False)
    return _host


def add_plugin_modules(modules: Iterable[str]) -> None:
    """Register project or ``--plugin`` modules on the process-wide host."""
    host = default_host()
    for module in modules:
        _register(host, module, lambda module=module: importlib.import_module(module))
    from kpiengine.language import functions

    functions.reset_default_registry()


def plugin_functions() -> list[Any]:
    return default_host().collect("kpiengine_functions")


def plugin_connectors() -> list[Any]:
    return default_host().collect("kpiengine_connectors")


def describe_plugins() -> str:
    """One block per plugin: name, version, and the connectors/functions/renderers it adds."""
    host = default_host()
    host.load_entry_points()
    lines = []
    owners: dict[tuple[str, str], str] = {}  # (label, name) → the plugin that has it
    for name, plugin in host.plugins():
        version = _version_of(plugin)
        adds = []
        for hook, label in (
            ("kpiengine_connectors", "connectors"),
            ("kpiengine_functions", "functions"),
            ("kpiengine_renderers", "renderers"),
            ("kpiengine_notifiers", "notifiers"),
        ):
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            try:
                items = impl() or []
            except Exception as error:
                host.report(PluginFailure(name, f"{hook} raised {error!r}"))
                adds.append(f"{label}: failed ({error!r})")
                continue
            names = []
            for item in items:
                item_name = (
                    getattr(item, "scheme", None) or getattr(item, "name", None) or repr(item)
                )
                owner = owners.setdefault((label, str(item_name).lower()), name)
                if owner != name:  # the first registered wins, as in the registries
                    item_name = f"{item_name} (ignored: clashes with {owner})"
                names.append(item_name)
            if names:
                adds.append(f"{label}: {', '.join(names)}")
        lines.append(f"{name} {version}".rstrip())
        lines.extend(f"  {a}" for a in adds)
    if host.failures:
        lines.append("problems (the plugins above still work):")
        lines.extend(f"  {failure.name}: {failure.reason}" for failure in host.failures)
    return "\n".join(lines)


def _version_of(plugin: Any) -> str:
    module = getattr(plugin, "__name__", "") or type(plugin).__module__
    top = module.split(".")[0]
    from importlib import metadata

    if top == "kpiengine":
        from kpiengine import __version__

        return __version__
    try:
        return metadata.version(top)
    except metadata.PackageNotFoundError:
        return getattr(plugin, "__version__", "")


def find_named(hook: str, name: str, what: str) -> Any:
    """The object called ``name`` among what ``hook`` returns (renderers, notifiers...),
    loading entry-point plugins only if the loaded ones do not have it."""
    host = default_host()
    found = next((item for item in host.collect(hook) if item.name == name), None)
    if found is None and host.load_entry_points():
        found = next((item for item in host.collect(hook) if item.name == name), None)
    if found is None:
        from kpiengine.errors import UsageError

        known = ", ".join(sorted(item.name for item in host.collect(hook)))
        raise UsageError(f"unknown {what} `{name}`; installed: {known}")
    return found
