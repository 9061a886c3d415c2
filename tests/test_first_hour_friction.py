"""Issue 15's first-hour friction, each through the CLI: rule did-you-mean, the
timestamp-vs-number hint, the follow-on error of a file with invalid YAML, and `kpi run`
computing the sound KPIs of a project that has a broken one."""

from __future__ import annotations

import json

import pytest

from kpiengine.cli import main
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files

RANGE = ("--from", "2024-01-01", "--to", "2024-03-01")


def kpi(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def project(tmp_path, extra: dict[str, str]) -> tuple[str, str]:
    root = write_files(tmp_path / "defs", {**SALES_FILES, **extra})
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return str(root), url


def test_rule_typo_suggests_value_not_a_kpi(tmp_path, capsys):
    rule = """kpi: utilization
source: opportunities
expression: count()
target: {value: 3}
rules:
  - name: low
    when: valeu < targt
    severity: warning
"""
    root, _ = project(tmp_path, {"kpis/util.yaml": rule})
    code, out, _ = kpi(capsys, "validate", root)
    assert code == 1
    assert "did you mean `value`?" in out
    assert "did you mean `target`?" in out
    assert "utilization?" not in out


def test_timestamp_compared_with_number_has_a_hint(tmp_path, capsys):
    bad = """kpi: late
source: opportunities
expression: count(where closed_at > 30)
"""
    root, _ = project(tmp_path, {"kpis/late.yaml": bad})
    code, out, _ = kpi(capsys, "validate", root)
    assert code == 1
    assert "KPI305" in out
    assert "date '2024-01-01'" in out and "days_between" in out


def test_invalid_yaml_follow_on_error_names_the_file(tmp_path, capsys):
    broken = "kpi: base_count\nsource: opportunities\n  expression: count()\n"
    derived = "kpi: doubled\nexpression: base_count * 2\n"
    root, _ = project(tmp_path, {"kpis/base.yaml": broken, "kpis/doubled.yaml": derived})
    code, out, _ = kpi(capsys, "validate", root)
    assert code == 1
    assert "KPI101" in out
    assert "KPI302" in out  # kept: `doubled` cannot be computed until base.yaml is fixed
    assert "defined in" in out and "base.yaml, which has invalid YAML" in out


BROKEN = {
    "kpis/broken.yaml": "kpi: broken\nsource: opportunities\nexpression: sum(amountt)\n",
    "kpis/downstream.yaml": "kpi: downstream\nexpression: broken / deals\n",
}


def test_run_computes_sound_kpis_and_reports_the_broken(tmp_path, capsys):
    root, url = project(tmp_path, BROKEN)
    args = ("--project", root, "--connector", url, *RANGE, "--format", "json")
    code, out, err = kpi(capsys, "run", "deals", "broken", *args)
    assert code == 1
    doc = json.loads(out)
    assert list(doc) == ["grain", "from", "to", "as_of", "rows", "alerts"]  # SPEC §6 shape
    assert {r["kpi"] for r in doc["rows"]} == {"deals"}
    assert "KPI301" in err and "amountt" in err


def test_run_all_skips_broken_and_dependents(tmp_path, capsys):
    root, url = project(tmp_path, BROKEN)
    args = ("--project", root, "--connector", url, *RANGE, "--format", "json")
    code, out, err = kpi(capsys, "run", "--all", *args)
    assert code == 1
    computed = {r["kpi"] for r in json.loads(out)["rows"]}
    assert {"deals", "win_rate", "avg_deal"} <= computed
    assert not computed & {"broken", "downstream"}
    assert "`downstream` not computed: it reads `broken`" in err


def test_run_of_only_broken_kpi_is_a_definition_error(tmp_path, capsys):
    root, url = project(tmp_path, BROKEN)
    code, out, err = kpi(capsys, "run", "downstream", "--project", root, "--connector", url)
    assert code == 1 and out == ""
    assert "KPI301" in err


def test_run_of_unrelated_kpi_still_exits_1(tmp_path, capsys):
    root, url = project(tmp_path, BROKEN)
    args = ("--project", root, "--connector", url, *RANGE, "--format", "csv")
    code, out, err = kpi(capsys, "run", "deals", *args)
    assert code == 1
    assert "deals" in out
    assert "more definition error(s)" in err


@pytest.mark.parametrize("command", ["validate"])
def test_validate_unchanged(tmp_path, capsys, command):
    root, _ = project(tmp_path, BROKEN)
    code, out, _ = kpi(capsys, command, root)
    assert code == 1 and "KPI301" in out
