"""Every dialect either compiles a KPI with kpiengine's meaning or refuses it, at the KPI:
KPI404 from the capability tables (``kpi compile``, ``kpi run``, ``kpi validate
--dialect``), KPI405 for what sqlglot cannot translate; docs/dialects.md is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlglot import exp

import kpiengine
from kpiengine.cli import main
from kpiengine.compile.dialects import DIALECTS, DialectRules, builtin_dialects, rules_for
from kpiengine.compile.dialects.capabilities import (
    CAPABILITIES,
    OPERATOR_NEEDS,
    WHERE_NEED,
    render_dialects_doc,
)
from kpiengine.compile.statement import compile_plan
from kpiengine.errors import DefinitionError
from kpiengine.language.functions import BUILTIN_FUNCTIONS
from tests.conftest import SALES_FILES, write_files

ROOT = Path(__file__).resolve().parents[1]
DIALECTS_DOC = ROOT / "docs" / "dialects.md"
#: dialects with no engine in the test suite: every rewrite and refusal cites the docs
NOT_RUN_HERE = ("bigquery", "snowflake", "databricks", "trino", "redshift", "tsql", "mysql")
#: the KPI404 refusals of the built-in dialects, as decided (docs/dialects.md says why)
REFUSED = {
    "percentile_cont": {"bigquery", "trino", "tsql", "mysql"},
    "round_ties": {"mysql"},
}

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


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return write_files(tmp_path_factory.mktemp("capabilities") / "defs", FILES)


@pytest.fixture(scope="module")
def project(root):
    return kpiengine.load(root)


def _position(root: Path, file: str, text: str) -> tuple[int, int]:
    """1-based line and column of ``text`` in a definitions file."""
    for number, line in enumerate((root / file).read_text().splitlines(), start=1):
        if text in line:
            return number, line.index(text) + 1
    raise AssertionError(f"{text} not in {file}")


def _refusal(project, kpis: list[str], dialect: str) -> list:
    with pytest.raises(DefinitionError) as raised:
        project.compile(kpis, dialect=dialect, grain="month", start="2024-01-01", end="2024-03-01")
    return raised.value.diagnostics


@pytest.mark.parametrize("dialect", sorted(REFUSED["percentile_cont"]))
def test_median_is_refused_at_the_function(project, root, dialect):
    found = _refusal(project, ["median_amount", "revenue"], dialect)
    assert [d.code for d in found] == ["KPI404"]
    [refusal] = found
    assert refusal.message.startswith(f"median is not available on {dialect}: ")
    assert refusal.hint and "exact percentile" in refusal.hint
    line, col = _position(root, "kpis/sales.yaml", "median(amount)")
    assert (refusal.span.line, refusal.span.col) == (line, col)


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d not in REFUSED["percentile_cont"]])
def test_median_compiles_where_the_engine_has_an_exact_one(project, dialect):
    sql = project.compile(["median_amount", "p90_amount"], dialect=dialect, grain="month")
    assert "APPROX" not in sql.upper()


def test_round_is_refused_on_mysql_and_kept_elsewhere(project, root):
    [refusal] = _refusal(project, ["rounded_avg"], "mysql")
    assert refusal.code == "KPI404"
    assert "round is not available on mysql: MySQL rounds DOUBLE halves to even" in str(refusal)
    assert refusal.span.line == _position(root, "kpis/probes.yaml", "round(avg")[0]
    for dialect in DIALECTS:
        if dialect != "mysql":
            project.compile(["rounded_avg", "capped"], dialect=dialect, grain="month")


def test_a_refusal_is_reported_once_per_call_and_every_call_is_reported(project):
    found = _refusal(project, ["median_amount", "p90_amount", "rounded_avg"], "mysql")
    assert sorted(d.message.split(" is ")[0] for d in found) == ["median", "percentile", "round"]


def test_the_refused_table_is_what_the_rules_say():
    for spec in builtin_dialects():
        rules = spec.make_rules()
        refused = {key for key in CAPABILITIES if rules.support(key).refused}
        expected = {key for key, names in REFUSED.items() if spec.name in names}
        assert refused == expected, spec.name


def test_capability_keys_are_known():
    needs = {n for f in BUILTIN_FUNCTIONS for n in f.needs}
    needs |= set(OPERATOR_NEEDS.values()) | {WHERE_NEED}
    assert needs <= set(CAPABILITIES)
    for spec in builtin_dialects():
        assert set(spec.make_rules().CAPABILITIES) <= set(CAPABILITIES), spec.name


@pytest.mark.parametrize("dialect", NOT_RUN_HERE)
def test_every_decision_for_an_engine_not_run_here_cites_its_documentation(dialect):
    rules = rules_for(dialect)
    for key, support in rules.CAPABILITIES.items():
        assert support.note, (dialect, key)
        if support.status != "native":
            assert support.url.startswith("https://"), (dialect, key)


def test_a_plugin_dialect_can_refuse_through_its_table(project):
    from kpiengine.compile.dialects.capabilities import refused

    class NoDistinct(DialectRules):
        CAPABILITIES = {"count_distinct": refused("no COUNT(DISTINCT) here", "https://x")}

    with pytest.raises(DefinitionError) as raised:
        compile_plan(project.plan(["accounts_won"]), NoDistinct("nodistinct", "duckdb"))
    assert "count_distinct is not available on nodistinct" in str(raised.value)


def test_what_sqlglot_cannot_translate_is_kpi405_at_the_kpi(tmp_path):
    """Rules that leave NULLS LAST inside a window, which sqlglot cannot print for MySQL:
    an error at the KPI holding the window, not SQL that fails on the engine."""
    files = {
        **SALES_FILES,
        "kpis/rolling.yaml": """
            kpi: rolling_deals
            expression: rolling_sum(deals, 3)
            """,
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))

    class Careless(DialectRules):
        def natural_order(self, value: exp.Expression) -> exp.Ordered:
            return exp.Ordered(this=value, nulls_first=False)

    with pytest.raises(DefinitionError) as raised:
        compile_plan(project.plan(["rolling_deals"], grain="month"), Careless("mysql"))
    [problem] = raised.value.diagnostics
    assert problem.code == "KPI405"
    assert "mysql cannot express KPI `rolling_deals`: 'NULLS LAST'" in problem.message
    assert problem.span is not None and problem.span.file.endswith("rolling.yaml")


# -- the command line -------------------------------------------------------------------


def kpi(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_compile_refuses_with_exit_1(root, capsys):
    code, out, err = kpi(
        capsys, "compile", "median_amount", "--project", str(root), "--dialect", "trino"
    )
    assert code == 1 and not out
    assert "KPI404 median is not available on trino" in err
    assert "sales.yaml:" in err


def test_validate_checks_the_definitions_against_a_dialect(root, capsys):
    code, out, _ = kpi(capsys, "validate", str(root), "--dialect", "mysql")
    assert code == 1
    assert "KPI404 median is not available on mysql" in out
    assert "KPI404 round is not available on mysql" in out
    line, _col = _position(root, "kpis/sales.yaml", "median(amount)")
    assert f"sales.yaml:{line}:" in out
    code, out, _ = kpi(capsys, "validate", str(root), "--dialect", "postgres")
    assert code == 0 and "KPI404" not in out
    code, _, err = kpi(capsys, "validate", str(root), "--dialect", "oracle")
    assert code == 2 and "unknown dialect `oracle`" in err


def test_validate_without_a_dialect_does_not_check_one(root, capsys):
    code, out, _ = kpi(capsys, "validate", str(root))
    assert code == 0 and "KPI404" not in out


# -- docs/dialects.md -------------------------------------------------------------------


def test_docs_dialects_is_up_to_date():
    assert DIALECTS_DOC.read_text(encoding="utf-8") == render_dialects_doc(), (
        "docs/dialects.md is out of date: run "
        "`python -m kpiengine.compile.dialects > docs/dialects.md`"
    )


def test_the_doc_shows_each_refusal_with_its_reason():
    text = render_dialects_doc()
    row = next(line for line in text.splitlines() if line.startswith("| continuous percentile"))
    assert row.count("**no**") == len(REFUSED["percentile_cont"])
    mysql = text.split("### mysql")[1]
    assert "continuous percentile: refused. MySQL has no PERCENTILE_CONT aggregate" in mysql
    assert "https://dev.mysql.com/doc/refman/8.4/en/precision-math-rounding.html" in mysql
