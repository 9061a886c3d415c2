"""JSON Schemas of the definition files, and a fast check compiled from them.

Loading 1 000 KPI files must stay well under a second, and jsonschema alone costs about
0.25 s there (plus its import). So each schema is compiled once into a plain Python
predicate that answers valid/invalid; jsonschema is imported and run only for a document
that fails, to word its errors. The compiler refuses any schema keyword it does not know,
so the two can never silently disagree (tested on thousands of altered documents).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from kpiengine.errors import UsageError

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

_SCHEMA_OF = {"project": "project", "source": "source", "kpi": "kpi", "kpis": "kpi", "rule": "rule"}

# -- schemas ------------------------------------------------------------------------------------


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of a file kind (``project``, ``source``, ``kpi``/``kpis``, ``rule``).

    The same (cached) dict every time: do not modify it.
    """
    if kind not in _SCHEMA_OF:
        raise UsageError(f"no schema for `{kind}`; the kinds are {', '.join(_SCHEMA_OF)}")
    return _schema(_SCHEMA_OF[kind])


@functools.cache
def _schema(name: str) -> dict[str, Any]:
    schema_file = resources.files("kpiengine.loader") / "schemas" / f"{name}.schema.json"
    schema: dict[str, Any] = json.loads(schema_file.read_text(encoding="utf-8"))
    return schema


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema_for(kind))


@functools.cache
def is_valid(kind: str) -> Check:
    """A yes/no check of a document against the schema of ``kind``, ~15x faster than
    jsonschema, which then explains the documents that fail it."""
    schema = schema_for(kind)
    return _compile(schema, _Compiler(schema))


# A compiled schema keyword: True when the value passes it.
Check = Callable[[Any], bool]


class _Compiler:
    """Compiles the JSON Schema subset our schemas use into plain closures. Any other
    keyword is refused, so the fast check can never silently disagree with jsonschema."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/"):
            raise NotImplementedError(f"$ref {ref!r}")
        if ref not in self.refs:
            self.refs[ref] = lambda x: self.refs[ref](x)  # stands in while compiling itself
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target[part]
            self.refs[ref] = _compile(target, self)
        return self.refs[ref]


_IGNORED = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "examples", "then", "else"}
)
_TYPES: dict[str, Check] = {
    "string": lambda x: isinstance(x, str),
    "number": lambda x: isinstance(x, int | float) and not isinstance(x, bool),
    "integer": lambda x: (
        (isinstance(x, int) and not isinstance(x, bool))
        or (isinstance(x, float) and x.is_integer())
    ),
    "boolean": lambda x: isinstance(x, bool),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
    "null": lambda x: x is None,
}


def _compile(schema: dict[str, Any], compiler: _Compiler) -> Check:
    checks = [
        _KEYWORDS[keyword](value, schema, compiler)
        for keyword, value in schema.items()
        if keyword not in _IGNORED and not (keyword == "uniqueItems" and value is False)
    ]
    return lambda x: all(check(x) for check in checks)


def _type(value: str | list[str], schema: dict[str, Any], compiler: _Compiler) -> Check:
    tests = [_TYPES[t] for t in ([value] if isinstance(value, str) else value)]
    return lambda x: any(test(x) for test in tests)


def _enum(value: list[Any], schema: dict[str, Any], compiler: _Compiler) -> Check:
    if not all(isinstance(v, str) for v in value):  # 1 == True in Python, not in JSON
        raise NotImplementedError("enum of non-strings")
    allowed = frozenset(value)
    return lambda x: isinstance(x, str) and x in allowed


def _pattern(value: str, schema: dict[str, Any], compiler: _Compiler) -> Check:
    search = re.compile(value).search
    return lambda x: not isinstance(x, str) or search(x) is not None


def _minimum(kind: type, measure: Callable[[Any], float]) -> Callable[..., Check]:
    def factory(value: float, schema: dict[str, Any], compiler: _Compiler) -> Check:
        return lambda x: not isinstance(x, kind) or isinstance(x, bool) or measure(x) >= value

    return factory


def _maximum(value: float, schema: dict[str, Any], compiler: _Compiler) -> Check:
    return lambda x: not _TYPES["number"](x) or x <= value


def _required(value: list[str], schema: dict[str, Any], compiler: _Compiler) -> Check:
    return lambda x: not isinstance(x, dict) or all(key in x for key in value)


def _properties(value: dict[str, Any], schema: dict[str, Any], compiler: _Compiler) -> Check:
    props = {key: _compile(sub, compiler) for key, sub in value.items()}
    return lambda x: not isinstance(x, dict) or all(props[k](v) for k, v in x.items() if k in props)


def _additional(value: Any, schema: dict[str, Any], compiler: _Compiler) -> Check:
    known = frozenset(schema.get("properties", ()))
    if value is False:
        return lambda x: not isinstance(x, dict) or x.keys() <= known
    other = _compile(value, compiler)
    return lambda x: (
        not isinstance(x, dict) or all(other(v) for k, v in x.items() if k not in known)
    )


def _property_names(value: dict[str, Any], schema: dict[str, Any], compiler: _Compiler) -> Check:
    names = _compile(value, compiler)
    return lambda x: not isinstance(x, dict) or all(map(names, x))


def _items(value: dict[str, Any], schema: dict[str, Any], compiler: _Compiler) -> Check:
    item = _compile(value, compiler)
    return lambda x: not isinstance(x, list) or all(map(item, x))


def _unique(value: bool, schema: dict[str, Any], compiler: _Compiler) -> Check:
    return lambda x: not isinstance(x, list) or second_occurrence(x) == 0


def _if(value: dict[str, Any], schema: dict[str, Any], compiler: _Compiler) -> Check:
    test = _compile(value, compiler)
    then = _compile(schema.get("then", {}), compiler)
    other = _compile(schema.get("else", {}), compiler)
    return lambda x: then(x) if test(x) else other(x)


def _one_of(value: list[dict[str, Any]], schema: dict[str, Any], compiler: _Compiler) -> Check:
    options = [_compile(option, compiler) for option in value]
    return lambda x: sum(1 for option in options if option(x)) == 1


def _ref(value: str, schema: dict[str, Any], compiler: _Compiler) -> Check:
    return compiler.ref(value)


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any], _Compiler], Check]] = {
    "$ref": _ref,
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "minLength": _minimum(str, len),
    "minItems": _minimum(list, len),
    "minProperties": _minimum(dict, len),
    "minimum": _minimum(int | float, float),  # type: ignore[arg-type]
    "maximum": _maximum,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "propertyNames": _property_names,
    "items": _items,
    "uniqueItems": _unique,
    "if": _if,
    "oneOf": _one_of,
}


def second_occurrence(items: list[Any]) -> int:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if isinstance(item, float) and item.is_integer():
            item = int(item)  # 1 and 1.0 are the same JSON number
        key = json.dumps(item, sort_keys=True)
        if key in seen:
            return index
        seen.add(key)
    return 0
