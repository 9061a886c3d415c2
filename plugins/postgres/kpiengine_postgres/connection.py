"""The PostgreSQL connection: every statement in a READ ONLY transaction, errors explained.

URL: ``postgresql://user[:password]@host[:port]/database[?option=value...]`` (libpq URI;
``postgres://`` is accepted too). libpq options pass through (``sslmode``,
``connect_timeout``, ``options=-csearch_path%3Dcrm`` ...); one option is ours:

- ``statement_timeout``: how long one statement may run before the server cancels it, in
  PostgreSQL's units (``500ms``, ``30s``, ``5min``, ``1h``; a bare number is milliseconds;
  ``0`` disables it). Default: ``$KPI_STATEMENT_TIMEOUT``, else ``5min``.
- ``jit``: ``off`` (default) or ``on``. PostgreSQL's JIT compiles the expressions of a
  statement whose estimated cost is high; kpiengine's one wide statement has hundreds of
  them, and compiling them took 7.6 s for a catalog statement that runs in 0.07 s
  without JIT (26 s against 5 s over 7M rows).

Each session also sets ``standard_conforming_strings = on`` (a backslash in a string
literal is a plain character, as sqlglot writes literals) and
``default_transaction_read_only = on``.

A password may also come from ``PGPASSWORD`` or ``~/.pgpass``, as with psql. It never
appears in an error message.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any
from urllib.parse import unquote

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import ClosingConnection, redact_url
from kpiengine_postgres.guard import check_query

DEFAULT_STATEMENT_TIMEOUT = "5min"
TIMEOUT_ENV = "KPI_STATEMENT_TIMEOUT"
DEFAULT_CONNECT_TIMEOUT = "10"
_TIMEOUT = re.compile(r"^\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*$")
_SCHEMES = ("postgresql", "postgres")


class Target:
    """Where a URL points, for messages: ``user@host:port/database`` (never the password)."""

    def __init__(self, conninfo: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(conninfo)
        except Exception as error:  # psycopg.ProgrammingError: libpq could not parse it
            raise UsageError(f"not a valid PostgreSQL URL: {_first_line(error)}") from None
        self.host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        if "@" in self.host:  # libpq splits at the first `@`: the rest of a password
            raise UsageError(  # would show up as the host name
                "not a valid PostgreSQL URL: an `@` in the user name or password must be"
                " percent-encoded as %40"
            )
        self.port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.user = str(params.get("user") or os.environ.get("PGUSER") or _login_name())
        self.database = str(params.get("dbname") or os.environ.get("PGDATABASE") or self.user)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.user}@{self.address}/{self.database}"


def split_url(url: str) -> tuple[str, str]:
    """(libpq URI without our own options, statement timeout); see :func:`parse_url`."""
    conninfo, settings = parse_url(url)
    return conninfo, settings["statement_timeout"]


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """(libpq URI without our own options, session settings: statement_timeout, jit)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise UsageError(f"`{_redact(url)}` is not a postgresql:// URL")
    base, _, query = rest.partition("?")
    timeout: str | None = None
    jit = "off"
    options: list[str] = []  # libpq's, passed on exactly as written (%XX-encoded)
    given = set()
    for part in query.split("&") if query else []:
        key, _, raw = part.partition("=")
        value = unquote(raw)
        if key == "statement_timeout":
            timeout = value
        elif key == "jit":
            jit = value.strip().lower()
            if jit not in ("on", "off"):
                raise UsageError(f"jit={value} in `{_redact(url)}`: use jit=on or jit=off")
        else:
            options.append(part)
            given.add(key)
    if "connect_timeout" not in given:
        options.append(f"connect_timeout={DEFAULT_CONNECT_TIMEOUT}")
    if "application_name" not in given:
        options.append("application_name=kpiengine")
    if timeout is None:
        timeout = os.environ.get(TIMEOUT_ENV) or DEFAULT_STATEMENT_TIMEOUT
        origin = f"${TIMEOUT_ENV}" if os.environ.get(TIMEOUT_ENV) else "default"
    else:
        origin = "statement_timeout in the URL"
    if not _TIMEOUT.match(timeout):
        raise UsageError(
            f"statement timeout `{timeout}` ({origin}) is not a duration: use e.g. 500ms, 30s,"
            " 5min, 1h (a bare number is milliseconds, 0 disables it)"
        )
    settings = {"statement_timeout": timeout.strip().replace(" ", ""), "jit": jit}
    return f"postgresql://{base}?{'&'.join(options)}", settings


class PostgresConnection(ClosingConnection):
    """Runs each statement alone in a READ ONLY transaction, then ends it; a statement
    that is not one plain query is refused before it is sent (:mod:`.guard`)."""

    dialect = "postgres"

    def __init__(self, connection: Any, target: Target, timeout: str) -> None:
        self._connection = connection
        self.target = target
        self.statement_timeout = timeout

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        check_query(sql)  # one plain query, or refused before anything is sent
        try:
            # prepared: the extended protocol takes one statement only, so the text
            # cannot end the READ ONLY transaction (`COMMIT; ...`) and go on outside it
            with self._connection.cursor() as cursor:
                cursor.execute(sql.encode(), prepare=True)
                rows = cursor.fetchall() if cursor.description is not None else []
                names = [d.name for d in cursor.description or []]
        except psycopg.Error as error:
            self._end()
            raise statement_error(error, self.target, self.statement_timeout) from None
        self._end()
        return names, rows

    def columns(self, table: str) -> dict[str, str] | None:
        """Columns of ``table`` or ``schema.table`` (unqualified: the first schema of the
        search path that has it), from information_schema."""
        schema, _, name = table.rpartition(".")
        query = """
            SELECT c.column_name, c.data_type
            FROM information_schema.columns AS c
            WHERE c.table_name = %(name)s
              AND c.table_schema = COALESCE(
                    NULLIF(%(schema)s, ''),
                    (SELECT s.schema_name
                     FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(schema_name, i)
                     JOIN information_schema.columns AS d
                       ON d.table_schema = s.schema_name AND d.table_name = %(name)s
                     ORDER BY s.i LIMIT 1))
            ORDER BY c.ordinal_position
        """
        import psycopg

        try:
            with self._connection.cursor() as cursor:
                cursor.execute(query, {"name": name, "schema": schema})
                rows = cursor.fetchall()
        except psycopg.Error as error:
            self._end()
            raise statement_error(error, self.target, self.statement_timeout) from None
        self._end()
        return {column: kind for column, kind in rows} or None

    def close(self) -> None:
        self._connection.close()

    def _end(self) -> None:
        """End the read-only transaction (nothing to keep); a broken link is reported by the
        next statement."""
        import psycopg

        with contextlib.suppress(psycopg.Error):
            self._connection.rollback()


def open_postgres(url: str) -> PostgresConnection:
    conninfo, settings = parse_url(url)
    timeout = settings["statement_timeout"]
    target = Target(conninfo)
    connection = connect(conninfo, target)
    import psycopg

    try:
        connection.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('jit', %s, false),"
            " set_config('standard_conforming_strings', 'on', false),"
            " set_config('default_transaction_read_only', 'on', false)",
            (timeout, settings["jit"]),
        )
    except psycopg.Error as error:
        connection.close()
        raise statement_error(error, target, timeout) from None
    connection.autocommit = False
    connection.read_only = True  # psycopg begins each transaction with BEGIN READ ONLY
    return PostgresConnection(connection, target, timeout)


def connect(conninfo: str, target: Target, **options: Any) -> Any:
    """A psycopg connection in autocommit mode, or an EngineError that says why not."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - psycopg is a dependency
        raise EngineError(
            f"the PostgreSQL connector needs psycopg: pip install 'psycopg[binary]' ({error})"
        ) from None
    try:
        return psycopg.connect(conninfo, autocommit=True, **options)
    except psycopg.Error as error:
        raise connection_error(error, target) from None


def connection_error(error: Exception, target: Target) -> EngineError:
    text = str(error)
    lower = text.lower()
    where = f"PostgreSQL at {target.address}"
    if "connection refused" in lower:
        return EngineError(
            f"cannot connect to {where}: connection refused. Is the server running and"
            " accepting TCP/IP connections on that host and port? Check host and port in"
            " the connector URL."
        )
    if "password authentication failed" in lower or "authentication failed" in lower:
        return EngineError(
            f"{where} refused the credentials of user `{target.user}` (authentication"
            " failed). Check the user and password in the URL (or PGPASSWORD, ~/.pgpass)."
        )
    if "no password supplied" in lower:
        return EngineError(
            f"{where} asks for a password for user `{target.user}` and none was given: put"
            " it in the URL (postgresql://user:password@host/db), PGPASSWORD or ~/.pgpass."
        )
    if re.search(r'database ".*" does not exist', text):
        return EngineError(
            f"{where}: database `{target.database}` does not exist (user `{target.user}`)."
        )
    if re.search(r'role ".*" does not exist', text):
        return EngineError(f"{where}: there is no user (role) `{target.user}`.")
    if "could not translate host name" in lower or "failed to resolve host" in lower:
        return EngineError(f"cannot connect to {where}: unknown host name `{target.host}`.")
    if "timeout expired" in lower:
        return EngineError(
            f"cannot connect to {where}: no answer before the connect timeout. Is the host"
            " reachable (firewall, VPN)? Raise it with ?connect_timeout=30 in the URL."
        )
    return EngineError(f"cannot connect to {where} as `{target.user}`: {_first_line(error)}")


def statement_error(error: Exception, target: Target, timeout: str) -> EngineError:
    import psycopg
    from psycopg import errors

    diag = getattr(error, "diag", None)
    primary = (diag.message_primary if diag is not None else None) or _first_line(error)
    hint = diag.message_hint if diag is not None else None
    if isinstance(error, errors.UndefinedTable):
        return EngineError(
            f"PostgreSQL ({target}): {primary}. Check the source's `table:` (it may be"
            " schema-qualified, e.g. crm.opportunities) and that this user can see it."
        )
    if isinstance(error, errors.QueryCanceled):
        if "statement timeout" in primary.lower():
            return EngineError(
                f"PostgreSQL ({target}): the statement ran longer than the statement timeout"
                f" ({timeout}) and was cancelled. Raise it with ?statement_timeout=30min in the"
                f" URL or ${TIMEOUT_ENV}=30min (0 disables it)."
            )
        return EngineError(f"PostgreSQL ({target}): the statement was cancelled: {primary}")
    if isinstance(error, errors.ReadOnlySqlTransaction):
        return EngineError(f"PostgreSQL ({target}): refused, kpiengine only reads ({primary}).")
    if isinstance(error, errors.InsufficientPrivilege):
        return EngineError(f"PostgreSQL ({target}): {primary}. Ask for SELECT on it.")
    if isinstance(error, psycopg.OperationalError) and diag is not None and not diag.sqlstate:
        return EngineError(f"PostgreSQL ({target}): lost the connection: {_first_line(error)}")
    message = f"PostgreSQL ({target}): {primary}"
    if hint:
        message += f" (hint: {hint})"
    return EngineError(message)


def _first_line(error: Exception) -> str:
    """The first line of a driver message; libpq quotes the URI it could not parse, so
    any password in it is hidden."""
    text = str(error).strip()
    return redact_url(text.splitlines()[0]) if text else type(error).__name__


def _redact(url: str) -> str:
    return redact_url(url)


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "postgres"
