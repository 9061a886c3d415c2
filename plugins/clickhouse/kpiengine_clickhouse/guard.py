"""Refuse, before it reaches chDB, any statement that is not one plain query.

chDB's own read-only mode is not enough (checked on chDB 4.4 / ClickHouse 26.9):
``mode=ro`` and ``readonly=1`` still run ``SELECT ... INTO OUTFILE`` (it writes the file)
and the scalar ``file(path)`` (it reads any file the process can), and a call may hold
several statements (``SELECT 1; SELECT 2`` runs both). So the text is parsed with
sqlglot's ClickHouse dialect and must be exactly one query (SELECT, UNION/INTERSECT/
EXCEPT) with:

- no ``INTO`` (``INTO OUTFILE`` does not even parse: refused as unreadable), no locking
  clause (sqlglot would drop ``FOR UPDATE`` when rendering: refused, not rewritten),
- no ``SETTINGS`` or ``FORMAT`` clause (the connection's settings are fixed when it opens),
- no table function in ``FROM`` (``file()``, ``url()``, ``s3()``, ``numbers()``...): only
  tables, subqueries, CTEs and ``VALUES``; table names are plain identifiers (a quoted
  ``'/etc/passwd'`` is a path clickhouse-local would read) and never in ``system``,
- no call to a function of :data:`DENIED_FUNCTIONS` (files, URLs, models, sleeping).

What is sent is sqlglot's rendering of the checked tree, without comments, never the
original text: what runs is what was checked, whatever ClickHouse's parser would have
made of the text.
"""

from __future__ import annotations

import re
from typing import Any

from kpiengine.execute.query_guard import QueryGuard, first_line, quiet_sqlglot

#: Functions that read files or URLs, evaluate models from files, reach other servers,
#: or only waste time. Table functions are refused wherever they appear in FROM; these
#: are refused anywhere (ClickHouse has scalar ``file()`` and ``url()`` too).
DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "gcs",
        "oss",
        "cosn",
        "hdfs",
        "hdfscluster",
        "azureblobstorage",
        "azureblobstoragecluster",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "mongodb",
        "redis",
        "sqlite",
        "jdbc",
        "odbc",
        "input",
        "executable",
        "dictionary",
        "dictget",
        "joinget",
        "catboostevaluate",
        "modelevaluate",
        "sleep",
        "sleepeachrow",
        "getsetting",
        "filesystemavailable",
        "filesystemcapacity",
        "filesystemunreadable",
    }
)
#: Families (``dictGetString``, ``icebergS3``, ``deltaLakeAzure``...).
DENIED_PREFIXES = ("dictget", "iceberg", "deltalake", "hudi", "paimon", "s3", "hdfs", "azure")
#: Databases a query may not name: the server's own state, not the warehouse.
DENIED_DATABASES = frozenset({"system", "information_schema"})
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _clickhouse_problem(node: Any) -> str | None:
    """What ClickHouse adds to the shared checks: fixed settings, tables only."""
    from sqlglot import exp

    if isinstance(node, exp.Query) and (node.args.get("settings") or node.args.get("format")):
        return "SETTINGS and FORMAT clauses are not allowed (the connection's are fixed)"
    if isinstance(node, exp.Table):
        return _table_problem(node)
    return None


def _table_problem(node: Any) -> str | None:
    from sqlglot import exp

    if not isinstance(node.this, exp.Identifier):
        return f"table functions are not allowed in FROM ({node.this.sql('clickhouse')[:60]})"
    parts = [p for p in (node.args.get("catalog"), node.args.get("db"), node.this) if p]
    for part in parts:
        if not _PLAIN_NAME.match(str(part.name)):
            return f"`{str(part.name)[:60]}` is not a table name (plain identifiers only)"
    if any(str(p.name).lower() in DENIED_DATABASES for p in parts[:-1]):
        return "the server's own tables (system, information_schema) are not the warehouse"
    return None


GUARD = QueryGuard(
    "ClickHouse",
    "clickhouse",
    DENIED_FUNCTIONS,
    DENIED_PREFIXES,
    allow_values=False,
    extra=_clickhouse_problem,
)


def checked_query(sql: str) -> str:
    """The text to send for ``sql``: sqlglot's rendering of it once checked; raise
    EngineError unless it is exactly one read-only query."""
    import sqlglot
    from sqlglot.errors import ErrorLevel

    tree = GUARD.check(sql)
    try:
        with quiet_sqlglot():
            return str(
                tree.sql(dialect="clickhouse", unsupported_level=ErrorLevel.RAISE, comments=False)
            )
    except sqlglot.errors.SqlglotError as error:
        raise GUARD.refused(f"the statement could not be rendered ({first_line(error)})") from None
