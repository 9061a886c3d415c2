"""Spark on a real cluster: the catalog through ``spark://127.0.0.1:PORT`` gives DuckDB's numbers.

A standalone master and one worker (1 core, 1 GB) are started on loopback from the
installed pyspark (``bin/spark-class`` of its package folder, so the cluster runs exactly
the driver's Spark version: ``kpiengine_spark.standalone``), once per test session,
and killed at the end whatever happens. The catalog is run by a separate driver
process, as ``kpi run`` would be:

- a process holds one Spark context, and the other Spark tests keep a ``local[2]`` one
  in the pytest process;
- a cluster that accepts the application but never gives it an executor makes Spark
  wait forever ("Initial job has not accepted any resources"): a subprocess can be
  killed after a bounded time, a call in the pytest process cannot.

The data are test_engines.py's sample dataset, loaded by tests/engines.py into DuckDB and
as ``<table>.parquet`` files at an absolute path, which the executor, on the same
machine, reads itself. The number of values compared joins test_engines.py's count
(engine_equivalence.json) when that module runs in the same session.

The fast test checks what the connector does for a cluster on loopback: the driver
listens on 127.0.0.1 too.

A cluster that cannot start skips the test with the reason, or fails it on CI
(``CI=true``). Every wait is bounded; no JVM outlives the session.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.engines import ENGINES, ROOT, on_ci, require, sample_tables
from tests.test_engines import (
    SAMPLE_ROWS,
    SAMPLE_SEED,
    _compared,
    differences,
)

standalone: Any
try:  # the cluster itself (start, stop, bounded waits) is the plugin's
    from kpiengine_spark import standalone
except ImportError:  # no plugin: require() below skips the tests (fails them on CI)
    standalone = None

#: bounds of the driver's run (seconds); starting and stopping the cluster are bounded by
#: kpiengine_spark.standalone
DRIVER_TIMEOUT = 300.0  # the catalog run by the driver process, all cases
#: what the catalog is run at on the cluster (the rows and seed of test_engines.py)
CASES: tuple[tuple[str, str | None], ...] = (("month", None), ("month", "region"))


# -- the cluster ------------------------------------------------------------------------


def live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run. A zombie is dead (a killed executor
    is reparented to init, which reaps it when it gets to it), so it does not count."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: any process of the group, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    found = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended while listed
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A standalone master and one worker for the session; stopped whatever happens
    (teardown, and at exit should the teardown never run)."""
    require(ENGINES["spark"])  # pyspark, the plugin and Java, else skip (fail on CI)
    folder = tmp_path_factory.mktemp("spark_cluster")
    try:
        cluster = standalone.start_cluster(folder)
    except (RuntimeError, OSError) as error:
        message = f"cannot start a Spark standalone cluster on {standalone.LOOPBACK}: {error}"
        if on_ci():
            pytest.fail(f"{message} (required on CI: CI=true)", pytrace=False)
        pytest.skip(message)
    atexit.register(cluster.stop)
    groups = [process.pid for process in cluster.processes]
    try:
        yield cluster
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)
        deadline = time.monotonic() + standalone.STOP_TIMEOUT
        left = [pid for group in groups for pid in live_members(group)]
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = [pid for group in groups for pid in live_members(group)]
        assert not left, f"Spark processes outlived the session: {left}"


# -- the driver process -----------------------------------------------------------------

#: Runs in a fresh Python process: argv = Spark URL, DuckDB URL, JSON cases, output path.
#: Writes each case's values on both engines (keys as text) and where the application
#: ran. DuckDB's reference is computed here too, by the same code the Spark numbers come
#: from (the working tree may change while the test runs).
DRIVER = """
import json, sys
from tests.test_engines import run_catalog
import kpiengine
from kpiengine_spark.connection import parse_url, spark_session, stop

spark_url, duckdb_url, cases, output = sys.argv[1:5]
cases = json.loads(cases)
catalog = kpiengine.load("definitions")
results = {"spark": [], "duckdb": []}
for engine, url in (("duckdb", duckdb_url), ("spark", spark_url)):
    for grain, dimension in cases:
        values = run_catalog(catalog, url, grain, dimension)
        results[engine].append([[[str(p) for p in key], value] for key, value in values.items()])
context = spark_session(parse_url(spark_url).master).sparkContext
executors = context._jsc.sc().getExecutorMemoryStatus().size() - 1  # minus the driver
driver_host = context.getConf().get("spark.driver.host")
ran_on = {"master": context.master, "executors": executors, "driver_host": driver_host}
stop()
with open(output, "w") as out:
    json.dump({**ran_on, "results": results}, out)
"""


def run_driver(urls: list[str], cases: list[list[Any]], output: Path) -> dict[str, Any]:
    """The driver script in its own process group; killed with its JVM after
    DRIVER_TIMEOUT."""
    command = [sys.executable, "-c", DRIVER, *urls, json.dumps(cases), str(output)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=DRIVER_TIMEOUT)
    except subprocess.TimeoutExpired:
        standalone.signal_group(process, signal.SIGKILL)
        out, _ = process.communicate(timeout=standalone.STOP_TIMEOUT)
        pytest.fail(
            f"the driver did not finish within {DRIVER_TIMEOUT:.0f} s:\n"
            + out.decode(errors="replace")[-3000:],
            pytrace=False,
        )
    finally:
        standalone.signal_group(process, signal.SIGKILL)  # the driver's JVM, should it linger
    assert process.returncode == 0, out.decode(errors="replace")[-3000:]
    return json.loads(output.read_text())


# -- the test ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(DuckDB URL, absolute folder of ``<table>.parquet`` files) of test_engines' sample."""
    folder = tmp_path_factory.mktemp("cluster_sample").resolve()
    tables = sample_tables(SAMPLE_ROWS, SAMPLE_SEED)
    duckdb_url = ENGINES["duckdb"].load(tables, folder / "duckdb")
    ENGINES["spark"].load(tables, folder / "parquet")
    return duckdb_url, folder / "parquet"


@pytest.mark.slow
def test_catalog_on_a_standalone_cluster_equals_duckdb(spark_cluster, sample, tmp_path):
    """Every catalog KPI, month grain, in total and by region: the numbers the application
    computes on the cluster's executor are DuckDB's (relative 1e-9, nulls equal)."""
    duckdb_url, parquet = sample
    url = f"spark://{spark_cluster.master}?tables={quote(str(parquet))}"
    started = time.monotonic()
    got = run_driver([url, duckdb_url], [list(case) for case in CASES], tmp_path / "out.json")
    assert got["master"] == f"spark://{spark_cluster.master}"
    results = got["results"]
    for case, spark, duckdb in zip(CASES, results["spark"], results["duckdb"], strict=True):
        values = {tuple(key): value for key, value in spark}
        expected = {tuple(key): value for key, value in duckdb}
        assert expected, "DuckDB computed nothing"
        problems = differences(values, expected)
        assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:40])
        grain, dimension = case
        _compared[f"spark-cluster/{grain}/{dimension or 'total'}"] = len(expected)
    # the work ran on the worker: an executor besides the driver, an application the
    # master knows
    assert got["executors"] == 1
    assert got["driver_host"] == standalone.LOOPBACK  # set by the connector for a loopback master
    state = spark_cluster.state()
    apps = state.get("activeapps", []) + state.get("completedapps", [])
    assert [app["name"] for app in apps] == ["kpiengine"], apps
    print(f"cluster run: {time.monotonic() - started:.1f} s, {sum(_compared.values())} values")


@pytest.mark.parametrize(
    ("master", "loopback"),
    [
        ("spark://127.0.0.1:7077", True),
        ("spark://localhost:7077", True),
        ("spark://[::1]:7077", True),
        ("spark://127.0.0.1:7077,localhost:7078", True),
        ("spark://spark-master.internal:7077", False),
        ("spark://127.0.0.1:7077,spark-master.internal:7077", False),
        ("local[2]", False),
    ],
)
def test_driver_listens_on_loopback_for_a_loopback_master(master, loopback):
    """Executors of a cluster on this machine reach the driver on 127.0.0.1; for any
    other master Spark's own choice stands (the host's name), unless the URL sets it."""
    connection = pytest.importorskip("kpiengine_spark.connection")
    settings = connection._startup_conf(master, {})
    assert connection.loopback_master(master) is loopback
    if master.startswith("spark://"):
        assert ("spark.driver.host" in settings) is loopback
    own = connection._startup_conf(master, {"spark.driver.host": "10.0.0.5"})
    assert own["spark.driver.host"] == "10.0.0.5"
