"""Load stage: YAML + JSON Schema → model, with every problem at its file:line:col."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from kpiengine.diagnostics import CODES, Diagnostic
from kpiengine.errors import UsageError
from kpiengine.language.ast import Name, walk
from kpiengine.loader import positioned_yaml as yaml_nodes
from kpiengine.loader.definitions import find_project_root, load_project, schema_for
from kpiengine.loader.model import Project
from kpiengine.loader.positioned_yaml import Converter, compose, scalar_origin
from kpiengine.loader.schema import is_valid, validator
from kpiengine.source import Span

GOOD = Path(__file__).parent / "fixtures" / "load" / "good"


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def load(root: Path, files: dict[str, str | bytes]) -> tuple[Project, list[Diagnostic]]:
    return load_project(write(root, files))


def only(diagnostics: list[Diagnostic], code: str) -> Diagnostic:
    found = [d for d in diagnostics if d.code == code]
    assert len(found) == 1, diagnostics
    return found[0]


def at(diagnostic: Diagnostic) -> tuple[str, str, int, int]:
    assert diagnostic.span is not None
    return (
        diagnostic.code,
        Path(diagnostic.span.file).name,
        diagnostic.span.line,
        diagnostic.span.col,
    )


# -- the good project -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good() -> tuple[Project, list[Diagnostic]]:
    return load_project(GOOD)


def test_good_project_loads_without_diagnostics(good: tuple[Project, list[Diagnostic]]) -> None:
    project, diagnostics = good
    assert diagnostics == []
    assert project.root == GOOD
    assert list(project.sources) == ["accounts", "opportunities"]  # sorted files, .yml too
    assert list(project.kpis) == [
        "open_deals",
        "pipeline_value",
        "mrr",
        "deals_per_open",
        "win_rate",
    ]
    assert [r.name for r in project.rules] == ["pipeline_too_thin"]


def test_project_file_settings(good: tuple[Project, list[Diagnostic]]) -> None:
    project, _ = good
    assert project.name == "b2b-saas"
    assert project.connector == "duckdb:///warehouse.duckdb"
    assert (project.fiscal_year_start, project.week_start, project.currency) == (4, "sunday", "USD")
    assert project.plugins == ("kpiengine_example",)
    assert project.validate_ignore == ("KPI310",)
    assert project.validate_fail_on == "warning"


def test_sources_columns_and_joins(good: tuple[Project, list[Diagnostic]]) -> None:
    project, _ = good
    opportunities = project.sources["opportunities"]
    file = str(GOOD / "sources" / "opportunities.yaml")
    assert opportunities.table == "crm.opportunities"
    assert opportunities.time == "closed_at"
    assert opportunities.description == "One row per CRM deal."
    assert opportunities.span == Span(file, 1, 9, 1, 22)
    amount = opportunities.columns["amount"]
    assert (amount.type, amount.unit, amount.description) == ("number", "currency", "Deal amount.")
    assert amount.span == Span(file, 9, 3, 9, 9)
    assert opportunities.columns["opportunity_id"].key is True
    assert opportunities.columns["account_id"].type == "string"  # the short form
    assert opportunities.columns["stage"].values == ("open", "won", "lost")
    accounts_join, reps_join = opportunities.joins
    assert (accounts_join.source, accounts_join.left, accounts_join.right) == (
        "accounts",
        "account_id",
        "account_id",
    )
    assert (reps_join.source, reps_join.left, reps_join.right) == ("reps", "rep_id", "id")
    assert opportunities.join_to("reps") is reps_join
    assert reps_join.span.line == 17


def test_yaml_1_2_scalars(good: tuple[Project, list[Diagnostic]]) -> None:
    accounts = good[0].sources["accounts"]
    assert accounts.table == "accounts"  # defaults to the source name
    assert accounts.columns["active"].values == ("yes", "no")  # not booleans (YAML 1.1)
    assert "on" in accounts.columns  # a key is the text as written, never True


def test_kpi_fields_and_spans(good: tuple[Project, list[Diagnostic]]) -> None:
    kpi = good[0].kpis["win_rate"]
    file = str(GOOD / "kpis" / "win_rate.yaml")
    assert kpi.title == "Win rate"
    assert kpi.owner == "sales-ops"
    assert kpi.tags == ("sales", "funnel")
    assert kpi.aliases == ("taux de conversion",)
    assert kpi.unit == "percent"
    assert kpi.span == Span(file, 1, 6, 1, 14)
    assert (kpi.source, kpi.source_span) == ("opportunities", Span(file, 7, 9, 7, 22))
    assert (kpi.time, kpi.time_span) == ("created_at", Span(file, 12, 7, 12, 17))
    assert kpi.dimensions == ("region", "accounts.segment")
    assert kpi.dimension_spans == (Span(file, 14, 14, 14, 20), Span(file, 14, 22, 14, 38))
    assert kpi.target is not None
    assert (kpi.target.value, kpi.target.direction) == (0.47, "higher")
    assert kpi.target.span.line == 15
    assert kpi.filter is not None
    assert kpi.filter.text == "region != 'internal'"
    assert kpi.filter.span == Span(file, 11, 9, 11, 29)
    (rule,) = kpi.rules
    assert (rule.name, rule.severity, rule.kpi) == ("below_benchmark", "warning", "win_rate")
    assert rule.when.text == "value < target"
    assert rule.when.span == Span(file, 18, 11, 18, 25)
    assert rule.message is not None and rule.message.startswith("Win rate {{ value | percent }}")


def test_literal_block_expression_positions(good: tuple[Project, list[Diagnostic]]) -> None:
    expression = good[0].kpis["win_rate"].expression
    file = str(GOOD / "kpis" / "win_rate.yaml")
    assert (
        expression.text == "count(where stage = 'won')\n  / count(where stage in ('won', 'lost'))"
    )
    assert expression.span == Span(file, 9, 3, 10, 44)
    assert expression.tree is not None
    stages = [n.span for n in walk(expression.tree) if isinstance(n, Name)]
    # `stage` on the block's first line, then on its second (more indented) line.
    assert [(s.line, s.col) for s in stages] == [(9, 15), (10, 19)]


def test_kpis_list_file_folded_and_quoted_expressions(
    good: tuple[Project, list[Diagnostic]],
) -> None:
    kpis = good[0].kpis
    file = str(GOOD / "kpis" / "pipeline.yaml")
    assert kpis["open_deals"].fill_null == 0.0
    assert kpis["mrr"].semi_additive == "last"
    assert kpis["deals_per_open"].is_derived
    quoted = kpis["deals_per_open"].expression
    assert quoted.span == Span(file, 20, 18, 20, 34)  # inside the quotes
    folded = kpis["pipeline_value"].expression  # `>`: one line_start per source line
    assert folded.tree is not None
    names = {n.dotted: n.span for n in walk(folded.tree) if isinstance(n, Name)}
    assert (names["amount"].line, names["amount"].col) == (12, 11)
    assert (names["stage"].line, names["stage"].col) == (13, 13)


def test_standalone_rule_file(good: tuple[Project, list[Diagnostic]]) -> None:
    (rule,) = good[0].rules
    assert rule.kpi is None
    assert rule.severity == "critical"
    assert rule.when.text == "pipeline_value < 3 * mrr"
    assert rule.span == Span(str(GOOD / "rules" / "unit_economics.yaml"), 1, 7, 1, 24)


def test_texts_are_kept_for_carets(good: tuple[Project, list[Diagnostic]]) -> None:
    project, _ = good
    assert project.texts.line(str(GOOD / "kpis" / "win_rate.yaml"), 1) == "kpi: win_rate"


def test_hidden_folders_and_other_files_are_skipped(
    good: tuple[Project, list[Diagnostic]],
) -> None:
    project, _ = good
    assert project.texts.line(str(GOOD / ".drafts" / "broken.yaml"), 1) is None
    assert project.texts.line(str(GOOD / "README.md"), 1) is None


# -- expression origins for every scalar style --------------------------------------------------


@pytest.mark.parametrize(
    ("source", "text", "starts"),
    [
        ("e: a + b\n", "a + b", ((1, 4),)),
        ("e: 'a + ''b'''\n", "a + 'b'", ((1, 5),)),
        ('e: "a + b"\n', "a + b", ((1, 5),)),
        ("e: |-\n    a\n      + b\n", "a\n  + b", ((2, 5), (3, 5))),
        ("e: |\n  a\n\n  + b\n\nf: 1\n", "a\n\n+ b", ((2, 3), (3, 3), (4, 3))),
        ("e: >\n  a\n  + b\n", "a\n+ b", ((2, 3), (3, 3))),
        ("e: a\n  + b\n", "a\n+ b", ((1, 4), (2, 3))),
        ("e: 'a\n   + ''b'''\n", "a\n+ 'b'", ((1, 5), (2, 4))),
        ('e: "a\n  + b"\n', "a\n+ b", ((1, 5), (2, 3))),
    ],
)
def test_scalar_origin(source: str, text: str, starts: tuple[tuple[int, int], ...]) -> None:
    root, problems = compose(source, "f.yaml")
    assert problems == [] and root is not None
    node = root.value[0][1]
    got_text, origin = scalar_origin(node, "f.yaml", source.splitlines())
    assert (got_text, origin.line_starts) == (text, starts)


# -- bad inputs: code, file, line, column -------------------------------------------------------

KPI = "kpi: win_rate\nexpression: count()\n"

BAD = {
    "malformed YAML": ({"a.yaml": "kpi: a\nexpression: [count(),\n"}, ("KPI101", "a.yaml", 2, 22)),
    "unclosed quote": ({"a.yaml": "kpi: a\nexpression: 'count()\n"}, ("KPI101", "a.yaml", 2, 13)),
    "unquoted colon": (
        {"a.yaml": "kpi: a\nexpression: count()\ntitle: Win rate: all deals\n"},
        ("KPI101", "a.yaml", 3, 16),
    ),
    "tab indentation": (
        {"a.yaml": "kpi: a\nexpression: count()\ntarget:\n\tvalue: 1\n"},
        ("KPI101", "a.yaml", 4, 1),
    ),
    "control character": ({"a.yaml": "kpi: a\x07\nexpression: 1\n"}, ("KPI101", "a.yaml", 1, 7)),
    "empty file": ({"a.yaml": ""}, ("KPI102", "a.yaml", 1, 1)),
    "comment-only file": ({"a.yaml": "# TODO\n\n# later\n"}, ("KPI102", "a.yaml", 1, 1)),
    "null document": ({"a.yaml": "---\n~\n"}, ("KPI102", "a.yaml", 1, 1)),
    "non-UTF-8 bytes": (
        {"a.yaml": b"kpi: a\ntitle: Chiffre d'affaires pr\xe9vu\nexpression: 1\n"},
        ("KPI100", "a.yaml", 2, 29),
    ),
    "duplicate key": (
        {"a.yaml": "kpi: a\ntitle: A\nexpression: count()\ntitle: B\n"},
        ("KPI103", "a.yaml", 4, 1),
    ),
    "unknown key": ({"a.yaml": KPI + "titel: Win rate\n"}, ("KPI104", "a.yaml", 3, 1)),
    "unknown nested key": (
        {"a.yaml": KPI + "target: {value: 1, direction: higher, valeu: 2}\n"},
        ("KPI104", "a.yaml", 3, 39),
    ),
    "wrong type": ({"a.yaml": KPI + "fill_null: zero\n"}, ("KPI105", "a.yaml", 3, 12)),
    "missing required key": ({"a.yaml": "kpi: a\ntitle: A\n"}, ("KPI105", "a.yaml", 1, 1)),
    "empty value": ({"a.yaml": "kpi: a\nexpression:\n"}, ("KPI105", "a.yaml", 2, 1)),
    "bad enum value": ({"a.yaml": KPI + "unit: percnt\n"}, ("KPI105", "a.yaml", 3, 7)),
    "bad name": ({"a.yaml": "kpi: Win Rate\nexpression: count()\n"}, ("KPI105", "a.yaml", 1, 6)),
    "bad column type": (
        {"s.yaml": "source: s\ncolumns:\n  id: string\n  amount: float\n"},
        ("KPI105", "s.yaml", 4, 11),
    ),
    "bad column name": (
        {"s.yaml": "source: s\ncolumns:\n  id: string\n  deal amount: number\n"},
        ("KPI105", "s.yaml", 4, 3),
    ),
    "out of range": (
        {"kpiengine.yaml": "project: p\nfiscal_year_start: 13\n"},
        ("KPI105", "kpiengine.yaml", 2, 20),
    ),
    "repeated list item": ({"a.yaml": KPI + "tags: [a, b, a]\n"}, ("KPI105", "a.yaml", 3, 14)),
    "two documents": ({"a.yaml": KPI + "---\nkpi: b\nexpression: 1\n"}, ("KPI105", "a.yaml", 4, 1)),
    "unknown file kind": ({"a.yaml": "metric: a\nexpression: 1\n"}, ("KPI106", "a.yaml", 1, 1)),
    "top level list": ({"a.yaml": "- kpi: a\n"}, ("KPI106", "a.yaml", 1, 1)),
    "duplicate KPI across files": (
        {"a.yaml": KPI, "b.yaml": "# the same name\n" + KPI},
        ("KPI107", "b.yaml", 2, 6),
    ),
    "duplicate source": (
        {
            "a.yaml": "source: s\ncolumns: {id: string}\n",
            "b.yaml": "source: s\ncolumns: {id: string}\n",
        },
        ("KPI107", "b.yaml", 1, 9),
    ),
    "duplicate rule file": (
        {
            "a.yaml": "rule: r\nwhen: a > 1\nseverity: info\n",
            "b.yaml": "rule: r\nwhen: a > 2\nseverity: info\n",
        },
        ("KPI107", "b.yaml", 1, 7),
    ),
    "duplicate rule in a KPI": (
        {
            "a.yaml": KPI
            + "rules:\n  - {name: r, when: value > 1, severity: info}\n"
            + "  - {name: r, when: value > 2, severity: info}\n"
        },
        ("KPI107", "a.yaml", 5, 12),
    ),
    "second project file": (
        {"kpiengine.yaml": "project: p\n", "other.yaml": "project: q\n"},
        ("KPI107", "other.yaml", 1, 1),
    ),
    "unknown diagnostic code": (
        {"kpiengine.yaml": "validate:\n  ignore: [KPI310, KPI399]\n"},
        ("KPI105", "kpiengine.yaml", 2, 20),
    ),
    "recursive alias": ({"a.yaml": KPI + "tags: &t [*t]\n"}, ("KPI105", "a.yaml", 3, 7)),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_input(tmp_path: Path, case: str) -> None:
    files, expected = BAD[case]
    _, diagnostics = load(tmp_path, files)
    assert diagnostics, "expected a diagnostic"
    assert at(only(diagnostics, expected[0])) == expected
    for diagnostic in diagnostics:
        assert diagnostic.code in CODES
        assert diagnostic.span is not None and diagnostic.span.file.startswith(str(tmp_path))


def test_bad_input_messages(tmp_path: Path) -> None:
    """The wording analysts see for the most common mistakes."""

    def diagnose(name: str, content: str | bytes) -> Diagnostic:
        folder = tmp_path / name
        _, diagnostics = load(folder, {"a.yaml": content})
        assert len(diagnostics) == 1, diagnostics
        return diagnostics[0]

    unknown = diagnose("unknown", KPI + "titel: Win rate\n")
    assert unknown.message == "unknown key `titel` in kpi `win_rate`"
    assert unknown.hint == "did you mean `title`?"

    nested = diagnose("nested", KPI + "target: {value: 1, valeu: 2}\n")
    assert nested.message == "unknown key `valeu` in `target`"
    assert nested.hint == "did you mean `value`?"

    missing = diagnose("missing", "kpi: a\ntitle: A\n")
    assert missing.message == "missing required key `expression` in kpi `a`"
    assert missing.hint is not None and missing.hint.startswith("add `expression: ")

    enum = diagnose("enum", KPI + "unit: percnt\n")
    assert "`unit` must be one of `percent`, `ratio`" in enum.message
    assert enum.message.endswith("got `percnt`")
    assert enum.hint == "did you mean `percent`?"

    name = diagnose("name", "kpi: Win Rate\nexpression: count()\n")
    assert name.message == "`Win Rate` is not a valid name: names are snake_case"
    assert name.hint is not None and "`win_rate`" in name.hint

    wrong = diagnose("type", KPI + "tags: sales\n")
    assert wrong.message == "`tags` must be a list, not the text `sales`"
    assert wrong.hint == "write a list: `tags: [sales]`"

    _, nesting = load(tmp_path / "nesting", {"a.yaml": "kpi:\n  name: a\n  expression: 1\n"})
    assert [d.message for d in nesting] == [
        "missing required key `expression` in kpi",
        "`kpi` must be text, not a mapping",
    ]
    assert nesting[1].hint == "the fields of the kpi go at the top level, next to `kpi: name`"

    duplicate = diagnose("dupkey", "kpi: a\ntitle: A\nexpression: count()\ntitle: B\n")
    assert duplicate.message == "duplicate key `title` (first on line 2)"

    tab = diagnose("tab", "kpi: a\nexpression: 1\ntarget:\n\tvalue: 1\n")
    assert tab.message == "tab character in indentation"
    assert tab.hint is not None and "spaces" in tab.hint

    colon = diagnose("colon", "kpi: a\nexpression: 1\ntitle: Win rate: all\n")
    assert colon.message == "unexpected `:`"
    assert colon.hint is not None and "quoted" in colon.hint

    latin = diagnose("latin", b"kpi: caf\xe9\nexpression: 1\n")
    assert latin.message == "the file is not valid UTF-8 (byte 0xE9 at offset 8)"
    assert latin.hint is not None and "UTF-8" in latin.hint

    kind = diagnose("kind", "kpii: a\nexpression: 1\n")
    assert kind.message.startswith("cannot tell what this file defines")
    assert kind.hint == "did you mean `kpi`?"


def test_duplicate_kpi_hint_names_the_first_definition(tmp_path: Path) -> None:
    _, diagnostics = load(tmp_path, {"a.yaml": KPI, "sub/b.yaml": KPI})
    duplicate = only(diagnostics, "KPI107")
    assert duplicate.message == "duplicate KPI `win_rate`"
    assert (
        duplicate.hint
        == f"`win_rate` is already defined at {tmp_path / 'a.yaml'}:1:6; rename one of them"
    )


def test_every_file_reports_its_errors(tmp_path: Path) -> None:
    project, diagnostics = load(
        tmp_path,
        {
            "a.yaml": "kpi: a\nexpression: [oops\n",
            "b.yaml": "kpi: b\nexpression: count()\nunit: percnt\n",
            "c.yaml": "kpi: c\nexpression: count()\ncolor: red\n",
            "d.yaml": KPI,
        },
    )
    assert [at(d) for d in diagnostics] == [
        ("KPI101", "a.yaml", 2, 18),
        ("KPI105", "b.yaml", 3, 7),
        ("KPI104", "c.yaml", 3, 1),
    ]
    # What is valid is still built: an invalid optional field is dropped, not the KPI.
    assert sorted(project.kpis) == ["b", "c", "win_rate"]
    assert project.kpis["b"].unit is None


def test_schema_errors_in_one_kpi_of_a_list_keep_the_others(tmp_path: Path) -> None:
    project, diagnostics = load(
        tmp_path,
        {
            "a.yaml": "kpis:\n  - kpi: a\n    expression: count()\n"
            "  - kpi: B\n    expression: count()\n"
            "  - kpi: c\n    expression: count()\n    unit: lots\n"
        },
    )
    assert [at(d) for d in diagnostics] == [
        ("KPI105", "a.yaml", 4, 10),
        ("KPI105", "a.yaml", 8, 11),
    ]
    assert sorted(project.kpis) == ["a", "c"]


def test_expression_syntax_errors_point_into_the_yaml_file(tmp_path: Path) -> None:
    _, diagnostics = load(
        tmp_path,
        {"a.yaml": "kpi: a\nsource: s\nexpression: |\n  sum(amount\n    where stage = )\n"},
    )
    error = only(diagnostics, "KPI201")
    assert at(error) == ("KPI201", "a.yaml", 5, 19)


def test_rule_and_filter_expressions_are_parsed(tmp_path: Path) -> None:
    _, diagnostics = load(
        tmp_path,
        {
            "a.yaml": KPI
            + "filter: region !=\nrules:\n  - {name: r, when: value <, severity: info}\n",
            "r.yaml": "rule: r\nwhen: (a\nseverity: info\n",
        },
    )
    assert sorted((Path(d.span.file).name, d.span.line) for d in diagnostics if d.span) == [
        ("a.yaml", 3),
        ("a.yaml", 5),
        ("r.yaml", 2),
    ]
    assert {d.code for d in diagnostics} == {"KPI201"}


def test_merge_keys_and_anchors(tmp_path: Path) -> None:
    project, diagnostics = load(
        tmp_path,
        {
            "a.yaml": "kpis:\n"
            "  - &base {kpi: a, source: s, expression: count(), unit: count}\n"
            "  - <<: *base\n    kpi: b\n    expression: sum(x)\n"
        },
    )
    assert diagnostics == []
    assert project.kpis["b"].unit == "count"
    assert project.kpis["b"].source == "s"
    assert project.kpis["b"].expression.text == "sum(x)"


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lines = ["kpi: a", "expression: count()", "x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 8)]
    _, diagnostics = load(tmp_path, {"a.yaml": "\n".join(lines) + "\n"})
    assert "document too large" in only(diagnostics, "KPI105").message


def test_absurd_nesting_is_an_error_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # libyaml would crash on ~50 000 levels; past the marker count the Python loader is used.
    monkeypatch.setattr(yaml_nodes, "MAX_C_MARKERS", 100)
    deep = "- " * 3000 + "x"
    _, diagnostics = load(tmp_path, {"a.yaml": f"kpi: a\nexpression: 1\ntags:\n  {deep}\n"})
    assert [d.message for d in diagnostics] == ["YAML nested too deeply"]


def test_deep_but_parseable_nesting_is_refused(tmp_path: Path) -> None:
    deep = "[" * 100 + "]" * 100
    _, diagnostics = load(tmp_path, {"a.yaml": f"kpi: a\nexpression: 1\ntags: {deep}\n"})
    assert [d.message for d in diagnostics] == ["values nested more than 64 levels deep"]


def test_number_expression_and_top_level_defaults(tmp_path: Path) -> None:
    project, diagnostics = load(tmp_path, {"quota.yaml": "kpi: quota\nexpression: 100000\n"})
    assert diagnostics == []
    assert project.kpis["quota"].expression.text == "100000"
    assert (project.name, project.week_start, project.currency) == ("kpiengine", "monday", "EUR")


def test_diagnostics_are_sorted_and_deterministic(tmp_path: Path) -> None:
    files = {
        f"k{i}.yaml": f"kpi: k{i}\nexpression: count()\nunit: bad\ntitel: x\n" for i in range(5)
    }
    _, first = load(tmp_path, files)
    _, second = load_project(tmp_path)
    assert first == second
    assert first == sorted(first, key=Diagnostic.sort_key)


# -- the folder ---------------------------------------------------------------------------------


def test_empty_folder_is_an_empty_project(tmp_path: Path) -> None:
    project, diagnostics = load_project(tmp_path)
    assert (project.kpis, project.sources, project.rules, diagnostics) == ({}, {}, (), [])


def test_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist") as raised:
        load_project(tmp_path / "nope")
    assert raised.value.exit_code == 2
    (tmp_path / "x.yaml").write_text(KPI)
    with pytest.raises(UsageError, match="is not a folder"):
        load_project(tmp_path / "x.yaml")


def test_find_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kpis" / "deep").mkdir(parents=True)
    assert find_project_root(tmp_path) == tmp_path / "definitions"
    (tmp_path / "kpiengine.yaml").write_text("project: p\n")
    assert find_project_root(tmp_path) == tmp_path
    assert find_project_root(tmp_path / "kpis" / "deep") == tmp_path.resolve()
    monkeypatch.chdir(tmp_path / "kpis" / "deep")
    assert find_project_root() == Path(os.path.join("..", ".."))
    monkeypatch.chdir(tmp_path)
    assert find_project_root() == Path(".")


def test_find_project_root_falls_back_to_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_project_root() == Path("definitions")


def test_kpiengine_yaml_without_project_key_is_the_project_file(tmp_path: Path) -> None:
    project, diagnostics = load(tmp_path, {"kpiengine.yaml": "currency: GBP\n"})
    assert diagnostics == []
    assert project.currency == "GBP"


# -- the schemas --------------------------------------------------------------------------------

KINDS = ("project", "source", "kpi", "rule")


@pytest.mark.parametrize("kind", KINDS)
def test_schemas_are_valid_and_documented(kind: str) -> None:
    schema = schema_for(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def visit(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, where
                for name, prop in node["properties"].items():
                    assert prop.get("description"), f"{where}.{name} has no description"
            for key, value in node.items():
                visit(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{where}/{index}")

    visit(schema, kind)


def test_schema_for_kpis_is_the_kpi_schema() -> None:
    assert schema_for("kpis") is schema_for("kpi")
    with pytest.raises(UsageError):
        schema_for("metric")


def test_schema_examples_are_valid() -> None:
    for kind in KINDS:
        for example in schema_for(kind).get("examples", []):
            assert validator(kind).is_valid(example), (kind, example)


def test_fast_check_agrees_with_jsonschema(tmp_path: Path) -> None:
    """The compiled yes/no check must never call valid what jsonschema rejects."""
    documents: list[tuple[str, object]] = []
    sources = [
        text for files, _ in BAD.values() for text in files.values() if isinstance(text, str)
    ]
    sources += [p.read_text() for p in GOOD.rglob("*.y*ml")]
    for text in sources:
        try:
            data = json.loads(json.dumps(yaml.safe_load(text), default=str))
        except (yaml.YAMLError, ValueError):
            continue  # broken YAML, several documents, recursive aliases
        if isinstance(data, dict):
            kinds = ("kpi", "kpis", "rule", "source", "project")
            kind = next((k for k in kinds if k in data), "project")
            documents.append((kind, data))
    more = [
        ("kpi", {"kpi": "a", "expression": "x", "target": {"value": True}}),
        ("kpi", {"kpi": "a", "expression": ""}),
        ("kpi", {"kpis": [{"kpi": "a", "expression": "x"}], "kpi": "b"}),
        ("kpi", {"kpis": []}),
        ("source", {"source": "s", "columns": {}}),
        ("source", {"source": "s", "columns": {"a": {"type": "string", "values": [1, 1]}}}),
        ("source", {"source": "s", "columns": {"a": {"type": "number", "values": [1, 1.0]}}}),
        ("source", {"source": "s", "columns": {"a": {"type": "number", "values": [True, 1]}}}),
        (
            "source",
            {
                "source": "s",
                "columns": {"a": "string"},
                "joins": [{"source": "t", "on": {"left": "a"}}],
            },
        ),
        ("project", {"fiscal_year_start": 2.0}),
        ("project", {"fiscal_year_start": 2.5}),
        ("project", {"validate": {"fail_on": "never"}}),
    ]
    documents += more
    assert len(documents) > 30
    for kind, data in documents:
        assert is_valid(kind)(data) == validator(kind).is_valid(data), (kind, data)


def test_converter_reports_non_text_keys() -> None:
    root, _ = compose("? [a, b]\n: 1\nkpi: a\n", "f.yaml")
    assert root is not None
    converter = Converter("f.yaml")
    assert converter.convert(root) == {"kpi": "a"}
    assert [d.code for d in converter.diagnostics] == ["KPI105"]
