"""Parse stage: expression text → typed syntax tree (SPEC §4), and back to text.

The grammar is ``grammar/kpi.lark``. Lark builds its LALR parser once per process, with
:class:`_Builder` as an inline transformer: each grammar rule becomes an
:mod:`kpiengine.language.ast` node at the moment the parser reduces it, so no parse tree is kept
and nothing here recurses on the depth of the input.

Errors are returned, never raised: :func:`parse_expression` gives ``(None, [diagnostic])``
with ``KPI201`` (syntax) or ``KPI202`` (nested too deeply), worded for analysts rather
than for programmers, and with a span that points at the offending text in the YAML file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from kpiengine.diagnostics import Diagnostic
from kpiengine.language.ast import (
    COMPARISON_OPS,
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
)
from kpiengine.source import Span, TextOrigin

if TYPE_CHECKING:
    from lark import Lark, Token

__all__ = ["KEYWORDS", "MAX_DEPTH", "grammar_text", "parse_expression", "to_text"]

#: Deepest nesting accepted (parentheses, operators and calls each count one level).
MAX_DEPTH = 128

#: Reserved words: case-insensitive, never a name.
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "between", "is", "null", "true", "false", "date", "where"}
)

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_HINT = "write a date as `date 'YYYY-MM-DD'`, e.g. `date '2024-01-31'`"
_SPLIT_HINT = "split it into several KPIs and combine them by name"


# ---------------------------------------------------------------- the parser, built once

_parser: Lark | None = None
_builder: _Builder | None = None
_lock = threading.Lock()


def grammar_text() -> str:
    """The text of ``kpi.lark``: packaged in the wheel, or at the root of a checkout."""
    from importlib import resources  # lazy, like lark: only needed to build the parser
    from pathlib import Path

    packaged = resources.files("kpiengine") / "grammar" / "kpi.lark"
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "grammar" / "kpi.lark"
    return checkout.read_text(encoding="utf-8")


def _cache_file(lark_version: str) -> str | bool:
    """Where Lark keeps the analysed grammar between processes (False: no cache).

    Building the LALR tables takes ~35 ms, loading them ~3 ms. The file goes in the
    user's own cache directory rather than Lark's default (the shared temp dir), since
    it is a pickle. Lark checks a hash of the grammar and its options in the file, and
    rebuilds and rewrites it when they changed.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "kpiengine")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return False
    python = f"{sys.version_info[0]}{sys.version_info[1]}"
    return os.path.join(directory, f"kpi-grammar-lark{lark_version}-py{python}.pickle")


def _get_parser() -> tuple[Lark, _Builder]:
    global _parser, _builder
    if _parser is None or _builder is None:
        with _lock:
            if _parser is None or _builder is None:
                import lark  # lazy: keeps `import kpiengine.language.parse` cheap

                builder = _Builder()
                _parser = lark.Lark(
                    grammar_text(),
                    parser="lalr",
                    lexer="basic",
                    transformer=builder,
                    maybe_placeholders=True,
                    cache=_cache_file(lark.__version__),
                )
                _builder = builder
    return _parser, _builder


# ---------------------------------------------------------------- public API


def parse_expression(text: str, origin: TextOrigin) -> tuple[Node | None, list[Diagnostic]]:
    """Parse one expression; positions in the result are mapped through ``origin``.

    Returns the tree and no diagnostics, or ``None`` and exactly one diagnostic.
    """
    if not text.strip():
        hint = "write a value or a formula, e.g. `sum(amount)`"
        return None, [Diagnostic("KPI201", "empty expression", origin.span(1, 1, 1, 2), hint)]

    from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

    parser, builder = _get_parser()
    state = _State(origin)
    builder.local.state = state
    try:
        tree = cast(Node, parser.parse(text))  # the builder makes nodes, not lark trees
    except _Problem as problem:
        return None, [problem.diagnostic]
    except UnexpectedCharacters as error:
        return None, [_unknown_character(text, error, origin)]
    except UnexpectedToken as error:
        try:
            accepts, values = _state_before(parser, builder, text, error.token, origin)
        except (UnexpectedInput, _Problem):  # cannot happen: the same tokens parsed before
            accepts, values = set(error.expected), []
        return None, [_unexpected_token(text, error.token, accepts, values, origin)]
    except UnexpectedInput as error:  # not raised by LALR today; never leak it anyway
        line, col = error.line, error.column
        span = _point(origin, line, col) if isinstance(line, int) and isinstance(col, int) else None
        return None, [Diagnostic("KPI201", "syntax error", span)]
    finally:
        builder.local.state = None

    depth = state.depth[id(tree)]
    if depth > MAX_DEPTH:
        message = f"expression nested too deeply ({depth} levels; the limit is {MAX_DEPTH})"
        return None, [Diagnostic("KPI202", message, state.too_deep, _SPLIT_HINT)]
    return tree, []


def to_text(node: Node) -> str:
    """Canonical text of a tree: lowercase keywords, single spaces, minimal parentheses.

    ``parse_expression(to_text(tree))`` gives a tree equal to ``tree`` for every tree the
    parser produces. Works without recursion, whatever the depth.
    """
    out: list[str] = []
    stack: list[str | tuple[Node, int]] = [(node, 0)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        current, needed = item
        pieces = _pieces(current)
        if _precedence(current) < needed:
            pieces = ["(", *pieces, ")"]
        stack.extend(reversed(pieces))
    return "".join(out)


# ---------------------------------------------------------------- unparsing

# Binding strength, loosest first, as in the grammar's precedence ladder.
_OR, _AND, _NOT, _COMPARE, _ADD, _MULTIPLY, _NEGATE, _ATOM = range(1, 9)
_BINARY_LEVEL = {
    "or": _OR,
    "and": _AND,
    **dict.fromkeys(COMPARISON_OPS, _COMPARE),
    "+": _ADD,
    "-": _ADD,
    "*": _MULTIPLY,
    "/": _MULTIPLY,
    "%": _MULTIPLY,
}


def _precedence(node: Node) -> int:
    if isinstance(node, Binary):
        return _BINARY_LEVEL[node.op]
    if isinstance(node, Unary):
        return _NOT if node.op == "not" else _NEGATE
    if isinstance(node, InList | Between | IsNull):
        return _COMPARE
    return _ATOM


Pieces = list[str | tuple[Node, int]]


def _pieces(node: Node) -> Pieces:
    """The text of one node: strings, and children with the binding they need."""
    return _PIECES[type(node)](node)


def _literal_pieces(node: Literal) -> Pieces:
    return [_literal_text(node)]


def _name_pieces(node: Name) -> Pieces:
    return [node.dotted]


def _binary_pieces(node: Binary) -> Pieces:
    level = _BINARY_LEVEL[node.op]
    if level == _COMPARE:  # comparisons do not chain: both sides are additive
        return [(node.left, _ADD), f" {node.op} ", (node.right, _ADD)]
    return [(node.left, level), f" {node.op} ", (node.right, level + 1)]


def _unary_pieces(node: Unary) -> Pieces:
    if node.op == "not":
        return ["not ", (node.operand, _NOT)]
    # `- -x`, not `--x`: two signs read better apart (and `--` starts an SQL comment).
    operand = node.operand
    double = isinstance(operand, Unary) and operand.op == "-"
    return ["- " if double else "-", (operand, _NEGATE)]


def _in_list_pieces(node: InList) -> Pieces:
    pieces: Pieces = [(node.operand, _ADD)]
    pieces.append(" not in (" if node.negated else " in (")
    pieces.extend(_comma_separated(node.items))
    pieces.append(")")
    return pieces


def _between_pieces(node: Between) -> Pieces:
    return [(node.operand, _ADD), " between ", (node.low, _ADD), " and ", (node.high, _ADD)]


def _is_null_pieces(node: IsNull) -> Pieces:
    return [(node.operand, _ADD), " is not null" if node.negated else " is null"]


def _call_pieces(node: Call) -> Pieces:
    pieces: Pieces = [f"{node.name}(", *_comma_separated(node.args)]
    if node.where is not None:
        pieces += [" where " if node.args else "where ", (node.where, 0)]
    pieces.append(")")
    return pieces


#: Node class → its text (the parse stage's dispatch table: see ``dispatch_table``).
_PIECES: Mapping[type[Node], Callable[[Any], Pieces]] = dispatch_table(
    "to_text",
    {
        Literal: _literal_pieces,
        Name: _name_pieces,
        Unary: _unary_pieces,
        Binary: _binary_pieces,
        InList: _in_list_pieces,
        Between: _between_pieces,
        IsNull: _is_null_pieces,
        Call: _call_pieces,
    },
)


def _comma_separated(nodes: tuple[Node, ...]) -> Pieces:
    pieces: Pieces = []
    for index, item in enumerate(nodes):
        if index:
            pieces.append(", ")
        pieces.append((item, 0))
    return pieces


def _literal_text(node: Literal) -> str:
    value = node.value
    if node.kind == "string" and isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if node.kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        text = repr(value)
        if isinstance(value, float) and (value != value or value in (float("inf"), -float("inf"))):
            raise ValueError(f"{text} cannot be written in the expression language")
        return text
    if node.kind == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if node.kind == "null":
        return "null"
    if node.kind == "date" and isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    raise ValueError(f"literal of kind {node.kind!r} cannot hold {value!r}")


# ---------------------------------------------------------------- building the tree


class _Problem(Exception):
    """A syntax problem found while building the tree (aborts the parse)."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _State:
    """One parse: where the text sits in its file, and the depth bookkeeping."""

    __slots__ = ("bare_comparisons", "depth", "file", "origin", "position", "too_deep")

    def __init__(self, origin: TextOrigin) -> None:
        self.origin = origin
        self.file = origin.file
        self.position = origin.position
        # Nesting depth of every node built so far, keyed by id(). A node only dies
        # during a parse when `parens` replaces it, and `parens` drops its entries first,
        # so an id is never found stale.
        self.depth: dict[int, int] = {}
        # Comparisons not wrapped in parentheses: `a < b < c` is rejected, while
        # `(a < b) = true` is fine.
        self.bare_comparisons: set[int] = set()
        self.too_deep: Span | None = None

    def token_span(self, token: Token) -> Span:
        first_line, first_col, last_line, last_col = _place(token)
        line, col = self.position(first_line, first_col)
        end_line, end_col = self.position(last_line, last_col)
        return Span(self.file, line, col, end_line, end_col)

    def span(self, first: Node | Token, last: Node | Token) -> Span:
        """From the start of ``first`` to the end of ``last`` (nodes or tokens)."""
        if isinstance(first, Node):
            line, col = first.span.line, first.span.col
        else:
            line, col = self.position(*_place(first)[:2])
        if isinstance(last, Node):
            end_line, end_col = last.span.end_line, last.span.end_col
        else:
            end_line, end_col = self.position(*_place(last)[2:])
        return Span(self.file, line, col, end_line, end_col)

    def keep(self, node: Node, *children: Node | None, comparison: bool = False) -> Node:
        """Record ``node`` one level deeper than its deepest child."""
        depth = self.depth
        level = 1 + max((depth[id(c)] for c in children if c is not None), default=0)
        depth[id(node)] = level
        if comparison:
            self.bare_comparisons.add(id(node))
        if level > MAX_DEPTH and self.too_deep is None:
            self.too_deep = node.span
        return node

    def no_chain(self, operand: Node, operator: Token, last: Token) -> None:
        if id(operand) in self.bare_comparisons:
            raise _Problem(
                Diagnostic(
                    "KPI201",
                    "comparisons cannot be chained",
                    self.span(operator, last),
                    "join two comparisons with `and`, e.g. `0 < x and x < 10`, "
                    "or use `x between 0 and 10`",
                )
            )


class _Builder:
    """Inline transformer: one method per grammar rule (or ``-> alias``).

    Lark calls each method with the list of the rule's children (tokens whose name starts
    with ``_`` are dropped, missing ``[optional]`` parts are ``None``). Per-parse state
    lives in a thread-local, so one parser serves every thread.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    # -- literals

    def number(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        (token,) = c
        text = str(token)
        value: int | float
        try:
            value = float(text) if any(ch in text for ch in ".eE") else int(text)
        except ValueError:  # more digits than int() accepts
            value = float("inf")
        # Engines hold numbers as doubles (DuckDB cannot convert a 400-digit integer
        # literal): an integer beyond the largest double is as refused as `1e400`.
        if value == float("inf") or value > sys.float_info.max:
            message = f"number `{_shorten(text)}` is too large"
            hint = "numbers are held as doubles: at most about 1.8e308"
            raise _Problem(Diagnostic("KPI201", message, st.token_span(token), hint))
        return st.keep(Literal(st.token_span(token), value, "number"))

    def string(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        (token,) = c
        value = str(token)[1:-1].replace("''", "'")
        return st.keep(Literal(st.token_span(token), value, "string"))

    def true(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        return st.keep(Literal(st.token_span(c[0]), True, "boolean"))

    def false(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        return st.keep(Literal(st.token_span(c[0]), False, "boolean"))

    def null(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        return st.keep(Literal(st.token_span(c[0]), None, "null"))

    def date(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        keyword, token = c
        text = str(token)[1:-1].replace("''", "'")
        problem = None
        if not _DATE_TEXT.fullmatch(text):
            problem = f"invalid date `{_shorten(text)}`"
        else:
            try:
                value = dt.date(int(text[:4]), int(text[5:7]), int(text[8:]))
            except ValueError as error:
                problem = f"invalid date `{text}`: {error}"
        if problem is not None:
            raise _Problem(Diagnostic("KPI201", problem, st.token_span(token), _DATE_HINT))
        return st.keep(Literal(st.span(keyword, token), value, "date"))

    # -- names and calls

    def name(self, c: list[Token]) -> Node:
        st: _State = self.local.state
        (token,) = c
        parts = tuple(str(token).split("."))
        for part in parts:
            if part.lower() in KEYWORDS:
                raise _Problem(
                    Diagnostic(
                        "KPI201",
                        f"`{part}` is a reserved word and cannot be used as a name",
                        st.token_span(token),
                        "reserved words: " + ", ".join(sorted(KEYWORDS)),
                    )
                )
        return st.keep(Name(st.token_span(token), parts))

    def arguments(self, c: list[Node]) -> tuple[Node, ...]:
        return tuple(c)

    def items(self, c: list[Node]) -> tuple[Node, ...]:
        return tuple(c)

    def call(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        name, _lpar, args, where, rpar = c
        args = args or ()
        span = st.span(name, rpar)
        node = Call(span, str(name).lower(), args, where, name_span=st.token_span(name))
        return st.keep(node, *args, where)

    def parens(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        lpar, inner, rpar = c
        # The node now covers its parentheses too, so `(a + b) * c` spans from `(`.
        node: Node = dataclasses.replace(inner, span=st.span(lpar, rpar))
        depth = st.depth.pop(id(inner))
        st.bare_comparisons.discard(id(inner))
        st.depth[id(node)] = depth + 1
        if depth + 1 > MAX_DEPTH and st.too_deep is None:
            st.too_deep = node.span
        return node

    # -- operators

    def prefix(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operator, operand = c
        return st.keep(Unary(st.span(operator, operand), operator.lower(), operand), operand)

    def binary(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        left, operator, right = c
        op = operator.lower()
        comparison = op in COMPARISON_OPS
        if comparison:
            st.no_chain(left, operator, operator)
        node = Binary(st.span(left, right), op, left, right)
        return st.keep(node, left, right, comparison=comparison)

    def in_list(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operand, keyword, _lpar, items, rpar = c
        st.no_chain(operand, keyword, keyword)
        node = InList(st.span(operand, rpar), operand, items, False)
        return st.keep(node, operand, *items, comparison=True)

    def not_in_list(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operand, not_, in_, _lpar, items, rpar = c
        st.no_chain(operand, not_, in_)
        node = InList(st.span(operand, rpar), operand, items, True)
        return st.keep(node, operand, *items, comparison=True)

    def between(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operand, keyword, low, _and, high = c
        st.no_chain(operand, keyword, keyword)
        node = Between(st.span(operand, high), operand, low, high)
        return st.keep(node, operand, low, high, comparison=True)

    def is_null(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operand, is_, null = c
        st.no_chain(operand, is_, is_)
        return st.keep(IsNull(st.span(operand, null), operand, False), operand, comparison=True)

    def is_not_null(self, c: list[Any]) -> Node:
        st: _State = self.local.state
        operand, is_, _not, null = c
        st.no_chain(operand, is_, is_)
        return st.keep(IsNull(st.span(operand, null), operand, True), operand, comparison=True)


# ---------------------------------------------------------------- error messages

_VALUE_STARTS = frozenset({"NAME", "NUMBER"})
_VALUE_TOKENS = frozenset(
    {"NAME", "NUMBER", "STRING", "TRUE", "FALSE", "NULL", "DATE", "LPAR", "MINUS", "NOT"}
)
_ARITHMETIC = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "PERCENT"})
_INFIX_WORDS = frozenset({"EQ", "NE", "LT", "LE", "GT", "GE", "IN", "NOT", "BETWEEN", "IS", "OR"})
_KEYWORD_TOKENS = frozenset(
    {"AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE", "DATE", "_WHERE"}
)
# Tokens named one by one in "expected ...", in this order.
_SINGLE_WORDS = (
    ("AND", "`and`"),
    ("IN", "`in`"),
    ("NULL", "`null`"),
    ("NOT", "`not null`"),
    ("LPAR", "`(`"),
    ("_COMMA", "`,`"),
    ("_WHERE", "`where`"),
    ("RPAR", "`)`"),
    ("$END", "end of expression"),
)
_BAD_OPERATORS = {
    "==": "use `=` to compare",
    "&&": "use `and`",
    "&": "use `and`",
    "||": "use `or`",
    "|": "use `or`",
}
_CHARACTER_HINTS = {
    '"': "strings use single quotes: `'won'`",
    "!": "use `not` to negate a condition, and `!=` for “not equal”",
    "[": "lists use parentheses: `x in ('a', 'b')`",
    "]": "lists use parentheses: `x in ('a', 'b')`",
    "{": "group with parentheses `(` and `)`",
    "}": "group with parentheses `(` and `)`",
    ".": "write decimals with digits on both sides (`0.5`), "
    "and dotted names without spaces (`accounts.segment`)",
    ";": "an expression is a single formula; no `;` is needed",
}


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote_char(char: str) -> str:
    if char == "`":
        return "`` ` ``"
    if not char.isprintable():
        return f"U+{ord(char):04X}"
    return f"`{char}`"


def _point(origin: TextOrigin, line: int, col: int, width: int = 1) -> Span:
    return origin.span(line, col, line, col + width)


def _unknown_character(text: str, error: Any, origin: TextOrigin) -> Diagnostic:
    char = text[error.pos_in_stream]
    line, col = error.line, error.column
    if char == "'":
        return Diagnostic(
            "KPI201",
            "unterminated string",
            _point(origin, line, col),
            "close it with `'`; write `''` for a quote inside a string",
        )
    pair = text[error.pos_in_stream : error.pos_in_stream + 2]
    for operator in (pair, char):
        if operator in _BAD_OPERATORS:
            return Diagnostic(
                "KPI201",
                f"`{operator}` is not an operator",
                _point(origin, line, col, len(operator)),
                _BAD_OPERATORS[operator],
            )
    return Diagnostic(
        "KPI201",
        f"unknown character {_quote_char(char)}",
        _point(origin, line, col),
        _CHARACTER_HINTS.get(char),
    )


def _join_words(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    last = ", or " if any(" or " in p for p in phrases) else " or "
    return ", ".join(phrases[:-1]) + last + phrases[-1]


def _expected_words(accepts: set[str]) -> str:
    """What the parser would have accepted, in words."""
    phrases = []
    rest = set(accepts)
    if accepts & _VALUE_STARTS:
        phrases.append("a value, a column name or `(`")
        rest -= _VALUE_TOKENS
    elif accepts == {"STRING"}:  # after `date`
        return "a date in quotes after `date`, like `date '2024-01-31'`"
    elif accepts & _ARITHMETIC:
        logical = "OR" in accepts
        phrases.append("an operator such as `+` or `and`" if logical else "an operator such as `+`")
        rest -= _ARITHMETIC | _INFIX_WORDS | {"LPAR"}  # `(` there would call a function
        if logical:
            rest.discard("AND")
    phrases.extend(words for token, words in _SINGLE_WORDS if token in rest)
    return _join_words(phrases) if phrases else "something else"


def _state_before(
    parser: Lark, builder: _Builder, text: str, bad: Token, origin: TextOrigin
) -> tuple[set[str], list[Any]]:
    """What the parser accepted just before the offending token, and its value stack.

    Lark reports the state *after* the reductions that the bad token triggered; with
    LALR's merged lookaheads that can lose context (after `a + b)` it would only expect
    the end). Replaying the tokens before the bad one gives the exact set. Only errors pay.
    """
    builder.local.state = _State(origin)
    interactive = parser.parse_interactive(text)
    for token in interactive.iter_parse():
        if bad.type != "$END" and (token.start_pos or 0) >= (bad.start_pos or 0):
            break
    accepts: set[str] = interactive.accepts()  # type: ignore[no-untyped-call]
    return accepts, list(interactive.parser_state.value_stack)


def _unexpected_token(
    text: str, token: Token, accepts: set[str], values: list[Any], origin: TextOrigin
) -> Diagnostic:
    expected = _expected_words(accepts)
    hint = None

    if token.type == "$END":
        # Lark gives the end token the position of the last token: point just after it.
        span = _point(origin, *_place(token)[2:])
        if "RPAR" in accepts:
            lpar = next((v for v in reversed(values) if _is_token(v, "LPAR")), None)
            if lpar is not None:
                line, col = origin.position(*_place(lpar)[:2])
                hint = f"the `(` at line {line}, column {col} is not closed"
        return Diagnostic(
            "KPI201", f"unexpected end of expression: expected {expected}", span, hint
        )

    line, col, end_line, end_col = _place(token)
    span = origin.span(line, col, end_line, end_col)
    before = text[: token.start_pos]
    pair = before[-1:] + str(token)
    if token.type in ("EQ", "GT") and pair in ("==", "<>"):
        start = _point(origin, line, col - 1, 2)
        if pair == "==":
            return Diagnostic("KPI201", "`==` is not an operator", start, "use `=` to compare")
        return Diagnostic("KPI201", "`<>` is not an operator", start, "use `!=` for “not equal”")

    if token.type in ("LT", "GT") and before.endswith("="):
        hint = "write `<=` or `>=`, with `=` second"
    elif token.type == "RPAR" and not any(_is_token(v, "LPAR") for v in values):
        hint = "this `)` has no matching `(`"
    elif token.type in ("NAME", "NUMBER") and before.endswith("'"):
        hint = "to put a quote inside a string, write it twice: `'it''s'`"
    elif token.type == "_WHERE":
        hint = "`where` goes inside the parentheses of an aggregate: `sum(amount where c)`"
    elif token.type == "STAR" and _after_count(values):
        hint = "write `count()` to count rows"
    elif accepts == {"LPAR"} and values and _is_token(values[-1], "IN"):
        hint = "the list after `in` goes in parentheses: `x in ('a', 'b')`"
    elif accepts and accepts <= {"NULL", "NOT"}:
        hint = "write `x is null` or `x is not null`; compare with values using `=`"
    elif token.type in _KEYWORD_TOKENS and accepts & _VALUE_STARTS:
        hint = f"`{str(token).lower()}` is a reserved word and cannot be used as a name"

    message = f"unexpected `{_shorten(str(token))}`: expected {expected}"
    return Diagnostic("KPI201", message, span, hint)


def _place(token: Token) -> tuple[int, int, int, int]:
    """Line, column, end line and end column of a token: always set on the tokens of
    the lexer (lark types them optional, for tokens made by hand)."""
    line, col, end_line, end_col = token.line, token.column, token.end_line, token.end_column
    assert line is not None and col is not None, "the lexer places its tokens"
    assert end_line is not None and end_col is not None, "the lexer places its tokens"
    return line, col, end_line, end_col


def _is_token(value: Any, kind: str) -> bool:
    return getattr(value, "type", None) == kind and isinstance(value, str)


def _after_count(values: list[Any]) -> bool:
    return (
        len(values) >= 2
        and _is_token(values[-1], "LPAR")
        and _is_token(values[-2], "NAME")
        and str(values[-2]).lower() == "count"
    )
