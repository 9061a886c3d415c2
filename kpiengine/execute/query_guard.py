"""Refuse, before it is sent, any statement that is not one plain read-only query.

Connectors whose engine cannot be opened truly read-only (a server where the role decides,
an embedded engine whose read-only mode still writes files) parse every statement with
sqlglot in the engine's dialect first. A statement passes only if it is exactly one
query (SELECT, UNION/INTERSECT/EXCEPT, VALUES where allowed) with:

- no data-modifying part (``WITH x AS (DELETE ...)``, ``INSERT``, ``COPY``, DDL, ``SET``),
- no ``SELECT ... INTO`` (a table, a variable or a server file),
- no locking clause (``FOR UPDATE`` / ``FOR SHARE`` / ``LOCK IN SHARE MODE``),
- no call to a function the connector denies (files, locks, settings, SQL in a string),
- nothing the connector's own ``extra`` check refuses.

This is defence in depth: the guarantee of a server engine is its role (docs/security.md).
Plugins share this one guard (PostgreSQL, MySQL/MariaDB, ClickHouse), so a fix here
reaches every engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kpiengine.errors import EngineError


@dataclass(frozen=True)
class QueryGuard:
    """One engine's read-only query check: ``check(sql)`` raises or returns the tree."""

    #: The engine's name as messages show it (``PostgreSQL``).
    engine: str
    #: sqlglot dialect to parse with.
    dialect: str
    denied_functions: frozenset[str] = frozenset()
    #: Function name prefixes denied as a family (``pg_read_``).
    denied_prefixes: tuple[str, ...] = ()
    #: Whether a bare ``VALUES`` list is a query on this engine.
    allow_values: bool = True
    #: A further per-node check; returns why the node is refused, or None.
    extra: Callable[[Any], str | None] | None = None

    def check(self, sql: str) -> Any:
        """The one checked query tree; EngineError unless ``sql`` is one read-only query."""
        import sqlglot
        from sqlglot import exp

        try:
            with quiet_sqlglot():
                statements = [s for s in sqlglot.parse(sql, read=self.dialect) if s is not None]
        except sqlglot.errors.SqlglotError as error:
            raise self.refused(
                f"the statement could not be checked ({first_line(error)})"
            ) from None
        if len(statements) != 1:
            raise self.refused(f"one query per call, got {len(statements)} statements")
        tree = statements[0]
        queries: tuple[type, ...] = (exp.Query, exp.Values) if self.allow_values else (exp.Query,)
        if not isinstance(tree, queries):
            raise self.refused(f"only queries may run, not {_kind(tree)}")
        for node in tree.walk():
            problem = self._problem(node) or (self.extra(node) if self.extra else None)
            if problem:
                raise self.refused(problem)
        return tree

    def refused(self, why: str) -> EngineError:
        return EngineError(f"{self.engine}: refused, kpiengine only reads: {why}")

    def _problem(self, node: Any) -> str | None:
        from sqlglot import exp

        if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Copy):
            return f"a query may not contain {_kind(node)}"
        if isinstance(node, exp.Command | exp.Set | exp.Create | exp.Drop | exp.Alter):
            return f"a query may not contain {_kind(node)}"
        if isinstance(node, exp.Into):
            return "SELECT ... INTO writes (a table, a variable or a file)"
        if isinstance(node, exp.Lock):
            return "a locking clause (FOR UPDATE / FOR SHARE) is not a plain read"
        if isinstance(node, exp.Func):
            name = function_name(node)
            if name in self.denied_functions or name.startswith(self.denied_prefixes):
                return f"function {name}() is not allowed (it reaches outside the tables)"
        return None


def function_name(node: Any) -> str:
    """A function call's name as written (``Anonymous`` and parameterized ones included)."""
    if isinstance(node.args.get("this"), str):
        return str(node.name).lower()
    return str(node.sql_name()).lower()


def _kind(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return f"{str(node.this).split()[0].upper()} statements"
    return f"{type(node).__name__.upper()} statements"


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning (on stderr) when it falls back to a Command; the refusal
    says it instead."""
    logger = logging.getLogger("sqlglot")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before
