"""bench/hand_sql.py's hand-written statements compute the catalog's numbers: every set
checked against kpiengine on a small sample (the bench checks again at 1M and 10M before
timing). Guards the bench from silently comparing different numbers after a catalog or
sample change."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import kpiengine
from kpiengine.sample import write_sample

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import hand_sql  # noqa: E402
from hand_sql_catalog import CATALOG, catalog_sql  # noqa: E402

SPAN = {"start": hand_sql.START, "end": hand_sql.END}


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


def test_hand_streak_counts_the_same_runs(warehouse: str, tmp_path: Path) -> None:
    """The catalog's quota_consistency is 0 or 1 in every month (company-wide attainment
    seldom reaches 100 %), so its check compares short runs. The same streak at a floor the
    sample crosses compares real ones, started before the range (SPEC §5: `streak` looks
    back)."""
    floor = "0.6"
    hand = catalog_sql()
    assert hand.count("attainment >= 1 ") == 1
    hand = hand.replace("attainment >= 1 ", f"attainment >= {floor} ")
    folder = tmp_path / "definitions"
    shutil.copytree(hand_sql.ROOT / "definitions", folder)
    (folder / "kpis" / "streak.yaml").write_text(
        "kpis:\n  - kpi: bench_streak\n    title: Streak\n    unit: count\n"
        f"    expression: streak(quota_attainment >= {floor})\n",
        encoding="utf-8",
    )
    project = kpiengine.load(folder)
    connection = kpiengine.connect(warehouse)
    result = project.run(["bench_streak"], connection, grain="month", **SPAN)
    names = ["bench_streak" if n == "quota_consistency" else n for n in CATALOG]
    expected = {
        key: value
        for key, value in hand_sql.hand_table(connection.execute(hand)[1], names, False).items()
        if key[0] == "bench_streak"
    }
    ours = hand_sql.table(result, ["bench_streak"], False)
    hand_sql.same(ours, expected, "streak")
    assert len(expected) == 12 and max(expected.values()) >= 2  # runs, not only zeros
    # a run longer than the months of 2025 so far began before the range
    assert any(value > int(period[5:7]) for (_, period, _), value in expected.items())
