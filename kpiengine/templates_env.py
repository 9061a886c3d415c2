"""Jinja, always sandboxed: rule messages and report templates come from definitions and
users, so they must never run code or inject markup."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from kpiengine.present import format_value


@lru_cache(maxsize=4)
def message_environment(currency: str) -> Any:
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(autoescape=False)
    add_filters(environment, currency)
    return environment


def add_filters(environment: Any, currency: str) -> None:
    environment.filters["percent"] = lambda v: format_value(v, "percent", currency)
    environment.filters["currency"] = lambda v: format_value(v, "currency", currency)
    environment.filters["number"] = lambda v: format_value(v, "number", currency)
    environment.filters["days"] = lambda v: format_value(v, "days", currency)


def render_message(template: str, values: dict[str, Any], currency: str = "EUR") -> str:
    from jinja2 import TemplateError

    try:
        return message_environment(currency).from_string(template).render(**values)
    except TemplateError as error:
        return f"{template} (message template error: {error})"
