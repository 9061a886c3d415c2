"""Spark in local mode (plugins/spark): the same numbers as DuckDB, and the dialect fixes.

- The pandas-checked time functions of test_time_functions.py run here on Spark (their
  ``env`` fixture is overridden below); the hand-computed cases of test_semantics.py run
  on Spark in test_engines.py, through the ``spark`` entry of tests/engines.py.
- Every rule of kpiengine/compile/dialects/spark.py has a test here that runs sqlglot's plain
  rendering on Spark and shows the wrong number or the error the rule prevents.
- The connector: URLs, Parquet folders, the read-only guard, errors.

One Spark context serves the whole test session (the connector keeps one per process);
each connection gets its own Spark session, so temp views never leak between tests.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

import pytest
from sqlglot import exp

import kpiengine
from kpiengine.compile import dialects
from kpiengine.errors import EngineError
from kpiengine.plan.periods import period_start
from tests import test_time_functions
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files
from tests.engines import ENGINES, arrow_tables, require

pytestmark = pytest.mark.slow

SPARK = ENGINES["spark"]
TINY = {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND}


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny sales tables of conftest.py as ``<table>.parquet`` files."""
    require(SPARK)
    folder = tmp_path_factory.mktemp("spark_tiny")
    SPARK.load(arrow_tables(TINY), folder)
    return folder


@pytest.fixture(scope="module")
def sales_spark(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    """(project, Spark connection) over the tiny sales dataset."""
    project = kpiengine.load(write_files(tmp_path_factory.mktemp("defs"), SALES_FILES))
    with kpiengine.connect(f"spark://local[2]?tables={tiny_folder}") as connection:
        yield project, connection


# -- the time functions of test_time_functions.py, on Spark -------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    """Overrides test_time_functions' ``env`` (DuckDB, SQLite) for the tests imported below."""
    require(SPARK)
    folder = tmp_path_factory.mktemp("spark_time")
    project = kpiengine.load(write_files(folder / "defs", test_time_functions.FILES))
    url = SPARK.load(arrow_tables(test_time_functions._tables()), folder / "data")
    with kpiengine.connect(url) as connection:
        yield project, connection


for _name in dir(test_time_functions):
    if _name.startswith("test_"):
        globals()[_name] = getattr(test_time_functions, _name)


# -- helpers ----------------------------------------------------------------------------


def values(result, kpi: str) -> dict:
    return {(row.period, row.dimensions): row.value for row in result.rows if row.kpi == kpi}


def assert_same(got: dict, wanted: dict) -> None:
    """Equal keys; numbers within 1e-9 relative; nulls equal."""
    assert got.keys() == wanted.keys()
    for key, value in wanted.items():
        if value is None or got[key] is None:
            assert got[key] is None and value is None, (key, got[key], value)
        else:
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), (
                key,
                got[key],
                value,
            )


def plain_sqlglot(monkeypatch: pytest.MonkeyPatch, run):
    """``run()`` with kpiengine/compile/dialects/spark.py switched off: sqlglot's own rendering."""
    with monkeypatch.context() as patch:
        patch.setattr(dialects.DialectSpec, "make_rules", _plain_rules_for("spark"))
        assert type(dialects.rules_for("spark")) is dialects.DialectRules
        return run()


# -- the dialect rules: each shows the failure it prevents ---------------------------------

# A small table for what the sales dataset has no case of: halves in decimal text that are
# not halves in binary, decimal arithmetic, nulls in greatest/least, quotes and backslashes,
# timestamps less than 24 hours apart across midnight.
ITEMS = (
    "day DATE, name VARCHAR, price DOUBLE, qty INTEGER, created_at TIMESTAMP, closed_at TIMESTAMP",
    [
        ("2024-01-01", "it's", 1.005, 1, "2024-01-05 23:00:00", "2024-01-06 01:00:00"),
        ("2024-01-02", "C:\\new", 0.285, 2, "2024-01-01 12:00:00", "2024-01-03 11:00:00"),
        ("2024-01-03", "plain", 2.675, 2, "2024-01-01 00:00:00", "2024-01-01 00:00:00"),
        ("2024-01-04", "plain", -2.675, None, None, None),
    ],
)
ITEM_FILES = {
    "kpiengine.yaml": "project: items\n",
    "items.yaml": """
        source: items
        table: items
        time: day
        columns:
          day: date
          name: string
          price: number
          qty: integer
          created_at: timestamp
          closed_at: timestamp
        """,
    "kpis.yaml": r"""
        kpis:
          - kpi: rounded
            source: items
            expression: sum(round(price, 2))
          - kpi: rounded_tens
            source: items
            expression: >-
              sum(round(price * 10, -1)) + sum(round(qty * 5, -1)) + sum(round(qty, 1))
              + sum(round(qty * 0.125, 2)) * 1000
          - kpi: decimal_share
            source: items
            expression: avg(if(qty = 2, 1.0, 0.0) where qty is not null)
          - kpi: decimal_rolling
            source: items
            expression: sum(qty * 0.1)
          - kpi: rolling
            expression: rolling_avg(decimal_rolling, 3)
          - kpi: bounded
            source: items
            expression: sum(greatest(qty, 2)) + sum(least(qty, 1))
          - kpi: quoted
            source: items
            expression: count(where name = 'it''s') * 10 + count(where name = 'C:\new')
          - kpi: days
            source: items
            expression: sum(days_between(created_at, closed_at))
        """,
}
#: computed by hand; DuckDB gives the same (checked below)
ITEM_EXPECTED = {
    "rounded": 1.0 + 0.28 + 2.68 - 2.68,  # round(x * 100) / 100 of the binary doubles
    "decimal_share": 2 / 3,
    "bounded": (2 + 2 + 2) + (1 + 1 + 1),  # null qty: greatest/least null, skipped by sum
    "quoted": 10 + 1,
    "days": 1 + 2 + 0,  # calendar days: 23:00 → 01:00 the next day is 1
}


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory):
    """(project, Spark connection, DuckDB connection) over ITEMS."""
    require(SPARK)
    folder = tmp_path_factory.mktemp("spark_items")
    project = kpiengine.load(write_files(folder / "defs", ITEM_FILES))
    url = SPARK.load(arrow_tables({"items": ITEMS}), folder / "data")
    duck = kpiengine.connect(make_duckdb(folder / "w.duckdb", {"items": ITEMS}))
    with kpiengine.connect(url) as spark:
        yield project, spark, duck
    duck.close()


def _total(project, connection, kpi):
    result = project.run([kpi], connection, grain="all")
    return result.rows[0].value


@pytest.mark.parametrize("kpi", sorted(ITEM_EXPECTED))
def test_items_by_hand_and_as_duckdb(items, kpi):
    project, spark, duck = items
    assert _total(project, duck, kpi) == pytest.approx(ITEM_EXPECTED[kpi], rel=1e-12)
    assert _total(project, spark, kpi) == pytest.approx(ITEM_EXPECTED[kpi], rel=1e-12)


def test_percentile_is_exact_not_approx(sales_spark, monkeypatch):
    """sqlglot's PERCENTILE_APPROX returns a data point; PERCENTILE interpolates."""
    project, connection = sales_spark
    kpis = ["median_amount", "p90_amount"]

    def run():
        return project.run(kpis, connection, grain="month", start="2024-03-01", end="2024-04-01")

    march = (dt.date(2024, 3, 1), ())
    plain = plain_sqlglot(monkeypatch, run)
    assert "PERCENTILE_APPROX" in plain.sql
    assert values(plain, "median_amount")[march] == 30  # an element, not 115
    assert values(plain, "p90_amount")[march] == 200
    fixed = run()
    assert "PERCENTILE(" in fixed.sql and "APPROX" not in fixed.sql
    assert values(fixed, "median_amount")[march] == 115  # (30 + 200) / 2
    assert values(fixed, "p90_amount")[march] == pytest.approx(183)  # 30 + 0.9 * 170


def test_round_of_doubles_as_duckdb(items, monkeypatch):
    """Spark rounds doubles half-up on their decimal text: round(1.005, 2) = 1.01."""
    project, spark, duck = items
    plain = plain_sqlglot(monkeypatch, lambda: _total(project, spark, "rounded"))
    assert plain == pytest.approx(1.01 + 0.29 + 2.68 - 2.68)
    assert _total(project, spark, "rounded") == pytest.approx(ITEM_EXPECTED["rounded"])
    # negative digits, integers and decimals keep Spark's exact ROUND, equal to DuckDB's:
    # round(price * 10, -1): 10 + 0 + 30 - 30; round(qty * 5, -1): 10 + 10 + 10;
    # round(qty, 1): 5; round(qty * 0.125, 2) (decimal, half away from 0): 0.13 + 0.25 * 2
    assert _total(project, duck, "rounded_tens") == pytest.approx(10 + 30 + 5 + 630)
    assert _total(project, spark, "rounded_tens") == pytest.approx(10 + 30 + 5 + 630)


def test_avg_of_decimals_in_double(items, monkeypatch):
    """AVG of a DECIMAL keeps 4 more digits only: 0.66667 instead of 2/3."""
    project, spark, duck = items
    plain = plain_sqlglot(monkeypatch, lambda: _total(project, spark, "decimal_share"))
    assert plain == 0.66667
    assert _total(project, spark, "decimal_share") == pytest.approx(2 / 3, rel=1e-15)
    # windows too: rolling_avg over a decimal KPI (0.1, 0.2, 0.2 then null)
    day = {"grain": "day", "start": "2024-01-01", "end": "2024-01-05"}
    expected = values(project.run(["rolling"], duck, **day), "rolling")
    plain_rolling = plain_sqlglot(
        monkeypatch, lambda: values(project.run(["rolling"], spark, **day), "rolling")
    )
    assert plain_rolling[(dt.date(2024, 1, 4), ())] == 0.2  # the mean of 0.2, 0.2: exact
    assert plain_rolling[(dt.date(2024, 1, 2), ())] == 0.15
    assert plain_rolling[(dt.date(2024, 1, 3), ())] == pytest.approx(0.16667, abs=1e-12)
    assert_same(values(project.run(["rolling"], spark, **day), "rolling"), expected)
    assert expected[(dt.date(2024, 1, 3), ())] == pytest.approx(0.5 / 3, rel=1e-15)


def test_greatest_and_least_are_null_with_a_null_argument(items, monkeypatch):
    """Spark's GREATEST/LEAST skip nulls: greatest(null, 2) would add 2 to the sum."""
    project, spark, _ = items
    plain = plain_sqlglot(monkeypatch, lambda: _total(project, spark, "bounded"))
    assert plain == 6 + 2 + 3 + 1
    assert _total(project, spark, "bounded") == ITEM_EXPECTED["bounded"]


# -- checked and left to sqlglot: equivalent as rendered -----------------------------------


def test_days_between_counts_calendar_days_on_timestamps(items):
    """Rendered DATEDIFF(DAY, CAST(a AS DATE), CAST(b AS DATE)). Without the casts Spark
    counts whole 24-hour spans (timestampdiff): 23:00 → 01:00 the next day would be 0."""
    project, spark, _ = items
    _, rows = spark.execute(
        "SELECT DATEDIFF(DAY, TIMESTAMP '2024-01-05 23:00:00', TIMESTAMP '2024-01-06 01:00:00')"
    )
    assert rows == [(0,)]
    assert _total(project, spark, "days") == 3


def test_quotes_and_backslashes_in_literals(items):
    """sqlglot escapes with backslashes for Spark: 'it\\'s', 'C:\\\\new'."""
    project, spark, _ = items
    sql = project.compile(["quoted"], dialect="spark", grain="all")
    assert r"'it\'s'" in sql and r"'C:\\new'" in sql
    assert _total(project, spark, "quoted") == 11


def test_division_by_zero_is_null_in_ansi_mode(tiny_folder, tmp_path):
    """ANSI mode (Spark 4's default) raises DIVIDE_BY_ZERO for x / 0; kpiengine's
    NULLIF(y, 0) makes every `/` and `%` null instead."""
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    url = f"spark://local[2]?tables={tiny_folder}&spark.sql.ansi.enabled=true"
    with kpiengine.connect(url) as connection:
        with pytest.raises(EngineError, match="DIVIDE_BY_ZERO"):
            connection.execute("SELECT 1 / 0 AS x")
        result = project.run(
            ["by_zero", "mod_zero"], connection, grain="all", start="2024-01-01", end="2024-06-01"
        )
    assert [r.value for r in result.rows] == [None, None]


def _duckdb_rows(project, kpis, tmp_path, **options):
    url = make_duckdb(tmp_path / "ref.duckdb", TINY)
    with kpiengine.connect(url) as duck:
        return duck.execute(project.compile(kpis, dialect="duckdb", **options))


@pytest.mark.parametrize("ansi", ["true", "false"])
@pytest.mark.parametrize("dialect", ["spark", "databricks"])
def test_every_sales_kpi_as_duckdb(tiny_folder, tmp_path, dialect, ansi):
    """Every KPI of the sales project in one statement, rendered for Spark and for
    Databricks, with ANSI mode on and off: DuckDB's numbers, value for value."""
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    kpis = list(project.kpis)
    options = {"grain": "month", "by": ["region"], "start": "2024-01-01", "end": "2024-06-01"}
    kpis = [k for k in kpis if k not in ("cost_per_deal", "spend", "spend_filled")]  # no region
    names, expected = _duckdb_rows(project, kpis, tmp_path, **options)
    url = f"spark://local[2]?tables={tiny_folder}&spark.sql.ansi.enabled={ansi}"
    with kpiengine.connect(url) as connection:
        got_names, got = connection.execute(project.compile(kpis, dialect=dialect, **options))
    assert got_names == names
    key = lambda row: tuple((v is None, str(v)) for v in row[:2])  # noqa: E731
    assert len(got) == len(expected)
    for mine, theirs in zip(sorted(got, key=key), sorted(expected, key=key), strict=True):
        for name, a, b in zip(names, mine, theirs, strict=True):
            if a is None or b is None:
                assert a is None and b is None, (name, mine, theirs)
            elif isinstance(b, dt.date):
                assert a == b
            elif isinstance(b, str):
                assert a == b, (name, a, b)
            else:
                assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (name, mine, theirs)


GRAIN_CASES = [
    ("day", 1, "monday"),
    ("week", 1, "monday"),
    ("week", 1, "sunday"),
    ("month", 1, "monday"),
    ("quarter", 1, "monday"),
    ("quarter", 2, "monday"),
    ("quarter", 11, "monday"),
    ("year", 1, "monday"),
    ("year", 7, "monday"),
]


@pytest.mark.parametrize("ansi", ["true", "false"])
@pytest.mark.parametrize("dialect", ["spark", "databricks"])
def test_buckets_match_python(spark_plain, dialect, ansi):
    """Every grain, fiscal start and week start, on timestamps (NTZ and session-zoned) and
    dates, for 400 moments from 1990 to 2060, in one statement: Python's calendar."""
    rng = random.Random(11)
    moments = [
        dt.datetime(1990, 1, 1) + dt.timedelta(seconds=rng.randrange(0, 71 * 365 * 86400))
        for _ in range(400)
    ]
    moments += [dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(2023, 12, 31, 0, 0, 0)]
    rules = dialects.rules_for(dialect)
    columns = {
        "ntz": exp.Cast(this=exp.column("m"), to=exp.DataType.build("TIMESTAMP_NTZ")),
        "ltz": exp.Cast(this=exp.column("m"), to=exp.DataType.build("TIMESTAMP")),
        "date": exp.Cast(this=exp.column("m"), to=exp.DataType.build("DATE")),
    }
    selects = [exp.column("m")]
    for i, (grain, fiscal, week) in enumerate(GRAIN_CASES):
        for kind, value in columns.items():
            selects.append(
                exp.alias_(rules.bucket(value.copy(), grain, fiscal, week), f"{kind}_{i}")
            )
    rows = exp.Values(
        expressions=[
            exp.Tuple(expressions=[exp.Literal.string(m.strftime("%Y-%m-%d %H:%M:%S"))])
            for m in moments
        ],
        alias=exp.TableAlias(this=exp.to_identifier("t"), columns=[exp.to_identifier("m")]),
    )
    sql = exp.select(*selects).from_(rows).sql(dialect=dialect)
    spark_plain.conf.set("spark.sql.ansi.enabled", ansi)
    from kpiengine_spark.connection import SparkConnection

    names, got = SparkConnection(spark_plain).execute(sql)
    assert len(got) == len(moments)
    for row in got:
        moment = dt.datetime.fromisoformat(row[0])
        for name, value in zip(names[1:], row[1:], strict=True):
            grain, fiscal, week = GRAIN_CASES[int(name.split("_")[1])]
            assert value == period_start(moment.date(), grain, fiscal, week), (name, moment)


@pytest.fixture
def spark_plain():
    """A fresh Spark session of the process's context, in a non-UTC time zone."""
    require(SPARK)
    from kpiengine_spark.connection import spark_session

    session = spark_session("local[2]").newSession()
    session.conf.set("spark.sql.session.timeZone", "America/New_York")
    return session


# -- the connector ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "master", "options"),
    [
        ("spark://local[2]", "local[2]", {}),
        ("spark://", "local[*]", {}),
        ("spark://local", "local", {}),
        ("spark://local[*]?tables=/data/x", "local[*]", {"tables": (Path("/data/x"),)}),
        ("spark://host:7077/?database=crm", "spark://host:7077", {"database": "crm"}),
        (
            "spark://local[2]?tables=a&tables=b&spark.sql.ansi.enabled=false",
            "local[2]",
            {"tables": (Path("a"), Path("b")), "conf": {"spark.sql.ansi.enabled": "false"}},
        ),
    ],
)
def test_url(url, master, options):
    from kpiengine_spark.connection import SparkURL, parse_url

    assert parse_url(url) == SparkURL(master, **options)


@pytest.mark.parametrize(
    ("url", "message"),
    [("spark://local[two]", "local master"), ("spark://local[2]?table=x", "unknown option")],
)
def test_bad_url_is_a_usage_error(url, message):
    from kpiengine.errors import UsageError

    with pytest.raises(UsageError, match=message):
        kpiengine.connect(url)


def test_missing_tables_folder(tmp_path):
    with pytest.raises(EngineError, match="not a folder"):
        kpiengine.connect(f"spark://local[2]?tables={tmp_path / 'nope'}")


def test_another_master_in_the_same_process(tiny_folder):
    with pytest.raises(EngineError, match=r"already runs .* master local\[2\]"):
        kpiengine.connect(f"spark://local[3]?tables={tiny_folder}")


def test_missing_table_names_it_and_the_views(sales_spark):
    _, connection = sales_spark
    with pytest.raises(EngineError) as error:
        connection.execute("SELECT * FROM leads")
    message = str(error.value)
    assert "`leads`" in message and "accounts, opportunities, spend" in message
    assert "\n" not in message  # the first line only, no plan dump


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE sneaky (a INT) USING parquet",
        "CREATE TABLE sneaky USING parquet AS SELECT 1 AS a",
        "INSERT INTO accounts VALUES ('a9', 'smb')",
        "WITH x AS (SELECT 1) INSERT INTO accounts SELECT 'a', 'b' FROM x",
        "DROP VIEW accounts",
        "CACHE TABLE accounts",
        "SET spark.sql.ansi.enabled = false",
        "CREATE TEMPORARY VIEW v AS SELECT 1",
    ],
)
def test_only_queries_run(sales_spark, statement):
    _, connection = sales_spark
    with pytest.raises(EngineError, match="not a query"):
        connection.execute(statement)
    assert connection.execute("SELECT COUNT(*) FROM accounts")[1] == [(3,)]


def test_syntax_error_is_reported_as_such(sales_spark):
    _, connection = sales_spark
    with pytest.raises(EngineError, match=r"PARSE_SYNTAX_ERROR|[Ss]yntax") as error:
        connection.execute("SELECT 1 +")
    assert "not a query" not in str(error.value)


def test_columns(sales_spark):
    _, connection = sales_spark
    assert connection.columns("accounts") == {"account_id": "string", "segment": "string"}
    assert connection.columns("opportunities")["closed_at"] == "timestamp_ntz"
    assert connection.columns("spend")["month"] == "date"
    assert connection.columns("nope") is None


def test_values_are_plain_python(sales_spark):
    _, connection = sales_spark
    names, rows = connection.execute(
        "SELECT CAST(1.25 AS DECIMAL(10, 2)) AS d, CAST(12 AS DECIMAL(10, 0)) AS i, "
        "CAST('2024-01-31' AS DATE) AS day, TIMESTAMP_NTZ '2024-01-31 10:00:00' AS ts, "
        "CAST(NULL AS DOUBLE) AS n, 7 AS b, 'x' AS s"
    )
    assert names == ["d", "i", "day", "ts", "n", "b", "s"]
    assert rows == [(1.25, 12, dt.date(2024, 1, 31), dt.datetime(2024, 1, 31, 10), None, 7, "x")]
    assert [type(v) for v in rows[0][:2]] == [float, int]


def test_views_are_private_to_a_connection(tiny_folder, tmp_path):
    """Two connections, two folders holding a table of the same name; closing one drops
    only its views."""
    other = tmp_path / "other"
    SPARK.load(arrow_tables({"accounts": ("account_id VARCHAR, segment VARCHAR", [])}), other)
    with (
        kpiengine.connect(f"spark://local[2]?tables={tiny_folder}") as first,
        kpiengine.connect(f"spark://local[2]?tables={other}") as second,
    ):
        assert first.execute("SELECT COUNT(*) FROM accounts")[1] == [(3,)]
        assert second.execute("SELECT COUNT(*) FROM accounts")[1] == [(0,)]
        session = first._session
    assert "accounts" not in {t.name for t in session.catalog.listTables()}
    with pytest.raises(EngineError, match="closed"):
        first.execute("SELECT 1")


def test_parquet_folders_and_partitions(tmp_path):
    """A Spark-written folder of part files (partitioned) and a `name.parquet` folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "lake"
    table = pa.table({"region": ["emea", "emea", "apac"], "amount": [1.0, 2.0, 4.0]})
    pq.write_to_dataset(table, folder / "sales", partition_cols=["region"])
    (folder / "more.parquet").mkdir(parents=True)
    pq.write_table(table, folder / "more.parquet" / "part-0.parquet")
    (folder / "notes.txt").write_text("not a table")
    (folder / "bad-name.parquet").write_bytes(b"")
    with kpiengine.connect(f"spark://local[2]?tables={folder}") as connection:
        assert sorted(connection.views) == ["more", "sales"]
        _, rows = connection.execute(
            "SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region"
        )
        assert rows == [("apac", 4.0), ("emea", 3.0)]
        assert connection.execute("SELECT COUNT(*) FROM more")[1] == [(3,)]


def test_two_tables_of_one_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"a": [1]})
    pq.write_table(table, tmp_path / "t.parquet")
    (tmp_path / "t").mkdir()
    pq.write_table(table, tmp_path / "t" / "part-0.parquet")
    with pytest.raises(EngineError, match="two Parquet tables are named `t`"):
        kpiengine.connect(f"spark://local[2]?tables={tmp_path}")


def test_session_catalog_and_an_existing_session(tiny_folder):
    """Without tables=, names resolve in the session catalog (global temp views here);
    SparkConnection.from_session uses a session as it is, its temp views included."""
    from kpiengine_spark.connection import SparkConnection, spark_session

    session = spark_session("local[2]")
    session.read.parquet(str(tiny_folder / "accounts.parquet")).createOrReplaceGlobalTempView(
        "kpi_accounts"
    )
    with kpiengine.connect("spark://local[2]") as connection:
        assert connection.execute("SELECT COUNT(*) FROM global_temp.kpi_accounts")[1] == [(3,)]
        with pytest.raises(EngineError, match="only the session catalog"):
            connection.execute("SELECT * FROM accounts")
    mine = session.newSession()
    mine.read.parquet(str(tiny_folder / "accounts.parquet")).createOrReplaceTempView("accounts")
    connection = SparkConnection.from_session(mine)
    assert connection.execute("SELECT COUNT(*) FROM accounts")[1] == [(3,)]
    connection.close()
    assert mine.sql("SELECT COUNT(*) FROM accounts").collect()[0][0] == 3  # left as it was
    session.catalog.dropGlobalTempView("kpi_accounts")


def test_missing_database(tiny_folder):
    with pytest.raises(EngineError, match="nope"):
        kpiengine.connect(f"spark://local[2]?tables={tiny_folder}&database=nope")


def test_cli_run_and_engine_error(tiny_folder, tmp_path, capsys):
    from kpiengine.cli import main

    root = write_files(tmp_path / "defs", SALES_FILES)
    url = f"spark://local[2]?tables={tiny_folder}"
    common = ["--project", str(root), "--connector", url, "--format", "json"]
    window = ["--from", "2024-01-01", "--to", "2024-06-01", "--grain", "quarter"]
    assert main(["run", "revenue", *common, *window]) == 0
    out = capsys.readouterr().out
    assert '"value": 310' in out.replace(".0", "")
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["run", "revenue", *common[:2], "--connector", f"spark://local[2]?tables={empty}"])
    assert code == 3
    assert "opportunities" in capsys.readouterr().err


def test_sample_data_written_to_parquet_reads_on_spark(tmp_path):
    """`kpi sample-data --to files:///dir` then spark://local[2]?tables=dir: the catalog's
    numbers equal DuckDB's reading the same files (files:///dir)."""
    from kpiengine.sample import write_sample

    folder = tmp_path / "sample"
    write_sample(f"files:///{folder}", rows=300, seed=3)
    catalog = kpiengine.load(Path(__file__).resolve().parent.parent / "definitions")
    kpis = list(catalog.kpis)[:40]
    options = {"grain": "quarter", "start": "2025-01-01", "end": "2026-01-01"}
    results = {}
    for url in (f"files:///{folder}", f"spark://local[2]?tables={folder}"):
        with kpiengine.connect(url) as connection:
            result = catalog.run(kpis, connection, **options)
        results[url.split(":")[0]] = {(r.kpi, r.period): r.value for r in result.rows}
    assert_same(results["spark"], results["files"])
    assert sum(v not in (None, 0) for v in results["files"].values()) > 40


# -- the write probes of the conformance kit (issue 10) ----------------------------------


def test_write_and_file_probes_are_refused(tmp_path):
    """Every probe of kpiengine.testing fails with EngineError and changes nothing; before,
    ``SELECT * FROM csv.`/path``` read any file and ``reflect(...)`` called Java."""
    from kpiengine.testing import DATASET, read_only_problems

    require(SPARK)
    folder = DATASET.write_parquet(tmp_path / "kit")
    with kpiengine.connect(f"spark://local[2]?tables={folder}") as connection:
        assert read_only_problems(connection, watch=[folder]) == []
        for sql in (
            f"SELECT * FROM text.`{folder / 'accounts.parquet'}`",
            "SELECT java_method('java.lang.System', 'getProperty', 'user.dir')",
        ):
            with pytest.raises(EngineError):
                connection.execute(sql)
        assert connection.execute("SELECT COUNT(*) FROM accounts")[1] == [(3,)]


def test_denied_functions_are_dropped_for_the_connection_only(tiny_folder):
    """Other sessions of the process (a user's own) keep ``reflect``."""
    from kpiengine_spark.connection import spark_session

    url = f"spark://local[2]?tables={tiny_folder}"
    with kpiengine.connect(url) as connection, pytest.raises(EngineError, match="reflect"):
        connection.execute("SELECT reflect('java.lang.String', 'valueOf', 1)")
    other = spark_session("local[2]").newSession()
    assert other.sql("SELECT reflect('java.lang.String', 'valueOf', 1)").collect()[0][0] == "1"


def _plain_rules_for(name: str):  # type: ignore[no-untyped-def]
    """``DialectSpec.make_rules`` giving the portable rules for the dialect ``name``:
    what sqlglot renders without kpiengine's rules for that engine."""
    made = dialects.DialectSpec.make_rules

    def make_rules(spec: dialects.DialectSpec) -> dialects.DialectRules:
        if spec.name == name:
            return dialects.DialectRules(spec.name, spec.sqlglot_dialect)
        return made(spec)

    return make_rules
