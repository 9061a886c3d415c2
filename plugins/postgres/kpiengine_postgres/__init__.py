"""kpiengine plugin: the ``postgresql://`` (and ``postgres://``) connector and sample-data
writer (``kpi sample-data --to postgresql://...``), psycopg 3.

Installed with ``pip install ./plugins/postgres``; found through the ``kpiengine``
entry-point group. Importing this module is cheap: psycopg is imported only when a
connection or a sample writer is opened.
"""

from __future__ import annotations

from typing import Any

from kpiengine.errors import UsageError
from kpiengine.execute.connectors import ConnectorSpec
from kpiengine.hookspecs import hookimpl

__version__ = "0.1.0"


def open_postgres(url: str) -> Any:
    from kpiengine_postgres.connection import open_postgres as open_connection

    return open_connection(url)


_DESCRIPTION = "PostgreSQL server (read-only transactions; ?statement_timeout=5min)"


@hookimpl
def kpiengine_connectors() -> list[ConnectorSpec]:
    return [
        ConnectorSpec("postgresql", "postgres", open_postgres, _DESCRIPTION, "postgres"),
        ConnectorSpec("postgres", "postgres", open_postgres, _DESCRIPTION, "postgres"),
    ]


def open_sample_writer(url: str, replace: bool) -> Any:
    """The COPY writer of :mod:`kpiengine_postgres.sample_writer`, imported on use."""
    try:
        from kpiengine_postgres.sample_writer import PostgresWriter
    except ImportError as error:
        raise UsageError(
            f"writing to PostgreSQL needs the kpiengine-postgres plugin ({error}):"
            " pip install ./plugins/postgres"
        ) from None
    return PostgresWriter(url, replace)


_WRITER = "PostgreSQL server: one transaction, COPY in CSV"


@hookimpl
def kpiengine_sample_writers() -> list[Any]:
    from kpiengine.sample.write import SampleWriterSpec  # numpy, pyarrow: only when asked

    return [
        SampleWriterSpec("postgresql", open_sample_writer, _WRITER, "postgres"),
        SampleWriterSpec("postgres", open_sample_writer, _WRITER, "postgres"),
    ]
