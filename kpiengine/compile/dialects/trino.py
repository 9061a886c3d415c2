"""Trino: not run here; each refusal cites Trino's documentation."""

from __future__ import annotations

from kpiengine.compile.dialects import DialectRules
from kpiengine.compile.dialects.capabilities import native, refused

_DOCS = "https://trino.io/docs/current/functions"


class Rules(DialectRules):
    """Trino: no exact percentile (sqlglot would print APPROX_PERCENTILE)."""

    CAPABILITIES = {
        # sqlglot renders PERCENTILE_CONT for Trino as APPROX_PERCENTILE: a sketch's
        # estimate, the approximation the Spark rules had to replace with PERCENTILE.
        "percentile_cont": refused(
            "Trino has no exact percentile aggregate; approx_percentile is an approximation",
            f"{_DOCS}/aggregate.html#approx_percentile",
            "compute this KPI on an engine with an exact percentile aggregate (DuckDB, "
            "PostgreSQL, Snowflake, Spark)",
        ),
        "greatest_nulls": native(
            "greatest/least return null when an argument is null",
            f"{_DOCS}/comparison.html#greatest-and-least",
        ),
    }
