"""MariaDB (the MySQL-family engine) through the kpiengine-mysql plugin (PyMySQL).

Needs a server: ``KPI_TEST_MYSQL_URL`` (the reader the connector is tested with) and
``KPI_TEST_MYSQL_ADMIN_URL`` (a user that creates databases and loads fixtures), else
the URLs scripts/mariadb-start.sh wrote to ``.mariadb/``. Each dataset gets its own
database ``kpitest_<random>``, dropped when the test process exits. Without a server or
the plugin the tests are skipped; on CI (``CI=true``) that fails.

- the conformance kit, with the cases MySQL's dialect cannot express marked;
- read-only: the probes of the kit, and what the guard refuses that the server would
  run for a user with more privileges;
- the same numbers as DuckDB: the whole catalog and the probe KPIs of
  test_clickhouse.py that the MySQL dialect can express.
"""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pyarrow as pa
import pytest

import kpiengine
from kpiengine.errors import EngineError
from kpiengine.testing import ConnectorConformance, Dataset
from tests.engines import ROOT, load_duckdb, on_ci, sample_tables
from tests.test_engines import SAMPLE_ROWS, SAMPLE_SEED, differences, run_catalog
from tests.test_testing_kit import KNOWN_FAILURES

URL_ENV = "KPI_TEST_MYSQL_URL"
ADMIN_URL_ENV = "KPI_TEST_MYSQL_ADMIN_URL"
STATE = ROOT / ".mariadb"


def mysql_url() -> str | None:
    url = os.environ.get(URL_ENV)
    if url:
        return url
    path = STATE / "url"
    return path.read_text().strip() or None if path.is_file() else None


def mysql_admin_url() -> str | None:
    if os.environ.get(URL_ENV):
        return os.environ.get(ADMIN_URL_ENV) or os.environ[URL_ENV]
    path = STATE / "admin_url"
    return path.read_text().strip() or None if path.is_file() else None


def _unavailable() -> str | None:
    try:
        import kpiengine_mysql  # noqa: F401
        import pymysql  # noqa: F401
    except ImportError:
        return "the kpiengine-mysql plugin is not installed (pip install -e plugins/mysql)"
    if mysql_url() is None or mysql_admin_url() is None:
        return (
            f"no MySQL/MariaDB server: set {URL_ENV} and {ADMIN_URL_ENV}, or run"
            " scripts/mariadb-start.sh (scripts/engines-run.sh does), to run these tests"
        )
    return None


_REASON = _unavailable()
if _REASON is not None:
    if on_ci():
        pytest.fail(f"MariaDB is required on CI (CI=true): {_REASON}", pytrace=False)
    pytest.skip(_REASON, allow_module_level=True)


# -- loading ------------------------------------------------------------------------------


def _pymysql(url: str, database: str | None = None) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=database,
        autocommit=True,
        charset="utf8mb4",
    )


_created: list[str] = []


def new_database() -> str:
    """A new, empty database ``kpitest_<random>`` (the reader may SELECT from
    ``kpitest%``); its URL as the reader. Dropped at exit."""
    name = f"kpitest_{uuid.uuid4().hex[:12]}"
    admin = _pymysql(mysql_admin_url() or "")
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
    admin.close()
    _created.append(name)
    return urlunsplit(urlsplit(mysql_url() or "")._replace(path=f"/{name}"))


@atexit.register
def _drop_databases() -> None:
    if not _created:
        return
    try:
        admin = _pymysql(mysql_admin_url() or "")
        with admin.cursor() as cursor:
            for name in _created:
                cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
    except Exception:  # the throwaway server may already be gone
        pass


def _column_type(kind: pa.DataType) -> str:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "VARCHAR(255)"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "DATETIME(6)"
    raise TypeError(f"no MySQL column type for {kind}")


def load_mysql(tables: Mapping[str, pa.Table]) -> str:
    """A new database holding ``tables`` (written as the admin user); the reader's URL."""
    url = new_database()
    database = urlsplit(url).path.lstrip("/")
    admin = _pymysql(mysql_admin_url() or "", database)
    try:
        with admin.cursor() as cursor:
            for name, table in tables.items():
                columns = ", ".join(f"`{f.name}` {_column_type(f.type)}" for f in table.schema)
                cursor.execute(f"CREATE TABLE `{name}` ({columns})")
                marks = ", ".join(["%s"] * table.num_columns)
                rows = [tuple(row.values()) for row in table.to_pylist()]
                for start in range(0, len(rows), 5000):
                    cursor.executemany(
                        f"INSERT INTO `{name}` VALUES ({marks})", rows[start : start + 5000]
                    )
    finally:
        admin.close()
    return url


# -- the conformance kit ------------------------------------------------------------------

_NO_PERCENTILE = (
    "median/percentile are refused on mysql at compile time (KPI404): MySQL has no"
    " PERCENTILE_CONT aggregate and MariaDB has it only as a window function"
)
_NO_ROUND = (
    "round is refused on mysql at compile time (KPI404): MySQL rounds DOUBLE halves to even"
    " and a KPI cannot tell a DOUBLE from a DECIMAL (docs/dialects.md)"
)
#: Kit cases the `mysql` dialect refuses (strict xfail: remove when it can express them).
MYSQL_GAPS: dict[str, str] = {
    "month-aggregates": _NO_PERCENTILE,
    "fiscal-quarter": _NO_PERCENTILE,
    "year": _NO_PERCENTILE,
    "month-conditions-and-nulls": _NO_ROUND,
    "round-ties-and-exact-median": _NO_ROUND,
}


class TestMariaDBConformance(ConnectorConformance):
    known_failures = {**KNOWN_FAILURES, **MYSQL_GAPS}

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return load_mysql({name: table.to_arrow() for name, table in dataset.tables.items()})


# -- read-only ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_url() -> str:
    return load_mysql({"t": pa.table({"a": [1, 2, None], "b": ["x", "y", None]})})


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; SELECT 2",
        "SELECT * FROM t INTO OUTFILE '/tmp/kpi-mysql-out.csv'",
        "SELECT a INTO @v FROM t LIMIT 1",
        "SELECT LOAD_FILE('/etc/passwd')",
        "SELECT SLEEP(5)",
        "SELECT GET_LOCK('kpi', 1)",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "SET SESSION TRANSACTION READ WRITE",
        "COMMIT",
        "CREATE TEMPORARY TABLE tt (a INT)",
        "CALL p()",
        "DO SLEEP(1)",
        "HANDLER t OPEN",
    ],
)
def test_guard_refuses(small_url: str, sql: str) -> None:
    with kpiengine.connect(small_url) as connection, pytest.raises(EngineError, match="refused"):
        connection.execute(sql)


def test_reads_and_introspects(small_url: str) -> None:
    with kpiengine.connect(small_url) as connection:
        names, rows = connection.execute("SELECT a, b FROM t ORDER BY a IS NULL, a")
        assert names == ["a", "b"]
        assert rows == [(1, "x"), (2, "y"), (None, None)]
        assert connection.columns("t") == {"a": "bigint", "b": "varchar"}
        assert connection.columns("nope") is None


def test_the_reader_cannot_write_even_unchecked(small_url: str) -> None:
    """The guarantee is the user (SELECT only) and the read-only transaction: a write
    that got past the guard still fails."""
    with kpiengine.connect(small_url) as connection:
        with pytest.raises(EngineError, match=r"refused|denied|READ ONLY"):
            connection._run("CREATE TABLE kpi_probe (a INT)")
        with pytest.raises(EngineError, match=r"refused|denied|READ ONLY"):
            connection._run("INSERT INTO t VALUES (9, 'z')")


def test_password_never_in_messages() -> None:
    url = urlsplit(mysql_url() or "")
    bad = urlunsplit(url._replace(netloc=f"kpi_reader:s3cret-pw@{url.hostname}:{url.port}"))
    with pytest.raises(EngineError) as error:
        kpiengine.connect(bad)
    assert "s3cret-pw" not in str(error.value)


# -- the same numbers as DuckDB ---------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tables = sample_tables(SAMPLE_ROWS, SAMPLE_SEED)
    folder = tmp_path_factory.mktemp("catalog-mysql")
    return {"duckdb": load_duckdb(tables, folder / "duckdb"), "mysql": load_mysql(tables)}


@pytest.fixture(scope="module")
def catalog() -> Any:
    return kpiengine.load(ROOT / "definitions")


@pytest.mark.slow
@pytest.mark.parametrize("dimension", [None, "region"], ids=["total", "by-region"])
@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_catalog_equal_duckdb(
    grain: str, dimension: str | None, catalog: Any, catalog_urls: dict[str, str]
) -> None:
    expected = run_catalog(catalog, catalog_urls["duckdb"], grain, dimension)
    got = run_catalog(catalog, catalog_urls["mysql"], grain, dimension)
    assert expected
    problems = differences(got, expected)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
