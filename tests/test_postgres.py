"""PostgreSQL (plugins/postgres): the dialect fixes, the connector, the sample writer.

- Every rule of kpiengine/compile/dialects/postgres.py has a test here that runs sqlglot's plain
  rendering (the portable rules, without the PostgreSQL ones) on the server and shows the
  error or the different number it prevents, then the fixed statement's numbers, computed
  by hand and equal to DuckDB's.
- The connector: read-only transactions, session settings (JIT off, standard strings),
  introspection, and the errors it explains (refused connection, credentials, missing
  database or table, statement timeout).
- The sample writer of ``kpi sample-data --to postgresql://...``.
- The pandas-checked time functions of test_time_functions.py run on PostgreSQL (their
  ``env`` fixture is overridden below); the hand-computed cases of test_semantics.py run
  on PostgreSQL in test_engines.py.

Tests that need the server are marked slow and skip without one (fail on CI); start one
with scripts/pg-start.sh, or let ``make test`` do it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.compile import dialects
from kpiengine.errors import EngineError, UsageError
from kpiengine.testing import ConnectorConformance, Dataset
from tests import test_time_functions
from tests.conftest import write_files
from tests.engines import (
    ENGINES,
    arrow_tables,
    as_admin,
    on_ci,
    postgres_database,
    postgres_url,
    require,
    sample_tables,
)
from tests.test_testing_kit import KNOWN_FAILURES

POSTGRES = ENGINES["postgres"]
slow = pytest.mark.slow


def _plugin() -> Any:
    try:
        import kpiengine_postgres.connection as connection
    except ImportError:
        message = "the kpiengine-postgres plugin is not installed (pip install -e plugins/postgres)"
        if on_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return connection


@pytest.fixture(scope="module")
def server() -> str:
    require(POSTGRES)
    url = postgres_url()
    assert url is not None
    return url


# -- a small project for the dialect rules ----------------------------------------------

FACTS = {
    "facts": (
        "id VARCHAR, happened_at TIMESTAMP, day DATE, x DOUBLE, n INTEGER, label VARCHAR",
        [
            ("f1", "2024-01-05 10:00:00", "2024-01-05", 7.5, 3, "a\\b"),
            ("f2", "2024-01-20 23:30:00", "2024-01-20", 2.25, 4, "it's"),
            ("f3", "2024-02-03 00:30:00", "2024-02-03", None, 5, "plain"),
            ("f4", "2024-02-10 12:00:00", "2024-02-10", -3.5, None, "a\\b"),
            # out of the January-February range: for the time-zone check
            ("f5", "2024-09-08 12:00:00", "2024-09-08", 1.0, 1, "plain"),
            ("f6", "2024-09-01 08:00:00", "2024-09-01", 1.0, 1, "plain"),
            ("f7", "2024-09-07 23:00:00", "2024-09-07", 1.0, 1, "plain"),
        ],
    ),
}
FACT_FILES = {
    "kpiengine.yaml": "project: dialect\n",
    "facts.yaml": """
        source: facts
        table: facts
        time: happened_at
        columns:
          id: {type: string, key: true}
          happened_at: timestamp
          day: date
          x: number
          n: integer
          label: string
        """,
    "kpis.yaml": r"""
        kpis:
          - kpi: rounded
            source: facts
            expression: round(avg(x), 1)
          - kpi: rounded_whole
            source: facts
            expression: round(sum(x))
          - kpi: remainder
            source: facts
            expression: sum(x % 2)
          - kpi: greatest_counted
            source: facts
            expression: count(greatest(x, 0))
          - kpi: least_counted
            source: facts
            expression: count(least(x, n))
          - kpi: backslashes
            source: facts
            expression: count(where label = 'a\b')
          - kpi: quoted
            source: facts
            expression: count(where label = 'it''s')
          - kpi: int_sum
            source: facts
            expression: sum(n)
          - kpi: int_avg
            source: facts
            expression: avg(n)
          - kpi: int_median
            source: facts
            expression: median(n)
          - kpi: p25
            source: facts
            expression: percentile(x, 0.25)
          - kpi: days_to_march
            source: facts
            expression: sum(days_between(happened_at, date '2024-03-01'))
          - kpi: days_back
            source: facts
            expression: min(days_between(date '2024-03-01', day))
          - kpi: share_positive
            source: facts
            expression: count(where (x > 0) = true) / count()
          - kpi: running
            expression: cumulative_sum(int_sum) + rolling_avg(share_positive, 2)
        """,
}
MONTHS = {"start": "2024-01-01", "end": "2024-03-01"}
#: by hand: January f1 (7.5, n 3) and f2 (2.25, n 4); February f3 (x null, n 5) and f4
#: (-3.5, n null)
EXPECTED = {
    "rounded": [4.9, -3.5],  # avg 4.875 → 4.9 (half away from zero); -3.5
    "rounded_whole": [10.0, -4.0],  # 9.75 → 10; -3.5 → -4
    "remainder": [1.75, -1.5],  # 7.5 % 2 + 2.25 % 2 = 1.5 + 0.25; -3.5 % 2 = -1.5
    "greatest_counted": [2, 1],  # greatest(null, 0) is null: only f4 counts
    "least_counted": [2, 0],  # least(null, 5), least(-3.5, null): null
    "backslashes": [1, 1],
    "quoted": [1, 0],
    "int_sum": [7, 5],
    "int_avg": [3.5, 5.0],
    "int_median": [3.5, 5.0],
    "p25": [2.25 + 0.25 * (7.5 - 2.25), -3.5],
    "days_to_march": [56 + 41, 27 + 20],  # 5 Jan → 1 Mar = 56 days, 20 Jan → 41, ...
    "days_back": [-56, -27],  # from 1 Mar back to 5 Jan (and 20 Jan); to 3 Feb (and 10)
    "share_positive": [1.0, 0.0],
    "running": [7 + 1.0, 12 + 0.5],
}


@pytest.fixture(scope="module")
def facts(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str, str]:
    """(project, PostgreSQL URL, DuckDB URL) of the facts table."""
    folder = tmp_path_factory.mktemp("pg_facts")
    tables = arrow_tables(FACTS)
    project = kpiengine.load(write_files(folder / "defs", FACT_FILES))
    return project, POSTGRES.load(tables, folder), ENGINES["duckdb"].load(tables, folder / "dd")


def series(result: Any, kpi: str) -> list[Any]:
    return [r.value for r in result.rows if r.kpi == kpi]


def run(project: Any, url: str, kpis: list[str], **options: Any) -> Any:
    with kpiengine.connect(url) as connection:
        return project.run(kpis, connection, **{**MONTHS, **options})


def sqlglot_only(project: Any, kpis: list[str], **options: Any) -> str:
    """The statement as sqlglot renders it without kpiengine's PostgreSQL rules."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dialects.DialectSpec, "make_rules", _plain_rules_for("postgres"))
        assert type(dialects.rules_for("postgres")) is dialects.DialectRules
        return project.compile(kpis, dialect="postgres", **{**MONTHS, **options})


def close(got: list[Any], expected: list[Any]) -> bool:
    return len(got) == len(expected) and all(
        (g is None and e is None)
        or (g is not None and e is not None and math.isclose(g, e, rel_tol=1e-12))
        for g, e in zip(got, expected, strict=True)
    )


@slow
@pytest.mark.parametrize("kpi", sorted(EXPECTED))
def test_hand_computed_values_on_postgres_and_duckdb(facts, kpi):
    project, pg, duck = facts
    on_pg = series(run(project, pg, [kpi]), kpi)
    on_duckdb = series(run(project, duck, [kpi]), kpi)
    assert close(on_pg, EXPECTED[kpi]), on_pg
    assert close(on_duckdb, EXPECTED[kpi]), on_duckdb


def _raw(url: str, sql: str, *setup: str) -> list[tuple[Any, ...]]:
    """Run SQL on a plain psycopg session: no kpiengine session settings."""
    import psycopg
    from kpiengine_postgres.connection import split_url

    with psycopg.connect(split_url(url)[0]) as connection:
        for statement in setup:
            connection.execute(statement)
        return connection.execute(sql).fetchall()


@slow
@pytest.mark.parametrize(
    ("kpi", "error"),
    [
        ("rounded", "function round(double precision, integer) does not exist"),
        ("rounded_whole", "function round(double precision, integer) does not exist"),
        ("remainder", "operator does not exist: double precision % integer"),
    ],
)
def test_rule_numeric_round_and_modulo(facts, kpi, error):
    """sqlglot keeps ROUND(x, n) and x % y; PostgreSQL has neither for double precision."""
    import psycopg

    project, pg, _ = facts
    with pytest.raises(psycopg.errors.UndefinedFunction, match=re.escape(error)):
        _raw(pg, sqlglot_only(project, [kpi]))
    fixed = project.compile([kpi], dialect="postgres", **MONTHS)
    assert "AS DECIMAL" in fixed
    assert close(series(run(project, pg, [kpi]), kpi), EXPECTED[kpi])


@slow
@pytest.mark.parametrize(("kpi", "wrong"), [("greatest_counted", 2), ("least_counted", 2)])
def test_rule_greatest_least_are_null_with_a_null_argument(facts, kpi, wrong):
    """PostgreSQL's GREATEST/LEAST skip nulls; DuckDB's and SQLite's (as sqlglot renders
    them) are null when an argument is: sqlglot's plain PostgreSQL SQL counts a February
    row too many."""
    project, pg, duck = facts
    plain = _raw(pg, sqlglot_only(project, [kpi]))
    assert [row[-1] for row in plain] == [2, wrong]
    assert series(run(project, pg, [kpi]), kpi) == EXPECTED[kpi]
    assert series(run(project, duck, [kpi]), kpi) == EXPECTED[kpi]


@slow
def test_connector_keeps_backslashes_literal_whatever_the_server_says(facts, server):
    """sqlglot writes 'a\\b' for the text a\\b, which is right only with
    standard_conforming_strings on. A database set to off reads it as an escape (and
    matches nothing); the connector turns the setting on for its session."""
    import psycopg
    from kpiengine_postgres.connection import split_url

    project, pg, _ = facts
    database = pg.rsplit("/", 1)[1]
    with psycopg.connect(split_url(as_admin(server))[0], autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET standard_conforming_strings = off')
    try:
        sql = project.compile(["backslashes"], dialect="postgres", **MONTHS)
        assert "'a\\b'" in sql
        assert [row[-1] for row in _raw(pg, sql)] == [0, 0]  # the plain session: wrong
        assert series(run(project, pg, ["backslashes"]), "backslashes") == [1, 1]
    finally:
        with psycopg.connect(split_url(as_admin(server))[0], autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" RESET standard_conforming_strings')


@slow
def test_connector_turns_jit_off(server, catalog_on_postgres):
    """PostgreSQL JIT-compiles statements it estimates as costly; the catalog's one wide
    statement has hundreds of expressions and compiling them took seconds for a statement
    that runs in tens of milliseconds (7.6 s against 0.07 s on 2 000 rows). Without the
    connector's setting, JIT kicks in for it even on this small dataset."""
    project, url = catalog_on_postgres
    rows = _raw(url, "SELECT pg_jit_available()")
    if not rows[0][0]:
        pytest.skip("this PostgreSQL build has no JIT")
    sql = project.compile(project.kpis, dialect="postgres", grain="month", **CATALOG_RANGE)
    plain = "\n".join(r[0] for r in _raw(url, "EXPLAIN (ANALYZE false) " + sql))
    assert "JIT:" in plain  # what the plain session would do
    with kpiengine.connect(url) as connection:
        # EXPLAIN is refused by the connector (not a query): ask its session directly
        explained = connection._connection.execute("EXPLAIN (ANALYZE false) " + sql).fetchall()
        connection._connection.rollback()
        assert "JIT:" not in "\n".join(r[0] for r in explained)
        assert connection.execute("SELECT current_setting('jit')")[1] == [("off",)]
    with kpiengine.connect(url + "?jit=on") as connection:
        assert connection.execute("SELECT current_setting('jit')")[1] == [("on",)]


@slow
def test_date_buckets_do_not_depend_on_the_session_time_zone(facts, tmp_path):
    """Checked, no rule needed: DATE_TRUNC of a date goes through timestamptz in the
    session's time zone and comes back as the same date, also where midnight does not
    exist (Santiago skipped 2024-09-08 00:00, a Sunday)."""
    _, pg, duck = facts
    zone = "America/Santiago"
    rows = _raw(
        pg,
        "SELECT CAST(DATE_TRUNC('week', DATE '2024-09-08') AS DATE),"
        " CAST(DATE_TRUNC('day', DATE '2024-09-08') AS DATE)",
        f"SET TIME ZONE '{zone}'",
    )
    assert rows == [(dt.date(2024, 9, 2), dt.date(2024, 9, 8))]
    files = {
        **FACT_FILES,
        "kpis.yaml": "kpi: by_day\nsource: facts\ntime: day\nexpression: count()\n",
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    zoned = pg + f"?options=-c%20TimeZone%3D{zone}"
    with kpiengine.connect(zoned) as connection:
        assert connection.execute("SELECT current_setting('TimeZone')")[1] == [(zone,)]
    for grain in ("day", "week", "month", "quarter"):
        september = {"grain": grain, "start": "2024-08-26", "end": "2024-09-10"}
        got = run(project, zoned, ["by_day"], **september)
        want = run(project, duck, ["by_day"], **september)
        assert [(r.period, r.value) for r in got.rows] == [(r.period, r.value) for r in want.rows]
        assert sum(r.value for r in got.rows) == 3


@slow
def test_integer_sums_come_back_as_int_like_duckdb(facts):
    """sum() of an integer column is numeric in PostgreSQL (Decimal in Python): execute
    gives an int, as DuckDB's HUGEINT; averages and medians are floats on both."""
    project, pg, duck = facts
    for url in (pg, duck):
        result = run(project, url, ["int_sum", "int_avg", "int_median"])
        assert [type(v) for v in series(result, "int_sum")] == [int, int]
        assert [type(v) for v in series(result, "int_avg")] == [float, float]
        assert [type(v) for v in series(result, "int_median")] == [float, float]


# -- the whole catalog, for the JIT test -----------------------------------------------

CATALOG_RANGE = {"start": "2025-01-01", "end": "2026-01-01"}


@pytest.fixture(scope="module")
def catalog_on_postgres(server: str, tmp_path_factory: pytest.TempPathFactory):
    project = kpiengine.load(Path(__file__).resolve().parent.parent / "definitions")
    url = POSTGRES.load(sample_tables(2000, 7), tmp_path_factory.mktemp("pg_catalog"))
    return project, url


# -- the connector ----------------------------------------------------------------------


@slow
def test_every_statement_is_read_only(facts):
    _, pg, _ = facts
    with kpiengine.connect(pg) as connection:
        for sql in ("CREATE TABLE sneaky (a integer)", "DELETE FROM facts", "DROP TABLE facts"):
            with pytest.raises(EngineError, match="only reads"):
                connection.execute(sql)
        # one statement per call: the read-only transaction cannot be ended from inside
        with pytest.raises(EngineError, match="one query per call, got 2 statements"):
            connection.execute("COMMIT; DROP TABLE facts")
        with pytest.raises(EngineError, match=r"set_config\(\) is not allowed"):
            connection.execute("SELECT set_config('transaction_read_only', 'off', true)")
        import psycopg

        raw = connection._connection  # were it sent, the server would refuse it too
        with pytest.raises(psycopg.Error, match="read-write mode"):
            raw.execute("SELECT set_config('transaction_read_only', 'off', true)")
        raw.rollback()
        read_only = "SELECT current_setting('transaction_read_only')"
        assert connection.execute(read_only)[1] == [("on",)]
        assert connection.execute("SELECT count(*) FROM facts") == (["count"], [(7,)])


@slow
def test_session_settings(facts, monkeypatch):
    monkeypatch.delenv("KPI_STATEMENT_TIMEOUT", raising=False)
    _, pg, _ = facts
    with kpiengine.connect(pg) as connection:
        for name, value in [
            ("statement_timeout", "5min"),
            ("jit", "off"),
            ("standard_conforming_strings", "on"),
            ("default_transaction_read_only", "on"),
            ("application_name", "kpiengine"),
        ]:
            shown = connection.execute(f"SELECT current_setting('{name}')")[1]
            assert shown == [(value,)], name


@slow
def test_columns_from_information_schema(facts, server):
    import psycopg
    from kpiengine_postgres.connection import split_url

    _, pg, _ = facts
    with psycopg.connect(split_url(as_admin(pg))[0], autocommit=True) as admin:
        admin.execute("CREATE SCHEMA IF NOT EXISTS crm")
        admin.execute("CREATE TABLE IF NOT EXISTS crm.deals (deal_id text, amount numeric)")
    with kpiengine.connect(pg) as connection:
        assert connection.columns("facts") == {
            "id": "text",
            "happened_at": "timestamp without time zone",
            "day": "date",
            "x": "double precision",
            "n": "bigint",
            "label": "text",
        }
        assert connection.columns("public.facts") == connection.columns("facts")
        assert connection.columns("crm.deals") == {"deal_id": "text", "amount": "numeric"}
        assert connection.columns("deals") is None  # crm is not on the search path
        assert connection.columns("nope") is None
        assert connection.columns("crm.facts") is None


@slow
def test_schema_qualified_source(facts, tmp_path):
    import psycopg
    from kpiengine_postgres.connection import split_url

    _, pg, _ = facts
    with psycopg.connect(split_url(as_admin(pg))[0], autocommit=True) as admin:
        admin.execute("CREATE SCHEMA IF NOT EXISTS sales")
        admin.execute("DROP TABLE IF EXISTS sales.orders")
        admin.execute("CREATE TABLE sales.orders (amount double precision, at date)")
        admin.execute("INSERT INTO sales.orders VALUES (10, '2024-01-02'), (5, '2024-02-01')")
    files = {
        "kpiengine.yaml": "project: q\n",
        "s.yaml": "source: orders\ntable: sales.orders\ntime: at\n"
        "columns: {amount: number, at: date}\n",
        "k.yaml": "kpi: total\nsource: orders\nexpression: sum(amount)\n",
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    assert series(run(project, pg, ["total"]), "total") == [10.0, 5.0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_names_host_and_port():
    _plugin()
    port = _closed_port()
    with pytest.raises(EngineError) as error:
        kpiengine.connect(f"postgresql://kpi:s3cret@127.0.0.1:{port}/warehouse")
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message
    assert "connection refused" in message
    assert "server running" in message
    assert "s3cret" not in message
    assert error.value.exit_code == 3


def test_unknown_host():
    _plugin()
    with pytest.raises(EngineError, match=r"unknown host name `no-such-host\.invalid`"):
        kpiengine.connect("postgresql://kpi@no-such-host.invalid:5432/db")


def _with_password(url: str, password: str | None) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    user = parts.username or ""
    auth = f"{user}:{password}" if password is not None else user
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


@slow
def test_bad_credentials(server, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    try:
        kpiengine.connect(_with_password(server, "wrong-password")).close()
    except EngineError as raised:
        error = raised
    else:
        pytest.skip("this server does not check passwords")
    message = str(error)
    assert "refused the credentials of user" in message
    assert "wrong-password" not in message
    with pytest.raises(EngineError, match="asks for a password"):
        kpiengine.connect(_with_password(server, None))


@slow
def test_missing_database(server):
    from urllib.parse import urlsplit, urlunsplit

    url = urlunsplit(urlsplit(server)._replace(path="/no_such_database"))
    with pytest.raises(EngineError, match="database `no_such_database` does not exist"):
        kpiengine.connect(url)


@slow
def test_missing_table(facts, tmp_path):
    _, pg, _ = facts
    files = {
        "kpiengine.yaml": "project: q\n",
        "s.yaml": "source: gone\ntable: gone_table\ntime: at\ncolumns: {at: date}\n",
        "k.yaml": "kpi: n\nsource: gone\nexpression: count()\n",
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    with pytest.raises(EngineError) as error:
        run(project, pg, ["n"])
    assert 'relation "gone_table" does not exist' in str(error.value)
    assert "table:" in str(error.value)


@slow
def test_missing_table_from_the_command_line(facts, tmp_path, capsys):
    from kpiengine.cli import main

    _, pg, _ = facts
    files = {
        "kpiengine.yaml": "project: q\n",
        "s.yaml": "source: gone\ntable: gone_table\ntime: at\ncolumns: {at: date}\n",
        "k.yaml": "kpi: n\nsource: gone\nexpression: count()\n",
    }
    root = write_files(tmp_path / "defs", files)
    code = main(["run", "n", "--project", str(root), "--connector", pg, "--grain", "all"])
    assert code == 3
    err = capsys.readouterr().err
    assert "gone_table" in err


@slow
def test_statement_timeout_from_url_and_environment(facts, monkeypatch):
    _, pg, _ = facts
    with kpiengine.connect(pg + "?statement_timeout=100ms") as connection:
        with pytest.raises(EngineError) as error:
            connection.execute("SELECT pg_sleep(2)")
        message = str(error.value)
        assert "statement timeout (100ms)" in message
        assert "?statement_timeout=" in message and "KPI_STATEMENT_TIMEOUT" in message
        assert connection.execute("SELECT 1")[1] == [(1,)]  # still usable afterwards
    monkeypatch.setenv("KPI_STATEMENT_TIMEOUT", "150ms")
    with kpiengine.connect(pg) as connection:
        shown = connection.execute("SELECT current_setting('statement_timeout')")[1]
        assert shown == [("150ms",)]
        with pytest.raises(EngineError, match="statement timeout"):
            connection.execute("SELECT pg_sleep(2)")
    with kpiengine.connect(pg + "?statement_timeout=0") as connection:  # the URL wins
        shown = connection.execute("SELECT current_setting('statement_timeout')")[1]
        assert shown == [("0",)]


@pytest.mark.parametrize(
    ("url", "env", "timeout"),
    [
        ("postgresql://u@h/db", None, "5min"),
        ("postgresql://u@h/db", "30s", "30s"),
        ("postgresql://u@h/db?statement_timeout=2min", "30s", "2min"),
        ("postgres://u@h/db?statement_timeout=1500", None, "1500"),
    ],
)
def test_statement_timeout_setting(url, env, timeout, monkeypatch):
    connection = _plugin()
    if env is None:
        monkeypatch.delenv("KPI_STATEMENT_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("KPI_STATEMENT_TIMEOUT", env)
    conninfo, settings = connection.parse_url(url)
    assert settings == {"statement_timeout": timeout, "jit": "off"}
    assert conninfo.startswith("postgresql://u@h/db?")
    assert "statement_timeout" not in conninfo
    assert "connect_timeout=10" in conninfo


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql://u@h/db?statement_timeout=soon", "not a duration"),
        ("postgresql://u@h/db?jit=maybe", "jit=on or jit=off"),
        ("mysql://u@h/db", "not a postgresql:// URL"),
    ],
)
def test_bad_urls_are_usage_errors(url, match, monkeypatch):
    connection = _plugin()
    monkeypatch.delenv("KPI_STATEMENT_TIMEOUT", raising=False)
    with pytest.raises(UsageError, match=match):
        connection.parse_url(url)


def test_bad_timeout_from_environment(monkeypatch):
    _plugin()
    monkeypatch.setenv("KPI_STATEMENT_TIMEOUT", "forever")
    with pytest.raises(UsageError, match=r"\$KPI_STATEMENT_TIMEOUT"):
        kpiengine.connect(f"postgresql://u@127.0.0.1:{_closed_port()}/db")


def test_libpq_options_pass_through():
    connection = _plugin()
    conninfo, _ = connection.parse_url(
        "postgresql://u:p%40ss@h:6543/db?sslmode=disable&connect_timeout=3"
        "&options=-csearch_path%3Dcrm&statement_timeout=1s"
    )
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(conninfo)
    assert params["password"] == "p@ss"
    assert params["sslmode"] == "disable"
    assert params["connect_timeout"] == "3"
    assert params["options"] == "-csearch_path=crm"
    assert params["port"] == "6543"


def test_plugin_registers_both_schemes():
    _plugin()
    from kpiengine.execute.connectors import find_connector

    for scheme in ("postgresql", "postgres"):
        spec = find_connector(f"{scheme}://u@h/db")
        assert (spec.scheme, spec.dialect, spec.plugin) == (scheme, "postgres", "postgres")


# -- the sample writer ------------------------------------------------------------------


@slow
def test_sample_data_command(server, capsys):
    from kpiengine.cli import main
    from kpiengine.sample.generate import generate

    url = postgres_database()
    writer = as_admin(url)  # the connector's role only reads
    assert main(["sample-data", "--to", writer, "--rows", "300", "--seed", "3"]) == 0
    expected: dict[str, int] = {}
    for table, batch in generate(300, 3):
        expected[table] = expected.get(table, 0) + batch.num_rows
    with kpiengine.connect(url) as connection:
        for table, count in expected.items():
            assert connection.execute(f'SELECT count(*) FROM "{table}"')[1] == [(count,)]
        assert connection.columns("opportunities")["amount"] == "double precision"
        assert connection.columns("opportunities")["created_at"] == ("timestamp without time zone")
    capsys.readouterr()
    assert main(["sample-data", "--to", writer, "--rows", "300"]) == 2
    assert "already has table(s) accounts" in capsys.readouterr().err
    assert main(["sample-data", "--to", writer, "--rows", "200", "--replace"]) == 0


@slow
def test_sample_writer_leaves_nothing_on_failure(server):
    from kpiengine.sample.write import write_sample

    url = postgres_database()
    seen: list[str] = []

    def progress(table: str, rows: int) -> None:
        seen.append(table)
        if len(set(seen)) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_sample(as_admin(url), rows=200, progress=progress)
    with kpiengine.connect(url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )[1]
    assert tables == [(0,)]


@slow
def test_writer_round_trips_values_exactly(server):
    import pyarrow as pa
    from kpiengine_postgres.sample_writer import write_tables

    table = pa.table(
        {
            "s": ["plain", "", None, 'quote " comma , newline \n backslash \\ end', "été ✓"],
            "f": [0.1, 1 / 3, None, 1e-300, -123456789.123456789],
            "i": pa.array([1, None, -(2**62), 0, 7], pa.int64()),
            "b": [True, False, None, True, False],
            "d": [
                dt.date(2024, 2, 29),
                None,
                dt.date(1, 1, 1),
                dt.date(9999, 12, 31),
                dt.date(1970, 1, 1),
            ],
            "t": pa.array(
                [
                    dt.datetime(2024, 1, 1, 9, 0, 0),
                    dt.datetime(2024, 1, 1, 9, 0, 0, 123456),
                    None,
                    dt.datetime(1999, 12, 31, 23, 59, 59),
                    dt.datetime(2030, 6, 1),
                ],
                pa.timestamp("us"),
            ),
        }
    )
    url = postgres_database()
    write_tables(as_admin(url), {"values": table})
    with kpiengine.connect(url) as connection:
        _, rows = connection.execute('SELECT s, f, i, b, d, t FROM "values"')
    assert sorted(rows, key=repr) == sorted(
        zip(*(table.column(c).to_pylist() for c in "sfibdt"), strict=True), key=repr
    )


def test_writer_needs_the_plugin(monkeypatch):
    from kpiengine.sample.write import write_sample

    monkeypatch.setitem(sys.modules, "kpiengine_postgres.sample_writer", None)
    with pytest.raises(UsageError, match=r"pip install \./plugins/postgres"):
        write_sample("postgresql://u@h/db", rows=100)


# -- the connector conformance kit (kpiengine.testing) ------------------------------------


def _load_kit(dataset: Dataset, schema: str | None = None) -> str:
    require(POSTGRES)
    import psycopg
    from kpiengine_postgres.connection import split_url
    from kpiengine_postgres.sample_writer import write_tables

    url = postgres_database()
    target = url
    if schema is not None:
        with psycopg.connect(split_url(as_admin(url))[0], autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        target = f"{url}?options=-csearch_path%3D{schema}"
    tables = {name: table.to_arrow() for name, table in dataset.tables.items()}
    write_tables(as_admin(target), tables)
    return url


@slow
class TestPostgresConformance(ConnectorConformance):
    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return _load_kit(dataset)


@slow
class TestPostgresSchemaConformance(ConnectorConformance):
    """Tables in a schema that is not on the search path: ``table: kit.deals``."""

    schema = "kit"
    known_failures = KNOWN_FAILURES

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        return _load_kit(dataset, self.schema)


# -- the time functions of test_time_functions.py, on PostgreSQL ----------------------------


@pytest.fixture(scope="module")
def env(server: str, tmp_path_factory: pytest.TempPathFactory):
    """Overrides test_time_functions' ``env`` (DuckDB, SQLite) for the tests imported below."""
    folder = tmp_path_factory.mktemp("pg_time")
    project = kpiengine.load(write_files(folder / "defs", test_time_functions.FILES))
    url = POSTGRES.load(arrow_tables(test_time_functions._tables()), folder / "data")
    with kpiengine.connect(url) as connection:
        yield project, connection


def _on_postgres(test: Any) -> Any:
    """The same test as a new function, marked slow here only (marking the imported
    function itself would mark it in test_time_functions too)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    return slow(wrapper)


for _name in dir(test_time_functions):
    if _name.startswith("test_"):
        globals()[_name] = _on_postgres(getattr(test_time_functions, _name))


def _plain_rules_for(name: str):  # type: ignore[no-untyped-def]
    """``DialectSpec.make_rules`` giving the portable rules for the dialect ``name``:
    what sqlglot renders without kpiengine's rules for that engine."""
    made = dialects.DialectSpec.make_rules

    def make_rules(spec: dialects.DialectSpec) -> dialects.DialectRules:
        if spec.name == name:
            return dialects.DialectRules(spec.name, spec.sqlglot_dialect)
        return made(spec)

    return make_rules
