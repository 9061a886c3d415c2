"""The SQL fragment that differs per dialect, pinned per construct (sqlglot's
``validate_all(write={...})`` style): a dialect difference is one line here, not one line
among the 40-170 of a whole-statement golden file (tests/golden/).

Each fragment is built the way the compiler builds it (the function's ``sql`` builder or
the rules' method, then the rules' rewrites, then sqlglot's printing in the dialect);
``t.x`` and ``t.y`` stand for compiled arguments. A refused construct has no fragment:
its dialect is listed as refused and must say so in its capability table. Engines not run
here (BigQuery, Snowflake, Databricks, Trino, Redshift, T-SQL, MySQL) cite the
documentation of each rewrite and refusal in kpiengine/compile/dialects/<dialect>.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from kpiengine.compile.dialects import DIALECTS, DialectRules, rules_for
from kpiengine.compile.statement import divide
from kpiengine.language.functions import BUILTIN_FUNCTIONS

REFUSED = "refused"
_FUNCTIONS = {f.name: f for f in BUILTIN_FUNCTIONS}


def _x() -> exp.Column:
    return exp.column("x", table="t")


def _y() -> exp.Column:
    return exp.column("y", table="t")


def call(name: str, *args: exp.Expression) -> Callable[[DialectRules], exp.Expression]:
    """The built-in function ``name`` compiled for a dialect, as the compiler does."""
    return lambda rules: _FUNCTIONS[name].sql(list(args), rules.name)


def fragment(dialect: str, build: Callable[[DialectRules], exp.Expression]) -> str:
    """The SQL of one expression in ``dialect``, after the dialect's rewrites."""
    rules = rules_for(dialect)
    query = rules.finish(exp.select(exp.alias_(build(rules), "v")))
    sql = query.sql(dialect=rules.sqlglot, unsupported_level=ErrorLevel.RAISE)
    assert sql.startswith("SELECT ") and sql.endswith(" AS v"), sql
    return sql[len("SELECT ") : -len(" AS v")]


def validate_all(
    capability: str, build: Callable[[DialectRules], exp.Expression], write: dict[str, str]
) -> None:
    """Every built-in dialect is listed: its exact fragment, or REFUSED (then its rules
    must refuse ``capability``, which makes the compiler give KPI404 instead)."""
    assert set(write) == set(DIALECTS), sorted(set(DIALECTS) ^ set(write))
    for dialect, expected in write.items():
        refused = rules_for(dialect).support(capability).refused
        if expected == REFUSED:
            assert refused, f"{dialect} should refuse {capability}"
            continue
        assert not refused, f"{dialect} refuses {capability}"
        assert fragment(dialect, build) == expected, dialect


def test_median():
    validate_all(
        "percentile_cont",
        call("median", _x()),
        {
            "duckdb": "QUANTILE_CONT(t.x, 0.5 ORDER BY t.x)",
            "sqlite": "KPI_PERCENTILE_CONT(t.x, 0.5)",
            "postgres": "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.x)",
            "bigquery": REFUSED,
            "snowflake": "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.x)",
            "spark": "PERCENTILE(t.x, 0.5)",
            "databricks": "PERCENTILE(t.x, 0.5)",
            "trino": REFUSED,  # sqlglot would print APPROX_PERCENTILE(t.x, 0.5)
            "redshift": "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.x)",
            "tsql": REFUSED,
            "mysql": REFUSED,
        },
    )


def test_percentile():
    validate_all(
        "percentile_cont",
        call("percentile", _x(), exp.Literal.number(0.9)),
        {
            "duckdb": "QUANTILE_CONT(t.x, 0.9 ORDER BY t.x)",
            "sqlite": "KPI_PERCENTILE_CONT(t.x, 0.9)",
            "postgres": "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY t.x)",
            "bigquery": REFUSED,
            "snowflake": "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY t.x)",
            "spark": "PERCENTILE(t.x, 0.9)",
            "databricks": "PERCENTILE(t.x, 0.9)",
            "trino": REFUSED,
            "redshift": "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY t.x)",
            "tsql": REFUSED,
            "mysql": REFUSED,
        },
    )


def _exact_round(dialect: str, digits: int) -> str:
    """The dialect's SQL of DuckDB's rounding of a double (rounding.py), for ``t.x``."""
    from kpiengine.compile.dialects import postgres, spark, sqlite
    from kpiengine.compile.dialects.rounding import exact_round

    whole = {"sqlite": sqlite._whole, "postgres": postgres._trunc, "spark": spark._whole}
    node = exact_round(_x(), digits, whole[dialect])
    return node.sql(dialect=rules_for(dialect).sqlglot)


def test_round():
    exact = {d: _exact_round(d, 2) for d in ("sqlite", "postgres", "spark")}
    spark = (
        f"CASE WHEN TYPEOF(t.x) IN ('double', 'float') THEN {exact['spark']} ELSE ROUND(t.x, 2) END"
    )
    postgres = (
        f"CASE WHEN CAST(PG_TYPEOF(t.x) AS TEXT) = 'double precision' THEN {exact['postgres']} "
        "ELSE CAST(ROUND(CAST(t.x AS DECIMAL), 2) AS DOUBLE PRECISION) END"
    )
    validate_all(
        "round_ties",
        call("round", _x(), exp.Literal.number(2)),
        {
            "duckdb": "ROUND(t.x, 2)",
            "sqlite": exact["sqlite"],
            "postgres": postgres,
            "bigquery": "ROUND(t.x, 2)",
            "snowflake": "ROUND(t.x, 2)",
            "spark": spark,
            "databricks": spark,
            "trino": "ROUND(t.x, 2)",
            "redshift": "ROUND(t.x, 2)",
            "tsql": "ROUND(t.x, 2)",
            "mysql": REFUSED,  # DOUBLE halves to even
        },
    )


def test_exact_round_sql():
    """DuckDB's rounding of a double in double arithmetic (rounding.py), pinned whole on
    SQLite: whole part by CAST AS INTEGER, halves away from zero; for n > 0 a half of
    x * 10^n goes by the sign of the exact product error (Dekker's split of x), for n < 0
    below half a step is 0 without dividing."""
    real = "CAST(t.x AS REAL)"
    size = f"ABS({real})"
    whole = f"CAST(CAST({size} AS INTEGER) AS REAL)"
    sign = f"CASE WHEN {real} < 0 THEN -1 ELSE 1 END"
    assert _exact_round("sqlite", 0) == (
        f"CASE WHEN {size} < 4503599627370496 THEN ({whole} + CASE WHEN {size} - {whole} > 0.5"
        f" OR ({size} - {whole} = 0.5) THEN 1 ELSE 0 END) * {sign} ELSE {real} END"
    )
    s = f"{real} * 100.0"
    size, whole = f"ABS({s})", f"CAST(CAST(ABS({s}) AS INTEGER) AS REAL)"
    big = f"134217729.0 * {real}"
    high = f"({big} - ({big} - {real}))"
    error = f"(({high} * 100.0 - ({s})) + ({real} - {high}) * 100.0)"
    rounded = (
        f"({whole} + CASE WHEN {size} - {whole} > 0.5 OR ({size} - {whole} = 0.5"
        f" AND NOT ({error} * ({s}) < 0)) THEN 1 ELSE 0 END)"
        f" * CASE WHEN {s} < 0 THEN -1 ELSE 1 END"
    )
    assert _exact_round("sqlite", 2) == (
        f"CASE WHEN ABS({real}) > 1.7976931348623156e+306 THEN {real}"
        f" WHEN {size} < 4503599627370496 THEN CAST(({rounded}) AS REAL) / 100.0"
        f" ELSE CAST({s} AS REAL) / 100.0 END"
    )
    assert _exact_round("sqlite", -2).startswith(
        f"CASE WHEN ABS({real}) < 50.0 THEN 0.0 WHEN ABS({real} / 100.0) < 4503599627370496"
    )


def test_greatest_is_null_when_an_argument_is():
    null_safe = "CASE WHEN t.x IS NULL OR t.y IS NULL THEN NULL ELSE GREATEST(t.x, t.y) END"
    validate_all(
        "greatest_nulls",
        call("greatest", _x(), _y()),
        {
            "duckdb": null_safe,  # sqlglot's own rendering for DuckDB
            "sqlite": "MAX(t.x, t.y)",  # multi-argument MAX is null when one is
            "postgres": null_safe,
            "bigquery": "GREATEST(t.x, t.y)",  # null when any input is
            "snowflake": "GREATEST(t.x, t.y)",
            "spark": null_safe,
            "databricks": null_safe,
            "trino": "GREATEST(t.x, t.y)",
            "redshift": null_safe,  # Redshift's ignores nulls
            "tsql": null_safe,  # SQL Server's ignores nulls
            "mysql": "GREATEST(t.x, t.y)",
        },
    )


def test_least():
    null_safe = "CASE WHEN t.x IS NULL OR t.y IS NULL THEN NULL ELSE LEAST(t.x, t.y) END"
    expected = {d: "LEAST(t.x, t.y)" for d in DIALECTS}
    expected.update(dict.fromkeys(["duckdb", "postgres", "spark", "databricks"], null_safe))
    expected.update({"redshift": null_safe, "tsql": null_safe, "sqlite": "MIN(t.x, t.y)"})
    validate_all("greatest_nulls", call("least", _x(), _y()), expected)


def test_days_between():
    validate_all(
        "day_difference",
        call("days_between", _x(), _y()),
        {
            "duckdb": "DATE_DIFF('DAY', CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "sqlite": "CAST((JULIANDAY(DATE(t.y)) - JULIANDAY(DATE(t.x))) AS INTEGER)",
            "postgres": "CAST(EXTRACT(epoch FROM CAST(CAST(t.y AS DATE) AS TIMESTAMP) - "
            "CAST(CAST(t.x AS DATE) AS TIMESTAMP)) / 86400 AS BIGINT)",
            "bigquery": "DATE_DIFF(CAST(t.y AS DATE), CAST(t.x AS DATE), DAY)",
            "snowflake": "DATEDIFF(DAY, CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "spark": "DATEDIFF(DAY, CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "databricks": "DATEDIFF(DAY, CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "trino": "DATE_DIFF('DAY', CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "redshift": "DATEDIFF(DAY, CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "tsql": "DATEDIFF(DAY, CAST(t.x AS DATE), CAST(t.y AS DATE))",
            "mysql": "DATEDIFF(CAST(t.y AS DATE), CAST(t.x AS DATE))",
        },
    )


def test_division():
    cast = {
        "duckdb": "DOUBLE",
        "sqlite": "REAL",
        "postgres": "DOUBLE PRECISION",
        "bigquery": "FLOAT64",
        "snowflake": "DOUBLE",
        "spark": "DOUBLE",
        "databricks": "DOUBLE",
        "trino": "DOUBLE",
        "redshift": "DOUBLE PRECISION",
        "tsql": "FLOAT",
        "mysql": "DOUBLE",
    }
    validate_all(
        "exact_division",
        lambda rules: divide(rules, _x(), _y()),
        {d: f"CAST(t.x AS {t}) / NULLIF(t.y, 0)" for d, t in cast.items()},
    )


def test_modulo():
    expected = {d: "t.x % t.y" for d in DIALECTS}
    expected.update(
        {
            "sqlite": "(t.x - t.y * CAST(CAST(t.x AS REAL) / t.y AS INTEGER))",
            "postgres": "CAST(t.x AS DECIMAL) % CAST(t.y AS DECIMAL)",
            "bigquery": "MOD(CAST(t.x AS BIGNUMERIC), CAST(t.y AS BIGNUMERIC))",
        }
    )
    validate_all("modulo", lambda rules: rules.modulo(_x(), _y()), expected)


def test_null_safe_join():
    expected = {d: "t.x IS NOT DISTINCT FROM t.y" for d in DIALECTS}
    expected.update({"sqlite": "t.x IS t.y", "mysql": "t.x <=> t.y"})
    validate_all(
        "null_safe_join", lambda rules: exp.NullSafeEQ(this=_x(), expression=_y()), expected
    )


def _bucket(grain: str, week_start: str = "monday", fiscal: int = 1):
    return lambda rules: rules.bucket(_x(), grain, fiscal, week_start)


def test_month_bucket():
    validate_all(
        "period_buckets",
        _bucket("month"),
        {
            "duckdb": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "sqlite": "DATE(t.x, 'start of month')",
            "postgres": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "bigquery": "CAST(TIMESTAMP_TRUNC(t.x, MONTH) AS DATE)",
            "snowflake": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "spark": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "databricks": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "trino": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "redshift": "CAST(DATE_TRUNC('MONTH', t.x) AS DATE)",
            "tsql": "CAST(DATETRUNC(MONTH, t.x) AS DATE)",
            "mysql": "CAST(DATE_ADD('0000-01-01 00:00:00', INTERVAL "
            "(TIMESTAMPDIFF(MONTH, '0000-01-01 00:00:00', t.x)) MONTH) AS DATE)",
        },
    )


def test_monday_week_bucket():
    """Weeks start on Monday whatever the session: not BigQuery's WEEK (Sunday), T-SQL's
    WEEK (@@DATEFIRST) or sqlglot's MySQL weeks counted from 0000-01-01 (a Saturday)."""
    mysql_day = "CAST(t.x AS DATE)"
    validate_all(
        "week_buckets",
        _bucket("week"),
        {
            "duckdb": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "sqlite": "DATE(t.x, '-6 days', 'weekday 1')",
            "postgres": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "bigquery": "CAST(TIMESTAMP_TRUNC(t.x, ISOWEEK) AS DATE)",
            "snowflake": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "spark": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "databricks": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "trino": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "redshift": "CAST(DATE_TRUNC('WEEK', t.x) AS DATE)",
            "tsql": "CAST(DATETRUNC(ISO_WEEK, t.x) AS DATE)",
            "mysql": f"CAST(DATE_SUB({mysql_day}, INTERVAL (WEEKDAY({mysql_day})) DAY) AS DATE)",
        },
    )


def test_sunday_week_bucket_shifts_a_monday_week():
    found = {d: fragment(d, _bucket("week", "sunday")) for d in ("bigquery", "tsql", "mysql")}
    assert found == {
        "bigquery": "CAST(DATE_ADD(TIMESTAMP_TRUNC(DATE_ADD(t.x, INTERVAL 1 DAY), ISOWEEK), "
        "INTERVAL -1 DAY) AS DATE)",
        "tsql": "CAST(DATEADD(DAY, -1, DATETRUNC(ISO_WEEK, DATEADD(DAY, 1, t.x))) AS DATE)",
        "mysql": "CAST(DATE_ADD(DATE_SUB(CAST(DATE_ADD(t.x, INTERVAL 1 DAY) AS DATE), INTERVAL "
        "(WEEKDAY(CAST(DATE_ADD(t.x, INTERVAL 1 DAY) AS DATE))) DAY), INTERVAL -1 DAY) AS DATE)",
    }


@pytest.mark.parametrize("dialect", ["mysql", "tsql"])
def test_windows_order_without_nulls_last(dialect):
    """Inside a window, the period is ordered without NULLS LAST, which sqlglot cannot
    print for MySQL or T-SQL (it would raise: KPI405)."""
    rules = rules_for(dialect)
    window = exp.Window(
        this=exp.Sum(this=_x()),
        order=exp.Order(expressions=[rules.natural_order(_y())]),
        spec=exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        ),
    )
    assert fragment(dialect, lambda _: window) == (
        "SUM(t.x) OVER (ORDER BY t.y ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )


def _percentile_of(value: exp.Expression) -> Callable[[DialectRules], exp.Expression]:
    return lambda rules: rules.percentile(exp.Literal.number(0.5), value.copy())


def test_redshift_allows_one_sort_key_per_statement():
    """Redshift: every PERCENTILE_CONT/MEDIAN of a statement orders by the same value
    (r_PERCENTILE_CONT.html, usage notes). The same value twice prints; a second value is
    unsupported, which the compiler reports as KPI405 at the KPI holding it."""
    from sqlglot.errors import UnsupportedError

    rules = rules_for("redshift")
    same = rules.finish(
        exp.select(_percentile_of(_x())(rules), _percentile_of(_x())(rules)).from_("t")
    )
    assert same.sql(dialect=rules.sqlglot, unsupported_level=ErrorLevel.RAISE) == (
        "SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.x), "
        "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY t.x) FROM t"
    )
    other = rules.finish(
        exp.select(_percentile_of(_x())(rules), _percentile_of(_y())(rules)).from_("t")
    )
    with pytest.raises(UnsupportedError, match=r"this one orders by t\.y, another by t\.x"):
        other.sql(dialect=rules.sqlglot, unsupported_level=ErrorLevel.RAISE)
    # what the SQL would be (printed with a warning when not raising)
    assert "ORDER BY t.y" in other.sql(dialect=rules.sqlglot, unsupported_level=ErrorLevel.IGNORE)
    # PostgreSQL has no such limit: the same statement prints
    postgres = rules_for("postgres")
    both = postgres.finish(
        exp.select(_percentile_of(_x())(postgres), _percentile_of(_y())(postgres)).from_("t")
    )
    assert "ORDER BY t.y" in both.sql(dialect="postgres", unsupported_level=ErrorLevel.RAISE)


def test_redshift_refuses_percentiles_of_two_values_at_the_kpi(tmp_path):
    import kpiengine
    from kpiengine.errors import DefinitionError
    from tests.conftest import SALES_FILES, write_files

    files = {
        **SALES_FILES,
        "kpis/won.yaml": """
            kpi: won_median
            source: opportunities
            expression: median(amount where stage = 'won')
            """,
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    options = {"grain": "month", "start": "2024-01-01", "end": "2024-03-01"}
    sql = project.compile(["median_amount", "p90_amount"], dialect="redshift", **options)
    assert sql.count("WITHIN GROUP (ORDER BY") == 2
    project.compile(["won_median"], dialect="redshift", **options)
    with pytest.raises(DefinitionError) as raised:
        project.compile(["median_amount", "won_median"], dialect="redshift", **options)
    [problem] = raised.value.diagnostics
    assert problem.code == "KPI405"
    assert "cannot express KPI `won_median`: Redshift requires every" in problem.message
    assert problem.span is not None and problem.span.file.endswith("won.yaml")
    assert (problem.span.line, problem.span.col) == (3, 13)
