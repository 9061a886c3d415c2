"""Functions of the expression language: signatures for the checker, SQL for the compiler.

A :class:`FunctionSpec` is what a plugin returns from ``kpiengine_functions``; the
built-ins below are registered through the same hook. Signatures are plain data so that
``kpi validate`` never imports sqlglot; ``sql`` builders are only called by the compiler,
which passes sqlglot expressions in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kpiengine.language.ast import Call, Name, Node

#: Parameter kinds a signature may use.
#: number | string | boolean | temporal | orderable | any   — a value of that type
#: fraction  — a number literal between 0 and 1 (percentile)
#: periods   — a positive integer literal (time functions)
#: digits    — a whole-number literal from -400 to 400, optionally negated (round): engines
#:             refuse a fraction (`round(x, 0.5)`) and numbers beyond 32 bits, rules would
#:             truncate one, and past ±400 decimals a double no longer changes
#: unit      — a calendar unit written as a bare word: day, week, month, quarter or year
#:             (``previous(k, 1, year)``); not a KPI name, so name walks skip it
#: kpi       — a KPI-level numeric expression (time functions)
PARAM_KINDS = (
    "number", "string", "boolean", "temporal", "orderable", "any", "fraction", "periods",
    "digits", "unit",
)  # fmt: skip

ROW, AGGREGATE, TIME = "row", "aggregate", "time"


@dataclass(frozen=True)
class FunctionSpec:
    """A function callable from expressions.

    ``returns`` is a type name, or ``"arg0"`` (the first argument's type), or ``"common"``
    (the common type of all arguments). ``sql(args, dialect)`` builds the sqlglot
    expression from already-compiled arguments; aggregates receive their arguments with
    the ``where`` condition already folded in (``CASE WHEN cond THEN x END``).
    ``counts`` marks aggregates whose empty-period value is 0 rather than null.
    ``needs_column`` marks aggregates whose first argument must read a column: engines
    take a constant there for something else (DuckDB's ``QUANTILE_CONT(x ORDER BY 0.5)``
    is a binder error, ``ORDER BY 1`` a column position), so the checker refuses it.
    ``needs`` names the SQL capabilities the function is compiled with (keys of
    :data:`kpiengine.compile.dialects.capabilities.CAPABILITIES`): a dialect whose rules
    refuse one of them refuses the KPI (KPI404) at the call, instead of emitting SQL that
    fails or, worse, gives another number on that engine.
    """

    name: str
    kind: str
    params: tuple[str, ...]
    returns: str
    description: str
    optional: int = 0
    variadic: bool = False
    counts: bool = False
    needs_column: bool = False
    needs: tuple[str, ...] = ()
    sql: Callable[[Sequence[Any], str], Any] | None = None
    plugin: str = "builtin"

    @property
    def min_args(self) -> int:
        return len(self.params) - self.optional

    @property
    def max_args(self) -> int | None:
        return None if self.variadic else len(self.params)

    def arity_text(self) -> str:
        if self.variadic:
            return f"at least {self.min_args}"
        if self.optional:
            return f"{self.min_args} to {self.max_args}"
        return str(self.min_args)


def _exp() -> Any:
    from sqlglot import exp

    return exp


def _func(cls_name: str) -> Callable[[Sequence[Any], str], Any]:
    def build(args: Sequence[Any], dialect: str) -> Any:
        exp = _exp()
        cls = getattr(exp, cls_name)
        if cls_name in {"Coalesce", "Greatest", "Least"}:
            return cls(this=args[0], expressions=list(args[1:]))
        return cls(this=args[0])

    return build


def _round(args: Sequence[Any], dialect: str) -> Any:
    exp = _exp()
    digits = args[1] if len(args) > 1 else exp.Literal.number(0)
    return exp.Round(this=args[0], decimals=digits)


def _if(args: Sequence[Any], dialect: str) -> Any:
    exp = _exp()
    return exp.Case(ifs=[exp.If(this=args[0], true=args[1])], default=args[2])


def _days_between(args: Sequence[Any], dialect: str) -> Any:
    exp = _exp()
    start, end = (exp.Cast(this=a, to=exp.DataType.build(exp.DataType.Type.DATE)) for a in args)
    return exp.DateDiff(this=end, expression=start, unit=exp.var("DAY"))


def _count(args: Sequence[Any], dialect: str) -> Any:
    exp = _exp()
    return exp.Count(this=args[0] if args else exp.Star())


def _count_distinct(args: Sequence[Any], dialect: str) -> Any:
    exp = _exp()
    return exp.Count(this=exp.Distinct(expressions=[args[0]]))


def _rules(dialect: str) -> Any:
    """The rules of the dialect being compiled for: the compiler passes them with the
    name (:class:`kpiengine.compile.dialects.DialectName`), so a plugin's dialect gets its
    own ``percentile``; a bare name is looked up."""
    rules = getattr(dialect, "rules", None)
    if rules is not None:
        return rules
    from kpiengine.compile.dialects import rules_for

    return rules_for(dialect)


def _median(args: Sequence[Any], dialect: str) -> Any:
    return _rules(dialect).percentile(_exp().Literal.number(0.5), args[0])


def _percentile(args: Sequence[Any], dialect: str) -> Any:
    return _rules(dialect).percentile(args[1], args[0])


def _time_function(args: Sequence[Any], dialect: str) -> Any:
    raise AssertionError("time functions are compiled by the planner, not as plain calls")


BUILTIN_FUNCTIONS: tuple[FunctionSpec, ...] = (
    # row functions
    FunctionSpec(
        "coalesce",
        ROW,
        ("any",),
        "common",
        "First non-null argument.",
        variadic=True,
        sql=_func("Coalesce"),
    ),
    FunctionSpec(
        "if",
        ROW,
        ("boolean", "any", "any"),
        "common",
        "`if(cond, a, b)`: a when cond is true, else b (also when cond is null).",
        sql=_if,
    ),
    FunctionSpec("abs", ROW, ("number",), "number", "Absolute value.", sql=_func("Abs")),
    FunctionSpec(
        "round",
        ROW,
        ("number", "digits"),
        "number",
        "Round to n decimals (default 0; a whole number, negative rounds to tens, hundreds…).",
        optional=1,
        needs=("round_ties",),
        sql=_round,
    ),
    FunctionSpec(
        "least",
        ROW,
        ("orderable", "orderable"),
        "common",
        "Smallest argument.",
        variadic=True,
        needs=("greatest_nulls",),
        sql=_func("Least"),
    ),
    FunctionSpec(
        "greatest",
        ROW,
        ("orderable", "orderable"),
        "common",
        "Largest argument.",
        variadic=True,
        needs=("greatest_nulls",),
        sql=_func("Greatest"),
    ),
    FunctionSpec("lower", ROW, ("string",), "string", "Lower-case text.", sql=_func("Lower")),
    FunctionSpec("upper", ROW, ("string",), "string", "Upper-case text.", sql=_func("Upper")),
    FunctionSpec(
        "days_between",
        ROW,
        ("temporal", "temporal"),
        "number",
        "Whole calendar days from a to b (time of day ignored).",
        needs=("day_difference",),
        sql=_days_between,
    ),
    # aggregates
    FunctionSpec(
        "count",
        AGGREGATE,
        ("any",),
        "number",
        "Rows (`count()`), or non-null values (`count(x)`).",
        optional=1,
        counts=True,
        sql=_count,
    ),
    FunctionSpec(
        "count_distinct",
        AGGREGATE,
        ("any",),
        "number",
        "Distinct non-null values.",
        counts=True,
        needs=("count_distinct",),
        sql=_count_distinct,
    ),
    FunctionSpec(
        "sum", AGGREGATE, ("number",), "number", "Sum of non-null values.", sql=_func("Sum")
    ),
    FunctionSpec(
        "avg", AGGREGATE, ("number",), "number", "Mean of non-null values.", sql=_func("Avg")
    ),
    FunctionSpec("min", AGGREGATE, ("orderable",), "arg0", "Smallest value.", sql=_func("Min")),
    FunctionSpec("max", AGGREGATE, ("orderable",), "arg0", "Largest value.", sql=_func("Max")),
    FunctionSpec(
        "median",
        AGGREGATE,
        ("number",),
        "number",
        "Median, interpolated (continuous percentile 0.5).",
        needs_column=True,
        needs=("percentile_cont",),
        sql=_median,
    ),
    FunctionSpec(
        "percentile",
        AGGREGATE,
        ("number", "fraction"),
        "number",
        "`percentile(x, 0.9)`: continuous (interpolated) percentile.",
        needs_column=True,
        needs=("percentile_cont",),
        sql=_percentile,
    ),
    # KPI-level time functions (derived KPIs)
    FunctionSpec(
        "previous",
        TIME,
        ("number", "periods", "unit"),
        "number",
        "Value n periods earlier (default 1); `previous(k, n, year)`: k in the period holding "
        "this period's start minus n years (day, week, month, quarter, year).",
        optional=2,
        needs=("windows",),
        sql=_time_function,
    ),
    FunctionSpec(
        "growth",
        TIME,
        ("number", "periods", "unit"),
        "number",
        "(k - previous(k, n)) / previous(k, n); `growth(k, n, year)` against previous(k, n, year).",
        optional=2,
        needs=("windows",),
        sql=_time_function,
    ),
    FunctionSpec(
        "rolling_sum",
        TIME,
        ("number", "periods"),
        "number",
        "Sum over the last n periods, this one included.",
        needs=("windows",),
        sql=_time_function,
    ),
    FunctionSpec(
        "rolling_avg",
        TIME,
        ("number", "periods"),
        "number",
        "Mean over the last n periods, this one included.",
        needs=("windows",),
        sql=_time_function,
    ),
    FunctionSpec(
        "cumulative_sum",
        TIME,
        ("number",),
        "number",
        "Running total from the first period with data.",
        needs=("windows",),
        sql=_time_function,
    ),
    FunctionSpec(
        "streak",
        TIME,
        ("boolean",),
        "number",
        "Consecutive periods up to this one where the condition holds.",
        needs=("windows",),
        sql=_time_function,
    ),
)


#: function → position of its calendar-unit argument (``previous(k, 1, year)``): built-ins
#: only, and a plugin cannot replace a built-in, so the position is fixed.
UNIT_ARGUMENT = {
    spec.name: spec.params.index("unit") for spec in BUILTIN_FUNCTIONS if "unit" in spec.params
}


def unit_argument(node: Node) -> Node | None:
    """The calendar-unit argument of a call (``year`` in ``previous(k, 1, year)``), if any."""
    if not isinstance(node, Call):
        return None
    index = UNIT_ARGUMENT.get(node.name)
    return node.args[index] if index is not None and len(node.args) > index else None


def value_names(tree: Node) -> Iterator[Name]:
    """Every name ``tree`` reads a value from: its names, except calendar units, which
    are words of the call (``year``), not KPIs or columns."""
    stack = [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, Name):
            yield current
            continue
        unit = unit_argument(current)
        stack.extend(c for c in reversed(current.children()) if c is not unit)


class FunctionRegistry:
    """Name → spec, built-ins first; a plugin may not silently replace a built-in."""

    def __init__(
        self,
        specs: Sequence[FunctionSpec] = BUILTIN_FUNCTIONS,
        more: Callable[[], Sequence[FunctionSpec]] | None = None,
        on_clash: Callable[[FunctionSpec, str], None] | None = None,
    ) -> None:
        self._more = more  # called on the first unknown name: lazily loaded plugins
        # None: a clash raises ValueError; else it is reported and the later spec ignored
        self._on_clash = on_clash
        self._specs: dict[str, FunctionSpec] = {}
        for spec in specs:
            self._offer(spec)

    def add(self, spec: FunctionSpec) -> None:
        name = spec.name.lower()
        existing = self._specs.get(name)
        if existing is not None and existing != spec:
            raise ValueError(
                f"function `{name}` from {spec.plugin} clashes with the one from {existing.plugin}"
            )
        self._specs[name] = spec

    def _offer(self, spec: FunctionSpec) -> None:
        """Add ``spec``; on a clash the one already there (built-ins first) is kept."""
        try:
            self.add(spec)
        except ValueError as clash:
            if self._on_clash is None:
                raise
            self._on_clash(spec, f"{clash}; `{spec.name}` from {spec.plugin} is ignored")

    def get(self, name: str) -> FunctionSpec | None:
        found = self._specs.get(name.lower())
        if found is None and self._load_more():
            found = self._specs.get(name.lower())
        return found

    def names(self) -> list[str]:
        self._load_more()
        return sorted(self._specs)

    def _load_more(self) -> bool:
        """Ask for functions of plugins not loaded yet (once); True when it did."""
        more, self._more = self._more, None
        if more is None:
            return False
        for spec in more():
            self._offer(spec)
        return True

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs.values())


def default_registry() -> FunctionRegistry:
    """The functions of the process's default plugin host (built-ins, installed plugins):
    for callers without a project. A loaded project's registry is its host's
    (``KpiProject.plugins.functions()``), so projects never see each other's plugins."""
    from kpiengine.plugins.manager import default_host

    return default_host().functions()
