"""YAML that remembers where every value came from.

PyYAML's constructors throw positions away, so load composes the node graph
(``yaml.compose``, libyaml when available) and converts it here: plain Python values for
JSON Schema validation, while the nodes stay around to answer "where is this value?"
for diagnostics and expression spans.

Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1 one: ``yes``, ``no``,
``on``, ``off`` and ``12:30`` stay text, and mapping keys are always the text as written
(a ``on:`` key of a join is the string ``"on"``, not ``True``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kpiengine.diagnostics import Diagnostic
from kpiengine.source import Span, TextOrigin

try:  # libyaml is ~10x faster; the pure-Python loader gives the same nodes
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: Path of a value inside a document, as jsonschema's ``error.absolute_path`` gives it.
YamlPath = Sequence[str | int]

MAX_DEPTH = 64
MAX_VALUES = 250_000  # after alias expansion; stops "billion laughs" documents
# Nodes (keys and values) composed at most: composing costs ~8 µs and ~400 bytes a node,
# so a 10 MB file of one million keys took 16 s and 900 MB before being refused.
MAX_NODES = 2 * MAX_VALUES
MAX_C_MARKERS = 10_000  # `[`, `{` and `- ` beyond which libyaml could nest too deep
# Lone surrogates: only `\uD800`-style escapes in double quotes make them (the file
# itself is strict UTF-8), and no UTF-8 output can hold them.
_SURROGATE = re.compile("[\ud800-\udfff]")

_TAG = "tag:yaml.org,2002:"
_STR, _MERGE = _TAG + "str", _TAG + "merge"
# Tags PyYAML's YAML 1.1 resolver gives plain scalars; such scalars are re-resolved by 1.2.
_RESOLVED = frozenset(_TAG + t for t in ("null", "bool", "int", "float", "timestamp", "value"))
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL: dict[str, Any] = {
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **{
        s + i: (-math.inf if s == "-" else math.inf)
        for s in ("", "+", "-")
        for i in (".inf", ".Inf", ".INF")
    },
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}


def scalar_value(node: ScalarNode) -> Any:
    """The value of a scalar under the YAML 1.2 core schema."""
    text = node.value
    if node.style or node.tag not in _RESOLVED:  # libyaml gives plain scalars style ''
        return text  # quoted, block, explicitly tagged or resolved as text
    if text in _SPECIAL:
        return _SPECIAL[text]
    if _INT.fullmatch(text):
        try:
            return int(text)
        except ValueError:  # more digits than int() converts: beyond any double anyway
            return -math.inf if text.startswith("-") else math.inf
    if text[:2] in ("0o", "0x"):
        try:
            return int(text[2:], 8 if text[1] == "o" else 16)
        except ValueError:
            return text
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


# -- composing ---------------------------------------------------------------------------------


def compose(text: str, file: str) -> tuple[Node | None, list[Diagnostic]]:
    """The single document of ``text`` (None when empty or broken), and what went wrong."""
    documents: list[Node] = []
    # libyaml's composer recurses in C and crashes the process on some 50 000 nested
    # collections; text that could nest that deep goes to the pure-Python loader, where
    # Python's recursion limit turns it into a RecursionError.
    markers = text.count("[") + text.count("{") + text.count("- ")
    loader = _Loader if markers < MAX_C_MARKERS else yaml.SafeLoader
    try:
        if _too_many_nodes(text, loader):
            hint = "split the definitions into several files"
            message = f"document too large: over {MAX_VALUES:,} values (the limit)"
            return None, [Diagnostic("KPI105", message, Span.point(file, 1, 1), hint)]
        for document in yaml.compose_all(text, Loader=loader):
            if not _is_empty(document):
                documents.append(document)
    except yaml.MarkedYAMLError as error:
        return None, [_syntax_error(error, text, file)]
    except yaml.YAMLError as error:  # ReaderError: characters YAML does not allow
        return None, [_reader_error(error, text, file)]
    except RecursionError:
        where = Span.point(file, 1, 1)
        return None, [Diagnostic("KPI101", "YAML nested too deeply", where)]
    if not documents:
        return None, [
            Diagnostic(
                "KPI102",
                "empty definition file",
                Span.point(file, 1, 1),
                hint="add a definition (`kpi:`, `source:`, ...) or delete the file",
            )
        ]
    if len(documents) > 1:
        second = documents[1].start_mark
        return documents[0], [
            Diagnostic(
                "KPI105",
                "a definition file holds one YAML document; a second one starts here",
                Span.point(file, second.line + 1, second.column + 1),
                hint="put each definition in its own file (several KPIs go in one file "
                "as a list under `kpis:`); the second document was ignored",
            )
        ]
    return documents[0], []


def _too_many_nodes(text: str, loader: type) -> bool:
    """Whether ``text`` holds more than :data:`MAX_NODES` nodes, counted on the parser's
    events (fast, constant memory) before anything is composed. Text too short to hold
    that many is not scanned: a node after the first follows a line break, `,` or `:`,
    or opens a collection with `[`, `{`, `-` or `?`."""
    if sum(text.count(c) for c in "\n,:[{-?") < MAX_NODES:
        return False
    count = 0
    node_events = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, node_events):
            count += 1
            if count > MAX_NODES:
                return True
    return False


def _is_empty(node: Node | None) -> bool:
    return node is None or (
        isinstance(node, ScalarNode) and not node.style and node.value in ("", "~", "null")
    )


def _syntax_error(error: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    problem = (error.problem or "").strip()
    context = (error.context or "").strip()
    context_line = error.context_mark.line + 1 if error.context_mark is not None else None
    mark = error.problem_mark or error.context_mark
    if "quoted scalar" in context and "end of stream" in problem:
        mark = error.context_mark  # the opening quote says more than the end of the file
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.splitlines()
    if line > len(lines) or not lines[line - 1].strip():  # at the end: show the last text
        line = next((n for n in range(min(line, len(lines)), 0, -1) if lines[n - 1].strip()), 1)
        col = len(lines[line - 1].rstrip()) + 1 if lines else 1
    at = lines[line - 1][col - 1 : col + 1] if 0 < line <= len(lines) else ""  # 2 characters
    message, hint = _explain(problem, context, context_line, at)
    return Diagnostic("KPI101", message, Span.point(file, line, col), hint=hint)


def _explain(problem: str, context: str, context_line: int | None, at: str) -> tuple[str, str]:
    """Turn a libyaml message into words an analyst can act on (``at``: the text there)."""
    escape, at = at, at[:1]
    if "tab" in problem or (at == "\t" and "cannot start any token" in problem):
        return (
            "tab character in indentation",
            "YAML indents with spaces only; replace the tab with spaces",
        )
    if "cannot start any token" in problem:
        return (
            f"a value cannot start with `{at}`",
            f"put the value in quotes: '{at}...'",
        )
    if problem.startswith("mapping values are not allowed"):
        return (
            "unexpected `:`",
            'text that contains `: ` must be quoted (message: "Win rate: {{ value }}"); '
            "otherwise check that the line above ends with `:` and the indentation",
        )
    if "did not find expected key" in problem or problem.startswith("expected <block end>"):
        where = f" of the mapping that starts on line {context_line}" if context_line else ""
        return (
            "bad indentation: this line does not line up with the keys above it",
            f"keys{where} must all start in the same column",
        )
    if "expected '-' indicator" in problem:
        return (
            "bad indentation in a list",
            "every item of a list starts with `-` in the same column",
        )
    if "could not find expected ':'" in problem:
        return (
            "expected `key: value`",
            "a key must be followed by `:`; quote a value that spans several lines",
        )
    if "end of stream" in problem and "quoted scalar" in context:
        return (
            "quote never closed",
            "close the quote at the end of the text",
        )
    if "invalid Unicode character escape" in problem:  # `\\ud800`: half a surrogate pair
        return (
            "invalid Unicode escape in double quotes",
            "write the character itself; `\\uD800`-`\\uDFFF` are halves of a surrogate pair, "
            "not characters: write `\\U0001F600` (8 digits) for one beyond U+FFFF",
        )
    if "unknown escape" in problem:  # the mark is on the backslash
        return (
            f"unknown escape `{escape}` in double quotes",
            "use single quotes, or write a backslash as `\\\\`",
        )
    if "undefined alias" in problem:
        return (
            "unknown alias",
            "an alias `*name` needs an anchor `&name` above it; quote the value if `*` is text",
        )
    if "duplicate anchor" in problem or "duplicate anchor" in context:
        return ("duplicate anchor", f"the anchor is already defined on line {context_line}")
    if "expected ',' or ']'" in problem or "expected ',' or '}'" in problem:
        bracket = "[" if "]" in problem else "{"
        closing = "]" if bracket == "[" else "}"
        where = f" on line {context_line}" if context_line else ""
        return (
            f"`{bracket}` never closed",
            f"close the `{bracket}` opened{where} with `{closing}`, and separate items with `,`",
        )
    if "expected node content" in problem:
        return ("a value is missing here", "check the brackets and commas around this point")
    detail = f"{problem} ({context})" if context else problem
    return (f"YAML syntax error: {detail}", "check the indentation and quotes near this point")


def _reader_error(error: yaml.YAMLError, text: str, file: str) -> Diagnostic:
    position = getattr(error, "position", 0) or 0
    character = getattr(error, "character", None)
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    code = f"U+{character:04X} " if isinstance(character, int) else ""
    return Diagnostic(
        "KPI101",
        f"control character {code}is not allowed in YAML",
        Span.point(file, line, col),
        hint="remove it (it often comes from copy-pasting); quote it as \\x.. if it is meant",
    )


# -- converting ---------------------------------------------------------------------------------


class Converter:
    """Node graph → Python values, reporting duplicate keys and runaway aliases."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self._done: dict[int, tuple[Any, int]] = {}  # id(node) → (value, values inside)
        self._active: set[int] = set()
        self._total = 0
        self._aliased = 0  # values that only exist through aliases

    def convert(self, node: Node) -> Any:
        value, _size = self._convert(node, 0)
        if self._total > MAX_VALUES:
            if self._aliased:
                message = (
                    f"document too large: with its aliases expanded it has over "
                    f"{MAX_VALUES:,} values (the limit)"
                )
                hint = "an alias (`*name`) repeats everything under its anchor; use fewer"
            else:
                message = f"document too large: over {MAX_VALUES:,} values (the limit)"
                hint = "split the definitions into several files"
            self.diagnostics.append(
                Diagnostic("KPI105", message, first_char(node_span(node, self.file)), hint)
            )
            return None
        return value

    def _convert(self, node: Node, depth: int) -> tuple[Any, int]:
        if isinstance(node, ScalarNode):
            self._total += 1
            if _SURROGATE.search(node.value):
                self._bad_text(node)
                return _SURROGATE.sub("\ufffd", node.value), 1
            return scalar_value(node), 1
        key = id(node)
        if key in self._done:  # an alias: the same node again
            value, size = self._done[key]
            self._total += size
            self._aliased += size
            return value, size
        if key in self._active:
            self._error(node, "an alias refers to the value that contains it")
            return None, 1
        if depth > MAX_DEPTH or self._total > MAX_VALUES:
            if depth > MAX_DEPTH:
                self._error(node, f"values nested more than {MAX_DEPTH} levels deep")
            return None, 1
        self._active.add(key)
        if isinstance(node, SequenceNode):
            items = [self._convert(item, depth + 1) for item in node.value]
            result: Any = [value for value, _ in items]
            size = 1 + sum(s for _, s in items)
        else:
            result, size = self._mapping(node, depth)
        self._active.discard(key)
        self._done[key] = (result, size)
        return result, size

    def _mapping(self, node: MappingNode, depth: int) -> tuple[dict[str, Any], int]:
        result: dict[str, Any] = {}
        first: dict[str, Node] = {}
        merges: list[Node] = []
        size = 1
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merges.extend(
                    value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                )
                continue
            if not isinstance(key_node, ScalarNode):
                self._error(key_node, "a key must be plain text, not a list or a mapping")
                continue
            name = key_node.value
            if _SURROGATE.search(name):
                self._bad_text(key_node)
                name = _SURROGATE.sub("\ufffd", name)
            if name in first:
                earlier = first[name].start_mark.line + 1
                self.diagnostics.append(
                    Diagnostic(
                        "KPI103",
                        f"duplicate key `{name}` (first on line {earlier})",
                        key_span(key_node, self.file),
                        hint="remove one of them; YAML keeps only the last",
                    )
                )
            first[name] = key_node
            result[name], inner = self._convert(value_node, depth + 1)
            size += inner
        for merged in merges:  # `<<: *defaults`: keys written here win over merged ones
            value, inner = self._convert(merged, depth + 1)
            if not isinstance(value, dict):
                self._error(merged, "`<<` merges a mapping (or a list of mappings)")
                continue
            for name, item in value.items():
                result.setdefault(name, item)
            size += inner
        return result, size

    def _error(self, node: Node, message: str) -> None:
        self.diagnostics.append(Diagnostic("KPI105", message, node_span(node, self.file)))

    def _bad_text(self, node: ScalarNode) -> None:
        """A text holding a lone surrogate (``"\\ud800"``): it cannot be written out as
        UTF-8, so every later print, file or report would fail on it."""
        code = ord(_SURROGATE.search(node.value).group())  # type: ignore[union-attr]
        self.diagnostics.append(
            Diagnostic(
                "KPI105",
                f"the text holds U+{code:04X}, half of a surrogate pair, which is not a character",
                first_char(node_span(node, self.file)),
                "write the character itself; in double quotes, `\\U0001F600` (8 digits) "
                "writes a character beyond U+FFFF",
            )
        )


# -- locating -----------------------------------------------------------------------------------


def mapping_index(
    node: MappingNode, _outer: frozenset[int] = frozenset()
) -> dict[str, tuple[ScalarNode, Node]]:
    """Key → (key node, value node) of a mapping as the converter sees it: the last of
    duplicate keys, and merged (``<<``) keys where the mapping does not set them."""
    index: dict[str, tuple[ScalarNode, Node]] = {}
    merges: list[Node] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        if key_node.tag == _MERGE:
            merges.extend(
                value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            )
        else:
            index[key_node.value] = (key_node, value_node)
    inside = _outer | {id(node)}
    for merged in merges:
        if isinstance(merged, MappingNode) and id(merged) not in inside:
            for name, pair in mapping_index(merged, inside).items():
                index.setdefault(name, pair)
    return index


def locate(
    root: Node, path: YamlPath, cache: dict[int, dict[str, tuple[ScalarNode, Node]]] | None = None
) -> tuple[Node | None, Node]:
    """The (key node, value node) at ``path``; as deep as the path goes when it ends early.

    ``cache`` keeps each mapping's index between calls on the same document.
    """
    key: Node | None = None
    node = root
    for step in path:
        if isinstance(node, MappingNode) and isinstance(step, str):
            if cache is None:
                index = mapping_index(node)
            elif id(node) in cache:
                index = cache[id(node)]
            else:
                index = cache[id(node)] = mapping_index(node)
            if step not in index:
                break
            key, node = index[step]
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            key, node = None, node.value[step]
        else:
            break
    return key, node


# -- spans and expression origins -------------------------------------------------------------


def first_char(span: Span) -> Span:
    """Only the first character of a span: a whole mapping would underline many lines."""
    return Span(span.file, span.line, span.col, span.line, span.col + 1)


def key_span(node: Node, file: str) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def node_span(node: Node, file: str, lines: Sequence[str] | None = None) -> Span:
    """The span of a value; for block scalars, from the indicator to the end of the text."""
    start, end = node.start_mark, node.end_mark
    if isinstance(node, ScalarNode) and node.style in ("|", ">") and lines is not None:
        block, indent = _block(node, lines)
        if block:
            last = block[-1]
            end_col = max(len(lines[last].rstrip()), indent) + 1
            return Span(file, start.line + 1, start.column + 1, last + 1, end_col)
    return Span(file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)


def _block(node: ScalarNode, lines: Sequence[str]) -> tuple[list[int], int]:
    """0-based numbers of the source lines holding a block scalar's text (trailing blank
    lines cut), and the text's indentation: that of its first non-blank line."""
    end = node.end_mark
    last = min(end.line if end.column else end.line - 1, len(lines) - 1)
    numbers = list(range(node.start_mark.line + 1, last + 1))
    while numbers and not lines[numbers[-1]].strip():
        numbers.pop()
    indent = next((len(t) - len(t.lstrip(" ")) for n in numbers if (t := lines[n]).strip()), 0)
    return numbers, indent


_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n", "\\t": "\t", "\\/": "/", "\\ ": " "}
_ESCAPE = re.compile(r"\\[\\\"nt/ ]")


def scalar_origin(node: ScalarNode, file: str, lines: Sequence[str]) -> tuple[str, TextOrigin]:
    """The text to parse for an expression scalar, and where each of its lines sits in the file.

    One-line scalars and literal blocks (``|``) give their YAML value. Scalars that YAML
    folds (``>``, plain or quoted text over several lines) give their source lines joined
    by newlines instead of spaces: the same expression to the parser, but each line keeps
    its own position. Escapes in quoted scalars shift later columns (approximate).
    """
    start, end = node.start_mark, node.end_mark
    style = node.style
    if style in ("|", ">"):
        numbers, indent = _block(node, lines)
        if not numbers:
            return node.value, TextOrigin(file, ((start.line + 1, start.column + 1),))
        if style == "|":
            text = node.value.rstrip("\n")  # the final line break(s) `|` keeps
            first = numbers[0]
            lines_at = range(first + 1, first + text.count("\n") + 2)
            return text, TextOrigin(file, tuple((n, indent + 1) for n in lines_at))
        # Leading blank lines are cut: the parser sees the text from its first line.
        while numbers and not lines[numbers[0]].strip():
            numbers.pop(0)
        folded = "\n".join(lines[n][indent:] for n in numbers)
        return folded, TextOrigin(file, tuple((n + 1, indent + 1) for n in numbers))

    quote = 1 if style in ("'", '"') else 0
    if start.line == end.line or end.line >= len(lines):
        return node.value, TextOrigin(file, ((start.line + 1, start.column + 1 + quote),))
    segments: list[str] = []
    starts: list[tuple[int, int]] = []
    for number in range(start.line, end.line + 1):
        text = lines[number]
        first = start.column + quote if number == start.line else 0
        last = end.column - quote if number == end.line else len(text)
        piece = text[first:last]
        stripped = piece.lstrip(" \t")
        first += len(piece) - len(stripped)
        piece = stripped.rstrip(" \t")
        if style == "'":
            piece = piece.replace("''", "'")
        elif style == '"':
            piece = _ESCAPE.sub(lambda m: _ESCAPES[m.group()], piece.removesuffix("\\"))
        segments.append(piece)
        starts.append((number + 1, first + 1))
    while segments and not segments[-1]:  # a closing quote alone on its line
        segments.pop()
        starts.pop()
    return "\n".join(segments), TextOrigin(file, tuple(starts))


def text_span(text: str, origin: TextOrigin) -> Span:
    """The span of ``text`` placed by ``origin``: first to last character."""
    text_lines = text.rstrip("\n").split("\n")
    last = len(text_lines)
    return origin.span(1, 1, last, len(text_lines[-1]) + 1)
