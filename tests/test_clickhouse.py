"""ClickHouse through the kpiengine-clickhouse plugin (embedded chDB, no server).

- the conformance kit on a folder of Parquet files and on a chDB database;
- read-only for real: what chDB's own read-only mode lets through (INTO OUTFILE, the
  scalar ``file()``, several statements) and the guard that refuses it;
- each dialect rule, shown by running the SQL without it on chDB;
- the same numbers as DuckDB: the whole catalog (month and quarter, total and by region)
  and the probe KPIs the catalog lacks (kpiengine.testing.probes: ROUND ties, median and
  percentile over more than 8 192 rows, GREATEST/LEAST with nulls, ``%``,
  ``days_between``, distinct counts), which test_probes.py runs on the other engines.

Outside CI the module is skipped when chDB or the plugin is not installed; on CI
(``CI=true``) that fails.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kpiengine
from kpiengine.errors import EngineError
from kpiengine.testing import ConnectorConformance, Dataset
from kpiengine.testing.probes import PROBE_FILES, probe_kpis, probe_tables, run_probes
from tests.conftest import write_files
from tests.engines import load_duckdb, on_ci, sample_tables
from tests.test_engines import RANGE, SAMPLE_ROWS, SAMPLE_SEED, differences, run_catalog
from tests.test_testing_kit import KNOWN_FAILURES


def _require_plugin() -> None:
    try:
        import chdb  # noqa: F401
        import kpiengine_clickhouse  # noqa: F401
    except ImportError as error:
        message = (
            f"the kpiengine-clickhouse plugin or chDB is not installed ({error}):"
            " pip install -e plugins/clickhouse"
        )
        if on_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


_require_plugin()

from kpiengine_clickhouse.guard import checked_query  # noqa: E402

# -- loading ------------------------------------------------------------------------------


def write_parquet_folder(tables: dict[str, pa.Table], folder: Path) -> str:
    """``<table>.parquet`` per table (what ``kpi sample-data --to chdb:///dir`` writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return f"chdb:///{folder}"


def write_chdb_database(tables: dict[str, pa.Table], folder: Path) -> str:
    """A chDB database (MergeTree tables) at ``folder/db``, written by a chDB session of
    its own, closed before the connector opens it read-only."""
    from chdb import session

    files = folder / "files"
    write_parquet_folder(tables, files)
    path = folder / "db"
    writer = session.Session(str(path))
    try:
        for name in tables:
            writer.query(
                f"CREATE TABLE `{name}` ENGINE = MergeTree ORDER BY tuple() AS"
                f" SELECT * FROM file('{files / name}.parquet', Parquet)"
            )
    finally:
        writer.close()
    return f"chdb:///{path}"


def _kit_tables(dataset: Dataset) -> dict[str, pa.Table]:
    return {name: table.to_arrow() for name, table in dataset.tables.items()}


# -- the conformance kit ------------------------------------------------------------------


class TestChdbConformance(ConnectorConformance):
    """A folder of Parquet files: one File(Parquet) table per file."""

    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return write_parquet_folder(_kit_tables(dataset), workdir / "parquet")


class TestChdbDatabaseConformance(ConnectorConformance):
    """A chDB database (MergeTree tables), opened with mode=ro."""

    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return write_chdb_database(_kit_tables(dataset), workdir)


# -- read-only for real -------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    table = pa.table({"a": [1, 2, None], "b": ["x", "y", None]})
    return write_parquet_folder({"t": table}, tmp_path_factory.mktemp("ro") / "data")


def test_chdb_readonly_alone_still_writes_and_reads_files(tmp_path: Path) -> None:
    """Why the guard exists: with readonly=1 chDB still writes INTO OUTFILE, reads any
    file through the scalar file() and runs several statements in one call."""
    from chdb import session

    secret = tmp_path / "secret.txt"
    secret.write_text("kpi-canary\n")
    raw = session.Session(":memory:")
    try:
        raw.query("SET readonly = 1")
        raw.query(f"SELECT 1 INTO OUTFILE '{tmp_path}/out.csv'")
        assert (tmp_path / "out.csv").exists()
        assert "kpi-canary" in str(raw.query(f"SELECT file('{secret}')", "CSV"))
        assert str(raw.query("SELECT 1; SELECT 2", "CSV")).split() == ["1", "2"]
    finally:
        raw.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 INTO OUTFILE '/tmp/kpi-out.csv'",
        "SELECT file('/etc/passwd')",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/x.csv', CSV)",
        "SELECT * FROM numbers(10)",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM system.users",
        "SELECT 1; SELECT 2",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 FORMAT CSV",
        "INSERT INTO FUNCTION file('/tmp/kpi-f.csv') SELECT 1",
        "CREATE TEMPORARY TABLE tt (a Int32)",
        "SET readonly = 0",
        "SELECT sleepEachRow(3) FROM t",
        "SELECT dictGetString('d', 'a', 1)",
        "SELECT quantile(0.5)(a), file('/etc/passwd') FROM t",
    ],
)
def test_guard_refuses(chdb_url: str, sql: str) -> None:
    with kpiengine.connect(chdb_url) as connection, pytest.raises(EngineError, match="refused"):
        connection.execute(sql)


def test_guard_sends_the_checked_tree() -> None:
    """What runs is sqlglot's rendering of what was checked, not the text."""
    assert checked_query("select a  from t -- x */; DROP TABLE t") == "SELECT a FROM t"


def test_session_is_locked(chdb_url: str) -> None:
    with kpiengine.connect(chdb_url) as connection:
        names, rows = connection.execute("SELECT a, b FROM t ORDER BY a")
        assert names == ["a", "b"]
        assert rows == [(1, "x"), (2, "y"), (None, None)]
        assert connection.columns("t") == {"a": "Nullable(Int64)", "b": "Nullable(String)"}
        assert connection.columns("nope") is None


def test_bad_urls(tmp_path: Path) -> None:
    from kpiengine.errors import UsageError

    for url in (f"chdb:///{tmp_path}/missing", f"chdb:///{tmp_path}", "chdb://", "chdb:///x?y=1"):
        with pytest.raises(UsageError):
            kpiengine.connect(url)


def test_sample_writer_round_trip(tmp_path: Path) -> None:
    from kpiengine.sample import write_sample

    url = f"chdb:///{tmp_path / 'sample'}"
    write_sample(url, rows=300, seed=3)
    with kpiengine.connect(url) as connection:
        _, rows = connection.execute("SELECT COUNT(*) AS n FROM accounts")
        assert rows[0][0] > 0


# -- the dialect rules, each shown without it -------------------------------------------


def _value(connection: Any, sql: str) -> Any:
    return connection.execute(sql)[1][0][0]


def test_rule_round_ties_like_duckdb(chdb_url: str) -> None:
    from kpiengine.compile.dialects import rules_for

    rules = rules_for("clickhouse")
    with kpiengine.connect(chdb_url) as connection:
        for value, digits, duckdb in ((2.5, 0, 3.0), (0.125, 2, 0.13), (-2.5, 0, -3.0)):
            plain = f"SELECT round({value}, {digits}) AS r"
            assert _value(connection, plain) != duckdb  # ClickHouse: half to even
            node = pa_round(value, digits)
            fixed = rules.finish(node).sql("clickhouse")
            assert _value(connection, fixed) == duckdb


def pa_round(value: float, digits: int) -> Any:
    from sqlglot import exp

    return exp.select(
        exp.alias_(
            exp.Round(this=exp.Literal.number(value), decimals=exp.Literal.number(digits)), "r"
        )
    )


def test_rule_greatest_is_null_with_a_null(chdb_url: str) -> None:
    with kpiengine.connect(chdb_url) as connection:
        assert _value(connection, "SELECT greatest(a, 5) AS g FROM t WHERE a IS NULL") == 5


def test_rule_explicit_column_names(chdb_url: str) -> None:
    """Two joins: ClickHouse names `x.a` "x.a", so the outer query cannot find `a`."""
    sql = (
        "WITH j AS (SELECT x.a FROM t AS x LEFT JOIN t AS y ON x.a = y.a"
        " LEFT JOIN t AS z ON x.a = z.a) SELECT j.a FROM j"
    )
    with kpiengine.connect(chdb_url) as connection:
        with pytest.raises(EngineError, match=r"UNKNOWN_IDENTIFIER|cannot be resolved"):
            connection.execute(sql)
        aliased = sql.replace("SELECT x.a FROM", "SELECT x.a AS a FROM")
        assert sorted(r[0] is None for r in connection.execute(aliased)[1]) == [
            False,
            False,
            True,
        ]


# -- the same numbers as DuckDB ---------------------------------------------------------


def probe_differences(got: dict, expected: dict) -> list[str]:
    problems = differences(got, expected)
    assert all(v is not None for v in expected.values()), "a probe KPI is null on DuckDB"
    assert not any(isinstance(v, float) and math.isnan(v) for v in expected.values())
    return problems


@pytest.fixture(scope="module")
def probe_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return kpiengine.load(write_files(tmp_path_factory.mktemp("probes") / "defs", PROBE_FILES))


@pytest.fixture(scope="module")
def duckdb_probes(tmp_path_factory: pytest.TempPathFactory) -> str:
    return load_duckdb(probe_tables(), tmp_path_factory.mktemp("probe-duckdb"))


@pytest.mark.parametrize("grain", ["month", "all"])
def test_probes_equal_duckdb(
    grain: str, probe_project: Any, duckdb_probes: str, tmp_path: Path
) -> None:
    url = write_parquet_folder(probe_tables(), tmp_path / "probe")
    expected = run_probes(probe_project, duckdb_probes, grain)
    got = run_probes(probe_project, url, grain)
    assert len(expected) == len(probe_kpis()) * (2 if grain == "month" else 1)
    problems = probe_differences(got, expected)
    assert not problems, "\n".join(problems)


def test_probe_median_is_exact_beyond_8192_rows(duckdb_probes: str, tmp_path: Path) -> None:
    """ClickHouse's quantile() (what sqlglot renders) samples 8 192 values: not exact."""
    url = write_parquet_folder(probe_tables(), tmp_path / "probe")
    with kpiengine.connect(duckdb_probes) as duck, kpiengine.connect(url) as chdb:
        exact = _value(duck, "SELECT median(x * 1.0 + id / 1e6) AS m FROM probe")
        sampled = _value(chdb, "SELECT quantile(0.5)(x * 1.0 + id / 1e6) AS m FROM probe")
        same = _value(
            chdb, "SELECT quantileExactInclusive(0.5)(x * 1.0 + id / 1e6) AS m FROM probe"
        )
    assert sampled != exact
    assert math.isclose(same, exact, rel_tol=1e-12)


@pytest.fixture(scope="module")
def catalog_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tables = sample_tables(SAMPLE_ROWS, SAMPLE_SEED)
    folder = tmp_path_factory.mktemp("catalog-clickhouse")
    return {
        "duckdb": load_duckdb(tables, folder / "duckdb"),
        "clickhouse": write_parquet_folder(tables, folder / "parquet"),
    }


@pytest.fixture(scope="module")
def catalog() -> Any:
    from tests.engines import ROOT

    return kpiengine.load(ROOT / "definitions")


@pytest.mark.slow
@pytest.mark.parametrize("dimension", [None, "region"], ids=["total", "by-region"])
@pytest.mark.parametrize("grain", ["month", "quarter"])
def test_catalog_equal_duckdb(
    grain: str, dimension: str | None, catalog: Any, catalog_urls: dict[str, str]
) -> None:
    expected = run_catalog(catalog, catalog_urls["duckdb"], grain, dimension)
    got = run_catalog(catalog, catalog_urls["clickhouse"], grain, dimension)
    assert expected and RANGE
    problems = differences(got, expected)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
