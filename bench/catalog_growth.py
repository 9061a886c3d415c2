"""How the catalog statement grows with the data (issue 16: 1M → 10M → 50M, linear
expected), and the peak memory of `kpi run --all` at each size.

For each size: the whole bundled catalog in one statement at month grain over 2025
(compiled once, run ``RUNS`` times, median), and over all history (`kpi run --all`, as
a command in a new process, timed once with its peak RSS from ``getrusage``). The
baseline is the first size given: each later time is printed as a multiple of it next
to the multiple of the rows. The numbers are not compared here: the statement is the one
`execute_speed.py` checks against per-KPI queries, and the equivalence tests check it
against other engines.

``--memory-limit SIZE`` (e.g. ``4GB``) gives DuckDB that buffer pool, as
``?memory_limit=`` in the URL of both the statement and `kpi run --all` (a limit in the
URL is never widened); without it, the connector's default (800 MB, widened to 4 GB for
a statement that cannot run in it: kpiengine/execute/duckdb_connector.py).

Usage: python bench/catalog_growth.py RUNS ROWS [ROWS ...] [--memory-limit SIZE]
       (sample data generated once per size in bench/.data; 50M needs ≈ 21 GB of disk)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["KPI_CACHE"] = "0"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hand_sql import END, ROOT, START, duckdb_url, sample

import kpiengine


def statement_seconds(path: Path, runs: int, memory_limit: str | None = None) -> float:
    """Median time of the catalog statement over 2025 (the compiled SQL, run again)."""
    project = kpiengine.load(ROOT / "definitions")
    names = list(project.kpis)
    with kpiengine.connect(duckdb_url(path, memory_limit)) as connection:
        sql = project.compile(names, grain="month", start=START, end=END)
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            connection.execute(sql)
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def run_all(path: Path, memory_limit: str | None = None) -> tuple[float, float]:
    """`kpi run --all` over all history in a new process: (seconds, peak RSS in MiB)."""
    command = [
        str(Path(sys.executable).with_name("kpi")),
        "run",
        "--all",
        "--project",
        str(ROOT / "definitions"),
        "--connector",
        duckdb_url(path, memory_limit),
        "--format",
        "csv",
    ]
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest
    seconds = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"kpi run --all failed (exit code {child.returncode})")
    return seconds, usage.ru_maxrss / 1024


def main(runs: int, sizes: list[int], memory_limit: str | None = None) -> None:
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    pool = memory_limit or "the connector's default"
    print(f"load average {loads}; DuckDB memory limit: {pool}")
    print(f"{'rows':>12} {'statement':>10} {'×':>6} {'rows ×':>7} {'run --all':>10} {'peak':>9}")
    first: tuple[int, float] | None = None
    for rows in sizes:
        path = sample(rows)
        seconds = statement_seconds(path, runs, memory_limit)
        first = first or (rows, seconds)
        whole, peak = run_all(path, memory_limit)
        print(
            f"{rows:>12,} {seconds:>9.2f}s {seconds / first[1]:>6.1f} {rows / first[0]:>7.1f}"
            f" {whole:>9.1f}s {peak:>6.0f} MiB  (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=int, help="runs of the statement per size (median)")
    parser.add_argument("rows", type=int, nargs="+", help="sizes; the first is the baseline")
    parser.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="DuckDB's buffer pool (e.g. 4GB), as ?memory_limit= in both URLs",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    options = arguments()
    main(options.runs, options.rows, options.memory_limit)
