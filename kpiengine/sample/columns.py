"""From numpy columns to Arrow record batches, without a Python loop over rows.

Generators describe a table as numpy arrays (:class:`Col`): ids, category codes, day
numbers, seconds. :func:`emit` checks them against the table's spec and turns them into
Arrow batches of at most :data:`BATCH_ROWS` rows, one slice at a time, so a big table
never exists twice in memory. ISO text for dates (SQLite stores dates as text) is written
straight into Arrow string buffers with digit lookup tables: much faster than strftime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from kpiengine.sample.calendar import DAY
from kpiengine.sample.tables import SPEC_BY_NAME, TableSpec

BATCH_ROWS = 250_000
Batches = Iterator[tuple[str, pa.RecordBatch]]  # (table, batch), what generators yield

_DIGITS2 = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).reshape(100, 2)
_DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint8).reshape(
    10_000, 4
)


@dataclass(frozen=True)
class Col:
    """One column as numpy data; for strings, ``data`` holds codes into ``labels``.
    Nulls: ``valid`` is False, or for codes, day numbers and seconds, a negative value."""

    data: np.ndarray
    valid: np.ndarray | None = None
    labels: tuple[str, ...] | None = None


def ids(count: int, first: int = 1) -> Col:
    """A key column: ``first``, ``first + 1``, … (ids start at 1)."""
    return Col(np.arange(first, first + count, dtype=np.int64))


def refs(index: np.ndarray) -> Col:
    """A reference to row ``index`` (0-based; -1 = null) of another table: its id."""
    index = np.asarray(index, dtype=np.int64)
    return Col(index + 1, index >= 0)


def codes(labels: tuple[str, ...], data: np.ndarray) -> Col:
    """A categorical column: ``labels[data]``, null where ``data`` < 0."""
    return Col(np.asarray(data), labels=labels)


def emit(table: str, columns: dict[str, Col], rows: int) -> Batches:
    """Yield ``(table, batch)`` for ``rows`` rows of ``columns``, checked against the spec."""
    spec = SPEC_BY_NAME[table]
    names = [c.name for c in spec.columns]
    if list(columns) != names:
        raise RuntimeError(f"sample table {table}: columns {list(columns)} != spec {names}")
    for name, col in columns.items():
        if len(col.data) != rows:
            raise RuntimeError(f"sample table {table}: {name} has {len(col.data)} rows, not {rows}")
    schema = spec.schema
    for start in range(0, rows, BATCH_ROWS):
        part = slice(start, min(start + BATCH_ROWS, rows))
        arrays = [_to_arrow(spec, name, col, part) for name, col in columns.items()]
        yield table, pa.RecordBatch.from_arrays(arrays, schema=schema)


def _to_arrow(spec: TableSpec, name: str, col: Col, part: slice) -> pa.Array:
    kind = spec.column(name).type
    data = col.data[part]
    valid = None if col.valid is None else col.valid[part]
    if kind == "string":
        if col.labels is None:
            raise RuntimeError(f"sample column {spec.name}.{name}: a string needs labels")
        index = pa.array(data.astype(np.int32), mask=data < 0)
        return pa.array(col.labels, pa.string()).take(index)
    if kind in ("date", "timestamp"):
        scale = 1 if kind == "date" else 1_000_000
        unit = np.int32 if kind == "date" else np.int64
        values = (np.maximum(data, 0) * scale).astype(unit)
        mask = data < 0 if valid is None else ~valid
        return pa.array(values, type=spec.schema.field(name).type, mask=mask)
    mask = None if valid is None else ~valid
    return pa.array(data, type=spec.schema.field(name).type, mask=mask)


def fixed_width_strings(chars: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """An Arrow string array from an (n, width) uint8 array of ASCII characters."""
    rows, width = chars.shape
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    data = pa.py_buffer(np.ascontiguousarray(chars))
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), data, bitmap)


def _write_digits(out: np.ndarray, start: int, width: int, values: np.ndarray) -> None:
    """Write ``values`` zero-padded to ``width`` digits into ``out[:, start:start+width]``."""
    x = np.maximum(values, 0).astype(np.int64)
    end = start + width
    while end - start >= 4:
        x, low = np.divmod(x, 10_000)
        out[:, end - 4 : end] = _DIGITS4[low]
        end -= 4
    while end - start >= 2:
        x, low = np.divmod(x, 100)
        out[:, end - 2 : end] = _DIGITS2[low]
        end -= 2
    if end > start:
        out[:, start] = x % 10 + 48


def _date_bytes(days: np.ndarray, width: int) -> np.ndarray:
    moments = np.maximum(days, 0).astype("M8[D]")
    months = moments.astype("M8[M]")
    out = np.empty((len(days), width), np.uint8)
    _write_digits(out, 0, 4, moments.astype("M8[Y]").astype(np.int64) + 1970)
    _write_digits(out, 5, 2, months.astype(np.int64) % 12 + 1)
    _write_digits(out, 8, 2, (moments - months.astype("M8[D]")).astype(np.int64) + 1)
    out[:, 4] = out[:, 7] = ord("-")
    return out


def iso_dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """``YYYY-MM-DD`` text for day numbers."""
    return fixed_width_strings(_date_bytes(days, 10), valid)


def iso_timestamps(seconds: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """``YYYY-MM-DD HH:MM:SS`` text for seconds since 1970."""
    days, clock = np.divmod(np.maximum(seconds, 0), DAY)
    out = _date_bytes(days, 19)
    out[:, 10] = ord(" ")
    out[:, 13] = out[:, 16] = ord(":")
    _write_digits(out, 11, 2, clock // 3600)
    _write_digits(out, 14, 2, clock // 60 % 60)
    _write_digits(out, 17, 2, clock % 60)
    return fixed_width_strings(out, valid)
