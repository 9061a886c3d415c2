"""Amazon Redshift: not run here; each rewrite cites the Redshift documentation."""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.redshift import Redshift

from kpiengine.compile.dialects import DialectRules, null_if_any_null
from kpiengine.compile.dialects.capabilities import native, rewritten

_DOCS = "https://docs.aws.amazon.com/redshift/latest/dg"
#: r_PERCENTILE_CONT.html, usage notes: "If a statement includes multiple calls to
#: sort-based aggregate functions (LISTAGG, PERCENTILE_CONT, or MEDIAN), they must all use
#: the same ORDER BY values. Note that MEDIAN applies an implicit order by on the
#: expression value." (the same note is on r_MEDIAN.html)
ONE_SORT_KEY = (
    "Redshift requires every PERCENTILE_CONT/MEDIAN of a statement to order by the same "
    "value ({docs}/r_PERCENTILE_CONT.html); this one orders by {this}, another by {first}: "
    "request these KPIs separately"
)


class SortKeyRefused(exp.Expression, exp.Func):
    """A sort-based aggregate whose ORDER BY value is not the statement's first one: its
    SQL is the aggregate, and printing it for Redshift is unsupported (KPI405 at the KPI
    that holds it, from the compiler's check of what sqlglot cannot print)."""

    arg_types = {"this": True, "message": True}


def _refused_sql(generator: Any, node: SortKeyRefused) -> str:
    generator.unsupported(node.text("message"))
    return str(generator.sql(node.this))


class KpiRedshift(Redshift):
    """sqlglot's Redshift, which also prints :class:`SortKeyRefused` (as unsupported)."""

    class Generator(Redshift.Generator):  # type: ignore[misc,valid-type]
        TRANSFORMS = {**Redshift.Generator.TRANSFORMS, SortKeyRefused: _refused_sql}


class Rules(DialectRules):
    """Redshift: null-propagating GREATEST/LEAST, one sort key per statement."""

    def __init__(self, name: str, sqlglot: Any = None) -> None:
        super().__init__(name, sqlglot)
        if self.sqlglot == "redshift":
            self.sqlglot = KpiRedshift

    CAPABILITIES = {
        "greatest_nulls": rewritten(
            "GREATEST/LEAST ignore NULL values; kpiengine's are NULL when an argument is: "
            "CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE GREATEST(a, b) END",
            f"{_DOCS}/r_GREATEST_LEAST.html",
        ),
        "percentile_cont": native(
            "PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY x) is an exact aggregate; Redshift "
            "requires every sort-based aggregate of a statement to order by the same value, "
            "so a request with percentiles of different values (columns, conditions, "
            "sources) is refused (KPI405 at the KPI) and each can be requested alone",
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

    def finish(self, query: exp.Select) -> exp.Select:
        query = super().finish(query)
        first: str | None = None
        for node in list(query.find_all(exp.WithinGroup)):
            order = node.expression
            if not isinstance(order, exp.Order):
                continue
            key = ", ".join(o.sql(dialect="redshift") for o in order.expressions)
            if first is None:
                first = key
            elif key != first:
                message = ONE_SORT_KEY.format(docs=_DOCS, this=key, first=first)
                node.replace(SortKeyRefused(this=node.copy(), message=exp.Literal.string(message)))
        return query
