"""Pace and in-progress periods (SPEC §13.8): rules that know a period is not over yet.

A period is *partial* at an as-of date when it has begun and not ended: ``start <= as_of <
end``. The as-of date is read as the start of that day: data up to the day before it has
elapsed, so on 2025-06-16 a June (30 days) has 15 days elapsed, and May is complete.

``pace`` projects a value to the whole period: ``value × period days / elapsed days`` for a
partial period, the value itself for a complete one (``end <= as_of``), null for a period
that has not begun or in which no day has elapsed yet (nothing to project from). That is
only meaningful for *additive* KPIs — sums and counts, and sums and differences of them,
which grow with the days of a period; a ratio, an average or a distinct count does not, so
the checker refuses ``pace`` on them (KPI323, :func:`not_additive`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from kpiengine.language.ast import Binary, Call, Literal, Name, Node, Unary
from kpiengine.loader.model import Kpi, Project, RetailCalendar

#: Aggregates whose value over a period is the sum of their values over its days.
ADDITIVE_AGGREGATES = frozenset({"sum", "count"})


def period_bounds(
    period: dt.date | None,
    grain: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    retail: RetailCalendar | None = None,
) -> tuple[dt.date, dt.date] | None:
    """``[first day, end)`` of a row's period: the grain's period (``retail``: the
    project's retail calendar, SPEC §13.7), or at grain ``all`` the run's range (None when
    the run has none: such a row is never partial)."""
    from kpiengine.errors import UsageError
    from kpiengine.plan.periods import add_periods

    if period is None:
        return (start, end) if start is not None and end is not None else None
    try:
        return period, add_periods(period, grain, 1, retail=retail)
    except UsageError:  # the last period of the calendar ends after 9999-12-31
        return period, dt.date.max


def is_partial(bounds: tuple[dt.date, dt.date] | None, as_of: dt.date) -> bool:
    """The period has begun and is not over at ``as_of``."""
    return bounds is not None and bounds[0] <= as_of < bounds[1]


def pace(value: Any, bounds: tuple[dt.date, dt.date] | None, as_of: dt.date) -> Any:
    """``value`` projected to its whole period at ``as_of`` (module docstring)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if bounds is None or bounds[1] <= as_of:
        return value
    elapsed = (as_of - bounds[0]).days
    if elapsed <= 0:
        return None
    return value * (bounds[1] - bounds[0]).days / elapsed


def not_additive(project: Project, kpi: Kpi) -> str | None:
    """Why ``pace`` cannot project ``kpi`` (None when it can): what makes it not additive."""
    return _kpi_reason(project, kpi, set())


def _kpi_reason(project: Project, kpi: Kpi, seen: set[str]) -> str | None:
    if kpi.name in seen:
        return None  # a cycle: KPI309 says so
    seen = seen | {kpi.name}
    if kpi.semi_additive:
        return f"`{kpi.name}` is a snapshot (`semi_additive: {kpi.semi_additive}`)"
    if getattr(kpi, "window", None) is not None:
        return f"`{kpi.name}` is computed over a `window:`"
    for field in ("conversion", "snapshot_per"):
        if getattr(kpi, field, None):
            return f"`{kpi.name}` has `{field}:`"
    tree = kpi.expression.tree
    if tree is None:
        return None  # a parse error already says what is wrong
    reason = _node_reason(project, tree, kpi.is_derived, seen)
    return f"`{kpi.name}` {reason}" if reason else None


def _node_reason(project: Project, node: Node, derived: bool, seen: set[str]) -> str | None:
    """What keeps an expression from being additive, or None."""
    if isinstance(node, Call):
        if not derived and node.name in ADDITIVE_AGGREGATES:
            return None
        return f"uses {node.name}()"
    if isinstance(node, Name) and derived:
        inner = project.kpis.get(node.dotted)
        if inner is None:
            return None  # KPI302 already
        reason = _kpi_reason(project, inner, seen)
        return f"reads {reason}" if reason else None
    if isinstance(node, Unary) and node.op == "-":
        return _node_reason(project, node.operand, derived, seen)
    if isinstance(node, Binary) and node.op in ("+", "-"):
        return _node_reason(project, node.left, derived, seen) or _node_reason(
            project, node.right, derived, seen
        )
    if isinstance(node, Binary) and node.op in ("*", "/"):
        return _scaled_reason(project, node, derived, seen)
    if isinstance(node, Literal):
        return "adds a constant"
    if isinstance(node, Binary):
        return f"uses `{node.op}`"
    return "is not a sum or count"


def _scaled_reason(project: Project, node: Binary, derived: bool, seen: set[str]) -> str | None:
    """``k * x``, ``x * k`` and ``x / k`` with a number literal ``k`` stay additive."""
    left_constant = _number(node.left)
    right_constant = _number(node.right)
    if node.op == "*" and left_constant:
        return _node_reason(project, node.right, derived, seen)
    if right_constant:
        return _node_reason(project, node.left, derived, seen)
    if node.op == "/":
        return "divides (a ratio does not grow with the days of a period)"
    return "multiplies two values"


def _number(node: Node) -> bool:
    if isinstance(node, Unary) and node.op == "-":
        node = node.operand
    return isinstance(node, Literal) and node.kind == "number" and node.value not in (0, None)
