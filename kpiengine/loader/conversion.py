"""Load a ``conversion:`` KPI (SPEC §13.5) into the model.

A conversion KPI is a source KPI over its base source: its ``source``, ``filter`` and
``time`` are the base side's, so dimensions, ``--where`` and the base filter are checked
and compiled exactly as for any KPI on that source. Its expression is synthetic: the
count of base events (``count()``) and of those converted (``count(where
<converted> = 1)``), the flag coming from the derived table the plan reads instead of the
base table (kpiengine/plan/conversion.py). The text shown for it (``kpi explain``, the
catalog) says the step in words; it is never parsed.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import Diagnostic
from kpiengine.language.ast import Binary, Call, Literal, Name, Node
from kpiengine.loader.model import Conversion, ConversionSide, Expression, Kpi
from kpiengine.loader.schema_messages import _where, first_line
from kpiengine.source import Span

if TYPE_CHECKING:
    from kpiengine.loader.definitions import _Document

#: The column of the derived table saying whether a base event converted (1) or not (0).
#: Generated, never user text; a base column of that name is refused by the checker.
CONVERTED = "kpi__converted"

#: Keys a conversion KPI takes from ``conversion.base`` instead.
_REPLACED = ("expression", "source", "filter", "time")


def has_formula(data: dict[str, Any], doc: _Document, at: tuple[str | int, ...]) -> bool:
    """Whether a KPI has ``expression:`` or ``conversion:``; if neither, KPI105 on it (the
    schema cannot say "one of two keys" with the hint analysts get for a missing key)."""
    if not isinstance(data, dict):
        return False  # the schema said what it must be
    if "expression" in data or "conversion" in data:
        return True
    where = _where(at, "kpi", data)
    doc.diagnostics.append(
        Diagnostic(
            "KPI105",
            f"missing required key `expression` in {where}",
            first_line(doc.span(*at)),
            "add `expression: count()` (an aggregate over `source:`, or KPIs by name), "
            "or `conversion:` for a funnel step",
        )
    )
    return False


def no_expression(doc: _Document, at: tuple[str | int, ...]) -> Expression:
    """The placeholder expression of a KPI written with ``conversion:`` instead."""
    return Expression("", None, doc.span(*at, "kpi"))


def conversion_tree(value: str, span: Span) -> Node:
    """``count(where converted = 1) / count()`` (rate) or ``count(where converted = 1)``."""
    flag = Binary(span, "=", Name(span, (CONVERTED,)), Literal(span, 1, "number"))
    converted = Call(span, "count", (), flag)
    if value == "count":
        return converted
    return Binary(span, "/", converted, Call(span, "count", ()))


def describe(conversion: Conversion) -> str:
    """The step in words, shown where a KPI's formula is: ``kpi explain``, the catalog."""
    base, event = conversion.base, conversion.event
    entity = base.entity if base.entity == event.entity else f"{base.entity} = {event.entity}"
    within = "" if conversion.within_days is None else f" within {conversion.within_days} days"
    return (
        f"conversion {conversion.value}: {_side(base)} → {_side(event)} "
        f"of the same {entity}{within}"
    )


def _side(side: ConversionSide) -> str:
    text = side.source + (f".{side.time}" if side.time else "")
    return text + (f" where {side.filter.text.strip()}" if side.filter is not None else "")


def conversion_kpi(
    kpi: Kpi, data: dict[str, Any], doc: _Document, at: tuple[str | int, ...]
) -> Kpi:
    """``kpi`` with its ``conversion:`` read: base source, filter and time as the KPI's,
    the synthetic expression; a key ``conversion:`` replaces is refused where written."""
    for key in _REPLACED:
        if key in data:
            doc.diagnostics.append(
                Diagnostic(
                    "KPI104",
                    f"`{key}` does not go with `conversion:` in KPI `{kpi.name}`",
                    doc.key_span(*at, key),
                    "a conversion KPI reads its source, filter and time from "
                    "`conversion.base`; remove this key",
                )
            )
    path = (*at, "conversion")
    if not doc.fine(*path):
        return kpi
    raw = data["conversion"]
    entity = raw["entity"]
    one = isinstance(entity, str)  # one name for both sides, or {base: .., event: ..}
    sides = {}
    for side in ("base", "event"):
        entity_at = (*path, "entity") if one else (*path, "entity", side)
        name = entity if one else entity[side]
        sides[side] = _read_side(raw[side], doc, (*path, side), name, doc.span(*entity_at))
    base, event = sides["base"], sides["event"]
    within = raw.get("within")
    conversion = Conversion(
        base,
        event,
        doc.span(*path),
        raw.get("value", "rate"),
        within["days"] if within is not None else None,
    )
    span = doc.key_span(*path)
    tree = conversion_tree(conversion.value, span)
    return dataclasses.replace(
        kpi,
        expression=Expression(describe(conversion), tree, span),
        source=base.source,
        source_span=doc.span(*path, "base", "source"),
        filter=base.filter,
        time=base.time,
        time_span=base.time_span,
        conversion=conversion,
    )


def _read_side(
    raw: dict[str, Any], doc: _Document, path: tuple[str | int, ...], entity: str, at: Span
) -> ConversionSide:
    return ConversionSide(
        source=raw["source"],
        entity=entity,
        span=doc.span(*path),
        filter=doc.expression(*path, "filter") if raw.get("filter") is not None else None,
        time=raw.get("time"),
        time_span=doc.span(*path, "time") if raw.get("time") is not None else None,
        entity_span=at,
        source_span=doc.span(*path, "source"),
    )
