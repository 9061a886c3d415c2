"""Compile speed: load + check + compile N KPI definitions, and warm single queries.

Baseline measured in the same run: a sqlglot round trip (parse + generate) of the very
statement kpiengine emits, i.e. what merely handling that SQL costs with the library we
build on. Prints absolute times and the ratio. Usage: python bench/compile_speed.py [N...]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlglot

from kpiengine.testing.dataset import SALES_SOURCES, write_files

#: what is timed here is loading and compiling, not the cache of repeated runs
#: (kpiengine.cache; bench/cold_start.py times that)
os.environ["KPI_CACHE"] = "0"

# the shared sales project's opportunities and accounts (spend would be unused: KPI601)
SOURCES = {path: text for path, text in SALES_SOURCES.items() if path != "sources/spend.yaml"}

SHAPES = [
    "count(where stage = 'won') / count(where stage in ('won', 'lost'))",
    "sum(amount where stage = 'won' and region != 'internal')",
    "avg(days_between(created_at, closed_at) where stage = 'won')",
    "percentile(amount, 0.9 where accounts.segment = 'smb')",
    "count_distinct(account_id where amount > {i})",
    "sum(amount * (1 - coalesce(amount / 1000, 0)) where stage = 'won') / 1000",
]


def make_project(root: Path, count: int) -> Path:
    """The shared small sales project's sources and ``count`` generated KPIs over them."""
    write_files(root, SOURCES)
    (root / "kpis").mkdir()
    for i in range(count):
        if i % 10 == 9:
            text = f"kpi: k{i}\ntitle: Derived {i}\nexpression: k{i - 1} / k{i - 2}\n"
        else:
            expression = SHAPES[i % len(SHAPES)].format(i=i)
            text = (
                f"kpi: k{i}\ntitle: KPI {i}\nsource: opportunities\n"
                f"expression: {expression}\nunit: number\n"
                "dimensions: [region, accounts.segment]\n"
            )
        (root / "kpis" / f"k{i}.yaml").write_text(text)
    return root


def load_average() -> str:
    """The machine's load (1, 5, 15 min): timings taken on a busy machine are slower."""
    return "load average " + " ".join(f"{load:.2f}" for load in os.getloadavg())


def best(function, repeat: int = 5, clock=time.perf_counter) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = clock()
        function()
        times.append(clock() - start)
    return min(times)


def cpu_per_call(function, calls: int = 20, repeat: int = 15) -> float:  # type: ignore[no-untyped-def]
    """The least CPU time of one call, over ``repeat`` batches of ``calls``: on a machine
    other processes keep busy, CPU time moves far less than wall time (which counts the
    time this process waits for a core)."""
    return best(lambda: [function() for _ in range(calls)], repeat, time.process_time) / calls


def main(sizes: list[int]) -> None:
    import kpiengine

    print(load_average())
    print(f"{'KPIs':>6} {'load+check+compile':>20} {'per KPI':>10}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            root = make_project(Path(folder) / "defs", size)

            def cold(root: Path = root) -> None:
                project = kpiengine.load(root)
                project.compile(None, grain="month", start="2024-01-01", end="2025-01-01")

            seconds = best(cold, 3)
            print(f"{size:>6} {seconds * 1000:>17.1f} ms {seconds / size * 1e6:>7.0f} µs")

    with tempfile.TemporaryDirectory() as folder:
        project = kpiengine.load(make_project(Path(folder) / "defs", 30))
        for label, names in (("1 KPI", ["k0"]), ("10 KPIs", [f"k{i}" for i in range(10)])):
            options = {
                "grain": "month",
                "by": ["region"],
                "start": "2024-01-01",
                "end": "2025-01-01",
            }
            project.compile(names, **options)
            runs = [
                best(lambda names=names, options=options: project.compile(names, **options), 1)
                for _ in range(50)
            ]
            ours = statistics.median(runs)
            cpu = cpu_per_call(
                lambda names=names, options=options: project.compile(names, **options)
            )
            sql = project.compile(names, **options)
            base = statistics.median(
                best(lambda sql=sql: sqlglot.parse_one(sql, read="duckdb").sql("duckdb"), 1)
                for _ in range(50)
            )
            print(
                f"{label:>8} warm compile {ours * 1000:7.2f} ms (CPU {cpu * 1000:5.2f} ms) | "
                f"sqlglot round trip of the same SQL {base * 1000:7.2f} ms | "
                f"ratio {ours / base:5.2f}"
            )
    print(load_average())


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
