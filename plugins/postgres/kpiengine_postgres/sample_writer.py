"""Write Arrow tables (the sample dataset) to PostgreSQL: one transaction, COPY in CSV.

``kpi sample-data --to postgresql://user@host/db`` uses :class:`PostgresWriter`, which
the plugin registers through the ``kpiengine_sample_writers`` hook. Tables go to the
connection's current schema (the first of the search path;
``?options=-csearch_path%3Dsample`` picks another). Every table is created and filled
inside one transaction: on any error nothing is left behind.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from kpiengine.errors import EngineError, UsageError
from kpiengine_postgres.connection import Target, connect, split_url, statement_error


def postgres_type(kind: pa.DataType) -> str:
    """The PostgreSQL column type that holds an Arrow type without loss."""
    if pa.types.is_dictionary(kind):
        return postgres_type(kind.value_type)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "text"
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_int8(kind) or pa.types.is_int16(kind) or pa.types.is_uint8(kind):
        return "smallint"
    if pa.types.is_int32(kind) or pa.types.is_uint16(kind):
        return "integer"
    if pa.types.is_int64(kind) or pa.types.is_uint32(kind):
        return "bigint"
    if pa.types.is_uint64(kind):
        return "numeric(20, 0)"
    if pa.types.is_float32(kind):
        return "real"
    if pa.types.is_float64(kind):
        return "double precision"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision}, {kind.scale})"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    raise UsageError(f"no PostgreSQL column type for Arrow type {kind}")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresWriter:
    """The Writer protocol of ``kpiengine.sample.write`` for PostgreSQL."""

    def __init__(self, url: str, replace: bool, tables: Sequence[str] | None = None) -> None:
        """Refuse, unless ``replace``, when any of ``tables`` (default: the sample
        dataset's) exists in the target schema."""
        if tables is None:
            from kpiengine.sample.tables import TABLES

            tables = TABLES
        conninfo, _ = split_url(url)
        self.target = Target(conninfo)
        self.connection = connect(conninfo, self.target)
        self.replace = replace
        import psycopg

        self._error = psycopg.Error
        try:
            # COPY receives the UTF-8 bytes of pyarrow's CSV writer as they are
            self.connection.execute("SET client_encoding TO 'UTF8'")
            rows = self.connection.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema()"
            ).fetchall()
            schema = self.connection.execute("SELECT current_schema()").fetchone()
        except psycopg.Error as error:
            self.connection.close()
            raise statement_error(error, self.target, "") from None
        if schema is None or schema[0] is None:
            self.connection.close()
            raise UsageError(
                f"PostgreSQL ({self.target}): no schema to write to (the search path names"
                " none that exists); create one or set ?options=-csearch_path%3Dpublic"
            )
        self.schema = schema[0]
        present = {name for (name,) in rows}
        existing = [t for t in tables if t in present]
        if existing and not replace:
            self.connection.close()
            names = ", ".join(existing)
            raise UsageError(
                f"{self.target} already has table(s) {names} in schema {self.schema};"
                " pass replace=True (--replace) to overwrite them"
            )
        self.connection.autocommit = False  # everything below is one transaction

    def write_table(self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        import pyarrow.csv as pcsv

        name = f"{quote(self.schema)}.{quote(table)}"
        columns = ", ".join(f"{quote(f.name)} {postgres_type(f.type)}" for f in schema)
        options = pcsv.WriteOptions(include_header=False)
        try:
            with self.connection.cursor() as cursor:
                if self.replace:
                    cursor.execute(f"DROP TABLE IF EXISTS {name}")
                cursor.execute(f"CREATE TABLE {name} ({columns})")
                # CSV: an unquoted empty field is null, strings are always quoted
                copy_sql = f"COPY {name} FROM STDIN (FORMAT csv)"
                with cursor.copy(copy_sql) as copy:
                    for batch in batches:
                        if batch.num_rows:
                            copy.write(_csv(batch, options))
                cursor.execute(f"ANALYZE {name}")
        except self._error as error:
            raise EngineError(f"PostgreSQL: cannot write {table}: {_message(error)}") from None

    def commit(self) -> None:
        try:
            self.connection.commit()
        except self._error as error:
            raise EngineError(f"PostgreSQL: cannot commit the sample data: {error}") from None
        finally:
            self.connection.close()

    def abort(self) -> None:
        try:
            self.connection.rollback()
        except self._error:
            pass
        finally:
            self.connection.close()


def _csv(batch: pa.RecordBatch, options: Any) -> bytes:
    import pyarrow.csv as pcsv

    sink = io.BytesIO()
    pcsv.write_csv(batch, sink, options)
    return sink.getvalue()


def _message(error: Exception) -> str:
    diag = getattr(error, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or str(error).strip().splitlines()[0]


def write_tables(url: str, tables: Mapping[str, pa.Table], *, replace: bool = False) -> None:
    """Write any Arrow tables to the database at ``url`` in one transaction (tests, tools)."""
    writer = PostgresWriter(url, replace, list(tables))
    try:
        for name, table in tables.items():
            writer.write_table(name, table.schema, iter(table.to_batches()))
    except BaseException:
        writer.abort()
        raise
    writer.commit()
