"""Jinja, always sandboxed and bounded: rule messages and report templates come from
definitions and users, so they must never run code, inject markup, or eat the machine.

Jinja's own sandbox stops code execution, but not work: ``{{ 'x' * 10**9 }}`` takes
gigabytes, ``{{ 9**30000000 }}`` hangs in one C call, nested ``range`` loops run for hours.
:class:`BoundedEnvironment` adds limits (see :class:`Limits`) that hold whatever the
template does:

- a single operation that would build something too big is refused *before* it runs:
  ``*`` and ``**`` on numbers past ``max_int_bits``, strings and lists past ``max_output``
  (``*``, ``+``, ``~``, ``%``/``format`` widths, ``center``/``ljust``/``replace``/``join``
  and the filters that grow their input);
- every loop iteration and every call is a *step*: at most ``max_steps`` per render,
  checked against the time budget ``max_seconds`` as it goes;
- every piece of text produced (literal text of loop and macro bodies, every ``{{ }}``,
  every string built by an operator, filter or method) is charged to ``max_chars``, so
  text captured in ``{% set %}`` blocks or macros is bounded too;
- ``range`` gives at most ``max_range`` numbers; lists, dicts and sets are immutable.

A limit reached raises :class:`RenderLimitError` (a Jinja ``SecurityError``).
"""

from __future__ import annotations

import contextvars
import functools
import re
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_eval_context

from kpiengine.render.terminal import format_value


class RenderLimitError(SecurityError):
    """A template went past one of its limits (size, steps, time, number size)."""


@dataclass(frozen=True)
class Limits:
    """How much work one render may do. Defaults suit a one-sentence rule message."""

    max_output: int = 1_000_000  # characters of any one string or list, and of the result
    max_chars: int = 4_000_000  # characters produced in total (captures counted again)
    max_steps: int = 100_000  # loop iterations and calls
    max_range: int = 10_000  # numbers one range() may give
    max_int_bits: int = 10_000  # about 3 000 decimal digits
    max_seconds: float = 1.0


MESSAGE_LIMITS = Limits()
#: A report renders every row of a run: 100 000 rows with a few loops each.
REPORT_LIMITS = Limits(
    max_output=50_000_000,
    max_chars=100_000_000,
    max_steps=20_000_000,
    max_range=10_000,
    max_int_bits=10_000,
    max_seconds=120.0,
)


@dataclass
class _Budget:
    limits: Limits
    deadline: float
    steps: int = 0
    chars: int = 0
    started: float = field(default_factory=time.monotonic)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise RenderLimitError(
                f"the template takes more than {self.limits.max_steps:,} loop steps and calls"
            )
        if time.monotonic() > self.deadline:
            raise RenderLimitError(
                f"the template takes more than its time budget of {self.limits.max_seconds:g} s"
            )

    def charge(self, count: int) -> None:
        self.chars += count
        if self.chars > self.limits.max_chars:
            raise RenderLimitError(
                f"the template produces more than {self.limits.max_chars:,} characters"
            )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "kpiengine_template_budget", default=None
)


def _size(value: Any, limit: int) -> int:
    """Characters ``str(value)`` would have, or more than ``limit`` once it passes it;
    estimated without building the string (a list of a thousand 1 MB strings is cheap
    to hold and ruinous to print)."""
    total, stack, depth_left = 0, [(value, 0)], 100_000
    while stack and total <= limit and depth_left > 0:
        current, depth = stack.pop()
        depth_left -= 1
        if isinstance(current, str | bytes):
            total += len(current) + 2
        elif isinstance(current, bool) or current is None:
            total += 5
        elif isinstance(current, int):
            total += current.bit_length() * 3 // 10 + 2
        elif isinstance(current, float):
            total += 24
        elif isinstance(current, list | tuple | set | frozenset | range) and depth < 20:
            total += 2 + 2 * len(current)
            if total <= limit and not isinstance(current, range):
                stack.extend((item, depth + 1) for item in current)
        elif isinstance(current, dict) and depth < 20:
            total += 2 + 4 * len(current)
            if total <= limit:
                stack.extend((item, depth + 1) for pair in current.items() for item in pair)
    return total


#: str methods and filters whose integer arguments are sizes of what they build.
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SIZE_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice", "tojson"})


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


_FORMAT_NUMBER = re.compile(r"\d+")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with :class:`Limits` on every render (module docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, limits: Limits, **options: Any) -> None:
        options.setdefault("undefined", StrictUndefined)
        super().__init__(finalize=self._finalize, **options)
        self.limits = limits
        self.globals["range"] = self._range
        self.globals.pop("lipsum", None)  # writes pages of text on request
        for name in list(self.filters):
            self.filters[name] = self._guarded_filter(name, self.filters[name])

    # -- rendering ---------------------------------------------------------------------

    def render_bounded(self, template: Any, context: dict[str, Any]) -> str:
        """Render within the limits; raises :class:`RenderLimitError` past one."""
        limits = self.limits
        budget = _Budget(limits, time.monotonic() + limits.max_seconds)
        token = _BUDGET.set(budget)
        try:
            parts: list[str] = []
            size = 0
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > limits.max_output:
                    raise RenderLimitError(
                        f"the result is longer than {limits.max_output:,} characters"
                    )
                parts.append(chunk)
            return "".join(parts)
        finally:
            _BUDGET.reset(token)

    def add_filter(self, name: str, function: Callable[..., Any]) -> None:
        """Add a filter, bounded like the built-in ones."""
        self.filters[name] = self._guarded_filter(name, function)

    # -- hooks Jinja calls ---------------------------------------------------------------

    def _finalize(self, value: Any) -> Any:
        """Every ``{{ }}`` output: charged, and refused when printing it would be huge."""
        size = _size(value, self.limits.max_output)
        if size > self.limits.max_output:
            raise RenderLimitError(f"a value to print is longer than {self.limits.max_output:,}")
        budget = _BUDGET.get()
        if budget is not None:
            budget.charge(size)
        return value

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self._check_binop(operator, left, right)
        result = self.binop_table[operator](left, right)
        self._charge(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(__obj, "__func__", None) is BoundedEnvironment.kpi_charge:
            return __obj(*args)
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        method = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str | bytes):
            __self._check_string_method(owner, getattr(method, "__name__", ""), args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        __self._charge(result)
        return result

    def kpi_charge(self, literal: int) -> str:
        """Called at the top of every loop and macro body (see :meth:`_generate`)."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
            budget.charge(literal)
        return ""

    @pass_eval_context
    def kpi_concat(self, eval_ctx: Any, items: list[Any]) -> str:
        """The ``~`` operator, refused past ``max_output`` before joining."""
        total = sum(_size(item, self.limits.max_output) for item in items)
        if total > self.limits.max_output:
            raise RenderLimitError(f"`~` would build more than {self.limits.max_output:,} chars")
        result = markup_join(items) if eval_ctx.autoescape else str_join(items)
        self._charge(result)
        return result

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > self.limits.max_range:
            raise RenderLimitError(f"range() may give at most {self.limits.max_range:,} numbers")
        return numbers

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        """Before Python code is generated: charge every loop and macro body as it runs
        (a step, and its literal text), and route ``~`` through :meth:`kpi_concat`."""
        _instrument(source, self)
        return super()._generate(source, *args, **kwargs)

    # -- checks --------------------------------------------------------------------------

    def _charge(self, result: Any) -> None:
        size = _length(result)
        if size > self.limits.max_output:
            raise RenderLimitError(f"a value is longer than {self.limits.max_output:,}")
        budget = _BUDGET.get()
        if budget is not None and size:
            budget.charge(size)

    def _check_binop(self, operator: str, left: Any, right: Any) -> None:
        limits = self.limits
        numbers = all(isinstance(v, int) for v in (left, right))
        if operator == "**" and numbers and right > 0:
            if abs(left) > 1 and right * max(abs(left).bit_length() - 1, 1) > limits.max_int_bits:
                raise RenderLimitError(f"`**` would give a number over {limits.max_int_bits} bits")
        elif operator == "*" and numbers:
            if left.bit_length() + right.bit_length() > limits.max_int_bits:
                raise RenderLimitError(f"`*` would give a number over {limits.max_int_bits} bits")
        elif operator == "*":
            sequence, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(count, int) and _length(sequence) * max(count, 0) > limits.max_output:
                raise RenderLimitError(f"`*` would build more than {limits.max_output:,} items")
        elif operator == "+" and not numbers:
            if _length(left) + _length(right) > limits.max_output:
                raise RenderLimitError(f"`+` would build more than {limits.max_output:,} items")
        elif operator == "%" and isinstance(left, str):
            self._check_percent_format(left, right)

    def _check_percent_format(self, text: str, arguments: Any) -> None:
        for match in _PERCENT_SPEC.finditer(text):
            for number in match.groups():
                self._check_width(number)
        if _size(arguments, self.limits.max_output) > self.limits.max_output:
            raise RenderLimitError(f"`%` would format more than {self.limits.max_output:,} chars")

    def _check_width(self, number: str | None) -> None:
        if number == "*":
            raise RenderLimitError("`*` widths are not allowed in templates")
        if number and int(number) > self.limits.max_output:
            raise RenderLimitError(f"a width over {self.limits.max_output:,} characters")

    def _check_brace_format(self, text: str) -> None:
        try:
            fields = list(string.Formatter().parse(text))
        except ValueError:
            return  # str.format raises the same error, with its own message
        for _, _, spec, _ in fields:
            if spec and "{" in spec:
                raise RenderLimitError("nested `{}` in a format spec are not allowed")
            for number in _FORMAT_NUMBER.findall(spec or ""):
                self._check_width(number)

    def _check_string_method(
        self, owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        limit = self.limits.max_output
        values = [*args, *kwargs.values()]
        sizes = values if name in _PADDING_METHODS else []
        if any(isinstance(v, int) and v > limit for v in sizes):
            raise RenderLimitError(f"`{name}` with a size over {limit:,}")
        if _size(values, limit) > limit:
            raise RenderLimitError(f"`{name}` with arguments over {limit:,} characters")
        if name in ("format", "format_map") and isinstance(owner, str):
            self._check_brace_format(owner)
        elif name == "replace" and len(args) >= 2:
            self._check_replace(owner, args[0], args[1])
        elif name == "expandtabs":
            width = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(width, int) and owner.count("\t") * width + len(owner) > limit:
                raise RenderLimitError(f"`expandtabs` would build more than {limit:,} chars")
        elif name == "join" and args:
            self._check_join(owner, args[0])

    def _check_replace(self, text: Any, old: Any, new: Any) -> None:
        if isinstance(text, str | bytes) and isinstance(old, str | bytes):
            count = text.count(old) if old else len(text) + 1
            if len(text) + count * _length(new) > self.limits.max_output:
                raise RenderLimitError(
                    f"`replace` would build more than {self.limits.max_output:,}"
                )

    def _check_join(self, separator: Any, items: Any) -> None:
        if isinstance(items, list | tuple | set | frozenset | dict | range):
            total = _size(items, self.limits.max_output) + _length(separator) * len(items)
            if total > self.limits.max_output:
                raise RenderLimitError(f"`join` would build more than {self.limits.max_output:,}")

    def _guarded_filter(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """A filter that refuses inputs past the limits and charges what it builds."""
        environment = self

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            budget = _BUDGET.get()
            if budget is not None:
                budget.step()
            environment._check_filter(name, args, kwargs)
            result = function(*args, **kwargs)
            environment._charge(result)
            return result

        return guarded

    def _check_filter(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        limit = self.limits.max_output
        # Jinja passes the context, eval context or environment first to some filters.
        args = tuple(a for a in args if not _is_jinja_internal(a))
        value, rest = (args[0], args[1:]) if args else (None, ())
        options = [*rest, *kwargs.values()]
        sizes = options if name in _SIZE_FILTERS else []
        if any(isinstance(o, int) and not isinstance(o, bool) and o > limit for o in sizes):
            raise RenderLimitError(f"filter `{name}` with a size over {limit:,}")
        if _size(value, limit) > limit or _size(options, limit) > limit:
            raise RenderLimitError(f"filter `{name}` on more than {limit:,} characters")
        text = value if isinstance(value, str) else ""
        if name == "format":
            self._check_percent_format(text, options)
        elif name == "replace" and len(rest) >= 2:
            self._check_replace(text, rest[0], rest[1])
        elif name in ("indent", "wordwrap", "tojson", "center", "join", "sum", "batch", "slice"):
            self._check_growth(name, value, text, rest, kwargs)

    def _check_growth(
        self, name: str, value: Any, text: str, rest: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Filters whose output can be much bigger than their input."""
        limit = self.limits.max_output
        first = rest[0] if rest else None
        lines = text.count("\n") + 1
        if name == "indent":
            width = kwargs.get("width", first if first is not None else 4)
            if _length(width) * lines + (width if isinstance(width, int) else 0) * lines > limit:
                raise RenderLimitError(f"`indent` would build more than {limit:,} characters")
        elif name == "wordwrap":
            width = kwargs.get("width", first if first is not None else 79)
            wrap = kwargs.get("wrapstring", rest[2] if len(rest) > 2 else "\n")
            pieces = len(text) // max(int(width) if isinstance(width, int) else 1, 1) + 1
            if len(text) + pieces * _length(wrap) > limit:
                raise RenderLimitError(f"`wordwrap` would build more than {limit:,} characters")
        elif name == "tojson":
            indent = kwargs.get("indent", first)
            if isinstance(indent, int) and indent > 16:
                raise RenderLimitError("`tojson` indent may be at most 16")
        elif name == "join":
            self._check_join(kwargs.get("d", first or ""), value)
        elif name == "sum":
            start = kwargs.get("start", rest[1] if len(rest) > 1 else 0)
            if _length(start) or isinstance(start, list | tuple):
                items = value if isinstance(value, list | tuple) else []
                if sum(_length(i) for i in items) + _length(start) > limit:
                    raise RenderLimitError(f"`sum` would build more than {limit:,} items")
        elif name in ("batch", "slice"):
            pass  # their sizes are checked as options above; they never grow the data
        # center: its width is an option, checked above


def _is_jinja_internal(value: Any) -> bool:
    from jinja2.environment import Environment
    from jinja2.nodes import EvalContext
    from jinja2.runtime import Context

    return isinstance(value, Environment | EvalContext | Context)


# -- code instrumentation -----------------------------------------------------------------

_BODIES = (nodes.For, nodes.Macro, nodes.CallBlock)


def _instrument(template: nodes.Template, environment: Any) -> None:
    for node in list(template.find_all(_BODIES)):
        charge = nodes.ExprStmt(
            nodes.Call(
                nodes.EnvironmentAttribute("kpi_charge"),
                [nodes.Const(_direct_literal(node.body))],
                [],
                None,
                None,
            )
        )
        charge.set_lineno(node.lineno)
        charge.set_environment(environment)
        node.body.insert(0, charge)
    for concat in list(template.find_all(nodes.Concat)):
        call = nodes.Call(
            nodes.EnvironmentAttribute("kpi_concat"), [nodes.List(concat.nodes)], [], None, None
        )
        call.set_lineno(concat.lineno)
        call.set_environment(environment)
        _replace(template, concat, call)


def _direct_literal(body: list[nodes.Node]) -> int:
    """Characters of literal text a body writes itself (nested loops charge their own)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, _BODIES):
            continue
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            total += len(node.value)
        stack.extend(node.iter_child_nodes())
    return total


def _replace(root: nodes.Node, old: nodes.Node, new: nodes.Node) -> None:
    for parent in root.find_all(nodes.Node):
        for name, value in parent.iter_fields():
            if value is old:
                setattr(parent, name, new)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    if item is old:
                        value[index] = new
    if root is old:  # pragma: no cover - a template is never a Concat
        raise AssertionError


# -- rule messages -------------------------------------------------------------------------


def add_filters(environment: Any, currency: str) -> None:
    add = getattr(environment, "add_filter", None) or environment.filters.__setitem__
    add("percent", lambda v: format_value(v, "percent", currency))
    add("currency", lambda v: format_value(v, "currency", currency))
    add("number", lambda v: format_value(v, "number", currency))
    add("days", lambda v: format_value(v, "days", currency))


@lru_cache(maxsize=4)
def message_environment(currency: str) -> BoundedEnvironment:
    environment = BoundedEnvironment(MESSAGE_LIMITS, autoescape=False)
    add_filters(environment, currency)
    return environment


@lru_cache(maxsize=512)
def _compiled(currency: str, template: str) -> Any:
    return message_environment(currency).from_string(template)


#: Templates that ran out of time once: later alerts of the same rule fail at once, so a
#: slow message costs one time budget per run, not one per alert.
_TIMED_OUT: set[str] = set()


def render_message(template: str, values: dict[str, Any], currency: str = "EUR") -> str:
    """The message, or — when the template fails for any reason (an error in it, a value
    it cannot handle, a limit) — the template's text and why, so the alert still says
    which rule fired and the run goes on."""
    try:
        if template in _TIMED_OUT:
            raise RenderLimitError("the template ran out of time on an earlier alert")
        compiled = _compiled(currency, template)
        return message_environment(currency).render_bounded(compiled, values)
    except Exception as error:
        if isinstance(error, RenderLimitError) and "time budget" in str(error):
            _TIMED_OUT.add(template)
        return f"{_shorten(template)} (message template error: {describe_error(error)})"


def describe_error(error: BaseException) -> str:
    """One line saying why a template failed, without Python internals."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    kind = type(error).__name__
    if isinstance(error, RenderLimitError):
        return f"limit reached: {text}"
    if isinstance(error, RecursionError):
        return "the template nests or recurses too deeply"
    if isinstance(error, MemoryError):
        return "out of memory"
    return f"{kind}: {text}" if text else kind


def _shorten(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def iter_filters(environment: Any) -> Iterator[str]:
    """The filter names a template may use."""
    return iter(environment.filters)
