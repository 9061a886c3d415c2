"""The two sides of ``kpi diff``: a folder, or a git revision read into a temporary folder.

A revision is read with ``git archive`` piped into Python's tar reader (with the ``data``
filter: no absolute paths, no links leaving the folder, no devices) into a temporary
folder that is removed afterwards. The user's work tree, index and refs are never touched:
no checkout, no worktree, no stash. Only the project's own folder is extracted.

Revision names come from CI variables (branch names that anyone may choose), so they are
untrusted: one starting with ``-`` is refused (it would be read as an option), and only
the commit id that ``git rev-parse --verify`` returns is passed on to ``git archive``.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kpiengine.errors import UsageError
from kpiengine.loader.definitions import PROJECT_FILES

#: Longest wait for one git command: a revision is read from the local repository only.
GIT_TIMEOUT = 120


@dataclass(frozen=True)
class Side:
    """One side of a diff: what the user called it, and the project folder to load."""

    label: str  # "origin/main (1a2b3c4)", "the working tree", or a folder
    folder: Path  # the project folder (temporary for a revision)
    revision: str | None = None  # the commit id, for a revision


def _has_project_file(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROJECT_FILES)


def project_in(folder: Path) -> Path:
    """The project inside a folder given as a side: the folder itself when it holds
    ``kpiengine.yaml`` (or holds no ``definitions/`` project), else ``definitions/``."""
    if not _has_project_file(folder) and _has_project_file(folder / "definitions"):
        return folder / "definitions"
    return folder


def _git(args: list[str], cwd: Path, stdout: int | None = subprocess.PIPE) -> bytes:
    """Run git read-only in ``cwd``; its failure is a usage error quoting git's message."""
    environment = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=environment,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("git is not installed: give two folders instead of revisions") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {args[0]} took more than {GIT_TIMEOUT} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _GitFailed(message[-1] if message else f"git {args[0]} failed")
    return done.stdout or b""


class _GitFailed(Exception):
    """A git command that did not succeed (turned into a usage error with a hint)."""


def repository_of(project: Path) -> tuple[Path, str]:
    """The top of the git repository holding ``project``, and the project's path in it
    (POSIX, ``.`` at the top)."""
    if not project.is_dir():
        raise UsageError(
            f"the project folder `{project}` does not exist: pass --project, or run "
            "`kpi diff` inside the repository's project"
        )
    try:
        top = _git(["rev-parse", "--show-toplevel"], project).decode().strip()
    except _GitFailed:
        raise UsageError(
            f"`{project}` is not inside a git repository, so revisions cannot be read; "
            "give two folders instead (kpi diff OLD_FOLDER NEW_FOLDER)"
        ) from None
    top_path = Path(top).resolve()
    relative = project.resolve().relative_to(top_path)
    return top_path, relative.as_posix() or "."


def resolve_commit(name: str, top: Path) -> str:
    """The commit id of revision ``name`` in the repository at ``top``."""
    if not name or name.startswith("-") or "\x00" in name:
        raise UsageError(f"`{name}` is not a revision name (it may not start with `-`)")
    try:
        found = _git(["rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], top)
    except _GitFailed:
        branch = name.removeprefix("origin/")
        raise UsageError(
            f"`{name}` is neither a folder nor a revision of the git repository at `{top}`\n"
            f"  hint: fetch it first (git fetch origin {branch}; in CI, check out the full "
            "history, e.g. actions/checkout with fetch-depth: 0), or give a folder"
        ) from None
    return found.decode().strip()


@contextmanager
def side(name: str | None, project: Path) -> Iterator[Side]:
    """The side called ``name`` (None: the working tree's ``project``): an existing folder
    as it is, else a git revision extracted into a temporary folder for the duration."""
    if name is None:
        yield Side("the working tree", project)
        return
    folder = Path(name)
    if folder.is_dir():
        yield Side(f"`{name}`", project_in(folder))
        return
    top, relative = repository_of(project)
    commit = resolve_commit(name, top)
    with tempfile.TemporaryDirectory(prefix="kpi-diff-") as scratch:
        target = Path(scratch)
        _extract(commit, relative, top, target)
        inside = target if relative == "." else target / relative
        if not inside.is_dir():
            raise UsageError(f"the project folder `{relative}` does not exist at `{name}`")
        yield Side(f"{name} ({commit[:10]})", inside, commit)


def _extract(commit: str, relative: str, top: Path, target: Path) -> None:
    """The files of the project folder at ``commit`` into ``target``."""
    paths = [] if relative == "." else ["--", relative]
    try:
        data = _git(["archive", "--format=tar", commit, *paths], top)
    except _GitFailed as failure:
        if "did not match" in str(failure):
            return  # the folder did not exist at that revision: reported by the caller
        raise UsageError(f"cannot read revision {commit[:10]}: {failure}") from None
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")
