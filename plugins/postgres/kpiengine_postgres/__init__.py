"""kpiengine plugin: the ``postgresql://`` (and ``postgres://``) connector, psycopg 3.

Installed with ``pip install ./plugins/postgres``; found through the ``kpiengine``
entry-point group. Importing this module is cheap: psycopg is imported only when a
connection is opened.
"""

from __future__ import annotations

from typing import Any

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
