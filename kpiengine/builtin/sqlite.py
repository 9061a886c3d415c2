"""SQLite connector (stdlib ``sqlite3``), opened read-only through a ``mode=ro`` URI.

SQLite has no continuous percentile, so the connection registers one
(``kpi_percentile_cont(x, p)``, interpolating like PERCENTILE_CONT); the SQLite dialect
rules render ``median``/``percentile`` with it.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kpiengine.connectors import ClosingConnection, ConnectorSpec, path_of
from kpiengine.errors import EngineError

PERCENTILE_FUNCTION = "kpi_percentile_cont"


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

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        try:
            cursor = self._connection.execute(sql)
            rows = cursor.fetchall()
        except sqlite3.Error as error:
            raise EngineError(f"SQLite: {error}") from error
        return [d[0] for d in cursor.description or []], rows

    def columns(self, table: str) -> dict[str, str] | None:
        name = table.rpartition(".")[2]
        rows = self._connection.execute(
            "SELECT name, type FROM pragma_table_info(?)", (name,)
        ).fetchall()
        return {column: kind for column, kind in rows} or None

    def close(self) -> None:
        self._connection.close()


def open_sqlite(url: str) -> SQLiteConnection:
    path = path_of(url)
    if not path or path == ":memory:":
        return SQLiteConnection(sqlite3.connect(":memory:"))
    if not Path(path).exists():
        raise EngineError(f"SQLite database `{path}` does not exist (from {url})")
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        return SQLiteConnection(sqlite3.connect(uri, uri=True))
    except sqlite3.Error as error:
        raise EngineError(f"cannot open SQLite database `{path}`: {error}") from error


SQLITE_CONNECTORS = (
    ConnectorSpec("sqlite", "sqlite", open_sqlite, "SQLite database file (read-only)"),
)
