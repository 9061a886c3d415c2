"""Refuse, before it is sent, any statement that is not one plain query.

The connector already runs each statement alone (extended protocol) in a READ ONLY
transaction; that stops writes to tables but not everything a superuser may do from a
"read-only" statement (``COPY ... TO PROGRAM`` runs a shell command, ``pg_read_file``
reads the server's files). So the text is parsed with sqlglot's PostgreSQL dialect first
and must be exactly one query (SELECT, UNION/INTERSECT/EXCEPT, VALUES) with:

- no data-modifying part (``WITH x AS (DELETE ...)``, ``SELECT ... INTO table``),
- no locking clause (``FOR UPDATE`` / ``FOR SHARE``),
- no call to a function of :data:`DENIED_FUNCTIONS` / :data:`DENIED_PREFIXES` (files,
  large objects, dblink, settings, backends, advisory locks, SQL-in-a-string).

This is defence in depth. The guarantee is the role: connect as a role without superuser,
with SELECT on the warehouse tables only, and without ``pg_read_server_files``,
``pg_write_server_files`` or ``pg_execute_server_program`` (see the plugin's README).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from kpiengine.errors import EngineError

#: Functions that read or write outside the tables, change settings, signal backends,
#: run SQL given as text, or write (sequences, large objects, notifications).
DENIED_FUNCTIONS = frozenset(
    {
        "set_config",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_stat_file",
        "pg_notify",
        "pg_logical_emit_message",
        "pg_export_snapshot",
        "pg_import_system_collations",
        "pg_log_backend_memory_contexts",
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "nextval",
        "setval",
        "loread",
        "lowrite",
        "txid_current",
        "pg_current_xact_id",
    }
)
#: Function name prefixes denied as a family.
DENIED_PREFIXES = (
    "pg_read_",  # pg_read_file, pg_read_binary_file
    "pg_ls_",  # pg_ls_dir, pg_ls_logdir, ...
    "pg_file_",  # adminpack
    "pg_logdir_",
    "lo_",  # large objects: lo_import / lo_export touch server files
    "dblink",  # dblink, dblink_exec, dblink_connect_u ...
    "pg_advisory_",
    "pg_try_advisory_",
    "pg_replication_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    "pg_stat_reset",
)


def check_query(sql: str) -> None:
    """Raise EngineError unless ``sql`` is exactly one read-only query."""
    import sqlglot
    from sqlglot import exp

    try:
        with _quiet_sqlglot():
            statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except sqlglot.errors.SqlglotError as error:
        raise _refused(f"the statement could not be checked ({_first_line(error)})") from None
    if len(statements) != 1:
        raise _refused(f"one query per call, got {len(statements)} statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query | exp.Values):
        raise _refused(f"only queries may run, not {_kind(tree)}")
    for node in tree.walk():
        problem = _problem(node)
        if problem:
            raise _refused(problem)


def _problem(node: object) -> str | None:
    from sqlglot import exp

    if isinstance(node, exp.Insert | exp.Update | exp.Delete | exp.Merge | exp.Copy):
        return f"a query may not contain {_kind(node)}"
    if isinstance(node, exp.Command | exp.Set | exp.Create | exp.Drop | exp.Alter):
        return f"a query may not contain {_kind(node)}"
    if isinstance(node, exp.Into):
        return "SELECT ... INTO creates a table"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE / FOR SHARE) writes row locks"
    if isinstance(node, exp.Func):
        name = _function_name(node)
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            return f"function {name}() is not allowed (it reaches outside the tables)"
    return None


def _function_name(node: object) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    assert isinstance(node, exp.Func)
    return node.sql_name().lower()


def _kind(node: object) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return f"{str(node.this).split()[0].upper()} statements"
    return f"{type(node).__name__.upper()} statements"


def _refused(why: str) -> EngineError:
    return EngineError(f"PostgreSQL: refused, kpiengine only reads: {why}")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning (on stderr) when it falls back to a Command; the refusal
    says it instead."""
    logger = logging.getLogger("sqlglot")
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before
