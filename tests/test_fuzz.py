"""Property-based fuzzing of loader → parser → checker → planner → compiler → rules (issue 10).

Definitions are untrusted input (a pull request runs ``kpi validate`` in CI), so whatever
text they hold, every stage must end in one of two ways: success, or the product's own
errors (:class:`~kpiengine.errors.KpiError` and its subclasses, carrying well-formed
diagnostics). Any other exception would reach the user as ``internal error``; a hang would
stall CI. Three generators feed the pipeline:

* random **token sequences** of the expression language (names, numbers, strings,
  operators, keywords, the registry's function names, parentheses, stray characters),
  used in every place an expression goes: a source KPI, a derived KPI, a filter, a rule
  condition and ``--where``; those that check are planned, compiled for every dialect and
  their rules evaluated;
* **well-formed random expressions and rules** (typed, with deliberate mistakes: wrong
  arities, unknown names, misplaced aggregates) written as a KPI file next to the tiny
  sales project, loaded through the public loader, planned and compiled for the 11
  dialects, run on DuckDB for a sample, and their rules evaluated;
* **random YAML documents**, structure-aware (the real keys with values of random types,
  random nesting) and then mutated as text (anchors, tags, tabs, truncation, ...).

``make fuzz`` runs the slow test with a larger count (``KPI_FUZZ_EXAMPLES``). The runs are
derandomized so that CI is reproducible; a failure prints the smallest example found.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kpiengine.api import KpiProject, load_and_check
from kpiengine.compile.dialects import DIALECTS
from kpiengine.compile.statement import compile_plan
from kpiengine.diagnostics import CODES, Diagnostic, Severity
from kpiengine.errors import KpiError
from kpiengine.execute.result import Result, ResultRow
from kpiengine.language.check import check_project
from kpiengine.language.functions import default_registry
from kpiengine.language.parse import KEYWORDS, parse_expression
from kpiengine.loader.model import Expression, Kpi, Project, Rule, Target
from kpiengine.plan.planner import RunRequest, build_plan
from kpiengine.rules.evaluate import evaluate
from kpiengine.source import Span, TextOrigin
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files

# -- the tiny project ---------------------------------------------------------------------

BASE_FILES = {
    **{name: text for name, text in SALES_FILES.items() if not name.startswith("kpis/")},
    "kpis/base.yaml": """
        kpis:
          - kpi: won_count
            source: opportunities
            expression: count(where stage = 'won')
          - kpi: revenue
            source: opportunities
            expression: sum(amount where stage = 'won')
            target: {value: 150}
          - kpi: deals
            source: opportunities
            expression: count()
            dimensions: [region, accounts.segment]
          - kpi: spend
            source: spend
            expression: sum(amount)
        """,
}
FUZZ_KPI_FILE = "kpis/fuzz.yaml"
FUZZ_RULE_FILE = "rules/fuzz.yaml"
BASE_KPIS = ("won_count", "revenue", "deals", "spend")
COLUMNS = {
    "number": ("amount",),
    "string": ("id", "account_id", "region", "stage", "accounts.segment"),
    "timestamp": ("created_at", "closed_at"),
}
DIMENSIONS = ("region", "stage", "accounts.segment", "amount", "nosuch", "accounts.nosuch")
PERIODS = (dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1))

#: Seconds one example may take before it counts as a hang (generous: shared CI cores).
EXAMPLE_LIMIT = float(os.environ.get("KPI_FUZZ_EXAMPLE_SECONDS", "20"))
#: Examples of the slow test, split over the three generators (``make fuzz`` raises it).
SLOW_EXAMPLES = int(os.environ.get("KPI_FUZZ_EXAMPLES", "20000"))
SHARES = {"tokens": 0.5, "expressions": 0.2, "yaml": 0.3}


# -- the oracle ---------------------------------------------------------------------------


class ExampleTooSlow(Exception):
    """Raised by the per-example time guard: the input made a stage hang."""


@contextlib.contextmanager
def time_guard(seconds: float = EXAMPLE_LIMIT) -> Iterator[None]:
    """Fail the example when it runs longer than ``seconds`` (interrupts Python code;
    a query stuck in an engine is caught when it returns, by the elapsed-time check)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise ExampleTooSlow(f"an example ran longer than {seconds} s")

    started = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - started
    if elapsed > seconds:
        raise ExampleTooSlow(f"an example took {elapsed:.1f} s (limit {seconds} s)")


def check_diagnostic(diagnostic: Diagnostic) -> None:
    """What the CLI prints must be printable: a known code, a message, a valid position."""
    assert diagnostic.code in CODES, diagnostic
    assert isinstance(diagnostic.message, str) and diagnostic.message.strip(), diagnostic
    assert "Traceback" not in diagnostic.message and "internal error" not in diagnostic.message
    span = diagnostic.span
    if span is not None:
        assert span.line >= 1 and span.col >= 1, diagnostic
        assert (span.end_line, span.end_col) >= (span.line, span.col), diagnostic
    str(diagnostic).encode("utf-8")  # a lone surrogate would crash the terminal output


def check_error(error: KpiError) -> None:
    text = str(error)
    assert text.strip(), f"{type(error).__name__} without a message"
    assert "Traceback" not in text and "internal error" not in text.lower(), text
    text.encode("utf-8")
    for diagnostic in getattr(error, "diagnostics", ()):
        check_diagnostic(diagnostic)


def attempt(stage: Callable[[], Any]) -> Any:
    """Run one stage: its value, or None when it refused the input with a KpiError.

    Any other exception propagates and fails the example.
    """
    try:
        return stage()
    except KpiError as error:
        check_error(error)
        return None


def errors_of(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    for diagnostic in diagnostics:
        check_diagnostic(diagnostic)
    return [d for d in diagnostics if d.severity >= Severity.ERROR]


class _Warnings(logging.Handler):
    """Collects what sqlglot logs while compiling (it warns on unsupported constructs)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def no_sqlglot_warnings() -> Iterator[None]:
    handler = _Warnings()
    logger = logging.getLogger("sqlglot")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in handler.records]
    assert not messages, f"sqlglot warned while compiling: {messages}"


def compile_everywhere(plan: Any, dialects: tuple[str, ...] = DIALECTS) -> None:
    """Compile one plan for every dialect: never an exception, never a sqlglot warning;
    only a refusal that the dialect's capability table documents (KPI404)."""
    from kpiengine.errors import DefinitionError

    with no_sqlglot_warnings():
        for dialect in dialects:
            try:
                sql = compile_plan(plan, dialect)
            except DefinitionError as refused:
                assert {d.code for d in refused.diagnostics} == {"KPI404"}, str(refused)
                continue
            assert sql.lstrip().upper().startswith(("WITH", "SELECT")), sql[:200]


# -- shared fixtures ----------------------------------------------------------------------


@dataclasses.dataclass
class Workspace:
    root: Path  # the tiny project, plus the fuzzed KPI file
    base: Project  # the tiny project, loaded once
    url: str  # a DuckDB warehouse with the tiny sales data
    connection: Any = None

    def __repr__(self) -> str:  # short, for hypothesis' failure reports
        return f"Workspace({self.root})"

    def open(self) -> Any:
        import kpiengine

        if self.connection is None:
            self.connection = kpiengine.connect(self.url)
        return self.connection


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("fuzz")
    root = write_files(folder / "defs", BASE_FILES)
    url = make_duckdb(
        folder / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    base, diagnostics = load_and_check(root)
    assert not errors_of(diagnostics), diagnostics
    space = Workspace(root, base, url)
    yield space
    if space.connection is not None:
        space.connection.close()


# -- generator 1: token sequences ---------------------------------------------------------

FUNCTION_NAMES = tuple(sorted(spec.name for spec in default_registry()))
_NAMES = (
    *COLUMNS["number"],
    *COLUMNS["string"],
    *COLUMNS["timestamp"],
    *BASE_KPIS,
    "value",
    "target",
    "previous",
    "month",
    "nosuch",
    "accounts",
    "accounts.segment.x",
    "fuzz",
)
_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "(", ")", ",", ".")
_STRAY = ("==", "<>", "&&", "||", '"', "!", "[", "]", "{", "}", ";", "`", "'", "\\", "\n", "\t")
_NUMBERS = ("0", "1", "2", "0.5", ".5", "1e3", "2.5E-3", "1e308", "1e309", "9" * 30, "007")

names = st.sampled_from(_NAMES) | st.from_regex(r"[A-Za-zé_][A-Za-z0-9_]{0,8}", fullmatch=True)
keywords = st.sampled_from(sorted(KEYWORDS)).flatmap(
    lambda word: st.sampled_from([word, word.upper(), word.title()])
)
numbers = st.sampled_from(_NUMBERS) | st.integers(-(10**6), 10**25).map(str)
strings = st.sampled_from(
    ["'won'", "''", "'it''s'", "'2024-01-31'", "'2024-02-30'", "'x'"]
) | st.text(max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'")
functions = st.sampled_from(FUNCTION_NAMES) | st.sampled_from(["sume", "cnt", "previos"])
token = st.one_of(
    names,
    keywords,
    numbers,
    strings,
    functions,
    st.sampled_from(_OPERATORS),
    st.sampled_from(_STRAY),
    st.characters(),
)
random_token_texts = st.lists(token, max_size=25).flatmap(
    lambda tokens: st.lists(
        st.sampled_from([" ", "", "  ", "\n"]), min_size=len(tokens), max_size=len(tokens)
    ).map(lambda gaps: "".join(t + g for t, g in zip(tokens, gaps, strict=True)))
)
_TOKEN = re.compile(r"'(?:[^']|'')*'|[^\W\d][\w.]*|[\d.]+(?:[eE][+-]?\d+)?|[<>!]=|\S")


@st.composite
def mutated_texts(draw: Any) -> str:
    """A well-formed expression whose tokens are then deleted, repeated, swapped or
    replaced: nearly valid text, which reaches further into the parser's error paths."""
    context = pick(draw, ["row", "aggregate", "derived", "rule+target"])
    text = draw(expression_text(context, pick(draw, ["number", "boolean"])))
    tokens = _TOKEN.findall(text)
    for _ in range(number_in(draw, 1, 3)):
        if not tokens:
            break
        at = number_in(draw, 0, len(tokens) - 1)
        change = pick(draw, ["delete", "repeat", "swap", "replace", "insert"])
        if change == "delete":
            del tokens[at]
        elif change == "repeat":
            tokens.insert(at, tokens[at])
        elif change == "swap" and at + 1 < len(tokens):
            tokens[at], tokens[at + 1] = tokens[at + 1], tokens[at]
        elif change == "replace":
            tokens[at] = draw(token)
        else:
            tokens.insert(at, draw(token))
    return " ".join(tokens)


token_texts = random_token_texts | mutated_texts()


def expression_of(text: str, name: str = "fuzz") -> Expression | None:
    """Parse ``text`` as the loader does; None when the parser refused it (correctly)."""
    origin = TextOrigin.standalone(name, text)
    tree, problems = parse_expression(text, origin)
    for problem in problems:
        check_diagnostic(problem)
    if tree is None:
        assert problems, f"no tree and no diagnostic for {text!r}"
        return None
    assert not problems
    return Expression(text, tree, origin.span(1, 1, 1, len(text) + 1))


def in_project(base: Project, *kpis: Kpi, rules: tuple[Rule, ...] = ()) -> Project:
    return dataclasses.replace(base, kpis={**base.kpis, **{k.name: k for k in kpis}}, rules=rules)


def token_projects(base: Project, expression: Expression) -> list[tuple[Project, RunRequest]]:
    """Every place an expression goes, each as a project and a request using it."""
    span = Span("fuzz", 1, 1, 1, 2)
    count = Expression("count()", parse_expression("count()", TextOrigin.standalone("c"))[0], span)
    rule = Rule("fuzz_rule", expression, "warning", span, None, "fuzz")
    kpis = ("fuzz",)
    return [
        (in_project(base, Kpi("fuzz", expression, span, source="opportunities")), RunRequest(kpis)),
        (in_project(base, Kpi("fuzz", expression, span)), RunRequest(kpis)),
        (
            in_project(base, Kpi("fuzz", count, span, source="opportunities", filter=expression)),
            RunRequest(kpis),
        ),
        (
            in_project(
                base,
                Kpi("fuzz", count, span, source="opportunities", target=Target(3, "higher", span)),
                dataclasses.replace(base.kpis["revenue"], rules=(rule,)),
            ),
            RunRequest(("fuzz", "revenue")),
        ),
        (
            in_project(base, rules=(dataclasses.replace(rule, kpi=None),)),
            RunRequest(BASE_KPIS),
        ),
        (base, RunRequest(("won_count", "deals"), by=("region",), where=expression)),
    ]


cell_values = st.one_of(
    st.none(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 10**30, 1e308, -1e308]),
)


def synthetic_result(project: Project, kpis: tuple[str, ...], values: list[Any]) -> Result:
    """Rows as an engine could return them, for evaluating rules without running SQL."""
    rows = []
    value_iter = iter(values * (1 + 3 * len(kpis) * len(PERIODS) // max(len(values), 1)))
    for kpi in dict.fromkeys([*kpis, *BASE_KPIS]):
        if kpi not in project.kpis:
            continue
        for period in PERIODS[:3]:
            rows.append(ResultRow(period, kpi, next(value_iter, None), ()))
    return Result("month", PERIODS[0], PERIODS[3], (), rows)


def run_token_text(base: Project, text: str, values: list[Any], dialect: str) -> None:
    expression = expression_of(text)
    if expression is None:
        return
    event("tokens: parsed")
    for project, request in token_projects(base, expression):
        if errors_of(check_project(project)):
            continue
        plan = attempt(lambda p=project, r=request: build_plan(p, r))
        if plan is None:
            continue
        event("tokens: compiled")
        compile_everywhere(plan, (dialect,))
        evaluate(project, synthetic_result(project, request.kpis, values))


# -- generator 2: well-formed random expressions and rules --------------------------------

_LITERAL_NUMBERS = ("0", "1", "2", "3", "0.5", ".25", "1e3", "100", "-1", "99999999999999999999")
_BAD_NAMES = ("amout", "nosuch", "accounts.nosuch", "value", "revenue", "won_count")
_SEVERITIES = ("info", "warning", "critical")
_MESSAGES = (
    None,
    "{{ value }} below {{ target }}",
    "{{ kpi }} in {{ period }}: {{ value | number }}",
    "{{ previous | percent }} → {{ value | currency }}",
    "plain text with {braces} and 'quotes'",
    "{{ title }} {{ region }}",
)


def literal(draw: Any, kind: str) -> str:
    if kind == "number":
        return draw(_LITERAL_NUMBER)
    if kind == "string":
        return draw(strings)
    if kind == "boolean":
        return pick(draw, ["true", "false", "TRUE", "null"])
    if kind in ("date", "timestamp"):
        day = draw(_DATES)
        return f"date '{day.isoformat()}'"
    return "null"


_CACHE: dict[Any, Any] = {}
_BOOLEANS = st.booleans()
_DATES = st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))
_LITERAL_NUMBER = st.sampled_from(_LITERAL_NUMBERS) | st.floats(0, 1e6, allow_nan=False).map(
    lambda f: repr(abs(f))
)


def pick(draw: Any, options: Any) -> Any:
    """``draw(st.sampled_from(options))`` with the strategy built once (generation speed)."""
    key = ("pick", tuple(options))
    try:
        strategy = _CACHE.get(key)
    except TypeError:  # unhashable options (lists): build it each time
        return draw(st.sampled_from(key[1]))
    if strategy is None:
        strategy = _CACHE[key] = st.sampled_from(key[1])
    return draw(strategy)


def number_in(draw: Any, low: int, high: int) -> int:
    key = ("int", low, high)
    strategy = _CACHE.get(key)
    if strategy is None:
        strategy = _CACHE[key] = st.integers(low, high)
    return draw(strategy)


def chance(draw: Any, n: int) -> bool:
    """True about once in ``n`` draws. (Hypothesis favours the ends of a range, so a rare
    event is a value in the middle; shrinking moves towards 1, away from it.)"""
    return number_in(draw, 1, n) == (n + 1) // 2


def _arity(draw: Any, args: list[str]) -> list[str]:
    """Usually the right arguments; sometimes one too few or one too many."""
    if not chance(draw, 15):
        return args
    if args and draw(_BOOLEANS):
        return args[:-1]
    return [*args, pick(draw, ["1", "amount", "value", "'x'"])]


@st.composite
def expression_text(draw: Any, context: str, kind: str) -> str:
    """Text of an expression of type ``kind`` in ``context`` (row, aggregate, derived,
    rule, standalone): mostly well-typed, with occasional deliberate mistakes."""
    return _expression(draw, context, kind, 0)


def _expression(draw: Any, context: str, kind: str, depth: int) -> str:
    """Text of an expression of type ``kind`` in ``context`` (row, aggregate, derived,
    rule): mostly well-typed, with occasional deliberate mistakes."""
    if chance(draw, 40):  # a deliberate mistake of any kind
        kind = pick(draw, ["number", "string", "boolean", "date", "null"])
        if draw(_BOOLEANS):
            return pick(draw, (*_BAD_NAMES, "sume(1)", "count(*)", "previous(value)"))
    deep = depth >= 3 or number_in(draw, 0, 2) == 0

    def sub(kind: str) -> str:
        return _expression(draw, context, kind, depth + 1)

    if kind == "number":
        return _number(draw, context, deep, sub)
    if kind == "boolean":
        return _boolean(draw, context, deep, sub)
    if kind == "string":
        if deep or context != "row":
            if context == "row" and draw(_BOOLEANS):
                return pick(draw, COLUMNS["string"])
            return literal(draw, "string")
        choice = pick(draw, ["column", "lower", "coalesce", "if"])
        if choice == "column":
            return pick(draw, COLUMNS["string"])
        if choice == "if":
            return f"if({sub('boolean')}, {sub('string')}, {sub('string')})"
        return f"{choice}({', '.join(_arity(draw, [sub('string')]))})"
    if kind in ("date", "timestamp"):
        if context == "row" and draw(_BOOLEANS):
            return pick(draw, COLUMNS["timestamp"])
        return literal(draw, "date")
    return "null"


def _number_leaf(draw: Any, context: str) -> str:
    """A literal, or what a name means in ``context`` (an aggregate in a source KPI)."""
    if draw(_BOOLEANS):
        return literal(draw, "number")
    if context == "row":
        return pick(draw, COLUMNS["number"])
    if context.startswith("derived"):
        # the second KPI may read the first; the first only the project's (no cycle)
        return pick(draw, ((*BASE_KPIS, "fuzz_a") if "+a" in context else BASE_KPIS))
    if context == "standalone":
        return pick(draw, (*BASE_KPIS, "fuzz_a", "fuzz_b"))
    if context.startswith("rule"):
        target = ("target",) if "+target" in context else ()
        return pick(draw, ("value", "previous", *target, *BASE_KPIS))
    return _aggregate(draw)


def _number(draw: Any, context: str, deep: bool, sub: Callable[..., Any]) -> str:
    if deep:
        return _number_leaf(draw, context)
    shape = pick(draw, ["leaf", "arith", "arith", "neg", "paren", "func", "if", "time"])
    if shape == "arith":
        op = pick(draw, ["+", "-", "*", "/", "%"])
        return f"{sub('number')} {op} {sub('number')}"
    if shape == "neg":
        return f"-{sub('number')}"
    if shape == "paren":
        return f"({sub('number')})"
    if shape == "if":
        return f"if({sub('boolean')}, {sub('number')}, {sub('number')})"
    if shape == "func":
        name = pick(draw, ["abs", "round", "least", "greatest", "coalesce", "days"])
        if name == "days":
            args = [sub("timestamp"), sub("timestamp")]
            return f"days_between({', '.join(_arity(draw, args))})"
        count = {"abs": 1, "round": number_in(draw, 1, 2)}.get(name, number_in(draw, 1, 3))
        args = [sub("number") for _ in range(count)]
        return f"{name}({', '.join(_arity(draw, args))})"
    if shape == "time" and context.startswith("derived"):
        name = draw(
            st.sampled_from(
                ["previous", "growth", "rolling_sum", "rolling_avg", "cumulative_sum", "streak"]
            )
        )
        periods = pick(draw, ["1", "2", "3", "12", "0", "1.5", "40", "700000"])
        if name == "streak":
            args = [sub("boolean")]
        elif name == "cumulative_sum" or (name in ("previous", "growth") and draw(_BOOLEANS)):
            args = [sub("number")]
        else:
            args = [sub("number"), periods]
        return f"{name}({', '.join(_arity(draw, args))})"
    return _number_leaf(draw, context)


def _aggregate(draw: Any) -> str:
    def row(kind: str) -> str:
        return _expression(draw, "row", kind, 2)

    name = draw(
        st.sampled_from(
            ["count", "count", "sum", "avg", "min", "max", "median", "percentile", "count_distinct"]
        )
    )
    if name == "count":
        args = pick(draw, [[], [row("any")]])
    elif name == "percentile":
        fraction = pick(draw, ["0.9", "0.5", "0", "1", "1.5", "amount"])
        args = [row("number"), fraction]
    elif name == "count_distinct":
        args = [row(pick(draw, ["string", "number"]))]
    else:
        args = [row("number")]
    args = _arity(draw, args)
    where = f" where {row('boolean')}" if draw(_BOOLEANS) else ""
    inside = ", ".join(args)
    if where and not inside:
        where = where.lstrip()
    return f"{name}({inside}{where})"


def _boolean(draw: Any, context: str, deep: bool, sub: Callable[..., Any]) -> str:
    if deep:
        kind = draw(
            st.sampled_from(["number", "string", "date"] if context == "row" else ["number"])
        )
        op = pick(draw, ["=", "!=", "<", "<=", ">", ">="])
        return f"{sub(kind)} {op} {sub(kind)}"
    shape = draw(
        st.sampled_from(["compare", "compare", "and", "or", "not", "in", "between", "null", "lit"])
    )
    if shape in ("and", "or"):
        return f"({sub('boolean')}) {shape} ({sub('boolean')})"
    if shape == "not":
        return f"not ({sub('boolean')})"
    if shape == "in":
        kind = pick(draw, ["number", "string"])
        items = [sub(kind) for _ in range(number_in(draw, 1, 3))]
        negated = pick(draw, ["in", "not in"])
        return f"{sub(kind)} {negated} ({', '.join(items)})"
    if shape == "between":
        return f"{sub('number')} between {sub('number')} and {sub('number')}"
    if shape == "null":
        return f"{sub('number')} is {pick(draw, ['', 'not '])}null"
    if shape == "lit":
        return literal(draw, "boolean")
    return _boolean(draw, context, True, sub)


class Styled(str):
    """An expression written in a given YAML scalar style (plain, quoted, block)."""

    style: str | None = None


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Styled, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, text.style)
)


def styled(draw: Any, strategy: Any) -> Styled:
    text = Styled(draw(strategy))
    text.style = pick(draw, [None, None, '"', "'", "|", ">"])
    return text


@st.composite
def rule_item(draw: Any, index: int, target: bool, standalone: bool = False) -> dict[str, Any]:
    context = "standalone" if standalone else "rule+target" if target else "rule"
    rule: dict[str, Any] = {
        "name": f"r{index}",
        "when": styled(draw, expression_text(context, "boolean")),
        "severity": pick(draw, _SEVERITIES),
    }
    message = pick(draw, _MESSAGES)
    if message is not None:
        rule["message"] = message
    return rule


@st.composite
def kpi_item(draw: Any, name: str, derived: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"kpi": name}
    if derived:
        context = "derived+a" if name != "fuzz_a" else "derived"
        item["expression"] = styled(draw, expression_text(context, "number"))
    else:
        source = "opportunities"
        if chance(draw, 5):
            source = "spend" if not chance(draw, 4) else "accounts"
        item["source"] = source
        item["expression"] = styled(draw, expression_text("aggregate", "number"))
        if chance(draw, 3):
            item["filter"] = styled(draw, expression_text("row", "boolean"))
    if draw(_BOOLEANS):
        item["target"] = {
            "value": pick(draw, [0, 1, 0.5, 150, -3]),
            "direction": pick(draw, ["higher", "lower"]),
        }
    if number_in(draw, 0, 4) == 0:
        item["fill_null"] = pick(draw, [0, 1, 2.5])
    if number_in(draw, 0, 4) == 0:
        item["dimensions"] = draw(
            st.lists(st.sampled_from(DIMENSIONS[:3]), max_size=2, unique=True)
        )
    rules = number_in(draw, 0, 2)
    if rules:
        item["rules"] = [draw(rule_item(i, "target" in item)) for i in range(rules)]
    return item


@st.composite
def kpi_documents(draw: Any) -> tuple[str, str | None, dict[str, Any]]:
    """A KPI file (one or two KPIs, the second derived and maybe reading the first) as
    YAML text, and the run options to plan it with."""
    kpis = [draw(kpi_item("fuzz_a", derived=number_in(draw, 0, 3) == 0))]
    if draw(_BOOLEANS):
        kpis.append(draw(kpi_item("fuzz_b", derived=True)))
    width = pick(draw, [10**6, 60])
    text = yaml.dump(
        {"kpis": kpis}, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=width
    )
    rule = None
    if chance(draw, 4):  # a standalone rule file naming KPIs
        standalone = draw(rule_item(0, target=False, standalone=True))
        document = {"rule": "fuzz_rule", **{k: v for k, v in standalone.items() if k != "name"}}
        rule = yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    grain = pick(draw, ["month", "month", "day", "week", "quarter", "year", "all"])
    start = pick(draw, [None, "2024-01-01", "2024-02-15"])
    end = pick(draw, [None, "2024-05-01"]) if start else None
    options = {
        "grain": grain,
        "start": start,
        "end": end,
        "by": tuple(draw(st.lists(st.sampled_from(DIMENSIONS), max_size=2, unique=True))),
        "where": pick(draw, [None, None, "region = 'emea'", "amount > 50", "x ="]),
    }
    return text, rule, options


def run_kpi_document(
    space: Workspace, text: str, rule: str | None, options: dict[str, Any], execute: bool
) -> None:
    (space.root / FUZZ_KPI_FILE).write_text(text, encoding="utf-8")
    rule_file = space.root / FUZZ_RULE_FILE
    if rule is None:
        rule_file.unlink(missing_ok=True)
    else:
        rule_file.parent.mkdir(exist_ok=True)
        rule_file.write_text(rule, encoding="utf-8")
    project, diagnostics = load_and_check(space.root)
    if errors_of(diagnostics):
        event("kpi file: refused by validate")
        return
    api = KpiProject(project, diagnostics)
    names = [n for n in ("fuzz_a", "fuzz_b") if n in project.kpis]
    plan = attempt(lambda: api.plan(names, **options))
    if plan is None:
        event("kpi file: refused by plan")
        return
    compile_everywhere(plan)
    event("kpi file: compiled")
    values = [None, 1, 0, -2.5, 1e308, float("nan")]
    evaluate(project, synthetic_result(project, tuple(names), values))
    if execute:
        result = attempt(lambda: api.run(names, space.open(), **options))
        event(f"kpi file: run {'refused' if result is None else 'done'}")
        if result is not None:
            result.to_json()


# -- generator 3: random YAML documents ---------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=15),
    st.sampled_from(["opportunities", "amount", "count()", "month", "2024-01-01", "x.y", ""]),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["kpi", "value", "on"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)
_PLAUSIBLE: dict[str, Any] = {
    "kpi": st.sampled_from(["fuzz_y", "won_count", "Bad-Name", "a" * 200]),
    "source": st.sampled_from(["opportunities", "spend", "accounts", "nosuch", "fuzz_src"]),
    "expression": st.sampled_from(["count()", "sum(amount)", "revenue / deals", "((", "1"]),
    "filter": st.sampled_from(["region = 'emea'", "amount", "count() > 1"]),
    "time": st.sampled_from(["closed_at", "created_at", "month", "nosuch", "amount"]),
    "unit": st.sampled_from(["percent", "currency", "parsec"]),
    "dimensions": st.lists(st.sampled_from(DIMENSIONS), max_size=3),
    "target": st.fixed_dictionaries(
        {"value": st.one_of(st.integers(), st.floats())},
        optional={"direction": st.sampled_from(["higher", "lower", "sideways"])},
    ),
    "fill_null": st.one_of(st.integers(), st.floats()),
    "semi_additive": st.sampled_from(["last", "first", "middle"]),
    "rules": st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["r", "r2", "R"]),
                "when": st.sampled_from(["value < target", "value", "previous > 1", "("]),
                "severity": st.sampled_from((*_SEVERITIES, "fatal")),
            },
            optional={"message": st.sampled_from(["{{ value }}", "{{", "x"])},
        ),
        max_size=2,
    ),
    "table": st.sampled_from(["opportunities", "main.opportunities", "a.b.c", "x y", "t"]),
    "columns": st.dictionaries(
        st.sampled_from(["amount", "closed_at", "x", "Bad Col"]),
        st.sampled_from(["number", "timestamp", "string", "blob"])
        | st.fixed_dictionaries({"type": st.sampled_from(["number", "string", "x"])}),
        max_size=3,
    ),
    "joins": st.lists(
        st.fixed_dictionaries(
            {
                "source": st.sampled_from(["accounts", "nosuch"]),
                "on": st.sampled_from(["account_id", "x"]),
            }
        ),
        max_size=2,
    ),
    "project": st.sampled_from(["tiny", ""]),
    "fiscal_year_start": st.integers(-2, 14),
    "week_start": st.sampled_from(["monday", "sunday", "friday"]),
    "currency": st.sampled_from(["EUR", "USD", "€€€"]),
    "validate": st.fixed_dictionaries(
        {}, optional={"ignore": st.lists(st.sampled_from(["KPI602", "KPI999", "KPI201"]))}
    ),
    # never a real module name: importing a plugin runs it
    "plugins": st.sampled_from([[], ["kpi_fuzz_no_such_plugin"], "kpi_fuzz_no_such_plugin", [1]]),
}
_KIND_KEYS = {
    "kpi": (
        "kpi",
        "expression",
        "source",
        "filter",
        "time",
        "unit",
        "dimensions",
        "target",
        "fill_null",
        "semi_additive",
        "rules",
        "title",
        "description",
        "owner",
        "tags",
    ),
    "source": ("source", "table", "time", "columns", "joins", "description"),
    "rule": ("rule", "when", "severity", "message"),
    "project": (
        "project",
        "connector",
        "fiscal_year_start",
        "week_start",
        "currency",
        "validate",
        "plugins",
    ),
}
_SNIPPETS = (
    "&a ",
    "*a",
    "*nosuch",
    "!!python/object:os.system ",
    "!!binary ",
    "!!str ",
    "? ",
    "<<: *a\n",
    "\t",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "'",
    '"',
    "{",
    "[",
    "- ",
    ": ",
    "#",
    "\ufeff",
    "\x00",
    "\x85",
    "\u2028",
    "é",
    "\\",
    "key: value\n",
    "kpi: dup\n",
    "!!set {a, b}",
    "2024-01-01",
)


@st.composite
def yaml_documents(draw: Any) -> tuple[str, str]:
    """(file name, text): a definition file of a random kind with plausible or random
    values, dumped, then maybe mutated as text."""
    kind = pick(draw, ["kpi", "kpi", "kpis", "source", "rule", "project"])
    keys = _KIND_KEYS["kpi" if kind == "kpis" else kind]
    chosen = draw(st.lists(st.sampled_from(keys), min_size=0, max_size=len(keys), unique=True))
    if kind != "project" and number_in(draw, 0, 4) != 0:
        chosen = [keys[0], *[k for k in chosen if k != keys[0]]]
    document: dict[Any, Any] = {}
    for key in chosen:
        plausible = _PLAUSIBLE.get(key)
        if key == "plugins" or (plausible is not None and number_in(draw, 0, 2) != 0):
            document[key] = draw(plausible)
        else:
            document[key] = draw(values)
    for _ in range(number_in(draw, 0, 1)):
        document[draw(st.text(max_size=8))] = draw(values)
    if kind == "kpis":
        document = {"kpis": draw(st.sampled_from([[document], document, [document, document]]))}
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    for _ in range(number_in(draw, 0, 2)):
        text = _mutate(draw, text)
    name = {"project": "kpiengine.yaml", "source": "sources/fuzz.yaml", "rule": FUZZ_RULE_FILE}
    return name.get(kind, FUZZ_KPI_FILE), text


_INSERTS = st.sampled_from(_SNIPPETS) | st.text(max_size=3)


def _mutate(draw: Any, text: str) -> str:
    position = number_in(draw, 0, len(text))
    operation = pick(draw, ["insert", "insert", "truncate", "duplicate", "delete"])
    if operation == "insert":
        return text[:position] + draw(_INSERTS) + text[position:]
    if operation == "truncate":
        return text[:position]
    if operation == "duplicate":
        lines = text.splitlines(keepends=True)
        index = draw(st.integers(0, max(len(lines) - 1, 0)))
        return "".join(lines[: index + 1] + lines[index:])
    return text[:position] + text[position + number_in(draw, 1, 5) :]


_YAML_TARGETS = ("kpiengine.yaml", "sources/fuzz.yaml", FUZZ_RULE_FILE, FUZZ_KPI_FILE)


def run_yaml_document(space: Workspace, name: str, text: str) -> None:
    for other in _YAML_TARGETS:
        (space.root / other).unlink(missing_ok=True)
    if name != "kpiengine.yaml":
        write_files(space.root, {"kpiengine.yaml": BASE_FILES["kpiengine.yaml"]})
    path = space.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        project, diagnostics = attempt(lambda: load_and_check(space.root)) or (None, [])
    finally:
        for other in _YAML_TARGETS:
            (space.root / other).unlink(missing_ok=True)
        write_files(space.root, {"kpiengine.yaml": BASE_FILES["kpiengine.yaml"]})
    if project is None or errors_of(diagnostics):
        event("yaml: refused")
        return
    event("yaml: loaded")
    api = KpiProject(project, diagnostics)
    plan = attempt(lambda: api.plan(None, start="2024-01-01", end="2024-04-01"))
    if plan is not None:
        compile_plan(plan, "duckdb")


# -- the tests ----------------------------------------------------------------------------

_COMMON = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
}


def _examples(generator: str, quick: int, slow: bool) -> int:
    return max(1, int(SLOW_EXAMPLES * SHARES[generator])) if slow else quick


def _token_test(workspace: Workspace, text: str, values: list[Any], dialect: str) -> None:
    with time_guard():
        run_token_text(workspace.base, text, values, dialect)


def _expression_test(
    workspace: Workspace, document: tuple[str, str | None, dict[str, Any]], execute: int
) -> None:
    text, rule, options = document
    with time_guard():
        run_kpi_document(workspace, text, rule, options, execute in (4, 5, 6))


def _yaml_test(workspace: Workspace, document: tuple[str, str]) -> None:
    with time_guard():
        run_yaml_document(workspace, *document)


def _fuzz_tests(slow: bool) -> tuple[Callable[..., None], ...]:
    tokens = settings(max_examples=_examples("tokens", 300, slow), **_COMMON)(
        given(
            text=token_texts,
            values=st.lists(cell_values, min_size=1, max_size=6),
            dialect=st.sampled_from(DIALECTS),
        )(_token_test)
    )
    expressions = settings(max_examples=_examples("expressions", 80, slow), **_COMMON)(
        given(document=kpi_documents(), execute=st.integers(1, 10))(_expression_test)
    )
    documents = settings(max_examples=_examples("yaml", 200, slow), **_COMMON)(
        given(document=yaml_documents())(_yaml_test)
    )
    return tokens, expressions, documents


test_fuzz_tokens, test_fuzz_expressions, test_fuzz_yaml = _fuzz_tests(slow=False)
_slow_tokens, _slow_expressions, _slow_yaml = _fuzz_tests(slow=True)
test_fuzz_tokens_slow = pytest.mark.slow(_slow_tokens)
test_fuzz_expressions_slow = pytest.mark.slow(_slow_expressions)
test_fuzz_yaml_slow = pytest.mark.slow(_slow_yaml)


# -- regressions found by the fuzzer ------------------------------------------------------
# Each failed before the fix (an internal error, invalid SQL or a sqlglot warning on stderr).

_ENGINE_TABLES = {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from kpiengine.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    return code, out, err


@pytest.fixture(params=["duckdb", "sqlite"])
def sales_engine(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """The sales project plus a constant KPI and rules the fuzzer broke, on each engine."""
    from tests.conftest import engine_url

    files = {
        **SALES_FILES,
        "kpis/fuzzed.yaml": """
            kpis:
              - kpi: moving
                expression: rolling_avg(deals, 3) + growth(deals) + streak(deals > 1)
              - kpi: checked
                source: opportunities
                expression: count()
                rules:
                  - name: huge
                    when: value + 1%s > 0
                    severity: warning
                  - name: single
                    when: >-
                      round(value, 2) = round(value)
                      and days_between(date '2024-01-01', date '2024-01-31') = 30
                    severity: info
            """
        % ("0" * 300),
    }
    root = write_files(tmp_path / "defs", files)
    return root, engine_url(request.param, tmp_path, _ENGINE_TABLES)


def test_a_constant_kpi_is_refused_before_compile(
    sales_engine: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A derived KPI that names no KPI has no scan: compiling it raised IndexError (no
    range, or --by) and --grain all gave `SELECT` without columns. The checker now refuses
    it (KPI105), so no command reaches the compiler with it."""
    root, _url = sales_engine
    (root / "kpis" / "constant.yaml").write_text("kpi: constant\nexpression: 1 + 2\n")
    code, out, err = _cli(capsys, "validate", "--project", str(root))
    assert code == 1 and "KPI105" in out + err
    for dialect in DIALECTS:
        code, out, err = _cli(
            capsys, "compile", "constant", "--project", str(root), "--dialect", dialect
        )
        assert code == 1, err


def test_time_functions_compile_without_sqlglot_warnings(
    sales_engine: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Windows ordered by period asked sqlglot for NULLS LAST, which MySQL and T-SQL cannot
    express inside a frame: `kpi compile --dialect mysql` printed a warning (and the CASE
    emulation elsewhere). The period is never null: the engine's own order is enough."""
    root, url = sales_engine
    for dialect in DIALECTS:
        code, out, err = _cli(
            capsys, "compile", "moving", "--by", "region", "--project", str(root),
            "--dialect", dialect,
        )  # fmt: skip
        assert code == 0, err
        assert err == "", f"{dialect}: {err}"
        assert "NULLS LAST) " not in out and "IS NULL THEN 1 ELSE 0 END, l0.period" not in out
    code, out, err = _cli(
        capsys, "run", "moving", "--by", "region", "--project", str(root), "--connector", url,
        "--from", "2024-01-01", "--to", "2024-05-01", "--format", "json",
    )  # fmt: skip
    assert code == 0, err


def test_rule_conditions_with_edge_numbers_evaluate(
    sales_engine: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """`value + 1000…0` (400 digits, now refused by the parser; 300 here) raised
    OverflowError (int too large for a float) in `kpi check`; days_between was silently
    null in rules."""
    root, url = sales_engine
    code, out, err = _cli(
        capsys, "check", "checked", "--project", str(root), "--connector", url,
        "--from", "2024-01-01", "--to", "2024-02-01", "--fail-on", "critical",
    )  # fmt: skip
    assert code == 0, err
    assert "checked: rule huge fired" in out and "checked: rule single fired" in out


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("greatest(value) = value", 3, True),  # one argument: max(3) raised TypeError
        ("least(value) = value", 3, True),
        ("round(value, value) is null", float("nan"), False),  # int(nan): ValueError
        ("round(value) > 1", float("inf"), True),
        ("round(value, 99999999999999999999) = value", 1.5, True),
        ("value * 1" + "0" * 300 + " * 1" + "0" * 300 + " > 0", 2.5, True),  # OverflowError
        ("1" + "0" * 300 + " * 1" + "0" * 300 + " / 3 > value", 2, True),  # int / int
        ("value - 1" + "0" * 300 + " * 1" + "0" * 300 + " < 0", -1, True),
        ("days_between(date '2024-02-01', date '2024-03-01') = 29", 0, True),
        ("if(value > 1, true, false)", 2, True),
        ("value % 0 is null", 2, True),
    ],
)
def test_rule_evaluation_is_total(condition: str, value: Any, expected: bool) -> None:
    """Rule conditions that pass the checker evaluate without raising, on any number an
    engine may return (nan and inf included)."""
    expression = expression_of(condition)
    assert expression is not None
    span = Span("fuzz", 1, 1, 1, 2)
    rule = Rule("r", expression, "warning", span, None, "k")
    kpi = Kpi("k", expression, span, rules=(rule,))
    project = Project(Path("."), kpis={"k": kpi})
    result = Result("month", PERIODS[0], PERIODS[1], (), [ResultRow(PERIODS[0], "k", value)])
    alerts, _ = evaluate(project, result)
    assert bool(alerts) is expected
