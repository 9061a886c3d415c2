"""Shared fixtures: tiny projects written to a temp folder and tiny DuckDB warehouses.

Also the suite's two rules about files: nothing is written into the source tree (what a
person may want to look at afterwards, such as the browser screenshot, goes to
``run_output``, printed at the end of the run), and a golden file is only ever written
when asked for (``--update-goldens`` or ``KPI_UPDATE_GOLDENS=1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kpiengine.testing.dataset import (
    ACCOUNTS,
    OPPORTUNITIES,
    SALES_FILES,
    SALES_TABLES,
    SPEND,
    write_files,
)

__all__ = [
    "ACCOUNTS",
    "ENGINES",
    "OPPORTUNITIES",
    "SALES_FILES",
    "SALES_TABLES",
    "SPEND",
    "check_golden",
    "engine_url",
    "make_duckdb",
    "make_sqlite",
    "write_files",
]

#: Where ``run_output`` points when set (e.g. a CI artefact folder).
OUTPUT_ENV = "KPI_TEST_OUTPUT"
#: Set to 1 to (re)write golden files, as ``--update-goldens`` does.
UPDATE_GOLDENS_ENV = "KPI_UPDATE_GOLDENS"
_OUTPUT_KEY = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The compile cache (kpiengine/cache.py) off for the suite: tests swap dialect rules
    and plugins in-process, which a cache keyed by files would not see, and a suite must
    not fill the user's cache folder. tests/test_cache.py turns it on, in a folder of its
    own, for the subprocesses it checks."""
    os.environ["KPI_CACHE"] = "0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="write missing golden files and rewrite differing ones (review the diff); "
        f"without it (or {UPDATE_GOLDENS_ENV}=1) a missing or differing golden file fails",
    )


@pytest.fixture(scope="session")
def update_goldens(request: pytest.FixtureRequest) -> bool:
    """Whether golden files may be written: only on an explicit request, so a missing
    golden file fails in CI instead of being created and passing."""
    flag = bool(request.config.getoption("update_goldens"))
    return flag or os.environ.get(UPDATE_GOLDENS_ENV) == "1"


UPDATE_HINT = "rerun with --update-goldens (or KPI_UPDATE_GOLDENS=1) and review the diff"


def check_golden(path: Path, text: str, update: bool) -> None:
    """``text`` must equal the golden file at ``path``. Only with ``update`` is the file
    written (created or rewritten); otherwise a missing file fails like a differing one,
    so a golden file never appears, or changes, without someone asking for it."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing: {UPDATE_HINT}", pytrace=False)
    assert text == path.read_text(encoding="utf-8"), f"{path} differs: {UPDATE_HINT}"


@pytest.fixture(scope="session")
def run_output(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for what a person may want to look at after the run (a screenshot, the
    engine equivalence counts): ``$KPI_TEST_OUTPUT`` or a folder of this run's pytest
    temporary directory — never the source tree. Created by whoever writes into it; the
    path is printed at the end of the run."""
    configured = os.environ.get(OUTPUT_ENV)
    folder = Path(configured) if configured else tmp_path_factory.getbasetemp() / "output"
    request.config.stash[_OUTPUT_KEY] = folder
    return folder


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    folder = config.stash.get(_OUTPUT_KEY, None)
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        names = ", ".join(sorted(p.name for p in folder.iterdir()))
        terminalreporter.write_line(f"test output ({names}) in {folder.resolve()}")


def make_duckdb(path: Path, tables: Mapping[str, tuple[str, Sequence[Sequence[Any]]]]) -> str:
    """Create a DuckDB file: table → (column DDL, rows). Returns its connector URL."""
    import duckdb

    connection = duckdb.connect(str(path))
    for name, (ddl, rows) in tables.items():
        connection.execute(f"CREATE TABLE {name} ({ddl})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(f"INSERT INTO {name} VALUES ({marks})", list(rows))
    connection.close()
    return f"duckdb:///{path}"


def make_sqlite(path: Path, tables: Mapping[str, tuple[str, Sequence[Sequence[Any]]]]) -> str:
    """The same tables in SQLite: dates and timestamps as ISO text, as SQLite stores them."""
    import sqlite3

    types = {
        "VARCHAR": "TEXT",
        "DOUBLE": "REAL",
        "TIMESTAMP": "TEXT",
        "DATE": "TEXT",
        "INTEGER": "INTEGER",
        "BOOLEAN": "INTEGER",
    }
    connection = sqlite3.connect(path)
    for name, (ddl, rows) in tables.items():
        columns = []
        for part in ddl.split(","):
            column, kind = part.split()
            columns.append(f"{column} {types[kind.upper()]}")
        connection.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(f"INSERT INTO {name} VALUES ({marks})", list(rows))
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


ENGINES = {"duckdb": (make_duckdb, "w.duckdb"), "sqlite": (make_sqlite, "w.db")}


def engine_url(engine: str, folder: Path, tables: Mapping[str, Any]) -> str:
    make, name = ENGINES[engine]
    return make(folder / name, tables)


@pytest.fixture
def project_dir(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    def build(files: Mapping[str, str]) -> Path:
        return write_files(tmp_path / "defs", files)

    return build


# -- the shared tiny sales dataset ------------------------------------------------------
# Declared once, in kpiengine.testing.dataset (the benchmarks use it too); re-exported here
# for the tests that import it from conftest. Every expected number in test_semantics.py
# is computed by hand from these rows.


@pytest.fixture(params=sorted(ENGINES))
def sales(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    """(project, open connection) over the tiny sales dataset, on each embedded engine."""
    import kpiengine

    root = write_files(tmp_path / "defs", SALES_FILES)
    url = engine_url(request.param, tmp_path, SALES_TABLES)
    project = kpiengine.load(root)
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()
