"""DuckDB connectors: an embedded file (read-only), in memory, or a folder of CSV/Parquet files.

Every connection is locked down the same way (SPEC §5, docs/security.md): it runs exactly
one statement per call, and only a query (DuckDB's own parser says what the statement is);
external access is off (no file, URL, glob, ``COPY``, ``ATTACH``, ``EXPORT``, replacement
scan of a path such as ``FROM '/etc/passwd'``), extensions are neither installed nor loaded
on demand, and the configuration is locked so that no statement can turn any of it back on.
A ``files://`` connection may read exactly the files its views were made from
(``allowed_paths``), nothing else.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kpiengine.errors import EngineError
from kpiengine.execute.connectors import ClosingConnection, ConnectorSpec, path_of, redact_url

FILE_SUFFIXES = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
log = logging.getLogger(__name__)

#: Set on every connection before any user statement runs; ``lock_configuration`` last.
LOCKED_SETTINGS: tuple[tuple[str, bool], ...] = (
    ("enable_external_access", False),
    ("autoinstall_known_extensions", False),
    ("autoload_known_extensions", False),
    ("lock_configuration", True),
)


class DuckDBConnection(ClosingConnection):
    """One DuckDB connection that only ever runs single queries."""

    dialect = "duckdb"

    def __init__(self, connection: Any, reopen: Callable[[str | None], Any] | None = None) -> None:
        self._connection = connection
        #: opens the same data again with another memory limit (None: DuckDB's own), for
        #: a statement that ran out of memory under kpiengine's default; None: no retry
        #: (e.g. the URL chose the limit)
        self._reopen = reopen
        self._limit: str | None = DEFAULT_MEMORY_LIMIT
        self._wider = list(WIDER_LIMITS)

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        import duckdb

        while True:
            try:
                return self._query(sql)
            except duckdb.OutOfMemoryException as error:
                if self._reopen is None or not self._wider:
                    hint = "; give it more with ?memory_limit= in the connector URL"
                    raise EngineError(f"DuckDB: {error}{hint}") from error
            except duckdb.Error as error:
                raise EngineError(f"DuckDB: {error}") from error
            try:
                self._widen()
            except duckdb.Error as error:
                raise EngineError(f"DuckDB: {error}") from error

    def _query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        _check_one_query(self._connection, sql)
        cursor = self._connection.execute(sql)
        rows = cursor.fetchall()
        return [d[0] for d in cursor.description or []], rows

    def _widen(self) -> None:
        """Reopen with the next wider limit (the configuration is locked, so the limit
        cannot be raised on this connection): a statement DuckDB cannot run in the
        default pool (the catalog over 50M rows) still runs, in as little as it can."""
        assert self._reopen is not None
        limit = self._wider.pop(0)
        log.warning(
            "DuckDB needed more memory than %s for this statement: running it again with "
            "%s; choose a limit with ?memory_limit= in the connector URL",
            self._limit,
            limit or "DuckDB's own limit (80 % of RAM)",
        )
        self._connection.close()
        self._connection = self._reopen(limit)
        self._limit = limit

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

    def interrupt(self) -> None:
        """Stop the statement running now (Ctrl-C); safe to call from another thread."""
        self._connection.interrupt()


def _check_one_query(connection: Any, sql: str) -> None:
    """Refuse, before it runs, a text that is not exactly one query: DuckDB's parser says
    what each statement is, so ``COPY``, ``ATTACH``, ``SET``, ``CALL``, ``EXPORT``, DDL
    and DML never reach the engine, and no second statement can follow a query."""
    import duckdb

    statements = connection.extract_statements(sql)
    if len(statements) != 1:
        raise EngineError(
            f"DuckDB: read-only connection: one query per call, got {len(statements)} statements"
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise EngineError(
            f"DuckDB: read-only connection: only queries may run, not "
            f"{kind.name.lower()} statements"
        )


def _lock(connection: Any) -> None:
    """Turn off external access and extension auto-loading, then lock the configuration.

    These settings belong to the database instance, which DuckDB shares between the
    connections of a process to the same file: a second connection finds them already
    set and locked, and only checks them."""
    names = [name for name, _ in LOCKED_SETTINGS]
    current = dict(
        connection.execute(
            "SELECT name, lower(value) FROM duckdb_settings() WHERE list_contains(?, name)",
            [names],
        ).fetchall()
    )
    for name, value in LOCKED_SETTINGS:
        wanted = str(value).lower()
        if current.get(name) == wanted:
            continue
        if current.get("lock_configuration") == "true":
            raise EngineError(
                f"DuckDB: this database is already open in the process with {name} ="
                f" {current.get(name)} and a locked configuration; close that connection"
            )
        connection.execute(f"SET {name} = {wanted}")


#: DuckDB's buffer pool defaults to 80 % of RAM; a KPI run needs far less (issue 16 asks
#: for < 1 GB over 10M rows): it spills to the temp folder past this, and is not slower.
#: DuckDB allocates ≈ 200 MB more outside the pool; 600MB fails on the catalog over 10M
#: (a 256 MiB block it cannot spill), 750MB passes (docs/performance.md).
DEFAULT_MEMORY_LIMIT = "800MB"
#: Limits a statement that ran out of memory under the default runs again with, in turn
#: (None would be DuckDB's own, 80 % of RAM). The catalog over 50M rows needs more than
#: 800MB: `kpi run --all` peaks at 4.2 GiB with 4GB, at 19.6 GiB with DuckDB's own limit.
#: Bounded: definitions are untrusted, and one must not make a run take the machine's
#: memory; more is the operator's choice (``?memory_limit=``).
WIDER_LIMITS: tuple[str | None, ...] = ("4GB",)
#: DuckDB's allocator keeps freed memory for reuse up to these thresholds (128 MiB per
#: thread, 512 MiB after bulk frees) before handing it back: ≈ 100 MB of peak RSS here,
#: ≈ 230 MB for the sample writer (kpiengine/sample/write.py uses them too).
ALLOCATOR_FLUSH = {
    "allocator_flush_threshold": "16MB",
    "allocator_bulk_deallocation_flush_threshold": "64MB",
}


def _chosen_limit(url: str) -> str | None:
    """The ``?memory_limit=`` of the URL, if it gives one."""
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query).get("memory_limit", [None])[0]


def _config(url: str, limit: str | None = DEFAULT_MEMORY_LIMIT) -> dict[str, Any]:
    """``?memory_limit=4GB`` in the URL overrides ``limit`` (None: DuckDB's own); spills go
    to the system temp folder (the database itself is opened read-only). Extensions are
    never fetched."""
    limit = _chosen_limit(url) or limit
    spill = Path(tempfile.gettempdir()) / "kpiengine-duckdb-spill"
    config: dict[str, Any] = {
        "temp_directory": str(spill),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        **ALLOCATOR_FLUSH,
    }
    if limit is not None:
        config["memory_limit"] = limit
    return config


def _open(
    database: str,
    url: str,
    read_only: bool,
    allowed: Sequence[Path] = (),
    limit: str | None = DEFAULT_MEMORY_LIMIT,
) -> Any:
    """A DuckDB connection with the URL's settings; ``allowed`` files stay readable."""
    import duckdb

    connection = duckdb.connect(database, read_only=read_only, config=_config(url, limit))
    if allowed:
        # a bound parameter, never pasted into SQL; set before external access goes off
        connection.execute("SET allowed_paths = ?", [[str(p) for p in allowed]])
    return connection


def open_duckdb(url: str) -> DuckDBConnection:
    import duckdb

    path = path_of(url)
    memory = not path or path == ":memory:"
    if not memory and not Path(path).exists():
        raise EngineError(f"DuckDB database `{path}` does not exist (from {redact_url(url)})")

    def connect(limit: str | None = DEFAULT_MEMORY_LIMIT) -> Any:
        connection = _open(":memory:" if memory else path, url, not memory, limit=limit)
        _lock(connection)
        return connection

    try:
        connection = connect()
    except duckdb.Error as error:
        where = redact_url(url) if memory else f"DuckDB database `{path}`"
        raise EngineError(f"cannot open {where}: {error}") from error
    # an in-memory database reopened would be empty: no retry there
    retry = None if memory or _chosen_limit(url) else connect
    return DuckDBConnection(connection, retry)


def open_files(url: str) -> DuckDBConnection:
    """Every CSV/Parquet file in the folder becomes a view named after the file; the
    connection may read those files and no other."""
    import duckdb

    folder = Path(path_of(url))
    if not folder.is_dir():
        raise EngineError(
            f"`{folder}` is not a folder of CSV/Parquet files (from {redact_url(url)})"
        )
    files = {
        file.stem: (FILE_SUFFIXES[file.suffix.lower()], file.resolve())
        for file in sorted(folder.iterdir())
        if file.suffix.lower() in FILE_SUFFIXES and _IDENTIFIER.match(file.stem) and file.is_file()
    }

    def connect(limit: str | None = DEFAULT_MEMORY_LIMIT) -> Any:
        allowed = [f for _, f in files.values()]
        connection = _open(":memory:", url, read_only=False, allowed=allowed, limit=limit)
        for name, (reader, file) in files.items():
            # The path is passed as a value, never pasted into SQL.
            relation = getattr(connection, reader)(str(file))
            relation.create_view(name)
        _lock(connection)
        return connection

    try:
        connection = connect()
    except duckdb.Error as error:
        raise EngineError(f"cannot open {redact_url(url)}: {error}") from error
    retry = None if _chosen_limit(url) else connect
    return DuckDBConnection(connection, retry)


DUCKDB_CONNECTORS = (
    ConnectorSpec("duckdb", "duckdb", open_duckdb, "DuckDB database file (read-only) or memory"),
    ConnectorSpec("files", "duckdb", open_files, "Folder of CSV/Parquet files, read by DuckDB"),
)
