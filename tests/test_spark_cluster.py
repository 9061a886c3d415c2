"""Spark on a real cluster: the catalog through ``spark://127.0.0.1:PORT`` gives DuckDB's numbers.

A standalone master and one worker (1 core, 1 GB) are started on loopback from the
installed pyspark (``bin/spark-class`` of its package folder, so the cluster runs exactly
the driver's Spark version), once per test session, and killed at the end whatever
happens. The catalog is run by a separate driver process, as ``kpi run`` would be:

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
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
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

LOOPBACK = "127.0.0.1"
#: bounds of every wait (seconds)
START_TIMEOUT = 90.0  # master up and the worker registered
DRIVER_TIMEOUT = 300.0  # the catalog run by the driver process, all cases
STOP_TIMEOUT = 15.0  # SIGTERM → exit, before SIGKILL
#: what the catalog is run at on the cluster (the rows and seed of test_engines.py)
CASES: tuple[tuple[str, str | None], ...] = (("month", None), ("month", "region"))


# -- the cluster ------------------------------------------------------------------------


def spark_home() -> Path:
    """The installed pyspark's folder: it holds bin/spark-class and jars/ (a pip install
    is a complete Spark), the same version as the driver's."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    """A running standalone master and worker, each in its own process group."""

    port: int
    webui_port: int
    logs: Path
    processes: list[subprocess.Popen[bytes]]

    @property
    def master(self) -> str:
        """The part after ``spark://`` of a kpiengine URL (and of Spark's master URL)."""
        return f"{LOOPBACK}:{self.port}"

    def state(self) -> dict[str, Any]:
        """The master's status page as JSON (workers, applications)."""
        url = f"http://{LOOPBACK}:{self.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=3) as response:
            return json.load(response)

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM to each process group (the worker's holds its executors), then SIGKILL
        after STOP_TIMEOUT; returns when every process of the groups is gone."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
        self.processes = []


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group that ``process`` leads (started with start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


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


def start_cluster(folder: Path) -> Cluster:
    """Master and worker on loopback; returns once the worker has registered, or raises
    RuntimeError (with the daemons' log tails) after START_TIMEOUT."""
    home = spark_home()
    spark_class = home / "bin" / "spark-class"
    if not spark_class.is_file():
        raise RuntimeError(f"{spark_class} is missing: pyspark's install has no launcher")
    logs = folder / "logs"
    work = folder / "work"  # the executors' folders; Spark's default is SPARK_HOME/work
    logs.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": LOOPBACK,  # the web UIs bind 0.0.0.0 without it
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_LOCAL_DIRS": str(folder / "local"),
    }
    env.pop("SPARK_CONF_DIR", None)
    cluster = Cluster(free_port(), free_port(), logs, [])
    commands = {
        "master": [
            "org.apache.spark.deploy.master.Master",
            *("--host", LOOPBACK, "--port", str(cluster.port)),
            *("--webui-port", str(cluster.webui_port)),
        ],
        "worker": [
            "org.apache.spark.deploy.worker.Worker",
            f"spark://{cluster.master}",
            *("--host", LOOPBACK, "--webui-port", str(free_port())),
            *("--cores", "1", "--memory", "1g", "--work-dir", str(work)),
        ],
    }
    try:
        for name, arguments in commands.items():
            with open(logs / f"{name}.log", "wb") as log:
                cluster.processes.append(
                    subprocess.Popen(
                        [str(spark_class), *arguments],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=folder,
                        start_new_session=True,
                    )
                )
        _wait_for_worker(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_worker(cluster: Cluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer from the master yet"
    while time.monotonic() < deadline:
        for process in cluster.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a Spark daemon exited with code {process.returncode}:\n{cluster.log_tail()}"
                )
        try:
            state = cluster.state()
        except OSError as error:
            last = f"master status: {error}"
        else:
            if state.get("status") == "ALIVE" and state.get("aliveworkers", 0) >= 1:
                return
            last = f"master {state.get('status')}, {state.get('aliveworkers', 0)} worker(s)"
        time.sleep(0.5)
    raise RuntimeError(
        f"the worker did not register within {START_TIMEOUT:.0f} s ({last}):\n{cluster.log_tail()}"
    )


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A standalone master and one worker for the session; stopped whatever happens
    (teardown, and at exit should the teardown never run)."""
    require(ENGINES["spark"])  # pyspark, the plugin and Java, else skip (fail on CI)
    folder = tmp_path_factory.mktemp("spark_cluster")
    try:
        cluster = start_cluster(folder)
    except (RuntimeError, OSError) as error:
        message = f"cannot start a Spark standalone cluster on {LOOPBACK}: {error}"
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
        deadline = time.monotonic() + STOP_TIMEOUT
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
        _signal_group(process, signal.SIGKILL)
        out, _ = process.communicate(timeout=STOP_TIMEOUT)
        pytest.fail(
            f"the driver did not finish within {DRIVER_TIMEOUT:.0f} s:\n"
            + out.decode(errors="replace")[-3000:],
            pytrace=False,
        )
    finally:
        _signal_group(process, signal.SIGKILL)  # the driver's JVM, should it linger
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
    assert got["driver_host"] == LOOPBACK  # set by the connector for a loopback master
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
