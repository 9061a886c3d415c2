"""An example kpiengine plugin adding two expression functions.

* ``mode(x)`` — aggregate: the most frequent non-null value; on a tie the smallest one.
  Compiled per engine: DuckDB ``MODE(x ORDER BY x)``, PostgreSQL
  ``MODE() WITHIN GROUP (ORDER BY x)``, Spark ``MODE(x, TRUE)`` (deterministic, Spark
  4+). Other engines (SQLite, Snowflake, BigQuery, ...) either lack a mode aggregate or
  break ties arbitrarily, so compiling ``mode`` for them fails with a clear message
  rather than giving numbers that differ from engine to engine.
* ``clamp(x, low, high)`` — row function: ``x`` limited to ``[low, high]``. A null ``x``
  gives null; a null bound is not applied (``clamp(x, null, 100)`` only caps at 100).
  Written as a ``CASE`` so it means the same on every engine (``LEAST``/``GREATEST``
  treat nulls differently from engine to engine).

kpiengine finds this module through the ``kpiengine`` entry point declared in
``pyproject.toml`` and calls :func:`kpiengine_functions` when it builds its function
registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpiengine.errors import UsageError
from kpiengine.hookspecs import hookimpl
from kpiengine.language.functions import FunctionSpec

__version__ = "0.1.0"

#: Engines (sqlglot dialect names) where ``mode`` is exact, ties included.
MODE_DIALECTS = ("duckdb", "postgres", "spark")


def mode_sql(args: Sequence[Any], dialect: str) -> Any:
    """``mode(x)``: ``args[0]`` is already ``CASE WHEN <where> THEN x END`` when the KPI
    wrote ``mode(x where ...)``; the null it gives for other rows is skipped by every
    engine's mode, as aggregates skip nulls."""
    from sqlglot import exp  # imported when compiling only: keeps `kpi validate` fast

    value = args[0]
    ascending = exp.Ordered(this=value.copy(), nulls_first=False)
    if dialect == "duckdb":
        # DuckDB's MODE keeps the first value reaching the top count; feeding the values
        # in ascending order makes that the smallest on a tie.
        return exp.Mode(this=exp.Order(this=value, expressions=[ascending]))
    if dialect == "postgres":
        # An ordered-set aggregate: PostgreSQL returns the first of equally frequent
        # values in the ORDER BY order, i.e. the smallest.
        return exp.WithinGroup(this=exp.Mode(), expression=exp.Order(expressions=[ascending]))
    if dialect == "spark":
        # Spark 4: MODE(x, deterministic) returns the lowest of equally frequent values.
        return exp.Mode(this=value, deterministic=exp.true())
    raise UsageError(
        f"mode() is not available on {dialect}: it is supported on "
        f"{', '.join(MODE_DIALECTS)} (kpiengine-example-functions)"
    )


def clamp_sql(args: Sequence[Any], dialect: str) -> Any:
    """``CASE WHEN x < low THEN low WHEN x > high THEN high ELSE x END``."""
    from sqlglot import exp

    value, low, high = args
    return exp.Case(
        ifs=[
            exp.If(this=exp.LT(this=value.copy(), expression=low.copy()), true=low),
            exp.If(this=exp.GT(this=value.copy(), expression=high.copy()), true=high),
        ],
        default=value,
    )


MODE = FunctionSpec(
    name="mode",
    kind="aggregate",
    params=("orderable",),
    returns="arg0",
    description="`mode(x [where c])`: the most frequent value; on a tie the smallest.",
    sql=mode_sql,
    plugin="kpiengine-example-functions",
)

CLAMP = FunctionSpec(
    name="clamp",
    kind="row",
    params=("number", "number", "number"),
    returns="number",
    description="`clamp(x, low, high)`: x limited to [low, high]; a null bound is ignored.",
    sql=clamp_sql,
    plugin="kpiengine-example-functions",
)


@hookimpl
def kpiengine_functions() -> list[FunctionSpec]:
    """The functions this plugin adds (called once, when the registry is built)."""
    return [MODE, CLAMP]
