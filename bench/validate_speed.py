"""Validate speed: `kpi validate` of N KPI files (SPEC issue: 1 000 files in under 1 s).

Three measures per size, best of five:

* in process: ``load_and_check`` (read, YAML, schema, parse, check, lint warnings);
* the same plus rendering every output format from its diagnostics;
* the command as CI runs it: ``kpi validate DIR`` in a fresh process (start-up included).

Each size is measured on a clean project and on one where every tenth file has an error
(so the error paths, which word JSON Schema messages with jsonschema, are timed too).
Usage: python bench/validate_speed.py [N...]   (default: 100 1000)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kpiengine.testing.dataset import SALES_SOURCES, write_files

#: what is timed here is loading and compiling, not the cache of repeated runs
#: (kpiengine.cache; bench/cold_start.py times that)
os.environ["KPI_CACHE"] = "0"

# the shared sales project's opportunities and accounts (spend would be unused: KPI601)
SOURCES = {path: text for path, text in SALES_SOURCES.items() if path != "sources/spend.yaml"}

SHAPES = [
    ("percent", "count(where stage = 'won') / count(where stage in ('won', 'lost'))"),
    ("currency", "sum(amount where stage = 'won' and region != 'internal')"),
    ("days", "avg(days_between(created_at, closed_at) where stage = 'won')"),
    ("currency", "percentile(amount, 0.9 where accounts.segment = 'smb')"),
    ("count", "count_distinct(account_id where amount > {i})"),
]
# Every tenth file of the "with errors" project: one of these mistakes.
MISTAKES = [
    "expression: count(where stag = 'won')\n",  # KPI301
    "expression: sum(amount\n",  # KPI201
    "expression: count()\nunit: percents\n",  # KPI105 (jsonschema words it)
    "expression: count()\ntitel: typo\n",  # KPI104
]


def make_project(root: Path, count: int, errors: bool = False) -> Path:
    """The shared small sales project's sources and ``count`` generated KPI files."""
    write_files(root, SOURCES)
    (root / "kpis").mkdir()
    for i in range(count):
        head = f"kpi: k{i}\ntitle: KPI {i}\ndescription: KPI number {i}.\nowner: bench\n"
        if errors and i % 10 == 5:
            text = head + "source: opportunities\n" + MISTAKES[(i // 10) % len(MISTAKES)]
        elif i % 10 == 9:
            text = head + f"expression: k{i - 1} / k{i - 2}\nunit: ratio\n"
        else:
            unit, expression = SHAPES[i % len(SHAPES)]
            text = (
                f"{head}source: opportunities\nexpression: {expression.format(i=i)}\n"
                f"unit: {unit}\ndimensions: [region, accounts.segment]\n"
            )
        (root / "kpis" / f"k{i}.yaml").write_text(text)
    return root


def best(function: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(sizes: list[int]) -> None:
    from kpiengine.api import load_and_check
    from kpiengine.render.diagnostic_formats import FORMATS, formatter
    from kpiengine.render.diagnostic_formats.report import ValidationReport

    kpi = Path(sys.executable).with_name("kpi")
    print(
        f"{'files':>6} {'project':>12} {'diagnostics':>11} {'in process':>11} "
        f"{'+ 5 formats':>12} {'kpi validate':>13}"
    )
    for size in sizes:
        for errors in (False, True):
            with tempfile.TemporaryDirectory() as folder:
                root = make_project(Path(folder) / "defs", size, errors)
                load_and_check(root)  # warm: grammar tables, schema predicates
                found = load_and_check(root)[1]

                def with_formats(root: Path = root) -> None:
                    model, diagnostics = load_and_check(root)
                    report = ValidationReport.of(model, diagnostics)
                    for name in FORMATS:
                        formatter(name)(report)

                in_process = best(lambda root=root: load_and_check(root))
                formats = best(with_formats)
                command = best(
                    lambda root=root: subprocess.run(
                        [str(kpi), "validate", str(root), "--format", "json"],
                        capture_output=True,
                        check=False,
                    )
                )
                label = "with errors" if errors else "clean"
                print(
                    f"{size:>6} {label:>12} {len(found):>11} {in_process * 1000:>9.0f} ms "
                    f"{formats * 1000:>9.0f} ms {command * 1000:>10.0f} ms"
                )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000])
