"""Typed syntax tree of the expression language (SPEC §4).

One frozen dataclass per construct; every node carries the :class:`Span` of its text in
the definition file. The same tree serves KPI expressions, row filters, ``--where`` flags
and rule conditions: what a name may refer to is decided by the check stage, not here.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from kpiengine.source import Span


@dataclass(frozen=True, slots=True)
class Node:
    span: Span = field(compare=False, repr=False)

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """``12``, ``1.5``, ``'text'``, ``true``, ``null``, ``date '2024-01-31'``."""

    value: int | float | str | bool | dt.date | None
    kind: str  # "number" | "string" | "boolean" | "null" | "date"


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A column (``amount``, ``accounts.segment``), a KPI name, or a rule variable."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "-" | "not"
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


#: Binary operators, as written in the language.
ARITHMETIC_OPS = frozenset({"+", "-", "*", "/", "%"})
COMPARISON_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
LOGICAL_OPS = frozenset({"and", "or"})


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class InList(Node):
    """``x in (a, b)`` / ``x not in (a, b)``."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool

    def children(self) -> tuple[Node, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True, slots=True)
class Between(Node):
    """``x between low and high`` (both bounds included, as in SQL)."""

    operand: Node
    low: Node
    high: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.low, self.high)


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    operand: Node
    negated: bool

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A function call; ``where`` is the condition inside an aggregate (``sum(x where c)``)."""

    name: str
    args: tuple[Node, ...]
    where: Node | None = None
    name_span: Span | None = field(default=None, compare=False, repr=False)

    def children(self) -> tuple[Node, ...]:
        return (*self.args, self.where) if self.where is not None else self.args


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


def names(node: Node) -> Iterator[Name]:
    return (n for n in walk(node) if isinstance(n, Name))


def node_types() -> frozenset[type[Node]]:
    """Every concrete node class: the leaves of :class:`Node`'s subclass tree.

    Only classes the module still names count: ``dataclass(slots=True)`` makes a new class
    and leaves the one it replaced among the subclasses until it is collected."""
    found: set[type[Node]] = set()
    pending = list(Node.__subclasses__())
    while pending:
        kind = pending.pop()
        if getattr(sys.modules[kind.__module__], kind.__qualname__, None) is not kind:
            continue
        below = kind.__subclasses__()
        if below:
            pending.extend(below)
        else:
            found.add(kind)
    return frozenset(found)


Handler = TypeVar("Handler", bound=Callable[..., Any])


def dispatch_table(
    what: str, handlers: Mapping[type[Node], Handler]
) -> Mapping[type[Node], Handler]:
    """The one way a stage dispatches on node types: a table node class → handler, looked
    up with ``table[type(node)]``.

    Parse (back to text), check, compile and evaluate each keep one such table, and this
    refuses, when their module is imported, a table that misses a node class: adding a
    node type then fails every test until each stage handles it, instead of failing at
    run time on the first expression that uses it (tests/test_dispatch.py lists them).
    """
    missing = node_types() - handlers.keys()
    if missing:
        names = ", ".join(sorted(kind.__name__ for kind in missing))
        raise TypeError(f"{what} handles no {names}: add them to its dispatch table")
    return MappingProxyType(dict(handlers))
