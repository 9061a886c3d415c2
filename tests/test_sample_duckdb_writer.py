"""The DuckDB sample writer writes batch by batch: each batch is pulled from the generator
between statements, never inside one (so the next shard is built while DuckDB holds only
its buffer pool: docs/performance.md, "Memory of the sample generator"), and the tables
hold exactly the generator's rows, in its order, shards included."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from pathlib import Path

import duckdb
import pyarrow as pa

from kpiengine.sample.generate import generate
from kpiengine.sample.tables import SPEC_BY_NAME
from kpiengine.sample.write import DuckDBWriter, write_sample

ROWS, SEED, SHARD = 1_500, 11, 500  # three shards


def _generated() -> dict[str, pa.Table]:
    """Every table of the company, as the generator yields it (runs concatenated)."""
    runs: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in generate(ROWS, SEED, shard_rows=SHARD):
        runs.setdefault(table, []).append(batch)
    return {t: pa.Table.from_batches(b, SPEC_BY_NAME[t].schema) for t, b in runs.items()}


def test_tables_hold_the_generated_rows_in_order(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    write_sample(f"duckdb:///{path}", ROWS, SEED, shard_rows=SHARD)
    expected = _generated()
    with duckdb.connect(str(path), read_only=True) as connection:
        for table, rows in expected.items():
            found = connection.sql(f'SELECT * FROM "{table}"').to_arrow_table()
            assert found.schema.names == rows.schema.names, table
            assert found.cast(rows.schema).equals(rows), table  # values and order


def test_each_batch_is_pulled_between_statements(tmp_path: Path) -> None:
    """Inside the pull, the connection is idle (no statement reading the stream) and the
    table already holds every earlier batch."""
    writer = DuckDBWriter(f"duckdb:///{tmp_path / 'p.duckdb'}", replace=False)
    table = "leads"
    runs = [  # each shard's run, its batches cut in three to have several per run
        [batch.slice(start, 70) for _, batch in group for start in range(0, batch.num_rows, 70)]
        for key, group in groupby(generate(ROWS, SEED, shard_rows=SHARD), key=lambda i: i[0])
        if key == table
    ]
    assert len(runs) == 3 and all(len(r) > 1 for r in runs)
    seen: list[tuple[int, int]] = []
    written = 0

    def pulled(run: list[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal written
        for batch in run:
            [(present,)] = writer.connection.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]
            ).fetchall()
            if present:
                [(count,)] = writer.connection.execute(f'SELECT count(*) FROM "{table}"').fetchall()
                seen.append((count, written))
            written += batch.num_rows
            yield batch

    schema = SPEC_BY_NAME[table].schema
    writer.write_table(table, schema, pulled(runs[0]))
    for run in runs[1:]:
        writer.append_table(table, schema, pulled(run))
    writer.commit()
    assert len(seen) == sum(len(r) for r in runs) - 1
    assert all(found == expected for found, expected in seen)
    with duckdb.connect(str(tmp_path / "p.duckdb"), read_only=True) as connection:
        assert connection.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (written,)


def test_a_table_without_rows_is_created_with_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    writer = DuckDBWriter(f"duckdb:///{path}", replace=False)
    schema = SPEC_BY_NAME["social_posts"].schema
    writer.write_table("social_posts", schema, iter([]))
    writer.commit()
    with duckdb.connect(str(path), read_only=True) as connection:
        found = connection.execute('SELECT * FROM "social_posts"').df()
    assert len(found) == 0
    assert list(found.columns) == schema.names
