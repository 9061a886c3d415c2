"""Each vocabulary (grains, severities, column and expression types, units, formats) has
one home, and what cannot import it — the JSON schemas, the CLI's choices — says the same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from kpiengine.cli import cli
from kpiengine.diagnostics import Severity
from kpiengine.language.check import TYPE_WORDS
from kpiengine.language.names import TYPE_OF_COLUMN
from kpiengine.loader import model, vocabulary
from kpiengine.render.diagnostic_formats import FORMATS
from kpiengine.rules.evaluate import SEVERITY_ORDER

PACKAGE = Path(model.__file__).parents[1]
SCHEMAS = PACKAGE / "loader" / "schemas"


def enums(node: Any, path: str = "") -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "enum":
                yield path, value
            else:
                yield from enums(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from enums(value, f"{path}/{index}")


def schema_enums() -> dict[str, list[Any]]:
    found = {}
    for file in sorted(SCHEMAS.glob("*.json")):
        for path, values in enums(json.loads(file.read_text())):
            found[f"{file.name}{path}"] = values
    return found


def test_the_schemas_list_the_model_vocabularies() -> None:
    found = schema_enums()
    units = [v for p, v in found.items() if p.endswith("/unit") and "/window/" not in p]
    window_units = [v for p, v in found.items() if p.endswith("/unit") and "/window/" in p]
    assert window_units == [list(model.TIME_GRAINS)]
    severities = [v for p, v in found.items() if p.endswith("/severity")]
    column_types = [v for p, v in found.items() if p.endswith("/column_type")]
    assert units and all(tuple(v) == model.UNITS for v in units)
    assert severities and all(tuple(v) == model.SEVERITIES for v in severities)
    assert column_types == [list(model.COLUMN_TYPES)]
    fail_on = found["project.schema.json/properties/validate/properties/fail_on"]
    assert set(fail_on) == {str(level) for level in Severity}


def test_the_model_re_exports_the_vocabularies() -> None:
    for name in ("GRAINS", "SEVERITIES", "COLUMN_TYPES", "UNITS", "SEVERITY_ORDER"):
        assert getattr(model, name) is getattr(vocabulary, name)


def test_types_and_severities_derive_from_one_list() -> None:
    assert tuple(model.EXPRESSION_TYPE_OF_COLUMN) == model.COLUMN_TYPES
    assert set(model.EXPRESSION_TYPE_OF_COLUMN.values()) < set(model.EXPRESSION_TYPES)
    assert TYPE_OF_COLUMN is model.EXPRESSION_TYPE_OF_COLUMN
    assert set(TYPE_WORDS) == set(model.EXPRESSION_TYPES)
    assert list(SEVERITY_ORDER) == ["ok", *model.SEVERITIES]
    assert (*model.TIME_GRAINS, "all") == model.GRAINS
    pytest.importorskip("pyarrow")
    assert set(model.arrow_types()) == set(model.COLUMN_TYPES)


def option_choices(command: str, option: str) -> tuple[str, ...]:
    found = cli.commands[command]
    for param in found.params:
        if option in getattr(param, "opts", ()):
            assert isinstance(param.type, click.Choice)
            return tuple(param.type.choices)
    raise AssertionError(f"kpi {command} has no {option}")


def test_the_cli_offers_the_model_vocabularies() -> None:
    assert option_choices("run", "--grain") == model.GRAINS
    assert option_choices("check", "--fail-on") == model.SEVERITIES
    assert option_choices("validate", "--format") == FORMATS
    assert set(option_choices("validate", "--fail-on")) == {str(level) for level in Severity}


def test_no_module_spells_a_vocabulary_out_again() -> None:
    """A copy of a list (``"day", "week", "month"``…) outside its home is a second home."""
    copies = {
        "grains": re.compile(r'"day",\s*"week",\s*"month"'),
        "severities": re.compile(r'"info",\s*"warning",\s*"critical"'),
        "column types": re.compile(r'"string",\s*"integer",\s*"number",\s*"boolean"'),
        "arrow types": re.compile(r'"integer":\s*pa\.int64\(\)'),
    }
    home = PACKAGE / "loader" / "vocabulary.py"
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == home:
            continue
        text = path.read_text(encoding="utf-8")
        for what, pattern in copies.items():
            assert not pattern.search(text), f"{path.relative_to(PACKAGE)} copies the {what}"
