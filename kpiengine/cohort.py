"""``kpi cohort``: retention triangles (SPEC §13.6).

The cohort of a row is the period, at the run's grain, of a date column of a source the
KPI reaches (``accounts.customer_since``: the month an account first paid). The KPI is
run once, grouped by that column bucketed to its period start (``RunRequest.bucketed``):
the cohort is one more dimension, so filters, joins, derived KPIs, snapshots and time
functions work as in ``kpi run``, in one statement. The triangle is shaped here: for
every cohort in ``[from, to)`` and every period from the cohort's to the last one,
``age`` = periods since the cohort's and ``retention`` = value / value at age 0.

With ``per`` (an entity column, e.g. ``account_id``) a second statement groups by cohort
and entity, and each cell also gets ``gross_retention``: each entity's value capped at its
value at age 0, summed, over the cohort's sum at age 0. For MRR that is gross revenue
retention (expansion excluded customer by customer), where ``retention`` is net.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kpiengine.diagnostics import did_you_mean
from kpiengine.errors import DefinitionError, UsageError
from kpiengine.language.names import base_kpis, resolve_column, unresolved_reason
from kpiengine.loader.model import Kpi, Project
from kpiengine.plan.periods import spine
from kpiengine.plan.planner import Plan, build_plan

if TYPE_CHECKING:
    from kpiengine.api import KpiProject
    from kpiengine.execute.result import Result

DATE_TYPES = ("date", "timestamp")


@dataclass(frozen=True)
class CohortCell:
    """One row of the triangle: a cohort at an age (the period ``age`` periods later)."""

    cohort: dt.date
    age: int
    period: dt.date
    value: int | float | None
    retention: float | None
    gross_retention: float | None = None

    def to_dict(self, gross: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "cohort": self.cohort.isoformat(),
            "age": self.age,
            "period": self.period.isoformat(),
            "value": self.value,
            "retention": self.retention,
        }
        if gross:
            row["gross_retention"] = self.gross_retention
        return row


@dataclass(frozen=True)
class CohortTable:
    """A whole triangle: every cohort in the range, each with its cells by age."""

    kpi: str
    title: str
    unit: str | None
    currency: str
    column: str  # the cohort column as given: accounts.customer_since
    grain: str
    start: dt.date | None
    end: dt.date | None
    cohorts: list[dt.date]
    cells: list[CohortCell]
    per: str | None = None
    sql: list[str] = field(default_factory=list)

    @property
    def ages(self) -> int:
        """How many age columns the triangle has (the periods in the range)."""
        return len(self.cohorts)

    def by_cohort(self) -> list[tuple[dt.date, list[CohortCell]]]:
        """The cells of each cohort, oldest cohort first, by age."""
        grouped: dict[dt.date, list[CohortCell]] = {c: [] for c in self.cohorts}
        for cell in self.cells:
            grouped[cell.cohort].append(cell)
        return list(grouped.items())

    def to_json(self) -> dict[str, Any]:
        """The document of ``kpi cohort --format json``."""
        return {
            "kpi": self.kpi,
            "cohort": self.column,
            "per": self.per,
            "grain": self.grain,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "rows": [c.to_dict(self.per is not None) for c in self.cells],
        }


# -- the request ---------------------------------------------------------------------


def cohort_plans(
    project: KpiProject,
    kpi: str,
    column: str,
    per: str | None = None,
    grain: str = "month",
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    where: str | None = None,
    max_periods: int | None = None,
) -> list[Plan]:
    """The plans of a cohort run: the KPI by cohort, and with ``per`` by cohort and
    entity. Bad arguments are usage errors (exit 2) that say what would work, raised
    before any engine is opened."""
    model = project.model
    check_cohort(model, kpi, column, grain, per)
    request = project.request([kpi], grain, start, end, (), where, max_periods)
    widened = _with_dimensions(model, kpi, [column, *([per] if per else [])])
    plans: list[Plan] = []
    for by in [(column,), *([(column, per)] if per else [])]:
        asked = dataclasses.replace(request, by=by, bucketed=(column,))
        try:
            plans.append(build_plan(widened, asked, project.plugins.functions()))
        except DefinitionError as error:
            error.texts = error.texts or model.texts
            raise
    return plans


def check_cohort(model: Project, kpi: str, column: str, grain: str, per: str | None) -> None:
    """Usage errors for what ``kpi cohort`` cannot run, each with the fix."""
    if kpi not in model.kpis:
        hint = did_you_mean(kpi, model.kpis)
        raise UsageError(f"unknown KPI `{kpi}`" + (f"; {hint}" if hint else ""))
    if grain == "all":
        raise UsageError(
            "a cohort is a period: `kpi cohort` needs a time grain, not `all`; "
            "hint: use --grain month (or day, week, quarter, year)"
        )
    parts = tuple(column.split("."))
    target = _cohort_source(model, column, parts)
    found = target.columns.get(parts[-1])
    if found is None:
        hint = did_you_mean(parts[-1], target.columns) or _date_columns_hint(model, target.name)
        raise UsageError(
            f"--cohort `{column}`: source `{target.name}` has no column `{parts[-1]}`; {hint}"
        )
    if found.type not in DATE_TYPES:
        raise UsageError(
            f"--cohort `{column}` is a {found.type} column, not a date: the cohort is the "
            f"period of a date; {_date_columns_hint(model, target.name)}"
        )
    for base in base_kpis(model, kpi):
        _check_reaches(model, kpi, base, column, "--cohort")
        if per is not None:
            _check_reaches(model, kpi, base, per, "--per")


def _cohort_source(model: Project, column: str, parts: tuple[str, ...]) -> Any:
    """The source whose column ``SOURCE.COLUMN`` names (the last hop of a longer path)."""
    if len(parts) < 2 or not all(parts):
        raise UsageError(
            f"--cohort takes SOURCE.COLUMN, a date column of a source the KPI reads or "
            f"joins, not `{column}`; e.g. --cohort accounts.customer_since"
        )
    for name in parts[:-1]:
        if name not in model.sources:
            hint = did_you_mean(name, model.sources) or (
                f"sources: {', '.join(sorted(model.sources))}"
            )
            raise UsageError(f"--cohort `{column}`: unknown source `{name}`; {hint}")
    return model.sources[parts[-2]]


def _date_columns_hint(model: Project, source: str) -> str:
    dates = [c.name for c in model.sources[source].columns.values() if c.type in DATE_TYPES]
    if not dates:
        return f"hint: source `{source}` has no date column"
    return f"hint: date columns of `{source}`: {', '.join(dates)}"


def _check_reaches(model: Project, name: str, base: Kpi, column: str, flag: str) -> None:
    """The column must resolve from every source the KPI reads (many-to-one joins)."""
    source = model.sources.get(base.source or "")
    parts = tuple(column.split("."))
    if source is not None and resolve_column(model, source, parts) is not None:
        return
    via = "" if base.name == name else f" (through its input `{base.name}`)"
    where = source.name if source is not None else str(base.source)
    reason = source and unresolved_reason(model, source, parts)
    hint = reason or (
        f"add a join from `{where}` towards `{parts[0]}`, or use a column of a source "
        f"`{where}` joins"
    )
    raise UsageError(
        f"{flag} `{column}`: KPI `{name}`{via} reads source `{where}`, which does not "
        f"reach it; hint: {hint}"
    )


def _with_dimensions(model: Project, kpi: str, columns: Iterable[str]) -> Project:
    """``model`` where the KPI's inputs may also be grouped by ``columns``. Declared
    ``dimensions:`` list the breakdowns a KPI offers; a cohort date or an entity is not a
    breakdown, and joins are many-to-one, so reaching the column is enough (checked)."""
    extra = tuple(columns)
    kpis = dict(model.kpis)
    for base in base_kpis(model, kpi):
        if base.dimensions is not None:
            kpis[base.name] = dataclasses.replace(base, dimensions=(*base.dimensions, *extra))
    return dataclasses.replace(model, kpis=kpis)


# -- the triangle ----------------------------------------------------------------------


def run_cohort(
    project: KpiProject, plans: list[Plan], connection: Any, column: str, per: str | None = None
) -> CohortTable:
    """Run the plans of :func:`cohort_plans` and shape the triangle."""
    from kpiengine.execute.run import run

    results = [run(plan, connection, project.plugins) for plan in plans]
    name = plans[0].outputs[0]
    return shape(project.model, name, results[0], column, results[1] if per else None, per)


def shape(
    model: Project,
    name: str,
    result: Result,
    column: str,
    per_entity: Result | None = None,
    per: str | None = None,
) -> CohortTable:
    """KPI ``name``'s triangle from a result grouped by the bucketed cohort column (and,
    with ``per_entity``, from one grouped by cohort and entity: gross retention)."""
    kpi = model.kpis.get(name)
    periods: list[dt.date] = []
    if result.start is not None and result.end is not None:
        calendar = model.fiscal_year_start, model.week_start
        retail = model.retail_calendar
        periods = spine(result.start, result.end, result.grain, *calendar, retail=retail)
    index = {p: i for i, p in enumerate(periods)}
    values: dict[tuple[dt.date, dt.date], Any] = {}
    seen: set[dt.date] = set()
    for row in result.rows:
        cohort = _as_date(row.dimensions[0][1])
        if cohort in index and row.period in index:
            assert row.period is not None
            values[(cohort, row.period)] = row.value
            seen.add(cohort)
    gross = _gross(per_entity, index) if per_entity is not None else {}
    cells: list[CohortCell] = []
    for i, cohort in enumerate(periods):
        first = values.get((cohort, cohort))
        for period in periods[i:]:
            value = values.get((cohort, period))
            cells.append(
                CohortCell(
                    cohort,
                    index[period] - i,
                    period,
                    value,
                    _ratio(value, first),
                    gross.get((cohort, period)),
                )
            )
    return CohortTable(
        name,
        (kpi.title if kpi else None) or name,
        kpi.unit if kpi else None,
        model.currency,
        column,
        result.grain,
        result.start,
        result.end,
        periods,
        cells,
        per,
        [result.sql, *([per_entity.sql] if per_entity is not None else [])],
    )


def _gross(
    result: Result, index: dict[dt.date, int]
) -> dict[tuple[dt.date, dt.date], float | None]:
    """Per cohort and period: Σ min(entity value, its value at age 0) / Σ value at age 0,
    over the entities of the cohort with a value at age 0 (an entity absent then is not
    part of what the cohort started with)."""
    by_entity: dict[tuple[dt.date, Any], dict[dt.date, Any]] = {}
    for row in result.rows:
        cohort = _as_date(row.dimensions[0][1])
        if cohort in index and row.period in index:
            assert row.period is not None
            by_entity.setdefault((cohort, row.dimensions[1][1]), {})[row.period] = row.value
    kept: dict[tuple[dt.date, dt.date], float] = {}
    started: dict[dt.date, float] = {}
    for (cohort, _), series in by_entity.items():
        first = series.get(cohort)
        if not isinstance(first, int | float) or first <= 0:
            continue
        started[cohort] = started.get(cohort, 0) + first
        for period, value in series.items():
            if period >= cohort and isinstance(value, int | float):
                kept[(cohort, period)] = kept.get((cohort, period), 0) + min(value, first)
    found: dict[tuple[dt.date, dt.date], float | None] = {}
    for cohort, total in started.items():
        for period in index:
            if period >= cohort:
                found[(cohort, period)] = kept.get((cohort, period), 0) / total
    return found


def _ratio(value: Any, first: Any) -> float | None:
    """value / value at age 0; null when either is null or the first is 0."""
    if not isinstance(value, int | float) or not isinstance(first, int | float) or first == 0:
        return None
    return value / first


def _as_date(value: Any) -> dt.date | None:
    """A bucketed cohort as the engine returns it: a date, a timestamp or ISO text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
