"""Shared fixtures: tiny projects written to a temp folder and tiny DuckDB warehouses."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def make_duckdb(path: Path, tables: Mapping[str, tuple[str, Sequence[Sequence[Any]]]]) -> str:
    """Create a DuckDB file: table → (column DDL, rows). Returns its connector URL."""
    import duckdb

    connection = duckdb.connect(str(path))
    for name, (ddl, rows) in tables.items():
        connection.execute(f"CREATE TABLE {name} ({ddl})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(f"INSERT INTO {name} VALUES ({marks})", list(rows))
    connection.close()
    return f"duckdb:///{path}"


def make_sqlite(path: Path, tables: Mapping[str, tuple[str, Sequence[Sequence[Any]]]]) -> str:
    """The same tables in SQLite: dates and timestamps as ISO text, as SQLite stores them."""
    import sqlite3

    types = {
        "VARCHAR": "TEXT",
        "DOUBLE": "REAL",
        "TIMESTAMP": "TEXT",
        "DATE": "TEXT",
        "INTEGER": "INTEGER",
        "BOOLEAN": "INTEGER",
    }
    connection = sqlite3.connect(path)
    for name, (ddl, rows) in tables.items():
        columns = []
        for part in ddl.split(","):
            column, kind = part.split()
            columns.append(f"{column} {types[kind.upper()]}")
        connection.execute(f"CREATE TABLE {name} ({', '.join(columns)})")
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(f"INSERT INTO {name} VALUES ({marks})", list(rows))
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


ENGINES = {"duckdb": (make_duckdb, "w.duckdb"), "sqlite": (make_sqlite, "w.db")}


def engine_url(engine: str, folder: Path, tables: Mapping[str, Any]) -> str:
    make, name = ENGINES[engine]
    return make(folder / name, tables)


@pytest.fixture
def project_dir(tmp_path: Path) -> Callable[[Mapping[str, str]], Path]:
    def build(files: Mapping[str, str]) -> Path:
        return write_files(tmp_path / "defs", files)

    return build


# -- the shared tiny sales dataset ------------------------------------------------------
# Every expected number in test_semantics.py is computed by hand from these rows.

OPPORTUNITIES = (
    "id VARCHAR, account_id VARCHAR, region VARCHAR, stage VARCHAR, amount DOUBLE, "
    "created_at TIMESTAMP, closed_at TIMESTAMP",
    [
        ("o1", "a1", "emea", "won", 100.0, "2024-01-02 09:00:00", "2024-01-10 10:00:00"),
        ("o2", "a2", "emea", "lost", 50.0, "2024-01-05 00:00:00", "2024-01-25 12:00:00"),
        ("o3", "a1", "apac", "won", 200.0, "2024-02-01 00:00:00", "2024-03-05 08:00:00"),
        ("o4", "a3", "apac", "won", None, "2024-02-10 00:00:00", "2024-03-20 00:00:00"),
        ("o5", "a4", "emea", "lost", 30.0, "2024-03-01 00:00:00", "2024-03-31 23:00:00"),
        ("o6", "a2", None, "won", 70.0, "2024-03-15 00:00:00", "2024-04-02 00:00:00"),
        ("o7", "a1", "emea", "open", 500.0, "2024-04-01 00:00:00", None),
        ("o8", "a3", "internal", "won", 10.0, "2024-01-01 00:00:00", "2024-01-15 00:00:00"),
    ],
)
ACCOUNTS = (
    "account_id VARCHAR, segment VARCHAR",
    [("a1", "smb"), ("a2", "enterprise"), ("a3", "mid_market")],
)
SPEND = (
    "month DATE, amount DOUBLE",
    [("2024-01-01", 1000.0), ("2024-03-01", 600.0), ("2024-03-15", 300.0), ("2024-05-01", 50.0)],
)

SALES_FILES = {
    "kpiengine.yaml": """
        project: tiny
        """,
    "sources/opportunities.yaml": """
        source: opportunities
        table: opportunities
        time: closed_at
        columns:
          id: {type: string, key: true}
          account_id: string
          region: string
          stage: {type: string, values: [open, won, lost]}
          amount: {type: number, unit: currency}
          created_at: timestamp
          closed_at: timestamp
        joins:
          - source: accounts
            on: account_id
        """,
    "sources/accounts.yaml": """
        source: accounts
        table: accounts
        columns:
          account_id: {type: string, key: true}
          segment: string
        """,
    "sources/spend.yaml": """
        source: spend
        table: spend
        time: month
        columns:
          month: date
          amount: number
        """,
    "kpis/sales.yaml": """
        kpis:
          - kpi: won_count
            source: opportunities
            expression: count(where stage = 'won')
          - kpi: closed_count
            source: opportunities
            expression: count(where stage in ('won', 'lost'))
          - kpi: win_rate
            source: opportunities
            expression: count(where stage = 'won') / count(where stage in ('won', 'lost'))
            unit: percent
            dimensions: [region, accounts.segment]
          - kpi: revenue
            source: opportunities
            expression: sum(amount where stage = 'won')
            unit: currency
          - kpi: avg_won
            source: opportunities
            expression: avg(amount where stage = 'won')
          - kpi: deals
            source: opportunities
            expression: count()
          - kpi: amounts_counted
            source: opportunities
            expression: count(amount)
          - kpi: accounts_won
            source: opportunities
            expression: count_distinct(account_id where stage = 'won')
          - kpi: min_amount
            source: opportunities
            expression: min(amount)
          - kpi: max_amount
            source: opportunities
            expression: max(amount)
          - kpi: median_amount
            source: opportunities
            expression: median(amount)
          - kpi: p90_amount
            source: opportunities
            expression: percentile(amount, 0.9)
          - kpi: external_deals
            source: opportunities
            expression: count()
            filter: region != 'internal'
          - kpi: cycle_days
            source: opportunities
            expression: avg(days_between(created_at, closed_at) where stage = 'won')
            unit: days
          - kpi: big_deals
            source: opportunities
            expression: sum(if(amount > 60, 1, 0))
          - kpi: not_apac
            source: opportunities
            expression: count(where region not in ('apac'))
          - kpi: by_zero
            source: opportunities
            expression: sum(amount) / 0
          - kpi: mod_zero
            source: opportunities
            expression: count() % 0
          - kpi: created_deals
            source: opportunities
            time: created_at
            expression: count()
          - kpi: avg_deal
            expression: revenue / won_count
          - kpi: spend
            source: spend
            expression: sum(amount)
          - kpi: spend_filled
            source: spend
            expression: sum(amount)
            fill_null: 0
          - kpi: cost_per_deal
            expression: spend / deals
        """,
}


@pytest.fixture(params=sorted(ENGINES))
def sales(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, Any]:
    """(project, open connection) over the tiny sales dataset, on each embedded engine."""
    import kpiengine

    root = write_files(tmp_path / "defs", SALES_FILES)
    url = engine_url(
        request.param,
        tmp_path,
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    project = kpiengine.load(root)
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()
