"""kpiengine Spark connector plugin: ``spark://local[2]?tables=/path/to/parquet/dir``.

Registered through the ``kpiengine`` entry-point group. Importing this module is cheap:
pyspark is imported only when a connection is opened.
"""

from __future__ import annotations

from typing import Any

from kpiengine.execute.connectors import ConnectorSpec
from kpiengine.hookspecs import hookimpl

__all__ = ["SparkConnection", "kpiengine_connectors", "open_spark"]


def open_spark(url: str) -> Any:
    from kpiengine_spark.connection import open_spark as _open

    return _open(url)


def __getattr__(name: str) -> Any:
    if name == "SparkConnection":
        from kpiengine_spark.connection import SparkConnection

        return SparkConnection
    raise AttributeError(name)


@hookimpl
def kpiengine_connectors() -> list[ConnectorSpec]:
    return [
        ConnectorSpec(
            "spark",
            "spark",
            open_spark,
            "Spark SQL (pyspark): spark://local[2]?tables=DIR, Parquet files or the catalog",
            plugin="kpiengine-spark",
        )
    ]
