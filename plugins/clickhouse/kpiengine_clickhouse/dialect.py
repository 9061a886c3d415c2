"""ClickHouse: where sqlglot's rendering is not valid or not equivalent to DuckDB's.

Each rule has a test in tests/test_clickhouse.py that runs the rendering without the
rule on chDB and shows the error or the different number it prevents. The connection
sets ``join_use_nulls=1`` (the missing side of an outer join is NULL, not 0),
``aggregate_functions_null_for_empty=1`` and ``cast_keep_nullable=1`` (see
:mod:`kpiengine_clickhouse.connection`); the rules below assume them.

Checked and left to sqlglot (equivalent as rendered, with those settings): period
buckets (``CAST(dateTrunc('MONTH', t) AS Nullable(DATE))``, ``DATE_ADD`` shifts), true
division (``CAST(x AS Nullable(Float64)) / nullIf(y, 0)``), ``COUNT(DISTINCT x)``
(``uniqExact``, exact), window frames, ``lag``, the ``UNION ALL`` spine, ``IS NOT DISTINCT
FROM`` joins, ``NULLS LAST``.
"""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules, int_literal, null_if_any_null
from kpiengine.compile.dialects.capabilities import native, rewritten
from kpiengine.compile.dialects.rounding import exact_round

_DOCS = "https://clickhouse.com/docs/sql-reference"


class Rules(DialectRules):
    """ClickHouse: exact interpolated percentiles, DuckDB's ROUND of doubles,
    null-propagating GREATEST/LEAST, explicit names for selected columns."""

    # chDB runs the equivalence suite here (tests/test_clickhouse.py): nothing is refused.
    # ``kpi validate --dialect clickhouse`` and ``python -m kpiengine.compile.dialects
    # --plugins`` read this table like the built-in dialects' ones.
    CAPABILITIES = {
        "percentile_cont": rewritten(
            "sqlglot prints quantile(p)(x), an estimate from a sample of 8 192 values: "
            "quantileExactInclusive(p)(x), exact and interpolated like PERCENTILE_CONT",
            f"{_DOCS}/aggregate-functions/reference/quantileexactinclusive",
        ),
        "round_ties": rewritten(
            "round of a Float64 rounds halves to even (round(2.5) is 2): rebuilt as halves "
            "away from zero of the binary value, the side of a half from the exact product "
            "error",
            f"{_DOCS}/functions/rounding-functions#round",
        ),
        "greatest_nulls": rewritten(
            "greatest/least skip NULL arguments (since 24.12); kpiengine's are NULL when an "
            "argument is",
            f"{_DOCS}/functions/conditional-functions#greatest",
        ),
        "count_distinct": native(
            "COUNT(DISTINCT x) runs uniqExact (count_distinct_implementation), exact",
            f"{_DOCS}/aggregate-functions/reference/uniqexact",
        ),
        "null_safe_join": native(
            "IS NOT DISTINCT FROM in JOIN ON; join_use_nulls=1 (set by the connection) makes "
            "the missing side of an outer join NULL, not the type's default",
            "https://clickhouse.com/docs/operations/settings/settings#join_use_nulls",
        ),
    }

    def percentile(self, fraction: exp.Expression, value: exp.Expression) -> exp.Expression:
        # sqlglot renders PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) for ClickHouse as
        # quantile(p)(x): a sampled estimate (reservoir of 8 192 values), not the exact
        # value beyond 8 192 rows. quantileExactInclusive interpolates linearly between
        # the two closest values, as PERCENTILE_CONT does, and skips nulls.
        return exp.ParameterizedAgg(
            this="quantileExactInclusive", expressions=[fraction], params=[value]
        )

    @staticmethod
    def _round(node: exp.Round) -> exp.Expression:
        # ClickHouse rounds a Float64 half to even (round(2.5) is 2, round(0.125, 2) is
        # 0.12). DuckDB (2.0) rounds the exact binary value, halves away from zero: 0.125
        # is 0.13, but 2.675 (2.67499999999999982...) is 2.67. The shared rebuild in
        # double arithmetic (kpiengine/compile/dialects/rounding.py), trunc for the whole
        # part; decimals and integers are rounded as doubles too (exact below 2^53).
        decimals = node.args.get("decimals")
        digits = 0 if decimals is None else int_literal(decimals)
        if digits is None:
            return node  # a computed number of digits: ClickHouse's round as it is
        return exact_round(node.this, digits, _trunc)

    # ClickHouse's greatest/least skip nulls (since 24.12); kpiengine's are null
    REWRITES = {
        exp.Round: _round,
        exp.Greatest: null_if_any_null,
        exp.Least: null_if_any_null,
    }

    def finish(self, query: exp.Select) -> exp.Select:
        query = super().finish(query)
        # With two or more joins, ClickHouse names a selected `grid.period` "grid.period",
        # not "period", so an outer `l0.period` is unknown (UNKNOWN_IDENTIFIER): every
        # selected column gets its own name as an explicit alias.
        for select in query.find_all(exp.Select):
            select.set(
                "expressions",
                [
                    exp.alias_(e, e.name) if isinstance(e, exp.Column) and e.name else e
                    for e in select.expressions
                ],
            )
        return query


def _trunc(value: exp.Expression) -> exp.Expression:
    """The whole part of a Float64, a Float64."""
    return exp.Anonymous(this="trunc", expressions=[value])
