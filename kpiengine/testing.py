"""Conformance kit for connector authors: same definitions, same numbers, on your engine.

A connector plugin passes when a fixed set of KPIs over a tiny fixed dataset gives the
numbers written below — worked out by hand from the rows, not computed by kpiengine — and
when its connection keeps the contract (``dialect``, ``execute``, ``columns``, ``close``,
read-only). Every aggregate, ``where``, ``filter``, the null rules, each grain with an
empty period, a fiscal quarter, a join dimension, ``--where``, derived KPIs, the time
functions and ``semi_additive`` snapshots are covered.

Use it from pytest (the class is not collected itself: its name does not start with
``Test``)::

    from kpiengine.testing import ConnectorConformance, Dataset

    class TestMyDbConformance(ConnectorConformance):
        def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
            # create dataset.tables in your engine; return a connector URL for it
            ...
            return "mydb://localhost/kit"

Or without pytest: ``problems = run_conformance(url)`` after loading :data:`DATASET`.

Dataset (closed_at decides the period; ``d8`` is still open, so it is in no period when a
range is given)::

    id  account region stage amount seats is_new created_at        closed_at
    d1  a1      north  won     100    1   true   2024-01-01 08:00  2024-01-05 10:00
    d2  a2      north  lost     40    2   false  2024-01-03 00:00  2024-01-20 23:30
    d3  a1      south  won     250    5   false  2024-01-10 00:00  2024-02-14 09:00
    d4  a3      south  won    null    3   true   2024-02-01 00:00  2024-02-28 12:00
    d5  a2      null   won      60    1   true   2024-02-10 00:00  2024-04-02 00:00
    d6  a4      north  lost     10    4   null   2024-03-01 00:00  2024-04-15 00:00
    d7  a3      south  won     100    2   false  2024-03-20 00:00  2024-04-30 23:59:59
    d8  a1      north  open    500   10   true   2024-04-01 00:00  null

    accounts: a1 smb, a2 enterprise, a3 mid_market (a4 has no account row)
    balances (snapshot_date, account, region, mrr): 2024-01-01 a1 north 10, a2 north 20;
      2024-01-31 a1 north 15, a2 north 20, a3 south 5; 2024-02-29 a1 north 15, a3 south 7;
      2024-04-30 a1 north 30, a3 south 8, a4 north null
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CANARY",
    "CASES",
    "DATASET",
    "PROBES",
    "SQL_TYPES",
    "Case",
    "ConnectorConformance",
    "Dataset",
    "Probe",
    "Table",
    "case_problems",
    "contract_problems",
    "project_files",
    "run_conformance",
    "write_project",
]

# -- the dataset --------------------------------------------------------------------------

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

        kinds = {
            "string": pa.string(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "boolean": pa.bool_(),
            "date": pa.date32(),
            "timestamp": pa.timestamp("us"),
        }
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
    }
)

# -- the definitions ----------------------------------------------------------------------

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
    for source, kpis in (("deals", _DEAL_KPIS), ("balances", _BALANCE_KPIS)):
        for name, expression, extra in kpis:
            entry = f"  - kpi: {name}\n    source: {source}\n    expression: {expression}\n"
            entries.append(entry + (f"    {extra}\n" if extra else ""))
    for name, expression in _DERIVED_KPIS:
        entries.append(f"  - kpi: {name}\n    expression: {expression}\n")
    files["kpis.yaml"] = "kpis:\n" + "".join(entries)
    return files


def write_project(folder: Path, fiscal_year_start: int = 1, schema: str | None = None) -> Path:
    for name, text in project_files(fiscal_year_start, schema).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


# -- the cases ----------------------------------------------------------------------------

Values = Sequence[float | int | None]


@dataclass(frozen=True)
class Case:
    """KPIs run over one request, and the expected value per period.

    ``values`` maps a KPI name (no ``by``) or ``(kpi, *dimension values)`` to one value
    per period of ``periods`` (ISO dates; ``None`` for grain ``all``).
    """

    id: str
    about: str
    grain: str
    periods: tuple[str | None, ...]
    values: Mapping[str | tuple[Any, ...], Values]
    start: str | None = None
    end: str | None = None
    by: tuple[str, ...] = ()
    where: str | None = None
    fiscal_year_start: int = 1

    @property
    def kpis(self) -> list[str]:
        names = (key if isinstance(key, str) else key[0] for key in self.values)
        return list(dict.fromkeys(names))

    def expected(self) -> dict[tuple[Any, ...], Any]:
        """(period, kpi, *dimension values) → value."""
        found: dict[tuple[Any, ...], Any] = {}
        for key, values in self.values.items():
            kpi, dims = (key, ()) if isinstance(key, str) else (key[0], tuple(key[1:]))
            if len(values) != len(self.periods):
                raise ValueError(f"case {self.id}: {key} needs one value per period")
            for period, value in zip(self.periods, values, strict=True):
                found[(period, kpi, *dims)] = value
        return found


_MONTHS = ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01")
_JAN_TO_MAY = {"start": "2024-01-01", "end": "2024-06-01"}
_YEAR_2024 = {"start": "2024-01-01", "end": "2025-01-01"}
_H1 = {"start": "2024-01-01", "end": "2024-07-01"}
N = None  # short for an expected null

CASES: tuple[Case, ...] = (
    Case(
        "month-aggregates",
        "every aggregate by month, March and May empty (counts 0, the rest null)",
        "month",
        _MONTHS,
        {
            "deals_count": [2, 2, 0, 3, 0],
            "amounts_counted": [2, 1, 0, 3, 0],  # d4's null amount is not counted
            "won": [1, 2, 0, 2, 0],
            "closed": [2, 2, 0, 3, 0],
            "revenue": [100, 250, N, 160, N],  # 250 + null; 60 + 100
            "avg_amount": [70, 250, N, 170 / 3, N],
            "min_amount": [40, 250, N, 10, N],
            "max_amount": [100, 250, N, 100, N],
            "median_amount": [70, 250, N, 60, N],  # (40 + 100) / 2; middle of 10, 60, 100
            "p75_amount": [85, 250, N, 80, N],  # 40 + 0.75 × 60; 60 + 0.5 × 40
            "accounts_won": [1, 2, 0, 2, 0],  # {a1}; {a1, a3}; {a2, a3}
            "seats_total": [3, 8, N, 7, N],
            "cycle_days": [4, 31, N, 46.5, N],  # 4; (35 + 27) / 2; (52 + 41) / 2
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-conditions-and-nulls",
        "where, filter, booleans, comparisons with null, row functions, x / 0",
        "month",
        _MONTHS,
        {
            "win_rate": [0.5, 1.0, N, 2 / 3, N],  # 0 / 0 is null
            "new_deals": [1, 1, 0, 1, 0],
            "old_deals": [1, 1, 0, 1, 0],  # `not null` is not true: d6 is in neither
            "not_north": [0, 2, 0, 1, 0],  # `!=` drops d5's null region
            "outside_north_east": [0, 2, 0, 1, 0],  # so does `not in`
            "no_region": [0, 0, 0, 1, 0],
            "unknown_region": [0, 0, 0, 1, 0],
            "north_upper": [2, 0, 0, 1, 0],
            "big_deals": [1, 1, 0, 2, 0],  # filter amount >= 50 drops the null amount
            "mid_deals": [1, 0, 0, 2, 0],  # between is inclusive: 100 and 60, 100
            "late_created": [0, 1, 0, 3, 0],  # timestamp >= date: d4 created at midnight
            "by_zero": [N, N, N, N, N],
            "new_flag_sum": [1, 1, N, 1, N],  # if(null, 1, 0) is 0
            "capped_seats": [3, 6, N, 6, N],  # 1 + 2; 3 + 3; 1 + 3 + 2
            "distance": [60, 150, N, 130, N],  # 0 + 60; 150; 40 + 90 + 0
            "thirds": [46.66, 83.33, N, 56.66, N],  # 33.33 + 13.33; 83.33; 20 + 3.33 + 33.33
            "smb_deals": [1, 1, 0, 0, 0],  # a condition on a joined column
            "revenue_filled": [100, 250, 0, 160, 0],
            "created_deals": [3, 2, 2, 1, 0],  # by created_at instead of closed_at
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-derived-and-time-functions",
        "derived KPIs and time functions, looking back before the range",
        "month",
        _MONTHS,
        {
            "avg_deal": [100, 125, N, 80, N],
            "prev_revenue": [N, 100, 250, N, 160],
            "prev2_won": [0, 0, 1, 2, 0],  # November and December 2023 had 0 won
            "revenue_growth": [N, 1.5, -1, N, -1],  # growth from 0 is x / 0: null
            "revenue_3m": [100, 350, 350, 410, 160],  # windows skip nulls
            "revenue_avg_2m": [100, 175, 250, 160, 160],
            "revenue_cum": [100, 350, 350, 510, 510],
            "win_streak": [1, 2, 0, 1, 0],
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-history-before-range",
        "a range starting in March: cumulative_sum and previous still see January",
        "month",
        _MONTHS[2:],
        {
            "deals_count": [0, 3, 0],
            "revenue_cum": [350, 510, 510],
            "prev_revenue": [250, N, 160],
            "prev2_won": [1, 2, 0],
            "revenue_3m": [350, 410, 160],
            "win_streak": [0, 1, 0],
        },
        start="2024-03-01",
        end="2024-06-01",
    ),
    Case(
        "month-semi-additive",
        "snapshot balances: last / first snapshot of each month, March without one",
        "month",
        _MONTHS,
        {
            "mrr_last": [40, 22, N, 38, N],  # 15 + 20 + 5 on Jan 31; 30 + 8 + null
            "mrr_first": [30, 22, N, 38, N],  # 10 + 20 on Jan 1
            "customers_last": [3, 2, 0, 3, 0],
            "mrr_plain": [70, 22, N, 38, N],  # without semi_additive every row adds up
            "arr": [480, 264, N, 456, N],
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "week",
        "Monday weeks; d2 closes on Saturday 20 January at 23:30",
        "week",
        ("2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"),
        {"deals_count": [1, 0, 1, 0], "revenue": [100, N, N, N]},
        start="2024-01-01",
        end="2024-01-29",
    ),
    Case(
        "day",
        "days, with a timestamp late in the evening",
        "day",
        ("2024-01-19", "2024-01-20", "2024-01-21"),
        {"deals_count": [0, 1, 0], "closed": [0, 1, 0]},
        start="2024-01-19",
        end="2024-01-22",
    ),
    Case(
        "calendar-quarter",
        "quarters of a calendar year",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            "deals_count": [4, 3],
            "revenue": [350, 160],
            "mrr_last": [22, 38],  # Q1's last snapshot is Feb 29
            "mrr_first": [30, 38],
            "mrr_plain": [92, 38],
        },
        **_H1,
    ),
    Case(
        "fiscal-quarter",
        "fiscal year starting in February: quarters Nov-Jan, Feb-Apr, May-Jul",
        "quarter",
        ("2023-11-01", "2024-02-01", "2024-05-01"),
        {
            "deals_count": [2, 5, 0],
            "revenue": [100, 410, N],
            "median_amount": [70, 80, N],  # (60 + 100) / 2 of 10, 60, 100, 250
            "mrr_last": [40, 38, N],
            "mrr_first": [30, 22, N],
            "revenue_cum": [100, 510, 510],
            "prev_revenue": [N, 100, 410],
        },
        start="2023-11-01",
        end="2024-08-01",
        fiscal_year_start=2,
    ),
    Case(
        "year",
        "one calendar year",
        "year",
        ("2024-01-01",),
        {
            "deals_count": [7],
            "revenue": [510],
            "avg_amount": [560 / 6],
            "median_amount": [80],  # (60 + 100) / 2 of 10, 40, 60, 100, 100, 250
            "p75_amount": [100],  # position 3.75 between 100 and 100
            "accounts_won": [3],
            "win_rate": [5 / 7],
            "cycle_days": [31.8],  # (4 + 35 + 27 + 52 + 41) / 5
            "seats_total": [18],
            "not_north": [3],
            "created_deals": [8],
            "mrr_last": [38],
            "mrr_first": [30],
            "customers_last": [3],
        },
        **_YEAR_2024,
    ),
    Case(
        "all-without-range",
        "grain all without a range counts every row, the open deal d8 too",
        "all",
        (None,),
        {
            "deals_count": [8],
            "amounts_counted": [7],
            "won": [5],
            "revenue": [510],
            "max_amount": [500],
            "seats_total": [28],
            "late_created": [5],
            "mrr_last": [38],
        },
    ),
    Case(
        "by-joined-dimension",
        "grouped by a column of a joined source; a4 has no account: a null group",
        "all",
        (None,),
        {
            ("deals_count", "enterprise"): [2],
            ("deals_count", "mid_market"): [2],
            ("deals_count", "smb"): [2],
            ("deals_count", None): [1],
            ("revenue", "enterprise"): [60],
            ("revenue", "mid_market"): [100],
            ("revenue", "smb"): [350],
            ("revenue", None): [N],
            ("win_rate", "enterprise"): [0.5],
            ("win_rate", "mid_market"): [1.0],
            ("win_rate", "smb"): [1.0],
            ("win_rate", None): [0.0],
        },
        by=("accounts.segment",),
        **_YEAR_2024,
    ),
    Case(
        "by-region-quarter",
        "every quarter × every region seen in the range, null region included",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            ("won", "north"): [1, 0],
            ("won", "south"): [2, 1],
            ("won", None): [0, 1],
            ("win_rate", "north"): [0.5, 0.0],
            ("win_rate", "south"): [1.0, 1.0],
            ("win_rate", None): [N, 1.0],
            ("revenue", "north"): [100, N],
            ("revenue", "south"): [250, 100],
            ("revenue", None): [N, 60],
            ("prev_revenue", "north"): [N, 100],
            ("prev_revenue", "south"): [N, 250],
            ("prev_revenue", None): [N, N],
        },
        by=("region",),
        **_H1,
    ),
    Case(
        "semi-additive-by-region",
        "one snapshot time for all regions: south is absent on Jan 1",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            ("mrr_last", "north"): [15, 30],
            ("mrr_last", "south"): [7, 8],
            ("mrr_first", "north"): [30, 30],
            ("mrr_first", "south"): [N, 8],
            ("customers_last", "north"): [1, 2],
            ("customers_last", "south"): [1, 1],
        },
        by=("region",),
        **_H1,
    ),
    Case(
        "where-on-joined-dimension",
        "a --where filter over a joined column, applied to every source KPI",
        "all",
        (None,),
        {"deals_count": [2], "won": [2], "revenue": [350], "avg_deal": [175]},
        where="accounts.segment = 'smb'",
        **_YEAR_2024,
    ),
)

# -- checking -----------------------------------------------------------------------------

REL_TOL = 1e-9


def _same(got: Any, want: Any) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(float(got), float(want), rel_tol=REL_TOL, abs_tol=1e-12)


def case_problems(project: Any, connection: Any, case: Case) -> list[str]:
    """Differences between what ``project.run`` gives on ``connection`` and the case."""
    result = project.run(
        case.kpis,
        connection,
        grain=case.grain,
        start=case.start,
        end=case.end,
        by=case.by,
        where=case.where,
    )
    got: dict[tuple[Any, ...], Any] = {}
    for row in result.rows:
        period = row.period.isoformat() if row.period is not None else None
        got[(period, row.kpi, *(value for _, value in row.dimensions))] = row.value
    want = case.expected()
    problems = []
    for key, value in want.items():
        if key not in got:
            problems.append(f"missing row {_key_text(key)} (expected {value!r})")
        elif not _same(got[key], value):
            problems.append(f"{_key_text(key)}: got {got[key]!r}, expected {value!r}")
    problems.extend(f"unexpected row {_key_text(k)} = {got[k]!r}" for k in got if k not in want)
    if problems:
        problems.insert(0, f"case {case.id} ({case.about}):")
    return problems


def _key_text(key: tuple[Any, ...]) -> str:
    period, kpi, *dims = key
    where = f" [{', '.join(map(repr, dims))}]" if dims else ""
    return f"{kpi} {period or 'all'}{where}"


def contract_problems(connection: Any, project: Any, schema: str | None = None) -> list[str]:
    """The connection contract: dialect, execute, columns, errors, types, read-only."""
    from kpiengine.compile.dialects import DIALECTS
    from kpiengine.errors import EngineError
    from kpiengine.execute.warehouse_check import check_warehouse

    prefix = f"{schema}." if schema else ""
    problems: list[str] = []
    dialect = getattr(connection, "dialect", None)
    if dialect not in DIALECTS:
        problems.append(f"dialect {dialect!r} is not one of kpiengine's: {', '.join(DIALECTS)}")
    try:
        names, rows = connection.execute("SELECT 1 AS one")
        if list(names) != ["one"] or [tuple(r) for r in rows] != [(1,)]:
            problems.append(f"execute('SELECT 1 AS one') gave {names!r}, {rows!r}")
    except Exception as error:
        problems.append(f"execute('SELECT 1 AS one') raised {error!r}")
    try:
        connection.execute(f"SELECT * FROM {prefix}kpi_conformance_no_such_table")
        problems.append("a query on a missing table did not raise")
    except EngineError:
        pass
    except Exception as error:
        problems.append(f"a failing query must raise kpiengine.errors.EngineError, not {error!r}")
    for name, table in DATASET.tables.items():
        columns = connection.columns(f"{prefix}{name}")
        if not columns:
            problems.append(f"columns({prefix}{name!r}) found no table")
        elif sorted(c.lower() for c in columns) != sorted(table.names):
            problems.append(f"columns({prefix}{name!r}) gave {sorted(columns)}")
        elif not all(isinstance(kind, str) for kind in columns.values()):
            problems.append(f"columns({prefix}{name!r}) must map names to type names (str)")
    missing = connection.columns(f"{prefix}kpi_conformance_no_such_table")
    if missing is not None:
        problems.append(f"columns() of a missing table must be None, got {missing!r}")
    problems.extend(f"introspection: {d}" for d in check_warehouse(project.model, connection))
    return problems


@dataclass(frozen=True)
class Probe:
    """A statement a read-only connection must refuse with EngineError.

    ``sql`` is a template: ``{prefix}`` is the schema prefix of the kit's tables,
    ``{folder}`` a scratch folder outside the warehouse (nothing may appear in it) and
    ``{canary}`` a file in it that no statement may read.
    """

    id: str
    sql: str
    kind: str = "write"  # "write" (or run code) | "read" (outside the warehouse)

    def text(self, prefix: str, folder: Path) -> str:
        return self.sql.format(prefix=prefix, folder=folder, canary=folder / CANARY)


#: The file every read probe aims at, and what it holds.
CANARY = "kpi_canary.csv"
_CANARY_TEXT = "secret\nkpi-canary-7f3a91\n"

#: Writes, file output, code execution and reads outside the warehouse, in the SQL of
#: the engines kpiengine meets (DuckDB, SQLite, PostgreSQL, Spark, MySQL, ClickHouse):
#: whatever the engine, each must raise EngineError.
PROBES: tuple[Probe, ...] = (
    Probe("create-table", "CREATE TABLE {prefix}kpi_conformance_probe (a INTEGER)"),
    Probe("insert", "INSERT INTO {prefix}accounts SELECT * FROM {prefix}accounts WHERE 1 = 0"),
    Probe("update", "UPDATE {prefix}accounts SET segment = segment WHERE 1 = 0"),
    Probe("delete", "DELETE FROM {prefix}accounts WHERE 1 = 0"),
    Probe("drop-table", "DROP TABLE {prefix}accounts"),
    Probe("create-temp-table", "CREATE TEMP TABLE kpi_conformance_temp (a INTEGER)"),
    Probe("create-temp-as", "CREATE TEMPORARY TABLE kpi_conformance_temp2 AS SELECT 1 AS a"),
    Probe("select-into-table", "SELECT 1 AS a INTO kpi_conformance_into"),
    Probe(
        "writing-cte",
        "WITH gone AS (DELETE FROM {prefix}accounts WHERE 1 = 0 RETURNING *)"
        " SELECT COUNT(*) FROM gone",
    ),
    Probe("select-for-update", "SELECT * FROM {prefix}accounts FOR UPDATE"),
    Probe("copy-query-to-file", "COPY (SELECT 1 AS a) TO '{folder}/copy.csv'"),
    Probe("copy-table-to-file", "COPY {prefix}accounts TO '{folder}/accounts.csv'"),
    Probe("copy-to-program", "COPY (SELECT 1 AS a) TO PROGRAM 'touch {folder}/program'"),
    Probe("export-database", "EXPORT DATABASE '{folder}/export'"),
    Probe("attach", "ATTACH '{folder}/attached.db' AS kpi_probe"),
    Probe("attach-read-write", "ATTACH '{folder}/attached_rw.duckdb' AS kpi_probe_rw (READ_WRITE)"),
    Probe("vacuum-into", "VACUUM INTO '{folder}/vacuum.db'"),
    Probe("insert-into-function", "INSERT INTO FUNCTION file('{folder}/f.csv') SELECT 1"),
    Probe("select-into-outfile", "SELECT 1 INTO OUTFILE '{folder}/outfile.csv'"),
    Probe("insert-overwrite-directory", "INSERT OVERWRITE DIRECTORY '{folder}/dir' SELECT 1"),
    Probe("two-statements", "SELECT 1; CREATE TABLE {prefix}kpi_conformance_two (a INTEGER)"),
    Probe("commit-then-write", "COMMIT; DROP TABLE {prefix}accounts"),
    Probe("set", "SET TimeZone = 'UTC'"),
    Probe("set-external-access", "SET enable_external_access = true"),
    Probe("pragma", "PRAGMA user_version = 7"),
    Probe("install-extension", "INSTALL kpi_no_such_extension"),
    Probe("load-extension", "LOAD httpfs"),
    Probe("sqlite-load-extension", "SELECT load_extension('{folder}/lib')"),
    Probe("path-as-table", "SELECT * FROM '{canary}'", "read"),
    Probe("read-csv", "SELECT * FROM read_csv('{canary}')", "read"),
    Probe("read-text", "SELECT * FROM read_text('{canary}')", "read"),
    Probe("glob", "SELECT * FROM glob('{folder}/*')", "read"),
    Probe("http-url", "SELECT * FROM read_csv('http://127.0.0.1:9/kpi.csv')", "read"),
    Probe("pg-read-file", "SELECT pg_read_file('{canary}')", "read"),
    Probe("spark-file-query", "SELECT * FROM csv.`{canary}`", "read"),
    Probe("spark-reflect", "SELECT reflect('java.lang.System', 'getProperty', 'user.dir')"),
)


def read_only_problems(
    connection: Any,
    schema: str | None = None,
    watch: Sequence[Path] = (),
    probes: Sequence[Probe] = PROBES,
) -> list[str]:
    """Every probe must fail with EngineError and leave the data and the file system as
    they were: the rows of the kit's tables, the bytes of every file under ``watch``
    (e.g. the database file), and an empty scratch folder (but for the canary)."""
    import tempfile

    prefix = f"{schema}." if schema else ""
    problems: list[str] = []
    before = _table_checksums(connection, prefix, problems)
    files_before = _file_checksums(watch)
    folder = Path(tempfile.mkdtemp(prefix="kpi-probe-")).resolve()
    try:
        (folder / CANARY).write_text(_CANARY_TEXT, encoding="utf-8")
        for probe in probes:
            problems.extend(_probe_problems(connection, probe.text(prefix, folder), probe))
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        if left != [CANARY]:
            created = ", ".join(p for p in left if p != CANARY)
            problems.append(f"the probes created files: {created}")
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    after = _table_checksums(connection, prefix, problems)
    problems.extend(
        f"{name} changed under the probes" for name in before if before[name] != after.get(name)
    )
    files_after = _file_checksums(watch)
    problems.extend(
        f"{path} changed under the probes"
        for path in sorted(set(files_before) | set(files_after))
        if files_before.get(path) != files_after.get(path)
    )
    return problems


def _probe_problems(connection: Any, sql: str, probe: Probe) -> list[str]:
    from kpiengine.errors import EngineError

    try:
        connection.execute(sql)
    except EngineError:
        return []
    except Exception as error:
        return [f"{sql} must raise EngineError, not {error!r}"]
    what = "a write was accepted" if probe.kind == "write" else "a read outside was accepted"
    return [f"{what}: {sql}"]


def _table_checksums(connection: Any, prefix: str, problems: list[str]) -> dict[str, str]:
    """Table → a digest of its rows (in a stable order), read through the connection."""
    import hashlib

    sums: dict[str, str] = {}
    for name in DATASET.tables:
        try:
            _, rows = connection.execute(f"SELECT * FROM {prefix}{name}")
        except Exception as error:
            problems.append(f"reading {prefix}{name} around the probes failed: {error!r}")
            continue
        text = "\n".join(sorted(repr(tuple(row)) for row in rows))
        sums[f"table {prefix}{name}"] = hashlib.sha256(text.encode()).hexdigest()
    return sums


def _file_checksums(watch: Sequence[Path]) -> dict[str, str]:
    import hashlib

    sums: dict[str, str] = {}
    for root in watch:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def run_conformance(
    url: str,
    workdir: Path,
    schema: str | None = None,
    open: Callable[[str], Any] | None = None,
    skip: Sequence[str] = (),
) -> list[str]:
    """Everything the pytest class checks, as a list of problems (empty: conformant).

    ``url`` must point at an engine already holding :data:`DATASET`; ``open`` defaults
    to :func:`kpiengine.connect`; ``skip`` lists case ids not to run.
    """
    import kpiengine

    connect = open or kpiengine.connect
    projects = _projects(workdir, schema)
    problems: list[str] = []
    with connect(url) as connection:
        problems.extend(contract_problems(connection, projects[1], schema))
        for case in CASES:
            if case.id in skip:
                continue
            try:
                problems.extend(case_problems(projects[case.fiscal_year_start], connection, case))
            except Exception as error:
                problems.append(f"case {case.id} raised {error!r}")
        problems.extend(read_only_problems(connection, schema, watch=[workdir]))
    return problems


def _projects(workdir: Path, schema: str | None) -> dict[int, Any]:
    import kpiengine

    years = sorted({case.fiscal_year_start for case in CASES})
    return {
        year: kpiengine.load(write_project(workdir / f"definitions-fy{year}", year, schema))
        for year in years
    }


# -- the pytest base class ----------------------------------------------------------------


@dataclass
class _Loaded:
    url: str
    workdir: Path
    connection: Any
    projects: dict[int, Any] = field(default_factory=dict)


class ConnectorConformance:
    """Subclass as ``TestSomething(ConnectorConformance)`` and implement
    :meth:`load_dataset`; pytest then runs every case and contract check against your
    connector. The dataset is loaded once per class."""

    #: Schema (or database) the tables live in, when your engine needs one: the kit's
    #: definitions then say ``table: <schema>.deals``.
    schema: str | None = None
    #: Case id → why it fails on this engine for now. Such a case is expected to fail
    #: (strict xfail): once it passes, the test fails until the entry is removed.
    known_failures: Mapping[str, str] = {}

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        """Create ``dataset.tables`` in your engine and return a connector URL for them.

        ``workdir`` is an empty temporary folder (for database files, Parquet files...).
        """
        raise NotImplementedError("implement load_dataset() in your conformance test class")

    def open(self, url: str) -> Any:
        """Open a connection; by default through the installed plugins, as users do."""
        import kpiengine

        return kpiengine.connect(url)

    @pytest.fixture(scope="class")
    @classmethod
    def conformance(cls, tmp_path_factory: pytest.TempPathFactory) -> Any:
        kit = cls()
        workdir = tmp_path_factory.mktemp("kpi-conformance")
        url = kit.load_dataset(DATASET, workdir)
        connection = kit.open(url)
        loaded = _Loaded(url, workdir, connection, _projects(workdir, cls.schema))
        yield loaded
        connection.close()

    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    def test_kpis(self, conformance: _Loaded, case: Case, request: pytest.FixtureRequest) -> None:
        if case.id in self.known_failures:
            reason = self.known_failures[case.id]
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
        project = conformance.projects[case.fiscal_year_start]
        problems = case_problems(project, conformance.connection, case)
        assert not problems, "\n".join(problems)

    def test_connection_contract(self, conformance: _Loaded) -> None:
        problems = contract_problems(conformance.connection, conformance.projects[1], self.schema)
        assert not problems, "\n".join(problems)

    def test_read_only(self, conformance: _Loaded) -> None:
        problems = read_only_problems(
            conformance.connection, self.schema, watch=[conformance.workdir]
        )
        assert not problems, "\n".join(problems)

    def test_close(self, conformance: _Loaded) -> None:
        """A second connection opens, works in ``with`` and closes; the first still works."""
        with self.open(conformance.url) as other:
            assert [tuple(r) for r in other.execute("SELECT 2 AS two")[1]] == [(2,)]
        _, rows = conformance.connection.execute("SELECT 3 AS three")
        assert [tuple(r) for r in rows] == [(3,)], "closing one connection broke another"
