"""The vocabularies of definitions: one home for each list of names.

Grains, severities, column and expression types, units, and the Arrow type of each column
type. The CLI's choices, the planner, the checker and the rules import them from here
(:mod:`kpiengine.loader.model` re-exports them); tests/test_vocabulary.py holds the JSON
schemas (loader/schemas/) to the same lists. No imports: the CLI reads this at start-up.
"""

from __future__ import annotations

from typing import Any

#: Column types a source may declare.
COLUMN_TYPES = ("string", "integer", "number", "boolean", "date", "timestamp")
#: Column type → the type its values have in expressions (integers are numbers there).
EXPRESSION_TYPE_OF_COLUMN = {
    "string": "string",
    "integer": "number",
    "number": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
#: Types of expressions: a column's, or ``null`` (the type of the literal ``null``).
EXPRESSION_TYPES = ("number", "string", "boolean", "date", "timestamp", "null")
UNITS = ("percent", "ratio", "currency", "count", "days", "score", "number")
#: Grains that cut time into periods; ``all`` is one period over the whole range.
TIME_GRAINS = ("day", "week", "month", "quarter", "year")
GRAINS = (*TIME_GRAINS, "all")
SEVERITIES = ("info", "warning", "critical")
#: Rank of a row's status: ``ok`` (no rule fired) below every rule severity.
SEVERITY_ORDER = {"ok": 0, **{name: rank for rank, name in enumerate(SEVERITIES, 1)}}


def arrow_types() -> dict[str, Any]:
    """Column type → the ``pyarrow`` type that holds it, for writing tables of declared
    columns (sample data, the conformance kit's dataset). pyarrow is imported here, on
    first use, so that loading definitions never needs it."""
    import pyarrow as pa

    return {
        "string": pa.string(),
        "integer": pa.int64(),
        "number": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
    }
