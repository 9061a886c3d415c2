"""The memory benches run what they say: bench/catalog_growth.py's ``--memory-limit``
reaches DuckDB through the URL, and bench/spill_profile.py profiles the compiled catalog
statement operator by operator, each operator named with the CTE it computes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import kpiengine
from kpiengine.sample import write_sample

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import catalog_growth  # noqa: E402
import spill_profile  # noqa: E402


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("memory_bench") / "sample.duckdb"
    write_sample(f"duckdb:///{path}", rows=5_000, seed=5)
    return path


def test_memory_limit_option_reaches_duckdb(warehouse: Path) -> None:
    options = catalog_growth.arguments(["3", "1000000", "10000000", "--memory-limit", "1GB"])
    assert (options.runs, options.rows, options.memory_limit) == (3, [1_000_000, 10_000_000], "1GB")
    assert catalog_growth.arguments(["1", "100000"]).memory_limit is None
    url = catalog_growth.duckdb_url(warehouse, options.memory_limit)
    with kpiengine.connect(url) as connection:
        _, rows = connection.execute("SELECT current_setting('memory_limit')")
    assert rows == [("953.6 MiB",)]  # 1 GB = 10^9 bytes, as DuckDB prints it
    assert catalog_growth.duckdb_url(warehouse, None) == f"duckdb:///{warehouse}"


def test_spill_profile_names_the_operators_of_each_cte(warehouse: Path) -> None:
    project = kpiengine.load(catalog_growth.ROOT / "definitions")
    sql = project.compile(list(project.kpis), grain="month", start="2025-01-01", end="2026-01-01")
    result = spill_profile.run(sql, warehouse, "1GB", [], every=0.01)
    assert result["seconds"] > 0
    found = list(spill_profile.operators({"children": result["profile"]["operator"]}))
    ctes = {cte for cte, _, _ in found}
    assert "final SELECT" in ctes  # the statement's scans are CTEs s0, s1, …
    assert sum(1 for cte in ctes if re.fullmatch(r"s\d+", cte)) >= 10
    scans = {
        node["extra_info"]["Table"].split(".")[-1] for _, name, node in found if name == "SEQ_SCAN"
    }
    assert {"opportunities", "mrr_snapshots", "activities"} <= scans
    assert result["profile"]["system"]["total_bytes_spilled"] == 0  # 5 000 deals fit in 1 GB
