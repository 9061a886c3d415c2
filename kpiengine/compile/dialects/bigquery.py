"""BigQuery (GoogleSQL): not run here; each rewrite and refusal cites Google's documentation
and is pinned by a fragment test in tests/test_dialect_fragments.py."""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules
from kpiengine.compile.dialects.capabilities import native, refused, rewritten

_DOCS = "https://cloud.google.com/bigquery/docs/reference/standard-sql"


def _bignumeric(value: exp.Expression) -> exp.Expression:
    if isinstance(value, exp.Literal) and not value.is_string:
        return value
    return exp.Cast(this=value, to=exp.DataType.build("BIGNUMERIC", dialect="bigquery"))


class Rules(DialectRules):
    """BigQuery: Monday weeks (ISOWEEK), MOD on BIGNUMERIC; no exact percentile."""

    CAPABILITIES = {
        # PERCENTILE_CONT exists only as a navigation (window) function,
        # PERCENTILE_CONT(x, p) OVER (...); the aggregate APPROX_QUANTILES is approximate.
        "percentile_cont": refused(
            "BigQuery's PERCENTILE_CONT is a window function only, and its aggregate "
            "APPROX_QUANTILES is approximate",
            f"{_DOCS}/navigation_functions#percentile_cont",
            "compute this KPI on an engine with an exact percentile aggregate (DuckDB, "
            "PostgreSQL, Snowflake, Spark)",
        ),
        "week_buckets": rewritten(
            "TIMESTAMP_TRUNC(t, WEEK) starts weeks on Sunday; ISOWEEK starts them on Monday",
            f"{_DOCS}/timestamp_functions#timestamp_trunc",
        ),
        "modulo": rewritten(
            "MOD takes INT64, NUMERIC and BIGNUMERIC, not FLOAT64: the operands are cast to "
            "BIGNUMERIC",
            f"{_DOCS}/mathematical_functions#mod",
        ),
        "greatest_nulls": native(
            "GREATEST/LEAST return NULL when any input is NULL",
            f"{_DOCS}/mathematical_functions#greatest",
        ),
        "round_ties": native(
            "ROUND rounds halfway cases away from zero",
            f"{_DOCS}/mathematical_functions#round",
        ),
        "null_safe_join": native(
            "IS NOT DISTINCT FROM is supported", f"{_DOCS}/operators#is_distinct"
        ),
    }

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        if grain == "week":
            return exp.TimestampTrunc(this=value, unit=exp.var("ISOWEEK"))
        return super().truncate(value, grain)

    def modulo(self, left: exp.Expression, right: exp.Expression) -> exp.Expression:
        return exp.Mod(this=_bignumeric(left), expression=_bignumeric(right))
