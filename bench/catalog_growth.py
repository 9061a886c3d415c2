"""How the catalog statement grows with the data (issue 16: 1M → 10M → 50M, linear
expected), and the peak memory of `kpi run --all` at each size.

For each size: the whole bundled catalog in one statement at month grain over 2025
(compiled once, run ``RUNS`` times, median), and over all history (`kpi run --all`, as
a command in a new process, timed once with its peak RSS from ``getrusage``). The
baseline is the first size given: each later time is printed as a multiple of it next
to the multiple of the rows. The numbers are not compared here: the statement is the one
`execute_speed.py` checks against per-KPI queries, and the equivalence tests check it
against other engines.

Usage: python bench/catalog_growth.py [RUNS] ROWS [ROWS ...]
       (sample data generated once per size in bench/.data; 50M needs ≈ 21 GB of disk)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["KPI_CACHE"] = "0"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hand_sql import END, ROOT, START, sample

import kpiengine


def statement_seconds(path: Path, runs: int) -> float:
    """Median time of the catalog statement over 2025 (the compiled SQL, run again)."""
    project = kpiengine.load(ROOT / "definitions")
    names = list(project.kpis)
    with kpiengine.connect(f"duckdb:///{path}") as connection:
        sql = project.compile(names, grain="month", start=START, end=END)
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            connection.execute(sql)
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def run_all(path: Path) -> tuple[float, float]:
    """`kpi run --all` over all history in a new process: (seconds, peak RSS in MiB)."""
    command = [
        str(Path(sys.executable).with_name("kpi")),
        "run",
        "--all",
        "--project",
        str(ROOT / "definitions"),
        "--connector",
        f"duckdb:///{path}",
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


def main(runs: int, sizes: list[int]) -> None:
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {loads}")
    print(f"{'rows':>12} {'statement':>10} {'×':>6} {'rows ×':>7} {'run --all':>10} {'peak':>9}")
    first: tuple[int, float] | None = None
    for rows in sizes:
        path = sample(rows)
        seconds = statement_seconds(path, runs)
        first = first or (rows, seconds)
        whole, peak = run_all(path)
        print(
            f"{rows:>12,} {seconds:>9.2f}s {seconds / first[1]:>6.1f} {rows / first[0]:>7.1f}"
            f" {whole:>9.1f}s {peak:>6.0f} MiB",
            flush=True,
        )


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    if len(arguments) < 2:
        raise SystemExit(__doc__)
    main(arguments[0], arguments[1:])
