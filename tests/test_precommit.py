"""The `kpi-validate` pre-commit hook, run by the pre-commit tool itself on a temporary git
repository with one good and one bad definition file: the bad file blocks the run and
the commit; once fixed, both pass.

The first test uses the hook exactly as `.pre-commit-hooks.yaml` declares it, through a
`repo: local` entry that runs the `kpi` of this environment (so it takes seconds). The
second, slow one installs this repository the way users get it (`language: python`:
pre-commit builds a virtualenv and pip-installs kpiengine into it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
MANIFEST = ROOT / ".pre-commit-hooks.yaml"

SOURCE = """\
source: opportunities
table: opportunities
time: closed_at
columns:
  stage: string
  amount: number
  closed_at: timestamp
"""
GOOD = """\
kpi: won_deals
description: Deals won.
owner: sales-ops
unit: count
source: opportunities
expression: count(where stage = 'won')
"""
BAD = GOOD.replace("kpi: won_deals", "kpi: won_amount").replace(
    "count(where stage = 'won')", "sum(amount where stag = 'won')"
)


def hook() -> dict[str, Any]:
    hooks = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    [found] = [h for h in hooks if h["id"] == "kpi-validate"]
    return dict(found)


def pre_commit() -> list[str]:
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extra")
    return [sys.executable, "-m", "pre_commit"]


def git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=_env(repo)
    )


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    bin_dir = str(Path(sys.executable).parent)  # where this environment's `kpi` is
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        PRE_COMMIT_HOME=str(home.parent / "pre-commit-cache"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(home.parent),
        NO_COLOR="1",
    )
    return env


def make_repo(tmp_path: Path, hook_config: dict[str, Any]) -> Path:
    repo = tmp_path / "repo"
    (repo / "definitions" / "sources").mkdir(parents=True)
    (repo / "definitions" / "kpis").mkdir()
    (repo / "definitions" / "kpiengine.yaml").write_text("project: precommit\n")
    (repo / "definitions" / "sources" / "opportunities.yaml").write_text(SOURCE)
    (repo / "definitions" / "kpis" / "good.yaml").write_text(GOOD)
    (repo / "definitions" / "kpis" / "bad.yaml").write_text(BAD)
    config = {"repos": [hook_config]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    return repo


def run_hooks(repo: Path, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*pre_commit(), "run", "--all-files", "--color", "never"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(repo),
        timeout=timeout,
    )


def check_blocks_then_passes(repo: Path, timeout: int = 120) -> None:
    done = run_hooks(repo, timeout)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "kpi validate" in output and "Failed" in output
    assert "definitions/kpis/bad.yaml:6:" in output and "KPI301" in output
    assert "did you mean `stage`?" in output
    assert "good.yaml" not in output  # the good file has nothing to say

    (repo / "definitions" / "kpis" / "bad.yaml").write_text(BAD.replace("stag =", "stage ="))
    git(repo, "add", "-A")
    done = run_hooks(repo, timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_manifest_declares_the_hook():
    declared = hook()
    assert declared["entry"] == "kpi validate"
    assert declared["language"] == "python"
    assert declared["pass_filenames"] is False  # the project is validated as a whole
    assert declared["types"] == ["yaml"]


def test_hook_blocks_the_bad_file(tmp_path):
    local = {**hook(), "language": "system"}  # this environment's `kpi`, nothing to install
    repo = make_repo(tmp_path, {"repo": "local", "hooks": [local]})
    check_blocks_then_passes(repo)


def test_installed_hook_blocks_a_commit(tmp_path):
    local = {**hook(), "language": "system"}
    repo = make_repo(tmp_path, {"repo": "local", "hooks": [local]})
    installed = subprocess.run(
        [*pre_commit(), "install"], cwd=repo, capture_output=True, text=True, env=_env(repo)
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    commit = subprocess.run(
        ["git", "commit", "-q", "-m", "add KPIs"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=_env(repo),
        timeout=120,
    )
    assert commit.returncode != 0
    assert "KPI301" in commit.stdout + commit.stderr
    assert (
        subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, env=_env(repo)
        ).returncode
        != 0
    ), "nothing was committed"


def _snapshot_of_this_repository(tmp_path: Path) -> tuple[Path, str]:
    """A git repository holding this working tree's files (tracked and new, not ignored),
    committed, so pre-commit can clone it at a revision as it clones any hook repo."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    snapshot = tmp_path / "kpiengine"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = snapshot / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(snapshot, "init", "-q", "-b", "main")
    git(snapshot, "add", "-A")
    git(snapshot, "commit", "-q", "-m", "snapshot")
    return snapshot, git(snapshot, "rev-parse", "HEAD").stdout.strip()


@pytest.mark.slow
def test_hook_installed_from_the_repository(tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    snapshot, revision = _snapshot_of_this_repository(tmp_path)
    config = {"repo": str(snapshot), "rev": revision, "hooks": [{"id": "kpi-validate"}]}
    repo = make_repo(tmp_path, config)
    check_blocks_then_passes(repo, timeout=900)
