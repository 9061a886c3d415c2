"""Peak memory and time of the sample generator alone (issue 16: 50M deals under 2 GB).

Generates ``ROWS`` opportunities and drops every batch once counted, so what is measured
is the generator, not a writer. Prints rows per table, wall and CPU time, and the peak
RSS of the process (``ru_maxrss``); one size per process, since the peak is the
process's. A line per shard-sized step (``--trace``) shows RSS staying flat.

Usage: python bench/sample_memory.py ROWS [--seed S] [--shard-rows N] [--trace]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

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
    args = parser.parse_args()

    start, cpu = time.perf_counter(), time.process_time()
    counts: dict[str, int] = {}
    last = None
    for table, batch in generate(args.rows, args.seed, shard_rows=args.shard_rows):
        counts[table] = counts.get(table, 0) + batch.num_rows
        if args.trace and table != last and last == "opportunities":
            print(
                f"  {time.perf_counter() - start:7.1f} s  opportunities so far"
                f" {counts['opportunities']:>11,}  rss {rss_mb():6.0f} MB"
                f"  peak {peak_mb():6.0f} MB",
                flush=True,
            )
        last = table
    result = {
        "rows": args.rows,
        "shard_rows": args.shard_rows or SHARD_ROWS,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(peak_mb()),
        "total_rows": sum(counts.values()),
        "tables": counts,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
