"""Peak memory and time of the sample generator alone (issue 16: 50M deals under 2 GB).

Generates ``ROWS`` opportunities and drops every batch once counted, so what is measured
is the generator, not a writer. Prints rows per table, wall and CPU time, and the peak
RSS of the process (``ru_maxrss``); one size per process, since the peak is the
process's. A line per shard-sized step (``--trace``) shows RSS staying flat.

``--to URL`` measures a writer instead: the batches go to ``write_sample(URL)`` (e.g.
``duckdb:///bench/.data/tmp-5m.duckdb``; the file must not exist, and is deleted after
unless ``--keep``), so the peak is the generator's and the writer's together;
``--duckdb-memory-limit SIZE`` replaces the DuckDB writer's buffer pool limit (256MB in
kpiengine/sample/write.py) for that run, to reproduce the writer-settings table of
docs/performance.md.

Usage: python bench/sample_memory.py ROWS [--seed S] [--shard-rows N] [--trace]
                                          [--to URL [--duckdb-memory-limit SIZE] [--keep]]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import kpiengine.sample.write as sample_write
from kpiengine.execute.connectors import path_of
from kpiengine.sample.generate import SHARD_ROWS, generate


def rss_mb() -> float:
    """Current resident set size, from /proc (Linux)."""
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shard-rows", type=int, default=None)
    parser.add_argument("--trace", action="store_true", help="RSS after every opportunities run")
    parser.add_argument("--to", metavar="URL", help="write to this new target (a writer's peak)")
    parser.add_argument("--duckdb-memory-limit", metavar="SIZE", help="the DuckDB writer's pool")
    parser.add_argument("--keep", action="store_true", help="keep what --to wrote")
    args = parser.parse_args()

    start, cpu = time.perf_counter(), time.process_time()
    counts = written(args) if args.to else generated(args, start)
    result = {
        "rows": args.rows,
        "to": args.to or "nowhere (the generator alone)",
        "duckdb_writer": sample_write._DUCKDB_WRITER_CONFIG if args.to else None,
        "shard_rows": args.shard_rows or SHARD_ROWS,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(peak_mb()),
        "total_rows": sum(counts.values()),
        "tables": counts,
    }
    print(json.dumps(result, indent=1))


def generated(args: argparse.Namespace, start: float) -> dict[str, int]:
    """Rows per table, every batch dropped once counted (the generator alone)."""
    counts: dict[str, int] = {}
    last = None
    for table, batch in generate(args.rows, args.seed, shard_rows=args.shard_rows):
        counts[table] = counts.get(table, 0) + batch.num_rows
        if args.trace and table != last and last == "opportunities":
            trace(start, counts["opportunities"])
        last = table
    return counts


def trace(start: float, opportunities: int) -> None:
    print(
        f"  {time.perf_counter() - start:7.1f} s  opportunities so far"
        f" {opportunities:>11,}  rss {rss_mb():6.0f} MB  peak {peak_mb():6.0f} MB",
        flush=True,
    )


def written(args: argparse.Namespace) -> dict[str, int]:
    """Rows per table written to ``args.to`` (refused if it exists: nothing is replaced),
    with the DuckDB writer's pool replaced for this run if asked; deleted after unless
    ``--keep``."""
    if args.duckdb_memory_limit:
        config = {**sample_write._DUCKDB_WRITER_CONFIG, "memory_limit": args.duckdb_memory_limit}
        sample_write._DUCKDB_WRITER_CONFIG = config
    target = Path(path_of(args.to))
    if target.exists():
        raise SystemExit(f"{target} exists: give a new file or folder to write to")
    start = time.perf_counter()
    last: dict[str, Any] = {"table": "", "opportunities": 0}

    def progress(table: str, rows: int) -> None:
        """Trace at the end of each opportunities run (rows are counted over the runs)."""
        if args.trace and last["table"] == "opportunities" and table != "opportunities":
            trace(start, last["opportunities"])
        last["table"] = table
        last[table] = rows

    try:
        return sample_write.write_sample(
            args.to, args.rows, args.seed, progress, shard_rows=args.shard_rows
        )
    finally:
        if not args.keep and target.is_file():
            target.unlink()
        elif not args.keep and target.is_dir():
            import shutil

            shutil.rmtree(target)


if __name__ == "__main__":
    main()
