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

The checks are kpiengine's shared :class:`~kpiengine.execute.query_guard.QueryGuard`;
this module says what PostgreSQL denies. This is defence in depth. The guarantee is the
role: connect as a role without superuser, with SELECT on the warehouse tables only, and
without ``pg_read_server_files``, ``pg_write_server_files`` or
``pg_execute_server_program`` (see the plugin's README).
"""

from __future__ import annotations

from kpiengine.execute.query_guard import QueryGuard

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


GUARD = QueryGuard("PostgreSQL", "postgres", DENIED_FUNCTIONS, DENIED_PREFIXES)


def check_query(sql: str) -> None:
    """Raise EngineError unless ``sql`` is exactly one read-only query."""
    GUARD.check(sql)
