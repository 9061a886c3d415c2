"""``kpi init`` (SPEC §13.9): a starter project that validates clean and whose example
test passes; with a connector, one source per table with its columns and types."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kpiengine.cli import main


def kpi(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


def test_starter_validates_and_tests_clean(tmp_path, capsys):
    folder = tmp_path / "starter"
    code, out = kpi(capsys, "init", str(folder))
    assert code == 0 and "wrote" in out
    code, out = kpi(capsys, "validate", str(folder))
    assert code == 0 and "no errors" in out and "warning" not in out, out
    code, out = kpi(capsys, "test", str(folder))
    assert code == 0 and "1 passed" in out, out


def test_existing_definitions_are_never_overwritten(tmp_path, capsys):
    folder = tmp_path / "p"
    assert kpi(capsys, "init", str(folder))[0] == 0
    before = (folder / "kpis" / "orders.yaml").read_text()
    code, out = kpi(capsys, "init", str(folder))
    assert code == 2 and "already holds definitions" in out
    assert (folder / "kpis" / "orders.yaml").read_text() == before


def _duckdb(path: Path) -> str:
    import duckdb

    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id BIGINT, amount DECIMAL(10,2), paid BOOLEAN,"
            ' ordered_at TIMESTAMP, note VARCHAR, "Bad Name" INT, tags INT[])'
        )
        connection.execute("CREATE TABLE regions (code VARCHAR, name VARCHAR)")
    return f"duckdb:///{path}"


def _sqlite(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id INTEGER, amount REAL, paid BOOLEAN,"
            " ordered_at TIMESTAMP, note TEXT)"
        )
        connection.execute("CREATE TABLE regions (code TEXT, name TEXT)")
    return f"sqlite:///{path}"


def _files(path: Path) -> str:
    path.mkdir()
    (path / "orders.csv").write_text(
        "order_id,amount,paid,ordered_at,note\n1,10.5,true,2024-01-05 10:00:00,x\n"
    )
    (path / "regions.csv").write_text("code,name\neu,Europe\n")
    return f"files:///{path}"


@pytest.mark.parametrize("make", [_duckdb, _sqlite, _files], ids=["duckdb", "sqlite", "files"])
def test_from_a_connection(tmp_path, capsys, make):
    url = make(tmp_path / "warehouse")
    folder = tmp_path / "proj"
    code, out = kpi(capsys, "init", str(folder), "--connector", url)
    assert code == 0, out
    orders = (folder / "sources" / "orders.yaml").read_text()
    assert "time: ordered_at" in orders
    for line in ("order_id: integer", "amount: number", "paid: boolean", "note: string"):
        assert line in orders
    assert "Bad Name" not in orders and "tags" not in orders  # not usable: left out
    assert (folder / "sources" / "regions.yaml").is_file()
    assert (folder / "kpis" / "orders.yaml").is_file()
    code, out = kpi(capsys, "validate", str(folder), "--connector", url)
    assert code == 0 and "no errors" in out, out
    code, out = kpi(capsys, "test", str(folder))
    assert code == 0 and "1 passed" in out, out
    code, out = kpi(capsys, "run", "orders_rows", "--project", str(folder), "--grain", "all")
    assert code == 0, out


def test_relative_connector_is_written_relative_to_the_project(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _files(tmp_path / "data")
    assert kpi(capsys, "init", "shop", "--connector", "files:///data")[0] == 0
    assert "connector: files:///../data" in (tmp_path / "shop" / "kpiengine.yaml").read_text()


def test_password_is_not_written(tmp_path):
    from kpiengine.review.init_project import _connector_for_file

    written = _connector_for_file("postgresql://me:secret@db:5432/w", tmp_path)
    assert written == "postgresql://me@db:5432/w"


def test_empty_connection_is_a_usage_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = kpi(capsys, "init", str(tmp_path / "p"), "--connector", f"files:///{empty}")
    assert code == 2 and "no tables" in out


# -- PostgreSQL ---------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_from_postgres(tmp_path, capsys, monkeypatch):
    """Introspected as the reader role; the project validates, its example test passes on
    a scratch schema (admin role), and `kpi run` reads the same database through the
    project's connector, whose password comes from PGPASSWORD, never from the file."""
    from urllib.parse import urlsplit

    import psycopg

    from tests import engines

    engines.require(engines.ENGINES["postgres"])
    url = engines.postgres_database()
    with psycopg.connect(engines._libpq(engines.as_admin(url))) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id bigint, amount numeric(10,2), paid boolean,"
            ' ordered_at timestamp, note text, "Bad Name" integer, tags integer[])'
        )
        connection.execute("CREATE TABLE regions (code text, name text)")
        connection.execute(
            "INSERT INTO orders (order_id, amount, paid, ordered_at, note) VALUES"
            " (1, 10.5, true, '2024-01-05 10:00', 'x'), (2, 3, false, '2024-01-20 09:00', 'y'),"
            " (3, 7, true, '2024-02-01 08:00', 'z')"
        )
    folder = tmp_path / "proj"
    code, out = kpi(capsys, "init", str(folder), "--connector", url)
    assert code == 0, out
    orders = (folder / "sources" / "orders.yaml").read_text()
    assert "time: ordered_at" in orders
    for line in ("order_id: integer", "amount: number", "paid: boolean", "note: string"):
        assert line in orders
    assert "Bad Name" not in orders and "tags" not in orders
    assert (folder / "sources" / "regions.yaml").is_file()
    project_file = (folder / "kpiengine.yaml").read_text()
    password = urlsplit(url).password
    assert "connector: postgresql://" in project_file
    assert password and password not in project_file
    code, out = kpi(capsys, "validate", str(folder), "--connector", url)
    assert code == 0 and "no errors" in out, out
    code, out = kpi(capsys, "test", str(folder), "--connector", engines.as_admin(url))
    assert code == 0 and "1 passed" in out and "on postgres" in out, out
    monkeypatch.setenv("PGPASSWORD", password)
    code, out = kpi(
        capsys, "run", "orders_rows", "--project", str(folder), "--grain", "month",
        "--from", "2024-01-01", "--to", "2024-03-01", "--format", "csv",
    )  # fmt: skip
    assert code == 0, out
    rows = ["2024-01-01,orders_rows,2,false", "2024-02-01,orders_rows,1,false"]
    assert out.splitlines()[1:] == rows, out


def test_unreachable_postgres_is_an_engine_error(tmp_path, capsys):
    pytest.importorskip("kpiengine_postgres")
    port = _closed_port()
    folder = tmp_path / "proj"
    url = f"postgresql://kpi:s3cret@127.0.0.1:{port}/warehouse"
    code, out = kpi(capsys, "init", str(folder), "--connector", url)
    assert code == 3, out
    assert f"127.0.0.1:{port}" in out and "connection refused" in out and "s3cret" not in out
    assert not (folder / "kpiengine.yaml").exists()  # nothing written
