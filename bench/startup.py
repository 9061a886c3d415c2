"""Start-up time of `kpi --help` and `kpi validate` on a small project (SPEC §12: < 150 ms).

Baseline measured in the same run: a bare `python -c pass` of the same interpreter, so
the ratio shows what kpiengine adds on this machine. Compiles bytecode first, as an
installed package has it (this sandbox sets PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kpiengine

KPI = str(Path(sys.executable).parent / "kpi")
PROJECT = {
    "sources.yaml": "source: orders\ntable: orders\ntime: at\ncolumns:\n  at: timestamp\n"
    "  amount: number\n  region: string\n",
    "kpis.yaml": "kpis:\n"
    + "".join(
        f"  - kpi: k{i}\n    source: orders\n    expression: sum(amount where region = 'r{i}')\n"
        for i in range(10)
    ),
}


def median_ms(command: list[str], runs: int = 15) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["KPI_CACHE"] = "0"  # a first `kpi validate`; bench/cold_start.py times the cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    compileall.compile_dir(Path(kpiengine.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory() as folder:
        for name, text in PROJECT.items():
            (Path(folder) / name).write_text(text)
        base = median_ms([sys.executable, "-c", "pass"])
        helped = median_ms([KPI, "--help"])
        validated = median_ms([KPI, "validate", folder])
    print(f"python -c pass      {base:6.1f} ms (baseline)")
    print(f"kpi --help          {helped:6.1f} ms  ({helped / base:4.1f}x baseline)")
    print(f"kpi validate (10)   {validated:6.1f} ms  ({validated / base:4.1f}x baseline)")


if __name__ == "__main__":
    main()
