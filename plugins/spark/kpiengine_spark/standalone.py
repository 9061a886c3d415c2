"""A throwaway Spark standalone cluster on loopback: one master and one worker started
from the installed pyspark's own package (``bin/spark-class``), so the cluster runs
exactly the driver's Spark version with no separate Spark install.

For trying kpiengine against a real cluster on one machine (docs/scale.md), for the
tests (tests/test_spark_cluster.py) and for the benchmark (bench/spark_speed.py). Each
daemon runs in its own process group; every wait is bounded; :meth:`Cluster.stop`
leaves no JVM behind (the worker's group holds its executors).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT = 15.0  # seconds from SIGTERM to SIGKILL


def spark_home() -> Path:
    """The installed pyspark's folder: it holds bin/spark-class and jars/ (a pip install
    is a complete Spark), the same version as the driver's."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group that ``process`` leads (started with start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@dataclass
class Cluster:
    """A running standalone master and worker, each in its own process group."""

    port: int
    webui_port: int
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master(self) -> str:
        """The part after ``spark://`` of a kpiengine URL (and of Spark's master URL)."""
        return f"{LOOPBACK}:{self.port}"

    def state(self) -> dict[str, Any]:
        """The master's status page as JSON (workers, applications)."""
        url = f"http://{LOOPBACK}:{self.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=3) as response:
            return dict(json.load(response))

    def log_tail(self, lines: int = 15) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM to each process group, then SIGKILL after STOP_TIMEOUT; returns when
        every process of the groups is gone."""
        for process in self.processes:
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes:
            signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
        self.processes = []


def start_cluster(
    folder: Path, cores: int = 1, memory: str = "1g", start_timeout: float = 90.0
) -> Cluster:
    """Master and worker (``cores``, ``memory`` for its executors) on loopback, logs and
    work folders under ``folder``; returns once the worker has registered, else stops
    both and raises RuntimeError (with the daemons' log tails) after ``start_timeout``."""
    spark_class = spark_home() / "bin" / "spark-class"
    if not spark_class.is_file():
        raise RuntimeError(f"{spark_class} is missing: pyspark's install has no launcher")
    logs = folder / "logs"
    work = folder / "work"  # the executors' folders; Spark's default is SPARK_HOME/work
    logs.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": LOOPBACK,  # the web UIs bind 0.0.0.0 without it
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_LOCAL_DIRS": str(folder / "local"),
    }
    env.pop("SPARK_CONF_DIR", None)
    cluster = Cluster(free_port(), free_port(), logs)
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
            *("--cores", str(cores), "--memory", memory, "--work-dir", str(work)),
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
        _wait_for_worker(cluster, start_timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_worker(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
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
        f"the worker did not register within {timeout:.0f} s ({last}):\n{cluster.log_tail()}"
    )
