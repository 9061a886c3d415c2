"""The hooks a kpiengine plugin implements (pluggy project name ``kpiengine``).

Each hook returns a list of the things the plugin adds; the lists of all plugins are
concatenated, built-ins first. The built-in connectors, functions, renderers, notifiers
and sample writers are registered through these same hooks (``kpiengine.plugins.builtin``).
A plugin is found through the ``kpiengine`` entry-point group, a ``plugins:`` list in the
project file, or ``--plugin module.path`` on the command line.

Every hook may take one argument, ``context``
(:class:`kpiengine.plugins.manager.PluginContext`: the project, and this plugin's section
of the project file's ``plugin_config:``), or none. Each hook of each plugin is called at
most once per plugin host (one per loaded project or CLI command), the first time what it
adds is needed; a misspelled hook name (``kpiengine_renderer``) keeps the plugin from
loading, with a message naming the hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from kpiengine.compile.dialects import DialectSpec
    from kpiengine.execute.connectors import ConnectorSpec
    from kpiengine.language.functions import FunctionSpec
    from kpiengine.plugins.manager import PluginContext
    from kpiengine.sample.write import SampleWriterSpec

hookspec = pluggy.HookspecMarker("kpiengine")
hookimpl = pluggy.HookimplMarker("kpiengine")


@hookspec
def kpiengine_connectors(context: PluginContext) -> list[ConnectorSpec]:
    """Connectors this plugin adds.

    Called the first time a connector URL is opened through the host (``--connector``,
    ``connector:``, ``kpiengine.connect(url)``), and by ``kpi plugins``. Return
    ``ConnectorSpec(scheme="mydb", dialect="postgres", open=open_mydb)`` objects;
    ``open(url)`` returns an object with ``dialect``, ``execute(sql)``,
    ``columns(table)`` and ``close()`` (see :class:`kpiengine.execute.connectors.Connector`).

    Example::

        @hookimpl
        def kpiengine_connectors():
            return [ConnectorSpec("mydb", "postgres", MyDbConnector.open)]
    """


@hookspec
def kpiengine_functions(context: PluginContext) -> list[FunctionSpec]:
    """Expression functions this plugin adds (row or aggregate).

    Called when the project is loaded (its function registry is built before any
    definition is checked), and by ``kpi plugins``. Return
    :class:`kpiengine.language.functions.FunctionSpec` objects; a name that clashes with
    another plugin's function is reported and the plugin's function is ignored.

    Example::

        @hookimpl
        def kpiengine_functions():
            return [FunctionSpec("double", "row", ("number",), "number", "x * 2",
                                 sql=lambda args, dialect: args[0] * 2)]
    """


@hookspec
def kpiengine_renderers(context: PluginContext) -> list[object]:
    """Report renderers this plugin adds (``kpi report --renderer NAME``).

    Called when ``kpi report`` looks up a renderer, and by ``kpi plugins``. Returns objects
    with ``name`` (the ``--renderer`` value), ``suffix`` (e.g. ``".pdf"``) and
    ``render(report, template=None) -> str | bytes``, where ``report`` is a
    :class:`kpiengine.render.report_data.ReportData` and ``template`` the ``--template`` path,
    if any; an optional ``content_type`` (e.g. ``"application/pdf"``) says what the bytes
    are. ``kpi report`` warns when ``-o``'s suffix is not the renderer's ``suffix``.
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
def kpiengine_notifiers(context: PluginContext) -> list[object]:
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


@hookspec
def kpiengine_dialects(context: PluginContext) -> list[DialectSpec]:
    """SQL dialects this plugin adds (``kpi compile --dialect NAME``, a connection's
    ``dialect``).

    Called whenever a dialect is looked up: when a statement is compiled, by ``kpi
    compile --dialect``, the conformance kit and ``kpi plugins``. Return
    :class:`kpiengine.compile.dialects.DialectSpec` objects: the dialect's name, the
    sqlglot dialect its SQL is printed in, its
    :class:`~kpiengine.compile.dialects.DialectRules` subclass (rewrites where sqlglot's
    rendering is not valid or not equivalent on the engine) and the engine's type names
    for ``kpi validate --connector``. A name already registered (the built-ins come
    first) is reported and ignored.

    Example::

        class ClickHouseRules(DialectRules):
            REWRITES = {exp.Avg: lambda node: exp.Avg(this=as_double(node.this))}

        @hookimpl
        def kpiengine_dialects():
            return [DialectSpec("clickhouse", sqlglot="clickhouse", rules=ClickHouseRules,
                                unwrap=("nullable", "lowcardinality"))]
    """


@hookspec
def kpiengine_sample_writers(context: PluginContext) -> list[SampleWriterSpec]:
    """Writers of the sample dataset this plugin adds (``kpi sample-data --to SCHEME://``).

    Called when ``kpi sample-data`` (:func:`kpiengine.sample.write_sample`) looks up the
    writer of its URL's scheme, and by ``kpi plugins``. Return
    :class:`kpiengine.sample.write.SampleWriterSpec` objects: a URL scheme and
    ``open(url, replace) -> Writer``, where the writer receives each table as a stream of
    Arrow batches (``write_table(table, schema, batches)``) and then ``commit()`` or
    ``abort()`` (:class:`kpiengine.sample.write.Writer`); it refuses, when opened, to
    overwrite an existing sample table unless ``replace``. Built-in: ``duckdb``,
    ``sqlite``, ``files``; the PostgreSQL plugin adds ``postgresql``/``postgres``.

    Example::

        class JsonLinesWriter:
            def __init__(self, url, replace):
                self.folder = Path(path_of(url))

            def write_table(self, table, schema, batches):
                with open(self.folder / f"{table}.jsonl", "w") as out:
                    for batch in batches:
                        out.writelines(json.dumps(row, default=str) + "\\n"
                                       for row in batch.to_pylist())

            def commit(self): ...

            def abort(self): ...

        @hookimpl
        def kpiengine_sample_writers():
            return [SampleWriterSpec("jsonl", JsonLinesWriter)]
    """
