"""The plugin's own tests: what a third-party plugin ships. Run with
``pytest plugins/example-functions/tests`` once the package is installed.

Sizes closed in January: 3, 1, 3, 1, 2 (1 and 3 tie: the smallest, 1, wins); in
February 5, 5, 2; none in March. Prices in January: 10, 250, -5, null.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

import kpiengine
from kpiengine.errors import UsageError

pytest.importorskip("kpiengine_example_functions")

ROWS = [
    (3, 10.0, "2024-01-03"),
    (1, 250.0, "2024-01-09"),
    (3, -5.0, "2024-01-15"),
    (1, None, "2024-01-20"),
    (2, 40.0, "2024-01-31"),
    (5, 120.0, "2024-02-02"),
    (5, 80.0, "2024-02-10"),
    (2, 100.0, "2024-02-29"),
]
FILES = {
    "kpiengine.yaml": "project: example\n",
    "orders.yaml": """
        source: orders
        table: orders
        time: ordered_at
        columns:
          size: integer
          price: number
          ordered_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: typical_size
            source: orders
            expression: mode(size)
          - kpi: clamped_revenue
            source: orders
            expression: sum(clamp(price, 0, 100))
        """,
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[kpiengine.KpiProject, str]:
    for name, text in FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    database = tmp_path / "w.duckdb"
    connection = duckdb.connect(str(database))
    connection.execute("CREATE TABLE orders (size INTEGER, price DOUBLE, ordered_at TIMESTAMP)")
    connection.executemany("INSERT INTO orders VALUES (?, ?, ?)", ROWS)
    connection.close()
    return kpiengine.load(tmp_path), f"duckdb:///{database}"


def test_mode_and_clamp_by_month(setup):
    project, url = setup
    with kpiengine.connect(url) as connection:
        result = project.run(
            ["typical_size", "clamped_revenue"],
            connection,
            grain="month",
            start="2024-01-01",
            end="2024-04-01",
        )
    assert [r.value for r in result.rows if r.kpi == "typical_size"] == [1, 5, None]
    # 10 + 100 + 0 + 40; 100 + 80 + 100
    assert [r.value for r in result.rows if r.kpi == "clamped_revenue"] == [150.0, 280.0, None]


def test_mode_is_refused_where_it_cannot_be_exact(setup):
    project, _ = setup
    with pytest.raises(UsageError, match="not available on sqlite"):
        project.compile(["typical_size"], dialect="sqlite", grain="all")
