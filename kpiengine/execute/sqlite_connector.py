"""SQLite connector (stdlib ``sqlite3``), opened read-only through a ``mode=ro`` URI.

``mode=ro`` alone still lets a statement ``ATTACH`` another file and write there, or
``VACUUM INTO`` a copy anywhere. Every connection (file or ``:memory:``) therefore has an
authorizer that allows reads only (SELECT, reading columns, functions but a few, recursive
CTEs) and denies everything else the moment the statement is prepared: ATTACH (also
VACUUM INTO's), DETACH, PRAGMA, CREATE/DROP/ALTER, INSERT/UPDATE/DELETE, transactions,
ANALYZE. The text must also start with SELECT, WITH or VALUES, and hold one statement
(sqlite3 refuses a second one).

SQLite has no continuous percentile, so the connection registers one
(``kpi_percentile_cont(x, p)``, interpolating like PERCENTILE_CONT); the SQLite dialect
rules render ``median``/``percentile`` with it.
"""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kpiengine.errors import EngineError
from kpiengine.execute.connectors import ClosingConnection, ConnectorSpec, path_of, redact_url

PERCENTILE_FUNCTION = "kpi_percentile_cont"

#: What a query needs; every other authorizer action is denied.
_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
#: Functions that reach outside the database (or load code) when a build has them.
DENIED_FUNCTIONS = frozenset(
    {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit", "zipfile"}
)
#: Leading blanks and comments (SQLite's comments do not nest), then the first keyword.
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?(?:\*/|\Z))*(\w*)", re.DOTALL)
_QUERY_WORDS = frozenset({"select", "with", "values"})


def _authorize(action: int, first: str | None, second: str | None, *_: object) -> int:
    """sqlite3's authorizer: reads pass, anything else is refused while preparing."""
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (second or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _check_query(sql: str) -> None:
    """A query starts with SELECT, WITH or VALUES; the authorizer refuses a WITH that
    goes on to write."""
    match = _FIRST_WORD.match(sql)
    word = match.group(1).lower() if match else ""
    if word not in _QUERY_WORDS:
        raise EngineError(
            f"SQLite: read-only connection: only queries may run, not `{word or sql[:20]}`"
        )


class _PercentileCont:
    """Aggregate: continuous percentile of the non-null values (linear interpolation)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction: float | None = None

    def step(self, value: Any, fraction: Any) -> None:
        if fraction is not None:
            self.fraction = float(fraction)
        if value is not None:
            self.values.append(float(value))

    def finalize(self) -> float | None:
        if not self.values or self.fraction is None:
            return None
        ordered = sorted(self.values)
        position = self.fraction * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class SQLiteConnection(ClosingConnection):
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        connection.create_aggregate(PERCENTILE_FUNCTION, 2, _PercentileCont)  # type: ignore[arg-type]
        connection.set_authorizer(_authorize)

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        _check_query(sql)
        try:
            cursor = self._connection.execute(sql)
            rows = cursor.fetchall()
        except sqlite3.Error as error:
            denied = "not authorized" in str(error) or "authorization denied" in str(error)
            hint = " (read-only connection: only queries may run)" if denied else ""
            raise EngineError(f"SQLite: {error}{hint}") from error
        except (OverflowError, ValueError) as error:  # e.g. an integer sqlite3 cannot bind
            raise EngineError(f"SQLite: {error}") from error
        return [d[0] for d in cursor.description or []], rows

    def columns(self, table: str) -> dict[str, str] | None:
        """Our own fixed, parameterised query: table-valued pragmas need the authorizer
        off (SQLite checks them as a schema write), so it is lifted for this one call."""
        name = table.rpartition(".")[2]
        self._connection.set_authorizer(None)
        try:
            rows = self._connection.execute(
                "SELECT name, type FROM pragma_table_info(?)", (name,)
            ).fetchall()
        finally:
            self._connection.set_authorizer(_authorize)
        return {column: kind for column, kind in rows} or None

    def close(self) -> None:
        self._connection.close()

    def interrupt(self) -> None:
        """Stop the statement running now (Ctrl-C); safe to call from another thread."""
        self._connection.interrupt()


def open_sqlite(url: str) -> SQLiteConnection:
    path = path_of(url)
    if not path or path == ":memory:":
        return SQLiteConnection(sqlite3.connect(":memory:"))
    if not Path(path).exists():
        raise EngineError(f"SQLite database `{path}` does not exist (from {redact_url(url)})")
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        return SQLiteConnection(sqlite3.connect(uri, uri=True))
    except sqlite3.Error as error:
        raise EngineError(f"cannot open SQLite database `{path}`: {error}") from error


SQLITE_CONNECTORS = (
    ConnectorSpec("sqlite", "sqlite", open_sqlite, "SQLite database file (read-only)"),
)
