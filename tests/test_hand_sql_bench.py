"""bench/hand_sql.py's hand-written statements compute the catalog's numbers: every set
checked against kpiengine on a small sample (the bench checks again at 1M and 10M before
timing). Guards the bench from silently comparing different numbers after a catalog or
sample change."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import kpiengine
from kpiengine.sample import write_sample

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import hand_sql  # noqa: E402


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hand_sql") / "sample.duckdb"
    write_sample(f"duckdb:///{path}", rows=20_000, seed=3)
    return f"duckdb:///{path}"


@pytest.mark.parametrize("label", [s[0] for s in hand_sql.SETS])
def test_hand_statement_gives_the_catalog_numbers(warehouse: str, label: str) -> None:
    _, names, options, hand = next(s for s in hand_sql.SETS if s[0] == label)
    project = hand_sql.bench_project()
    connection = kpiengine.connect(warehouse)
    _, compared = hand_sql.check_set(project, connection, label, names, options, hand)
    periods = 12 * (4 if options else 1)  # month grain over 2025, four regions at least
    assert compared >= periods * len(names) // 2  # most values are non-null and compared


def test_bench_project_adds_the_median_without_touching_the_catalog() -> None:
    project = hand_sql.bench_project()
    assert "median_deal_size" in project.model.kpis
    catalog = kpiengine.load(hand_sql.ROOT / "definitions")
    assert "median_deal_size" not in catalog.model.kpis
