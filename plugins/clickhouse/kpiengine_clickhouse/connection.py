"""The chDB connection: ClickHouse in the process, read-only, one checked query per call.

URL: ``chdb:///path`` (relative) or ``chdb:////abs/path``, where the path is either

- a **folder of Parquet files**: each ``<table>.parquet`` (a plain identifier) becomes a
  ``File(Parquet)`` table ``<table>`` over that file, in a database of the connection's
  own (``kpi_<random>``, the current one: chDB's in-memory sessions of one process share
  their databases), dropped when the connection closes (what ``kpi sample-data --to
  chdb:///dir`` writes); or
- a **chDB database** (a folder with ``metadata/``, as ``chdb.session.Session(path)``
  leaves it): opened with ``mode=ro``.

The session is configured for kpiengine's semantics when it opens, then locked with
``readonly=1`` (no setting, DDL or write can follow; nothing can lift it):

- ``join_use_nulls=1``: an outer join's missing side is NULL, not 0 or '';
- ``aggregate_functions_null_for_empty=1``: SUM/AVG/MIN... of no rows is NULL;
- ``cast_keep_nullable=1``: CAST of a nullable value stays nullable (NULL, not an error);
- ``session_timezone=UTC``: timestamps are read as they are written, whatever the host's
  time zone;
- ``max_query_size``, ``max_ast_elements``, ``max_expanded_ast_elements`` and
  ``query_plan_max_optimizations_to_apply`` raised: kpiengine sends one statement per
  request, and the whole catalog at day or week grain (a spine of 365 days, every KPI)
  exceeds ClickHouse's defaults (256 KiB of text, 50 000 AST nodes, 10 000 plan
  optimizations) with a syntax or TOO_BIG_AST error.

Each ``execute`` takes exactly one query, checked by :mod:`.guard` and sent as sqlglot
renders the checked tree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import re
import uuid
from pathlib import Path
from typing import Any

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import ClosingConnection, path_of, redact_url
from kpiengine_clickhouse.guard import checked_query

#: Startup settings (``--name=value`` of clickhouse-local) of every session.
SETTINGS = {
    "join_use_nulls": "1",
    "aggregate_functions_null_for_empty": "1",
    "cast_keep_nullable": "1",
    "session_timezone": "UTC",
    "max_query_size": "67108864",
    "max_ast_elements": "10000000",
    "max_expanded_ast_elements": "10000000",
    "query_plan_max_optimizations_to_apply": "1000000",
}
_TABLE_FILE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.parquet$")


class ChdbConnection(ClosingConnection):
    """A chDB session locked read-only; see the module docstring."""

    dialect = "clickhouse"

    def __init__(self, session: Any, where: str, database: str | None = None) -> None:
        self._session = session
        self.where = where
        #: the database this connection created (Parquet folder), dropped on close
        self.database = database

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        text = checked_query(sql)  # one plain query, or refused before anything runs
        table = self._query(text)
        names = list(table.schema.names)
        columns = [[_python(v) for v in column.to_pylist()] for column in table.columns]
        return names, list(zip(*columns, strict=True)) if columns else []

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name → ClickHouse type name (``Nullable(Float64)`` as ClickHouse says
        it: the dialect unwraps it), from ``system.columns``; None when there is no such
        table. ``db.table`` or a table of the current database."""
        database, _, name = table.rpartition(".")
        if not _is_plain(name) or (database and not _is_plain(database)):
            return None
        where = f"database = '{database}'" if database else "database = currentDatabase()"
        result = self._query(
            f"SELECT name, type FROM system.columns WHERE {where} AND table = '{name}'"
            " ORDER BY position"
        )
        rows = result.to_pylist()
        return {row["name"]: row["type"] for row in rows} or None

    def close(self) -> None:
        if self._session is None:
            return
        self._session.close()
        self._session = None
        if self.database:  # this session is read-only: another one drops its tables
            with contextlib.suppress(Exception):
                from chdb import session as chdb_session

                cleaner = chdb_session.Session(":memory:")
                try:
                    cleaner.query(f"DROP DATABASE IF EXISTS `{self.database}`")
                finally:
                    cleaner.close()

    def _query(self, text: str) -> Any:
        if self._session is None:
            raise EngineError(f"ClickHouse ({self.where}): the connection is closed")
        try:
            return self._session.query(text, "ArrowTable")
        except Exception as error:  # chdb.ChdbError, RuntimeError from its result reader
            raise statement_error(error, self.where) from None


def _is_plain(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None


def _python(value: Any) -> Any:
    """Numbers as DuckDB gives them: a Decimal is an int when whole, else a float."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def statement_error(error: Exception, where: str) -> EngineError:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    first = re.sub(r"\s*\(version [^)]*\)", "", first)
    if "UNKNOWN_TABLE" in first or "Unknown table" in first:
        return EngineError(
            f"ClickHouse ({where}): {first}. Check the source's `table:` (a file"
            " <table>.parquet of the folder, or db.table of the chDB database)."
        )
    if "READONLY" in first:
        return EngineError(f"ClickHouse ({where}): refused, kpiengine only reads ({first})")
    return EngineError(f"ClickHouse ({where}): {redact_url(first)}")


def open_chdb(url: str) -> ChdbConnection:
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "chdb":
        raise UsageError(f"`{redact_url(url)}` is not a chdb:// URL")
    if "?" in rest:
        raise UsageError(f"`{redact_url(url)}`: chdb:// URLs take no options")
    raw = path_of(url)
    if not raw:
        raise UsageError("chdb:// needs a path: chdb:///folder (relative) or chdb:////abs/path")
    folder = Path(raw).resolve()
    if not folder.is_dir():
        raise UsageError(
            f"chdb://: `{raw}` is not a folder (a folder of <table>.parquet files, or a chDB"
            " database)"
        )
    try:
        from chdb import session as chdb_session
    except ImportError as error:  # pragma: no cover - chdb is a dependency
        raise EngineError(
            f"the ClickHouse connector needs chDB: pip install chdb ({error})"
        ) from None
    options = "&".join(f"{k}={v}" for k, v in SETTINGS.items())
    if (folder / "metadata").is_dir():
        session = _open(chdb_session, f"{folder}?mode=ro&{options}", str(folder))
        return ChdbConnection(session, str(folder))
    tables = sorted(
        (match.group(1), path)
        for path in folder.iterdir()
        if (match := _TABLE_FILE.match(path.name)) and path.is_file()
    )
    if not tables:
        raise UsageError(
            f"chdb://: `{raw}` holds no <table>.parquet file and is not a chDB database"
        )
    session = _open(chdb_session, f":memory:?{options}", str(folder))
    database = f"kpi_{uuid.uuid4().hex[:16]}"
    connection = ChdbConnection(session, str(folder), database)
    try:
        connection._query(f"CREATE DATABASE `{database}` ENGINE = Memory")
        connection._query(f"USE `{database}`")
        for name, path in tables:
            connection._query(f"CREATE TABLE `{name}` ENGINE = File(Parquet, {_string(str(path))})")
        connection._query("SET readonly = 1")  # last: nothing can lift it afterwards
    except BaseException:
        connection.close()
        raise
    return connection


def _open(chdb_session: Any, connection_string: str, where: str) -> Any:
    try:
        return chdb_session.Session(connection_string)
    except Exception as error:
        raise EngineError(f"cannot open chDB at {where}: {str(error).strip()[:300]}") from None


def _string(text: str) -> str:
    """A ClickHouse string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
