"""Warehouse introspection: do the tables, columns and types the definitions declare exist?

``kpi validate --connector URL`` calls :func:`check_warehouse`. For every source a KPI
uses, and every source joined to one, it asks the connection for the table's columns
(``connection.columns(table)``) and reports, at the definition's line:

* ``KPI502`` — the table does not exist (at the source's ``table:`` line);
* ``KPI503`` — a declared column is not in the table (at the column's line);
* ``KPI504`` — the engine's type cannot hold the declared type, e.g. ``number`` over a
  ``VARCHAR`` column, or ``timestamp`` over an ``INTEGER`` one (at the column's line).

* ``KPI505`` — a warning: the engine's type name is not one kpiengine knows, so the
  column's type could not be checked (at the column's line).

Engine type names (DuckDB, SQLite, PostgreSQL, Spark and the other usual spellings) are
mapped to a small set of categories by :func:`engine_type`; a dialect registered by a
plugin adds its engine's names (``DialectSpec.type_names``, ``DialectSpec.unwrap``). A
type still not recognised is never an error, so an exotic engine type gives no false
alarm, but it is a KPI505 warning: before, it silently switched the KPI504 check off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from kpiengine.contracts import Connection
from kpiengine.diagnostics import Diagnostic, Severity, did_you_mean
from kpiengine.loader.model import Column, Project, Source
from kpiengine.source import Span

if TYPE_CHECKING:
    from kpiengine.compile.dialects import DialectSpec
    from kpiengine.plugins.manager import PluginHost

#: Engine type name (lower case, without length/precision) → category.
_TYPE_NAMES: dict[str, str] = {}
for _category, _names in {
    "string": (
        "varchar char character bpchar nvarchar nchar ntext text string clob name citext "
        "tinytext mediumtext longtext character_varying varchar2 nvarchar2"
    ),
    "integer": (
        "tinyint smallint int integer bigint hugeint int1 int2 int4 int8 int16 int32 int64 "
        "int128 uinteger ubigint usmallint utinyint uhugeint long short byte serial "
        "bigserial smallserial mediumint signed unsigned varint"
    ),
    "number": (
        "double float float4 float8 real decimal numeric number dec money smallmoney "
        "bigdecimal bignumeric float64 double_precision"
    ),
    "boolean": "boolean bool logical",
    "date": "date date32",
    "timestamp": (
        "timestamp datetime datetime2 smalldatetime datetimeoffset timestamptz "
        "timestamp_ntz timestamp_ltz timestamp_tz timestamp_s timestamp_ms timestamp_us "
        "timestamp_ns timestamp_with_time_zone timestamp_without_time_zone date64"
    ),
    "time": "time timetz time_with_time_zone time_without_time_zone",
    "binary": "blob bytea binary varbinary bytes image longblob mediumblob tinyblob",
    "nested": "json jsonb variant object super array list struct map union",
}.items():
    for _name in _names.split():
        _TYPE_NAMES[_name] = _category

#: Declared column type → engine categories that can hold it.
ACCEPTS: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "integer": frozenset({"integer", "number"}),
    "number": frozenset({"integer", "number"}),
    "boolean": frozenset({"boolean"}),
    "date": frozenset({"date", "timestamp"}),
    "timestamp": frozenset({"date", "timestamp"}),
}
#: Engines without a type of their own for some of ours: SQLite keeps dates and times as
#: ISO text and booleans as 0/1 (kpiengine's SQLite SQL reads them that way).
_ALSO_ACCEPTS: dict[str, dict[str, frozenset[str]]] = {
    "sqlite": {
        "date": frozenset({"string"}),
        "timestamp": frozenset({"string"}),
        "boolean": frozenset({"integer"}),
    },
    "mysql": {"boolean": frozenset({"integer"})},
}
#: Engines where a quoted name must match exactly (the others fold case or ignore it).
_CASE_SENSITIVE = frozenset({"postgres", "redshift"})
_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "date": "a date",
    "timestamp": "a timestamp",
    "time": "a time of day",
    "binary": "binary data",
    "nested": "a nested value (array, struct, map or JSON)",
    "other": "not a plain value",
}


def engine_type(type_name: str, dialect: str = "", spec: DialectSpec | None = None) -> str:
    """The category of an engine's type name: ``string``, ``integer``, ``number``,
    ``boolean``, ``date``, ``timestamp``, ``time``, ``binary``, ``nested``, ``other``
    (e.g. an interval) or ``unknown`` (not recognised: a KPI505 warning, never an error).

    Names the built-in table does not know are looked up in the registered dialect's
    ``type_names`` and ``unwrap`` (``spec``, else the dialect called ``dialect``).

    >>> engine_type("DECIMAL(18,3)"), engine_type("timestamp without time zone")
    ('number', 'timestamp')
    >>> engine_type("array<int>", "spark"), engine_type("INTEGER[]")
    ('nested', 'nested')
    """
    found = _builtin_type(type_name, dialect)
    if found != "unknown" or not (dialect or spec):
        return found
    if spec is None:
        from kpiengine.compile.dialects import find_dialect

        spec = find_dialect(dialect)
    return _plugin_type(type_name, dialect, spec) if spec is not None else found


def _plugin_type(type_name: str, dialect: str, spec: DialectSpec) -> str:
    """A name the built-in table lacks, in the dialect's own names: the whole name
    (``Nullable(Float64)``) first, then its base name, then a wrapper's argument."""
    name = " ".join(type_name.strip().lower().split())
    names = {key.lower(): value for key, value in spec.type_names.items()}
    base = "_".join(re.split(r"[<(]", name, maxsplit=1)[0].split())
    for key in (name, base):
        if key in names:
            return names[key]
    wrapper = re.fullmatch(r"(\w+)\s*\((.*)\)", name)
    if wrapper and wrapper.group(1) in {w.lower() for w in spec.unwrap}:
        return engine_type(wrapper.group(2), dialect, spec)
    return "unknown"


def _builtin_type(type_name: str, dialect: str) -> str:
    name = type_name.strip().lower()
    if not name:
        return "unknown"
    if name.endswith("]") or name == "array":  # INTEGER[], PostgreSQL's ARRAY
        return "nested"
    base = re.sub(r"\([^)]*\)", " ", name)  # varchar(20), decimal(10, 2), timestamp(3)
    base = re.split(r"[<(]", base, maxsplit=1)[0]  # array<int>, struct<a:int>
    base = "_".join(base.split())
    if base in _TYPE_NAMES:
        return _TYPE_NAMES[base]
    for suffix in ("_unsigned", "_signed"):  # MySQL "int unsigned"
        if base.endswith(suffix) and base[: -len(suffix)] in _TYPE_NAMES:
            return _TYPE_NAMES[base[: -len(suffix)]]
    if base.startswith("interval"):
        return "other"
    if dialect == "sqlite":
        return _sqlite_affinity(base)
    return "unknown"


def _sqlite_affinity(name: str) -> str:
    """SQLite's own rules for a declared type it does not know (its "type affinity")."""
    if "int" in name:
        return "integer"
    if any(part in name for part in ("char", "clob", "text")):
        return "string"
    if any(part in name for part in ("real", "floa", "doub")):
        return "number"
    return "unknown"  # BLOB affinity or NUMERIC: values of any kind can be stored


def accepts(declared: str, engine_category: str, dialect: str = "") -> bool:
    """Whether a column of ``engine_category`` can hold values of the declared type."""
    if engine_category == "unknown" or declared not in ACCEPTS:
        return True
    extra = _ALSO_ACCEPTS.get(dialect, {}).get(declared, frozenset())
    return engine_category in ACCEPTS[declared] or engine_category in extra


def sources_in_use(project: Project) -> list[Source]:
    """Sources a KPI reads, and sources joined to those, in name order."""
    names: set[str] = set()
    for kpi in project.kpis.values():
        source = project.sources.get(kpi.source or "")
        if source is None:
            continue
        names.add(source.name)
        names.update(j.source for j in source.joins if j.source in project.sources)
    return [project.sources[name] for name in sorted(names)]


def check_warehouse(
    project: Project, connection: Connection, host: PluginHost | None = None
) -> list[Diagnostic]:
    """Tables, columns and types the definitions use that the warehouse lacks; the
    connection's dialect (and the type names it adds) is looked up in ``host``, the
    project's plugins (by default the process's)."""
    from kpiengine.compile.dialects import find_dialect

    dialect = str(getattr(connection, "dialect", ""))
    spec = find_dialect(dialect, host) if dialect else None
    found: list[Diagnostic] = []
    tables: dict[str, Mapping[str, str] | Exception | None] = {}
    for source in sources_in_use(project):
        if source.table not in tables:
            try:
                tables[source.table] = connection.columns(source.table)
            except Exception as error:  # a connector's failure is a finding, not a crash
                tables[source.table] = error
        columns = tables[source.table]
        span = table_span(project, source)
        if isinstance(columns, Exception):
            found.append(
                Diagnostic(
                    "KPI501",
                    f"cannot read the columns of table `{source.table}` "
                    f"(source `{source.name}`): {columns}",
                    span,
                )
            )
            continue
        if not columns:
            found.append(
                Diagnostic(
                    "KPI502",
                    f"table `{source.table}` of source `{source.name}` does not exist "
                    "in the warehouse",
                    span,
                    "check `table:` (it may need a schema: crm.opportunities) and that "
                    "--connector points at the right database",
                )
            )
            continue
        for column in source.columns.values():
            found.extend(_check_column(source, column, columns, dialect, spec))
    return sorted(found, key=Diagnostic.sort_key)


def _check_column(
    source: Source,
    column: Column,
    columns: Mapping[str, str],
    dialect: str,
    spec: DialectSpec | None,
) -> Iterable[Diagnostic]:
    engine_name = _find(column.name, columns, dialect)
    if engine_name is None:
        hint = did_you_mean(column.name, columns)
        if hint is None:
            shown = ", ".join(list(columns)[:12]) + (", ..." if len(columns) > 12 else "")
            hint = f"table `{source.table}` has: {shown}"
        yield Diagnostic(
            "KPI503",
            f"column `{column.name}` of source `{source.name}` is not in table `{source.table}`",
            column.span,
            hint,
        )
        return
    engine_name_type = str(columns[engine_name])
    category = engine_type(engine_name_type, dialect, spec)
    if category == "unknown" and not _holds_anything(dialect):
        yield Diagnostic(
            "KPI505",
            f"the warehouse type {engine_name_type} of column `{column.name}` of source "
            f"`{source.name}` is not a type kpiengine knows: its type was not checked",
            column.span,
            "convert the column in a view to have it checked, or name the engine's "
            f"types in the `{dialect}` dialect's plugin (DialectSpec.type_names, "
            "DialectSpec.unwrap: docs/plugins.md#dialects)",
            Severity.WARNING,
        )
        return
    if accepts(column.type, category, dialect):
        return
    suggestion = category if category in ACCEPTS else None
    hint = (
        f"declare it `{suggestion}`, or convert the column in a view"
        if suggestion
        else "convert the column in a view, or leave it out of the source"
    )
    yield Diagnostic(
        "KPI504",
        f"column `{column.name}` of source `{source.name}` is declared {column.type}, but "
        f"the warehouse type {engine_name_type} is {_WORDS.get(category, category)}",
        column.span,
        hint,
    )


def _holds_anything(dialect: str) -> bool:
    """A SQLite column declared without a type, or with one of BLOB affinity, takes
    values of any kind: there is no type to check, nor one a plugin could name."""
    return dialect == "sqlite"


def _find(name: str, columns: Mapping[str, str], dialect: str) -> str | None:
    if name in columns:
        return name
    if dialect in _CASE_SENSITIVE:
        return None
    folded = name.lower()
    return next((c for c in columns if c.lower() == folded), None)


def table_span(project: Project, source: Source) -> Span:
    """The span of the source's ``table:`` value; the source's span when it has none.

    The loader keeps no span for ``table:``, but a source file defines one source, so its
    top-level ``table:`` line is that source's.
    """
    file = source.span.file
    number = 1
    while (line := project.texts.line(file, number)) is not None:
        match = re.match(r"table\s*:[ \t]*", line)
        if match:
            value = line[match.end() :].split(" #", 1)[0].rstrip()
            col = match.end() + 1
            if value:
                return Span(file, number, col, number, col + len(value))
            return Span(file, number, 1, number, len(line) + 1)
        number += 1
    return source.span
