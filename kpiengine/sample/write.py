"""Write the sample dataset to a database or a folder of files, all or nothing.

One :class:`Writer` per URL scheme, found through the ``kpiengine_sample_writers`` hook:
the built-in plugin registers DuckDB, SQLite and files (:data:`BUILTIN_SAMPLE_WRITERS`),
the PostgreSQL plugin its COPY writer, any plugin more. A writer refuses, when it is
created, to overwrite any sample table that already exists unless ``replace`` is true;
it then receives each table as a stream of Arrow batches and finally ``commit()`` or
``abort()``. Nothing half-written is ever left at the target: a new database file or a
table file is written under a temporary name and renamed at the end, and an existing
database receives everything in one transaction.

Adding an engine means a plugin returning one :class:`SampleWriterSpec`.

A company bigger than one shard (:data:`~kpiengine.sample.generate.SHARD_ROWS` deals)
comes shard by shard, each shard table in one run per shard. A writer that also has
``append_table(table, schema, batches)`` (the built-in ones do) receives the first run
of a table through ``write_table`` and the next ones through ``append_table``; a writer
without it still receives each table once, whole: the runs are first spooled to
compressed Arrow files in a temporary folder (disk instead of memory).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import numpy as np
import pyarrow as pa

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import path_of
from kpiengine.execute.duckdb_connector import ALLOCATOR_FLUSH
from kpiengine.sample.columns import iso_dates, iso_timestamps
from kpiengine.sample.generate import check_arguments, generate
from kpiengine.sample.tables import SPEC_BY_NAME, TABLES

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginHost

Progress = Callable[[str, int], None]


class Writer(Protocol):
    def write_table(self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        """Create ``table`` (replacing it when allowed) from the batches."""

    def commit(self) -> None:
        """Make every table written visible at the target."""

    def abort(self) -> None:
        """Leave the target as it was before."""

    # optional: ``append_table(table, schema, batches)`` adds rows to a table written
    # before; a sharded company then streams straight to the target (module docstring)


@dataclass(frozen=True)
class SampleWriterSpec:
    """What ``kpiengine_sample_writers`` returns: a URL scheme and ``open(url, replace)``,
    which refuses to overwrite existing sample tables unless ``replace``."""

    scheme: str
    open: Callable[[str, bool], Writer]
    description: str = ""
    plugin: str = "builtin"


def write_sample(
    url: str,
    rows: int = 100_000,
    seed: int = 42,
    progress: Progress | None = None,
    *,
    replace: bool = False,
    plugins: PluginHost | None = None,
    shard_rows: int | None = None,
) -> dict[str, int]:
    """Generate the sample dataset and write it to ``url``; return table -> row count.

    ``url``: ``duckdb:///file.duckdb``, ``sqlite:///file.db`` (three slashes then a
    relative path, four for an absolute one), or ``files:///folder`` (one
    ``<table>.parquet`` each; ``files:///folder?format=csv`` for CSV with a header).
    ``progress(table, rows_so_far)`` is called after each batch. Raises UsageError when
    a sample table exists at the target and ``replace`` is false. Other schemes come
    from plugins (``kpiengine_sample_writers``) of ``plugins``, the host of ``kpi
    sample-data --plugin``; by default the process's (built-ins and installed plugins).
    ``shard_rows``: see :func:`~kpiengine.sample.generate.generate` (tests, benchmarks).
    """
    from kpiengine.plugins.manager import default_host

    shard_size = check_arguments(rows, seed, shard_rows)
    writer = (plugins or default_host()).sample_writer(url).open(url, replace)
    counts: dict[str, int] = {}
    failure: list[BaseException] = []

    def counted(
        table: str, batches: Iterator[tuple[str, pa.RecordBatch]]
    ) -> Iterator[pa.RecordBatch]:
        try:
            for _, batch in batches:
                counts[table] += batch.num_rows
                if progress is not None:
                    progress(table, counts[table])
                yield batch
        except BaseException as error:  # an engine may wrap it; re-raised as it was below
            failure.append(error)
            raise

    append = getattr(writer, "append_table", None)
    try:
        batches = generate(rows, seed, shard_rows=shard_rows)
        if rows > shard_size and append is None:
            batches = table_by_table(batches)
        for table, group in groupby(batches, key=lambda item: item[0]):
            schema = SPEC_BY_NAME[table].schema
            if table in counts and append is not None:
                append(table, schema, counted(table, group))
                continue
            counts[table] = 0
            writer.write_table(table, schema, counted(table, group))
    except BaseException as error:
        writer.abort()
        if failure and failure[0] is not error:
            raise failure[0] from None
        raise
    writer.commit()
    return counts


def table_by_table(
    batches: Iterator[tuple[str, pa.RecordBatch]],
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """The same batches, each table whole and in TABLES order, for a writer that can only
    write a table at once: every run is first spooled to one LZ4-compressed Arrow file
    per table in a temporary folder (``TMPDIR``), removed at the end. Memory stays
    bounded; the disk holds the whole dataset meanwhile (≈ 0.75 GB per million deals)."""
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with tempfile.TemporaryDirectory(prefix="kpiengine-sample-") as folder:
        files: dict[str, pa.ipc.RecordBatchFileWriter] = {}
        try:
            for table, batch in batches:
                if table not in files:
                    path = Path(folder) / f"{table}.arrow"
                    files[table] = pa.ipc.new_file(str(path), batch.schema, options=options)
                files[table].write_batch(batch)
        finally:
            for spool in files.values():
                spool.close()
        for table in TABLES:
            if table in files:
                with pa.OSFile(str(Path(folder) / f"{table}.arrow")) as source:
                    reader = pa.ipc.open_file(source)
                    for i in range(reader.num_record_batches):
                        yield table, reader.get_batch(i)


def _refuse(url: str, existing: Sequence[str]) -> None:
    if existing:
        names = ", ".join(existing)
        raise UsageError(
            f"{url} already has sample table(s) {names}; pass replace=True (--replace) to"
            " overwrite them"
        )


def _database_path(url: str) -> Path:
    path = path_of(url)
    if not path or path == ":memory:":
        raise UsageError(f"`{url}` names no database file to write the sample data to")
    return Path(path)


def _temporary_sibling(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


#: The buffer pool otherwise keeps every block written (6.2 GB over a 10M sample): appends
#: need little memory, and written blocks are on disk already. Peak RSS writing 5M deals:
#: 2.06 GB with 512MB, 1.83 GB adding the allocator's flush thresholds, 1.51 GB with 256MB
#: (docs/performance.md).
_DUCKDB_WRITER_CONFIG = {"memory_limit": "256MB", **ALLOCATOR_FLUSH}
#: the name the batches being written are registered under
_STREAM = "kpiengine_sample_stream"


class DuckDBWriter:
    """DuckDB: each table created from its first batch with CREATE TABLE AS, each further
    batch added with its own INSERT (see :meth:`_load` for why one statement per batch)."""

    def __init__(self, url: str, replace: bool) -> None:
        import duckdb

        self._error = duckdb.Error
        self.target = _database_path(url)
        self.fresh = not self.target.exists()
        self.path = _temporary_sibling(self.target) if self.fresh else self.target
        try:
            self.connection = duckdb.connect(str(self.path), config=_DUCKDB_WRITER_CONFIG)
        except duckdb.Error as error:
            raise EngineError(f"cannot open DuckDB database `{self.path}`: {error}") from error
        self.connection.execute("SET enable_progress_bar = false")  # progress is ours to show
        if not self.fresh:
            rows = self.connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
            present = {name for (name,) in rows}
            existing = [t for t in TABLES if t in present]
            if existing and not replace:
                self.connection.close()
                _refuse(url, existing)
            self.connection.begin()
        self.replace = replace

    def write_table(self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        create = f'CREATE TABLE "{table}" AS SELECT * FROM {_STREAM}'
        self._load(table, schema, batches, create, drop=self.replace)

    def append_table(
        self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> None:
        insert = f'INSERT INTO "{table}" SELECT * FROM {_STREAM}'
        self._load(table, schema, batches, insert, drop=False)

    def _load(
        self,
        table: str,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        statement: str,
        drop: bool,
    ) -> None:
        """Run ``statement`` on the first batch (read as the view ``_STREAM``), then an
        INSERT per further batch, after dropping the table first if ``drop``.

        One statement per batch, not one streaming the whole run: a statement reading a
        Python stream runs the generator inside DuckDB's scan, and the pull that ends a
        shard's last run builds the next shard (≈ 0.9 GB of arrays) while that INSERT's
        state is still held. Pulled between statements, the next batch is made while
        DuckDB holds only its buffer pool: peak RSS writing 2M–10M deals drops from
        1.3–1.9 GiB (varying run to run) to a steady 1.2–1.4 GiB, and the file is written
        in order, without the partial row groups and free blocks of parallel inserts (2M:
        718 MiB against 966 MiB), for ≈ 10 % more CPU (docs/performance.md)."""
        insert = f'INSERT INTO "{table}" SELECT * FROM {_STREAM}'
        try:
            if drop:
                self.connection.execute(f'DROP TABLE IF EXISTS "{table}"')
            first = True
            for batch in batches:
                self._run(statement if first else insert, pa.Table.from_batches([batch]))
                first = False
            if first:  # no rows: the table is still created, with its columns
                self._run(statement, schema.empty_table())
        except self._error as error:
            raise EngineError(f"DuckDB: cannot write {table}: {error}") from error

    def _run(self, statement: str, rows: pa.Table) -> None:
        """``statement`` with ``rows`` as the view ``_STREAM``."""
        self.connection.register(_STREAM, rows)
        try:
            self.connection.execute(statement)
        finally:
            self.connection.unregister(_STREAM)

    def commit(self) -> None:
        if self.fresh:
            self.connection.close()
            os.replace(self.path, self.target)
        else:
            self.connection.commit()
            self.connection.close()

    def abort(self) -> None:
        try:
            if not self.fresh:
                self.connection.rollback()
        finally:
            self.connection.close()
            if self.fresh:
                _remove(self.path, self.path.with_name(self.path.name + ".wal"))


_SQLITE_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",  # stored as 0/1
    "date": "DATE",  # stored as 'YYYY-MM-DD' text
    "timestamp": "TIMESTAMP",  # stored as 'YYYY-MM-DD HH:MM:SS' text
}


class SQLiteWriter:
    """SQLite: typed columns, rows inserted with executemany batch by batch."""

    def __init__(self, url: str, replace: bool) -> None:
        self.target = _database_path(url)
        self.fresh = not self.target.exists()
        self.path = _temporary_sibling(self.target) if self.fresh else self.target
        try:
            self.connection = sqlite3.connect(self.path, isolation_level=None)
            present = {
                name
                for (name,) in self.connection.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
                )
            }
        except sqlite3.Error as error:
            raise EngineError(f"cannot open SQLite database `{self.path}`: {error}") from error
        existing = [t for t in TABLES if t in present]
        if existing and not replace:
            self.connection.close()
            _refuse(url, existing)
        if self.fresh:  # the file is renamed into place only when complete
            self.connection.execute("PRAGMA journal_mode = OFF")
            self.connection.execute("PRAGMA synchronous = OFF")
        self.connection.execute("BEGIN")
        self.replace = replace

    def write_table(self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        spec = SPEC_BY_NAME[table]
        columns = ", ".join(f'"{c.name}" {_SQLITE_TYPES[c.type]}' for c in spec.columns)
        try:
            if self.replace:
                self.connection.execute(f'DROP TABLE IF EXISTS "{table}"')
            self.connection.execute(f'CREATE TABLE "{table}" ({columns})')
        except sqlite3.Error as error:
            raise EngineError(f"SQLite: cannot write {table}: {error}") from error
        self.append_table(table, schema, batches)

    def append_table(
        self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> None:
        width = len(SPEC_BY_NAME[table].columns)
        insert = f'INSERT INTO "{table}" VALUES ({", ".join("?" * width)})'
        try:
            for batch in batches:
                self.connection.executemany(
                    insert, zip(*map(_python_values, batch.columns), strict=True)
                )
        except sqlite3.Error as error:
            raise EngineError(f"SQLite: cannot write {table}: {error}") from error

    def commit(self) -> None:
        self.connection.execute("COMMIT")
        self.connection.close()
        if self.fresh:
            os.replace(self.path, self.target)

    def abort(self) -> None:
        try:
            if self.connection.in_transaction:
                self.connection.execute("ROLLBACK")
        finally:
            self.connection.close()
            if self.fresh:
                _remove(self.path, self.path.with_name(self.path.name + "-journal"))


def _python_values(array: pa.Array) -> list[Any]:
    """A column as Python values SQLite stores: ISO text for dates and timestamps."""
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        raw = array.cast(pa.int64() if pa.types.is_timestamp(kind) else pa.int32())
        numbers = raw.fill_null(0).to_numpy().astype(np.int64)
        if pa.types.is_timestamp(kind):
            return iso_timestamps(numbers // 1_000_000, valid).to_pylist()
        return iso_dates(numbers, valid).to_pylist()
    if array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return array.to_numpy().tolist()
    return array.to_pylist()


class FilesWriter:
    """A folder with one ``<table>.parquet`` (or ``.csv``) per table."""

    SUFFIXES = (".parquet", ".csv", ".tsv")  # what the files connector reads as tables

    def __init__(self, url: str, replace: bool) -> None:
        query = url.partition("?")[2]
        options = parse_qs(query, keep_blank_values=True)
        unknown = set(options) - {"format"}
        fmt = options.get("format", ["parquet"])[-1]
        if unknown or fmt not in ("parquet", "csv"):
            raise UsageError(f"`{url}`: the only option is format=parquet|csv")
        self.format = fmt
        folder = path_of(url)
        if not folder:
            raise UsageError(f"`{url}` names no folder to write the sample files to")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"`{self.folder}` exists and is not a folder")
        existing = [
            t for t in TABLES if any((self.folder / f"{t}{s}").exists() for s in self.SUFFIXES)
        ]
        if existing and not replace:
            _refuse(url, existing)
        self.created_folder = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=".kpiengine-sample-", dir=self.folder))
        self.written: list[str] = []
        # each table's file stays open until commit: a sharded company appends to it
        self.open: dict[str, tuple[Any, pa.Schema]] = {}

    def write_table(self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        path = self.staging / f"{table}.{self.format}"
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self.open[table] = (pq.ParquetWriter(path, schema, compression="zstd"), schema)
        else:
            import pyarrow.csv as pcsv

            text_schema = _csv_schema(table, schema)
            self.open[table] = (pcsv.CSVWriter(path, text_schema), text_schema)
        self.written.append(table)
        self.append_table(table, schema, batches)

    def append_table(
        self, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]
    ) -> None:
        out, out_schema = self.open[table]
        for batch in batches:
            out.write_batch(batch if out_schema is schema else batch.cast(out_schema))

    def _close(self) -> None:
        while self.open:
            out, _ = self.open.popitem()[1]
            out.close()

    def commit(self) -> None:
        self._close()
        for table in self.written:
            final = self.folder / f"{table}.{self.format}"
            for suffix in self.SUFFIXES:  # a stale file in another format would shadow it
                if suffix != final.suffix:
                    _remove(self.folder / f"{table}{suffix}")
            os.replace(self.staging / final.name, final)
        shutil.rmtree(self.staging, ignore_errors=True)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
        if self.created_folder and not any(self.folder.iterdir()):
            self.folder.rmdir()


def _csv_schema(table: str, schema: pa.Schema) -> pa.Schema:
    """Types that read back right from text: timestamps in whole seconds
    ('YYYY-MM-DD HH:MM:SS'), numbers always with decimals ('2880.00', never '2880', which a
    CSV reader would take for an integer)."""
    spec = SPEC_BY_NAME[table]
    fields = []
    for field in schema:
        if pa.types.is_timestamp(field.type):
            field = field.with_type(pa.timestamp("s"))
        elif pa.types.is_floating(field.type):
            scale = 2 if spec.column(field.name).unit == "currency" else 6
            field = field.with_type(pa.decimal128(24, scale))
        fields.append(field)
    return pa.schema(fields)


BUILTIN_SAMPLE_WRITERS = (
    SampleWriterSpec("duckdb", DuckDBWriter, "a DuckDB database file"),
    SampleWriterSpec("sqlite", SQLiteWriter, "a SQLite database file"),
    SampleWriterSpec("files", FilesWriter, "a folder of Parquet (?format=csv: CSV) files"),
)
