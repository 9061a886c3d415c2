"""Schema errors worded for people, placed on the YAML node they are about."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import Diagnostic, did_you_mean
from kpiengine.loader.schema import second_occurrence
from kpiengine.source import Span

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from kpiengine.loader.definitions import _Document


def first_line(span: Span) -> Span:
    """Only the first character of a span: a whole mapping would underline many lines."""
    return Span(span.file, span.line, span.col, span.line, span.col + 1)


# -- schema errors → diagnostics -----------------------------------------------------------------

_NAME = "^[a-z][a-z0-9_]*$"
_COLUMN = "^[A-Za-z_][A-Za-z0-9_]*$"
_DIMENSION = "^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$"
#: A source's `table:`: one to three plain identifiers, as dialects.table_ref splits it
#: into catalog, schema (db) and table: no path, glob, URL, quote, space or function call
#: (`read_csv('f')`). The lookahead refuses the final newline that `$` lets through
#: (jsonschema matches with re.search). `x.csv` has the shape of a name: the loader refuses
#: names that end like a file (loader.FILE_SUFFIXES), which DuckDB would read from disk.
TABLE_PATTERN = "^(?!.*\\n)[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*){0,2}$"
#: What a pattern means, to explain a mismatch: (message after the value, hint).
_PATTERNS: dict[str, tuple[str, str]] = {
    _NAME: (
        "is not a valid name: names are snake_case",
        "lower-case letters, digits and `_`, starting with a letter; for example `{snake}`",
    ),
    _COLUMN: (
        "is not a valid column name",
        "letters, digits and `_`, not starting with a digit; for example `{snake}`",
    ),
    _DIMENSION: (
        "is not a valid column reference",
        "a column of the source (`region`) or `join.column` (`accounts.segment`)",
    ),
    "^[A-Z]{3}$": ("is not a currency code", "a 3-letter ISO 4217 code in capitals, e.g. `EUR`"),
    "^[A-Za-z][A-Za-z0-9+.-]*://": (
        "is not a connector URL",
        "for example `duckdb:///warehouse.duckdb` or `postgresql://user@host:5432/db`",
    ),
    "^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$": (
        "is not a Python module name",
        "the importable name of the plugin's module, e.g. `kpiengine_postgres`",
    ),
    "^KPI[0-9]{3}$": ("is not a diagnostic code", "codes look like `KPI310`"),
    TABLE_PATTERN: (
        "is not a table name",
        "a table or view of the warehouse: `name`, `schema.name` or `catalog.schema.name`, "
        "each part letters, digits and `_`, not starting with a digit; a definition cannot "
        "read files or URLs: create a view in the warehouse and name it here",
    ),
}
_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}
_CONTAINERS = {"kpis": "kpi", "rules": "rule", "joins": "join"}
_NAME_KEYS = ("kpi", "source", "rule", "name", "project")


def schema_diagnostics(error: ValidationError, kind: str, doc: _Document) -> list[Diagnostic]:
    """Diagnostics for one JSON Schema error, placed on the YAML node it is about."""
    path = tuple(error.absolute_path)
    label = _label(path) or kind
    instance = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        where = _where(path, kind, instance)
        return [
            Diagnostic(
                "KPI104",
                f"unknown key `{key}` in {where}",
                doc.key_span(*path, key),
                hint=did_you_mean(key, allowed) or f"the keys of {where} are {_words(allowed)}",
            )
            for key in instance
            if key not in allowed
        ]
    doc.bad.add(path)
    span = doc.span(*path)
    hint: str | None = _example_hint(label, schema)
    if "propertyNames" in error.relative_schema_path:  # a bad key, e.g. a column name
        doc.bad.add((*path, instance))
        span = doc.key_span(*path, instance)
        message, hint = _pattern_words(str(instance), schema.get("pattern", ""))
        message = f"`{instance}` {message}"
    elif validator == "required":
        missing = [key for key in error.validator_value if key not in instance]
        where = _where(path, kind, instance)
        span = first_line(span)
        message = f"missing required key {_words(missing)} in {where}"
        properties = schema.get("properties", {})
        examples = [properties.get(key, {}).get("examples") for key in missing]
        if examples and examples[0]:
            hint = f"add `{missing[0]}: {_flow(examples[0][0])}`"
    elif validator == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        if "string" in expected:  # numbers and booleans are only tolerated where text is
            expected = [t for t in expected if t not in ("number", "boolean")]
        wanted = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        if instance is None:
            message = f"`{label}` is empty"
            if path:
                span = doc.key_span(*path)
            hint = hint or f"give it a value: {wanted}"
        else:
            message = f"`{label}` must be {wanted}, not {_type_of(instance)}"
        if expected == ["array"] and isinstance(instance, str | int | float):
            hint = f"write a list: `{path[-1]}: [{instance}]`"
        if isinstance(instance, dict) and path == (kind,):
            hint = f"the fields of the {kind} go at the top level, next to `{kind}: name`"
    elif validator == "enum":
        allowed = [str(v) for v in error.validator_value]
        message = f"`{label}` must be one of {_words(allowed, 'or')}; got `{instance}`"
        hint = did_you_mean(str(instance), allowed) or hint
    elif validator == "pattern":
        message, hint = _pattern_words(str(instance), error.validator_value)
        message = f"`{instance}` {message}" + (f" (in `{label}`)" if label != kind else "")
    elif validator in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f"at least {low}" if validator == "minimum" else f"at most {high}")
        )
        message = f"`{label}` must be {bounds}; got {instance}"
    elif validator in ("minLength", "minItems", "minProperties"):
        message = f"`{label}` must not be empty"
    elif validator == "uniqueItems":
        index = second_occurrence(instance)
        message = f"`{label}` lists `{instance[index]}` twice"
        span = doc.span(*path, index)
        hint = "remove the second one"
    else:  # pragma: no cover - keywords the schemas do not use
        message = f"`{label}`: {error.message}"
    return [Diagnostic("KPI105", message, span, hint=hint)]


def _label(path: Sequence[str | int]) -> str:
    """``target.direction``, ``rules[0].severity``, ``columns.amount``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _where(path: Sequence[str | int], kind: str, mapping: Any = None) -> str:
    """What the mapping at ``path`` is, for messages: ``kpi `win_rate```, ``column `amount```."""
    if not path:
        what = "project file" if kind == "project" else kind
    elif isinstance(path[-1], int) and len(path) > 1 and path[-2] in _CONTAINERS:
        what = _CONTAINERS[str(path[-2])]
    elif len(path) > 1 and path[-2] == "columns":
        return f"column `{path[-1]}`"
    else:
        return f"`{_label(path)}`"
    if isinstance(mapping, dict):
        name = next((mapping[k] for k in _NAME_KEYS if isinstance(mapping.get(k), str)), None)
        if name is not None and what != "project file":
            return f"{what} `{name}`"
    return what


def _pattern_words(value: str, pattern: str) -> tuple[str, str | None]:
    message, hint = _PATTERNS.get(pattern, (f"does not match `{pattern}`", None))
    snake = re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_")
    if snake and snake[0].isdigit():
        snake = "n_" + snake
    return message, hint.format(snake=snake or "my_name") if hint else None


def _example_hint(label: str, schema: dict[str, Any]) -> str | None:
    examples = schema.get("examples")
    if not examples:
        return None
    field = label.rsplit(".", 1)[-1].split("[", 1)[0]
    return f"for example `{field}: {_flow(examples[0])}`"


def _flow(value: Any) -> str:
    """A value in YAML flow style, for hints: ``{value: 0.47, direction: higher}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (not value or re.search(r"[:#{}\[\],'\"]|^\s|\s$", value)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text `{value}`"
    return "a list" if isinstance(value, list) else "a mapping"


def _words(items: Iterable[str], last: str = "and") -> str:
    quoted = [f"`{item}`" for item in items]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"
