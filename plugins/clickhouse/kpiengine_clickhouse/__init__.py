"""kpiengine plugin: ClickHouse through embedded chDB (no server).

- the ``chdb://`` connector (:mod:`.connection`): a folder of Parquet files or a chDB
  database, read-only, one checked query per call;
- the ``clickhouse`` dialect (:mod:`.dialect`): sqlglot's ClickHouse SQL plus the rules
  that make it give DuckDB's numbers, and ClickHouse's type names for ``kpi validate``;
- the ``chdb://`` sample writer: ``kpi sample-data --to chdb:///dir`` writes one
  ``<table>.parquet`` per table, which ``chdb:///dir`` reads.

Installed with ``pip install ./plugins/clickhouse``; found through the ``kpiengine``
entry-point group. Importing this module is cheap: chDB is imported only when a
connection is opened.
"""

from __future__ import annotations

from typing import Any

from kpiengine.compile.dialects import DialectSpec
from kpiengine.errors import UsageError
from kpiengine.execute.connectors import ConnectorSpec
from kpiengine.hookspecs import hookimpl

__version__ = "0.1.0"


def open_chdb(url: str) -> Any:
    from kpiengine_clickhouse.connection import open_chdb as open_connection

    return open_connection(url)


@hookimpl
def kpiengine_connectors() -> list[ConnectorSpec]:
    return [
        ConnectorSpec(
            "chdb",
            "clickhouse",
            open_chdb,
            "ClickHouse in the process (chDB): a folder of Parquet files or a chDB database,"
            " read-only",
            "clickhouse",
        )
    ]


#: ClickHouse type names (lower case, base name) → kpiengine's categories; wrappers
#: (Nullable, LowCardinality) are unwrapped to their argument.
TYPE_NAMES = {
    "uint8": "integer",
    "uint16": "integer",
    "uint32": "integer",
    "uint64": "integer",
    "uint128": "integer",
    "uint256": "integer",
    "int256": "integer",
    "float32": "number",
    "bfloat16": "number",
    "decimal32": "number",
    "decimal64": "number",
    "decimal128": "number",
    "decimal256": "number",
    "fixedstring": "string",
    "enum8": "string",
    "enum16": "string",
    "uuid": "string",
    "datetime64": "timestamp",
    "ipv4": "other",
    "ipv6": "other",
    "tuple": "nested",
    "nested": "nested",
    "nothing": "other",
}


@hookimpl
def kpiengine_dialects() -> list[DialectSpec]:
    return [
        DialectSpec(
            "clickhouse",
            sqlglot="clickhouse",
            rules="kpiengine_clickhouse.dialect",
            type_names=TYPE_NAMES,
            unwrap=("nullable", "lowcardinality"),
            description="ClickHouse (chDB): exact quantiles, DuckDB's ROUND, NULL joins",
            plugin="clickhouse",
        )
    ]


def open_sample_writer(url: str, replace: bool) -> Any:
    """``chdb:///dir``: the Parquet files writer of ``files:///dir``."""
    from kpiengine.sample.write import FilesWriter

    rest = url.partition("://")[2]
    if "?" in rest:
        raise UsageError(f"`{url}`: chdb:// URLs take no options (Parquet files only)")
    return FilesWriter(f"files://{rest}", replace)


@hookimpl
def kpiengine_sample_writers() -> list[Any]:
    from kpiengine.sample.write import SampleWriterSpec  # numpy, pyarrow: only when asked

    return [
        SampleWriterSpec(
            "chdb", open_sample_writer, "chDB: one <table>.parquet per table", "clickhouse"
        )
    ]
