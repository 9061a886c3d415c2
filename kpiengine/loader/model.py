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
    fill_null: float | None = None

    @property
    def is_derived(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class Project:
    root: Path
    name: str = "kpiengine"
    connector: str | None = None
    fiscal_year_start: int = 1
    week_start: str = "monday"
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
