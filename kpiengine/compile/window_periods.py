"""Windows of sums and counts from partial aggregates (SPEC §13.1; issue 16).

A window whose aggregates are all sums, counts, mins and maxes is the combination of
partial aggregates: each part's sum, count, min or max, combined over the parts each
window holds (a ratio of such aggregates combines each of them).

- When the bounds are whole periods of the run's grain — year or quarter to date at month
  grain, the last 6 months at month grain, ``all`` — the parts are periods, and they need
  no pass of their own: they are extra columns of the scan that already groups the same
  table by the same time column (the *host*), when that scan reads every row the windows
  need, after a row filter no stricter than theirs and with every join they use (a
  partial equal to one of its measures is that measure's column).
- Otherwise the parts are days, in one pass shared by the windowed scans of the same
  table, time column and row filter (``<scan>_days``): the last 6, 12 and 18 months
  read their rows once, not once each.

Whether the bounds are whole periods is checked on the computed bounds themselves, not
on the window's kind: every ``lo`` must be the start of a period at the grain (a retail
calendar's bucket, a CASE over the spine, needs ``lo`` on the spine). Distinct counts,
medians and averages keep the row join; so do snapshot and conversion scans, and a
range starting inside a period (compile/statement.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlglot import exp

from kpiengine.language.ast import Node
from kpiengine.plan.periods import DateOutOfRange, period_start
from kpiengine.plan.planner import Measure, Plan, Scan
from kpiengine.plan.windows import WindowBounds, earliest

#: aggregates whose value over a window is the combination of their per-part values, and
#: the aggregate combining the parts (counts are added)
COMBINE: dict[str, type[exp.Func]] = {
    "sum": exp.Sum,
    "count": exp.Sum,
    "min": exp.Min,
    "max": exp.Max,
}

#: week starts the dialects' own week bucket knows (compile/retail_bucket.py)
_DIALECT_WEEK_STARTS = frozenset({"monday", "sunday"})


@dataclass
class Partials:
    """Partial aggregates in the CTE ``table``: a host scan's CTE, per period (``own`` is
    None), or a pass of their own per day over ``own`` (a scan carrying the union of the
    windowed scans' joins, their shared row filter in WHERE). ``columns``: (partial
    alias, window scan, measure, extra condition: the window's row filter the host
    lacks)."""

    table: str
    own: Scan | None
    #: ``own``: where its pass starts, the earliest ``lo`` of its windows; None when
    #: some window reads from the first row
    lowest: dt.date | None = None
    opened: bool = False
    columns: list[tuple[str, Scan, Measure, Node | None]] = field(default_factory=list)
    keys: dict[tuple[object, ...], str] = field(default_factory=dict)

    def column(self, window: Scan, measure: Measure, extra: Node | None) -> str:
        """The partial column computing ``measure`` (restricted by ``extra``): identical
        partials of different windows (revenue to date, trailing 6 and 12 months) are
        one column."""
        key = (measure.function, measure.args, measure.condition, extra)
        found = self.keys.get(key)
        if found is None:
            found = f"{self.table}_p{len(self.keys)}"
            self.keys[key] = found
            self.columns.append((found, window, measure, extra))
        return found


@dataclass
class FastWindow:
    """A window scan computed from ``partials``: ``columns`` maps each of its measures to
    the partial column combined over the periods of each window."""

    scan: Scan
    bounds: list[WindowBounds]
    partials: Partials
    columns: dict[str, str]


def whole_periods(plan: Plan, bounds: list[WindowBounds]) -> bool:
    """Whether every window is a union of whole periods of the run's grain: each ``lo``
    is a period start (``hi`` always is: the period's end). An open ``lo`` (``all``, or
    before the year 1) reads from the first row, which a bucket of the dialect's own
    holds; a retail CASE bucket only knows the spine's periods."""
    project = plan.project
    grain = plan.request.grain
    calendar = project.retail_calendar
    case_bucket = (
        calendar is not None
        and grain != "day"
        and not (grain == "week" and calendar.week_start in _DIALECT_WEEK_STARTS)
    )
    spine = frozenset(plan.periods or ())
    for bound in bounds:
        lo = bound.lo
        if lo is None:
            if case_bucket:
                return False
            continue
        if case_bucket:
            if lo not in spine:
                return False
            continue
        try:
            start = period_start(
                lo, grain, project.fiscal_year_start, project.week_start, retail=calendar
            )
        except DateOutOfRange:
            return False
        if start != lo:
            return False
    return True


def plan_fast_windows(
    plan: Plan,
    split: frozenset[str],
    bounds_of: dict[str, list[WindowBounds]],
    computed: Callable[[Scan], Iterable[Measure]],
) -> dict[str, FastWindow]:
    """The window scans computed from per-period partials, by alias. ``bounds_of``: the
    bounds of every window scan (computed once by the caller, who reuses them);
    ``computed``: the measures a scan's CTE computes, which a window's partial equal to
    one of them reads rather than computing it again."""
    request = plan.request
    if (
        request.grain == "all"
        or plan.periods is None
        or request.start is None
        or plan.first_period != request.start  # an unaligned range: the per-day path
    ):
        return {}
    found: dict[str, FastWindow] = {}
    own: dict[tuple[object, ...], Partials] = {}
    hosts: dict[str, Partials] = {}
    for scan in plan.scans:
        bounds = bounds_of.get(scan.alias)
        if bounds is None or not _eligible(scan):
            continue
        lower = earliest(bounds)
        host = _host(plan, scan, lower, split)
        if host is not None and not whole_periods(plan, bounds):
            host = None  # parts of days: a pass of their own
        extra: Node | None = None
        if host is not None:
            partials = _host_partials(hosts, host, computed)
            extra = scan.row_filter if host.row_filter is None else None
        else:
            partials = _own_partials(own, scan, lower)
        columns = {m.alias: partials.column(scan, m, extra) for m in scan.measures.values()}
        found[scan.alias] = FastWindow(scan, bounds, partials, columns)
    return found


def _host_partials(
    hosts: dict[str, Partials], host: Scan, computed: Callable[[Scan], Iterable[Measure]]
) -> Partials:
    """The partials of ``host``'s CTE; those equal to a measure it computes anyway are
    that measure's column."""
    partials = hosts.get(host.alias)
    if partials is None:
        partials = hosts[host.alias] = Partials(host.alias, None)
        for measure in computed(host):
            key = (measure.function, measure.args, measure.condition, None)
            partials.keys.setdefault(key, measure.alias)
    return partials


def _own_partials(
    own: dict[tuple[object, ...], Partials], scan: Scan, lower: dt.date | None
) -> Partials:
    """The pass of partials shared by the windowed scans of ``scan``'s table, time column
    and row filter: every join any of them uses, from the earliest ``lo`` of them all."""
    key = (scan.source.name, scan.time, scan.row_filter)
    partials = own.get(key)
    if partials is None:
        holder = dataclasses.replace(scan, joins=list(scan.joins), measures={})
        partials = own[key] = Partials(f"{scan.alias}_days", holder)
    assert partials.own is not None
    for path in scan.joins:
        if path not in partials.own.joins:
            partials.own.joins.append(path)
    partials.opened = partials.opened or lower is None
    if lower is not None and (partials.lowest is None or lower < partials.lowest):
        partials.lowest = lower
    return partials


def combinable(scan: Scan) -> bool:
    """Whether every measure of a window scan combines from partial values."""
    return all(measure.function in COMBINE for measure in scan.measures.values())


def _eligible(scan: Scan) -> bool:
    """A plain table's window of combinable aggregates (not a snapshot, not a funnel)."""
    return (
        type(scan) is Scan
        and scan.window is not None
        and not scan.snapshot
        and combinable(scan)
        and all(m.snapshot is None for m in scan.measures.values())
    )


def _host(plan: Plan, window: Scan, lower: dt.date | None, split: frozenset[str]) -> Scan | None:
    """The ordinary scan of the same table and time column that reads every row the
    window reads (from ``lower``, None: from the first row) after the same or no row
    filter, with every join the window uses; among several, the one reading least."""
    best: Scan | None = None
    best_start: dt.date | None = None
    for scan in plan.scans:
        if (
            type(scan) is not Scan
            or scan.window is not None
            or scan.snapshot
            or scan.alias in split
            or scan.source.name != window.source.name
            or scan.time != window.time
            or scan.row_filter not in (None, window.row_filter)
            or not set(window.joins) <= set(scan.joins)
        ):
            continue
        start = plan.scan_start(scan)
        if start is not None and (lower is None or start > lower):
            continue
        if best is None or (start is not None and (best_start is None or start > best_start)):
            best, best_start = scan, start
    return best
