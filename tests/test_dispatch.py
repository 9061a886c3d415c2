"""Every stage that dispatches on node types handles every node type.

Parse (back to text), check, compile and evaluate each keep one table node class →
handler (:func:`kpiengine.language.ast.dispatch_table`). A node class added to
``language/ast.py`` without a handler in each fails here, and at import, rather than as a
run-time error on the first expression that uses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import pytest

from kpiengine.compile import statement
from kpiengine.language import ast, check, parse
from kpiengine.language.ast import Node, dispatch_table, node_types, walk
from kpiengine.rules import evaluate
from kpiengine.source import TextOrigin

#: The dispatch table of each stage.
TABLES: dict[str, Mapping[type[Node], object]] = {
    "parse (to_text)": parse._PIECES,
    "check": check._INFER,
    "compile": statement._COMPILE,
    "evaluate": evaluate._EVAL,
}

#: An expression holding each node type, parsed by the parse stage's builder.
SAMPLES = {
    ast.Literal: "1.5",
    ast.Name: "accounts.segment",
    ast.Unary: "-x",
    ast.Binary: "a + b",
    ast.InList: "x not in (1, 2)",
    ast.Between: "x between 1 and 2",
    ast.IsNull: "x is not null",
    ast.Call: "sum(x where y > 1)",
}


def concrete_node_classes() -> set[type[Node]]:
    """Every class of ast.py deriving from Node that nothing derives from."""
    classes = {c for _, c in inspect.getmembers(ast, inspect.isclass) if issubclass(c, Node)} - {
        Node
    }
    return {c for c in classes if not any(o is not c and issubclass(o, c) for o in classes)}


def test_node_types_are_the_concrete_classes_of_ast() -> None:
    assert node_types() == concrete_node_classes()
    assert len(node_types()) == 8


@pytest.mark.parametrize("stage", sorted(TABLES))
def test_each_stage_handles_every_node_type(stage: str) -> None:
    handled = set(TABLES[stage])
    assert handled == set(node_types()), f"{stage} misses {node_types() - handled}"


def test_the_parser_builds_every_node_type_and_prints_it_back() -> None:
    assert set(SAMPLES) == set(node_types())
    for kind, text in SAMPLES.items():
        tree, problems = parse.parse_expression(text, TextOrigin.standalone("t", text))
        assert not problems and tree is not None
        assert type(tree) is kind
        assert parse.to_text(tree) == text


def test_a_table_missing_a_node_type_is_refused() -> None:
    partial = {kind: str for kind in node_types() if kind is not ast.Between}
    with pytest.raises(TypeError, match="handles no Between"):
        dispatch_table("a stage", partial)


def test_evaluate_and_compile_run_every_node_type() -> None:
    """Through the handlers, not only the tables: one condition holding every node type."""
    from kpiengine.compile.dialects import rules_for
    from kpiengine.language.functions import default_registry

    text = "-a + 2 >= 1 and a in (1, 3) and a between 0 and 9 and b is null and abs(a) = 1"
    tree, problems = parse.parse_expression(text, TextOrigin.standalone("t", text))
    assert tree is not None and not problems
    kinds = {type(n) for n in walk(tree)}
    assert kinds == set(node_types())
    values = {"a": 1, "b": None}
    assert evaluate._eval(tree, values.__getitem__) is True
    from sqlglot import exp

    compiler = statement.ExpressionCompiler(
        rules_for("duckdb"), default_registry(), lambda n: exp.column(n.dotted)
    )
    sql = compiler.compile(tree).sql("duckdb")
    assert "BETWEEN" in sql and "IN (1, 3)" in sql and "IS NULL" in sql
