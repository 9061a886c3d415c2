"""Refuse, before it is sent, any statement that is not one plain query.

The connection already sends one statement per call (PyMySQL without the
MULTI_STATEMENTS flag: the server rejects ``SELECT 1; DROP ...``) inside a
``START TRANSACTION READ ONLY``. That stops writes to tables but not what a privileged
user may do from a "read-only" statement (``SELECT ... INTO OUTFILE`` writes a server
file, ``LOAD_FILE()`` reads one). So the text is parsed with sqlglot's MySQL dialect and
must be exactly one query (SELECT, UNION, VALUES) with no ``INTO``, no locking clause
(``FOR UPDATE``, ``LOCK IN SHARE MODE``) and no call to :data:`DENIED_FUNCTIONS`.

The checks are kpiengine's shared :class:`~kpiengine.execute.query_guard.QueryGuard`;
this module says what MySQL denies. This is defence in depth. The guarantee is the user:
SELECT on the warehouse schemas only, never FILE, SUPER or any write privilege (see the
plugin's README).
"""

from __future__ import annotations

from kpiengine.execute.query_guard import QueryGuard

#: Functions that read server files, wait, take locks or touch replication.
DENIED_FUNCTIONS = frozenset(
    {
        "load_file",
        "sleep",
        "benchmark",
        "get_lock",
        "release_lock",
        "release_all_locks",
        "is_free_lock",
        "is_used_lock",
        "master_pos_wait",
        "source_pos_wait",
        "master_gtid_wait",
        "wait_for_executed_gtid_set",
        "sys_exec",
        "sys_eval",
        "uuid_short",
        "last_insert_id",
        "found_rows",
        "row_count",
        "nextval",
        "setval",
        "lastval",
    }
)


GUARD = QueryGuard("MySQL", "mysql", DENIED_FUNCTIONS)


def check_query(sql: str) -> None:
    """Raise EngineError unless ``sql`` is exactly one read-only query."""
    GUARD.check(sql)
