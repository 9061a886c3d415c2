"""Parse stage: grammar, tree, spans, error messages, depth limit, round trips."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpiengine.language.ast import (
    ARITHMETIC_OPS,
    COMPARISON_OPS,
    LOGICAL_OPS,
    Between,
    Binary,
    Call,
    InList,
    IsNull,
    Literal,
    Name,
    Node,
    Unary,
    walk,
)
from kpiengine.language.parse import KEYWORDS, MAX_DEPTH, grammar_text, parse_expression, to_text
from kpiengine.source import Span, TextOrigin

ORIGIN = TextOrigin.standalone("t")
S = Span("t", 1, 1, 1, 1)  # spans are not compared; any span builds an expected tree


def parse(text: str, origin: TextOrigin = ORIGIN) -> Node:
    tree, problems = parse_expression(text, origin)
    assert problems == [], [str(p) for p in problems]
    assert tree is not None
    return tree


def problem(text: str, origin: TextOrigin = ORIGIN):
    tree, problems = parse_expression(text, origin)
    assert tree is None
    assert len(problems) == 1, problems
    return problems[0]


def grouped(node: Node) -> str:
    """Fully parenthesised text of a (small) tree: shows exactly how it was grouped."""
    if isinstance(node, Binary):
        return f"({grouped(node.left)} {node.op} {grouped(node.right)})"
    if isinstance(node, Unary):
        return f"({node.op}{' ' if node.op == 'not' else ''}{grouped(node.operand)})"
    if isinstance(node, InList):
        items = ", ".join(grouped(i) for i in node.items)
        return f"({grouped(node.operand)} {'not in' if node.negated else 'in'} ({items}))"
    if isinstance(node, Between):
        low, high = grouped(node.low), grouped(node.high)
        return f"({grouped(node.operand)} between {low} and {high})"
    if isinstance(node, IsNull):
        return f"({grouped(node.operand)} is {'not ' if node.negated else ''}null)"
    if isinstance(node, Call):
        args = ", ".join(grouped(a) for a in node.args)
        where = f"{' ' if args else ''}where {grouped(node.where)}" if node.where else ""
        return f"{node.name}({args}{where})"
    return to_text(node)


def n(*parts: str) -> Name:
    return Name(S, parts)


def lit(value, kind: str = "number") -> Literal:
    return Literal(S, value, kind)


# ---------------------------------------------------------------- precedence, associativity

PRECEDENCE = [
    ("a or b and c", "(a or (b and c))"),
    ("a and b or c", "((a and b) or c)"),
    ("a or b or c", "((a or b) or c)"),
    ("a and b and c", "((a and b) and c)"),
    ("not a and b", "((not a) and b)"),
    ("not a or not b", "((not a) or (not b))"),
    ("not not a", "(not (not a))"),
    ("not a = b", "(not (a = b))"),
    ("a = b and c != d", "((a = b) and (c != d))"),
    ("a + b = c * d", "((a + b) = (c * d))"),
    ("a <= b + 1 or a >= 2", "((a <= (b + 1)) or (a >= 2))"),
    ("a + b * c", "(a + (b * c))"),
    ("a * b + c", "((a * b) + c)"),
    ("a - b - c", "((a - b) - c)"),
    ("a - b + c", "((a - b) + c)"),
    ("a / b / c", "((a / b) / c)"),
    ("a * b % c", "((a * b) % c)"),
    ("a % b * c", "((a % b) * c)"),
    ("-a * b", "((-a) * b)"),
    ("a * -b", "(a * (-b))"),
    ("a - -b", "(a - (-b))"),
    ("- - a", "(-(-a))"),
    ("-(a + b)", "(-(a + b))"),
    ("(a + b) * c", "((a + b) * c)"),
    ("a - (b - c)", "(a - (b - c))"),
    ("(a or b) and c", "((a or b) and c)"),
    ("x between 1 and 2 and y", "((x between 1 and 2) and y)"),
    ("x between a + 1 and b * 2", "(x between (a + 1) and (b * 2))"),
    ("not x between 1 and 2", "(not (x between 1 and 2))"),
    ("x between 1 and 2 or x between 5 and 6", "((x between 1 and 2) or (x between 5 and 6))"),
    ("x in (1, 2) or y", "((x in (1, 2)) or y)"),
    ("x + 1 in (a, b or c)", "((x + 1) in (a, (b or c)))"),
    ("x not in ('a') and y is not null", "((x not in ('a')) and (y is not null))"),
    ("a + b is null", "((a + b) is null)"),
    ("not a is null", "(not (a is null))"),
    ("(a < b) = true", "((a < b) = true)"),
    ("a < (b < c)", "(a < (b < c))"),
    ("f(a, b + c) * 2", "(f(a, (b + c)) * 2)"),
    ("sum(x where a = 1 or b = 2) / 2", "(sum(x where ((a = 1) or (b = 2))) / 2)"),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE)
def test_precedence_and_associativity(text: str, expected: str) -> None:
    assert grouped(parse(text)) == expected


def test_trees_are_the_ast_dataclasses() -> None:
    assert parse("a + b * 2") == Binary(S, "+", n("a"), Binary(S, "*", n("b"), lit(2)))
    assert parse("not -x") == Unary(S, "not", Unary(S, "-", n("x")))
    assert parse("x not in (1, 'a')") == InList(S, n("x"), (lit(1), lit("a", "string")), True)
    assert parse("x in (1)") == InList(S, n("x"), (lit(1),), False)
    assert parse("x between 1 and y") == Between(S, n("x"), lit(1), n("y"))
    assert parse("x is null") == IsNull(S, n("x"), False)
    assert parse("x is not null") == IsNull(S, n("x"), True)
    assert parse("a or b and c") == Binary(S, "or", n("a"), Binary(S, "and", n("b"), n("c")))
    assert parse("(((x)))") == n("x")


@pytest.mark.parametrize(
    ("text", "op"),
    [(f"a {op} b", op) for op in sorted(ARITHMETIC_OPS | COMPARISON_OPS | LOGICAL_OPS)],
)
def test_every_binary_operator(text: str, op: str) -> None:
    assert parse(text) == Binary(S, op, n("a"), n("b"))


# ---------------------------------------------------------------- literals and names


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("12", 12, "number"),
        ("0", 0, "number"),
        ("1.5", 1.5, "number"),
        ("1e3", 1000.0, "number"),
        ("2.5E-3", 0.0025, "number"),
        ("1e+2", 100.0, "number"),
        (".5", 0.5, "number"),
        ("'text'", "text", "string"),
        ("''", "", "string"),
        ("'it''s'", "it's", "string"),
        ("''''", "'", "string"),
        ("'two\nlines'", "two\nlines", "string"),
        ("'don''t say \"no\"'", 'don\'t say "no"', "string"),
        ("true", True, "boolean"),
        ("false", False, "boolean"),
        ("null", None, "null"),
        ("date '2024-01-31'", dt.date(2024, 1, 31), "date"),
        ("date '2024-02-29'", dt.date(2024, 2, 29), "date"),
    ],
)
def test_literals(text: str, value: object, kind: str) -> None:
    tree = parse(text)
    assert isinstance(tree, Literal)
    assert (tree.value, tree.kind) == (value, kind)
    assert type(tree.value) is type(value)  # 12 is an int, 1e3 a float


def test_minus_is_an_operator_not_part_of_a_number() -> None:
    assert parse("-12") == Unary(S, "-", lit(12))
    assert parse("1-2") == Binary(S, "-", lit(1), lit(2))


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("amount", ("amount",)),
        ("accounts.segment", ("accounts", "segment")),
        ("a.b.c", ("a", "b", "c")),
        ("_private", ("_private",)),
        ("x1_y2", ("x1_y2",)),
        ("Amount", ("Amount",)),  # names keep their case; the check stage decides
        ("durée", ("durée",)),
        ("android", ("android",)),  # starts like a keyword
        ("notable", ("notable",)),
        ("dates", ("dates",)),
        ("is_won", ("is_won",)),
    ],
)
def test_names(text: str, parts: tuple[str, ...]) -> None:
    assert parse(text) == Name(S, parts)


def test_keywords_are_case_insensitive() -> None:
    assert to_text(parse("A AND NOT b Or c")) == "A and not b or c"
    assert parse("x NOT IN (1)") == parse("x not in (1)")
    assert parse("x Between 1 AND 2") == parse("x between 1 and 2")
    assert parse("x IS NOT NULL") == IsNull(S, n("x"), True)
    assert parse("x Is Null") == IsNull(S, n("x"), False)
    assert parse("TRUE") == lit(True, "boolean")
    assert parse("False") == lit(False, "boolean")
    assert parse("NULL") == lit(None, "null")
    assert parse("DATE '2024-01-31'") == lit(dt.date(2024, 1, 31), "date")
    assert parse("count(WHERE x)") == Call(S, "count", (), n("x"))


def test_function_names_are_lowercased() -> None:
    assert parse("COUNT()") == Call(S, "count", ())
    assert parse("Sum(Amount)") == Call(S, "sum", (n("Amount"),))


@pytest.mark.parametrize("keyword", sorted(KEYWORDS))
def test_keywords_cannot_be_names(keyword: str) -> None:
    texts = [f"accounts.{keyword}", f"{keyword.upper()}.segment + 1"]
    if keyword not in ("true", "false", "null"):  # those are values
        texts.append(f"sum({keyword})")
    for text in texts:
        tree, problems = parse_expression(text, ORIGIN)
        assert tree is None, text
        assert [p.code for p in problems] == ["KPI201"], text


# ---------------------------------------------------------------- calls and `where`


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count()", Call(S, "count", ())),
        ("count(x)", Call(S, "count", (n("x"),))),
        ("f(a, b)", Call(S, "f", (n("a"), n("b")))),
        ("count(where c)", Call(S, "count", (), n("c"))),
        ("sum(x where c)", Call(S, "sum", (n("x"),), n("c"))),
        (
            "percentile(x, 0.9 where c)",
            Call(S, "percentile", (n("x"), lit(0.9)), n("c")),
        ),
        (
            "count_distinct(account_id where stage = 'won')",
            Call(
                S,
                "count_distinct",
                (n("account_id"),),
                Binary(S, "=", n("stage"), lit("won", "string")),
            ),
        ),
        (
            "sum(x where a and b)",
            Call(S, "sum", (n("x"),), Binary(S, "and", n("a"), n("b"))),
        ),
        (
            "if(a > 1, 'big', null)",
            Call(
                S, "if", (Binary(S, ">", n("a"), lit(1)), lit("big", "string"), lit(None, "null"))
            ),
        ),
        ("round(sum(x), 2)", Call(S, "round", (Call(S, "sum", (n("x"),)), lit(2)))),
        ("my.plugin_fn(1)", Call(S, "my.plugin_fn", (lit(1),))),
    ],
)
def test_calls(text: str, expected: Call) -> None:
    assert parse(text) == expected


def test_spec_example() -> None:
    tree = parse("count(where stage = 'won') / count(where stage in ('won', 'lost'))")
    won = lit("won", "string")
    assert tree == Binary(
        S,
        "/",
        Call(S, "count", (), Binary(S, "=", n("stage"), won)),
        Call(S, "count", (), InList(S, n("stage"), (won, lit("lost", "string")), False)),
    )


# ---------------------------------------------------------------- spans


def at(span: Span | None) -> tuple[int, int, int, int]:
    assert span is not None
    return (span.line, span.col, span.end_line, span.end_col)


def test_spans_cover_the_text_of_each_node() -> None:
    tree = parse("sum(amount) / 2")
    assert isinstance(tree, Binary) and isinstance(tree.left, Call)
    assert tree.span.file == "t"
    assert at(tree.span) == (1, 1, 1, 16)
    assert at(tree.left.span) == (1, 1, 1, 12)
    assert at(tree.left.name_span) == (1, 1, 1, 4)
    assert at(tree.left.args[0].span) == (1, 5, 1, 11)
    assert at(tree.right.span) == (1, 15, 1, 16)


def test_spans_include_parentheses_keywords_and_quotes() -> None:
    tree = parse("(a + b) * c")
    assert isinstance(tree, Binary)
    assert at(tree.left.span) == (1, 1, 1, 8)
    assert at(tree.span) == (1, 1, 1, 12)
    assert at(parse("  date '2024-01-31'  ").span) == (1, 3, 1, 20)
    assert at(parse("'it''s'").span) == (1, 1, 1, 8)
    assert at(parse("x not in (1, 2)").span) == (1, 1, 1, 16)
    assert at(parse("x is not null").span) == (1, 1, 1, 14)
    assert at(parse("x between 1 and 20").span) == (1, 1, 1, 19)
    assert at(parse("- x").span) == (1, 1, 1, 4)
    assert at(parse("count(where c)").span) == (1, 1, 1, 15)


def test_spans_are_mapped_into_the_file() -> None:
    origin = TextOrigin("kpis/a.yaml", ((3, 13),))
    tree = parse("sum(amount)", origin)
    assert isinstance(tree, Call)
    assert tree.span == Span("kpis/a.yaml", 3, 13, 3, 24)
    assert tree.args[0].span == Span("kpis/a.yaml", 3, 17, 3, 23)


def test_spans_over_several_lines() -> None:
    # A block scalar: expression line 1 starts at file 5:14, line 2 at 6:5.
    origin = TextOrigin("f.yaml", ((5, 14), (6, 5)))
    tree = parse("sum(amount)\n  / count()", origin)
    assert isinstance(tree, Binary) and isinstance(tree.right, Call)
    assert tree.span == Span("f.yaml", 5, 14, 6, 16)
    assert tree.left.span == Span("f.yaml", 5, 14, 5, 25)
    assert tree.right.span == Span("f.yaml", 6, 9, 6, 16)
    assert tree.right.name_span == Span("f.yaml", 6, 9, 6, 14)

    error = problem("sum(amount)\n  + )", origin)
    assert (error.code, error.span.file, error.span.line, error.span.col) == (
        "KPI201",
        "f.yaml",
        6,
        9,
    )
    unclosed = problem("sum(\n  amount", origin)
    assert (unclosed.span.line, unclosed.span.col) == (6, 13)
    assert unclosed.hint == "the `(` at line 5, column 17 is not closed"


# ---------------------------------------------------------------- bad inputs

# (text, code, line, col, message, hint or None when not checked)
BAD = [
    ("", "KPI201", 1, 1, "empty expression", None),
    ("   \n ", "KPI201", 1, 1, "empty expression", None),
    ("1 + )", "KPI201", 1, 5, "unexpected `)`: expected a value, a column name or `(`", None),
    (
        "a +",
        "KPI201",
        1,
        4,
        "unexpected end of expression: expected a value, a column name or `(`",
        None,
    ),
    (
        "(a + b",
        "KPI201",
        1,
        7,
        "unexpected end of expression: expected an operator such as `+` or `and`, or `)`",
        "the `(` at line 1, column 1 is not closed",
    ),
    (
        "a + b)",
        "KPI201",
        1,
        6,
        "unexpected `)`: expected an operator such as `+` or `and`, or end of expression",
        "this `)` has no matching `(`",
    ),
    (
        "amount stage",
        "KPI201",
        1,
        8,
        "unexpected `stage`: expected an operator such as `+` or `and`, or end of expression",
        None,
    ),
    (
        "f(a",
        "KPI201",
        1,
        4,
        "unexpected end of expression: "
        "expected an operator such as `+` or `and`, `,`, `where`, or `)`",
        "the `(` at line 1, column 2 is not closed",
    ),
    ("f(1,)", "KPI201", 1, 5, "unexpected `)`: expected a value, a column name or `(`", None),
    ("x in ()", "KPI201", 1, 7, "unexpected `)`: expected a value, a column name or `(`", None),
    (
        "'abc",
        "KPI201",
        1,
        1,
        "unterminated string",
        "close it with `'`; write `''` for a quote inside a string",
    ),
    (
        "count(where stage = 'won)",
        "KPI201",
        1,
        21,
        "unterminated string",
        "close it with `'`; write `''` for a quote inside a string",
    ),
    (
        "x = 'it's'",
        "KPI201",
        1,
        9,
        "unexpected `s`: expected an operator such as `+` or `and`, or end of expression",
        "to put a quote inside a string, write it twice: `'it''s'`",
    ),
    ('x = "won"', "KPI201", 1, 5, 'unknown character `"`', "strings use single quotes: `'won'`"),
    ("x ; y", "KPI201", 1, 3, "unknown character `;`", None),
    ("x = 1 # note", "KPI201", 1, 7, "unknown character `#`", None),
    ("x == 1", "KPI201", 1, 3, "`==` is not an operator", "use `=` to compare"),
    ("x && y", "KPI201", 1, 3, "`&&` is not an operator", "use `and`"),
    ("x || y", "KPI201", 1, 3, "`||` is not an operator", "use `or`"),
    ("x <> 1", "KPI201", 1, 3, "`<>` is not an operator", "use `!=` for “not equal”"),
    (
        "x => 1",
        "KPI201",
        1,
        4,
        "unexpected `>`: expected a value, a column name or `(`",
        "write `<=` or `>=`, with `=` second",
    ),
    (
        "date '2024-02-30'",
        "KPI201",
        1,
        6,
        "invalid date `2024-02-30`: day is out of range for month",
        "write a date as `date 'YYYY-MM-DD'`, e.g. `date '2024-01-31'`",
    ),
    ("x > date '31/01/2024'", "KPI201", 1, 10, "invalid date `31/01/2024`", None),
    (
        "date(closed_at)",
        "KPI201",
        1,
        5,
        "unexpected `(`: expected a date in quotes after `date`, like `date '2024-01-31'`",
        None,
    ),
    (
        "a < b < c",
        "KPI201",
        1,
        7,
        "comparisons cannot be chained",
        "join two comparisons with `and`, e.g. `0 < x and x < 10`, or use `x between 0 and 10`",
    ),
    ("x = 1 in (1, 2)", "KPI201", 1, 7, "comparisons cannot be chained", None),
    ("x is null = true", "KPI201", 1, 11, "comparisons cannot be chained", None),
    ("x between 1 and 2 not in (3)", "KPI201", 1, 19, "comparisons cannot be chained", None),
    (
        "count(*)",
        "KPI201",
        1,
        7,
        "unexpected `*`: expected a value, a column name or `(`, `where`, or `)`",
        "write `count()` to count rows",
    ),
    (
        "sum(amount) where stage = 'won'",
        "KPI201",
        1,
        13,
        "unexpected `where`: expected an operator such as `+` or `and`, or end of expression",
        "`where` goes inside the parentheses of an aggregate: `sum(amount where c)`",
    ),
    (
        "x in 'a', 'b'",
        "KPI201",
        1,
        6,
        "unexpected `'a'`: expected `(`",
        "the list after `in` goes in parentheses: `x in ('a', 'b')`",
    ),
    ("x is 5", "KPI201", 1, 6, "unexpected `5`: expected `null` or `not null`", None),
    ("x not 1", "KPI201", 1, 7, "unexpected `1`: expected `in`", None),
    (
        "accounts.date",
        "KPI201",
        1,
        1,
        "`date` is a reserved word and cannot be used as a name",
        None,
    ),
    (
        "in + 1",
        "KPI201",
        1,
        1,
        "unexpected `in`: expected a value, a column name or `(`",
        "`in` is a reserved word and cannot be used as a name",
    ),
    ("x = 1e999", "KPI201", 1, 5, "number `1e999` is too large", None),
    ("x = [1]", "KPI201", 1, 5, "unknown character `[`", None),
    (
        "sum(amount) ** 2",
        "KPI201",
        1,
        14,
        "unexpected `*`: expected a value, a column name or `(`",
        None,
    ),
]


@pytest.mark.parametrize(("text", "code", "line", "col", "message", "hint"), BAD)
def test_bad_inputs(text: str, code: str, line: int, col: int, message: str, hint: str | None):
    error = problem(text)
    assert (error.code, error.span.line, error.span.col, error.message) == (
        code,
        line,
        col,
        message,
    )
    if hint is not None:
        assert error.hint == hint


def test_error_spans_point_at_the_offending_token() -> None:
    assert at(problem("1 + )").span) == (1, 5, 1, 6)
    assert at(problem("a +   ").span) == (1, 4, 1, 5)  # 1 char wide, just after the end
    assert at(problem("x == 1").span) == (1, 3, 1, 5)
    assert at(problem("a + bad_name stage").span) == (1, 14, 1, 19)
    assert at(problem("date '2024-13-01'").span) == (1, 6, 1, 18)  # the string
    assert at(problem("x = 1 not in (1)").span) == (1, 7, 1, 13)  # `not in`


def test_errors_are_mapped_into_the_file() -> None:
    error = problem("count(where stage == 'won')", TextOrigin("k.yaml", ((3, 13),)))
    assert error.span == Span("k.yaml", 3, 31, 3, 33)
    assert str(error) == "k.yaml:3:31: KPI201 `==` is not an operator (hint: use `=` to compare)"


# ---------------------------------------------------------------- nesting depth

DEEP = 10_000


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("(" * DEEP + "1" + ")" * DEEP, DEEP + 1),
        ("- " * DEEP + "1", DEEP + 1),
        ("not " * DEEP + "x", DEEP + 1),
        ("+".join(["1"] * DEEP), DEEP),
        ("f(" * DEEP + "1" + ")" * DEEP, DEEP + 1),
        ("x in (" * 150 + "1" + ")" * 150, 151),
        ("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH, MAX_DEPTH + 1),
    ],
    ids=["parentheses", "minus", "not", "long_sum", "calls", "in_lists", "just_over"],
)
def test_too_deep(text: str, levels: int) -> None:
    error = problem(text)
    assert error.code == "KPI202"
    assert error.message == (
        f"expression nested too deeply ({levels} levels; the limit is {MAX_DEPTH})"
    )
    assert error.hint == "split it into several KPIs and combine them by name"
    assert error.span is not None


def test_depth_limit_boundary() -> None:
    parse("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1))  # 100 levels: fine
    parse("+".join(["1"] * MAX_DEPTH))
    parse("x in (" + ", ".join(["1"] * DEEP) + ")")  # wide is not deep
    parse(" and ".join(["a"] * (MAX_DEPTH - 1)) + " and (b)")


def test_a_flat_sum_of_100_terms_is_not_too_deep() -> None:
    """Issue 10: `sum(a) + ... + sum(a)` with 100 terms was refused as "nested too
    deeply". The limit is what the later stages (compile, sqlglot, the engines) handle."""
    parse(" + ".join(["sum(x)"] * 100))
    parse("sum(" + " + ".join(["x"] * 100) + ")")
    parse(" or ".join(["x = 1"] * 100))


def test_deep_input_with_a_syntax_error_is_a_syntax_error() -> None:
    assert problem("(" * DEEP + "1").code == "KPI201"
    assert problem("+".join(["1"] * DEEP) + " +").code == "KPI201"
    assert problem("- " * DEEP).code == "KPI201"


def test_to_text_does_not_recurse() -> None:
    tree: Node = lit(1)
    for _ in range(DEEP):
        tree = Unary(S, "-", Binary(S, "*", tree, n("x")))
    assert to_text(tree).startswith("-(-(-(")


# ---------------------------------------------------------------- to_text

CANONICAL = [
    ("A  AND   b", "A and b"),
    ("count( WHERE  x=1 )", "count(where x = 1)"),
    ("(a)", "a"),
    ("((a + b)) * c", "(a + b) * c"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a < (b < c)", "a < (b < c)"),
    ("(a < b) = true", "(a < b) = true"),
    ("- - 1", "- -1"),
    ("-(1)", "-1"),
    ("-(a * b)", "-(a * b)"),
    ("not (a and b)", "not (a and b)"),
    ("(not a) and b", "not a and b"),
    ("not (a = b)", "not a = b"),
    ("(x between 1 and 2) and y", "x between 1 and 2 and y"),
    ("x between (1 and 2) and y", "x between (1 and 2) and y"),
    ("(x in (1,2)) is null", "(x in (1, 2)) is null"),
    ("X NOT IN ( 'a','b' )", "X not in ('a', 'b')"),
    ("1E3 + 1.50 + 012", "1000.0 + 1.5 + 12"),
    ("'it''s'", "'it''s'"),
    ("DATE '2024-01-31'", "date '2024-01-31'"),
    ("TRUE or NULL", "true or null"),
    ("Percentile(x,0.9 where c)", "percentile(x, 0.9 where c)"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_to_text_is_canonical(text: str, canonical: str) -> None:
    tree = parse(text)
    assert to_text(tree) == canonical
    assert parse(canonical) == tree


def test_to_text_refuses_what_the_language_cannot_write() -> None:
    with pytest.raises(ValueError):
        to_text(lit(float("inf")))
    with pytest.raises(ValueError):
        to_text(Literal(S, "x", "date"))


# ---------------------------------------------------------------- property tests

_identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda s: s.lower() not in KEYWORDS
)
_literals = st.one_of(
    st.integers(min_value=0).map(lambda v: lit(v)),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda v: lit(abs(v))),
    st.text().map(lambda v: lit(v, "string")),
    st.booleans().map(lambda v: lit(v, "boolean")),
    st.just(lit(None, "null")),
    st.dates().map(lambda v: lit(v, "date")),
)
_names = st.lists(_identifier, min_size=1, max_size=3).map(lambda parts: Name(S, tuple(parts)))
_ops = sorted(ARITHMETIC_OPS | COMPARISON_OPS | LOGICAL_OPS)


def _composites(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    many = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(lambda o, x: Unary(S, o, x), st.sampled_from(["-", "not"]), children),
        st.builds(lambda o, a, b: Binary(S, o, a, b), st.sampled_from(_ops), children, children),
        st.builds(lambda x, i, neg: InList(S, x, i, neg), children, many, st.booleans()),
        st.builds(lambda x, a, b: Between(S, x, a, b), children, children, children),
        st.builds(lambda x, neg: IsNull(S, x, neg), children, st.booleans()),
        st.builds(
            lambda f, a, w: Call(S, f.lower(), a, w),
            _identifier,
            st.lists(children, max_size=3).map(tuple),
            st.none() | children,
        ),
    )


trees = st.recursive(st.one_of(_literals, _names), _composites, max_leaves=25)


def _origin_for(text: str) -> TextOrigin:
    """File positions equal to text positions, on every line of ``text``."""
    return TextOrigin("t", tuple((line, 1) for line in range(1, text.count("\n") + 2)))


def _text_of(text: str, span: Span) -> str:
    """The text a span covers (with :func:`_origin_for`, file positions are text positions)."""
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    start = offsets[span.line - 1] + span.col - 1
    end = offsets[span.end_line - 1] + span.end_col - 1
    return text[start:end]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_round_trip_of_generated_trees(tree: Node) -> None:
    text = to_text(tree)
    reparsed = parse(text, _origin_for(text))
    assert reparsed == tree
    assert to_text(reparsed) == text
    # Every node's span covers exactly the text of that node.
    for node in walk(reparsed):
        assert parse(_text_of(text, node.span)) == node


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list("ab1 .'\"()=<>!+-*/%,&|\n")) | st.characters()))
def test_never_raises(text: str) -> None:
    tree, problems = parse_expression(text, ORIGIN)
    assert (tree is None) == bool(problems)
    for p in problems:
        assert p.code in ("KPI201", "KPI202")
        assert p.span is not None and p.span.file == "t"
        assert p.message and "Token(" not in p.message and "$END" not in p.message


# ---------------------------------------------------------------- the parser itself


def test_grammar_file_is_found() -> None:
    assert "?expression" in grammar_text()


def test_parser_is_shared_by_threads() -> None:
    texts = [f"sum(x{i} where y = {i}) / {i + 1}" for i in range(40)]
    expected = {t: parse(t) for t in texts}
    results: dict[str, Node] = {}
    failures: list[str] = []

    def work(chunk: list[str]) -> None:
        for _ in range(20):
            for text in chunk:
                tree, problems = parse_expression(text, ORIGIN)
                if tree != expected[text] or problems:
                    failures.append(text)
                results[text] = tree

    threads = [threading.Thread(target=work, args=(texts[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert results == expected
