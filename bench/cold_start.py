"""Cold start of `kpi run ONE_KPI` in a new process (issue 16: warm < 300 ms, first < 600 ms).

Baselines measured in the same run, with the same interpreter: `python -c pass` and
`python -c 'import duckdb'` (what any DuckDB command pays before it does anything).
Measured, each as the median of several new processes:

- first run: an empty statement cache (kpiengine.cache), bytecode compiled;
- warm: the cache filled by a previous run (loaded project and compiled statements:
  neither PyYAML, lark nor sqlglot is imported);
- without cache (``KPI_CACHE=0``): what every run cost before the cache;
- `kpi check` warm, and `kpi run` without --from/--to (the data-range query) warm.

Usage: python bench/cold_start.py [RUNS]   (generates bench/.data/sample-100000.duckdb once)
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kpiengine
from kpiengine.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent
KPI = str(Path(sys.executable).parent / "kpi")
ROWS = 100_000


def sample() -> Path:
    path = ROOT / "bench" / ".data" / f"sample-{ROWS}.duckdb"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sample(f"duckdb:///{path}", rows=ROWS, seed=42)
    return path


def once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")
    return elapsed * 1000


def median_ms(
    command: list[str], env: dict[str, str], runs: int, fresh: Path | None = None
) -> float:
    """Median over ``runs`` new processes; with ``fresh``, that cache folder is emptied
    before each (a first run every time)."""
    times = []
    for _ in range(runs):
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        times.append(once(command, env))
    return statistics.median(times)


def main(runs: int) -> None:
    compileall.compile_dir(Path(kpiengine.__file__).parent, quiet=1)
    database = sample()
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "cache"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"KPI_CACHE_DIR": str(cache)}
        common = ["--project", str(ROOT / "definitions"), "--connector", f"duckdb:///{database}"]
        ranged = ["--from", "2025-01-01", "--to", "2025-04-01"]
        one = [KPI, "run", "win_rate", *ranged, *common]
        check = [KPI, "check", *ranged, *common]
        unranged = [KPI, "run", "win_rate", *common]
        python = [sys.executable, "-c", "pass"]
        duck = [sys.executable, "-c", "import duckdb"]
        base = median_ms(python, env, runs)
        duckdb_ms = median_ms(duck, env, runs)
        first = median_ms(one, env, runs, fresh=cache)
        once(one, env)  # fill the cache
        warm = median_ms(one, env, runs)
        off = median_ms(one, env | {"KPI_CACHE": "0"}, runs)
        once(check, env)
        check_warm = median_ms(check, env, runs)
        once(unranged, env)
        unranged_warm = median_ms(unranged, env, runs)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; medians of {runs} processes")
    print(f"python -c pass                    {base:6.0f} ms (baseline)")
    print(f"python -c 'import duckdb'         {duckdb_ms:6.0f} ms (baseline)")
    rows = [
        ("kpi run win_rate, first run", first, 600),
        ("kpi run win_rate, warm cache", warm, 300),
        ("kpi run win_rate, KPI_CACHE=0", off, None),
        ("kpi check (rules), warm cache", check_warm, None),
        ("kpi run, data range, warm cache", unranged_warm, None),
    ]
    for label, value, target in rows:
        mark = (
            ""
            if target is None
            else f"  target < {target} ms {'ok' if value < target else 'MISSED'}"
        )
        print(f"{label:33} {value:6.0f} ms  ({value / duckdb_ms:4.1f}x import duckdb){mark}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
