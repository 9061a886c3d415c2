"""Scratch databases for ``kpi test``: the fixture rows of one test, in tables of their own.

This is the one place kpiengine writes (docs/security.md), and never to a warehouse's
own tables:

* DuckDB (the default): a new in-memory database, gone when closed; ``--connector duckdb:...``
  whatever its path also means a new in-memory database, the file is never opened.
* SQLite: a new file in a new temporary folder, removed afterwards; the URL's file is
  never opened.
* PostgreSQL: a new schema ``kpi_test_<random>`` created with the connector URL's role
  (which must be allowed to create a schema), dropped with everything in it afterwards;
  the KPIs read it through ``search_path``.

Once the rows are in, the test runs through the ordinary read-only connection of the
engine (the same guards as ``kpi run``). Every value goes in as a bound parameter, never
pasted into SQL; table and column names come from the checked source definitions and
are quoted.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import Connection, scheme_of
from kpiengine.loader.model import Project

Tables = dict[str, list[tuple[str, str]]]  # table → [(column, kpiengine type)]

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_SQLITE_TYPES = {  # as kpiengine.sample.write stores them (what the SQLite dialect reads)
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_POSTGRES_TYPES = {
    "string": "text",
    "integer": "bigint",
    "number": "double precision",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
ENGINES = ("duckdb", "sqlite", "postgresql")


def tables_of(project: Project) -> Tables:
    """Every source's table with its declared columns (sources sharing a table: the union)."""
    tables: Tables = {}
    for source in project.sources.values():
        columns = tables.setdefault(source.table, [])
        for column in source.columns.values():
            if column.name not in (c for c, _ in columns):
                columns.append((column.name, column.type))
    return tables


def table_rows(
    project: Project, given: Mapping[str, Sequence[Mapping[str, Any]]], tables: Tables
) -> dict[str, list[tuple[Any, ...]]]:
    """The fixture rows of each table, in column order; a column not given is null."""
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in tables}
    for name, given_rows in given.items():
        table = project.sources[name].table
        columns = [c for c, _ in tables[table]]
        rows[table].extend(tuple(row.get(c) for c in columns) for row in given_rows)
    return rows


def engine_of(url: str | None) -> str:
    """Which scratch database a connector URL asks for."""
    if url is None:
        return "duckdb"
    scheme = scheme_of(url)
    if scheme in ("duckdb", "files"):
        return "duckdb"
    if scheme == "sqlite":
        return "sqlite"
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    raise UsageError(
        f"`kpi test` loads fixtures into DuckDB, SQLite or PostgreSQL, not `{scheme}://`; "
        "leave out --connector for an in-memory DuckDB"
    )


@contextmanager
def scratch_database(
    project: Project, given: Mapping[str, Sequence[Mapping[str, Any]]], url: str | None
) -> Iterator[Connection]:
    """A read-only connection to a new database holding exactly the fixture rows."""
    tables = tables_of(project)
    rows = table_rows(project, given, tables)
    engine = engine_of(url)
    if engine == "duckdb":
        connection = _duckdb(tables, rows)
        try:
            yield connection
        finally:
            connection.close()
    elif engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="kpi-test-") as folder:
            connection = _sqlite(tables, rows, Path(folder) / "scratch.db")
            try:
                yield connection
            finally:
                connection.close()
    else:
        assert url is not None
        with _postgres(tables, rows, url) as connection:
            yield connection


def _quoted(table: str) -> str:
    return ".".join(f'"{part}"' for part in table.split("."))


def _duckdb(tables: Tables, rows: dict[str, list[tuple[Any, ...]]]) -> Connection:
    import duckdb

    from kpiengine.execute.duckdb_connector import LOCKED_SETTINGS, DuckDBConnection

    config = {
        "memory_limit": "256MB",
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    raw = duckdb.connect(":memory:", config=config)
    try:
        for table, columns in tables.items():
            if "." in table:
                raw.execute(f"CREATE SCHEMA IF NOT EXISTS {_quoted(table.rsplit('.', 1)[0])}")
            spec = ", ".join(f'"{c}" {_DUCKDB_TYPES[t]}' for c, t in columns)
            raw.execute(f"CREATE TABLE {_quoted(table)} ({spec})")
            if rows[table]:
                marks = ", ".join("?" * len(columns))
                raw.executemany(f"INSERT INTO {_quoted(table)} VALUES ({marks})", rows[table])
        for name, value in LOCKED_SETTINGS:  # then only queries, as `kpi run` has it
            raw.execute(f"SET {name} = {str(value).lower()}")
    except duckdb.Error as error:
        raw.close()
        raise EngineError(f"DuckDB: cannot load the fixtures: {error}") from error
    return DuckDBConnection(raw)


def _sqlite_value(value: Any) -> Any:
    """ISO text for dates and timestamps, as the sample writer stores them."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sqlite(tables: Tables, rows: dict[str, list[tuple[Any, ...]]], path: Path) -> Connection:
    from kpiengine.execute.sqlite_connector import open_sqlite

    qualified = [t for t in tables if "." in t]
    if qualified:
        raise UsageError(
            f"table `{qualified[0]}` is schema-qualified, which a scratch SQLite database "
            "cannot hold; run `kpi test` without --connector (DuckDB) for these definitions"
        )
    writer = sqlite3.connect(path)
    try:
        for table, columns in tables.items():
            spec = ", ".join(f'"{c}" {_SQLITE_TYPES[t]}' for c, t in columns)
            writer.execute(f'CREATE TABLE "{table}" ({spec})')
            marks = ", ".join("?" * len(columns))
            writer.executemany(
                f'INSERT INTO "{table}" VALUES ({marks})',
                [tuple(map(_sqlite_value, row)) for row in rows[table]],
            )
        writer.commit()
    except sqlite3.Error as error:
        raise EngineError(f"SQLite: cannot load the fixtures: {error}") from error
    finally:
        writer.close()
    return open_sqlite(f"sqlite:///{quote(str(path.resolve()))}")


@contextmanager
def _postgres(
    tables: Tables, rows: dict[str, list[tuple[Any, ...]]], url: str
) -> Iterator[Connection]:
    """A schema of our own on the server, dropped (CASCADE) whatever happens."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise UsageError("PostgreSQL needs the plugin: pip install ./plugins/postgres") from None
    from kpiengine.execute.connectors import connect

    qualified = [t for t in tables if "." in t]
    if qualified:
        raise UsageError(
            f"table `{qualified[0]}` is schema-qualified; a scratch schema holds unqualified "
            "tables only: run `kpi test` without --connector (DuckDB) for these definitions"
        )
    schema = f"kpi_test_{uuid.uuid4().hex[:12]}"
    writer, target = _postgres_writer(url)
    try:
        try:
            writer.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        except psycopg.Error as error:
            raise EngineError(
                f"PostgreSQL ({target}): cannot create the scratch schema ({_first_line(error)});"
                f" `kpi test` on PostgreSQL needs a role that may create a schema in the"
                f" database (GRANT CREATE ON DATABASE {target.database} TO {target.user}), or"
                " leave out --connector to test on an in-memory DuckDB"
            ) from None
        try:
            with writer.transaction():
                for table, columns in tables.items():
                    name = sql.Identifier(schema, table)
                    spec = sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_POSTGRES_TYPES[t]))
                        for c, t in columns
                    )
                    writer.execute(sql.SQL("CREATE TABLE {} ({})").format(name, spec))
                    if rows[table]:
                        marks = sql.SQL(", ").join(sql.Placeholder() * len(columns))
                        insert = sql.SQL("INSERT INTO {} VALUES ({})").format(name, marks)
                        with writer.cursor() as cursor:
                            cursor.executemany(insert, rows[table])
        except psycopg.Error as error:
            raise EngineError(
                f"PostgreSQL ({target}): cannot load the fixtures: {_first_line(error)}"
            ) from None
        separator = "&" if "?" in url else "?"
        with connect(f"{url}{separator}options=-csearch_path%3D{schema}") as reader:
            yield reader
    finally:
        try:
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            writer.execute(drop)
        finally:
            writer.close()


def _postgres_writer(url: str) -> tuple[Any, Any]:
    """An autocommit psycopg connection for loading the fixtures, and where it points (for
    messages); connection failures come out as the connector explains them (exit 3)."""
    try:
        from kpiengine_postgres.connection import Target, connect, split_url
    except ImportError:
        raise UsageError("PostgreSQL needs the plugin: pip install ./plugins/postgres") from None
    conninfo = split_url(url)[0]
    target = Target(conninfo)
    return connect(conninfo, target), target


def _first_line(error: Exception) -> str:
    """The driver's first line, without any password libpq may echo."""
    from kpiengine_postgres.connection import _first_line as first_line

    return str(first_line(error))
