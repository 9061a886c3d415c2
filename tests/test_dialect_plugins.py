"""A plugin from outside the repository adds a dialect and a connector through the
public hooks only (tests/fixtures/kpiengine_fixture_plugin, put on sys.path and loaded as
``--plugin``, never installed); the conformance kit runs on its connector, and the CLI
compiles and runs with it. Also: the dialect registry, the typed contracts, and engine
type names a plugin teaches ``kpi validate --connector``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kpiengine import api, contracts
from kpiengine.compile import dialects
from kpiengine.compile.dialects import DialectRules, DialectSpec
from kpiengine.errors import UsageError
from kpiengine.execute.warehouse_check import check_warehouse, engine_type
from kpiengine.plugins.manager import PluginHost
from kpiengine.testing import ConnectorConformance, Dataset

FIXTURES = Path(__file__).parent / "fixtures"
PLUGIN = "kpiengine_fixture_plugin"

if str(FIXTURES) not in sys.path:  # the plugin is importable, not installed
    sys.path.insert(0, str(FIXTURES))


def write_dataset(dataset: Dataset, folder: Path) -> Path:
    """The kit's tables as Parquet files, one per table."""
    return dataset.write_parquet(folder)


# -- the conformance kit on the plugin's connector -----------------------------------------


class TestFixturePluginConformance(ConnectorConformance):
    plugins = (PLUGIN,)

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        folder = write_dataset(dataset, workdir / "warehouse")
        return f"fixturedb:///{folder}"


def test_the_kit_without_pytest_runs_on_the_plugin_too(tmp_path):
    from kpiengine.testing import DATASET, run_conformance

    folder = write_dataset(DATASET, tmp_path / "warehouse")
    problems = run_conformance(f"fixturedb:///{folder}", tmp_path / "kit", plugins=[PLUGIN])
    assert problems == []


def test_the_kit_refuses_a_dialect_nobody_registered(tmp_path):
    from kpiengine.testing import DATASET
    from kpiengine.testing.kit import contract_problems, load_projects

    folder = write_dataset(DATASET, tmp_path / "warehouse")
    project = load_projects(tmp_path / "kit", None, [PLUGIN])[1]
    with project.connect(f"fixturedb:///{folder}") as connection:
        connection.dialect = "nosuchdialect"
        problems = contract_problems(connection, project)
    assert any("'nosuchdialect' is not a registered one" in p for p in problems), problems


# -- the registry ------------------------------------------------------------------------


def test_builtin_dialects_register_through_the_hook():
    host = PluginHost()
    assert list(dialects.dialect_specs(host)) == list(dialects.DIALECTS)
    assert all(spec.plugin == "builtin" for spec in dialects.dialect_specs(host).values())
    assert type(dialects.rules_for("sqlite", host)).__module__.endswith(".sqlite")
    duckdb_rules = type(dialects.rules_for("duckdb", host))
    assert duckdb_rules.__module__.endswith(".duckdb") and issubclass(duckdb_rules, DialectRules)


def test_a_plugin_dialect_is_registered_with_its_rules_and_sqlglot_dialect():
    host = PluginHost([PLUGIN])
    names = dialects.dialect_names(host)  # installed plugins' dialects may follow
    assert names[: len(dialects.DIALECTS)] == list(dialects.DIALECTS)
    assert "duckdb_strict" in names
    rules = dialects.rules_for("duckdb_strict", host)
    assert type(rules).__name__ == "StrictRules"
    assert (rules.name, rules.sqlglot) == ("duckdb_strict", "duckdb")
    assert dialects.sqlglot_dialect("duckdb_strict", host) == "duckdb"
    # the process's own plugins do not have it: one host per project
    assert dialects.find_dialect("duckdb_strict", PluginHost()) is None


def test_unknown_dialect_lists_the_registered_ones(tmp_path, sales_project):
    project = api.load(sales_project, [PLUGIN])
    with pytest.raises(UsageError) as raised:
        project.compile(None, dialect="clickhouse_typo")
    message = str(raised.value)
    assert "unknown dialect `clickhouse_typo`" in message
    assert "duckdb, sqlite, postgres" in message and "duckdb_strict" in message


def test_a_dialect_registered_twice_keeps_the_first_and_reports_the_clash():
    class Shadow:
        @staticmethod
        def kpiengine_dialects() -> list[DialectSpec]:
            return [DialectSpec("postgres", rules=DialectRules, plugin="shadow")]

    from kpiengine.hookspecs import hookimpl

    Shadow.kpiengine_dialects = hookimpl(Shadow.kpiengine_dialects)  # type: ignore[method-assign]
    host = PluginHost()
    host.manager.register(Shadow, name="shadow")
    spec = dialects.dialect_specs(host)["postgres"]
    assert spec.plugin == "builtin"
    assert any("dialect `postgres` clashes with builtin" in f.reason for f in host.failures)


def test_a_dialect_name_only_sqlglot_knows_still_compiles_portably():
    rules = dialects.rules_for("oracle", PluginHost())
    assert type(rules) is DialectRules and rules.sqlglot == "oracle"


# -- compiling for the plugin's dialect ---------------------------------------------------


@pytest.fixture
def sales_project(tmp_path: Path) -> Path:
    from kpiengine.testing import write_project

    return write_project(tmp_path / "defs")


def test_plugin_rules_and_rewrites_apply_and_functions_see_the_real_dialect(sales_project):
    project = api.load(sales_project, [PLUGIN])
    months = {"grain": "month", "start": "2024-01-01", "end": "2024-05-01"}
    strict = project.compile(None, dialect="duckdb_strict", **months)
    plain = project.compile(None, dialect="duckdb", **months)
    assert "AVG(CAST(" in strict and "AVG(CAST(" not in plain  # the plugin's REWRITES
    assert "QUANTILE_CONT(" in strict  # built-in median() asked the plugin's rules


def test_strict_abs_exists_only_on_its_dialect(tmp_path):
    root = _project_with_kpi(tmp_path, "max(strict_abs(amount))")
    project = api.load(root, [PLUGIN])
    assert "ABS(" in project.compile(["strict_amount"], dialect="duckdb_strict", grain="all")
    with pytest.raises(UsageError, match="only available on duckdb_strict, not on duckdb"):
        project.compile(["strict_amount"], dialect="duckdb", grain="all")


def _project_with_kpi(tmp_path: Path, expression: str) -> Path:
    from kpiengine.testing import write_project

    root = write_project(tmp_path / "defs")
    (root / "strict.yaml").write_text(
        f"kpi: strict_amount\nsource: deals\nexpression: {expression}\n", encoding="utf-8"
    )
    return root


# -- through the CLI, with --plugin ---------------------------------------------------------


def test_cli_compile_and_run_with_the_plugin(tmp_path, capsys):
    from kpiengine.cli import main
    from kpiengine.testing import DATASET

    root = _project_with_kpi(tmp_path, "max(strict_abs(amount))")
    folder = write_dataset(DATASET, tmp_path / "warehouse")
    common = ["--project", str(root), "--plugin", PLUGIN]

    code = main(
        ["compile", "strict_amount", "--dialect", "duckdb_strict", "--grain", "all", *common]
    )
    out = capsys.readouterr().out
    assert code in (0, None) and "ABS(" in out

    code = main(
        ["run", "strict_amount", "--grain", "all", "--format", "json",
         "--connector", f"fixturedb:///{folder}", *common]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code in (0, None)
    rows = json.loads(out)["rows"]
    assert [row["value"] for row in rows] == [500]


def test_cli_unknown_dialect_names_the_plugin_ones(tmp_path, capsys):
    from kpiengine.cli import main

    root = _project_with_kpi(tmp_path, "max(amount)")
    code = main(
        ["compile", "--all", "--dialect", "nope", "--project", str(root), "--plugin", PLUGIN]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "unknown dialect `nope`" in err and "duckdb_strict" in err


# -- engine type names ------------------------------------------------------------------


def test_a_dialect_teaches_its_engine_type_names():
    spec = DialectSpec(
        "toyhouse",
        sqlglot="clickhouse",
        unwrap=("nullable", "lowcardinality"),
        type_names={"float64": "number", "datetime64": "timestamp", "my money": "number"},
    )
    assert engine_type("Nullable(Float64)", "toyhouse", spec) == "number"
    assert engine_type("LowCardinality(Nullable(String))", "toyhouse", spec) == "string"
    assert engine_type("Nullable(Decimal(18, 2))", "toyhouse", spec) == "number"
    assert engine_type("DateTime64(3)", "toyhouse", spec) == "timestamp"
    assert engine_type("My  Money", "toyhouse", spec) == "number"
    assert engine_type("Nullable(Float64)", "duckdb") == "unknown"  # no such wrapper there


class _Fake:
    def __init__(self, dialect: str, tables: dict[str, dict[str, str]]) -> None:
        self.dialect = dialect
        self.tables = tables

    def columns(self, table: str) -> dict[str, str] | None:
        return self.tables.get(table)


def test_an_unknown_engine_type_is_a_warning_not_silence(sales_project):
    from kpiengine.diagnostics import Severity

    project = api.load(sales_project)
    deals = project.model.sources["deals"]
    columns = {name: "DOUBLE" for name in deals.columns}
    columns[next(iter(deals.columns))] = "Nullable(Float64)"
    tables = {source.table: columns for source in project.model.sources.values()}
    found = [d for d in check_warehouse(project.model, _Fake("duckdb", tables)) if d.span]
    unknown = [d for d in found if d.code == "KPI505"]
    assert unknown and all(d.severity == Severity.WARNING for d in unknown)
    assert "Nullable(Float64)" in unknown[0].message


def test_the_plugin_connector_reports_types_the_plugin_dialect_knows(tmp_path, sales_project):
    from kpiengine.testing import DATASET

    folder = write_dataset(DATASET, tmp_path / "warehouse")
    project = api.load(sales_project, [PLUGIN])
    with project.connect(f"fixturedb:///{folder}") as connection:
        assert connection.columns("deals")["amount"].startswith("Nullable(")
        found = check_warehouse(project.model, connection, project.plugins)
        assert [d for d in found if d.code == "KPI505"] == []
        # without the plugin's dialect the same names are unknown: warnings, not silence
        unknown = check_warehouse(project.model, connection, PluginHost())
    assert {d.code for d in unknown} == {"KPI505"}


# -- typed contracts -----------------------------------------------------------------------


def test_the_contracts_are_exported_and_the_builtins_satisfy_them():
    host = PluginHost([PLUGIN])
    assert set(contracts.__all__) == {
        "Connection", "Connector", "Dialect", "Function", "Notifier", "Renderer"
    }  # fmt: skip
    kinds = {
        "kpiengine_connectors": contracts.Connector,
        "kpiengine_functions": contracts.Function,
        "kpiengine_dialects": contracts.Dialect,
        "kpiengine_renderers": contracts.Renderer,
        "kpiengine_notifiers": contracts.Notifier,
    }
    for hook, protocol in kinds.items():
        items = host.collect(hook)
        assert items and all(isinstance(item, protocol) for item in items), hook
    with host.connect("duckdb://") as connection:
        assert isinstance(connection, contracts.Connection)
