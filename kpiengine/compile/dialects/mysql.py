"""MySQL (and MariaDB, through the mysql:// connector plugin): each rewrite and refusal
cites the MySQL documentation and is pinned in tests/test_dialect_fragments.py."""

from __future__ import annotations

from sqlglot import exp

from kpiengine.compile.dialects import DialectRules
from kpiengine.compile.dialects.capabilities import native, refused, rewritten

_DOCS = "https://dev.mysql.com/doc/refman/8.4/en"


class Rules(DialectRules):
    """MySQL: Monday weeks through WEEKDAY(); no percentile, no DuckDB ROUND ties."""

    CAPABILITIES = {
        # sqlglot prints PERCENTILE_CONT(0.5) WITHIN GROUP (...), which MySQL does not
        # have; MariaDB has PERCENTILE_CONT only as a window function
        # (https://mariadb.com/kb/en/percentile_cont/).
        "percentile_cont": refused(
            "MySQL has no PERCENTILE_CONT aggregate (MariaDB has it only as a window function)",
            f"{_DOCS}/aggregate-functions.html",
            "compute this KPI on an engine with an exact percentile aggregate (DuckDB, "
            "PostgreSQL, Snowflake, Spark)",
        ),
        "round_ties": refused(
            "MySQL rounds DOUBLE halves to even (ROUND(25E-1) is 2; kpiengine gives 3), and "
            "a KPI cannot tell a DOUBLE from a DECIMAL at compile time",
            f"{_DOCS}/precision-math-rounding.html",
            "round where the value is shown (a report's number format) instead of in the KPI",
        ),
        "week_buckets": rewritten(
            "sqlglot counts weeks from 0000-01-01, a Saturday; DATE_SUB(d, INTERVAL "
            "WEEKDAY(d) DAY) gives the Monday (WEEKDAY: 0 = Monday)",
            f"{_DOCS}/date-and-time-functions.html#function_weekday",
        ),
        "greatest_nulls": native(
            "GREATEST/LEAST return NULL if any argument is NULL",
            f"{_DOCS}/comparison-operators.html#function_greatest",
        ),
        "null_safe_join": native(
            "printed as <=>, MySQL's NULL-safe equal",
            f"{_DOCS}/comparison-operators.html#operator_equal-to",
        ),
        "exact_division": native(
            "CAST(x AS DOUBLE) needs MySQL 8.0.17 or later",
            f"{_DOCS}/cast-functions.html#function_cast",
        ),
    }

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        if grain == "week":
            day = exp.Cast(this=value, to=exp.DataType.build(exp.DataType.Type.DATE))
            weekday = exp.Anonymous(this="WEEKDAY", expressions=[day.copy()])
            return exp.DateSub(this=day, expression=weekday, unit=exp.var("DAY"))
        return super().truncate(value, grain)
