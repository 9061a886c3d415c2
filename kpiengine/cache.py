"""On-disk cache of loaded projects and compiled statements, so that a repeated
`kpi run` / `kpi check` (CI, cron) neither parses YAML and expressions again nor imports
sqlglot and lark.

Two kinds of entry, both pickles in one folder:

- a **project**: the checked model and its diagnostics, keyed by the content of every
  definition file the loader reads (and the list of them: a new file changes the key),
  the folder as given and the working directory (diagnostics show paths relative to
  it), the environment variables that change loading or checking, and a fingerprint of
  the code (kpiengine's own files and the versions of lark, PyYAML and sqlglot);
- a **statement**: the SQL text compiled for a plan, keyed by its project's key, the
  whole request (KPIs, grain, range, dimensions, filter, period cap and the data's
  history start when the run asked the engine for it first) and the dialect.

A cached entry is what the same code computed from the same input, so the cache never
changes a number. It is used only where nothing else can change the result: no
``--plugin`` or project ``plugins:``, no installed plugin consulted (entry points), no
warning while compiling. The folder is ``$KPI_CACHE_DIR``, else
``$XDG_CACHE_HOME/kpiengine/cache`` (``~/.cache/kpiengine/cache``): the user's own, made
``0700`` and refused when another user could write to it, since a pickle runs code when
read. Entries are written atomically (temporary file, then rename) and an unreadable or
corrupt entry is ignored. ``KPI_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpiengine.loader.files import definition_files

if TYPE_CHECKING:
    from kpiengine.loader.model import Project
    from kpiengine.plan.planner import Plan
    from kpiengine.plugins.manager import PluginHost

CACHE_ENV = "KPI_CACHE"
CACHE_DIR_ENV = "KPI_CACHE_DIR"
#: Environment variables read while loading, checking or planning.
_INPUT_ENV = ("KPI_MAX_FILE_BYTES", "KPI_MAX_PERIODS")
_DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
_FORMAT = b"kpiengine-cache-1"
#: Most entries kept; the least recently used beyond it are removed on a write.
MAX_ENTRIES = 2000

_fingerprint: list[bytes] = []
#: project model id -> (weak reference to the model, key): projects loaded in this process
_project_keys: dict[int, tuple[weakref.ref[Any], str]] = {}


def enabled() -> bool:
    """Off when ``KPI_CACHE`` is 0, false, no or off."""
    return os.environ.get(CACHE_ENV, "").strip().lower() not in ("0", "false", "no", "off")


def cache_dir() -> Path | None:
    """The cache folder, created ``0700``; None when off, not creatable or not safe
    (not a folder owned by this user, or writable by others)."""
    if not enabled():
        return None
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        folder = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "kpiengine" / "cache"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return None
    return folder


def usable(host: PluginHost | None) -> bool:
    """Whether results computed with ``host`` depend only on kpiengine's own code: the
    built-ins alone, no entry point consulted."""
    if host is None or host.entry_points_loaded:
        return False
    from kpiengine.plugins.manager import BUILTIN

    return [name for name, _ in host.plugins()] == [BUILTIN]


# -- keys ----------------------------------------------------------------------------------


def code_fingerprint() -> bytes:
    """kpiengine's files (path, size, modification time) and the versions of the
    libraries whose behaviour the results depend on; once per process."""
    if not _fingerprint:
        digest = hashlib.sha256(_FORMAT)
        digest.update(f"{sys.version}|{sys.platform}".encode())
        package = Path(__file__).resolve().parent
        for folder, subfolders, names in os.walk(package):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            for name in sorted(names):
                _stat_into(digest, Path(folder) / name)
        _stat_into(digest, package.parent / "grammar" / "kpi.lark")  # a checkout's grammar
        for library in ("lark", "yaml", "sqlglot"):
            _stat_into(digest, _library_origin(library))
        _fingerprint.append(digest.digest())
    return _fingerprint[0]


def _library_origin(name: str) -> Path | None:
    """Where a library's version lives, found without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    for candidate in ("_version.py", "__version__.py"):
        if (origin.parent / candidate).is_file():
            return origin.parent / candidate
    return origin


def _stat_into(digest: Any, path: Path | None) -> None:
    if path is None:
        digest.update(b"-")
        return
    try:
        info = path.stat()
    except OSError:
        digest.update(f"{path}|missing".encode())
        return
    digest.update(f"{path}|{info.st_size}|{info.st_mtime_ns}".encode("utf-8", "replace"))


def project_key(root: Path, *options: object) -> str | None:
    """The key of the project at ``root`` loaded with ``options``; None when the cache is
    off or a file cannot be read (the loader then reports it)."""
    if not enabled():
        return None
    digest = hashlib.sha256(code_fingerprint())
    env = [(name, os.environ.get(name)) for name in _INPUT_ENV]
    digest.update(repr((os.getcwd(), str(root), options, env)).encode("utf-8", "replace"))
    limit = _max_file_bytes()
    try:
        for path in definition_files(root):
            info = path.stat()
            digest.update(b"\0" + os.fsencode(path) + b"\0")
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                digest.update(f"special|{info.st_mode}|{info.st_size}".encode())
                continue
            digest.update(str(info.st_size).encode() + b"|" + path.read_bytes())
    except (OSError, ValueError):
        return None
    return digest.hexdigest()


def _max_file_bytes() -> int:
    text = os.environ.get("KPI_MAX_FILE_BYTES", "").strip()
    try:
        return int(text) if text else _DEFAULT_MAX_FILE_BYTES
    except ValueError:
        return _DEFAULT_MAX_FILE_BYTES


def remember_project(model: Project, key: str) -> None:
    """Note that ``model`` was loaded under ``key``: its statements can be cached."""
    _project_keys[id(model)] = (weakref.ref(model), key)


def statement_key(plan: Plan, dialect: str, what: str) -> str | None:
    """The key of ``what`` ("range" or "statement") SQL for ``plan`` in ``dialect``; None
    unless its project was loaded under a key in this process."""
    known = _project_keys.get(id(plan.project))
    if known is None or known[0]() is not plan.project or not enabled():
        return None
    text = repr((known[1], what, dialect, plan.request))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


# -- entries -------------------------------------------------------------------------------


def load(key: str | None) -> Any | None:
    """The value stored under ``key``; None when absent, unreadable or corrupt."""
    folder = cache_dir() if key else None
    if folder is None or key is None:
        return None
    try:
        data = (folder / key).read_bytes()
        stored_key, value = pickle.loads(data)
        os.utime(folder / key)  # recently used: kept by _prune
    except Exception:  # absent, truncated, from another version: recompute
        return None
    return value if stored_key == key else None


def store(key: str | None, value: object) -> None:
    """Write ``value`` under ``key`` atomically; any failure only means no cache."""
    folder = cache_dir() if key else None
    if folder is None or key is None:
        return
    try:
        data = pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, folder / key)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _prune(folder)
    except Exception:  # a full disk, a value that does not pickle: no cache, same result
        return


def _prune(folder: Path) -> None:
    """Keep the folder at most :data:`MAX_ENTRIES` entries: the least recently used go
    (a hit touches its entry). Runs on a write only, i.e. after a cache miss."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime_ns)
    for entry in entries[: len(entries) - MAX_ENTRIES * 4 // 5]:
        entry.unlink(missing_ok=True)


def statement(plan: Plan, dialect: str, what: str, make: Callable[[], str]) -> str:
    """The ``what`` SQL of ``plan``: from the cache, else ``make()`` (stored when making
    it logged no warning, which a cached statement would not repeat)."""
    key = statement_key(plan, dialect, what)
    cached = load(key)
    if isinstance(cached, str):
        return cached
    warned = _Warned()
    logger = logging.getLogger()
    logger.addHandler(warned)
    try:
        sql = make()
    finally:
        logger.removeHandler(warned)
    if not warned.count:
        store(key, sql)
    return sql


class _Warned(logging.Handler):
    """Counts the warnings (and worse) of every logger while a statement compiles."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        last = logging.lastResort  # what Python prints with when no other handler is found
        alone = not self._others(logging.getLogger(record.name))
        if last is not None and alone and record.levelno >= last.level:
            last.handle(record)

    def _others(self, logger: logging.Logger | None) -> bool:
        """Whether another handler sees records of ``logger``, as logging looks for one."""
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            if not logger.propagate:
                return False
            logger = logger.parent  # type: ignore[assignment]
        return False
