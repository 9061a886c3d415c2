"""Positions in definition files, and the caret excerpts that point at them.

Expressions live inside YAML scalars, so a position inside an expression must be mapped
back to the YAML file: :class:`TextOrigin` does that mapping once per expression, so every
later stage reports ``file:line:col`` in the file the analyst edits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a file; lines and columns are 1-based, the end is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, file: str, line: int, col: int, length: int = 1) -> Span:
        return cls(file, line, col, line, col + max(length, 1))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class TextOrigin:
    """Where the text of an expression starts in its file.

    ``line_starts[i]`` is the (file line, file column) of the first character of line
    ``i`` of the expression text. A plain one-line YAML scalar has one entry; a block
    scalar (``|``) has one per line, each at the block's indentation.
    """

    file: str
    line_starts: tuple[tuple[int, int], ...]

    @classmethod
    def standalone(cls, name: str, text: str = "") -> TextOrigin:
        """Text that is not inside a file (a ``--where`` flag, an API string)."""
        lines = max(text.count("\n") + 1, 1)
        return cls(name, tuple((line, 1) for line in range(1, lines + 1)))

    def position(self, line: int, col: int) -> tuple[int, int]:
        """Map a 1-based (line, col) in the expression text to the file."""
        index = min(max(line - 1, 0), len(self.line_starts) - 1)
        file_line, file_col = self.line_starts[index]
        return file_line, file_col + col - 1

    def span(self, line: int, col: int, end_line: int, end_col: int) -> Span:
        start = self.position(line, col)
        end = self.position(end_line, end_col)
        return Span(self.file, start[0], start[1], end[0], end[1])


class SourceTexts:
    """The text of every file loaded, so diagnostics can quote the offending line."""

    def __init__(self) -> None:
        self._texts: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        self._texts[file] = text.splitlines()

    def line(self, file: str, line: int) -> str | None:
        lines = self._texts.get(file)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1]


#: Longest source line quoted whole; a longer one is cut to a window around the span.
MAX_EXCERPT = 200


def caret_excerpt(line_text: str, span: Span) -> list[str]:
    """Render the quoted source line and a caret line under the span.

    A line longer than :data:`MAX_EXCERPT` characters is cut to a window around the span
    (and the caret run to that window): a definition with one 5 MB line and thousands of
    errors on it would otherwise print gigabytes.
    """
    number = str(span.line)
    gutter = " " * len(number)
    width = span.end_col - span.col if span.end_line == span.line else len(line_text) - span.col + 1
    width = max(width, 1)
    if len(line_text) > MAX_EXCERPT:
        line_text, span, width = _window(line_text, span, width)
    # Keep tabs so the caret lines up under tab-indented text.
    pad = "".join(ch if ch == "\t" else " " for ch in line_text[: span.col - 1])
    return [f" {number} | {line_text}", f" {gutter} | {pad}{'^' * width}"]


def _window(line_text: str, span: Span, width: int) -> tuple[str, Span, int]:
    """At most :data:`MAX_EXCERPT` characters of ``line_text`` around the span, with `…`
    where text was cut; the span moved to the same place in the window."""
    context = MAX_EXCERPT // 4
    start = max(span.col - 1 - context, 0)
    width = min(width, MAX_EXCERPT - context)
    end = min(start + MAX_EXCERPT, len(line_text))
    text = line_text[start:end]
    prefix = "…" if start else ""
    suffix = "…" if end < len(line_text) else ""
    col = span.col - start + len(prefix)
    moved = Span(span.file, span.line, col, span.line, col + width)
    return prefix + text + suffix, moved, width
