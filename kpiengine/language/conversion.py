"""Checks of a ``conversion:`` KPI (SPEC §13.5), each at the place it is about.

The base side is checked as the source KPI it is (source, filter, time column,
dimensions: kpiengine/language/check.py), with ``count()`` standing for its synthetic
expression; the event side, the entity columns and what does not combine with a
conversion are checked here.
"""

from __future__ import annotations

import dataclasses

from kpiengine.diagnostics import Diagnostic, did_you_mean
from kpiengine.language.ast import Call
from kpiengine.language.check import (
    Scope,
    _check_source_kpi,
    _check_time_column,
    check_expression,
)
from kpiengine.language.functions import FunctionRegistry
from kpiengine.language.names import TYPE_OF_COLUMN
from kpiengine.loader.conversion import CONVERTED
from kpiengine.loader.model import Conversion, ConversionSide, Expression, Kpi, Project, Source


def check_conversion(project: Project, kpi: Kpi, functions: FunctionRegistry) -> list[Diagnostic]:
    """Every problem of a conversion KPI (``kpi.conversion`` is set). check.py calls it
    (importing it late: this module reuses check.py's base-side checks)."""
    conversion = kpi.conversion
    assert conversion is not None
    span = kpi.expression.span
    counted = Expression("count()", Call(span, "count", ()), span)
    found = _check_source_kpi(project, dataclasses.replace(kpi, expression=counted), functions)
    found.extend(_not_combined(kpi, conversion))
    base = project.sources.get(conversion.base.source)
    if base is not None:
        found.extend(_entity(base, conversion.base, "base"))
        if CONVERTED in base.columns:
            found.append(
                Diagnostic(
                    "KPI105",
                    f"source `{base.name}` has a column named `{CONVERTED}`, a name "
                    "kpiengine keeps for conversion KPIs",
                    base.columns[CONVERTED].span,
                    "rename the column in the source file",
                )
            )
    event = project.sources.get(conversion.event.source)
    if event is None:
        found.append(
            Diagnostic(
                "KPI311",
                f"unknown source `{conversion.event.source}`",
                conversion.event.source_span or conversion.event.span,
                did_you_mean(conversion.event.source, project.sources),
            )
        )
        return found
    found.extend(_event_side(project, event, conversion.event, functions))
    if base is not None and not found:
        found.extend(_same_type(base, event, conversion))
    return found


def _not_combined(kpi: Kpi, conversion: Conversion) -> list[Diagnostic]:
    """A window (SPEC §13.1) or a snapshot does not combine with a conversion: each base
    event is counted once, in the period of its own time."""
    found = []
    if kpi.window is not None:
        found.append(
            Diagnostic(
                "KPI314",
                "a conversion KPI cannot have a `window:`",
                kpi.window.span,
                "each base event counts in the period of its own time; wrap the KPI "
                "in rolling_sum()/cumulative_sum() of a count instead",
            )
        )
    if kpi.semi_additive is not None:
        found.append(
            Diagnostic(
                "KPI314",
                "a conversion KPI cannot be `semi_additive`",
                kpi.span,
                "remove `semi_additive:`",
            )
        )
    return found


def _entity(source: Source, side: ConversionSide, which: str) -> list[Diagnostic]:
    if side.entity in source.columns:
        return []
    return [
        Diagnostic(
            "KPI301",
            f"entity column `{side.entity}` is not a column of `{source.name}` "
            f"(the {which} source)",
            side.entity_span or side.span,
            did_you_mean(side.entity, source.columns)
            or "write `entity: {base: column, event: column}` when the names differ",
        )
    ]


def _event_side(
    project: Project,
    source: Source,
    side: ConversionSide,
    functions: FunctionRegistry,
) -> list[Diagnostic]:
    found = _entity(source, side, "event")
    time = side.time or source.time
    if time is None:
        found.append(
            Diagnostic(
                "KPI315",
                f"the event source `{source.name}` has no time column",
                side.span,
                f"add `time:` to `conversion.event` or to source `{source.name}`",
            )
        )
    else:
        found.extend(_check_time_column(source, time, side.time_span or side.span))
    if side.filter is not None and side.filter.tree is not None:
        scope = Scope("row", project, functions, source)
        kind = check_expression(side.filter.tree, scope)
        found.extend(scope.diagnostics)
        if not scope.diagnostics and kind not in ("boolean", "null"):
            found.append(
                Diagnostic(
                    "KPI305",
                    "an event filter must be a condition",
                    side.filter.span,
                    "e.g. filter: stage = 'won'",
                )
            )
    return found


def _same_type(base: Source, event: Source, conversion: Conversion) -> list[Diagnostic]:
    """The entity columns must hold values of one kind to be compared."""
    left = TYPE_OF_COLUMN[base.columns[conversion.base.entity].type]
    right = TYPE_OF_COLUMN[event.columns[conversion.event.entity].type]
    if left == right:
        return []
    return [
        Diagnostic(
            "KPI305",
            f"entity `{base.name}.{conversion.base.entity}` is {left} but "
            f"`{event.name}.{conversion.event.entity}` is {right}",
            conversion.event.entity_span or conversion.span,
            "name entity columns of the same type on both sides",
        )
    ]
