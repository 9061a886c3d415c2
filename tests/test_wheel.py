"""An installed wheel (not the source tree) finds the grammar and schemas and compiles."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import SALES_FILES, write_files

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
    )
    wheel = next(dist.glob("kpiengine-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "kpiengine/grammar/kpi.lark" in names
    assert any(n.startswith("kpiengine/loader/schemas/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, str(wheel)], check=True)
    project = write_files(tmp_path / "defs", SALES_FILES)
    done = subprocess.run(
        [
            str(venv / "bin" / "kpi"),
            "compile",
            "win_rate",
            "--dialect",
            "snowflake",
            "--grain",
            "month",
            "--by",
            "region",
            "--project",
            str(project),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    # without --from/--to the statement opens with a note on its period grid
    note, _, statement = done.stdout.partition("*/")
    assert note.startswith("/* no --from/--to") and statement.lstrip().startswith("WITH ")
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import kpiengine.language.parse as p; print(p.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(venv) in where.stdout  # really the installed copy, not the checkout
