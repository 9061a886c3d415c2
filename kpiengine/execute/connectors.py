"""Connector contract and URL dispatch.

A connector is what ``kpiengine_connectors`` returns: a URL scheme, the registered
dialect its SQL is written in (``kpiengine_dialects``), and ``open(url)``. The opened
connection only reads: connectors open the warehouse read-only wherever the engine allows
it (SPEC §5). The contracts themselves (:class:`~kpiengine.contracts.Connector`,
:class:`~kpiengine.contracts.Connection`) live in :mod:`kpiengine.contracts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kpiengine.contracts import Connection, Connector
from kpiengine.errors import UsageError

__all__ = [
    "ClosingConnection",
    "Connection",
    "Connector",
    "ConnectorSpec",
    "connect",
    "find_connector",
    "path_of",
    "redact_url",
    "scheme_of",
]


class ClosingConnection:
    """Base class giving connections ``with`` support; subclasses define ``close``."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ClosingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ConnectorSpec:
    """A :class:`~kpiengine.contracts.Connector`: ``dialect`` is a registered dialect's
    name (a built-in one, or one a plugin adds through ``kpiengine_dialects``)."""

    scheme: str
    dialect: str
    open: Callable[[str], Connection]
    description: str = ""
    plugin: str = "builtin"


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise UsageError(
            f"`{url}` is not a connector URL; expected e.g. duckdb:///warehouse.duckdb, "
            "sqlite:///file.db, postgresql://user@host:5432/db or files:///dir"
        )
    return scheme.lower()


def find_connector(url: str, specs: Sequence[Connector] | None = None) -> Connector:
    scheme = scheme_of(url)
    if specs is None:  # the process's plugins; a project's host passes its own specs
        from kpiengine.plugins.manager import default_host

        return default_host().find_connector(url)
    for spec in specs:
        if spec.scheme == scheme:
            return spec
    known = ", ".join(sorted(s.scheme for s in specs))
    raise UsageError(
        f"no connector for `{scheme}://` (installed: {known}); "
        "install the plugin that provides it, e.g. `pip install ./plugins/postgres`"
    )


def connect(url: str) -> Connection:
    """Open a connection for ``url`` through the connector plugin that owns its scheme,
    among the process's plugins (a project's: ``KpiProject.connect``)."""
    return find_connector(url).open(url)


def path_of(url: str) -> str:
    """The path of a SQLAlchemy-style URL: ``x:///rel/path`` is relative, ``x:////abs`` absolute."""
    rest = url.split("://", 1)[1]
    path = rest[1:] if rest.startswith("/") else rest
    return path.split("?", 1)[0]


#: ``scheme://user:secret@``; the secret runs to the last ``@`` before the query, so that
#: an unencoded ``/`` or ``@`` in a password is hidden too (over-hiding is harmless)
#: (anchored, and keys start after a separator: linear time on a megabyte-long URL)
_USERINFO_PASSWORD = re.compile(r"^(?P<head>[^/?#]*?://[^/?#@:]*):(?P<secret>[^?#]*)@")
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"(?:^|(?<=[&;]))(?P<key>[^&?#=;]+)=(?P<value>[^&#;]*)")


def redact_url(url: str) -> str:
    """``url`` fit to print: the password of ``user:password@`` and the values of query
    options that hold a secret (``password=``, ``sslpassword=``, ``token=``, ``*key*``...)
    become ``***``. Everything else stays, so that the user still sees what was wrong.

    Messages must never carry a password (SPEC §5, docs/security.md): every connector
    echoes a URL through this.
    """
    text = _USERINFO_PASSWORD.sub(r"\g<head>:***@", url)
    base, sep, query = text.partition("?")
    if not sep:
        return text

    def hide(match: re.Match[str]) -> str:
        key = match["key"]
        return f"{key}=***" if _SECRET_KEY.search(key) else match.group(0)

    return base + sep + _QUERY_PAIR.sub(hide, query)
