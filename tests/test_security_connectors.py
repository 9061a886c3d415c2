"""Issue 10: the connectors are read-only through every door, the Python API included.

Measured before the fix through ``kpiengine.connect(url).execute(sql)``: on a read-only
DuckDB file ``COPY ... TO``, ``EXPORT DATABASE`` and ``ATTACH ... (READ_WRITE)`` + ``CREATE
TABLE`` succeeded, ``duckdb:///:memory:`` had no guard at all and ``SELECT * FROM
'/etc/hostname'`` read the file; SQLite ``mode=ro`` ran ``ATTACH`` + ``CREATE`` and
``VACUUM INTO``; PostgreSQL ran ``COPY (SELECT 1) TO PROGRAM '...'`` (a shell command) in
its READ ONLY transaction. Every probe of :data:`kpiengine.testing.PROBES` now raises
EngineError on every connector and leaves the data and the file system as they were.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.errors import EngineError
from kpiengine.execute.connectors import redact_url
from kpiengine.testing import CANARY, DATASET, PROBES, Probe, read_only_problems
from tests.conftest import SALES_FILES, write_files
from tests.engines import ENGINES, as_admin, load_duckdb, load_sqlite, require

# -- the built-in connectors -----------------------------------------------------------

LOCAL = (
    "duckdb-file",
    "duckdb-memory",
    "files-parquet",
    "files-csv",
    "sqlite-file",
    "sqlite-memory",
)


def _files(folder: Path, fmt: str) -> Path:
    """The kit's tables as ``<table>.<fmt>`` files in ``folder``."""
    import pyarrow.csv as pcsv

    DATASET.write_parquet(folder)
    if fmt == "csv":
        for name, table in DATASET.tables.items():
            pcsv.write_csv(table.to_arrow(), folder / f"{name}.csv")
            (folder / f"{name}.parquet").unlink()
    return folder


def _url(kind: str, folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "duckdb-file":
        return load_duckdb(_arrow(), folder)
    if kind == "sqlite-file":
        return load_sqlite(_arrow(), folder)
    if kind.startswith("files-"):
        return f"files:///{_files(folder / 'files', kind.removeprefix('files-'))}"
    return {"duckdb-memory": "duckdb:///:memory:", "sqlite-memory": "sqlite://"}[kind]


def _arrow() -> dict[str, Any]:
    return {name: table.to_arrow() for name, table in DATASET.tables.items()}


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """Connector kind → (URL, folder holding its files)."""
    found = {}
    for kind in LOCAL:
        folder = tmp_path_factory.mktemp(kind)
        found[kind] = (_url(kind, folder), folder)
    return found


def _probe_folder(tmp_path: Path) -> Path:
    folder = (tmp_path / "probe").resolve()
    folder.mkdir()
    (folder / CANARY).write_text("secret\nkpi-canary-7f3a91\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
@pytest.mark.parametrize("kind", LOCAL)
def test_every_probe_is_refused(warehouses, kind: str, probe: Probe, tmp_path: Path) -> None:
    url, _ = warehouses[kind]
    folder = _probe_folder(tmp_path)
    with kpiengine.connect(url) as connection:
        with pytest.raises(EngineError):
            connection.execute(probe.text("", folder))
        assert connection.execute("SELECT 1 AS one")[1] == [(1,)]  # still usable
    assert sorted(p.name for p in folder.rglob("*")) == [CANARY]


@pytest.mark.parametrize("kind", [k for k in LOCAL if "memory" not in k])
def test_probes_leave_rows_and_files_unchanged(warehouses, kind: str) -> None:
    url, folder = warehouses[kind]
    with kpiengine.connect(url) as connection:
        assert read_only_problems(connection, watch=[folder]) == []


@pytest.mark.parametrize("kind", ["duckdb-file", "duckdb-memory", "files-parquet", "files-csv"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM '/etc/hostname'",
        "SELECT * FROM '/etc/hostname.csv'",
        "SELECT * FROM read_csv('/etc/hostname')",
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM 'http://127.0.0.1:9/secret.csv'",
        "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')",
        "SELECT getenv('HOME')",
        "SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/kpi-query-probe.csv''')",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "CALL checkpoint()",
    ],
)
def test_duckdb_reads_nothing_outside_the_warehouse(warehouses, kind: str, sql: str) -> None:
    """The replacement scan of a path, file functions and URLs are off on every DuckDB
    connection (a `table:` such as /etc/passwd.csv used to read the file)."""
    url, _ = warehouses[kind]
    started = time.monotonic()
    with kpiengine.connect(url) as connection, pytest.raises(EngineError):
        connection.execute(sql)
    assert time.monotonic() - started < 5  # no extension download, no network wait


@pytest.mark.parametrize("kind", ["duckdb-file", "duckdb-memory", "files-parquet"])
def test_duckdb_settings_are_locked(warehouses, kind: str) -> None:
    url, _ = warehouses[kind]
    with kpiengine.connect(url) as connection:
        _, rows = connection.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access',"
            " 'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration')"
        )
    assert dict(rows) == {
        "enable_external_access": "false",
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
        "lock_configuration": "true",
    }


def test_files_views_still_read_but_not_their_neighbours(tmp_path: Path) -> None:
    """files:// may read the files its views were made from, and nothing else: not a
    file next to them, not one in a sub-folder."""
    folder = _files(tmp_path / "files", "csv")
    (folder / "notes.txt").write_text("secret notes\n", encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "sub" / "more.csv").write_text("a\n1\n", encoding="utf-8")
    with kpiengine.connect(f"files:///{folder}") as connection:
        assert connection.execute("SELECT COUNT(*) FROM deals")[1] == [(8,)]
        assert connection.execute("SELECT COUNT(*) FROM accounts")[1] == [(3,)]
        for sql in (
            f"SELECT * FROM read_text('{folder / 'notes.txt'}')",
            f"SELECT * FROM '{folder / 'sub' / 'more.csv'}'",
            f"SELECT * FROM read_csv('{folder}/*.csv')",
        ):
            with pytest.raises(EngineError):
                connection.execute(sql)


def test_two_connections_to_one_duckdb_file(tmp_path: Path) -> None:
    """DuckDB shares a database instance (and its locked settings) between the
    connections of a process: the second one opens and is locked too."""
    url = load_duckdb(_arrow(), tmp_path)
    with kpiengine.connect(url) as first, kpiengine.connect(url) as second:
        for connection in (first, second):
            with pytest.raises(EngineError):
                connection.execute(f"COPY deals TO '{tmp_path / 'out.csv'}'")
            assert connection.execute("SELECT COUNT(*) FROM deals")[1] == [(8,)]
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("kind", ["sqlite-file", "sqlite-memory"])
def test_sqlite_attach_and_vacuum_into_write_nothing(warehouses, kind: str, tmp_path) -> None:
    url, _ = warehouses[kind]
    with kpiengine.connect(url) as connection:
        for sql in (
            f"ATTACH '{tmp_path / 'other.db'}' AS other",
            f"VACUUM INTO '{tmp_path / 'copy.db'}'",
            "WITH x AS (SELECT 1) INSERT INTO accounts SELECT 'a9', 'smb' FROM x",
            "SELECT * FROM pragma_table_info('accounts')",
            "SELECT load_extension('/tmp/nothing')",
            "BEGIN",
            "SAVEPOINT a",
        ):
            with pytest.raises(EngineError):
                connection.execute(sql)
        assert connection.execute(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1"
            " FROM r WHERE n < 3) SELECT SUM(n) FROM r"
        )[1] == [(6,)]
    assert list(tmp_path.iterdir()) == []


def test_kit_projects_still_compute_on_every_local_connector(warehouses, tmp_path) -> None:
    """The guards refuse nothing kpiengine itself sends (joins, windows, CTEs...)."""
    from kpiengine.testing import CASES, case_problems, write_project

    project = kpiengine.load(write_project(tmp_path / "defs"))
    for kind in ("duckdb-file", "files-parquet", "sqlite-file"):
        url, _ = warehouses[kind]
        with kpiengine.connect(url) as connection:
            for case in CASES:
                if case.fiscal_year_start == 1 and case.id != "month-aggregates":
                    problems = case_problems(project, connection, case)
                    assert not [p for p in problems if "refused" in p or "read-only" in p]


# -- passwords never printed ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://kpi:s3cret@db:5432/w", "postgresql://kpi:***@db:5432/w"),
        ("postgresql://kpi:s3c/ret@db/w", "postgresql://kpi:***@db/w"),
        (
            "postgresql://kpi:s3c@ret@db/w?sslmode=require",
            "postgresql://kpi:***@db/w?sslmode=require",
        ),
        ("postgresql://:s3cret@db/w", "postgresql://:***@db/w"),
        ("postgresql://kpi@db/w?password=s3cret&x=1", "postgresql://kpi@db/w?password=***&x=1"),
        ("duckdb:///w.duckdb?password=s3cret", "duckdb:///w.duckdb?password=***"),
        ("x://h/?sslpassword=s3cret&api_token=s3cret", "x://h/?sslpassword=***&api_token=***"),
        ("x://h/?AWS_SECRET_ACCESS_KEY=s3cret#f", "x://h/?AWS_SECRET_ACCESS_KEY=***#f"),
        ("postgresql://kpi@db:5432/w", "postgresql://kpi@db:5432/w"),
        ("files:///data/a:b@c", "files:///data/a:b@c"),
        ("duckdb:///w.duckdb?memory_limit=1GB", "duckdb:///w.duckdb?memory_limit=1GB"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:///no/such.duckdb?password=s3cret",
        "duckdb:///:memory:?memory_limit=lots&password=s3cret",
        "sqlite:///no/such.db?password=s3cret",
        "files:///no/such/folder?password=s3cret",
        "postgresql://kpi:s3cret@[::1/db",
        "postgresql://kpi:s3cret@127.0.0.1:1/db?jit=maybe",
        "postgresql://kpi:s3cret@127.0.0.1:1/db?password=s3cret&connect_timeout=x",
    ],
)
def test_connector_messages_never_show_a_password(url: str, tmp_path: Path, capsys) -> None:
    """Through the CLI, where a user meets them (also the Python API's exceptions)."""
    from kpiengine.cli import main

    if url.startswith("postgres"):
        pytest.importorskip("kpiengine_postgres")
    with pytest.raises(Exception) as raised:
        kpiengine.connect(url)
    assert "s3cret" not in str(raised.value)
    root = write_files(tmp_path / "defs", SALES_FILES)
    code = main(["run", "--all", "--project", str(root), "--connector", url, "--grain", "all"])
    out, err = capsys.readouterr()
    assert code != 0
    assert "name at least one KPI" not in err  # the connector was reached
    assert "s3cret" not in out + err
    assert "internal error" not in err


def test_an_unencoded_at_sign_in_a_postgres_password_shows_no_part_of_it(
    tmp_path: Path, capsys
) -> None:
    """libpq splits `user:pa@ss@host` at the first `@`: the rest of the password was shown
    as the host name (`cannot connect to PostgreSQL at ss@host`)."""
    from kpiengine.cli import main

    pytest.importorskip("kpiengine_postgres")
    url = "postgresql://kpi:s3cr@et-tail@127.0.0.1:1/db"
    root = write_files(tmp_path / "defs", SALES_FILES)
    code = main(["run", "--all", "--project", str(root), "--connector", url, "--grain", "all"])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "et-tail" not in out + err and "%40" in err


# -- PostgreSQL ---------------------------------------------------------------------------

POSTGRES = ENGINES["postgres"]


def _guard() -> Any:
    guard = pytest.importorskip("kpiengine_postgres.guard")
    return guard.check_query


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO PROGRAM 'id > /tmp/kpi-pwned'",
        "/* /* */ SELECT 1 --*/ COPY (SELECT 1) TO PROGRAM 'id'",
        "SELECT 1 AS a INTO kpi_copy",
        "SELECT 1 AS a INTO TEMP kpi_copy",
        "SELECT * FROM pg_class FOR UPDATE",
        "WITH gone AS (DELETE FROM t RETURNING *) SELECT COUNT(*) FROM gone",
        "SET ROLE postgres",
        "SHOW data_directory",
        "EXPLAIN ANALYZE SELECT 1",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL p()",
        "SELECT 1; SELECT 2",
        "COMMIT; DROP TABLE t",
        "",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT * FROM pg_ls_dir('.')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT lo_export(1, '/tmp/x')",
        "SELECT dblink_exec('dbname=x', 'DROP TABLE t')",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT query_to_xml('SELECT 1', true, false, '')",
        "SELECT pg_terminate_backend(1)",
        "SELECT nextval('s')",
        "SELECT pg_advisory_lock(1)",
        "SELECT COUNT(*) FROM (SELECT PG_READ_BINARY_FILE('/etc/passwd')) AS x",
    ],
)
def test_postgres_guard_refuses(sql: str) -> None:
    check_query = _guard()
    with pytest.raises(EngineError, match="refused, kpiengine only reads"):
        check_query(sql)


def test_postgres_guard_accepts_what_kpiengine_sends() -> None:
    """Every KPI of the catalog (definitions/), compiled for PostgreSQL, is one query."""
    check_query = _guard()
    root = Path(__file__).resolve().parent.parent / "definitions"
    project = kpiengine.load(root)
    sql = project.compile(
        project.kpis, dialect="postgres", grain="month", start="2025-01-01", end="2026-01-01"
    )
    started = time.monotonic()
    check_query(sql)
    assert time.monotonic() - started < 5
    for extra in ("SELECT current_setting('jit')", "VALUES (1)", "(SELECT 1) UNION SELECT 2"):
        check_query(extra)


@pytest.fixture(scope="module")
def pg_kit(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database holding the kit's dataset; the URL of the (non-superuser) test role."""
    require(POSTGRES)
    return POSTGRES.load(_arrow(), tmp_path_factory.mktemp("pg_security"))


@pytest.mark.slow
def test_postgres_test_role_is_not_a_superuser(pg_kit: str) -> None:
    """The tests exercise the connector as an operator should run it (docs/security.md)."""
    with kpiengine.connect(pg_kit) as connection:
        _, rows = connection.execute(
            "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole,"
            " pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER'),"
            " pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'),"
            " pg_has_role(current_user, 'pg_write_server_files', 'MEMBER')"
            " FROM pg_roles AS r WHERE r.rolname = current_user"
        )
    assert rows == [(False, False, False, False, False, False)]


@pytest.mark.slow
def test_postgres_copy_to_program_is_refused_and_could_not_run(pg_kit: str, tmp_path) -> None:
    """Refused before it is sent; and were it sent, the role may not run programs."""
    import psycopg
    from kpiengine_postgres.connection import split_url

    target = tmp_path / "pwned"
    sql = f"COPY (SELECT 1) TO PROGRAM 'id > {target}'"
    with kpiengine.connect(pg_kit) as connection, pytest.raises(EngineError, match="COPY"):
        connection.execute(sql)
    with psycopg.connect(split_url(pg_kit)[0], autocommit=True) as raw:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("SELECT pg_read_file('/etc/hostname')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw.execute("CREATE TABLE public.kpi_sneaky (a integer)")
    assert not target.exists()


@pytest.mark.slow
def test_postgres_probes_change_nothing(pg_kit: str) -> None:
    with kpiengine.connect(pg_kit) as connection:
        assert read_only_problems(connection) == []
    with kpiengine.connect(as_admin(pg_kit)) as admin:  # the connector guards a superuser too
        assert read_only_problems(admin) == []
