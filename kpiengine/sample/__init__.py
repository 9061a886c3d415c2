"""The sample B2B SaaS dataset: deterministic from a seed, any size.

``generate(rows, seed)`` streams ``(table, pyarrow.RecordBatch)`` for every table of
:data:`TABLES`; ``write_sample(url, ...)`` writes them to DuckDB, SQLite or Parquet/CSV
files, or through a plugin's writer (PostgreSQL). ``rows`` is the number of
opportunities; the other tables follow in proportion. See docs/sample-data.md.
"""

from __future__ import annotations

from kpiengine.sample.generate import generate
from kpiengine.sample.tables import SPECS, TABLES, source_yaml
from kpiengine.sample.write import BUILTIN_SAMPLE_WRITERS, SampleWriterSpec, write_sample

__all__ = [
    "BUILTIN_SAMPLE_WRITERS",
    "SPECS",
    "TABLES",
    "SampleWriterSpec",
    "generate",
    "source_yaml",
    "write_sample",
]
