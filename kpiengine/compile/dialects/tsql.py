"""T-SQL (SQL Server 2022 and later, Azure SQL): not run here; each rewrite and refusal
cites Microsoft's documentation and is pinned in tests/test_dialect_fragments.py."""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, null_if_any_null
from kpiengine.compile.dialects.capabilities import native, refused, rewritten

_DOCS = "https://learn.microsoft.com/en-us/sql/t-sql"


class Rules(DialectRules):
    """T-SQL: ISO weeks, null-propagating GREATEST/LEAST; no percentile aggregate."""

    CAPABILITIES = {
        # sqlglot prints PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CASE WHEN x IS NULL
        # THEN 1 ELSE 0 END, x): two ORDER BY keys, and no OVER clause.
        "percentile_cont": refused(
            "SQL Server's PERCENTILE_CONT is a window function (it needs OVER) taking one "
            "ORDER BY expression, not an aggregate (before SQL Server 2025)",
            f"{_DOCS}/functions/percentile-cont-transact-sql",
            "compute this KPI on an engine with an exact percentile aggregate (DuckDB, "
            "PostgreSQL, Snowflake, Spark)",
        ),
        "greatest_nulls": rewritten(
            "GREATEST/LEAST ignore NULL values; kpiengine's are NULL when an argument is",
            f"{_DOCS}/functions/logical-functions-greatest-transact-sql",
        ),
        "week_buckets": rewritten(
            "DATETRUNC(WEEK, t) starts weeks on @@DATEFIRST (Sunday for us_english); "
            "ISO_WEEK always starts them on Monday",
            f"{_DOCS}/functions/datetrunc-transact-sql",
        ),
        "period_buckets": native(
            "DATETRUNC needs SQL Server 2022 (16.x) or Azure SQL",
            f"{_DOCS}/functions/datetrunc-transact-sql",
        ),
        "null_safe_join": native(
            "IS [NOT] DISTINCT FROM needs SQL Server 2022 (16.x) or Azure SQL",
            f"{_DOCS}/queries/is-distinct-from-transact-sql",
        ),
    }

    # GREATEST/LEAST skip nulls ("ignores NULL values") on SQL Server
    REWRITES = {exp.Greatest: null_if_any_null, exp.Least: null_if_any_null}

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        if grain == "week":  # DATETRUNC(WEEK) depends on the session's @@DATEFIRST
            return exp.TimestampTrunc(this=value, unit=exp.var("ISO_WEEK"))
        return super().truncate(value, grain)
