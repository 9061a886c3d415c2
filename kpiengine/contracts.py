"""The contracts a plugin implements, as typing Protocols: one place to read them.

Each hook in :mod:`kpiengine.hookspecs` returns objects of one of these shapes. They are
structural: a plugin needs no base class and no import of kpiengine to satisfy them
(``ConnectorSpec``, ``FunctionSpec``, ``DialectSpec`` are ready-made dataclasses that
do), and ``isinstance(obj, Renderer)`` works on any object, as the ``runtime_checkable``
Protocols check members by name (not their signatures: the conformance kit checks
behaviour).

Kept free of run-time imports of the stages, so that any stage may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sqlglot.dialects.dialect import Dialect as SqlglotDialect

    from kpiengine.compile.dialects import DialectRules

__all__ = [
    "Connection",
    "Connector",
    "Dialect",
    "Function",
    "Notifier",
    "Renderer",
]


@runtime_checkable
class Connection(Protocol):
    """An open, read-only connection to a warehouse: what ``Connector.open(url)`` returns.

    ``dialect`` names a registered dialect (``kpiengine_dialects``): kpiengine compiles
    for it. Every failure is a :class:`kpiengine.errors.EngineError`; writes, file access
    outside the warehouse and more than one statement are refused (docs/security.md;
    :func:`kpiengine.testing.read_only_problems` probes it).
    """

    dialect: str

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; return column names and rows. Raise EngineError on failure."""
        ...

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name → engine type name of a table, or None when it does not exist."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Connection: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Connector(Protocol):
    """What ``kpiengine_connectors`` returns (e.g. a
    :class:`kpiengine.execute.connectors.ConnectorSpec`): the URL scheme it owns, the
    dialect of its connections and ``open(url)``."""

    @property
    def scheme(self) -> str: ...

    @property
    def dialect(self) -> str: ...

    @property
    def open(self) -> Callable[[str], Connection]: ...

    @property
    def description(self) -> str: ...


@runtime_checkable
class Function(Protocol):
    """What ``kpiengine_functions`` returns (a
    :class:`kpiengine.language.functions.FunctionSpec`): a signature the checker reads and
    ``sql(args, dialect)``, called with compiled sqlglot arguments and the registered
    dialect's name (a plugin's dialect too, e.g. ``"clickhouse"``)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def params(self) -> tuple[str, ...]: ...

    @property
    def returns(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def sql(self) -> Callable[[Sequence[Any], str], Any] | None: ...


@runtime_checkable
class Dialect(Protocol):
    """What ``kpiengine_dialects`` returns (a
    :class:`kpiengine.compile.dialects.DialectSpec`): a name, the sqlglot dialect its SQL
    is printed in, its rules, and its engine's type names for ``kpi validate``."""

    @property
    def name(self) -> str: ...

    @property
    def sqlglot_dialect(self) -> str | type[SqlglotDialect]: ...

    @property
    def type_names(self) -> Mapping[str, str]: ...

    @property
    def unwrap(self) -> tuple[str, ...]: ...

    def make_rules(self) -> DialectRules: ...


@runtime_checkable
class Renderer(Protocol):
    """What ``kpiengine_renderers`` returns: ``kpi report --renderer NAME`` writes
    ``render(report, template)`` (a :class:`kpiengine.render.report_data.ReportData`) to a file
    whose default suffix is ``suffix``."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str: ...

    def render(self, report: Any, template: Path | None = None) -> Any: ...


@runtime_checkable
class Notifier(Protocol):
    """What ``kpiengine_notifiers`` returns: ``notify(alerts, options)`` delivers the
    alerts of ``kpi check --notify NAME``; it raises
    :class:`kpiengine.rules.notify.NotifierError` when delivery fails."""

    @property
    def name(self) -> str: ...

    def notify(self, alerts: Sequence[Any], options: Mapping[str, Any]) -> None: ...
