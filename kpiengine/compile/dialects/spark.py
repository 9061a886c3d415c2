"""Spark SQL (and Databricks, which runs it): where sqlglot's rendering is not equivalent.

Each rule here has a test in tests/test_spark.py that runs sqlglot's plain rendering on
Spark (local mode) and shows the different number it prevents.

Checked on Spark 4 (ANSI mode on, the default) and with ``spark.sql.ansi.enabled=false``,
and left to sqlglot because it is equivalent as rendered: period buckets
(``CAST(DATE_TRUNC(..) AS DATE)``, ``ADD_MONTHS``/``DATE_ADD`` shifts; Databricks'
``DATEADD``), ``days_between`` (``DATEDIFF(DAY, CAST(a AS DATE), CAST(b AS DATE))``: the
casts make it count calendar days, not 24-hour spans), the ``VALUES ... AS t(p)`` spine,
``IS NOT DISTINCT FROM`` joins on null dimension values, true division
(``CAST(x AS DOUBLE) / NULLIF(y, 0)``, so ANSI mode never raises DIVIDE_BY_ZERO; ``%``
likewise), window frames, ``NULLS LAST``, and string literals (sqlglot escapes ``'`` and
``\\`` with backslashes, as Spark reads them).
"""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import (
    DialectRules,
    as_double,
    int_literal,
    null_if_any_null,
)
from kpiengine.compile.dialects.capabilities import rewritten
from kpiengine.compile.dialects.rounding import exact_round

_DOCS = "https://spark.apache.org/docs/latest"


class Rules(DialectRules):
    """Spark: exact percentile, AVG in double, null-propagating GREATEST/LEAST, ROUND of
    doubles like DuckDB."""

    # Spark runs the equivalence suite here (tests/test_spark.py); Databricks runs Spark SQL
    CAPABILITIES = {
        "percentile_cont": rewritten(
            "sqlglot prints PERCENTILE_APPROX; PERCENTILE(x, p) is Spark's exact one",
            f"{_DOCS}/api/sql/index.html#percentile",
        ),
        "round_ties": rewritten(
            "ROUND of a DOUBLE rounds its decimal text half up (round(1.005, 2) is 1.01): "
            "a double is rounded by its binary value in double arithmetic, as DuckDB does "
            "(kpiengine/compile/dialects/rounding.py); decimals and integers by ROUND",
            f"{_DOCS}/api/sql/index.html#round",
        ),
        "greatest_nulls": rewritten(
            "greatest/least skip nulls; kpiengine's are NULL when an argument is",
            f"{_DOCS}/api/sql/index.html#greatest",
        ),
    }

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # sqlglot renders PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) for Spark as
        # PERCENTILE_APPROX(x, p), which returns an element of the data (30 as the median
        # of 30 and 200, not 115). PERCENTILE(x, p) is Spark's exact percentile with linear
        # interpolation, like PERCENTILE_CONT; it skips nulls and is null for no rows.
        return exp.Anonymous(this="PERCENTILE", expressions=[value, fraction])

    @staticmethod
    def _avg(node: exp.Avg) -> exp.Expression:
        # AVG of a DECIMAL (a column, or `x * 1.5`: Spark reads 1.5 as DECIMAL(2,1)) is a
        # DECIMAL with only 4 more digits of scale: avg(if(won, 1.0, 0.0)) over 2 of 3
        # rows is 0.66667, where DuckDB (and every other engine) gives 0.666666666666...
        # An average in double is what DuckDB returns for decimals too.
        if isinstance(node.this, exp.Distinct):
            return node
        return exp.Avg(this=as_double(node.this))

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # Spark rounds a DOUBLE half-up on its shortest decimal text: round(1.005, 2) is
        # 1.01 and round(2.675, 2) 2.68. DuckDB rounds the binary value (1.00499999…:
        # 1.0; 2.67499999…: 2.67), rebuilt here in double arithmetic (rounding.py).
        # Decimals and integers keep Spark's exact HALF_UP ROUND, as DuckDB's. typeof() is
        # folded by Spark when it plans the statement.
        decimals = node.args.get("decimals")
        digits = 0 if decimals is None else int_literal(decimals)
        if digits is None:
            return node  # a computed number of digits: Spark's ROUND as it is
        kind = exp.Anonymous(this="TYPEOF", expressions=[node.this.copy()])
        is_double = exp.In(
            this=kind, expressions=[exp.Literal.string("double"), exp.Literal.string("float")]
        )
        exact = exact_round(node.this, digits, _whole)
        return exp.Case(ifs=[exp.If(this=is_double, true=exact)], default=node.copy())

    # Spark's GREATEST/LEAST skip nulls (greatest(null, 60) is 60); kpiengine's are null
    REWRITES = {
        exp.Avg: _avg,
        exp.Round: _round,
        exp.Greatest: null_if_any_null,
        exp.Least: null_if_any_null,
    }


def _whole(value: exp.Expression) -> exp.Expression:
    """The whole part of a non-negative double below 2^52, as a double (Spark's TRUNC is
    for dates)."""
    whole = exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.BIGINT))
    return as_double(whole)
