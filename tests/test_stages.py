"""Stages hand on frozen outputs: one plan per run, a Result never changed after it is made.

Counted on real runs (DuckDB through the CLI), by wrapping ``build_plan`` wherever a module
of the package holds it: a stage that builds its own plan again shows up as a second call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from kpiengine import api
from kpiengine.cli import main
from kpiengine.compile.statement import compile_plan
from kpiengine.execute.result import Alert, Result, ResultRow
from kpiengine.plan import planner
from kpiengine.plan.planner import build_plan, with_range
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, str]:
    root = write_files(tmp_path / "defs", SALES_FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url


@pytest.fixture
def plan_builds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """The KPIs of every ``build_plan`` call, whichever module calls it."""
    calls: list[tuple[str, ...]] = []
    original = planner.build_plan

    def counting(project, request, functions=None):  # type: ignore[no-untyped-def]
        calls.append(request.kpis)
        return original(project, request, functions)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("kpiengine"):
            for name, value in list(vars(module).items()):
                if value is original:
                    monkeypatch.setattr(module, name, counting)
    yield calls


@pytest.mark.parametrize(
    "range_args",
    [(), ("--from", "2024-01-01", "--to", "2024-04-01")],
    ids=["range-from-data", "range-given"],
)
@pytest.mark.parametrize("command", ["run", "check", "report"])
def test_a_command_builds_one_plan(
    env: tuple[Path, str],
    plan_builds: list[tuple[str, ...]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    range_args: tuple[str, ...],
) -> None:
    root, url = env
    extra = ["-o", str(tmp_path / "r.md"), "--renderer", "markdown"] if command == "report" else []
    code = main(
        [
            command,
            "win_rate",
            "revenue",
            "--project",
            str(root),
            "--connector",
            url,
            *range_args,
            *extra,
        ]
    )
    _, err = capsys.readouterr()
    assert code in (0, 1), err  # check exits 1 when a rule fires
    assert len(plan_builds) == 1, plan_builds


def test_with_range_is_the_plan_built_for_that_range(env: tuple[Path, str]) -> None:
    """Completing a plan's range gives what building it for the whole request gives."""
    root, _ = env
    project = api.load(root)
    for kpis, grain in [(("win_rate", "revenue"), "month"), (tuple(project.kpis), "quarter")]:
        open_ended = project.request(kpis, grain=grain)
        ranged = dataclasses.replace(
            open_ended,
            start=dt.date(2024, 1, 1),
            end=dt.date(2024, 7, 1),
            history_start=dt.date(2023, 10, 1),
        )
        completed = with_range(build_plan(project.model, open_ended), ranged)
        built = build_plan(project.model, ranged)
        assert completed.periods == built.periods
        assert completed.first_period == built.first_period
        assert completed.request == built.request
        for dialect in ("duckdb", "postgres"):
            assert compile_plan(completed, dialect) == compile_plan(built, dialect)


def test_with_range_changes_nothing_but_the_range(env: tuple[Path, str]) -> None:
    root, _ = env
    project = api.load(root)
    plan = project.plan(["win_rate"])
    with pytest.raises(ValueError):
        with_range(plan, dataclasses.replace(plan.request, grain="quarter"))


def test_result_is_frozen_and_its_alerts_typed(env: tuple[Path, str]) -> None:
    root, url = env
    project = api.load(root)
    with api.connect(url) as connection:
        result = project.run(["win_rate"], connection, start="2024-01-01", end="2024-04-01")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alerts = []  # type: ignore[misc]
    assert typing.get_type_hints(Result)["alerts"] == list[Alert]
    assert all(isinstance(a, Alert) for a in result.alerts)
    row = ResultRow(dt.date(2024, 1, 1), "k", 1)
    bare = Result("month", None, None, (), [row])
    alert = Alert("k", "r", row.period, (), 1, None, "warning", "m")
    evaluated = bare.evaluated([alert], {row: "warning"})
    assert (bare.alerts, bare.statuses) == ([], {})
    assert evaluated.alerts == [alert] and evaluated.statuses == {row: "warning"}
