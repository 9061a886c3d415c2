"""Golden SQL per dialect: the exact statement for a few KPIs, and that it re-parses.

A missing or differing golden file fails. After an intended change, rewrite them with
``pytest tests/test_compile_golden.py --update-goldens`` (or ``KPI_UPDATE_GOLDENS=1``)
and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from kpiengine.compile.dialects import DIALECTS
from tests.conftest import SALES_FILES, check_golden, write_files

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
    "conversion_by_region": (  # a funnel step (SPEC §13.5): a derived table in the scan
        ["deal_to_win_90d"],
        {"grain": "month", "by": ["region"], "start": "2024-01-01", "end": "2024-04-01"},
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
          - kpi: deal_to_win_90d
            conversion:
              base: {source: opportunities, time: created_at}
              event: {source: opportunities, filter: "stage = 'won'"}
              entity: account_id
              within: {days: 90}
        """,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    import kpiengine

    return kpiengine.load(write_files(tmp_path_factory.mktemp("golden") / "defs", TIME_FILES))


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sql(project, dialect, case, update_goldens):
    kpis, options = CASES[case]
    sql = project.compile(kpis, dialect=dialect, **options)
    check_golden(GOLDEN / dialect / f"{case}.sql", sql + "\n", update_goldens)
    statements = sqlglot.parse(sql, read=dialect)
    assert len(statements) == 1, "a run is one statement"


#: KPIs of TIME_FILES a dialect refuses (KPI404, docs/dialects.md): no exact percentile
REFUSED = {d: {"median_amount", "p90_amount"} for d in ("bigquery", "trino", "tsql", "mysql")}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_catalog_style_kpi_compiles_in_every_dialect(project, dialect):
    """Every KPI compiles, except those the dialect refuses, which are refused (KPI404)."""
    from kpiengine.errors import DefinitionError

    options = {"grain": "month", "start": "2024-01-01", "end": "2024-07-01"}
    refused = REFUSED.get(dialect, set())
    kept = [k for k in project.kpis if k not in refused]
    sql = project.compile(kept, dialect=dialect, **options)
    assert len(sqlglot.parse(sql, read=dialect)) == 1
    if refused:
        with pytest.raises(DefinitionError) as raised:
            project.compile(None, dialect=dialect, **options)
        assert {d.code for d in raised.value.diagnostics} == {"KPI404"}
        assert len(raised.value.diagnostics) == len(refused)


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


def _run_golden_tests(folder: Path, *args: str, env: dict[str, str] | None = None):
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if k != "KPI_UPDATE_GOLDENS"}
    environment.update(env or {})
    pytest_args = ["-q", "-p", "no:cacheprovider", "-k", "duckdb", *args]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *pytest_args,
            "tests/test_compile_golden.py::test_golden_sql",
        ],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_missing_golden_fails_unless_updating(tmp_path):
    """On a copy of this file, its conftest and the goldens: a missing golden file and a
    differing one both fail and are left as they were; --update-goldens or
    KPI_UPDATE_GOLDENS=1 writes them back, identical to the originals."""
    import shutil

    here = Path(__file__).parent
    copy = tmp_path / "tests"
    copy.mkdir()
    for name in ("__init__.py", "conftest.py", "test_compile_golden.py"):
        shutil.copy(here / name, copy / name)
    shutil.copytree(GOLDEN, copy / "golden")
    missing = copy / "golden" / "duckdb" / "derived_quarter.sql"
    differing = copy / "golden" / "duckdb" / "segment_all_where.sql"
    missing.unlink()
    differing.write_text("SELECT 'not this'\n", encoding="utf-8")

    done = _run_golden_tests(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"2 failed, {len(CASES) - 2} passed" in done.stdout, done.stdout
    assert "golden file" in done.stdout and "is missing" in done.stdout
    assert "--update-goldens" in done.stdout
    assert not missing.exists()
    assert differing.read_text(encoding="utf-8") == "SELECT 'not this'\n"

    done = _run_golden_tests(tmp_path, "--update-goldens")
    assert done.returncode == 0, done.stdout + done.stderr
    for path in (missing, differing):
        assert path.read_bytes() == (GOLDEN / "duckdb" / path.name).read_bytes()

    missing.unlink()
    done = _run_golden_tests(tmp_path, env={"KPI_UPDATE_GOLDENS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert missing.read_bytes() == (GOLDEN / "duckdb" / missing.name).read_bytes()
    assert _run_golden_tests(tmp_path).returncode == 0


def test_the_run_output_is_outside_the_source_tree(run_output):
    """Screenshots and equivalence counts go to a temporary folder (or $KPI_TEST_OUTPUT),
    never into tests/output/ of the checkout."""
    import os

    if os.environ.get("KPI_TEST_OUTPUT"):
        pytest.skip("KPI_TEST_OUTPUT chooses the folder")
    assert not run_output.resolve().is_relative_to(Path(__file__).resolve().parent.parent)
