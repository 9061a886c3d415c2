"""docs/diagnostics.md documents every code: each code the code base can raise is in
``CODES``; each code in ``CODES`` has a section ``## CODE title`` with a *Bad* and a
*Fixed* example; and the YAML examples are run: *Bad* gives the code, *Fixed* gives no
error (and not that code)."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from kpiengine.api import load_and_check
from kpiengine.diagnostics import CODES, Severity

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "diagnostics.md"
BASE = Path(__file__).parent / "corpus" / "base"
_CODE = re.compile(r"^KPI\d{3}$")
_SECTION = re.compile(r"^## (KPI\d{3}) (.+)$", re.MULTILINE)
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE = re.compile(r"^# file: (\S+)$", re.MULTILINE)


def raised_codes() -> dict[str, list[str]]:
    """Every string constant that is a diagnostic code, in the package and the plugins."""
    found: dict[str, list[str]] = {}
    files = [*(ROOT / "kpiengine").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
    for path in files:
        if path.name == "diagnostics.py":
            continue  # the table itself
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and _CODE.match(value):
                found.setdefault(value, []).append(str(path.relative_to(ROOT)))
    return found


def sections() -> dict[str, tuple[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    matches = list(_SECTION.finditer(text))
    result = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        result[match.group(1)] = (match.group(2).strip(), text[match.end() : end])
    return result


def examples(body: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The (language, text) of the Bad and the Fixed example of a section."""
    bad_at, fixed_at = body.find("Bad"), body.find("Fixed")
    assert 0 <= bad_at < fixed_at, "a section has `Bad` then `Fixed`"
    bad = _BLOCK.search(body, bad_at)
    fixed = _BLOCK.search(body, fixed_at)
    assert bad and fixed and bad.start() < fixed_at, "each has a code block"
    return (bad.group(1), bad.group(2)), (fixed.group(1), fixed.group(2))


def test_every_raised_code_is_in_codes():
    unknown = {code: where for code, where in raised_codes().items() if code not in CODES}
    assert not unknown, f"add these to CODES in kpiengine/diagnostics.py: {unknown}"


def test_every_code_has_a_section_in_order():
    documented = sections()
    missing = sorted(set(CODES) - set(documented))
    assert not missing, f"document these in docs/diagnostics.md: {missing}"
    stale = sorted(set(documented) - set(CODES) - set(raised_codes()))
    assert not stale, f"documented but neither in CODES nor raised: {stale}"
    assert list(documented) == sorted(documented)
    for code, title in CODES.items():
        assert documented[code][0] == title, f"## {code} {title}"


@pytest.mark.parametrize("code", sorted(CODES))
def test_section_has_a_bad_and_a_fixed_example(code):
    examples(sections()[code][1])


def _project(tmp_path: Path, text: str) -> tuple[Path, set[str]]:
    root = shutil.copytree(BASE, tmp_path / "defs")
    parts = _FILE.split(text)
    files = [("case/example.yaml", parts[0])] if parts[0].strip() else []
    files += list(zip(parts[1::2], parts[2::2], strict=True))
    written = set()
    for name, content in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.add(str(path))
    return root, written


RUNNABLE = sorted(
    code
    for code, (_, body) in sections().items()
    if code in CODES and not code.startswith("KPI5") and examples(body)[0][0] == "yaml"
)


@pytest.mark.parametrize("code", RUNNABLE)
def test_examples_do_what_they_say(code, tmp_path):
    (_, bad), (fixed_language, fixed) = examples(sections()[code][1])
    root, files = _project(tmp_path / "bad", bad)
    found = [d for d in load_and_check(root)[1] if d.span and d.span.file in files]
    assert code in {d.code for d in found}, [str(d) for d in found]
    if fixed_language != "yaml":
        return
    root, files = _project(tmp_path / "fixed", fixed)
    found = [d for d in load_and_check(root)[1] if d.span and d.span.file in files]
    wrong = [d for d in found if d.code == code or d.severity >= Severity.ERROR]
    assert not wrong, [str(d) for d in wrong]


def test_most_codes_have_runnable_examples():
    # KPI404 and KPI405 need a dialect (`--dialect`), not definitions alone: console examples
    assert len(RUNNABLE) >= len(CODES) - 12
