"""Amazon Redshift: not run here; each rewrite cites the Redshift documentation."""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, null_if_any_null
from kpiengine.compile.dialects.capabilities import native, rewritten

_DOCS = "https://docs.aws.amazon.com/redshift/latest/dg"


class Rules(DialectRules):
    """Redshift: null-propagating GREATEST/LEAST."""

    CAPABILITIES = {
        "greatest_nulls": rewritten(
            "GREATEST/LEAST ignore NULL values; kpiengine's are NULL when an argument is: "
            "CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE GREATEST(a, b) END",
            f"{_DOCS}/r_GREATEST_LEAST.html",
        ),
        "percentile_cont": native(
            "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) is an exact aggregate; Redshift "
            "requires every sort-based aggregate of a query to order by the same value, so "
            "percentiles of different columns (or conditions) in one request fail there",
            f"{_DOCS}/r_PERCENTILE_CONT.html",
        ),
        "null_safe_join": native(
            "IS NOT DISTINCT FROM as sqlglot prints it (PostgreSQL syntax); not listed in "
            "the Redshift documentation, unverified",
            "",
        ),
    }

    # Redshift's GREATEST/LEAST skip nulls (r_GREATEST_LEAST.html): "NULL values in the
    # list are ignored. If all of the expressions evaluate to NULL, the result is NULL."
    REWRITES = {exp.Greatest: null_if_any_null, exp.Least: null_if_any_null}
