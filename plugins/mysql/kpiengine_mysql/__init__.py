"""kpiengine plugin: the ``mysql://`` connector (MySQL and MariaDB), PyMySQL.

Installed with ``pip install ./plugins/mysql``; found through the ``kpiengine``
entry-point group. The SQL is compiled for kpiengine's built-in ``mysql`` dialect.
Importing this module is cheap: PyMySQL is imported only when a connection is opened.
"""

from __future__ import annotations

from typing import Any

from kpiengine.execute.connectors import ConnectorSpec
from kpiengine.hookspecs import hookimpl

__version__ = "0.1.0"


def open_mysql(url: str) -> Any:
    from kpiengine_mysql.connection import open_mysql as open_connection

    return open_connection(url)


_DESCRIPTION = "MySQL / MariaDB server (read-only transactions, one query per call)"


@hookimpl
def kpiengine_connectors() -> list[ConnectorSpec]:
    return [
        ConnectorSpec("mysql", "mysql", open_mysql, _DESCRIPTION, "mysql"),
        ConnectorSpec("mariadb", "mysql", open_mysql, _DESCRIPTION, "mysql"),
    ]
