"""Planning of the KPI-level time functions: how far back they look, and nesting.

Window functions cannot be nested in SQL, so ``growth(rolling_sum(revenue, 3))`` is
rewritten: the inner ``rolling_sum(revenue, 3)`` becomes a hidden column computed one
layer earlier, and ``growth`` reads that column. The look-back of a KPI is how many
periods before the first period of the range it needs (``None``: all history, for
``cumulative_sum`` and ``streak``). A calendar offset (``previous(k, 1, year)``, SPEC
§13.2) looks back as many periods of the grain as its units can span: exact at month,
quarter and year grains, an upper bound at week and day grains, where a month or a year
is not a fixed number of periods (the statement picks the exact offset per period).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from kpiengine.diagnostics import Diagnostic
from kpiengine.language.ast import Call, Literal, Name, Node, walk
from kpiengine.language.functions import unit_argument
from kpiengine.loader.vocabulary import TIME_GRAINS
from kpiengine.plan.periods import max_offset_rows

if TYPE_CHECKING:
    from kpiengine.loader.model import RetailCalendar

TIME_FUNCTIONS = frozenset(
    {"previous", "growth", "rolling_sum", "rolling_avg", "cumulative_sum", "streak"}
)
UNBOUNDED = frozenset({"cumulative_sum", "streak"})
AUX_PREFIX = "__aux"


def periods_argument(call: Call) -> int:
    """The ``n`` of ``previous(k, n)`` and friends (1 when omitted)."""
    if len(call.args) > 1 and isinstance(call.args[1], Literal):
        return int(call.args[1].value)  # type: ignore[arg-type]
    return 1


def calendar_unit(call: Call) -> str | None:
    """The ``G`` of ``previous(k, n, G)`` (SPEC §13.2); None for the forms counting periods
    of the run's grain."""
    unit = unit_argument(call)
    return unit.dotted if isinstance(unit, Name) else None


def offset_unit(call: Call, grain: str) -> str:
    """What ``n`` counts: the calendar unit, else periods of the grain."""
    return calendar_unit(call) or grain


def finer_unit(call: Call, grain: str) -> str | None:
    """The calendar unit when it is finer than ``grain`` (a check error, found at plan
    time since the grain is a run option), else None."""
    unit = calendar_unit(call)
    if unit not in TIME_GRAINS or grain not in TIME_GRAINS:
        return None
    return unit if TIME_GRAINS.index(unit) < TIME_GRAINS.index(grain) else None


def periods_back(call: Call, grain: str | None, *, retail: RetailCalendar | None = None) -> int:
    """How many periods of ``grain`` before a row ``previous``/``growth`` may read: n for
    the period forms, at most :func:`max_offset_rows` for a calendar offset (the exact
    count varies with the date at week and day grains). Without a valid grain (``kpi
    validate`` knows none), n: the count at the grain of the unit itself, the least.
    ``retail``: the project's retail calendar, whose months and years are longer."""
    n = periods_argument(call)
    unit = calendar_unit(call)
    if unit is None or grain not in TIME_GRAINS or unit not in TIME_GRAINS:
        return n
    if finer_unit(call, grain):
        return n
    return max_offset_rows(n, unit, grain, retail=retail)


def _window_reach(
    call: Call, grain: str | None, retail: RetailCalendar | None = None
) -> int | None:
    """Periods before a row a time function reads (None: all history)."""
    if call.name in UNBOUNDED:
        return None
    if call.name.startswith("rolling"):
        return periods_argument(call) - 1
    return periods_back(call, grain, retail=retail)


def offset_problems(
    tree: Node, limit: int, grain: str | None = None, *, retail: RetailCalendar | None = None
) -> list[Diagnostic]:
    """KPI402 at every time-function offset over ``limit`` periods: no range is short
    enough to run it within the limit, so it is a definition error, found without a run
    (``kpi validate``) and before any period arithmetic (``previous(k, 700000)`` at day
    grain would otherwise build a spine of 700 000 days). With the run's ``grain``, a
    calendar offset counts in periods of that grain (``previous(k, 10000, year)`` is
    120 000 months at month grain)."""
    found = []
    for node in walk(tree):
        if not (isinstance(node, Call) and node.name in TIME_FUNCTIONS and len(node.args) > 1):
            continue
        argument = node.args[1]
        value = argument.value if isinstance(argument, Literal) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            continue
        calendar_offset = node.name in ("previous", "growth")
        reach = periods_back(node, grain, retail=retail) if calendar_offset else value
        if reach > limit:
            shown = f"{reach:,}" if reach < 10**15 else "more than 10^15"
            unit = calendar_unit(node)
            per = f" {grain} periods" if unit and grain in TIME_GRAINS else " periods"
            found.append(
                Diagnostic(
                    "KPI402",
                    f"`{node.name}` reaches {shown}{per} back, over the limit of "
                    f"{limit:,} periods a statement may produce",
                    argument.span,
                    "use a smaller number of periods, or raise the limit with "
                    "--max-periods N (or KPI_MAX_PERIODS)",
                )
            )
    return found


def lookback(
    tree: Node,
    known: Mapping[str, int | None],
    unbounded: int | None = None,
    grain: str | None = None,
    *,
    retail: RetailCalendar | None = None,
) -> int | None:
    """Periods of history ``tree`` needs before the first output period (None: all).

    With ``unbounded=0``, all-history functions count as 0: the finite part of the need,
    which still matters before the first period with data (empty periods count).
    ``grain`` converts calendar offsets into periods (an upper bound at week and day
    grains, where a month or a year is not a fixed number of periods).
    """
    if isinstance(tree, Name):
        return known.get(tree.dotted, 0)
    if isinstance(tree, Call) and tree.name in TIME_FUNCTIONS:
        inner = lookback(tree.args[0], known, unbounded, grain, retail=retail) if tree.args else 0
        if inner is None:
            return None
        if tree.name in UNBOUNDED:
            return None if unbounded is None else inner + unbounded
        return inner + (_window_reach(tree, grain, retail) or 0)
    needs = [lookback(child, known, unbounded, grain, retail=retail) for child in tree.children()]
    if any(n is None for n in needs):
        return None
    return max(needs, default=0)  # type: ignore[type-var]


def references_with_shift(
    tree: Node, grain: str | None = None, *, retail: RetailCalendar | None = None
) -> list[tuple[str, int | None]]:
    """Each name in ``tree`` with how many periods before a row its value is read
    (0 outside time functions; None for all history)."""
    found: list[tuple[str, int | None]] = []
    stack: list[tuple[Node, int | None]] = [(tree, 0)]
    while stack:
        node, shift = stack.pop()
        if isinstance(node, Name):
            found.append((node.dotted, shift))
            continue
        if isinstance(node, Call) and node.name in TIME_FUNCTIONS and node.args:
            window = _window_reach(node, grain, retail)
            inner = None if shift is None or window is None else shift + window
            stack.append((node.args[0], inner))
            continue
        stack.extend((child, shift) for child in node.children())
    return found


def has_time_function(tree: Node) -> bool:
    return any(isinstance(n, Call) and n.name in TIME_FUNCTIONS for n in walk(tree))


def lift_nested_windows(tree: Node, new_name: Callable[[Node], str]) -> Node:
    """Replace every time-function argument that itself uses a time function by a Name.

    ``new_name(subtree)`` registers the subtree as a hidden column and returns its name.
    """
    return _rewrite(tree, new_name)


def _rewrite(node: Node, new_name: Callable[[Node], str]) -> Node:
    changes: dict[str, Node | tuple[Node, ...]] = {}
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if isinstance(value, Node):
            changes[field.name] = _rewrite(value, new_name)
        elif isinstance(value, tuple) and value and isinstance(value[0], Node):
            changes[field.name] = tuple(_rewrite(v, new_name) for v in value)
    node = dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]
    if isinstance(node, Call) and node.name in TIME_FUNCTIONS and node.args:
        argument = node.args[0]
        if has_time_function(argument):
            hidden = Name(argument.span, (new_name(argument),))
            node = dataclasses.replace(node, args=(hidden, *node.args[1:]))
    return node
