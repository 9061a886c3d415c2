"""The corpus of bad definition files: every file under ``tests/corpus/cases/`` goes into a
copy of the clean project ``tests/corpus/base/`` and through ``kpi validate``.

Each case says what it expects on its first line::

    # expect: KPI303 at 8:13; KPI306 at 8:18
    # as: kpiengine.yaml          (optional: where the file goes instead of case/NAME.yaml)

Every expected code must be reported in that file at that line and column; no other
*error* may be reported in it (warnings may, e.g. a source left unused by the case); the
other files stay clean; and the exit code is 1 for errors, 0 for warnings only (1 with
``--fail-on warning``). A new case is a new file: no code to change.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from kpiengine.cli import main
from kpiengine.diagnostics import CODES

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted((CORPUS / "cases").glob("*.yaml"))
_EXPECT = re.compile(rb"^# expect: (.+)$", re.MULTILINE)
_AS = re.compile(rb"^# as: (\S+)$", re.MULTILINE)
_ONE = re.compile(r"^(KPI\d{3}) at (\d+):(\d+)$")


def expectations(data: bytes) -> tuple[list[tuple[str, int, int]], str | None]:
    found = _EXPECT.search(data)
    assert found, "a corpus file starts with `# expect: CODE at LINE:COL`"
    expected = []
    for part in found.group(1).decode().split(";"):
        match = _ONE.match(part.strip())
        assert match, f"cannot read the expectation {part!r}"
        expected.append((match.group(1), int(match.group(2)), int(match.group(3))))
    as_path = _AS.search(data)
    return expected, as_path.group(1).decode() if as_path else None


def validate(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list]:
    code = main(["validate", str(root), "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)["diagnostics"]


def test_the_corpus_is_big_enough_and_covers_the_codes():
    assert len(CASES) >= 60
    covered = {expectations(case.read_bytes())[0][0][0] for case in CASES}
    # Codes that no definition file can cause: a missing project folder is a usage error
    # (exit 2), the others need a run, a connection or a warehouse.
    # KPI404 and KPI405 need a dialect (`--dialect`), not definitions alone.
    unreachable = {"KPI108", "KPI314", "KPI401", "KPI404", "KPI405"}
    unreachable |= {c for c in CODES if c.startswith("KPI5")}
    assert set(CODES) - unreachable - covered == set()


def test_the_base_project_is_clean(tmp_path, capsys):
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    assert validate(root, capsys, "--fail-on", "info") == (0, [])


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_case(case: Path, tmp_path, capsys):
    data = case.read_bytes()
    expected, as_path = expectations(data)
    root = shutil.copytree(CORPUS / "base", tmp_path / "defs")
    target = root / (as_path or f"case/{case.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)

    exit_code, diagnostics = validate(root, capsys)

    here = [d for d in diagnostics if d["file"] == str(target)]
    got = {(d["code"], d["line"], d["column"]) for d in here}
    for code, line, column in expected:
        assert (code, line, column) in got, (
            f"expected {code} at {line}:{column}, got "
            f"{sorted((d['code'], d['line'], d['column'], d['message']) for d in here)}"
        )
    expected_codes = {code for code, _, _ in expected}
    unexpected = [d for d in here if d["severity"] == "error" and d["code"] not in expected_codes]
    assert not unexpected, f"unexpected errors: {unexpected}"
    elsewhere = [d for d in diagnostics if d["file"] != str(target)]
    assert not elsewhere, f"a bad file must not cause problems in the others: {elsewhere}"
    for d in here:
        assert d["message"] and d["title"] == CODES[d["code"]]
        assert (d["end_line"], d["end_column"]) > (d["line"], d["column"])

    errors = any(d["severity"] == "error" for d in here)
    assert exit_code == (1 if errors else 0)
    if not errors:
        assert validate(root, capsys, "--fail-on", "warning")[0] == 1
