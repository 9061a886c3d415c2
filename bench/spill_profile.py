"""Which operators of the catalog statement spill, or slow down, in a small DuckDB pool.

The whole bundled catalog in one statement at month grain over 2025 (as
``catalog_growth.py`` times it), on the sample database of ``ROWS`` opportunities opened
read-only with the connector's own configuration (kpiengine/execute/duckdb_connector.py:
allocator thresholds, no extensions), once per ``--memory-limit`` (default: the
connector's 800MB, then 4GB), each in a fresh connection with its own empty temp folder.
The compiled statement is the one ``kpi run`` runs; nothing of it is changed here.

Per run it prints: wall time and load; the process's RSS and the temp folder's size,
polled every ``--poll`` seconds from a thread; the peak of ``duckdb_memory()`` per tag
(memory and temporary storage: which kind of state spilled, e.g. HASH_TABLE for hash
aggregates and joins, ORDER_BY for windows, COLUMN_DATA for materialized CTEs); DuckDB's
profiler totals (peak buffer memory, peak temp folder size, bytes spilled); and the
operators that took longest, each named with the CTE it computes (``s3`` is the third
scan's aggregate, ``l1`` a layer of derived KPIs, ``__aggregate_cte_…`` an aggregate
DuckDB materializes itself), side by side across the limits.

``--setting NAME=VALUE`` adds a DuckDB setting to the connection (e.g.
``preserve_insertion_order=false``, ``threads=1``) to measure a connector-level change.

Usage: python bench/spill_profile.py [ROWS] [--memory-limit SIZE ...] [--setting N=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["KPI_CACHE"] = "0"

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hand_sql import END, ROOT, START, sample

import kpiengine
from kpiengine.execute.duckdb_connector import DEFAULT_MEMORY_LIMIT, _config

#: operators printed per run, longest first
TOP = 25


@dataclass
class Peaks:
    """What the polling thread saw: the largest value of each quantity."""

    rss: int = 0
    temp: int = 0
    memory: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spilled: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: int = 0


def rss_bytes() -> int:
    """The process's resident set now, from /proc (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def folder_bytes(folder: Path) -> int:
    """Bytes of the files in ``folder`` now (DuckDB's spill files come and go)."""
    total = 0
    for entry in os.scandir(folder):
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            continue
    return total


def poll(connection: Any, folder: Path, peaks: Peaks, stop: threading.Event, every: float) -> None:
    """Until ``stop``: the peaks of RSS, the temp folder and ``duckdb_memory()`` per tag,
    read through a cursor of its own (another connection to the same database)."""
    cursor = connection.cursor()
    query = "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory()"
    while not stop.wait(every):
        peaks.rss = max(peaks.rss, rss_bytes())
        peaks.temp = max(peaks.temp, folder_bytes(folder))
        for tag, memory, spilled in cursor.execute(query).fetchall():
            peaks.memory[tag] = max(peaks.memory[tag], memory)
            peaks.spilled[tag] = max(peaks.spilled[tag], spilled)
        peaks.samples += 1
    cursor.close()


def operators(node: dict[str, Any], cte: str = "final SELECT") -> Iterator[tuple[str, str, Any]]:
    """(CTE, operator, node) for every operator of the profile tree. A CTE node's first
    child computes that CTE; its second is the rest of the query."""
    children = node.get("children", [])
    if node.get("name") == "CTE":
        name = node.get("extra_info", {}).get("CTE Name", "?")
        yield name, "CTE", node
        if children:
            yield from operators(children[0], name)
        for child in children[1:]:
            yield from operators(child, cte)
        return
    if "name" in node:
        yield cte, node["name"], node
    for child in children:
        yield from operators(child, cte)


def describe(node: dict[str, Any]) -> str:
    """A short line of what the operator does (groups, aggregates, join keys, table)."""
    info = node.get("extra_info", {})
    parts = []
    for key in ("Table", "Join Type", "Conditions", "Groups", "Aggregates", "Function"):
        if key in info:
            value = info[key]
            text = ", ".join(value) if isinstance(value, list) else str(value)
            parts.append(f"{key.lower()}: {text}")
    return "; ".join(parts)[:110]


def run(sql: str, path: Path, limit: str, settings: list[str], every: float) -> dict[str, Any]:
    """The statement once in a fresh read-only connection with ``limit``: timings,
    peaks and the profile."""
    import duckdb

    with tempfile.TemporaryDirectory(prefix="kpi-spill-") as scratch:
        spill = Path(scratch) / "spill"
        spill.mkdir()
        config = _config(f"duckdb:///{path}", limit) | {"temp_directory": str(spill)}
        connection = duckdb.connect(str(path), read_only=True, config=config)
        for setting in settings:
            name, _, value = setting.partition("=")
            connection.execute(f"SET {name} = '{value}'")  # the operator's own bench input
        output = Path(scratch) / "profile.json"
        connection.execute("SET enable_profiling = 'json'")
        connection.execute("SET profiling_mode = 'detailed'")
        connection.execute("SET profiling_output = ?", [str(output)])
        peaks, stop = Peaks(), threading.Event()
        poller = threading.Thread(target=poll, args=(connection, spill, peaks, stop, every))
        load, began = os.getloadavg()[0], time.perf_counter()
        poller.start()
        try:
            connection.execute(sql).fetchall()
        finally:
            stop.set()
            poller.join()
        seconds = time.perf_counter() - began
        connection.close()
        profile = json.loads(output.read_text())
    return {
        "seconds": seconds,
        "load": (load, os.getloadavg()[0]),
        "peaks": peaks,
        "profile": profile,
    }


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def report(limit: str, result: dict[str, Any]) -> None:
    peaks, system = result["peaks"], result["profile"].get("system", {})
    before, after = result["load"]
    print(f"\n== memory_limit {limit}: {result['seconds']:.1f} s (load {before:.2f} → {after:.2f})")
    print(
        f"   polled ({peaks.samples} samples): RSS {mib(peaks.rss)}, temp folder {mib(peaks.temp)}"
    )
    print(
        f"   profiler: peak buffer {mib(system.get('peak_buffer_memory', 0))}, peak temp"
        f" {mib(system.get('peak_temp_dir_size', 0))}, spilled"
        f" {mib(system.get('total_bytes_spilled', 0))}"
    )
    tags = sorted(peaks.memory, key=lambda t: -(peaks.memory[t] + peaks.spilled[t]))
    for tag in tags:
        if peaks.memory[tag] or peaks.spilled[tag]:
            memory, spilled = mib(peaks.memory[tag]), mib(peaks.spilled[tag])
            print(f"   {tag:<22} memory {memory:>11}  spilled {spilled:>11}")


def compare(results: dict[str, dict[str, Any]]) -> None:
    """The longest operators (by the first limit's timing), each limit's time side by side."""
    limits = list(results)
    timed: dict[tuple[str, int], dict[str, Any]] = {}
    for limit in limits:
        seen: dict[tuple[str, str], int] = defaultdict(int)
        for cte, name, node in operators({"children": results[limit]["profile"]["operator"]}):
            # the n-th operator of that kind in that CTE: the same across runs (same plan)
            index = seen[(cte, name)]
            seen[(cte, name)] += 1
            key = (f"{cte} {name} #{index}", 0)
            entry = timed.setdefault(key, {"node": node, "times": {}})
            entry["times"][limit] = node.get("timing", 0.0)
    first = limits[0]
    ranked = sorted(timed.items(), key=lambda kv: -kv[1]["times"].get(first, 0.0))[:TOP]
    heads = "".join(f" {limit:>9}" for limit in limits)
    print(f"\n{'operator (CTE, kind, n-th)':<40}{heads} {'rows out':>12}  what")
    for (label, _), entry in ranked:
        times = "".join(f" {entry['times'].get(limit, 0.0):>8.2f}s" for limit in limits)
        node = entry["node"]
        rows = node.get("intermediate_rows", 0)
        print(f"{label:<40}{times} {rows:>12,}  {describe(node)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="?", type=int, default=10_000_000)
    parser.add_argument("--memory-limit", action="append", dest="limits", metavar="SIZE")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between samples")
    args = parser.parse_args()
    limits = args.limits or [DEFAULT_MEMORY_LIMIT, "4GB"]
    path = sample(args.rows)
    project = kpiengine.load(ROOT / "definitions")
    sql = project.compile(list(project.kpis), grain="month", start=START, end=END)
    print(f"{args.rows:,} opportunities, {len(project.kpis)} KPIs, settings {args.setting or '—'}")
    results = {}
    for limit in limits:
        results[limit] = run(sql, path, limit, args.setting, args.poll)
        report(limit, results[limit])
    compare(results)


if __name__ == "__main__":
    main()
