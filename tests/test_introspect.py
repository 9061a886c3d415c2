"""Warehouse introspection (``kpi validate --connector``): tables, columns and types the
definitions declare but the warehouse lacks, reported at the definition's line."""

from __future__ import annotations

from pathlib import Path

import pytest

import kpiengine
from kpiengine import api
from kpiengine.diagnostics import CODES, has_errors
from kpiengine.execute.warehouse_check import accepts, check_warehouse, engine_type, sources_in_use
from kpiengine.render.diagnostic_formats.text import render_one
from tests.conftest import make_duckdb, make_sqlite, write_files

FILES = {
    "kpiengine.yaml": "project: introspect\n",
    # line numbers matter below
    "sources/orders.yaml": """
        source: orders
        description: One row per order.
        table: orders
        time: ordered_at
        columns:
          id: {type: string, key: true}
          amount: number
          quantity: integer
          ordered_at: timestamp
          channel: string
          is_gift: boolean
          customer_id: string
        joins:
          - source: customers
            on: customer_id
        """,
    "sources/customers.yaml": """
        source: customers
        table: customers_v2   # renamed in the warehouse
        columns:
          customer_id: {type: string, key: true}
          segment: string
        """,
    "sources/unused.yaml": """
        source: unused
        table: not_in_the_warehouse_either
        columns:
          day: date
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount)
        """,
}
# amount is text, ordered_at an integer, channel missing, customers_v2 missing;
# `unused` is used by no KPI, so its missing table is not reported.
WAREHOUSE = {
    "orders": (
        "id VARCHAR, amount VARCHAR, quantity INTEGER, ordered_at INTEGER, "
        "is_gift BOOLEAN, customer_id VARCHAR",
        [],
    ),
}
EXPECTED = [
    ("KPI502", "sources/customers.yaml", 2),
    ("KPI504", "sources/orders.yaml", 7),
    ("KPI504", "sources/orders.yaml", 9),
    ("KPI503", "sources/orders.yaml", 10),
]
# SQLite gets TEXT, INTEGER, REAL for these (tests.conftest.make_sqlite), and keeps
# booleans as INTEGER and times as TEXT, which introspection accepts there.
ENGINES = {"duckdb": (make_duckdb, "w.duckdb"), "sqlite": (make_sqlite, "w.db")}


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def _check(tmp_path: Path, engine: str, files=FILES, tables=WAREHOUSE):
    root = write_files(tmp_path / "defs", files)
    model, diagnostics = api.load_and_check(root)
    assert not has_errors(diagnostics), diagnostics  # the definitions themselves are fine
    make, name = ENGINES[engine]
    with kpiengine.connect(make(tmp_path / name, tables)) as connection:
        return model, check_warehouse(model, connection)


def _where(model, diagnostics) -> list[tuple[str, str, int]]:
    root = str(model.root)
    return [
        (d.code, str(Path(d.span.file).relative_to(root)), d.span.line)  # type: ignore[union-attr]
        for d in diagnostics
    ]


def test_missing_table_column_and_wrong_types_at_their_lines(tmp_path, engine):
    model, found = _check(tmp_path, engine)
    assert _where(model, found) == EXPECTED


def test_messages_and_hints(tmp_path, engine):
    _, found = _check(tmp_path, engine)
    table, amount, ordered_at, channel = found
    assert table.message == (
        "table `customers_v2` of source `customers` does not exist in the warehouse"
    )
    assert "schema" in (table.hint or "")
    assert (table.span.col, table.span.end_col) == (8, 20)  # the value of `table:`
    text = "VARCHAR" if engine == "duckdb" else "TEXT"
    assert amount.message == (
        f"column `amount` of source `orders` is declared number, but the warehouse type "
        f"{text} is text"
    )
    assert amount.hint == "declare it `string`, or convert the column in a view"
    assert ordered_at.message.endswith(
        "is declared timestamp, but the warehouse type INTEGER is an integer"
    )
    assert channel.message == "column `channel` of source `orders` is not in table `orders`"
    assert channel.hint is not None and "customer_id" in channel.hint


def test_diagnostics_render_with_the_line_and_a_caret(tmp_path, engine):
    model, found = _check(tmp_path, engine)
    text = "\n".join(render_one(d, model.texts) for d in found)
    assert "sources/orders.yaml:7:3: " in text
    assert "  amount: number" in text
    assert "^" in text


def test_codes_are_registered():
    for code in ("KPI502", "KPI503", "KPI504"):
        assert code in CODES


def test_a_matching_warehouse_gives_nothing(tmp_path, engine):
    tables = {
        "orders": (
            "id VARCHAR, amount DOUBLE, quantity INTEGER, ordered_at TIMESTAMP, "
            "is_gift BOOLEAN, customer_id VARCHAR, channel VARCHAR",
            [],
        ),
        "customers_v2": ("customer_id VARCHAR, segment VARCHAR", []),
    }
    _, found = _check(tmp_path, engine, tables=tables)
    assert found == []


def test_only_sources_in_use_and_their_joins_are_checked(tmp_path):
    model, _ = api.load_and_check(write_files(tmp_path / "defs", FILES))
    assert [s.name for s in sources_in_use(model)] == ["customers", "orders"]


class _Fake:
    """A connection that only answers ``columns``."""

    def __init__(self, dialect: str, tables: dict[str, dict[str, str]] | Exception) -> None:
        self.dialect = dialect
        self.tables = tables

    def columns(self, table: str) -> dict[str, str] | None:
        if isinstance(self.tables, Exception):
            raise self.tables
        return self.tables.get(table)


ORDERS_PG = {
    "id": "text",
    "Amount": "numeric",
    "quantity": "integer",
    "ordered_at": "timestamp without time zone",
    "channel": "character varying",
    "is_gift": "boolean",
    "customer_id": "text",
}


def test_case_of_names_matters_only_where_the_engine_says_so(tmp_path):
    model, _ = api.load_and_check(write_files(tmp_path / "defs", FILES))
    tables = {"orders": ORDERS_PG, "customers_v2": {"customer_id": "text", "segment": "text"}}
    assert check_warehouse(model, _Fake("duckdb", tables)) == []
    found = check_warehouse(model, _Fake("postgres", tables))
    assert [(d.code, d.message) for d in found] == [
        ("KPI503", "column `amount` of source `orders` is not in table `orders`")
    ]
    assert found[0].hint == "did you mean `Amount`?"


def test_a_connector_that_fails_is_a_finding_not_a_crash(tmp_path):
    model, _ = api.load_and_check(write_files(tmp_path / "defs", FILES))
    found = check_warehouse(model, _Fake("duckdb", RuntimeError("permission denied")))
    assert {d.code for d in found} == {"KPI501"}
    assert "permission denied" in found[0].message


@pytest.mark.parametrize(
    ("type_name", "dialect", "category"),
    [
        # DuckDB
        ("VARCHAR", "duckdb", "string"),
        ("BIGINT", "duckdb", "integer"),
        ("HUGEINT", "duckdb", "integer"),
        ("DECIMAL(18,3)", "duckdb", "number"),
        ("DOUBLE", "duckdb", "number"),
        ("TIMESTAMP WITH TIME ZONE", "duckdb", "timestamp"),
        ("TIMESTAMP_NS", "duckdb", "timestamp"),
        ("DATE", "duckdb", "date"),
        ("BOOLEAN", "duckdb", "boolean"),
        ("INTEGER[]", "duckdb", "nested"),
        ("STRUCT(a INTEGER)", "duckdb", "nested"),
        ("BLOB", "duckdb", "binary"),
        ("INTERVAL", "duckdb", "other"),
        ("UUID", "duckdb", "unknown"),
        # SQLite: declared type names, and its affinity rules for the others
        ("TEXT", "sqlite", "string"),
        ("INTEGER", "sqlite", "integer"),
        ("REAL", "sqlite", "number"),
        ("DATETIME", "sqlite", "timestamp"),
        ("NVARCHAR(40)", "sqlite", "string"),
        ("UNSIGNED BIG INT", "sqlite", "integer"),
        ("FLOATING POINT", "sqlite", "integer"),  # "INT" wins, as SQLite's own rules say
        ("", "sqlite", "unknown"),
        # PostgreSQL (information_schema.columns.data_type)
        ("character varying", "postgres", "string"),
        ("double precision", "postgres", "number"),
        ("numeric", "postgres", "number"),
        ("timestamp without time zone", "postgres", "timestamp"),
        ("timestamp with time zone", "postgres", "timestamp"),
        ("time without time zone", "postgres", "time"),
        ("ARRAY", "postgres", "nested"),
        ("jsonb", "postgres", "nested"),
        ("bytea", "postgres", "binary"),
        ("USER-DEFINED", "postgres", "unknown"),
        # Spark (DataType.simpleString)
        ("string", "spark", "string"),
        ("int", "spark", "integer"),
        ("bigint", "spark", "integer"),
        ("decimal(10,2)", "spark", "number"),
        ("timestamp_ntz", "spark", "timestamp"),
        ("array<int>", "spark", "nested"),
        ("map<string,int>", "spark", "nested"),
        ("varchar(10)", "spark", "string"),
    ],
)
def test_engine_type_names(type_name, dialect, category):
    assert engine_type(type_name, dialect) == category


@pytest.mark.parametrize(
    ("declared", "category", "dialect", "ok"),
    [
        ("number", "integer", "duckdb", True),
        ("integer", "number", "duckdb", True),
        ("number", "string", "duckdb", False),
        ("timestamp", "date", "postgres", True),
        ("date", "timestamp", "spark", True),
        ("timestamp", "integer", "sqlite", False),
        ("timestamp", "string", "sqlite", True),  # SQLite keeps times as ISO text
        ("timestamp", "string", "postgres", False),
        ("boolean", "integer", "sqlite", True),
        ("boolean", "integer", "duckdb", False),
        ("string", "nested", "duckdb", False),
        ("string", "unknown", "duckdb", True),  # never reported: we cannot tell
    ],
)
def test_accepts(declared, category, dialect, ok):
    assert accepts(declared, category, dialect) is ok


def test_kpi_validate_with_a_connector(tmp_path, engine, capsys):
    import json

    from kpiengine.cli import main

    root = write_files(tmp_path / "defs", FILES)
    make, name = ENGINES[engine]
    url = make(tmp_path / name, WAREHOUSE)
    code = main(["validate", str(root), "--connector", url, "--format", "json"])
    found = json.loads(capsys.readouterr().out)["diagnostics"]
    errors = [
        (d["code"], str(Path(d["file"]).relative_to(root)), d["line"])
        for d in found
        if d["severity"] == "error"
    ]
    assert errors == EXPECTED
    assert code == 1
