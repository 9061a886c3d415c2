"""``kpi demo``: the product's front door.

Builds the sample B2B warehouse in an embedded DuckDB file, runs the whole bundled
catalog for the last 12 complete months of the data, evaluates the rules, writes an HTML
report and prints a summary.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kpiengine.plan.periods import add_periods

SAMPLE_FIRST_MONTH = dt.date(2024, 1, 1)


def catalog_path() -> Path:
    """The bundled catalog: inside the installed package, else the checkout's definitions/."""
    packaged = Path(str(resources.files("kpiengine").joinpath("catalog")))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "definitions"


@dataclass
class DemoOutcome:
    warehouse: Path
    report: Path
    summary: str
    kpis: int
    alerts: int
    seconds: float


def run_demo(
    out: Path, rows: int = 100_000, seed: int = 42, show_progress: bool | None = None
) -> DemoOutcome:
    import time

    from kpiengine import api
    from kpiengine.render.cohort_formats import demo_cohort
    from kpiengine.render.progress import progress
    from kpiengine.render.renderers import render_html
    from kpiengine.render.report_data import build_report
    from kpiengine.render.terminal import summary_table
    from kpiengine.sample import TABLES, write_sample
    from kpiengine.sample.calendar import MONTHS

    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    warehouse = (out / "warehouse.duckdb").resolve()
    url = f"duckdb:///{warehouse}"
    end = add_periods(SAMPLE_FIRST_MONTH, "month", MONTHS)
    start = add_periods(end, "month", -12)
    with progress(len(TABLES) + 3, show_progress) as bar:
        written: set[str] = set()

        def on_batch(table: str, count: int) -> None:
            if table not in written:
                written.add(table)
                bar.done()
            bar.note(f"sample data: {table} ({count:,} rows)")

        write_sample(url, rows=rows, seed=seed, progress=on_batch, replace=True)
        bar.step("loading the catalog")
        project = api.load(catalog_path())
        bar.done()
        bar.step(f"computing {len(project.kpis)} KPIs")
        with api.connect(url) as connection:
            result = project.run(None, connection, grain="month", start=start, end=end)
            cohort = demo_cohort(project, connection, start, end)  # the report's heat map
        bar.done()
        bar.step("evaluating rules and writing the report")
        alerts, statuses = result.alerts, result.statuses  # evaluated by project.run
        report = build_report(project.model, result, alerts, statuses)
        report.cohort = cohort
        html = render_html(report)
        target = out / "report.html"
        write_atomically(target, html)
        bar.done()
    summary = summary_table(report)
    return DemoOutcome(
        warehouse, target, summary, len(project.kpis), len(alerts), time.perf_counter() - began
    )


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write to a temporary file beside the target, then rename: never a partial file.
    Text is written as UTF-8; bytes (a plugin renderer's PDF) as they are.

    The file gets the permissions a plain ``open()`` would give it (``0666`` less the
    umask, usually ``0644``), or keeps those of the file it replaces; ``mkstemp`` alone
    would leave ``0600``. A folder that does not exist is a usage error naming it: the
    output path is the user's choice, and creating folders for a typo helps no one.
    """
    from kpiengine.errors import UsageError

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(
            f"cannot write {path}: folder {folder} does not exist "
            f"(hint: create it first, e.g. `mkdir -p {folder}`)"
        )
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        os.fchmod(descriptor, _mode_for(path))
        binary = isinstance(text, bytes)
        with os.fdopen(
            descriptor, "wb" if binary else "w", encoding=None if binary else "utf-8"
        ) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    """The mode of the file being replaced, else ``0666`` less the process umask."""
    try:
        existing = path.stat()
    except OSError:
        existing = None
    if existing is not None and stat.S_ISREG(existing.st_mode):
        return stat.S_IMODE(existing.st_mode)
    return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask (Python can only read it by setting it; Linux shows it in
    /proc, which avoids the brief change where it exists)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
