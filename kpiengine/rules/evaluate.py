"""Evaluate stage: rules over computed values → a status per row and alerts.

Rule conditions are written in the expression language and evaluated here, in Python,
with SQL's null logic (a comparison with null is not true; ``and``/``or`` are
three-valued), over the values of one period and dimension combination: ``value`` (the
KPI's), ``target``, ``previous`` (the KPI's value one period earlier in the result) and
any other KPI of the run by name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from kpiengine.execute.result import Alert, Result, ResultRow
from kpiengine.language.ast import (
    Between,
    Binary,
    Call,
    InList,
    IsNull,
    Literal,
    Name,
    Node,
    Unary,
    dispatch_table,
    walk,
)
from kpiengine.loader.model import SEVERITY_ORDER, Kpi, Project, Rule
from kpiengine.rules.pace import pace, period_bounds

__all__ = [
    "INSUFFICIENT_DATA",
    "SEVERITY_ORDER",
    "STATUS_ORDER",
    "Alert",
    "evaluate",
    "rule_inputs",
    "rule_kpis",
]

#: The status of a row where a rule's ``require:`` guard was not true and no rule fired.
INSUFFICIENT_DATA = "insufficient_data"
#: Row statuses, least to most severe: a guarded rule that could not be evaluated ranks
#: above ``ok`` (the row was not fully checked) and below every rule that fired.
STATUS_ORDER = {"ok": 0, INSUFFICIENT_DATA: 1, **{k: v + 1 for k, v in SEVERITY_ORDER.items() if v}}
#: How ``pace(kpi)`` asks a lookup for a KPI's pace: no name contains a colon.
_PACE = "pace:"


def evaluate(
    project: Project, result: Result, as_of: dt.date | None = None
) -> tuple[list[Alert], dict[ResultRow, str]]:
    """Alerts of every rule that fires, and the status of every row.

    KPI rules give each row a status: the most severe rule that fired, else
    ``insufficient_data`` when a rule's ``require`` was not true (the rule was not
    evaluated), else ``ok``. Standalone rules (``rule:`` files) are evaluated for every
    period and dimension combination where all the KPIs they name have a row. ``pace``
    projects in-progress periods at ``as_of`` (default: the result's, else today).
    """
    as_of = as_of or getattr(result, "as_of", None) or dt.date.today()
    cells = {(r.kpi, r.period, r.dimensions): r.value for r in result.rows}
    periods = sorted({r.period for r in result.rows if r.period is not None})
    before = dict(zip(periods[1:], periods[:-1], strict=False))
    alerts: list[Alert] = []
    status: dict[ResultRow, str] = {}
    alerts.extend(_standalone(project, result, cells, as_of))
    for row in result.rows:
        kpi = project.kpis.get(row.kpi)
        if kpi is None:
            continue
        status[row] = "ok"
        if not kpi.rules:
            continue
        bounds = period_bounds(
            row.period, result.grain, result.start, result.end, retail=result.retail_calendar
        )
        previous = before.get(row.period) if row.period else None
        variables = _variables(kpi, row, cells, previous, bounds, as_of)
        for rule in kpi.rules:
            if rule.require is not None and not _truthy(_eval(rule.require.tree, variables)):
                if STATUS_ORDER[INSUFFICIENT_DATA] > STATUS_ORDER[status[row]]:
                    status[row] = INSUFFICIENT_DATA
                continue
            if _truthy(_eval(rule.when.tree, variables)):
                alerts.append(_alert(project, kpi, rule, row, variables))
                if STATUS_ORDER[rule.severity] > STATUS_ORDER[status[row]]:
                    status[row] = rule.severity
    return alerts, status


def rule_kpis(rule: Rule) -> list[str]:
    """The KPI names a rule's condition and guard mention (``pace(k)`` included)."""
    found: list[str] = []
    for expression in (rule.when, rule.require):
        if expression is not None and expression.tree is not None:
            found.extend(n.dotted for n in walk(expression.tree) if isinstance(n, Name))
    return list(dict.fromkeys(found))


def rule_inputs(project: Project, names: list[str]) -> list[str]:
    """KPIs that the rules of ``names`` read and that are not among ``names``: a run
    computes them too (and shows only ``names``), so a guard such as ``require:
    deals_closed >= 20`` has its value whichever KPIs were asked for."""
    wanted = set(names)
    found: list[str] = []
    for name in names:
        kpi = project.kpis.get(name)
        for rule in kpi.rules if kpi is not None else ():
            found.extend(n for n in rule_kpis(rule) if n in project.kpis and n not in wanted)
    return list(dict.fromkeys(found))


def shown_only(project: Project, result: Result, names: list[str]) -> Result:
    """``result`` without the rows, statuses and alerts of KPIs not in ``names`` (those a
    run computed only for its rules, :func:`rule_inputs`): a standalone rule's alerts
    stay when every KPI it names was asked for, as they would without the extra KPIs."""
    keep = set(names)
    if all(r.kpi in keep for r in result.rows):
        return result
    standalone = {r.name for r in project.rules if set(rule_kpis(r)) <= keep}
    return dataclasses.replace(
        result,
        rows=[r for r in result.rows if r.kpi in keep],
        statuses={r: s for r, s in result.statuses.items() if r.kpi in keep},
        alerts=[
            a for a in result.alerts if a.kpi in keep or (a.kpi is None and a.rule in standalone)
        ],
    )


def _standalone(
    project: Project, result: Result, cells: Mapping[tuple[Any, ...], Any], as_of: dt.date
) -> list[Alert]:
    alerts = []
    keys = sorted(
        {(r.period, r.dimensions) for r in result.rows}, key=lambda k: (str(k[0]), str(k[1]))
    )
    for rule in project.rules:
        names = rule_kpis(rule)
        for period, dimensions in keys:
            if not names or not all((n, period, dimensions) in cells for n in names):
                continue
            bounds = period_bounds(
                period, result.grain, result.start, result.end, retail=result.retail_calendar
            )

            def lookup(
                name: str, period: Any = period, dimensions: Any = dimensions, bounds: Any = bounds
            ) -> Any:
                if name.startswith(_PACE):
                    return pace(cells.get((name[len(_PACE) :], period, dimensions)), bounds, as_of)
                return cells.get((name, period, dimensions))

            if rule.require is not None and not _truthy(_eval(rule.require.tree, lookup)):
                continue
            if not _truthy(_eval(rule.when.tree, lookup)):
                continue
            values = {n: lookup(n) for n in names}
            message = rule.message or f"rule {rule.name} fired"
            if rule.message:
                from kpiengine.rules.messages import render_message

                variables = {**values, "period": period.isoformat() if period else None}
                variables.update(dimensions)
                message = render_message(rule.message, variables, project.currency)
            value = values[names[0]] if len(names) == 1 else None
            alerts.append(
                Alert(None, rule.name, period, dimensions, value, None, rule.severity, message)
            )
    return alerts


def _variables(
    kpi: Kpi,
    row: ResultRow,
    cells: Mapping[tuple[Any, ...], Any],
    previous_period: dt.date | None,
    bounds: tuple[dt.date, dt.date] | None,
    as_of: dt.date,
) -> Callable[[str], Any]:
    def lookup(name: str) -> Any:
        if name.startswith(_PACE):
            inner = name[len(_PACE) :]
            return pace(lookup(inner), bounds, as_of)
        if name == "value":
            return row.value
        if name == "pace":
            return pace(row.value, bounds, as_of)
        if name == "target":
            return kpi.target.value if kpi.target else None
        if name == "previous":
            return cells.get((kpi.name, previous_period, row.dimensions))
        return cells.get((name, row.period, row.dimensions))

    return lookup


def _alert(
    project: Project, kpi: Kpi, rule: Rule, row: ResultRow, variables: Callable[[str], Any]
) -> Alert:
    target = kpi.target.value if kpi.target else None
    message = rule.message or f"{kpi.name}: rule {rule.name} fired"
    if rule.message:
        from kpiengine.rules.messages import render_message

        message = render_message(
            rule.message,
            {
                "value": row.value,
                "target": target,
                "previous": variables("previous"),
                "kpi": kpi.name,
                "title": kpi.title or kpi.name,
                "period": row.period.isoformat() if row.period else None,
                **{k: v for k, v in row.dimensions},
            },
            project.currency,
        )
    return Alert(
        kpi.name, rule.name, row.period, row.dimensions, row.value, target, rule.severity, message
    )


def _truthy(value: Any) -> bool:
    return value is True


def _eval(node: Node | None, variables: Callable[[str], Any]) -> Any:
    if node is None:
        return None
    return _EVAL[type(node)](node, variables)


def _literal(node: Literal, variables: Callable[[str], Any]) -> Any:
    return node.value


def _name(node: Name, variables: Callable[[str], Any]) -> Any:
    return variables(node.dotted)


def _unary(node: Unary, variables: Callable[[str], Any]) -> Any:
    operand = _eval(node.operand, variables)
    if operand is None:
        return None
    return -operand if node.op == "-" else not operand


def _is_null(node: IsNull, variables: Callable[[str], Any]) -> Any:
    return (_eval(node.operand, variables) is None) != node.negated


def _in_list(node: InList, variables: Callable[[str], Any]) -> Any:
    value = _eval(node.operand, variables)
    items = [_eval(i, variables) for i in node.items]
    if value is None:
        return None
    found = value in [i for i in items if i is not None]
    if not found and None in items:
        return None
    return found != node.negated


def _between(node: Between, variables: Callable[[str], Any]) -> Any:
    value, low, high = (_eval(n, variables) for n in (node.operand, node.low, node.high))
    if None in (value, low, high):
        return None
    return low <= value <= high


def _binary(node: Binary, variables: Callable[[str], Any]) -> Any:
    left = _eval(node.left, variables)
    if node.op in ("and", "or"):
        right = _eval(node.right, variables)
        if node.op == "and":
            if left is False or right is False:
                return False
            return None if None in (left, right) else True
        if left is True or right is True:
            return True
        return None if None in (left, right) else False
    right = _eval(node.right, variables)
    if left is None or right is None:
        return None
    if node.op in ("/", "%") and right == 0:
        return None
    operation = _OPERATIONS[node.op]
    try:
        return operation(left, right)
    except OverflowError:
        # an integer beyond the range of a double (a 400-digit literal): compute in
        # doubles, as the engines do, where it is ±inf (inf - inf is nan, never an error)
        return operation(_double(left), _double(right))


_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _double(value: Any) -> Any:
    """A number as a double: ±inf when an integer is too large for one."""
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _round(value: Any, digits: Any = 0) -> Any:
    """``round(x, n)``: nan and ±inf stay as they are; n beyond the precision of a double
    changes nothing (or gives 0), as on the engines."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    digits = _double(digits)
    if isinstance(digits, float):
        if math.isnan(digits):
            return None
        digits = max(min(digits, 400.0), -400.0)  # past ±400 the result no longer changes
    return round(value, int(digits))


def _days_between(start: Any, end: Any) -> int:
    def day(value: Any) -> dt.date:
        return value.date() if isinstance(value, dt.datetime) else value

    return (day(end) - day(start)).days


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": _round,
    "least": lambda *args: min(args),
    "greatest": lambda *args: max(args),
    "lower": str.lower,
    "upper": str.upper,
    "days_between": _days_between,
}


def _call(node: Call, variables: Callable[[str], Any]) -> Any:
    if node.name == "pace":  # pace(kpi): that KPI projected to the whole period
        target = node.args[0] if len(node.args) == 1 else None
        return variables(_PACE + target.dotted) if isinstance(target, Name) else None
    args = [_eval(a, variables) for a in node.args]
    if node.name == "if":
        # the checker insists on three arguments; missing ones read as null
        condition, then, otherwise = (*args, None, None, None)[:3]
        return then if condition is True else otherwise
    if node.name == "coalesce":
        return next((a for a in args if a is not None), None)
    if not args or any(a is None for a in args):
        return None
    function = _FUNCTIONS.get(node.name)
    return function(*args) if function else None


#: Node class → its value under SQL's null logic (see ``dispatch_table``).
_EVAL: Mapping[type[Node], Callable[[Any, Callable[[str], Any]], Any]] = dispatch_table(
    "evaluate",
    {
        Literal: _literal,
        Name: _name,
        Unary: _unary,
        Binary: _binary,
        InList: _in_list,
        Between: _between,
        IsNull: _is_null,
        Call: _call,
    },
)
