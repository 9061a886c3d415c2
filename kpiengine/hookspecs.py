"""The hooks a kpiengine plugin implements (pluggy project name ``kpiengine``).

Every hook is called once per process when the plugin manager is built and returns a
list of the things the plugin adds; results of all plugins are concatenated. Built-in
connectors and functions are registered through these same hooks (``kpiengine.builtin``).
A plugin is found through the ``kpiengine`` entry-point group, a ``plugins:`` list in the
project file, or ``--plugin module.path`` on the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kpiengine.connectors import ConnectorSpec
    from kpiengine.functions import FunctionSpec

hookspec = pluggy.HookspecMarker("kpiengine")
hookimpl = pluggy.HookimplMarker("kpiengine")


@hookspec
def kpiengine_connectors() -> list[ConnectorSpec]:
    """Connectors this plugin adds.

    Called when a connector URL is opened or ``kpi plugins`` lists plugins. Return
    ``ConnectorSpec(scheme="mydb", dialect="postgres", open=open_mydb)`` objects;
    ``open(url)`` returns an object with ``dialect``, ``execute(sql)``,
    ``columns(table)`` and ``close()`` (see :class:`kpiengine.connectors.Connector`).

    Example::

        @hookimpl
        def kpiengine_connectors():
            return [ConnectorSpec("mydb", "postgres", MyDbConnector.open)]
    """


@hookspec
def kpiengine_functions() -> list[FunctionSpec]:
    """Expression functions this plugin adds (row or aggregate).

    Called once when the function registry is built, before any definition is checked.
    Return :class:`kpiengine.functions.FunctionSpec` objects; a name that clashes with
    another plugin's function is reported and the plugin's function is ignored.

    Example::

        @hookimpl
        def kpiengine_functions():
            return [FunctionSpec("double", "row", ("number",), "number", "x * 2",
                                 sql=lambda args, dialect: args[0] * 2)]
    """


@hookspec
def kpiengine_renderers() -> list[object]:
    """Report renderers this plugin adds (``kpi report --renderer NAME``).

    Called when a report is rendered or plugins are listed. Each renderer has a ``name``
    and ``render(result, template=None) -> str``.
    """


@hookspec
def kpiengine_notifiers() -> list[object]:
    """Alert notifiers this plugin adds (``kpi check``).

    Called when ``kpi check`` has alerts to send. Each notifier has a ``name`` and
    ``notify(alerts, options) -> None``.
    """
