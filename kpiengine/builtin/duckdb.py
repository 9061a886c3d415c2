"""DuckDB connectors: an embedded file (read-only), in memory, or a folder of CSV/Parquet files."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from kpiengine.connectors import ClosingConnection, ConnectorSpec, path_of
from kpiengine.errors import EngineError

FILE_SUFFIXES = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DuckDBConnection(ClosingConnection):
    dialect = "duckdb"

    def __init__(self, connection: Any, queries_only: bool = False) -> None:
        self._connection = connection
        # an in-memory database over files cannot be opened read-only: refuse anything
        # but a query instead (DuckDB's own parser says what the statement is)
        self._queries_only = queries_only

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        import duckdb

        try:
            if self._queries_only:
                for statement in self._connection.extract_statements(sql):
                    if statement.type != duckdb.StatementType.SELECT:
                        raise EngineError(
                            f"read-only connection: only queries may run, not "
                            f"{statement.type.name.lower()} statements"
                        )
            cursor = self._connection.execute(sql)
            rows = cursor.fetchall()
        except duckdb.Error as error:
            raise EngineError(f"DuckDB: {error}") from error
        return [d[0] for d in cursor.description or []], rows

    def columns(self, table: str) -> dict[str, str] | None:
        schema, _, name = table.rpartition(".")
        query = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND (? = '' OR table_schema = ?) ORDER BY ordinal_position"
        )
        rows = self._connection.execute(query, [name, schema, schema]).fetchall()
        return {column: kind for column, kind in rows} or None

    def close(self) -> None:
        self._connection.close()


#: DuckDB's buffer pool defaults to 80 % of RAM; a KPI run needs far less (SPEC §12 asks
#: for < 1.5 GB over 10M rows): it spills to the temp folder past this, and is not slower.
DEFAULT_MEMORY_LIMIT = "1GB"


def _config(url: str) -> dict[str, str]:
    """``?memory_limit=4GB`` in the URL overrides the default; spills go to the system temp
    folder (the database itself is opened read-only)."""
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url).query)
    limit = query.get("memory_limit", [DEFAULT_MEMORY_LIMIT])[0]
    spill = Path(tempfile.gettempdir()) / "kpiengine-duckdb-spill"
    return {"memory_limit": limit, "temp_directory": str(spill)}


def open_duckdb(url: str) -> DuckDBConnection:
    import duckdb

    path = path_of(url)
    if not path or path == ":memory:":
        try:
            return DuckDBConnection(duckdb.connect(":memory:", config=_config(url)))
        except duckdb.Error as error:
            raise EngineError(f"cannot open {url}: {error}") from error
    if not Path(path).exists():
        raise EngineError(f"DuckDB database `{path}` does not exist (from {url})")
    try:
        return DuckDBConnection(duckdb.connect(path, read_only=True, config=_config(url)))
    except duckdb.Error as error:
        raise EngineError(f"cannot open DuckDB database `{path}`: {error}") from error


def open_files(url: str) -> DuckDBConnection:
    """Every CSV/Parquet file in the folder becomes a view named after the file."""
    import duckdb

    folder = Path(path_of(url))
    if not folder.is_dir():
        raise EngineError(f"`{folder}` is not a folder of CSV/Parquet files (from {url})")
    try:
        connection = duckdb.connect(":memory:", config=_config(url))
    except duckdb.Error as error:
        raise EngineError(f"cannot open {url}: {error}") from error
    for file in sorted(folder.iterdir()):
        reader = FILE_SUFFIXES.get(file.suffix.lower())
        if reader is None or not _IDENTIFIER.match(file.stem):
            continue
        # The path is passed as a bound parameter value, never pasted into SQL.
        relation = getattr(connection, reader)(str(file))
        relation.create_view(file.stem)
    return DuckDBConnection(connection, queries_only=True)


DUCKDB_CONNECTORS = (
    ConnectorSpec("duckdb", "duckdb", open_duckdb, "DuckDB database file (read-only) or memory"),
    ConnectorSpec("files", "duckdb", open_files, "Folder of CSV/Parquet files, read by DuckDB"),
)
