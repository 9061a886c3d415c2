"""The kit's tiny datasets and the definition files that go with them.

Two small projects live here, each declared once for every user (the conformance kit,
the test suite, the benchmarks):

* :data:`DATASET` and :func:`project_files` — the conformance kit's ``deals`` /
  ``accounts`` / ``balances`` tables, typed Python values (dates, booleans, nulls) so that
  a connector author loads them into any engine; every expected number of
  :mod:`kpiengine.testing.cases` is worked out by hand from these rows.
* :data:`SALES_FILES` and :data:`SALES_TABLES` — the small sales project
  (``opportunities`` / ``accounts`` / ``spend``) the test suite and the benchmarks
  use; test_semantics.py's numbers are worked out by hand from its rows.

The two differ on purpose: the kit covers what a connector can get wrong (booleans,
snapshots, fiscal quarters, typed loading), the sales project what the language can get
wrong; changing either changes hand-computed numbers, so neither is derived from the
other. Nothing here imports pytest.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- the kit's dataset --------------------------------------------------------------------

#: Our column types → a portable SQL type name (PostgreSQL and DuckDB accept all of them).
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "integer": "INTEGER",
    "number": "DOUBLE PRECISION",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}


@dataclass(frozen=True)
class Table:
    """Rows with a schema. Values are Python objects: ``str``, ``int``, ``float``,
    ``bool``, ``datetime.date``, ``datetime.datetime`` (naive) or ``None``."""

    columns: tuple[tuple[str, str], ...]  # (name, kpiengine type)
    rows: tuple[tuple[Any, ...], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def create_sql(self, name: str, types: Mapping[str, str] = SQL_TYPES) -> str:
        """``CREATE TABLE name (col TYPE, ...)`` with ``types`` mapping our type names."""
        columns = ", ".join(f"{column} {types[kind]}" for column, kind in self.columns)
        return f"CREATE TABLE {name} ({columns})"

    def insert_sql(self, name: str, placeholder: str = "?") -> str:
        """``INSERT INTO name VALUES (?, ...)`` for ``executemany(sql, table.rows)``."""
        return f"INSERT INTO {name} VALUES ({', '.join([placeholder] * len(self.columns))})"

    def text_rows(self) -> list[tuple[Any, ...]]:
        """Rows as SQLite (or CSV) keeps them: ISO text for dates and times, 0/1 booleans."""
        return [tuple(_as_text(value) for value in row) for row in self.rows]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.names, row, strict=True)) for row in self.rows]

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (int64, float64, bool, date32, timestamp[us])."""
        import pyarrow as pa

        from kpiengine.loader.model import arrow_types

        kinds = arrow_types()
        schema = pa.schema([(name, kinds[kind]) for name, kind in self.columns])
        return pa.Table.from_pylist(self.to_dicts(), schema=schema)


def _as_text(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Dataset:
    """The kit's tables by name; :meth:`write_parquet` for engines that read files."""

    tables: Mapping[str, Table]

    def write_parquet(self, folder: Path) -> Path:
        """One ``<table>.parquet`` per table in ``folder`` (e.g. for Spark or files://)."""
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        for name, table in self.tables.items():
            pq.write_table(table.to_arrow(), folder / f"{name}.parquet")
        return folder


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# fmt: off
_DEAL_ROWS = (
    ("d1", "a1", "north", "won", 100.0, 1, True,
     _ts("2024-01-01 08:00:00"), _ts("2024-01-05 10:00:00")),
    ("d2", "a2", "north", "lost", 40.0, 2, False,
     _ts("2024-01-03 00:00:00"), _ts("2024-01-20 23:30:00")),
    ("d3", "a1", "south", "won", 250.0, 5, False,
     _ts("2024-01-10 00:00:00"), _ts("2024-02-14 09:00:00")),
    ("d4", "a3", "south", "won", None, 3, True,
     _ts("2024-02-01 00:00:00"), _ts("2024-02-28 12:00:00")),
    ("d5", "a2", None, "won", 60.0, 1, True,
     _ts("2024-02-10 00:00:00"), _ts("2024-04-02 00:00:00")),
    ("d6", "a4", "north", "lost", 10.0, 4, None,
     _ts("2024-03-01 00:00:00"), _ts("2024-04-15 00:00:00")),
    ("d7", "a3", "south", "won", 100.0, 2, False,
     _ts("2024-03-20 00:00:00"), _ts("2024-04-30 23:59:59")),
    ("d8", "a1", "north", "open", 500.0, 10, True,
     _ts("2024-04-01 00:00:00"), None),
)
# fmt: on


#: Rows of ``ticks``: more than 8 192, where ClickHouse's quantile() and Trino's
#: approx_percentile stop being exact; N - 1 = 10 000 puts the median and the 90th
#: percentile on a row, so neither needs interpolating.
TICKS_ROWS = 10_001


def _tick_rows() -> tuple[tuple[Any, ...], ...]:
    """``v`` = k² for k = 0 … 10 000, in a scrambled order (k = id × 7919 mod 10 001), so
    the median is 5 000² and the 90th percentile 9 000²; ``h`` = (id mod 10) + 0.5, exact
    binary halves (ROUND ties every engine sees as ties)."""
    january = _d("2024-01-01")
    return tuple(
        (
            i,
            january + dt.timedelta(days=i % 28),
            float((i * 7919 % TICKS_ROWS) ** 2),
            (i % 10) + 0.5,
        )
        for i in range(TICKS_ROWS)
    )


DATASET = Dataset(
    {
        "deals": Table(
            (
                ("id", "string"),
                ("account_id", "string"),
                ("region", "string"),
                ("stage", "string"),
                ("amount", "number"),
                ("seats", "integer"),
                ("is_new", "boolean"),
                ("created_at", "timestamp"),
                ("closed_at", "timestamp"),
            ),
            _DEAL_ROWS,
        ),
        "accounts": Table(
            (("account_id", "string"), ("segment", "string")),
            (("a1", "smb"), ("a2", "enterprise"), ("a3", "mid_market")),
        ),
        "balances": Table(
            (
                ("snapshot_date", "date"),
                ("account_id", "string"),
                ("region", "string"),
                ("mrr", "number"),
            ),
            (
                (_d("2024-01-01"), "a1", "north", 10.0),
                (_d("2024-01-01"), "a2", "north", 20.0),
                (_d("2024-01-31"), "a1", "north", 15.0),
                (_d("2024-01-31"), "a2", "north", 20.0),
                (_d("2024-01-31"), "a3", "south", 5.0),
                (_d("2024-02-29"), "a1", "north", 15.0),
                (_d("2024-02-29"), "a3", "south", 7.0),
                (_d("2024-04-30"), "a1", "north", 30.0),
                (_d("2024-04-30"), "a3", "south", 8.0),
                (_d("2024-04-30"), "a4", "north", None),
            ),
        ),
        "ticks": Table(
            (("id", "integer"), ("day", "date"), ("v", "number"), ("h", "number")),
            _tick_rows(),
        ),
    }
)

# -- the kit's definitions ----------------------------------------------------------------

_SOURCES = {
    "sources/deals.yaml": """
        source: deals
        table: {prefix}deals
        time: closed_at
        columns:
          id: {{type: string, key: true}}
          account_id: string
          region: string
          stage: string
          amount: number
          seats: integer
          is_new: boolean
          created_at: timestamp
          closed_at: timestamp
        joins:
          - source: accounts
            on: account_id
        """,
    "sources/accounts.yaml": """
        source: accounts
        table: {prefix}accounts
        columns:
          account_id: {{type: string, key: true}}
          segment: string
        """,
    "sources/ticks.yaml": """
        source: ticks
        table: {prefix}ticks
        time: day
        columns:
          id: {{type: integer, key: true}}
          day: date
          v: number
          h: number
        """,
    "sources/balances.yaml": """
        source: balances
        table: {prefix}balances
        time: snapshot_date
        columns:
          snapshot_date: date
          account_id: string
          region: string
          mrr: number
        """,
}

#: (name, expression, extra YAML keys) of every KPI over ``deals``.
_DEAL_KPIS: tuple[tuple[str, str, str], ...] = (
    ("deals_count", "count()", ""),
    ("amounts_counted", "count(amount)", ""),
    ("won", "count(where stage = 'won')", ""),
    ("closed", "count(where stage in ('won', 'lost'))", ""),
    ("win_rate", "count(where stage = 'won') / count(where stage in ('won', 'lost'))", ""),
    ("revenue", "sum(amount where stage = 'won')", ""),
    ("revenue_filled", "sum(amount where stage = 'won')", "fill_null: 0"),
    ("avg_amount", "avg(amount)", ""),
    ("min_amount", "min(amount)", ""),
    ("max_amount", "max(amount)", ""),
    ("median_amount", "median(amount)", ""),
    ("p75_amount", "percentile(amount, 0.75)", ""),
    ("accounts_won", "count_distinct(account_id where stage = 'won')", ""),
    ("seats_total", "sum(seats)", ""),
    ("new_deals", "count(where is_new)", ""),
    ("old_deals", "count(where not is_new)", ""),
    ("not_north", "count(where region != 'north')", ""),
    ("outside_north_east", "count(where region not in ('north', 'east'))", ""),
    ("no_region", "count(where region is null)", ""),
    ("unknown_region", "count(where coalesce(region, 'none') = 'none')", ""),
    ("north_upper", "count(where upper(region) = 'NORTH')", ""),
    ("big_deals", "count()", "filter: amount >= 50"),
    ("mid_deals", "count(where amount between 50 and 100)", ""),
    ("late_created", "count(where created_at >= date '2024-02-01')", ""),
    ("cycle_days", "avg(days_between(created_at, closed_at) where stage = 'won')", ""),
    ("by_zero", "sum(amount) / 0", ""),
    ("new_flag_sum", "sum(if(is_new, 1, 0))", ""),
    ("capped_seats", "sum(least(seats, 3))", ""),
    ("distance", "sum(abs(amount - 100))", ""),
    ("thirds", "sum(round(amount / 3, 2))", ""),
    ("smb_deals", "count(where accounts.segment = 'smb')", ""),
    ("created_deals", "count()", "time: created_at"),
)
_BALANCE_KPIS: tuple[tuple[str, str, str], ...] = (
    ("mrr_last", "sum(mrr)", "semi_additive: last"),
    ("mrr_first", "sum(mrr)", "semi_additive: first"),
    ("customers_last", "count()", "semi_additive: last"),
    ("mrr_plain", "sum(mrr)", ""),
)
_TICK_KPIS: tuple[tuple[str, str, str], ...] = (
    ("ticks_count", "count()", ""),
    ("ticks_median", "median(v)", ""),
    ("ticks_p90", "percentile(v, 0.9)", ""),
    ("ticks_round", "sum(round(h))", ""),
    ("ticks_round_negative", "sum(round(0 - h))", ""),
    ("ticks_round_2", "sum(round(h / 4, 2))", ""),
)
_DERIVED_KPIS: tuple[tuple[str, str], ...] = (
    ("avg_deal", "revenue / won"),
    ("prev_revenue", "previous(revenue)"),
    ("prev2_won", "previous(won, 2)"),
    ("revenue_growth", "growth(revenue_filled)"),
    ("revenue_3m", "rolling_sum(revenue, 3)"),
    ("revenue_avg_2m", "rolling_avg(revenue, 2)"),
    ("revenue_cum", "cumulative_sum(revenue)"),
    ("win_streak", "streak(won >= 1)"),
    ("arr", "mrr_last * 12"),
)


def project_files(fiscal_year_start: int = 1, schema: str | None = None) -> dict[str, str]:
    """The kit's definition files (path → YAML). ``schema`` qualifies the tables."""
    prefix = f"{schema}." if schema else ""
    files = {"kpiengine.yaml": f"project: conformance\nfiscal_year_start: {fiscal_year_start}\n"}
    for path, text in _SOURCES.items():
        files[path] = textwrap.dedent(text).lstrip("\n").format(prefix=prefix)
    entries = []
    for source, kpis in (
        ("deals", _DEAL_KPIS),
        ("balances", _BALANCE_KPIS),
        ("ticks", _TICK_KPIS),
    ):
        for name, expression, extra in kpis:
            entry = f"  - kpi: {name}\n    source: {source}\n    expression: {expression}\n"
            entries.append(entry + (f"    {extra}\n" if extra else ""))
    for name, expression in _DERIVED_KPIS:
        entries.append(f"  - kpi: {name}\n    expression: {expression}\n")
    files["kpis.yaml"] = "kpis:\n" + "".join(entries)
    return files


def write_project(folder: Path, fiscal_year_start: int = 1, schema: str | None = None) -> Path:
    """Write :func:`project_files` under ``folder`` (a project for :func:`kpiengine.load`)."""
    return write_files(folder, project_files(fiscal_year_start, schema))


# -- the small sales project (tests and benchmarks) ---------------------------------------
# Tables as (column DDL, rows), rows as SQL literals would give them (ISO text for dates
# and timestamps), which is how tests/conftest.py's make_duckdb / make_sqlite load them.

SalesTable = tuple[str, list[tuple[Any, ...]]]

OPPORTUNITIES: SalesTable = (
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
ACCOUNTS: SalesTable = (
    "account_id VARCHAR, segment VARCHAR",
    [("a1", "smb"), ("a2", "enterprise"), ("a3", "mid_market")],
)
SPEND: SalesTable = (
    "month DATE, amount DOUBLE",
    [("2024-01-01", 1000.0), ("2024-03-01", 600.0), ("2024-03-15", 300.0), ("2024-05-01", 50.0)],
)
#: Table name → (column DDL, rows) of the sales project.
SALES_TABLES: dict[str, SalesTable] = {
    "opportunities": OPPORTUNITIES,
    "accounts": ACCOUNTS,
    "spend": SPEND,
}


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


#: The sales project's sources (and project file), without KPIs: for tests and benchmarks
#: that bring their own KPIs over the same tables.
SALES_SOURCES: dict[str, str] = {
    "kpiengine.yaml": "project: tiny\n",
    "sources/opportunities.yaml": _yaml(
        """
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
        """
    ),
    "sources/accounts.yaml": _yaml(
        """
        source: accounts
        table: accounts
        columns:
          account_id: {type: string, key: true}
          segment: string
        """
    ),
    "sources/spend.yaml": _yaml(
        """
        source: spend
        table: spend
        time: month
        columns:
          month: date
          amount: number
        """
    ),
}

#: The whole sales project: path → YAML text.
SALES_FILES: dict[str, str] = {
    **SALES_SOURCES,
    "kpis/sales.yaml": _yaml(
        """
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
        """
    ),
}


def write_files(folder: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (path → text, dedented) under ``folder``; returns ``folder``."""
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_yaml(text), encoding="utf-8")
    return folder
