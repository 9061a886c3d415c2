"""Lint warnings (KPI6xx): each fires where it should, stays quiet where it should not,
never fails `kpi validate` by default, and is silenced by the project's `validate:`."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from kpiengine.api import load_and_check
from kpiengine.diagnostics import CODES, Severity
from kpiengine.language.lint import RULES, lint_project

CORPUS = Path(__file__).parent / "corpus"


def kpi(name: str = "k", **fields: str) -> str:
    """A documented KPI on `opportunities`; pass a field as "" to leave it out."""
    values = {
        "title": "K",
        "description": "A KPI.",
        "owner": "qa",
        "unit": "count",
        "source": "opportunities",
        "expression": "count()",
        **fields,
    }
    lines = [f"kpi: {name}"] + [f"{key}: {value}" for key, value in values.items() if value]
    return "\n".join(lines) + "\n"


def warnings(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, str]]:
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    _, found = load_and_check(root)
    assert all(d.code in CODES for d in found)
    return [(d.code, d.message) for d in found if d.severity == Severity.WARNING]


def codes(tmp_path: Path, files: dict[str, str]) -> list[str]:
    return [code for code, _ in warnings(tmp_path, files)]


def test_every_warning_has_a_kpi6xx_code():
    assert len(RULES) == 5
    assert [c for c in CODES if c.startswith("KPI6")] == [f"KPI60{i}" for i in range(1, 8)]


def test_the_base_project_has_no_warnings(tmp_path):
    assert codes(tmp_path, {}) == []


# -- KPI601 unused source ---------------------------------------------------------------


def test_unused_source(tmp_path):
    found = warnings(tmp_path, {"s/leads.yaml": "source: leads\ncolumns:\n  x: string\n"})
    assert found == [("KPI601", "source `leads` is not used by any KPI")]


def test_a_joined_source_is_used(tmp_path):
    # accounts is only joined from opportunities; the base project does not warn for it
    assert "KPI601" not in codes(tmp_path, {})


def test_a_source_joined_only_from_an_unused_source_is_unused(tmp_path):
    files = {
        "s/a.yaml": "source: a\ncolumns:\n  x: string\njoins:\n  - source: b\n    on: x\n",
        "s/b.yaml": "source: b\ncolumns:\n  x: string\n",
    }
    assert sorted(m for c, m in warnings(tmp_path, files) if c == "KPI601") == [
        "source `a` is not used by any KPI",
        "source `b` is not used by any KPI",
    ]


def test_no_unused_source_warning_while_a_file_fails_to_load(tmp_path):
    files = {
        "s/leads.yaml": "source: leads\ncolumns:\n  x: string\n",
        "k/broken.yaml": "kpi: x\nsource: [leads\n",
    }
    assert "KPI601" not in codes(tmp_path, files)


# -- KPI602-604 documentation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "code"), [("description", "KPI602"), ("owner", "KPI603"), ("unit", "KPI604")]
)
def test_undocumented_kpi(tmp_path, field, code):
    assert codes(tmp_path, {"k/x.yaml": kpi(**{field: ""})}) == [code]


def test_blank_description_counts_as_missing(tmp_path):
    assert codes(tmp_path, {"k/x.yaml": kpi(description="'  '")}) == ["KPI602"]


def test_a_kpi_in_a_file_with_a_load_error_is_not_linted(tmp_path):
    # the invalid unit is dropped from the model; "no unit" would repeat the error
    assert codes(tmp_path, {"k/x.yaml": kpi(unit="percents", owner="")}) == []


# -- KPI605 target without a rule -------------------------------------------------------


def test_target_without_rule(tmp_path):
    found = warnings(tmp_path, {"k/x.yaml": kpi() + "target: {value: 3}\n"})
    assert found == [("KPI605", "KPI `k` has a target but no rule compares with it")]


def test_target_with_a_rule_that_uses_it(tmp_path):
    rule = "rules:\n  - name: low\n    when: value < target * 0.9\n    severity: info\n"
    assert codes(tmp_path, {"k/x.yaml": kpi() + "target: {value: 3}\n" + rule}) == []


def test_a_rule_that_ignores_the_target_does_not_count(tmp_path):
    rule = "rules:\n  - name: low\n    when: value < 2\n    severity: info\n"
    assert codes(tmp_path, {"k/x.yaml": kpi() + "target: {value: 3}\n" + rule}) == ["KPI605"]


def test_target_hint_follows_the_direction(tmp_path):
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    (root / "x.yaml").write_text(kpi() + "target: {value: 3, direction: lower}\n")
    _, found = load_and_check(root)
    assert found[0].hint is not None and "value > target" in found[0].hint


# -- KPI606 percent that is not a ratio -------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "count(where stage = 'won') / count()",
        "1 - sum(amount where stage = 'lost') / sum(amount)",
        "round(count(where stage = 'won') / count(), 2)",
        "avg(if(stage = 'won', 1, 0))",
        "percentile(amount, 0.5)",
    ],
)
def test_source_percent_that_is_a_ratio(tmp_path, expression):
    assert codes(tmp_path, {"k/x.yaml": kpi(unit="percent", expression=expression)}) == []


@pytest.mark.parametrize(
    "expression", ["count(where stage = 'won')", "sum(amount / 100)", "count() - 1"]
)
def test_source_percent_that_is_not_a_ratio(tmp_path, expression):
    assert codes(tmp_path, {"k/x.yaml": kpi(unit="percent", expression=expression)}) == ["KPI606"]


@pytest.mark.parametrize(
    ("expression", "warned"),
    [
        ("revenue / deals", False),
        ("growth(revenue)", False),
        ("rolling_avg(win_rate, 3)", False),  # an input is a percent
        ("win_rate - previous(win_rate)", False),
        ("revenue - spend", True),
        ("previous(deals)", True),
    ],
)
def test_derived_percent(tmp_path, expression, warned):
    text = kpi(unit="percent", expression=expression, source="")
    assert ("KPI606" in codes(tmp_path, {"k/x.yaml": text})) == warned


# -- KPI607 dimension missing from an input's source ------------------------------------


def test_dimension_missing_from_an_input(tmp_path):
    found = warnings(tmp_path, {"k/x.yaml": kpi(expression="revenue / spend", source="")})
    assert [c for c, _ in found] == ["KPI607", "KPI607"]
    assert "cannot be grouped by `region`" in found[0][1] + found[1][1]
    assert "input `spend` (source `spend`)" in found[0][1]


def test_inputs_with_the_same_dimensions(tmp_path):
    assert codes(tmp_path, {"k/x.yaml": kpi(expression="revenue / deals", source="")}) == []


def test_a_derived_kpi_that_declares_its_dimensions_is_checked_not_linted(tmp_path):
    text = kpi(expression="revenue / spend", source="") + "dimensions: []\n"
    assert codes(tmp_path, {"k/x.yaml": text}) == []


# -- configuration and the catalog ------------------------------------------------------


def test_warnings_do_not_fail_and_ignore_silences_them(tmp_path, capsys):
    from kpiengine.cli import main

    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    (root / "x.yaml").write_text(kpi(owner="", unit=""))
    assert main(["validate", str(root)]) == 0
    assert "KPI603" in capsys.readouterr().out
    (root / "kpiengine.yaml").write_text("project: p\nvalidate: {ignore: [KPI603, KPI604]}\n")
    assert main(["validate", str(root), "--fail-on", "warning"]) == 0
    assert "KPI60" not in capsys.readouterr().out


def test_load_and_check_without_lint(tmp_path):
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    (root / "x.yaml").write_text(kpi(owner=""))
    assert [d.code for d in load_and_check(root)[1]] == ["KPI603"]
    assert load_and_check(root, lint=False)[1] == []


def test_the_bundled_catalog_has_no_errors():
    project, found = load_and_check(Path(__file__).parent.parent / "definitions")
    assert not [str(d) for d in found if d.severity >= Severity.ERROR]
    assert lint_project(project, found) == [d for d in found if d.code.startswith("KPI6")]
