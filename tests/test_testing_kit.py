"""The connector conformance kit (kpiengine.testing), run on the built-in connectors.

The classes below are exactly what a connector plugin writes: a ``load_dataset`` that
puts the kit's tables into the engine and returns a URL. Also checks that the kit itself
notices a wrong number and a connector that breaks the contract.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.errors import EngineError
from kpiengine.testing import (
    CASES,
    DATASET,
    Case,
    ConnectorConformance,
    Dataset,
    case_problems,
    contract_problems,
    project_files,
    read_only_problems,
    run_conformance,
    write_project,
)


def load_duckdb(dataset: Dataset, path: Path) -> str:
    import duckdb

    connection = duckdb.connect(str(path))
    for name, table in dataset.tables.items():
        connection.execute(table.create_sql(name))
        if len(table.rows) > 1000:  # DuckDB's executemany takes ~40 s for ticks' rows
            connection.register("incoming", table.to_arrow())
            connection.execute(f"INSERT INTO {name} SELECT * FROM incoming")
            connection.unregister("incoming")
        else:
            connection.executemany(table.insert_sql(name), list(table.rows))
    connection.close()
    return f"duckdb:///{path}"


def load_sqlite(dataset: Dataset, path: Path) -> str:
    types = {
        "string": "TEXT",
        "integer": "INTEGER",
        "number": "REAL",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    }
    connection = sqlite3.connect(path)
    for name, table in dataset.tables.items():
        connection.execute(table.create_sql(name, types))
        connection.executemany(table.insert_sql(name), table.text_rows())
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


#: Product bugs the kit found, to be fixed in kpiengine itself (strict xfail: the test
#: fails as soon as they are fixed, so the entry gets removed).
KNOWN_FAILURES: dict[str, str] = {}


class TestDuckDBConformance(ConnectorConformance):
    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return load_duckdb(dataset, workdir / "kit.duckdb")


class TestDuckDBFromArrowConformance(ConnectorConformance):
    """The same data loaded through pyarrow (as a Spark or files:// loader would)."""

    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        import duckdb

        path = workdir / "kit.duckdb"
        connection = duckdb.connect(str(path))
        for name, table in dataset.tables.items():
            arrow = table.to_arrow()
            connection.register("incoming", arrow)
            connection.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
            connection.unregister("incoming")
        connection.close()
        return f"duckdb:///{path}"

    # The other checks are the same as TestDuckDBConformance's: only run the numbers.
    test_connection_contract = None  # type: ignore[assignment]
    test_read_only = None  # type: ignore[assignment]
    test_close = None  # type: ignore[assignment]


class TestSQLiteConformance(ConnectorConformance):
    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return load_sqlite(dataset, workdir / "kit.db")


class TestFilesConformance(ConnectorConformance):
    """files:/// over Parquet files: the same numbers through DuckDB views."""

    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return f"files:///{dataset.write_parquet(workdir / 'files')}"


class TestSchemaQualifiedConformance(ConnectorConformance):
    """Tables in a schema, as a PostgreSQL plugin would keep them (``schema = ...``)."""

    schema = "kit"

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        import duckdb

        path = workdir / "warehouse.duckdb"  # a file named kit.duckdb would be catalog `kit`
        connection = duckdb.connect(str(path))
        connection.execute("CREATE SCHEMA kit")
        for name, table in dataset.tables.items():
            connection.execute(table.create_sql(f"kit.{name}"))
            connection.register("incoming", table.to_arrow())
            connection.execute(f"INSERT INTO kit.{name} SELECT * FROM incoming")
            connection.unregister("incoming")
        connection.close()
        return f"duckdb:///{path}"

    test_kpis = None  # type: ignore[assignment]  # same numbers as above; contract only


# -- the kit itself -----------------------------------------------------------------------


def test_cases_have_one_value_per_period_and_unique_ids():
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        case.expected()  # raises on a wrong length


def test_every_kit_kpi_is_exercised_by_a_case(tmp_path):
    used = {kpi for case in CASES for kpi in case.kpis}
    project = kpiengine.load(write_project(tmp_path, 1))
    assert sorted(set(project.kpis) - used) == []


def test_every_aggregate_and_time_function_is_covered():
    from kpiengine.language.functions import AGGREGATE, BUILTIN_FUNCTIONS, TIME

    text = "\n".join(project_files().values())
    for spec in BUILTIN_FUNCTIONS:
        if spec.kind in (AGGREGATE, TIME):
            assert f"{spec.name}(" in text, spec.name


def test_the_kit_reports_a_wrong_number(tmp_path):
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    project = kpiengine.load(write_project(tmp_path / "defs"))
    wrong = Case("wrong", "deliberately wrong", "all", (None,), {"deals_count": [9]})
    with kpiengine.connect(url) as connection:
        problems = case_problems(project, connection, wrong)
    assert problems == [
        "case wrong (deliberately wrong):",
        "deals_count all: got 8, expected 9",
    ]


def test_the_kit_reports_missing_and_unexpected_rows(tmp_path):
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    project = kpiengine.load(write_project(tmp_path / "defs"))
    case = Case(
        "rows",
        "rows",
        "year",
        ("2023-01-01",),
        {"deals_count": [7]},
        start="2024-01-01",
        end="2025-01-01",
    )
    with kpiengine.connect(url) as connection:
        problems = case_problems(project, connection, case)
    assert "missing row deals_count 2023-01-01 (expected 7)" in problems
    assert "unexpected row deals_count 2024-01-01 = 7" in problems


class _Sloppy:
    """A connector breaking every rule: writable, wrong errors, wrong columns()."""

    dialect = "nonsense"

    def __init__(self, url: str) -> None:
        import duckdb

        # not read-only; never fetches an extension from the network (the probes ask)
        config = {"autoinstall_known_extensions": False}
        self._connection = duckdb.connect(url.split(":///", 1)[1], config=config)

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = self._connection.execute(sql)  # duckdb errors leak out as they are
        return [d[0] for d in cursor.description or []], cursor.fetchall()

    def columns(self, table: str) -> dict[str, str] | None:
        return {}

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> _Sloppy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_the_kit_reports_a_connector_that_breaks_the_contract(tmp_path):
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    project = kpiengine.load(write_project(tmp_path / "defs"))
    with _Sloppy(url) as connection:
        problems = contract_problems(connection, project)
        writes = read_only_problems(connection)
    text = "\n".join(problems)
    assert "dialect 'nonsense'" in text
    assert "must raise kpiengine.errors.EngineError" in text
    assert "columns('deals') found no table" in text
    assert "columns() of a missing table must be None, got {}" in text
    assert "introspection:" in text and "KPI502" in text
    assert any(p.startswith("a write was accepted: CREATE TABLE") for p in writes)


def test_run_conformance_without_pytest(tmp_path):
    url = load_sqlite(DATASET, tmp_path / "kit.db")
    assert run_conformance(url, tmp_path, skip=list(KNOWN_FAILURES)) == []


def test_the_kit_runs_through_a_plugin_connector(tmp_path, monkeypatch):
    """``open`` may be given: e.g. a connector not registered through entry points."""
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    opened = []

    def open_it(url: str) -> Any:
        opened.append(url)
        return kpiengine.connect(url)

    assert run_conformance(url, tmp_path, open=open_it, skip=list(KNOWN_FAILURES)) == []
    assert opened == [url]


def test_engine_errors_are_engine_errors(tmp_path):
    url = load_sqlite(DATASET, tmp_path / "kit.db")
    with kpiengine.connect(url) as connection, pytest.raises(EngineError):
        connection.execute("SELECT nope FROM deals")


def test_the_kit_imports_and_runs_without_pytest(tmp_path):
    """``import kpiengine.testing`` and ``run_conformance`` need no pytest; only the pytest
    class does, and asking for it then says so (an ImportError, not a crash at import)."""
    import subprocess
    import sys

    url = load_sqlite(DATASET, tmp_path / "kit.db")
    script = f"""
import sys
sys.modules["pytest"] = None  # any `import pytest` now raises ImportError
import kpiengine.testing as kit
from kpiengine.testing import CASES, DATASET, run_conformance
assert run_conformance({url!r}, __import__("pathlib").Path({str(tmp_path)!r})) == []
try:
    kit.ConnectorConformance
except ImportError:
    print("no pytest, no class")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no pytest, no class"


def test_the_package_keeps_the_public_names():
    import kpiengine.testing as kit

    for name in kit.__all__:
        assert getattr(kit, name) is not None, name


class _Rewriting:
    """A real DuckDB connection behind a connector that gets one thing wrong."""

    dialect = "duckdb"

    def __init__(self, url: str, rewrite: Any = None, types: Any = None) -> None:
        self._inner = kpiengine.connect(url)
        self._rewrite = rewrite or (lambda sql: sql)
        self._types = types or (lambda kind: kind)

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return self._inner.execute(self._rewrite(sql))

    def columns(self, table: str) -> dict[str, str] | None:
        found = self._inner.columns(table)
        return None if found is None else {k: self._types(v) for k, v in found.items()}

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _Rewriting:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_TIES = next(case for case in CASES if case.id == "round-ties-and-exact-median")


def _ties_problems(tmp_path: Path, connection: Any) -> str:
    project = kpiengine.load(write_project(tmp_path / "defs"))
    return "\n".join(case_problems(project, connection, _TIES))


@pytest.mark.parametrize(
    ("before", "after", "kpis"),
    [
        # a connector without its ROUND fix (ClickHouse rounds halves to even)
        ("ROUND(", "ROUND_EVEN(", ("ticks_round", "ticks_round_negative", "ticks_round_2")),
        # an approximate median (ClickHouse's quantile(), Trino's approx_percentile)
        ("QUANTILE_CONT(", "APPROX_QUANTILE(", ("ticks_median", "ticks_p90")),
    ],
    ids=["round-half-even", "approximate-median"],
)
def test_the_kit_fails_a_sloppy_rounding_or_median(tmp_path, before, after, kpis):
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    with kpiengine.connect(url) as connection:
        assert _ties_problems(tmp_path / "right", connection) == ""
    with _Rewriting(url, rewrite=lambda sql: sql.replace(before, after)) as sloppy:
        text = _ties_problems(tmp_path / "wrong", sloppy)
    assert before.rstrip("(") != after and text.startswith("case round-ties-and-exact-median")
    for kpi in kpis:
        assert f"\n{kpi} all: got" in text, (kpi, text)


def test_the_kit_fails_raw_type_names(tmp_path):
    """A connector giving the engine's wrapped type names (ClickHouse's Nullable(...))
    leaves the columns unchecked: a KPI505 for the kit's columns fails the contract."""
    url = load_duckdb(DATASET, tmp_path / "kit.duckdb")
    project = kpiengine.load(write_project(tmp_path / "defs"))
    with kpiengine.connect(url) as connection:
        assert contract_problems(connection, project) == []
    with _Rewriting(url, types=lambda kind: f"Nullable({kind})") as sloppy:
        text = "\n".join(contract_problems(sloppy, project))
    assert "KPI505" in text and "Nullable(DOUBLE)" in text
