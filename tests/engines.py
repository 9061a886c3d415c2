"""The engines the cross-engine tests run on: name → how to load Arrow tables into it.

An :class:`Engine` loads a dict of Arrow tables into a fresh database and returns the
connector URL that reads it. ``available()`` says why it cannot run here (no server, no
plugin) or None; on CI (``CI=true``) an unavailable engine fails the tests instead of
skipping them. ``marks`` are added to every test parametrized over the engine.

Adding an engine is a ``load_<engine>(tables, folder) -> url`` function and one line at the
end of this module, e.g. for Spark::

    register(Engine("spark", load_spark, available=spark_available, marks=(pytest.mark.slow,)))

PostgreSQL needs a server: ``KPI_TEST_POSTGRES_URL``, else the URL that
``scripts/pg-start.sh`` wrote to ``.pgdata/url``: the role the connector is tested with (a
non-superuser reader). ``KPI_TEST_POSTGRES_ADMIN_URL`` (else ``.pgdata/admin_url``, else
the same URL) is a role that may create databases: it loads the fixtures. Each load
creates a new database, dropped when the test process exits.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pytest

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL_ENV = "KPI_TEST_POSTGRES_URL"
POSTGRES_URL_FILE = ROOT / ".pgdata" / "url"
POSTGRES_ADMIN_URL_ENV = "KPI_TEST_POSTGRES_ADMIN_URL"
POSTGRES_ADMIN_URL_FILE = ROOT / ".pgdata" / "admin_url"

Tables = Mapping[str, pa.Table]


@dataclass(frozen=True)
class Engine:
    name: str
    #: (tables, a scratch folder of this engine) → connector URL of a new database
    load: Callable[[Tables, Path], str]
    #: None when the engine can run here, else the reason it cannot
    available: Callable[[], str | None] = lambda: None
    #: pytest marks of every test run on this engine
    marks: tuple[Any, ...] = field(default=())


ENGINES: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    ENGINES[engine.name] = engine
    return engine


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(engine: Engine) -> None:
    """Skip (fail on CI) when the engine cannot run here."""
    reason = engine.available()
    if reason is None:
        return
    if on_ci():
        pytest.fail(f"{engine.name} is required on CI (CI=true): {reason}", pytrace=False)
    pytest.skip(f"{engine.name}: {reason}")


def engine_params(names: Iterable[str] | None = None) -> list[Any]:
    """``pytest.param`` per engine (all registered when ``names`` is None), with its marks."""
    chosen = list(ENGINES) if names is None else list(names)
    return [pytest.param(n, marks=ENGINES[n].marks, id=n) for n in chosen if n in ENGINES]


# -- Arrow tables -----------------------------------------------------------------------

_DDL_TYPES = {
    "VARCHAR": pa.string(),
    "TEXT": pa.string(),
    "DOUBLE": pa.float64(),
    "INTEGER": pa.int64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
}


def arrow_tables(tables: Mapping[str, tuple[str, Sequence[Sequence[Any]]]]) -> dict[str, pa.Table]:
    """conftest-style tables (``"col TYPE, ..."`` DDL, rows with ISO text for times) as Arrow."""
    result = {}
    for name, (ddl, rows) in tables.items():
        fields = []
        for part in ddl.split(","):
            column, kind = part.split()
            fields.append(pa.field(column, _DDL_TYPES[kind.upper()]))
        columns: list[list[Any]] = [[] for _ in fields]
        for row in rows:
            for i, (value, f) in enumerate(zip(row, fields, strict=True)):
                if isinstance(value, str) and pa.types.is_timestamp(f.type):
                    value = dt.datetime.fromisoformat(value)
                elif isinstance(value, str) and pa.types.is_date(f.type):
                    value = dt.date.fromisoformat(value)
                columns[i].append(value)
        schema = pa.schema(fields)
        result[name] = pa.table(
            [pa.array(c, type=f.type) for c, f in zip(columns, fields, strict=True)], schema=schema
        )
    return result


def sample_tables(rows: int, seed: int) -> dict[str, pa.Table]:
    """The sample dataset (``kpi sample-data``) as Arrow tables."""
    from kpiengine.sample.generate import generate
    from kpiengine.sample.tables import SPEC_BY_NAME

    batches: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in generate(rows, seed):
        batches.setdefault(table, []).append(batch)
    return {
        name: pa.Table.from_batches(parts, schema=SPEC_BY_NAME[name].schema)
        for name, parts in batches.items()
    }


# -- DuckDB -----------------------------------------------------------------------------


def load_duckdb(tables: Tables, folder: Path) -> str:
    """Through the sample writer of ``kpi sample-data`` (CREATE TABLE AS from Arrow)."""
    from kpiengine.sample.write import DuckDBWriter

    folder.mkdir(parents=True, exist_ok=True)
    url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    _write(DuckDBWriter(url, False), tables)
    return url


# -- SQLite -----------------------------------------------------------------------------

_SQLITE_TYPES = (
    (pa.types.is_string, "TEXT"),
    (pa.types.is_integer, "INTEGER"),
    (pa.types.is_floating, "REAL"),
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_date, "DATE"),
    (pa.types.is_timestamp, "TIMESTAMP"),
)


def load_sqlite(tables: Tables, folder: Path) -> str:
    """As the SQLite sample writer stores them: ISO text for dates and timestamps."""
    from kpiengine.sample.write import _python_values

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "warehouse.db"
    connection = sqlite3.connect(path)
    for name, table in tables.items():
        columns = ", ".join(
            f'"{f.name}" {next(t for test, t in _SQLITE_TYPES if test(f.type))}'
            for f in table.schema
        )
        connection.execute(f'CREATE TABLE "{name}" ({columns})')
        marks = ", ".join("?" * table.num_columns)
        for batch in table.to_batches():
            values = zip(*map(_python_values, batch.columns), strict=True)
            connection.executemany(f'INSERT INTO "{name}" VALUES ({marks})', values)
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


# -- PostgreSQL -------------------------------------------------------------------------


def postgres_url() -> str | None:
    """The test server's URL: $KPI_TEST_POSTGRES_URL, else .pgdata/url of pg-start.sh."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        return url
    if POSTGRES_URL_FILE.is_file():
        return POSTGRES_URL_FILE.read_text().strip() or None
    return None


def postgres_admin_url() -> str | None:
    """The role that creates databases and loads fixtures (see the module docstring)."""
    if os.environ.get(POSTGRES_URL_ENV):
        return os.environ.get(POSTGRES_ADMIN_URL_ENV) or os.environ[POSTGRES_URL_ENV]
    if POSTGRES_ADMIN_URL_FILE.is_file():
        return POSTGRES_ADMIN_URL_FILE.read_text().strip() or postgres_url()
    return postgres_url()


def as_admin(url: str) -> str:
    """The same database as ``url``, reached as the admin role (to write fixtures)."""
    admin = postgres_admin_url()
    assert admin is not None, "checked by postgres_available()"
    parts = urlsplit(url)
    return urlunsplit(urlsplit(admin)._replace(path=parts.path, query=parts.query))


def postgres_available() -> str | None:
    try:
        import kpiengine_postgres  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError:
        return "the kpiengine-postgres plugin is not installed (pip install -e plugins/postgres)"
    if postgres_url() is None:
        return (
            f"no PostgreSQL server: set {POSTGRES_URL_ENV}, or run scripts/pg-start.sh"
            " (`make test` does), to run the PostgreSQL tests"
        )
    return None


_created_databases: list[str] = []


def postgres_database() -> str:
    """A new, empty database on the test server; its URL (the reader role's: write to
    it through :func:`as_admin`). Dropped at exit."""
    import psycopg

    url = postgres_url()
    admin = postgres_admin_url()
    assert url is not None and admin is not None, "checked by postgres_available()"
    name = f"kpitest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(admin), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    _created_databases.append(name)
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _libpq(url: str) -> str:
    """The URL without the connector's own options (libpq rejects unknown ones)."""
    from kpiengine_postgres.connection import split_url

    return split_url(url)[0]


@atexit.register
def _drop_databases() -> None:
    if not _created_databases:
        return
    try:
        import psycopg

        url = postgres_admin_url()
        if url is None:
            return
        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            for name in _created_databases:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:  # the throwaway cluster may already be gone
        pass


def load_postgres(tables: Tables, folder: Path) -> str:
    """A new database, filled by the plugin's writer (COPY, one transaction)."""
    from kpiengine_postgres.sample_writer import write_tables

    url = postgres_database()
    write_tables(as_admin(url), tables)
    return url


def _write(writer: Any, tables: Tables) -> None:
    try:
        for name, table in tables.items():
            writer.write_table(name, table.schema, iter(table.to_batches()))
    except BaseException:
        writer.abort()
        raise
    writer.commit()


# -- Spark ------------------------------------------------------------------------------


def spark_available() -> str | None:
    try:
        import kpiengine_spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        return "the kpiengine-spark plugin is not installed (pip install -e plugins/spark)"
    import shutil

    home = os.environ.get("JAVA_HOME")
    if not (home and Path(home, "bin", "java").exists()) and shutil.which("java") is None:
        return "Spark needs Java 17+ (none on PATH, JAVA_HOME unset)"
    return None


def load_spark(tables: Tables, folder: Path) -> str:
    """``<table>.parquet`` files written by the sample writer of ``kpi sample-data --to
    files:///dir``, read by Spark in local mode as temp views."""
    from urllib.parse import quote

    from kpiengine.sample.write import FilesWriter

    folder.mkdir(parents=True, exist_ok=True)
    _write(FilesWriter(f"files:///{folder}", False), tables)
    return f"spark://local[2]?tables={quote(str(folder))}"


register(Engine("duckdb", load_duckdb))
register(Engine("sqlite", load_sqlite))
register(Engine("postgres", load_postgres, postgres_available, marks=(pytest.mark.slow,)))
register(Engine("spark", load_spark, spark_available, marks=(pytest.mark.slow,)))
