"""``kpi init [DIR] [--connector URL]``: a starter project that validates clean (SPEC §13.9).

Without a connector: a project file, one example source (``orders``), two example KPIs
and one example test, enough to see the layout and run ``kpi validate`` and ``kpi test``.
With a connector: one source file per table of the connection's current schema, its
columns and types read from the engine (only columns of a type kpiengine knows, with a
name it can use), one example KPI (a row count) per table that has a date or timestamp
column, and one example test.

Nothing existing is overwritten: a folder that already holds definitions is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kpiengine.errors import UsageError
from kpiengine.loader.model import COLUMN_TYPES

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KNOWN = COLUMN_TYPES  # the column types a source may declare
_TABLES_QUERY = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
    "AND name NOT LIKE 'sqlite_%' ORDER BY name",
}
_DEFAULT_TABLES_QUERY = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() ORDER BY table_name"
)


@dataclass(frozen=True)
class Table:
    """A table as introspected: its name, and its usable columns with kpiengine types."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def time(self) -> str | None:
        for wanted in ("timestamp", "date"):
            for column, kind in self.columns:
                if kind == wanted:
                    return column
        return None


STARTER_FILES = {
    "kpiengine.yaml": """\
# The project file (docs/getting-started.md). `connector:` is where `kpi run` reads data,
# relative to this folder, e.g. files:///data (a folder of CSV files) or
# duckdb:///warehouse.duckdb.
project: {project}
""",
    "sources/orders.yaml": """\
# A source: one table of the warehouse, its columns and their types.
source: orders
description: One row per order.
table: orders
time: ordered_at
columns:
  order_id: {type: integer, key: true}
  customer_id: integer
  status: {type: string, values: [paid, refunded]}
  amount: {type: number, unit: currency}
  ordered_at: timestamp
""",
    "kpis/orders.yaml": """\
# KPIs over the orders source: aggregates in the expression language (docs/language.md).
kpis:
  - kpi: orders
    title: Orders
    description: Number of orders placed in the period.
    owner: analytics
    unit: count
    source: orders
    expression: count()

  - kpi: revenue
    title: Revenue
    description: Amount of the paid orders placed in the period.
    owner: analytics
    unit: currency
    source: orders
    expression: sum(amount where status = 'paid')
""",
    "tests/revenue.yaml": """\
# A unit test (docs/testing-kpis.md): rows in, expected values out. Run it: kpi test
test: revenue_counts_paid_orders_only
given:
  orders:
    - {order_id: 1, status: paid, amount: 100, ordered_at: 2024-01-05}
    - {order_id: 2, status: refunded, amount: 40, ordered_at: 2024-01-09}
    - {order_id: 3, status: paid, amount: 60, ordered_at: 2024-02-02}
run: {grain: month, from: 2024-01-01, to: 2024-03-01}
expect:
  - {period: 2024-01-01, orders: 2, revenue: 100}
  - {period: 2024-02-01, orders: 1, revenue: 60}
""",
}


def init_project(folder: Path, url: str | None = None) -> list[Path]:
    """Write the starter project into ``folder``; the files written."""
    _refuse_existing(folder)
    project = _project_name(folder)
    if url is None:
        files = dict(STARTER_FILES)
        files["kpiengine.yaml"] = files["kpiengine.yaml"].format(project=project)
    else:
        files = _from_connection(folder, url, project)
    written = []
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _refuse_existing(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"`{folder}` is a file; give a folder for the new project")
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                raise UsageError(
                    f"`{folder}` already holds definitions ({path.relative_to(folder)}); "
                    "kpi init writes a new project into an empty or new folder"
                )


def _project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", folder.resolve().name.lower()).strip("-")
    return name or "kpis"


def _connector_for_file(url: str, folder: Path) -> str:
    """The URL as the project file holds it: a relative path is relative to the project
    folder there, not to the working directory; a password is never written."""
    scheme, sep, rest = url.partition(":///")
    if sep and scheme in ("duckdb", "sqlite", "files") and rest and not rest.startswith("/"):
        path, query_sep, query = rest.partition("?")
        relative = os.path.relpath(Path(path).resolve(), folder.resolve())
        return f"{scheme}:///{Path(relative).as_posix()}{query_sep}{query}"
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1@", url)


def introspect(url: str) -> list[Table]:
    """The tables of the connection's current schema and their usable columns."""
    from kpiengine.api import connect
    from kpiengine.execute.warehouse_check import engine_type

    tables: list[Table] = []
    with connect(url) as connection:
        query = _TABLES_QUERY.get(connection.dialect, _DEFAULT_TABLES_QUERY)
        _, rows = connection.execute(query)
        for (name,) in rows:
            if not _TABLE.match(str(name)):
                continue
            found = connection.columns(str(name)) or {}
            columns = tuple(
                (column, kind)
                for column, type_name in found.items()
                if _NAME.match(column)
                and (kind := engine_type(type_name, connection.dialect)) in _KNOWN
            )
            if columns:
                tables.append(Table(str(name), columns))
    return tables


def _source_name(table: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", table.lower()).strip("_")
    return name if _NAME.match(name) else f"t_{name}"


def _from_connection(folder: Path, url: str, project: str) -> dict[str, str]:
    tables = introspect(url)
    if not tables:
        raise UsageError(
            "the connection has no tables with columns kpiengine can use; check the URL "
            "(for a folder of CSV files: files:///path/to/folder)"
        )
    files = {
        "kpiengine.yaml": f"# The project file (docs/getting-started.md).\nproject: {project}\n"
        f"connector: {_connector_for_file(url, folder)}\n"
    }
    example: tuple[Table, str] | None = None
    for table in tables:
        source = _source_name(table.name)
        lines = [
            f"# Written by kpi init from the table `{table.name}`: check the types,",
            "# describe the columns, add joins (docs/getting-started.md).",
            f"source: {source}",
            f"description: One row per {source} record.",
            f"table: {table.name}",
        ]
        if table.time:
            lines.append(f"time: {table.time}")
        lines.append("columns:")
        lines.extend(f"  {column}: {kind}" for column, kind in table.columns)
        if not table.time:
            lines.insert(2, "# No date or timestamp column: KPIs need one (`time:`) to be")
            lines.insert(3, "# put in periods; this source can still be joined to (joins:).")
        files[f"sources/{source}.yaml"] = "\n".join(lines) + "\n"
        if not table.time:
            continue
        kpi = f"{source}_rows" if source != "rows" else "row_count"
        files[f"kpis/{source}.yaml"] = (
            f"# An example KPI over `{source}`; change the expression to what you measure.\n"
            f"kpi: {kpi}\n"
            f"title: {source.replace('_', ' ').capitalize()} rows\n"
            f"description: Number of rows of {table.name} in the period, by {table.time}.\n"
            "owner: analytics\nunit: count\n"
            f"source: {source}\nexpression: count()\n"
        )
        if example is None:
            example = (table, kpi)
    if example is not None:
        table, kpi = example
        source = _source_name(table.name)
        files["tests/example.yaml"] = (
            "# A unit test (docs/testing-kpis.md): rows in, expected values out.\n"
            f"test: {kpi}_counts_rows_per_month\n"
            "given:\n"
            f"  {source}:\n"
            f"    - {{{table.time}: 2024-01-05}}\n"
            f"    - {{{table.time}: 2024-01-20}}\n"
            f"    - {{{table.time}: 2024-02-01}}\n"
            "run: {grain: month, from: 2024-01-01, to: 2024-03-01}\n"
            "expect:\n"
            f"  - {{period: 2024-01-01, {kpi}: 2}}\n"
            f"  - {{period: 2024-02-01, {kpi}: 1}}\n"
        )
    return files
