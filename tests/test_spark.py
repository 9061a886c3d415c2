"""Spark in local mode (plugins/spark): the same numbers as DuckDB, and the dialect fixes.

- The pandas-checked time functions of test_time_functions.py run here on Spark (their
  ``env`` fixture is overridden below); the hand-computed cases of test_semantics.py run
  on Spark in test_engines.py, through the ``spark`` entry of tests/engines.py.
- Every rule of kpiengine/dialects/spark.py has a test here that runs sqlglot's plain
  rendering on Spark and shows the wrong number or the error the rule prevents.
- The connector: URLs, Parquet folders, the read-only guard, errors.

One Spark context serves the whole test session (the connector keeps one per process);
each connection gets its own Spark session, so temp views never leak between tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import kpiengine
from tests import test_time_functions
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, write_files
from tests.engines import ENGINES, arrow_tables, require

pytestmark = pytest.mark.slow

SPARK = ENGINES["spark"]
TINY = {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sales tables of conftest.py as ``<table>.parquet`` files."""
    require(SPARK)
    folder = tmp_path_factory.mktemp("spark_tiny")
    SPARK.load(arrow_tables(TINY), folder)
    return folder


@pytest.fixture(scope="module")
def sales_spark(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    """(project, Spark connection) over the tiny sales dataset."""
    project = kpiengine.load(write_files(tmp_path_factory.mktemp("defs"), SALES_FILES))
    with kpiengine.connect(f"spark://local[2]?tables={tiny_folder}") as connection:
        yield project, connection


# -- the time functions of test_time_functions.py, on Spark -------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """Overrides test_time_functions' ``env`` (DuckDB, SQLite) for the tests imported below."""
    require(SPARK)
    folder = tmp_path_factory.mktemp("spark_time")
    project = kpiengine.load(write_files(folder / "defs", test_time_functions.FILES))
    url = SPARK.load(arrow_tables(test_time_functions._tables()), folder / "data")
    with kpiengine.connect(url) as connection:
        yield project, connection


for _name in dir(test_time_functions):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_time_functions, _name)
