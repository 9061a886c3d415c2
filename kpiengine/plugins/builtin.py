"""Built-in plugin: registered through the same hooks as third-party plugins."""

from __future__ import annotations

from typing import Any

from kpiengine.hookspecs import hookimpl


@hookimpl
def kpiengine_functions() -> list[Any]:
    from kpiengine.language.functions import BUILTIN_FUNCTIONS

    return list(BUILTIN_FUNCTIONS)


@hookimpl
def kpiengine_connectors() -> list[Any]:
    from kpiengine.execute.duckdb_connector import DUCKDB_CONNECTORS
    from kpiengine.execute.sqlite_connector import SQLITE_CONNECTORS

    return [*DUCKDB_CONNECTORS, *SQLITE_CONNECTORS]


@hookimpl
def kpiengine_renderers() -> list[Any]:
    from kpiengine.render.renderers import BUILTIN_RENDERERS

    return list(BUILTIN_RENDERERS)


@hookimpl
def kpiengine_notifiers() -> list[Any]:
    from kpiengine.rules.notify import BUILTIN_NOTIFIERS

    return list(BUILTIN_NOTIFIERS)


@hookimpl
def kpiengine_dialects() -> list[Any]:
    from kpiengine.compile.dialects import builtin_dialects

    return builtin_dialects()


@hookimpl
def kpiengine_sample_writers() -> list[Any]:
    from kpiengine.sample.write import BUILTIN_SAMPLE_WRITERS

    return list(BUILTIN_SAMPLE_WRITERS)
