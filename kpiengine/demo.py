"""``kpi demo``: the product's front door.

Builds the sample B2B warehouse in an embedded DuckDB file, runs the whole bundled
catalog for the last 12 complete months of the data, evaluates the rules, writes an HTML
report and prints a summary.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from kpiengine.periods import add_periods

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
    from kpiengine.evaluate import evaluate
    from kpiengine.present import summary_table
    from kpiengine.progress import progress
    from kpiengine.render import render_html
    from kpiengine.report import build_report
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
        bar.done()
        bar.step("evaluating rules and writing the report")
        alerts, statuses = evaluate(project.model, result)
        result.alerts = alerts
        report = build_report(project.model, result, alerts, statuses)
        html = render_html(report)
        target = out / "report.html"
        write_atomically(target, html)
        bar.done()
    summary = summary_table(report)
    return DemoOutcome(
        warehouse, target, summary, len(project.kpis), len(alerts), time.perf_counter() - began
    )


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside the target, then rename: never a partial file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
