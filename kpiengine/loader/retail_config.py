"""The project's ``calendar:`` (SPEC §13.7): a retail calendar, read and cross-checked.

The JSON schema refuses unknown patterns, weekdays, months and rules with positioned
diagnostics; what it cannot say is checked here: settings that contradict the calendar.
A ``fiscal_year_start`` next to ``calendar:`` is an error (the retail year's end sets the
fiscal year; two answers for "when does the year start" would each be wrong somewhere),
and so is a week start other than the day after the year's last weekday (weeks must tile
the retail years, or a week would straddle two years).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import Diagnostic
from kpiengine.loader.model import RetailCalendar

if TYPE_CHECKING:
    from kpiengine.loader.definitions import _Document


def read_calendar(
    data: dict[str, Any], doc: _Document, diagnostics: list[Diagnostic]
) -> RetailCalendar | None:
    """The project file's retail calendar (None without ``calendar:`` or when the schema
    refused it); contradictions go to ``diagnostics``."""
    if "calendar" not in data or not doc.fine("calendar"):
        return None
    spec = data["calendar"] or {}
    end = spec.get("year_end") or {}
    calendar = RetailCalendar(
        pattern=spec.get("pattern", "4-5-4"),
        month=end.get("month", 1),
        weekday=end.get("weekday", "saturday"),
        rule=end.get("rule", "nearest"),
    )
    if "fiscal_year_start" in data:
        diagnostics.append(
            Diagnostic(
                "KPI105",
                "`fiscal_year_start` and `calendar:` both set when the year starts",
                doc.key_span("fiscal_year_start"),
                hint="remove `fiscal_year_start`: with a retail calendar the year starts "
                "the day after `calendar.year_end`",
            )
        )
    given = spec.get("week_start")
    if given is not None and given != calendar.week_start:
        diagnostics.append(_week_clash(doc.span("calendar", "week_start"), given, calendar))
    project_week = data.get("week_start")
    if project_week is not None and doc.fine("week_start") and project_week != calendar.week_start:
        diagnostics.append(_week_clash(doc.span("week_start"), project_week, calendar))
    return calendar


def _week_clash(span: Any, given: str, calendar: RetailCalendar) -> Diagnostic:
    return Diagnostic(
        "KPI105",
        f"weeks cannot start on {given}: the retail year ends on a {calendar.weekday}, so "
        f"its weeks start on {calendar.week_start}",
        span,
        hint=f"write `week_start: {calendar.week_start}`, or end the year on the day before "
        f"{given} (`calendar.year_end.weekday`)",
    )
