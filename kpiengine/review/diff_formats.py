"""``kpi diff`` output: text for a terminal, Markdown for a pull-request comment, JSON for
tools. Names and dimension values come from definitions and data (untrusted), so the
Markdown escapes them with the report renderer's :func:`markdown_text`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kpiengine.render.renderers import markdown_text
from kpiengine.review.diff import FIRST_ROWS, CellChange, Diff, ValueChanges
from kpiengine.review.outcome_formats import number_text

FORMATS = ("text", "markdown", "json")


def render(diff: Diff, fmt: str) -> str:
    return {"text": render_text, "markdown": render_markdown, "json": render_json}[fmt](diff)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.6g}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:+.2f}%"


def _side(change: CellChange, which: str) -> str:
    present = change.base_row if which == "base" else change.head_row
    if not present:
        return "(no row)"
    return number_text(change.base if which == "base" else change.head)


def _where(change: CellChange) -> str:
    parts = [change.period.isoformat() if change.period else "all"]
    parts.extend(f"{name}={value}" for name, value in change.dimensions)
    return " ".join(parts)


def _range(diff: Diff) -> str:
    start = diff.start.isoformat() if diff.start else "the first data"
    end = diff.end.isoformat() if diff.end else "the last data"
    by = f", by {', '.join(diff.by)}" if diff.by else ""
    return f"{diff.grain}, {start} to {end}{by}"


def _summary(values: ValueChanges) -> str:
    if not values.changes:
        return f"no change in {values.cells} cells"
    text = f"{len(values.changes)} of {values.cells} cells changed"
    largest, relative = values.largest, values.largest_relative
    if largest is not None:
        text += f"; largest change {_signed(largest.change)} at {_where(largest)}"
    if relative is not None:
        text += f"; largest relative {_percent(relative.relative)} at {_where(relative)}"
    return text


def _rows(values: ValueChanges, cell: Callable[[Any], str]) -> list[list[str]]:
    dims = list(dict.fromkeys(n for c in values.changes for n, _ in c.dimensions))
    header = ["period", *dims, "base", "head", "change", "relative"]
    body = []
    for change in values.changes[:FIRST_ROWS]:
        shown = dict(change.dimensions)
        body.append(
            [
                change.period.isoformat() if change.period else "",
                *(cell(shown.get(d)) for d in dims),
                _side(change, "base"),
                _side(change, "head"),
                _signed(change.change),
                _percent(change.relative),
            ]
        )
    return [header, *body]


def _definition_lines(diff: Diff) -> list[tuple[str, str]]:
    """(heading, detail) pairs of the definition changes, shared by text and Markdown."""
    found = diff.definitions
    lines: list[tuple[str, str]] = []
    lines.extend(("added", name) for name in found.added)
    lines.extend(("removed", name) for name in found.removed)
    lines.extend(("changed", f"{n} ({', '.join(f)})") for n, f in found.changed.items())
    lines.extend(("source changed", f"{n} ({', '.join(f)})") for n, f in found.sources.items())
    lines.extend(("project changed", f) for f in found.calendar)
    lines.extend(("metadata only", f"{n} ({', '.join(f)})") for n, f in found.metadata.items())
    return lines


def render_text(diff: Diff) -> str:
    out = [f"kpi diff: {diff.base} → {diff.head} (project {diff.project})"]
    lines = _definition_lines(diff)
    if not lines:
        out.append("no definition changes")
    width = max((len(h) for h, _ in lines), default=0)
    out.extend(f"  {heading.ljust(width)}  {detail}" for heading, detail in lines)
    if diff.values_skipped:
        out.append(f"values not compared: {diff.values_skipped}")
    if diff.values:
        out.append(f"values on {diff.connector} ({_range(diff)}):")
    for values in diff.values:
        out.append(f"  {values.kpi} [{values.reason}]: {_summary(values)}")
        if values.changes:
            table = _rows(values, number_text)
            widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
            out.extend(
                "    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                for r in table
            )
    out.append("changes found" if diff.changed else "no changes")
    return "\n".join(out)


def render_markdown(diff: Diff) -> str:
    base, head = markdown_text(diff.base), markdown_text(diff.head)
    out = [f"### KPI changes: {base} → {head}", ""]
    lines = _definition_lines(diff)
    if lines:
        out += ["| change | KPI |", "|---|---|"]
        out += [f"| {h} | {markdown_text(d)} |" for h, d in lines]
    else:
        out.append("No definition changes.")
    if diff.values_skipped:
        out += ["", f"Values not compared: {markdown_text(diff.values_skipped)}."]
    if diff.values:
        out += ["", f"#### Values on `{diff.connector}` ({markdown_text(_range(diff))})", ""]
        out += ["| KPI | why | cells changed | largest change | largest relative |"]
        out += ["|---|---|---|---|---|"]
        for values in diff.values:
            largest, relative = values.largest, values.largest_relative
            out.append(
                f"| {markdown_text(values.kpi)} | {markdown_text(values.reason)} "
                f"| {len(values.changes)} of {values.cells} "
                f"| {_signed(largest.change) if largest else ''} "
                f"| {_percent(relative.relative) if relative else ''} |"
            )
        for values in diff.values:
            if not values.changes:
                continue
            table = _rows(values, lambda v: markdown_text(number_text(v)))
            out += ["", f"<details><summary>{markdown_text(values.kpi)}: first changed rows"]
            out += ["</summary>", ""]
            out += ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
            out += ["| " + " | ".join(row) + " |" for row in table[1:]]
            out += ["", "</details>"]
    out += ["", "**Changes found.**" if diff.changed else "**No changes.**"]
    return "\n".join(out)


def render_json(diff: Diff) -> str:
    found = diff.definitions
    document = {
        "base": diff.base,
        "head": diff.head,
        "project": diff.project,
        "changed": diff.changed,
        "definitions": {
            "added": found.added,
            "removed": found.removed,
            "changed": found.changed,
            "metadata": found.metadata,
            "sources": found.sources,
            "project": found.calendar,
            "affected": found.affected,
        },
        "values": {
            "connector": diff.connector,
            "skipped": diff.values_skipped,
            "grain": diff.grain,
            "from": diff.start.isoformat() if diff.start else None,
            "to": diff.end.isoformat() if diff.end else None,
            "by": list(diff.by),
            "kpis": [v.to_dict() for v in diff.values],
        },
    }
    return json.dumps(document, indent=2, default=str)
