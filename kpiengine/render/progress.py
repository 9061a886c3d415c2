"""Progress display for long work: a rich progress bar on a terminal, nothing when piped."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """``step(label)`` starts a step; ``note(text)`` updates it; silent when not a terminal."""

    def __init__(self, total: int, bar: Any = None) -> None:
        self._bar = bar
        self._task = bar.add_task("starting", total=total) if bar is not None else None

    def step(self, label: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=label)

    def note(self, label: str) -> None:
        self.step(label)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)


@contextmanager
def progress(total: int, enabled: bool | None = None) -> Iterator[Progress]:
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        yield Progress(total)
        return
    try:
        from rich.progress import BarColumn, SpinnerColumn, TextColumn
        from rich.progress import Progress as RichProgress
    except ImportError:  # rich is optional
        yield Progress(total)
        return
    with RichProgress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), transient=True
    ) as bar:
        yield Progress(total, bar)
