"""The ClickHouse plugin's dialect has a capability table like the built-in dialects':
``kpi validate --dialect clickhouse`` reads it, ``python -m kpiengine.compile.dialects
--plugins`` shows it; and the whole catalog compiles into one statement chDB accepts at
week grain (its default query limits are raised by the connection).

Skipped outside CI when chDB or the plugin is not installed (failed on CI).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.cli import main
from kpiengine.compile.dialects import rules_for
from kpiengine.compile.dialects.capabilities import CAPABILITIES, refused
from tests.conftest import SALES_FILES, write_files
from tests.engines import ROOT, load_duckdb, on_ci, sample_tables

try:
    import chdb  # noqa: F401
    import kpiengine_clickhouse  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    if on_ci():
        pytest.fail(f"the kpiengine-clickhouse plugin is required on CI: {error}", pytrace=False)
    pytest.skip(f"kpiengine-clickhouse or chDB not installed: {error}", allow_module_level=True)

FILES = {
    **SALES_FILES,
    "kpis/probes.yaml": """
        kpis:
          - kpi: rounded_avg
            source: opportunities
            expression: round(avg(amount), 2)
          - kpi: capped
            source: opportunities
            expression: least(sum(amount), 1000)
        """,
}


def test_the_table_is_like_the_builtins():
    rules = rules_for("clickhouse")
    assert set(rules.CAPABILITIES) <= set(CAPABILITIES)
    for key, support in rules.CAPABILITIES.items():
        assert support.note, key
        assert support.url.startswith("https://"), key
    assert rules.support("percentile_cont").status == "rewritten"
    assert not any(rules.support(key).refused for key in CAPABILITIES)


def test_the_doc_generator_shows_plugin_dialects_on_request():
    def generated(*args: str) -> str:
        command = [sys.executable, "-m", "kpiengine.compile.dialects", *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    with_plugins = generated("--plugins")
    header = next(line for line in with_plugins.splitlines() if line.startswith("| construct"))
    assert header.endswith("| mysql | clickhouse |")
    row = next(line for line in with_plugins.splitlines() if line.startswith("| ROUND ties"))
    assert row.endswith("| **no** | yes (rewritten) |")  # mysql, clickhouse
    assert "### clickhouse" in with_plugins and "quantileExactInclusive" in with_plugins
    # docs/dialects.md: the built-ins only, whatever is installed
    assert generated() == (ROOT / "docs" / "dialects.md").read_text(encoding="utf-8")
    assert "clickhouse" not in generated()


def _validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", str(root), "--dialect", "clickhouse"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def test_validate_reads_the_plugin_table(tmp_path, capsys, monkeypatch):
    root = write_files(tmp_path / "defs", FILES)
    code, out = _validate(root, capsys)
    assert code == 0 and "KPI404" not in out
    # a refusal in the plugin's table is a positioned KPI404, as for a built-in dialect
    from kpiengine_clickhouse.dialect import Rules

    table = {**Rules.CAPABILITIES, "round_ties": refused("no exact ROUND", "https://x")}
    monkeypatch.setattr(Rules, "CAPABILITIES", table)
    code, out = _validate(root, capsys)
    assert code == 1
    assert "KPI404 round is not available on clickhouse: no exact ROUND" in out
    assert "probes.yaml:5:" in out


@pytest.mark.slow
def test_the_catalog_at_week_grain_runs_on_chdb(tmp_path):
    """One statement for the whole catalog at week grain: past chDB's default limits
    (TOO_MANY_QUERY_PLAN_OPTIMIZATIONS) until the connection raised them; same numbers."""
    from tests.test_clickhouse import write_parquet_folder
    from tests.test_engines import RANGE, SAMPLE_ROWS, SAMPLE_SEED, differences

    tables = sample_tables(SAMPLE_ROWS, SAMPLE_SEED)
    urls = {
        "duckdb": load_duckdb(tables, tmp_path / "duckdb"),
        "clickhouse": write_parquet_folder(tables, tmp_path / "parquet"),
    }
    catalog = kpiengine.load(ROOT / "definitions")

    def values(url: str) -> dict[tuple[Any, ...], Any]:
        with kpiengine.connect(url) as connection:
            result = catalog.run(catalog.kpis, connection, grain="week", **RANGE)
        return {(row.kpi, row.period): row.value for row in result.rows}

    want = values(urls["duckdb"])
    problems = differences(values(urls["clickhouse"]), want)
    assert not problems, "\n".join(problems[:20])
    assert len(want) > 5000
