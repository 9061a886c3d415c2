"""The CI recipes of docs/ci.md (docs/examples/*.yml) parse, and every `kpi` command they
call runs as written (through bash, with the CI's variables set) on a pull request of a
temporary git repository: a project from `kpi init`, a base branch and a change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def shell_lines(script: str) -> list[str]:
    """The commands of a shell script, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in script.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def github_commands(document: dict) -> list[str]:
    scripts = [step["run"] for job in document["jobs"].values() for step in job["steps"]
               if "run" in step]  # fmt: skip
    return [line for script in scripts for line in shell_lines(script)]


def gitlab_commands(document: dict) -> list[str]:
    job = document["kpis"]
    scripts = [*job.get("before_script", []), *job["script"]]
    return [line for script in scripts for line in shell_lines(script)]


def kpi_commands(commands: list[str]) -> list[str]:
    return [c for c in commands if c.split()[0] == "kpi"]


def git(repo: Path, *args: str) -> None:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], cwd=repo, env=environment, check=True, capture_output=True)


@pytest.fixture
def pull_request(tmp_path: Path) -> tuple[Path, str]:
    """A clone whose `origin/main` holds a starter project and whose checked-out branch
    changes the revenue KPI (and its test); and a warehouse URL."""
    import duckdb

    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    subprocess.run(
        [str(Path(sys.executable).parent / "kpi"), "init", "definitions"], cwd=origin, check=True,
        capture_output=True,
    )  # fmt: skip
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "starter")
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    git(work, "checkout", "-q", "-b", "wider-revenue")
    kpis = work / "definitions" / "kpis" / "orders.yaml"
    kpis.write_text(kpis.read_text().replace("status = 'paid'", "status in ('paid', 'refunded')"))
    test = work / "definitions" / "tests" / "revenue.yaml"
    test.write_text(test.read_text().replace("revenue: 100}", "revenue: 140}"))
    git(work, "commit", "-q", "-am", "count refunded orders in revenue")
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, status VARCHAR,"
            " amount DOUBLE, ordered_at TIMESTAMP)"
        )
        connection.execute(
            "INSERT INTO orders VALUES (1, 10, 'paid', 100, '2024-01-05'),"
            " (2, 11, 'refunded', 40, '2024-01-09'), (3, 10, 'paid', 60, '2024-02-02')"
        )
    return work, f"duckdb:///{warehouse}"


def run_all(commands: list[str], work: Path, variables: dict[str, str]) -> None:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **variables,
    }
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=work, env=environment, capture_output=True, text=True
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr


def test_github_actions(pull_request):
    work, warehouse = pull_request
    document = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    commands = kpi_commands(github_commands(document))
    joined = "\n".join(commands)
    for expected in ("--format github", "--format sarif", "kpi test", "kpi diff"):
        assert expected in joined
    summary = work / "summary.md"
    run_all(
        commands,
        work,
        {"GITHUB_BASE_REF": "main", "KPI_WAREHOUSE": warehouse,
         "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    sarif = json.loads((work / "kpi.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    comment = (work / "kpi-diff.md").read_text()
    assert "| changed | revenue (expression) |" in comment
    assert "+40" in comment and "**Changes found.**" in comment


def test_gitlab_ci(pull_request):
    work, warehouse = pull_request
    document = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    commands = kpi_commands(gitlab_commands(document))
    joined = "\n".join(commands)
    for expected in ("--format junit", "kpi test", "kpi diff"):
        assert expected in joined
    run_all(
        commands,
        work,
        {"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "KPI_WAREHOUSE": warehouse},
    )
    for report in ("kpi-validate.xml", "kpi-tests.xml"):
        assert ET.parse(work / report).getroot().tag in ("testsuites", "testsuite")
    assert "revenue" in (work / "kpi-diff.md").read_text()


def test_without_warehouse_secret(pull_request):
    """A pull request from a fork has no secrets: the diff still lists the definitions."""
    work, _ = pull_request
    document = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    diff = [c for c in kpi_commands(github_commands(document)) if c.startswith("kpi diff")]
    run_all(diff, work, {"GITHUB_BASE_REF": "main", "KPI_WAREHOUSE": ""})
    comment = (work / "kpi-diff.md").read_text()
    assert "revenue (expression)" in comment and "Values not compared" in comment


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_docs_show_the_examples(name):
    """docs/ci.md quotes each example whole (after its two comment lines)."""
    example = (EXAMPLES / name).read_text().split("\n", 2)[2]
    assert example in (EXAMPLES.parent / "ci.md").read_text()


def _project_with_connector(folder: Path, connector: str) -> Path:
    from kpiengine.review.init_project import init_project

    init_project(folder, None)
    project_file = folder / "kpiengine.yaml"
    project_file.write_text(project_file.read_text() + f"connector: {connector}\n")
    return folder


def test_validate_checks_the_projects_connector(tmp_path, capsys):
    """`kpi validate` checks tables and columns against the project's `connector:` (a
    relative path is relative to the project folder); --offline skips it."""
    import duckdb

    from kpiengine.cli import main

    folder = _project_with_connector(tmp_path / "p", "duckdb:///warehouse.duckdb")
    with duckdb.connect(str(folder / "warehouse.duckdb")) as connection:  # no `amount`
        connection.execute(
            "CREATE TABLE orders (order_id BIGINT, customer_id BIGINT, status VARCHAR,"
            " ordered_at TIMESTAMP)"
        )
    code = main(["validate", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1 and "amount" in out, out + err
    code = main(["validate", str(folder), "--offline"])
    out, err = capsys.readouterr()
    assert code == 0 and "no errors" in out and not err, out + err


def test_validate_with_an_unreachable_connector_warns(tmp_path, capsys):
    from kpiengine.cli import main

    folder = _project_with_connector(tmp_path / "p", "duckdb:///missing.duckdb")
    code = main(["validate", str(folder)])
    out, err = capsys.readouterr()
    assert code == 0 and "no errors" in out, out + err
    assert "kpi: warning: the project's connector is not reachable" in err
    assert "--offline" in err
    # an explicit --connector that fails is still an engine error
    code = main(["validate", str(folder), "--connector", f"duckdb:///{tmp_path}/gone.duckdb"])
    assert code == 3, capsys.readouterr()
