"""The hooks a kpiengine plugin implements (pluggy project name ``kpiengine``).

Every hook is called once per process when the plugin manager is built and returns a
list of the things the plugin adds; results of all plugins are concatenated. Built-in
connectors and functions are registered through these same hooks (``kpiengine.plugins.builtin``).
A plugin is found through the ``kpiengine`` entry-point group, a ``plugins:`` list in the
project file, or ``--plugin module.path`` on the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kpiengine.execute.connectors import ConnectorSpec
    from kpiengine.language.functions import FunctionSpec

hookspec = pluggy.HookspecMarker("kpiengine")
hookimpl = pluggy.HookimplMarker("kpiengine")


@hookspec
def kpiengine_connectors() -> list[ConnectorSpec]:
    """Connectors this plugin adds.

    Called when a connector URL is opened or ``kpi plugins`` lists plugins. Return
    ``ConnectorSpec(scheme="mydb", dialect="postgres", open=open_mydb)`` objects;
    ``open(url)`` returns an object with ``dialect``, ``execute(sql)``,
    ``columns(table)`` and ``close()`` (see :class:`kpiengine.execute.connectors.Connector`).

    Example::

        @hookimpl
        def kpiengine_connectors():
            return [ConnectorSpec("mydb", "postgres", MyDbConnector.open)]
    """


@hookspec
def kpiengine_functions() -> list[FunctionSpec]:
    """Expression functions this plugin adds (row or aggregate).

    Called once when the function registry is built, before any definition is checked.
    Return :class:`kpiengine.language.functions.FunctionSpec` objects; a name that clashes with
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

    Called when ``kpi report`` looks up a renderer, and by ``kpi plugins``. Returns objects
    with ``name`` (the ``--renderer`` value), ``suffix`` (e.g. ``".pdf"``) and
    ``render(report, template=None) -> str``, where ``report`` is a
    :class:`kpiengine.render.report_data.Report` and ``template`` the ``--template`` path, if any.
    Built-in: ``html``, ``markdown``, ``json``, ``csv`` (:mod:`kpiengine.render.renderers`).

    Example::

        @dataclass(frozen=True)
        class SlackText:
            name: str = "slack"
            suffix: str = ".txt"

            def render(self, report, template=None):
                return "\n".join(f"*{c.title}*: {c.series[0].latest}" for c in report.cards)

        @hookimpl
        def kpiengine_renderers():
            return [SlackText()]
    """


@hookspec
def kpiengine_notifiers() -> list[object]:
    """Alert notifiers this plugin adds (``kpi check --notify NAME[=TARGET]``).

    Called when ``kpi check`` looks up the notifiers it was asked for, and by ``kpi
    plugins``. Returns objects with ``name`` and ``notify(alerts, options) -> None``, where
    ``alerts`` are :class:`kpiengine.rules.evaluate.Alert` (``to_dict()`` gives JSON) and
    ``options`` holds ``target`` (the part after ``=``), ``project`` and every
    ``--notify-option KEY=VALUE``. Raise :class:`kpiengine.rules.notify.NotifierError` when
    delivery fails: ``kpi check`` reports it and exits 3. Built-in: ``console``,
    ``jsonl``, ``webhook`` (:mod:`kpiengine.rules.notify`).

    Example::

        @dataclass(frozen=True)
        class Pager:
            name: str = "pager"

            def notify(self, alerts, options):
                for alert in alerts:
                    if alert.severity == "critical":
                        page_someone(options["target"], alert.message)

        @hookimpl
        def kpiengine_notifiers():
            return [Pager()]
    """
