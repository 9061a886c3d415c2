"""Golden SQL per dialect: the exact statement for a few KPIs, and that it re-parses.

Regenerate after an intended change with ``KPI_UPDATE_GOLDEN=1 pytest tests/test_compile_golden.py``
and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot

from kpiengine.compile.dialects import DIALECTS
from tests.conftest import SALES_FILES, write_files

GOLDEN = Path(__file__).parent / "golden"
CASES = {
    "win_rate_by_region_month": (
        ["win_rate"],
        {"grain": "month", "by": ["region"], "start": "2024-01-01", "end": "2024-04-01"},
    ),
    "derived_quarter": (
        ["avg_deal", "cost_per_deal"],
        {"grain": "quarter", "start": "2024-01-01", "end": "2025-01-01"},
    ),
    "time_functions_by_region": (
        ["revenue_growth", "rolling_deals", "won_streak", "revenue_to_date", "last_spend"],
        {"grain": "month", "by": ["region"], "start": "2024-03-01", "end": "2024-06-01"},
    ),
    "segment_all_where": (
        ["deals", "revenue"],
        {
            "grain": "all",
            "by": ["accounts.segment"],
            "where": "region != 'internal'",
            "start": "2024-01-01",
            "end": "2025-01-01",
        },
    ),
}


TIME_FILES = {
    **SALES_FILES,
    "kpis/time.yaml": """
        kpis:
          - kpi: revenue_growth
            expression: growth(revenue)
          - kpi: rolling_deals
            expression: rolling_avg(deals, 3)
          - kpi: won_streak
            expression: streak(won_count >= 1)
          - kpi: revenue_to_date
            expression: cumulative_sum(revenue)
          - kpi: last_spend
            source: opportunities
            expression: sum(amount)
            semi_additive: last
        """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import kpiengine

    return kpiengine.load(write_files(tmp_path_factory.mktemp("golden") / "defs", TIME_FILES))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sql(project, dialect, case):
    kpis, options = CASES[case]
    sql = project.compile(kpis, dialect=dialect, **options)
    path = GOLDEN / dialect / f"{case}.sql"
    if os.environ.get("KPI_UPDATE_GOLDEN") or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql + "\n", encoding="utf-8")
    assert sql + "\n" == path.read_text(encoding="utf-8")
    statements = sqlglot.parse(sql, read=dialect)
    assert len(statements) == 1, "a run is one statement"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_catalog_style_kpi_compiles_in_every_dialect(project, dialect):
    sql = project.compile(
        None, dialect=dialect, grain="month", start="2024-01-01", end="2024-07-01"
    )
    assert len(sqlglot.parse(sql, read=dialect)) == 1


def test_kpis_on_one_source_share_one_scan(project):
    sql = project.compile(
        ["win_rate", "revenue", "deals", "external_deals", "median_amount"],
        grain="month",
        start="2024-01-01",
        end="2024-04-01",
    )
    tree = sqlglot.parse_one(sql, read="duckdb")
    tables = [t.name for t in tree.find_all(sqlglot.exp.Table) if t.name == "opportunities"]
    assert tables == ["opportunities"]


def test_identical_aggregates_are_computed_once(project):
    # win_rate and won_count both count won deals: one measure serves both
    sql = project.compile(
        ["win_rate", "won_count"], grain="month", start="2024-01-01", end="2024-04-01"
    )
    assert sql.count("COUNT(CASE WHEN t.stage = 'won' THEN 1 END)") == 1


def test_user_text_is_quoted_not_pasted(tmp_path):
    import kpiengine

    files = dict(SALES_FILES)
    files["kpis/evil.yaml"] = """
        kpi: evil
        source: opportunities
        expression: count(where stage = 'x''); DROP TABLE opportunities; --')
        """
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    sql = project.compile(["evil"], grain="all")
    assert "'x''); DROP TABLE opportunities; --'" in sql
    assert len(sqlglot.parse(sql, read="duckdb")) == 1
