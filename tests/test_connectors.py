"""Built-in connectors: DuckDB file (read-only), in-memory DuckDB, files:/// folders, SQLite."""

from __future__ import annotations

import duckdb
import pytest

import kpiengine
from kpiengine.errors import EngineError, UsageError
from tests.conftest import (
    ACCOUNTS,
    OPPORTUNITIES,
    SALES_FILES,
    SPEND,
    make_duckdb,
    make_sqlite,
    write_files,
)

TABLES = {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND}


def _files_dir(tmp_path, fmt):
    source = make_duckdb(tmp_path / "src.duckdb", TABLES).split(":///", 1)[1]
    folder = tmp_path / "files"
    folder.mkdir()
    connection = duckdb.connect(source)
    for table in TABLES:
        target = folder / f"{table}.{fmt}"
        option = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
        connection.execute(f"COPY {table} TO '{target}' {option}")
    connection.close()
    return folder


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_files_connector_reads_a_folder(tmp_path, fmt):
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    folder = _files_dir(tmp_path, fmt)
    with kpiengine.connect(f"files:///{folder}") as connection:
        result = project.run(
            ["deals", "revenue", "win_rate"],
            connection,
            grain="all",
            start="2024-01-01",
            end="2025-01-01",
        )
    assert {r.kpi: r.value for r in result.rows} == {
        "deals": 7,
        "revenue": 380.0,
        "win_rate": pytest.approx(5 / 7),
    }


def test_duckdb_file_is_read_only(tmp_path):
    url = make_duckdb(tmp_path / "w.duckdb", TABLES)
    with kpiengine.connect(url) as connection:
        with pytest.raises(EngineError, match="read-only"):
            connection.execute("CREATE TABLE sneaky (a INTEGER)")
        assert connection.columns("accounts") == {"account_id": "VARCHAR", "segment": "VARCHAR"}
        assert connection.columns("nope") is None


def test_sqlite_file_is_read_only(tmp_path):
    url = make_sqlite(tmp_path / "w.db", TABLES)
    with kpiengine.connect(url) as connection:
        with pytest.raises(EngineError, match="read-only"):
            connection.execute("CREATE TABLE sneaky (a INTEGER)")
        assert connection.columns("accounts") == {"account_id": "TEXT", "segment": "TEXT"}


def test_in_memory_duckdb(tmp_path):
    with kpiengine.connect("duckdb://") as connection:
        assert connection.execute("SELECT 41 + 1") == (["(41 + 1)"], [(42,)])


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("duckdb:///does/not/exist.duckdb", EngineError),
        ("sqlite:///does/not/exist.db", EngineError),
        ("files:///does/not/exist", EngineError),
        ("oracle://localhost/x", UsageError),  # no plugin has it (mysql:// now has one)
        ("not a url", UsageError),
    ],
)
def test_bad_urls(url, error):
    with pytest.raises(error):
        kpiengine.connect(url)


def test_duckdb_memory_limit(tmp_path):
    url = make_duckdb(tmp_path / "w.duckdb", TABLES)
    with kpiengine.connect(url) as connection:  # a bounded buffer pool by default
        assert connection.execute("SELECT current_setting('memory_limit')")[1][0][0] != ""
    with kpiengine.connect(f"{url}?memory_limit=64MB") as connection:
        assert connection.execute("SELECT current_setting('memory_limit')")[1] == [("61.0 MiB",)]
    with pytest.raises(EngineError):
        kpiengine.connect(f"{url}?memory_limit=lots")


#: one list of 5M integers: a 40 MB allocation DuckDB cannot spill
HUNGRY = "SELECT length(list(i)) AS n FROM range(5000000) AS t(i)"


@pytest.mark.parametrize("kind", ["duckdb", "files"])
def test_out_of_memory_under_the_default_limit_runs_again_with_wider_ones(
    tmp_path, monkeypatch, caplog, kind
):
    """The default buffer pool keeps memory low; a statement that cannot fit in it runs
    again with each wider limit in turn (a warning each time) rather than failing."""
    from kpiengine.execute import duckdb_connector

    monkeypatch.setattr(duckdb_connector, "DEFAULT_MEMORY_LIMIT", "10MB")
    monkeypatch.setattr(duckdb_connector, "WIDER_LIMITS", ("20MB", None))
    url = make_duckdb(tmp_path / "w.duckdb", TABLES)
    if kind == "files":
        url = f"files:///{_files_dir(tmp_path, 'parquet')}"
    setting = "SELECT current_setting('memory_limit') AS m"
    with kpiengine.connect(url) as connection:
        assert connection.execute(setting)[1] == [("9.5 MiB",)]
        with caplog.at_level("WARNING", logger="kpiengine"):
            assert connection.execute(HUNGRY) == (["n"], [(5_000_000,)])
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 2, warnings  # 20MB is not enough either
        assert "more memory than 10MB" in warnings[0] and "with 20MB" in warnings[0]
        assert "more memory than 20MB" in warnings[1] and "80 % of RAM" in warnings[1]
        assert all("?memory_limit=" in w for w in warnings)
        # the same locked-down connection, with DuckDB's own limit, for the rest of the run
        assert connection.execute(setting)[1] not in ([("9.5 MiB",)], [("19.0 MiB",)])
        assert connection.execute("SELECT count(*) AS n FROM opportunities")[1][0][0] > 0
        locked = connection.execute(
            "SELECT current_setting('enable_external_access') AS a,"
            " current_setting('lock_configuration') AS b"
        )[1]
        assert locked == [(False, True)]


def test_the_default_limits_stay_bounded():
    """Definitions are untrusted: by default no statement may take the machine's memory."""
    from kpiengine.execute import duckdb_connector

    assert None not in duckdb_connector.WIDER_LIMITS


def test_out_of_memory_under_a_chosen_limit_is_an_error(tmp_path):
    url = make_duckdb(tmp_path / "w.duckdb", TABLES)
    with (
        kpiengine.connect(f"{url}?memory_limit=10MB") as connection,
        pytest.raises(EngineError, match=r"Out of Memory(.|\n)*memory_limit= in the connector URL"),
    ):
        connection.execute(HUNGRY)
