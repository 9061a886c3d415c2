"""Snowflake: not run here; compiled as sqlglot prints it, each choice citing Snowflake's
documentation (tests/test_dialect_fragments.py pins the fragments)."""

from __future__ import annotations

from kpiengine.compile.dialects import DialectRules
from kpiengine.compile.dialects.capabilities import native

_DOCS = "https://docs.snowflake.com/en/sql-reference"


class Rules(DialectRules):
    """Snowflake: every construct natively (notes say which session settings matter)."""

    CAPABILITIES = {
        "percentile_cont": native(
            "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) is an exact aggregate",
            f"{_DOCS}/functions/percentile_cont",
        ),
        "greatest_nulls": native(
            "GREATEST/LEAST return NULL when any argument is NULL",
            f"{_DOCS}/functions/greatest",
        ),
        "round_ties": native(
            "ROUND's default rounding mode is HALF_AWAY_FROM_ZERO",
            f"{_DOCS}/functions/round",
        ),
        "week_buckets": native(
            "DATE_TRUNC('WEEK') follows the WEEK_START parameter, whose default (0) starts "
            "weeks on Monday; a session with another WEEK_START moves week buckets",
            f"{_DOCS}/parameters#week-start",
        ),
    }
