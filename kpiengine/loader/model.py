"""The loaded project: frozen dataclasses that later stages read and never change.

Load builds these from YAML (with positions); parse fills the expression trees; check
verifies them against each other. Sources, KPIs and rules live in separate namespaces, so
a KPI may share its name with a source or a column (SPEC §5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpiengine.language.ast import Node

# The vocabularies live in loader/vocabulary.py (import-light: the CLI reads them at
# start-up); re-exported here, next to the definitions that use them.
from kpiengine.loader.vocabulary import (
    COLUMN_TYPES as COLUMN_TYPES,
)
from kpiengine.loader.vocabulary import (
    EXPRESSION_TYPE_OF_COLUMN as EXPRESSION_TYPE_OF_COLUMN,
)
from kpiengine.loader.vocabulary import (
    EXPRESSION_TYPES as EXPRESSION_TYPES,
)
from kpiengine.loader.vocabulary import (
    GRAINS as GRAINS,
)
from kpiengine.loader.vocabulary import (
    SEVERITIES as SEVERITIES,
)
from kpiengine.loader.vocabulary import (
    SEVERITY_ORDER as SEVERITY_ORDER,
)
from kpiengine.loader.vocabulary import (
    TIME_GRAINS as TIME_GRAINS,
)
from kpiengine.loader.vocabulary import (
    UNITS as UNITS,
)
from kpiengine.loader.vocabulary import (
    arrow_types as arrow_types,
)
from kpiengine.source import SourceTexts, Span


@dataclass(frozen=True)
class Expression:
    """An expression as written (``text``) and as parsed (``tree``; None if it did not parse)."""

    text: str
    tree: Node | None
    span: Span


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    span: Span
    unit: str | None = None
    key: bool = False
    values: tuple[Any, ...] | None = None
    description: str | None = None


@dataclass(frozen=True)
class Join:
    """A many-to-one join from a source to another source (``left`` = ``right``)."""

    source: str
    left: str
    right: str
    span: Span


@dataclass(frozen=True)
class DimensionMapping:
    """A source's own column for a conformed dimension (``dimensions: {region: territory}``
    in a source file): it wins over the join path to the dimension's column."""

    name: str
    column: str  # a column name as written: ``territory``, ``reps.region``
    span: Span


@dataclass(frozen=True)
class ConformedDimension:
    """A project-level dimension (``dimensions:`` in kpiengine.yaml): one name, e.g.
    ``region``, that means ``accounts.region`` for every source that reaches ``accounts``."""

    name: str
    column: str  # ``source.column`` as written
    span: Span
    title: str | None = None
    description: str | None = None

    @property
    def owner(self) -> str:
        return self.column.split(".")[0]


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    columns: dict[str, Column]
    span: Span
    time: str | None = None
    joins: tuple[Join, ...] = ()
    description: str | None = None
    #: conformed dimension name → this source's column for it
    dimensions: dict[str, DimensionMapping] = field(default_factory=dict)

    def join_to(self, source_name: str) -> Join | None:
        return next((j for j in self.joins if j.source == source_name), None)


@dataclass(frozen=True)
class Target:
    value: float
    direction: str  # "higher" | "lower"
    span: Span


@dataclass(frozen=True)
class Rule:
    name: str
    when: Expression
    severity: str
    span: Span
    message: str | None = None
    kpi: str | None = None  # None for a standalone rule file
    #: a guard (SPEC §13.8): where it is not true the rule is not evaluated, and the
    #: row's status is ``insufficient_data``
    require: Expression | None = None


@dataclass(frozen=True)
class ConversionSide:
    """One side of a conversion KPI: a source's rows after ``filter``, at ``time`` (the
    source's own time column unless given), with ``entity`` naming who the row is about."""

    source: str
    entity: str
    span: Span
    filter: Expression | None = None
    time: str | None = None
    time_span: Span | None = None
    entity_span: Span | None = None
    source_span: Span | None = None


@dataclass(frozen=True)
class Conversion:
    """A conversion KPI (SPEC §13.5): base events that an event of the same entity
    follows, within ``within_days`` when given; ``value`` is ``rate`` or ``count``. The
    KPI's own ``source``, ``filter`` and ``time`` are the base side's (its dimensions are
    the base source's); see kpiengine/plan/conversion.py for how it runs."""

    base: ConversionSide
    event: ConversionSide
    span: Span
    value: str = "rate"
    within_days: int | None = None


@dataclass(frozen=True)
class Window:
    """Which rows an aggregate reads for a period (SPEC §13.1): ``to_date`` (from the
    start of the ``unit`` period holding the period's start), ``last`` (``count`` units
    back from the period's end) or ``all`` (everything before the period's end)."""

    kind: str  # "to_date" | "last" | "all"
    span: Span
    unit: str | None = None  # to_date: week..year; last: day..year
    count: int | None = None  # last only

    def describe(self) -> str:
        """In words, for `kpi explain` and the catalog."""
        if self.kind == "to_date":
            return f"{self.unit} to date"
        if self.kind == "last":
            return f"the last {self.count} {self.unit}(s)"
        return "all rows up to the period's end"


@dataclass(frozen=True)
class Kpi:
    name: str
    expression: Expression
    span: Span
    title: str | None = None
    description: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    source: str | None = None
    source_span: Span | None = None
    filter: Expression | None = None
    time: str | None = None
    time_span: Span | None = None
    unit: str | None = None
    dimensions: tuple[str, ...] | None = None  # None: any column of the source or its joins
    dimension_spans: tuple[Span, ...] = ()
    target: Target | None = None
    rules: tuple[Rule, ...] = ()
    semi_additive: str | None = None  # "last" | "first"
    #: per-entity snapshots (SPEC §13.4): the column naming the entity, and where
    snapshot_per: str | None = None
    snapshot_per_span: Span | None = None
    window: Window | None = None
    fill_null: float | None = None
    conversion: Conversion | None = None  # a funnel step (SPEC §13.5)

    @property
    def is_derived(self) -> bool:
        return self.source is None


#: Weekday names of ``calendar:`` (SPEC §13.7), Monday first, as ``date.weekday()`` counts.
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class RetailCalendar:
    """A retail (4-4-5 / 4-5-4 / 5-4-4) calendar of 52/53-week years (SPEC §13.7).

    Years end on ``weekday``, the last one in (``rule: last``) or the one nearest to the
    end of (``rule: nearest``) ``month``; weeks start the day after it. The arithmetic is
    in :mod:`kpiengine.plan.retail`. The defaults are the NRF 4-5-4 calendar.
    """

    pattern: str = "4-5-4"
    month: int = 1
    weekday: str = "saturday"
    rule: str = "nearest"

    @property
    def month_weeks(self) -> tuple[int, int, int]:
        """Weeks of the three months of a quarter: (4, 5, 4) for 4-5-4."""
        first, second, third = (int(part) for part in self.pattern.split("-"))
        return first, second, third

    @property
    def week_start(self) -> str:
        """The first day of its weeks: the day after the year's last weekday."""
        return WEEKDAYS[(WEEKDAYS.index(self.weekday) + 1) % 7]


@dataclass(frozen=True)
class Project:
    root: Path
    name: str = "kpiengine"
    connector: str | None = None
    fiscal_year_start: int = 1
    week_start: str = "monday"
    #: a retail calendar (SPEC §13.7) for the week, month, quarter and year grains; None:
    #: the Gregorian calendar shifted by ``fiscal_year_start``
    retail_calendar: RetailCalendar | None = None
    currency: str = "EUR"
    plugins: tuple[str, ...] = ()
    #: plugin name → its settings, given to that plugin's hooks (``context.config``)
    plugin_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    validate_ignore: tuple[str, ...] = ()
    validate_fail_on: str = "error"
    #: conformed dimensions (SPEC §13.3): name → the column it stands for
    dimensions: dict[str, ConformedDimension] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    kpis: dict[str, Kpi] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    texts: SourceTexts = field(default_factory=SourceTexts, compare=False, repr=False)
