"""Spark SQL (and Databricks, which runs it): where sqlglot's rendering is not equivalent.

Each rule here has a test in tests/test_spark.py that runs the statement on Spark and
shows the wrong number (or the error) it prevents.
"""

from __future__ import annotations

from sqlglot import exp

from kpiengine.dialects import DialectRules


class Rules(DialectRules):
    """Spark: an exact, interpolated percentile."""

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # sqlglot renders PERCENTILE_CONT ... WITHIN GROUP for Spark as PERCENTILE_APPROX,
        # which returns an element of the data (30 for the median of 30 and 200, not 115).
        # PERCENTILE(x, p) is Spark's exact percentile with linear interpolation, as
        # PERCENTILE_CONT; it skips nulls and is null for no rows.
        return exp.Anonymous(this="PERCENTILE", expressions=[value, fraction])
