"""Bad definition files through `kpi validate`: each gives a clear error with its code,
file and line (and column where it matters), exit code 1, and never a traceback."""

from __future__ import annotations

import json

import pytest

from kpiengine.cli import main
from kpiengine.testing.dataset import SALES_SOURCES
from tests.conftest import write_files

# the shared small sales project's sources (kpiengine.testing.dataset) and one good KPI
BASE = {
    **SALES_SOURCES,
    "kpis/good.yaml": """
        kpi: deals
        source: opportunities
        expression: count()
        """,
}


def kpi(expression: str, extra: str = "") -> str:
    return f"kpi: bad\nsource: opportunities\nexpression: {expression}\n{extra}"


def derived(expression: str) -> str:
    return f"kpi: bad\nexpression: {expression}\n"


DEEP = "(" * 10_000 + "1" + ")" * 10_000
# (name, file text or bytes, expected code, line, column or None)
CASES = [
    ("missing_paren", kpi("count(where stage = 'won'"), "KPI201", 3, None),
    ("dangling_operator", kpi("sum(amount) +"), "KPI201", 3, None),
    ("double_star", kpi("sum(amount) ** 2"), "KPI201", 3, 26),
    ("leading_paren", kpi(") count()"), "KPI201", 3, 13),
    ("unterminated_string", kpi("count(where stage = 'won)"), "KPI201", 3, None),
    ("double_equals", kpi("count(where stage == 'won')"), "KPI201", 3, None),
    ("deep_nesting", kpi(DEEP), "KPI202", 3, None),
    ("unknown_column", kpi("count(where stag = 'won')"), "KPI301", 3, 25),
    ("unknown_kpi", derived("revenu / deals"), "KPI302", 2, 13),
    ("unknown_function", kpi("summ(amount)"), "KPI303", 3, 13),
    ("arity", kpi("round(sum(amount), 1, 2)"), "KPI304", 3, 13),
    ("string_plus_number", kpi("sum(amount where 'won' + 1 > 0)"), "KPI305", 3, None),
    ("column_outside_aggregate", kpi("amount / count()"), "KPI306", 3, 13),
    ("nested_aggregate", kpi("sum(count())"), "KPI307", 3, 17),
    ("aggregate_in_filter", kpi("count()", "filter: sum(amount) > 0\n"), "KPI307", 4, 9),
    ("where_outside_aggregate", kpi("round(sum(amount) where stage = 'won')"), "KPI308", 3, None),
    (
        "cycle",
        "kpis:\n  - kpi: a\n    expression: b + 1\n  - kpi: b\n    expression: a * 2\n",
        "KPI309",
        3,
        None,
    ),
    ("dimension_missing", kpi("count()", "dimensions: [regio]\n"), "KPI310", 4, None),
    ("unknown_source", "kpi: bad\nsource: opportunity\nexpression: count()\n", "KPI311", 2, None),
    ("time_function_in_source_kpi", kpi("previous(sum(amount))"), "KPI312", 3, 13),
    ("time_not_temporal", kpi("count()", "time: region\n"), "KPI315", 4, None),
    ("percentile_fraction", kpi("percentile(amount, 2)"), "KPI316", 3, None),
    ("filter_not_condition", kpi("count()", "filter: amount\n"), "KPI305", 4, None),
    ("kpi_gives_boolean", kpi("count() > 3"), "KPI305", 3, None),
    ("date_vs_string", kpi("count(where closed_at > '2024-01-01')"), "KPI305", 3, None),
    (
        "derived_with_filter",
        "kpi: bad\nexpression: deals * 2\nfilter: region = 'x'\n",
        "KPI105",
        None,
        None,
    ),
    (
        "malformed_yaml",
        "kpi: bad\n  source: [opportunities\nexpression: count()\n",
        "KPI101",
        None,
        None,
    ),
    ("empty_file", "", "KPI102", 1, None),
    ("comments_only", "# nothing here\n", "KPI102", 1, None),
    (
        "not_utf8",
        b"kpi: bad\nsource: opportunities\nexpression: count(where stage = '\xe9')\n",
        "KPI100",
        None,
        None,
    ),
    (
        "duplicate_key",
        "kpi: bad\nsource: opportunities\nexpression: count()\nkpi: again\n",
        "KPI103",
        4,
        1,
    ),
    ("unknown_key", kpi("count()", "titel: Bad\n"), "KPI104", 4, 1),
    ("wrong_type", kpi("count()", "tags: 3\n"), "KPI105", 4, None),
    ("missing_expression", "kpi: bad\nsource: opportunities\n", "KPI105", 1, None),
    ("bad_unit", kpi("count()", "unit: percents\n"), "KPI105", 4, None),
    ("bad_name", "kpi: Bad Name\nsource: opportunities\nexpression: count()\n", "KPI105", 1, None),
    ("unknown_kind", "metric: bad\nexpression: count()\n", "KPI106", 1, 1),
    (
        "duplicate_kpi",
        "kpi: deals\nsource: opportunities\nexpression: count()\n",
        "KPI107",
        1,
        None,
    ),
    (
        "join_unknown_source",
        "source: extra\ntable: extra\ncolumns:\n  x: string\njoins:\n"
        "  - source: nowhere\n    on: x\n",
        "KPI311",
        None,
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "text", "code", "line", "column"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(tmp_path, capsys, name, text, code, line, column):
    root = write_files(tmp_path / "defs", BASE)
    path = root / "kpis" / "bad.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    exit_code = main(["validate", str(root), "--format", "json"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert exit_code == 1
    found = json.loads(captured.out)["diagnostics"]
    mine = [d for d in found if d["code"] == code]
    assert mine, f"expected {code}, got {[(d['code'], d['message']) for d in found]}"
    first = mine[0]
    # a duplicate is reported at the second definition: good.yaml sorts after bad.yaml
    assert first["file"].endswith("good.yaml" if name == "duplicate_kpi" else "bad.yaml")
    if line is not None:
        assert first["line"] == line, first
    if column is not None:
        assert first["column"] == column, first
    assert first["message"]


def test_text_format_points_at_the_line(tmp_path, capsys):
    root = write_files(tmp_path / "defs", BASE)
    (root / "kpis" / "bad.yaml").write_text(kpi("count(where stag = 'won')"))
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml:3:25: KPI301 unknown column `stag`" in out
    assert " 3 | expression: count(where stag = 'won')" in out
    assert "   |                         ^^^^" in out
    assert "hint: did you mean `stage`?" in out


def test_every_file_is_reported(tmp_path, capsys):
    root = write_files(tmp_path / "defs", BASE)
    (root / "kpis" / "bad1.yaml").write_text(kpi("summ(amount)"))
    (root / "kpis" / "bad2.yaml").write_text("kpi: other\nsource: opportunities\nexpression: (\n")
    (root / "kpis" / "bad3.yaml").write_text("")
    assert main(["validate", str(root), "--format", "json"]) == 1
    files = {
        d["file"].rsplit("/", 1)[-1]
        for d in json.loads(capsys.readouterr().out)["diagnostics"]
        if d["severity"] == "error"
    }
    assert files == {"bad1.yaml", "bad2.yaml", "bad3.yaml"}
