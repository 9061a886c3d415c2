"""The MySQL / MariaDB connection: one checked query per call, in a READ ONLY transaction.

URL: ``mysql://user[:password]@host[:port]/database`` (``mariadb://`` too; port 3306 by
default; user, password and database %-decoded). The password never appears in an
error message.

Each session sets, when it opens: ``SESSION TRANSACTION READ ONLY`` (every transaction
is read-only), ``time_zone = '+00:00'`` (timestamps as written) and
``div_precision_increment = 30`` (AVG of integers and decimal division keep 30 digits,
not 4: AVG of 2, 3, 3 is 2.666..., not 2.6667). The server's ``sql_mode`` is kept:
sqlglot's MySQL output quotes names with backticks and escapes backslashes in strings,
as MySQL's default mode reads them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from typing import Any
from urllib.parse import unquote, urlsplit

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import ClosingConnection, redact_url
from kpiengine_mysql.guard import check_query

CONNECT_TIMEOUT = 10
_SESSION = (
    "SET SESSION TRANSACTION READ ONLY",
    "SET time_zone = '+00:00'",
    "SET div_precision_increment = 30",
)


class MySQLConnection(ClosingConnection):
    """Runs each checked query alone in ``START TRANSACTION READ ONLY``, then rolls back."""

    dialect = "mysql"

    def __init__(self, connection: Any, where: str) -> None:
        self._connection = connection
        self.where = where

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        check_query(sql)  # one plain query, or refused before anything is sent
        return self._run(sql)

    def columns(self, table: str) -> dict[str, str] | None:
        """Columns of ``table`` (current database) or ``database.table``, from
        information_schema, with MySQL's type names (``int``, ``varchar``, ``double``)."""
        schema, _, name = table.rpartition(".")
        _, rows = self._run(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = COALESCE(NULLIF(%s, ''), DATABASE()) AND table_name = %s"
            " ORDER BY ordinal_position",
            (schema, name),
        )
        return {str(column): str(kind) for column, kind in rows} or None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.close()

    def _run(
        self, sql: str, args: tuple[Any, ...] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        import pymysql

        try:
            with self._connection.cursor() as cursor:
                cursor.execute("START TRANSACTION READ ONLY")
                cursor.execute(sql, args)
                names = [d[0] for d in cursor.description or []]
                rows = [tuple(_python(v) for v in row) for row in cursor.fetchall()]
        except pymysql.Error as error:
            self._end()
            raise statement_error(error, self.where) from None
        self._end()
        return names, rows

    def _end(self) -> None:
        import pymysql

        with contextlib.suppress(pymysql.Error):
            self._connection.rollback()


def _python(value: Any) -> Any:
    """Numbers as DuckDB gives them: a DECIMAL is an int when whole, else a float."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.timedelta):  # TIME: seconds, not a duration object
        return value.total_seconds()
    return value


def statement_error(error: Exception, where: str) -> EngineError:
    code = error.args[0] if error.args else None
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    if code == 1146:  # ER_NO_SUCH_TABLE
        return EngineError(
            f"MySQL ({where}): {text}. Check the source's `table:` (it may be"
            " database-qualified, e.g. crm.opportunities) and that this user can see it."
        )
    if code in (1792, 1142, 1044, 1227):  # read-only transaction, no privilege
        return EngineError(f"MySQL ({where}): refused, kpiengine only reads ({text})")
    if code in (2006, 2013):
        return EngineError(f"MySQL ({where}): lost the connection: {text}")
    return EngineError(f"MySQL ({where}): {redact_url(text)}")


def open_mysql(url: str) -> MySQLConnection:
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in ("mysql", "mariadb"):
        raise UsageError(f"`{redact_url(url)}` is not a mysql:// URL")
    try:
        parts = urlsplit(url)
        port = parts.port or 3306
    except ValueError as error:
        raise UsageError(f"`{redact_url(url)}` is not a valid MySQL URL: {error}") from None
    if parts.query:
        raise UsageError(f"`{redact_url(url)}`: mysql:// URLs take no options")
    host = parts.hostname or "localhost"
    user = unquote(parts.username or "")
    database = unquote(parts.path.lstrip("/"))
    where = f"{user}@{host}:{port}/{database}"
    try:
        import pymysql
    except ImportError as error:  # pragma: no cover - PyMySQL is a dependency
        raise EngineError(
            f"the MySQL connector needs PyMySQL: pip install PyMySQL ({error})"
        ) from None
    try:
        connection = pymysql.connect(
            host=host,
            port=port,
            user=user,
            password=unquote(parts.password or ""),
            database=database or None,
            connect_timeout=CONNECT_TIMEOUT,
            autocommit=False,
            charset="utf8mb4",
            client_flag=0,  # no MULTI_STATEMENTS: the server takes one statement per call
        )
    except pymysql.Error as error:
        raise connection_error(error, where) from None
    try:
        with connection.cursor() as cursor:
            for statement in _SESSION:
                cursor.execute(statement)
    except pymysql.Error as error:
        connection.close()
        raise statement_error(error, where) from None
    return MySQLConnection(connection, where)


def connection_error(error: Exception, where: str) -> EngineError:
    code = error.args[0] if error.args else None
    text = str(error.args[1]) if len(error.args) > 1 else str(error)
    if code == 2003:
        return EngineError(
            f"cannot connect to MySQL at {where}: {text}. Is the server running and"
            " accepting TCP connections on that host and port?"
        )
    if code == 1045:
        return EngineError(f"MySQL at {where} refused the credentials (access denied).")
    if code == 1049:
        return EngineError(f"MySQL at {where}: the database does not exist.")
    return EngineError(f"cannot connect to MySQL at {where}: {redact_url(text)}")
