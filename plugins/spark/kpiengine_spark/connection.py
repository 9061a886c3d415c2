"""The Spark connection: one Spark context per process, one private session per connection.

URL: ``spark://local[2]?tables=/path/to/dir&database=db&spark.sql.x=y``

- the master is in the URL: ``local``, ``local[N]``, ``local[*]``; anything else
  (``host:7077``) is a standalone cluster master ``spark://host:7077``; ``spark://``
  alone means ``local[*]``.
- ``tables=DIR`` (repeatable): every ``<name>.parquet`` file, ``<name>.parquet`` folder
  or ``<name>/`` folder of Parquet files in DIR becomes a temporary view ``<name>``.
- without ``tables=``, or for names not found there, the session catalog answers
  (tables of the current database, ``db.table``, ``global_temp.view``).
- ``database=NAME`` sets the current database of the connection's session.
- ``spark.*=VALUE`` settings: ``spark.sql.*`` ones apply to the connection's session;
  the others only when this connector starts Spark (the first connection in a process).

pyspark is imported only when a connection is opened, never when kpiengine starts.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kpiengine.errors import EngineError, UsageError
from kpiengine.execute.connectors import ClosingConnection

DEFAULT_MASTER = "local[*]"
_LOCAL_MASTER = re.compile(r"^local(\[(\d+|\*)(,\s*\d+)?\])?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOG_CONFIG = Path(__file__).with_name("log4j2.properties")

#: Settings of every session a connection runs in (numbers must not depend on the
#: machine's time zone: timestamps are bucketed into days in UTC, like DuckDB's).
SESSION_CONF = {"spark.sql.session.timeZone": "UTC"}
#: Set last, over the URL's settings: a query may not read a file by its path
#: (``SELECT * FROM csv.`/etc/passwd```).
LOCKED_CONF = {"spark.sql.runSQLOnFiles": "false"}
#: Built-in functions removed from each connection's session: they call any static Java
#: method (``reflect('java.lang.System', 'exit', 0)``) or name the files read.
DENIED_FUNCTIONS = ("reflect", "java_method", "try_reflect")


@dataclass(frozen=True)
class SparkURL:
    master: str
    tables: tuple[Path, ...] = ()
    database: str | None = None
    conf: dict[str, str] = field(default_factory=dict)


def parse_url(url: str) -> SparkURL:
    """Split a ``spark://`` URL into master, table folders, database and settings."""
    rest = url.split("://", 1)[1] if "://" in url else url
    location, _, query = rest.partition("?")
    location = location.strip("/")
    if not location:
        master = DEFAULT_MASTER
    elif location.startswith("local"):
        if not _LOCAL_MASTER.match(location):
            raise UsageError(
                f"`{url}`: `{location}` is not a Spark local master; "
                "use local, local[N] or local[*], e.g. spark://local[2]"
            )
        master = location
    else:
        master = f"spark://{location}"
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(k for k in options if k not in ("tables", "database") and not _setting(k))
    if unknown:
        raise UsageError(
            f"`{url}`: unknown option(s) {', '.join(unknown)}; "
            "the options are tables=DIR, database=NAME and spark.* settings"
        )
    database = options.get("database", [None])[-1] or None
    conf = {k: v[-1] for k, v in options.items() if _setting(k)}
    tables = tuple(Path(os.path.expanduser(d)) for d in options.get("tables", []) if d)
    return SparkURL(master, tables, database, conf)


def _setting(key: str) -> bool:
    return key.startswith("spark.") and len(key) > len("spark.")


# -- the process's Spark --------------------------------------------------------------

_lock = threading.Lock()
_session: Any = None


def spark_session(master: str, conf: dict[str, str] | None = None) -> Any:
    """The process's SparkSession: the running one, else a new quiet one on ``master``.

    A process has one Spark context; asking for another master while one runs is an
    EngineError that names the running master.
    """
    global _session
    conf = conf or {}
    with _lock, warnings.catch_warnings():
        # pyspark warns about pandas versions it has not been tested with; the
        # connector never converts through pandas
        warnings.simplefilter("ignore", FutureWarning)
        try:
            from pyspark.sql import SparkSession
        except ImportError as error:  # pragma: no cover - pyspark is a dependency
            raise EngineError(
                f"the Spark connector needs pyspark: pip install 'pyspark>=3.5' ({error})"
            ) from error
        running = _session if _session is not None and _alive(_session) else None
        running = running or SparkSession.getActiveSession()
        if running is not None:
            _check_master(running, master)
            _session = running
            return running
        _check_java()
        builder = SparkSession.builder.master(master).appName("kpiengine")
        for key, value in _startup_conf(master, conf).items():
            builder = builder.config(key, value)
        try:
            _session = builder.getOrCreate()
        except Exception as error:
            raise EngineError(
                f"cannot start Spark (master {master}): {_first_line(error)}. "
                "Spark needs Java 17 or newer (`java -version`; set JAVA_HOME)"
            ) from error
        _session.sparkContext.setLogLevel("ERROR")
        _check_master(_session, master)
        return _session


def _startup_conf(master: str, conf: dict[str, str]) -> dict[str, str]:
    """Fast, quiet start for local work: no UI, few shuffle partitions, errors-only log."""
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={_LOG_CONFIG.as_uri()}",
        # the connector creates no tables; keep Spark from making ./spark-warehouse
        "spark.sql.warehouse.dir": (Path(tempfile.gettempdir()) / "kpiengine-spark").as_uri(),
    }
    if master.startswith("local"):
        cores = re.findall(r"\d+", master)
        settings["spark.sql.shuffle.partitions"] = cores[0] if cores else str(os.cpu_count() or 2)
        settings["spark.default.parallelism"] = settings["spark.sql.shuffle.partitions"]
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    elif loopback_master(master):
        # a cluster on this machine only: its executors call the driver back, so the
        # driver listens on loopback too, not on every interface under the host's name
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    settings.update(conf)
    return settings


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def loopback_master(master: str) -> bool:
    """``spark://127.0.0.1:7077`` (or localhost, or several such masters): a cluster
    reachable from this machine only."""
    if not master.startswith("spark://"):
        return False
    hosts = [part.rpartition(":")[0] or part for part in master[8:].split(",")]
    return all(host in _LOOPBACK_HOSTS for host in hosts)


def _alive(session: Any) -> bool:
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None and session.sparkContext._jsc is not None


def _check_master(session: Any, master: str) -> None:
    running = session.sparkContext.master
    if _normal_master(running) != _normal_master(master):
        raise EngineError(
            f"Spark already runs in this process with master {running}; one process has one "
            f"Spark context, so connect with spark://{running.removeprefix('spark://')}"
        )


def _normal_master(master: str) -> str:
    return "local[1]" if master == "local" else master.replace(" ", "")


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise EngineError(
            "Spark needs Java 17 or newer, and none was found: install a JDK "
            "(e.g. apt install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def stop() -> None:
    """Stop the Spark context this connector started (tests, long-lived processes)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None


# -- connections ----------------------------------------------------------------------


class SparkConnection(ClosingConnection):
    """Runs kpiengine's statements on a SparkSession; reads only (see README)."""

    dialect = "spark"

    def __init__(self, session: Any, views: dict[str, Path] | None = None) -> None:
        self._session = session
        self.views = dict(views or {})

    @classmethod
    def from_session(cls, session: Any) -> SparkConnection:
        """Use an existing session as it is: its temp views, catalog and settings."""
        return cls(session)

    def execute(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        self._check_query(sql)
        try:
            with _quiet_query_errors():
                frame = self._session.sql(sql)
                rows = frame.collect()
        except Exception as error:
            raise self._error(error) from error
        return list(frame.columns), [tuple(_plain(v) for v in row) for row in rows]

    def columns(self, table: str) -> dict[str, str] | None:
        try:
            with _quiet_query_errors():
                schema = self._session.table(table).schema
        except Exception as error:
            if _error_class(error) in _MISSING or "not found" in str(error).lower():
                return None
            raise self._error(error) from error
        return {f.name: f.dataType.simpleString() for f in schema.fields}

    def close(self) -> None:
        """Drop this connection's views; the process's Spark keeps running for the next."""
        if self._session is None:
            return
        for name in self.views:
            try:
                self._session.catalog.dropTempView(name)
            except Exception:  # the context may already be stopped
                break
        self._session = None

    # -- read-only guard ------------------------------------------------------------------
    def _check_query(self, sql: str) -> None:
        """Refuse anything Spark's own parser does not read as a query (DDL, DML, SET...)."""
        if self._session is None:
            raise EngineError("Spark: the connection is closed")
        parser = self._session._jsparkSession.sessionState().sqlParser()
        try:
            with _quiet_query_errors():
                parser.parseQuery(sql)
        except Exception as error:
            try:
                with _quiet_query_errors():
                    parser.parsePlan(sql)
            except Exception:
                raise self._error(error) from error
            raise EngineError(
                "Spark: refused a statement that is not a query; the kpiengine connector only reads"
            ) from error

    def _error(self, error: Exception) -> EngineError:
        kind = _error_class(error)
        message = _first_line(error)
        if kind in _MISSING:
            where = (
                f"Views from tables=: {', '.join(sorted(self.views))}."
                if self.views
                else "No tables= folder was given, so only the session catalog is searched."
            )
            return EngineError(f"Spark: {message.rstrip('.;')}. {where}")
        return EngineError(f"Spark: {message}")


@contextmanager
def _quiet_query_errors() -> Iterator[None]:
    """pyspark 4 logs every failed statement as a JSON record with the JVM stack on
    stderr; the connector raises an EngineError with the message instead."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:  # pyspark 3.5 has no such logging
        yield
        return
    loggers = [
        PySparkLogger.getLogger(name)
        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
    ]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled


_MISSING = {"TABLE_OR_VIEW_NOT_FOUND", "UNRESOLVED_COLUMN.WITH_SUGGESTION", "PATH_NOT_FOUND"}


def _error_class(error: Exception) -> str | None:
    getter = getattr(error, "getCondition", None) or getattr(error, "getErrorClass", None)
    try:
        return getter() if getter is not None else None
    except Exception:
        return None


def _first_line(error: BaseException) -> str:
    """The message without Spark's plan dump and JVM stack."""
    text = str(error).strip() or type(error).__name__
    line = text.splitlines()[0].strip()
    return re.sub(r";\s*$", "", line)


def _plain(value: Any) -> Any:
    """A Spark value as the plain Python value other connectors give."""
    if value is None or isinstance(value, bool | int | float | str | dt.date):
        return value
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and value.as_tuple().exponent >= 0:
            return int(value)
        return float(value)
    if isinstance(value, tuple):  # Row
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


# -- opening --------------------------------------------------------------------------


def open_spark(url: str) -> SparkConnection:
    """Open ``spark://MASTER[?tables=DIR&database=NAME&spark.x=y]``."""
    parsed = parse_url(url)
    folders = []
    for folder in parsed.tables:
        if not folder.is_dir():
            raise EngineError(f"`{folder}` is not a folder of Parquet files (tables= of {url})")
        folders.append(folder)
    views = _parquet_views(folders)
    base = spark_session(parsed.master, parsed.conf)
    session = base.newSession()  # private temp views and settings; shares the context
    try:
        with _quiet_query_errors():
            _prepare(session, parsed, views)
    except Exception as error:
        raise EngineError(f"Spark: cannot open {url}: {_first_line(error)}") from error
    return SparkConnection(session, views)


def _prepare(session: Any, parsed: SparkURL, views: dict[str, Path]) -> None:
    """The connection's settings, current database and temporary views."""
    for key, value in {**SESSION_CONF, **parsed.conf, **LOCKED_CONF}.items():
        if key.startswith("spark.sql."):
            session.conf.set(key, value)
    _drop_functions(session)
    if parsed.database:
        session.catalog.setCurrentDatabase(parsed.database)
    for name, path in views.items():
        # the path is passed as a value to the reader, never pasted into SQL; absolute,
        # as a cluster's executors run in folders of their own
        session.read.parquet(str(path.absolute())).createOrReplaceTempView(name)


def _drop_functions(session: Any) -> None:
    """Remove :data:`DENIED_FUNCTIONS` from the session's own function registry (other
    sessions of the process keep theirs). Spark 4 names built-ins ``system.builtin.x``,
    Spark 3.5 by their bare name."""
    jvm = session.sparkContext._jvm
    registry = session._jsparkSession.sessionState().functionRegistry()
    identifier = jvm.org.apache.spark.sql.catalyst.FunctionIdentifier
    option = jvm.scala.Option
    for name in DENIED_FUNCTIONS:
        for qualified in (
            lambda n=name: identifier(n, option.apply("builtin"), option.apply("system")),
            lambda n=name: identifier.apply(n),
        ):
            try:
                function = qualified()
                if registry.functionExists(function):
                    registry.dropFunction(function)
            except Exception:  # this Spark names its built-ins the other way
                continue
    still = session.sql(f"SHOW FUNCTIONS LIKE '{'|'.join(DENIED_FUNCTIONS)}'").collect()
    if still:
        raise EngineError(
            f"Spark: cannot disable {', '.join(r[0] for r in still)} for the connection"
        )


def _parquet_views(folders: list[Path]) -> dict[str, Path]:
    """View name → path for every Parquet file or folder in the folders."""
    views: dict[str, Path] = {}
    for folder in folders:
        for entry in sorted(folder.iterdir()):
            name = entry.name.removesuffix(".parquet") if entry.name.endswith(".parquet") else None
            if name is None and entry.is_dir() and _holds_parquet(entry):
                name = entry.name
            if name is None or not _IDENTIFIER.match(name) or entry.name.startswith("."):
                continue
            if name in views:
                raise EngineError(
                    f"two Parquet tables are named `{name}`: {views[name]} and {entry}"
                )
            views[name] = entry
    return views


def _holds_parquet(folder: Path) -> bool:
    """A Spark/Hive-style output folder: Parquet part files, maybe in partition folders."""
    return next((True for p in folder.rglob("*.parquet") if p.is_file()), False)
