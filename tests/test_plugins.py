"""Plugins: documented hooks, built-ins through the same hooks, the three ways plugins are
found, one plugin host per project, hook context and ``plugin_config``, misspelled hooks,
failure isolation, name clashes, ``kpi plugins`` (versions from the distribution),
renderers returning bytes, and the example plugin package.

Tiny plugin modules are written to a temporary folder put on ``sys.path``. The example
package (plugins/example-functions) is tested as installed (``make test`` runs
``pip install -e plugins/example-functions``); those tests skip when it is not.

The ``orders`` data, by month of ``ordered_at`` (size, price, channel)::

    Jan  o1 3 10 web   o2 1 250 shop  o3 3 -5 web   o4 1 40 web   o5 2 null shop
    Feb  o6 5 120 web  o7 5 80 shop   o8 2 100 web
    Mar  (none)
    Apr  o9 4 55.5 web o10 7 300 shop o11 7 null web o12 null 0 web
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

import kpiengine
from kpiengine import hookspecs
from kpiengine.cli import main
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.plugins import manager as plugins
from tests.conftest import make_duckdb, make_sqlite, write_files

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "kpiengine_spec"))

ORDERS = (
    "id VARCHAR, size INTEGER, price DOUBLE, channel VARCHAR, ordered_at TIMESTAMP",
    [
        ("o1", 3, 10.0, "web", "2024-01-03 00:00:00"),
        ("o2", 1, 250.0, "shop", "2024-01-09 00:00:00"),
        ("o3", 3, -5.0, "web", "2024-01-15 00:00:00"),
        ("o4", 1, 40.0, "web", "2024-01-20 00:00:00"),
        ("o5", 2, None, "shop", "2024-01-31 23:00:00"),
        ("o6", 5, 120.0, "web", "2024-02-02 00:00:00"),
        ("o7", 5, 80.0, "shop", "2024-02-10 00:00:00"),
        ("o8", 2, 100.0, "web", "2024-02-29 00:00:00"),
        ("o9", 4, 55.5, "web", "2024-04-01 00:00:00"),
        ("o10", 7, 300.0, "shop", "2024-04-11 00:00:00"),
        ("o11", 7, None, "web", "2024-04-12 00:00:00"),
        ("o12", None, 0.0, "web", "2024-04-13 00:00:00"),
    ],
)
SOURCE = """
    source: orders
    table: orders
    time: ordered_at
    columns:
      id: string
      size: integer
      price: number
      channel: string
      ordered_at: timestamp
    """
YEAR = ["--grain", "all", "--from", "2024-01-01", "--to", "2025-01-01"]


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Write a module to a folder on sys.path; forget it after the test."""
    folder = tmp_path / "plugin_modules"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture
def orders_db(tmp_path: Path) -> str:
    return make_duckdb(tmp_path / "w.duckdb", {"orders": ORDERS})


def project(root: Path, kpis: str, settings: str = "") -> Path:
    return write_files(
        root,
        {
            "kpiengine.yaml": "project: plugin-test\n" + textwrap.dedent(settings),
            "sources/orders.yaml": SOURCE,
            "kpis.yaml": kpis,
        },
    )


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, float]:
    code = main(["run", *args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return {row["kpi"]: row["value"] for row in json.loads(out)["rows"]}


def plugins_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["plugins", *args]) == 0
    return capsys.readouterr().out


DOUBLE = """
    from kpiengine.language.functions import FunctionSpec
    from kpiengine.hookspecs import hookimpl

    __version__ = "1.2.3"

    @hookimpl
    def kpiengine_functions():
        return [FunctionSpec("double", "row", ("number",), "number", "x * 2",
                             sql=lambda args, dialect: args[0] * 2)]
    """
TOTALS = """
    kpis:
      - kpi: total
        source: orders
        expression: sum(price)
      - kpi: doubled
        source: orders
        expression: sum(double(price))
    """


# -- the hooks are documented contracts ---------------------------------------------------


def test_the_hooks():
    assert HOOKS == [
        "kpiengine_connectors",
        "kpiengine_dialects",
        "kpiengine_functions",
        "kpiengine_notifiers",
        "kpiengine_renderers",
        "kpiengine_sample_writers",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_says_when_it_is_called_what_it_returns_and_shows_an_example(hook):
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert re.search(r"\bCalled\b", doc), f"{hook}: say when it is called"
    assert re.search(r"\bReturns?\b", doc), f"{hook}: say what it returns"
    assert "Example::" in doc, f"{hook}: show an example implementation"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_in_docs_plugins_md(hook):
    assert re.search(rf"^#+ `?{hook}`?", DOCS.read_text(encoding="utf-8"), re.MULTILINE), hook


# -- built-ins are plugins ----------------------------------------------------------------


@pytest.mark.parametrize("hook", HOOKS)
def test_builtins_register_through_the_same_hooks(hook):
    host = plugins.build_host(entry_points=False)
    builtin = host.manager.get_plugin("builtin")
    implementation = getattr(builtin, hook)
    assert hasattr(implementation, "kpiengine_impl"), f"builtin {hook} is not a @hookimpl"
    # pluggy itself calls it: nothing about built-ins is special-cased
    assert any(getattr(host.manager.hook, hook)(context=host.context("builtin")))


def test_builtin_connectors_and_functions_come_from_the_hooks():
    host = plugins.build_host(entry_points=False)
    schemes = {spec.scheme for spec in host.collect("kpiengine_connectors")}
    assert {"duckdb", "files", "sqlite"} <= schemes
    names = {spec.name for spec in host.collect("kpiengine_functions")}
    assert {"count", "sum", "median", "previous", "coalesce"} <= names
    assert {r.name for r in host.collect("kpiengine_renderers")} >= {"html", "markdown"}
    assert {n.name for n in host.collect("kpiengine_notifiers")} >= {"console"}
    writers = {w.scheme for w in host.collect("kpiengine_sample_writers")}
    assert writers == {"duckdb", "sqlite", "files"}  # PostgreSQL's comes from its plugin


# -- discovery ----------------------------------------------------------------------------


def test_plugin_option_loads_a_module(tmp_path, plugin_module, orders_db, capsys):
    plugin_module("kpi_tmp_double", DOUBLE)
    root = project(tmp_path / "defs", TOTALS)
    values = run_json(
        capsys,
        "total",
        "doubled",
        *YEAR,
        "--project",
        str(root),
        "--connector",
        orders_db,
        "--plugin",
        "kpi_tmp_double",
    )
    assert values == {"total": 950.5, "doubled": 1901.0}


def test_without_the_plugin_the_function_is_unknown(tmp_path):
    root = project(tmp_path / "defs", TOTALS)
    with pytest.raises(DefinitionError, match="KPI303 unknown function `double`"):
        kpiengine.load(root)


def test_plugins_list_in_the_project_file(tmp_path, plugin_module, orders_db):
    plugin_module("kpi_tmp_double_project", DOUBLE)
    root = project(tmp_path / "defs", TOTALS, "plugins: [kpi_tmp_double_project]\n")
    loaded = kpiengine.load(root)
    with kpiengine.connect(orders_db) as connection:
        result = loaded.run(["doubled"], connection, grain="all")
    assert result.value("doubled") == 1901.0


def test_entry_points_are_discovered(tmp_path, plugin_module, orders_db, monkeypatch):
    plugin_module("kpi_tmp_double_ep", DOUBLE)
    fake = [metadata.EntryPoint("tmp_double", "kpi_tmp_double_ep", "kpiengine")]
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: fake)
    root = project(tmp_path / "defs", TOTALS)
    loaded = kpiengine.load(root)  # `double` is unknown until entry points are read
    with loaded.connect(orders_db) as connection:
        assert loaded.run(["doubled"], connection, grain="all").value("doubled") == 1901.0
    assert loaded.plugins.manager.has_plugin("tmp_double")


def test_entry_points_are_read_only_when_a_name_is_unknown(monkeypatch):
    """Start-up cost: reading distributions' metadata is skipped while built-ins suffice."""
    calls = []
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: calls.append(group) or [])
    registry = plugins.PluginHost().functions()
    assert registry.get("sum") is not None
    assert calls == []
    assert registry.get("no_such_function") is None
    assert calls == ["kpiengine"]


def test_kpi_plugins_lists_name_version_and_what_each_adds(plugin_module, capsys):
    plugin_module("kpi_tmp_double_list", DOUBLE)
    out = plugins_output(capsys, "--plugin", "kpi_tmp_double_list")
    lines = out.splitlines()
    assert lines[0] == f"builtin {kpiengine.__version__}"
    assert "  connectors: duckdb, files, sqlite" in lines
    assert any(line.startswith("  functions: coalesce, if, abs") for line in lines)
    assert any(line.startswith("  renderers: html") for line in lines)
    assert any(line.startswith("  notifiers: console") for line in lines)
    at = lines.index("kpi_tmp_double_list 1.2.3")
    assert lines[at + 1] == "  functions: double"
    assert "kpi_tmp_double_list:" not in out  # no problem reported for it


# -- failure isolation --------------------------------------------------------------------

BROKEN_IMPORT = """
    raise RuntimeError("boom on import")
    """
RAISING_HOOK = """
    from kpiengine.hookspecs import hookimpl

    @hookimpl
    def kpiengine_functions():
        raise ValueError("no functions today")

    @hookimpl
    def kpiengine_connectors():
        raise ValueError("no connectors today")
    """


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_works(
    tmp_path, plugin_module, orders_db, capsys, caplog
):
    plugin_module("kpi_tmp_broken", BROKEN_IMPORT)
    plugin_module("kpi_tmp_double_ok", DOUBLE)
    root = project(tmp_path / "defs", TOTALS)
    with caplog.at_level(logging.WARNING, logger="kpiengine.plugins.manager"):
        values = run_json(
            capsys,
            "total",
            "doubled",
            *YEAR,
            "--project",
            str(root),
            "--connector",
            orders_db,
            "--plugin",
            "kpi_tmp_broken",
            "--plugin",
            "kpi_tmp_double_ok",
        )
    assert values == {"total": 950.5, "doubled": 1901.0}
    assert "plugin kpi_tmp_broken: failed to load: RuntimeError('boom on import')" in (caplog.text)
    out = plugins_output(capsys, "--plugin", "kpi_tmp_broken", "--plugin", "kpi_tmp_double_ok")
    assert "problems (the plugins above still work):" in out
    assert "  kpi_tmp_broken: failed to load: RuntimeError('boom on import')" in out
    assert "kpi_tmp_double_ok 1.2.3" in out


def test_a_missing_plugin_module_is_reported_by_name(capsys):
    out = plugins_output(capsys, "--plugin", "kpi_tmp_not_there")
    assert "  kpi_tmp_not_there: failed to load: ModuleNotFoundError(" in out
    assert out.startswith("builtin ")


def test_a_hook_that_raises_is_reported_and_the_rest_works(
    tmp_path, plugin_module, orders_db, capsys, caplog
):
    plugin_module("kpi_tmp_raising", RAISING_HOOK)
    plugin_module("kpi_tmp_double_too", DOUBLE)
    root = project(tmp_path / "defs", TOTALS)
    with caplog.at_level(logging.WARNING, logger="kpiengine.plugins.manager"):
        values = run_json(
            capsys,
            "total",
            "doubled",
            *YEAR,
            "--project",
            str(root),
            "--connector",  # opening the URL asks every plugin for connectors
            orders_db,
            "--plugin",
            "kpi_tmp_raising",
            "--plugin",
            "kpi_tmp_double_too",
        )
    assert values == {"total": 950.5, "doubled": 1901.0}
    assert "kpi_tmp_raising: kpiengine_functions raised ValueError('no functions today')" in (
        caplog.text
    )
    assert "kpi_tmp_raising: kpiengine_connectors raised ValueError('no connectors today')" in (
        caplog.text
    )
    out = plugins_output(capsys, "--plugin", "kpi_tmp_raising")
    assert "kpi_tmp_raising" in out
    assert "  functions: failed (ValueError('no functions today'))" in out
    assert "  kpi_tmp_raising: kpiengine_functions raised ValueError('no functions today')" in out


def test_a_failure_is_reported_once_however_often_the_hook_is_called(plugin_module):
    plugin_module("kpi_tmp_raising_once", RAISING_HOOK)
    host = plugins.PluginHost(["kpi_tmp_raising_once"])
    for _ in range(3):
        host.collect("kpiengine_connectors")
    assert [f.reason for f in host.failures] == [
        "kpiengine_connectors raised ValueError('no connectors today')"
    ]


def test_an_entry_point_that_fails_to_load_is_reported(monkeypatch, capsys):
    fake = [metadata.EntryPoint("ghost", "kpi_tmp_ghost_module", "kpiengine")]
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: fake)
    out = plugins_output(capsys)
    assert "  ghost: failed to load: ModuleNotFoundError(" in out
    assert plugins.PluginHost(entry_points=True).functions().get("sum") is not None


# -- name clashes -------------------------------------------------------------------------

SHADOW_SUM = """
    from kpiengine.language.functions import FunctionSpec
    from kpiengine.hookspecs import hookimpl

    @hookimpl
    def kpiengine_functions():
        return [FunctionSpec("sum", "aggregate", ("number",), "number", "a wrong sum",
                             sql=lambda args, dialect: args[0])]
    """


def test_a_function_clashing_with_a_builtin_is_reported_not_a_crash(
    tmp_path, plugin_module, orders_db, capsys, caplog
):
    plugin_module("kpi_tmp_shadow", SHADOW_SUM)
    root = project(tmp_path / "defs", TOTALS.replace("sum(double(price))", "sum(price)"))
    with caplog.at_level(logging.WARNING, logger="kpiengine.plugins.manager"):
        values = run_json(
            capsys,
            "total",
            *YEAR,
            "--project",
            str(root),
            "--connector",
            orders_db,
            "--plugin",
            "kpi_tmp_shadow",
        )
    assert values == {"total": 950.5}  # the built-in sum, not the plugin's
    assert (
        "plugin kpi_tmp_shadow: function `sum` from kpi_tmp_shadow clashes with the one from "
        "builtin; `sum` from kpi_tmp_shadow is ignored" in caplog.text
    )
    out = plugins_output(capsys, "--plugin", "kpi_tmp_shadow")
    assert "  functions: sum (ignored: clashes with builtin)" in out


def test_between_two_plugins_the_first_registered_wins(plugin_module, caplog):
    plugin_module("kpi_tmp_double_a", DOUBLE)
    plugin_module("kpi_tmp_double_b", DOUBLE.replace("args[0] * 2", "args[0] * 3"))
    host = plugins.PluginHost(["kpi_tmp_double_a", "kpi_tmp_double_b"])
    with caplog.at_level(logging.WARNING, logger="kpiengine.plugins.manager"):
        spec = host.functions().get("double")
    assert spec is not None and spec.plugin == "kpi_tmp_double_a"
    assert "function `double` from kpi_tmp_double_b clashes with the one from kpi_tmp_double_a" in (
        caplog.text
    )


def test_plugins_are_called_in_registration_order():
    """pluggy keeps plugins in a set; the host must not, or clashes would be decided by
    chance."""
    host = plugins.build_host(["kpiengine.execute.duckdb_connector"], entry_points=False)
    assert [name for name, _ in host.plugins()][:2] == [
        "builtin",
        "kpiengine.execute.duckdb_connector",
    ]


def test_a_registry_without_a_clash_handler_still_raises():
    from kpiengine.language.functions import BUILTIN_FUNCTIONS, FunctionRegistry, FunctionSpec

    clash = FunctionSpec("sum", "row", ("number",), "number", "x", plugin="other")
    with pytest.raises(ValueError, match="clashes with the one from builtin"):
        FunctionRegistry([*BUILTIN_FUNCTIONS, clash])


# -- the example plugin package (plugins/example-functions) -------------------------------

EXAMPLE_KPIS = """
    kpis:
      - kpi: typical_size
        source: orders
        expression: mode(size)
      - kpi: typical_web_size
        source: orders
        expression: mode(size where channel = 'web')
      - kpi: clamped_revenue
        source: orders
        expression: sum(clamp(price, 0, 100))
      - kpi: capped_revenue
        source: orders
        expression: sum(clamp(price, null, 100))
    """
MONTHS = [dt.date(2024, month, 1) for month in (1, 2, 3, 4)]
# Jan sizes 3, 1, 3, 1, 2: 1 and 3 tie, the smallest wins; Apr 4, 7, 7 (null skipped).
# Web only: Jan 3, 3, 1; Feb 5, 2 (tie → 2); Apr 4, 7 (tie → 4).
# clamp(price, 0, 100): Jan 10 + 100 + 0 + 40 (null skipped); Feb 100 + 80 + 100;
# Apr 55.5 + 100 + 0. Without a lower bound Jan has -5 instead of 0.
EXPECTED = {
    "typical_size": [1, 5, None, 7],
    "typical_web_size": [3, 2, None, 4],
    "clamped_revenue": [150.0, 280.0, None, 155.5],
    "capped_revenue": [145.0, 280.0, None, 155.5],
}


@pytest.fixture
def example() -> object:
    return pytest.importorskip(
        "kpiengine_example_functions",
        reason="the example plugin is not installed: pip install -e plugins/example-functions",
    )


def by_month(result, kpi: str) -> list[object]:
    return [row.value for row in result.rows if row.kpi == kpi]


def test_the_example_plugin_is_an_installed_entry_point(example):
    found = {ep.name: ep.value for ep in metadata.entry_points(group="kpiengine")}
    assert found.get("example_functions") == "kpiengine_example_functions"
    assert metadata.version("kpiengine-example-functions") == example.__version__


def test_example_functions_on_duckdb(example, tmp_path, orders_db):
    root = project(tmp_path / "defs", EXAMPLE_KPIS)
    loaded = kpiengine.load(root)  # found through the entry point, no --plugin
    with kpiengine.connect(orders_db) as connection:
        result = loaded.run(
            list(EXPECTED), connection, grain="month", start="2024-01-01", end="2024-05-01"
        )
    assert sorted({row.period for row in result.rows}) == MONTHS
    for kpi, expected in EXPECTED.items():
        assert by_month(result, kpi) == expected, kpi


def test_mode_over_the_whole_year_breaks_the_tie_towards_the_smallest(example, tmp_path, capsys):
    # sizes 3 1 3 1 2 5 5 2 4 7 7: 1, 2, 3, 5 and 7 twice each
    url = make_duckdb(tmp_path / "w.duckdb", {"orders": ORDERS})
    root = project(tmp_path / "defs", EXAMPLE_KPIS)
    values = run_json(capsys, "typical_size", *YEAR, "--project", str(root), "--connector", url)
    assert values == {"typical_size": 1}


def test_clamp_on_sqlite_and_mode_refused_clearly(example, tmp_path, capsys):
    url = make_sqlite(tmp_path / "w.db", {"orders": ORDERS})
    root = project(tmp_path / "defs", EXAMPLE_KPIS)
    loaded = kpiengine.load(root)
    with kpiengine.connect(url) as connection:
        result = loaded.run(
            ["clamped_revenue", "capped_revenue"],
            connection,
            grain="month",
            start="2024-01-01",
            end="2024-05-01",
        )
        assert by_month(result, "clamped_revenue") == EXPECTED["clamped_revenue"]
        assert by_month(result, "capped_revenue") == EXPECTED["capped_revenue"]
        with pytest.raises(UsageError, match="mode\\(\\) is not available on sqlite"):
            loaded.run(["typical_size"], connection, grain="all")
    code = main(["run", "typical_size", *YEAR, "--project", str(root), "--connector", url])
    assert code == 2
    assert "supported on duckdb, postgres, spark" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("duckdb", "MODE(t.size ORDER BY t.size)"),
        ("postgres", "MODE() WITHIN GROUP (ORDER BY t.size)"),
        ("spark", "MODE(t.size, TRUE)"),
    ],
)
def test_mode_sql_per_engine(example, tmp_path, dialect, sql):
    loaded = kpiengine.load(project(tmp_path / "defs", EXAMPLE_KPIS))
    text = loaded.compile(["typical_size"], dialect=dialect, grain="all")
    assert sql in " ".join(text.split())


def test_plugin_functions_get_the_same_checks_as_builtins(example, tmp_path):
    kpis = """
        kpis:
          - kpi: not_a_number
            source: orders
            expression: mode(channel)
          - kpi: wrong_arity
            source: orders
            expression: sum(clamp(price, 0))
          - kpi: nested
            source: orders
            expression: mode(sum(price))
        """
    with pytest.raises(DefinitionError) as caught:
        kpiengine.load(project(tmp_path / "defs", kpis))
    codes = sorted(d.code for d in caught.value.diagnostics)
    assert codes == ["KPI304", "KPI305", "KPI307"]


def test_kpi_plugins_shows_the_example_package(example, capsys):
    out = plugins_output(capsys)
    version = f"{example.__version__} (kpiengine-example-functions)"
    assert f"example_functions {version}\n  functions: mode, clamp\n" in out


# -- the examples of docs/plugins.md work as printed --------------------------------------


def docs_example(name: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"docs/plugins.md has no `{name}` example"
    return match.group(1)


def test_docs_connector_example_passes_the_conformance_kit(tmp_path, plugin_module):
    from kpiengine.testing import DATASET, run_conformance
    from tests.test_testing_kit import KNOWN_FAILURES

    plugin_module("kpi_docs_jsonl", docs_example("connector"))
    host = plugins.PluginHost(["kpi_docs_jsonl"])
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, table in DATASET.tables.items():
        lines = (json.dumps(row, default=str) for row in table.to_dicts())
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = run_conformance(
        f"jsonl:///{folder}", tmp_path, open=host.connect, skip=list(KNOWN_FAILURES)
    )
    assert problems == []


REPORTED = """
    kpis:
      - kpi: total
        source: orders
        expression: sum(price)
        rules:
          - name: big
            when: value > 100
            severity: warning
            message: "total is {{ value }}"
    """


def test_docs_renderer_example(tmp_path, plugin_module, orders_db, capsys):
    plugin_module("kpi_docs_text", docs_example("renderer"))
    root = project(tmp_path / "defs", REPORTED)
    output = tmp_path / "report.txt"
    args = ["--project", str(root), "--connector", orders_db, "--plugin", "kpi_docs_text"]
    code = main(["report", "total", *YEAR, "--renderer", "text", "-o", str(output), *args])
    assert code == 0, capsys.readouterr().err
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "plugin-test: all, 2024-01-01 to 2025-01-01"
    assert lines[1].startswith("total: ")
    assert "950" in lines[1]
    assert lines[2] == "warning: total is 950.5"


def test_docs_notifier_example(tmp_path, plugin_module, orders_db, capsys):
    plugin_module("kpi_docs_digest", docs_example("notifier"))
    root = project(tmp_path / "defs", REPORTED)
    log = tmp_path / "alerts.log"
    args = ["--project", str(root), "--connector", orders_db, "--plugin", "kpi_docs_digest"]
    code = main(["check", "total", *YEAR, "--notify", f"digest={log}", *args])
    assert code in (0, 1), capsys.readouterr().err
    assert log.read_text(encoding="utf-8") == "plugin-test: 1 alert(s): 1 warning\n"


def test_project_plugins_may_live_in_the_project_folder(tmp_path, capsys):
    from kpiengine.cli import main

    root = tmp_path / "defs"
    root.mkdir()
    (root / "kpiengine.yaml").write_text("project: p\nplugins: [local_kpi_plugin]\n")
    (root / "local_kpi_plugin.py").write_text(
        "from kpiengine.hookspecs import hookimpl\n"
        "from kpiengine.language.functions import FunctionSpec\n\n"
        "@hookimpl\n"
        "def kpiengine_functions():\n"
        "    return [FunctionSpec('twice_local', 'row', ('number',), 'number', 'x * 2',\n"
        "                         sql=lambda args, dialect: args[0] * 2)]\n"
    )
    assert main(["plugins", "--project", str(root)]) == 0
    assert "local_kpi_plugin" in capsys.readouterr().out


# -- one plugin host per project ------------------------------------------------------------

TRIPLE_AS_DOUBLE = DOUBLE.replace("args[0] * 2", "args[0] * 3")


def test_two_projects_in_one_process_do_not_see_each_others_plugins(
    tmp_path, plugin_module, orders_db
):
    plugin_module("kpi_tmp_double_one", DOUBLE)
    plugin_module("kpi_tmp_double_three", TRIPLE_AS_DOUBLE)
    one = kpiengine.load(project(tmp_path / "one", TOTALS, "plugins: [kpi_tmp_double_one]\n"))
    three = kpiengine.load(project(tmp_path / "three", TOTALS, "plugins: [kpi_tmp_double_three]\n"))
    with one.connect(orders_db) as connection:
        assert one.run(["doubled"], connection, grain="all").value("doubled") == 1901.0
        assert three.run(["doubled"], connection, grain="all").value("doubled") == 2851.5
    assert one.plugins is not three.plugins
    assert not one.plugins.manager.has_plugin("kpi_tmp_double_three")
    # a third project, without plugins, sees neither, nor does the plain Python API
    with pytest.raises(DefinitionError, match="KPI303 unknown function `double`"):
        kpiengine.load(project(tmp_path / "none", TOTALS))
    assert not plugins.default_host().manager.has_plugin("kpi_tmp_double_one")


def test_a_plugin_option_does_not_leak_into_the_next_command(
    tmp_path, plugin_module, orders_db, capsys
):
    plugin_module("kpi_tmp_double_once", DOUBLE)
    root = project(tmp_path / "defs", TOTALS)
    args = [*YEAR, "--project", str(root), "--connector", orders_db]
    assert run_json(capsys, "doubled", *args, "--plugin", "kpi_tmp_double_once") == {
        "doubled": 1901.0
    }
    assert main(["run", "doubled", *args]) == 1
    assert "KPI303 unknown function `double`" in capsys.readouterr().err


# -- hooks receive a context: the project and its plugin_config ------------------------------

CONFIGURED = """
    from kpiengine.language.functions import FunctionSpec
    from kpiengine.hookspecs import hookimpl

    @hookimpl
    def kpiengine_functions(context):
        factor = context.config.get("factor", 2)
        assert context.plugin == "kpi_tmp_configured"
        assert context.project is None or context.project.name == "plugin-test"
        return [FunctionSpec("scaled", "row", ("number",), "number", "x * factor",
                             sql=lambda args, dialect: args[0] * factor)]
    """
SCALED = """
    kpis:
      - kpi: scaled_total
        source: orders
        expression: sum(scaled(price))
    """


def test_hooks_receive_the_project_and_their_plugin_config(tmp_path, plugin_module, orders_db):
    plugin_module("kpi_tmp_configured", CONFIGURED)
    settings = """
        plugins: [kpi_tmp_configured]
        plugin_config:
          kpi_tmp_configured: {factor: 10}
        """
    loaded = kpiengine.load(project(tmp_path / "defs", SCALED, settings))
    with loaded.connect(orders_db) as connection:
        result = loaded.run(["scaled_total"], connection, grain="all")
    assert result.value("scaled_total") == 9505.0
    assert loaded.model.plugin_config == {"kpi_tmp_configured": {"factor": 10}}
    assert loaded.plugins.context("kpi_tmp_configured").config == {"factor": 10}
    assert loaded.plugins.context("other").config == {}


def test_plugin_config_for_a_plugin_that_is_not_loaded_is_reported(tmp_path, capsys):
    root = project(tmp_path / "defs", "", "plugin_config:\n  kpi_tmp_nowhere: {a: 1}\n")
    out = plugins_output(capsys, "--project", str(root))
    assert "  kpi_tmp_nowhere: named in `plugin_config:` but not loaded" in out


def test_plugin_config_must_be_a_mapping_per_plugin(tmp_path):
    root = project(tmp_path / "defs", TOTALS, "plugin_config:\n  kpi_tmp_x: [1, 2]\n")
    with pytest.raises(DefinitionError, match="plugin_config"):
        kpiengine.load(root)


# -- a misspelled hook is an error, by name -------------------------------------------------

MISSPELLED = """
    from kpiengine.hookspecs import hookimpl
    from kpiengine.language.functions import FunctionSpec

    @hookimpl
    def kpiengine_renderer():
        return []

    @hookimpl
    def kpiengine_functions():
        return [FunctionSpec("typo_fn", "row", ("number",), "number", "x",
                             sql=lambda args, dialect: args[0])]
    """
UNKNOWN_ARGUMENT = """
    from kpiengine.hookspecs import hookimpl

    @hookimpl
    def kpiengine_functions(project):
        return []
    """


def test_a_misspelled_hook_is_reported_by_name_and_the_plugin_not_loaded(
    tmp_path, plugin_module, orders_db, capsys
):
    plugin_module("kpi_tmp_typo", MISSPELLED)
    out = plugins_output(capsys, "--plugin", "kpi_tmp_typo")
    assert "typo_fn" not in out  # half a plugin would fail later, far from the typo
    assert (
        "  kpi_tmp_typo: failed to load: `kpiengine_renderer` is not a kpiengine hook "
        "(did you mean `kpiengine_renderers`?)" in out
    )
    root = project(tmp_path / "defs", TOTALS.replace("sum(double(price))", "sum(price)"))
    args = ["total", *YEAR, "--project", str(root), "--connector", orders_db]
    assert main(["run", *args, "--plugin", "kpi_tmp_typo"]) == 0
    err = capsys.readouterr().err
    assert "kpi: warning: plugin kpi_tmp_typo: failed to load: `kpiengine_renderer`" in err


def test_a_hook_asking_for_an_unknown_argument_is_reported(plugin_module):
    plugin_module("kpi_tmp_bad_argument", UNKNOWN_ARGUMENT)
    host = plugins.PluginHost(["kpi_tmp_bad_argument"])
    assert not host.manager.has_plugin("kpi_tmp_bad_argument")
    [failure] = host.failures
    assert failure.name == "kpi_tmp_bad_argument"
    assert "failed to load:" in failure.reason and "project" in failure.reason
    assert "\n" not in failure.reason


def test_each_hook_is_called_once_per_host(plugin_module):
    plugin_module(
        "kpi_tmp_counted",
        """
        from kpiengine.hookspecs import hookimpl

        CALLS = []

        @hookimpl
        def kpiengine_connectors():
            CALLS.append(1)
            return []
        """,
    )
    host = plugins.PluginHost(["kpi_tmp_counted"])
    for url in ("duckdb:///a.duckdb", "sqlite:///b.db", "files:///c"):
        host.find_connector(url)
    assert sys.modules["kpi_tmp_counted"].CALLS == [1]
    plugins.PluginHost(["kpi_tmp_counted"]).collect("kpiengine_connectors")
    assert sys.modules["kpi_tmp_counted"].CALLS == [1, 1]


# -- renderers: bytes, content type, suffix -------------------------------------------------

BYTES_RENDERER = """
    from dataclasses import dataclass

    from kpiengine.hookspecs import hookimpl

    @dataclass(frozen=True)
    class Binary:
        name: str = "binary"
        suffix: str = ".bin"
        content_type: str = "application/x-kpi-test"

        def render(self, report, template=None):
            return b"\\x00\\xffKPI " + report.project.encode() + b"\\n"

    @hookimpl
    def kpiengine_renderers():
        return [Binary()]
    """


def test_a_renderer_may_return_bytes(tmp_path, plugin_module, orders_db, capsys):
    from kpiengine.render.renderers import find_renderer, render_report

    plugin_module("kpi_tmp_binary", BYTES_RENDERER)
    root = project(tmp_path / "defs", REPORTED)
    output = tmp_path / "report.bin"
    args = ["--project", str(root), "--connector", orders_db, "--plugin", "kpi_tmp_binary"]
    code = main(["report", "total", *YEAR, "--renderer", "binary", "-o", str(output), *args])
    assert code == 0, capsys.readouterr().err
    assert output.read_bytes() == b"\x00\xffKPI plugin-test\n"
    assert "does not end in" not in capsys.readouterr().err

    renderer = find_renderer("binary", plugins.PluginHost(["kpi_tmp_binary"]))
    loaded = kpiengine.load(root)
    with loaded.connect(orders_db) as connection:
        result = loaded.run(["total"], connection, grain="all")
    from kpiengine.render.report_data import build_report

    report = build_report(loaded.model, result, result.alerts, result.statuses)
    rendered = render_report(renderer, report)
    assert rendered.content_type == "application/x-kpi-test"
    assert rendered.content.startswith(b"\x00\xff")
    html = render_report(find_renderer("html"), report)
    assert isinstance(html.content, str)
    assert html.content_type == "text/html; charset=utf-8"


def test_an_output_suffix_other_than_the_renderers_is_a_warning(tmp_path, orders_db, capsys):
    root = project(tmp_path / "defs", REPORTED)
    output = tmp_path / "report.txt"
    args = ["--project", str(root), "--connector", orders_db]
    code = main(["report", "total", *YEAR, "--renderer", "markdown", "-o", str(output), *args])
    assert code == 0
    err = capsys.readouterr().err
    assert f"kpi: warning: {output} does not end in .md" in err
    assert output.read_text(encoding="utf-8").startswith("#")


# -- versions come from the distribution, not the module name -------------------------------


def test_the_version_is_the_distributions_not_the_modules(example, capsys, monkeypatch):
    monkeypatch.setattr(example, "__version__", "9.9.9")  # the module says otherwise
    out = plugins_output(capsys)
    dist = metadata.version("kpiengine-example-functions")
    assert f"example_functions {dist} (kpiengine-example-functions)\n" in out


def test_a_plugin_module_in_a_differently_named_distribution(plugin_module, capsys, monkeypatch):
    pytest.importorskip("kpiengine_example_functions")
    plugin_module("kpi_tmp_double_dist", DOUBLE)  # __version__ 1.2.3
    mapping = {"kpi_tmp_double_dist": ["kpiengine-example-functions"]}
    monkeypatch.setattr(metadata, "packages_distributions", lambda: mapping)
    out = plugins_output(capsys, "--plugin", "kpi_tmp_double_dist")
    dist = metadata.version("kpiengine-example-functions")
    assert f"kpi_tmp_double_dist {dist} (kpiengine-example-functions)\n" in out
