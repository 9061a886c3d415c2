"""The `kpi` command line: outputs, exit codes (0 / 1 / 2 / 3), and no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot

from kpiengine.cli import main
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files


@pytest.fixture
def env(tmp_path):
    root = write_files(tmp_path / "defs", SALES_FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url


def kpi(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_run_json_shape(env, capsys):
    root, url = env
    code, out, _ = kpi(
        capsys,
        "run",
        "win_rate",
        "--project",
        str(root),
        "--connector",
        url,
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-01",
        "--by",
        "region",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert list(doc) == ["grain", "from", "to", "as_of", "rows", "alerts"]
    assert (doc["grain"], doc["from"], doc["to"], doc["alerts"]) == (
        "month",
        "2024-01-01",
        "2024-03-01",
        [],
    )
    assert doc["rows"][0] == {
        "period": "2024-01-01",
        "kpi": "win_rate",
        "value": 0.5,
        "region": "emea",
        "partial": False,  # January 2024 is over (the as-of date is today)
    }
    assert len(doc["rows"]) == 2 * 2  # Jan, Feb × emea, internal


def test_run_grain_all_has_null_period(env, capsys):
    root, url = env
    code, out, _ = kpi(
        capsys,
        "run",
        "deals",
        "--project",
        str(root),
        "--connector",
        url,
        "--grain",
        "all",
        "--from",
        "2024-01-01",
        "--to",
        "2025-01-01",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out)["rows"] == [
        {"period": None, "kpi": "deals", "value": 7, "partial": False}
    ]


def test_run_csv_and_table(env, capsys):
    root, url = env
    args = [
        "run",
        "revenue",
        "win_rate",
        "--project",
        str(root),
        "--connector",
        url,
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-01",
    ]
    code, out, _ = kpi(capsys, *args, "--format", "csv")
    assert code == 0
    assert out.splitlines() == [
        "period,kpi,value,partial",
        "2024-01-01,revenue,110.0,false",
        "2024-02-01,revenue,,false",
        "2024-01-01,win_rate,0.6666666666666666,false",
        "2024-02-01,win_rate,,false",
    ]
    code, out, _ = kpi(capsys, *args)
    assert code == 0
    assert "66.7 %" in out and "110 EUR" in out


def test_run_all(env, capsys):
    root, url = env
    code, out, _ = kpi(
        capsys,
        "run",
        "--all",
        "--project",
        str(root),
        "--connector",
        url,
        "--from",
        "2024-01-01",
        "--to",
        "2024-02-01",
        "--format",
        "json",
    )
    assert code == 0
    assert len(json.loads(out)["rows"]) == 23  # every KPI of the project, one month


def test_compile_one_statement(env, capsys):
    root, _ = env
    code, out, _ = kpi(
        capsys,
        "compile",
        "win_rate",
        "--project",
        str(root),
        "--dialect",
        "snowflake",
        "--grain",
        "month",
        "--by",
        "region",
    )
    assert code == 0
    assert len(sqlglot.parse(out.strip().rstrip(";"), read="snowflake")) == 1


def test_validate_clean(env, capsys):
    root, _ = env
    code, out, _ = kpi(capsys, "validate", str(root))
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("ok: 23 KPIs, 3 sources, no errors")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "nope"], 2, "unknown KPI `nope`"),
        (["run", "win_rat"], 2, "did you mean `win_rate`?"),
        (["run", "deals", "--grain", "decade"], 2, "decade"),
        (["run", "deals", "--from", "2024-13-01"], 2, "not a date"),
        (["run", "deals", "--from", "2024-02-01", "--to", "2024-01-01"], 2, "empty range"),
        (["run"], 2, "name at least one KPI"),
        (["run", "deals", "--connector", "nosuch://x"], 2, "no connector for `nosuch://`"),
        (["run", "deals", "--connector", "duckdb:///missing.duckdb"], 3, "does not exist"),
        (["run", "win_rate", "--by", "stage"], 1, "KPI310"),
        (["run", "deals", "--where", "region = "], 1, "KPI201"),
        (["compile", "deals", "--dialect", "oracle9"], 2, "unknown dialect"),
        (["explain", "nope"], 2, "unknown KPI"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_exit_codes(env, capsys, args, code, message):
    root, url = env
    extra = ["--project", str(root)]
    if args[0] == "run" and "--connector" not in args and len(args) > 1:
        extra += ["--connector", url]
    got, out, err = kpi(capsys, *args, *(extra if args[0] != "frobnicate" else []))
    assert got == code, out + err
    assert message in out + err


def test_missing_connector_is_a_usage_error(env, capsys):
    root, _ = env
    code, _, err = kpi(capsys, "run", "deals", "--project", str(root))
    assert code == 2
    assert "--connector" in err


def test_definition_error_points_at_the_yaml(env, capsys):
    root, url = env
    code, _, err = kpi(
        capsys, "run", "win_rate", "--by", "stage", "--project", str(root), "--connector", url
    )
    assert code == 1
    assert "sales.yaml:" in err and "dimensions" in err


def test_project_found_upward(env, capsys, monkeypatch):
    root, url = env
    inner = root / "kpis"
    monkeypatch.chdir(inner)
    code, out, _ = kpi(
        capsys,
        "run",
        "deals",
        "--connector",
        url,
        "--grain",
        "all",
        "--from",
        "2024-01-01",
        "--to",
        "2025-01-01",
        "--format",
        "csv",
    )
    assert code == 0
    assert out.splitlines()[1] == ",deals,7,false"


def test_project_connector_is_relative_to_project(tmp_path, capsys):
    root = write_files(
        tmp_path / "defs",
        {**SALES_FILES, "kpiengine.yaml": "project: tiny\nconnector: duckdb:///../w.duckdb\n"},
    )
    make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    code, out, _ = kpi(
        capsys,
        "run",
        "deals",
        "--project",
        str(root),
        "--grain",
        "all",
        "--format",
        "csv",
        "--from",
        "2024-01-01",
        "--to",
        "2025-01-01",
    )
    assert code == 0, out


def test_list_schema_explain(env, capsys, tmp_path):
    root, _ = env
    code, out, _ = kpi(capsys, "list", str(root), "--format", "json")
    assert code == 0 and {k["name"] for k in json.loads(out)} >= {"win_rate", "avg_deal"}
    code, out, _ = kpi(capsys, "list", str(root), "--format", "markdown")
    assert code == 0 and out.startswith("| kpi | title |")
    code, out, _ = kpi(capsys, "schema", "kpi")
    assert code == 0 and json.loads(out)["$schema"].endswith("2020-12/schema")
    code, out, _ = kpi(capsys, "schema", "--write", str(tmp_path / "schemas"))
    assert code == 0 and len(list((tmp_path / "schemas").glob("*.schema.json"))) == 4
    code, out, _ = kpi(capsys, "explain", "avg_deal", "--project", str(root))
    assert code == 0
    assert "revenue" in out and "won_count" in out and "table opportunities" in out
    assert "WITH" in out


@pytest.mark.parametrize("command", ["validate", "list", "compile", "run", "explain", "schema"])
def test_help_has_an_example(capsys, command):
    code, out, _ = kpi(capsys, command, "--help")
    assert code == 0
    assert "Example" in out


def test_real_entry_point_never_shows_a_traceback(tmp_path):
    root = write_files(tmp_path / "defs", {"bad.yaml": "kpi: x\nexpression: (((\n"})
    env = {k: v for k, v in os.environ.items() if k != "KPI_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-m", "kpiengine", "validate", str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "bad.yaml:2:" in done.stdout


def test_validate_against_the_warehouse(env, capsys, tmp_path):
    root, _ = env
    # a warehouse without `spend` and whose opportunities lack `amount`
    url = make_duckdb(
        tmp_path / "partial.duckdb",
        {
            "opportunities": (
                "id VARCHAR, account_id VARCHAR, region VARCHAR, stage VARCHAR, "
                "created_at TIMESTAMP, closed_at TIMESTAMP",
                [],
            ),
            "accounts": ACCOUNTS,
        },
    )
    code, out, _ = kpi(capsys, "validate", str(root), "--connector", url, "--format", "json")
    assert code == 1
    found = {
        (d["code"], d["file"].rsplit("/", 1)[-1])
        for d in json.loads(out)["diagnostics"]
        if d["severity"] == "error"
    }
    assert found == {("KPI502", "spend.yaml"), ("KPI503", "opportunities.yaml")}
    code, _, err = kpi(capsys, "validate", str(root), "--connector", "duckdb:///nope.duckdb")
    assert code == 3 and "does not exist" in err
