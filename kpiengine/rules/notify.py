"""Alert notifiers for ``kpi check``: console, JSON lines file, HTTP webhook.

A notifier has a ``name`` and ``notify(alerts, options)``; more come through the
``kpiengine_notifiers`` hook. The webhook retries with exponential backoff and bounds the
total time, so a dead endpoint can never block a run forever.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpiengine.errors import KpiError, UsageError

if TYPE_CHECKING:
    from kpiengine.plugins.manager import PluginHost


class NotifierError(KpiError):
    """A notifier could not deliver (exit 3 unless rules also fired)."""

    exit_code = 3


def alerts_payload(alerts: Sequence[Any], project: str = "") -> dict[str, Any]:
    return {"project": project, "alerts": [a.to_dict() for a in alerts]}


@dataclass(frozen=True)
class ConsoleNotifier:
    """One line per alert on standard output: severity, KPI or rule, period, message."""

    name: str = "console"

    def notify(self, alerts: Sequence[Any], options: Mapping[str, Any]) -> None:
        stream = options.get("stream") or sys.stdout
        for alert in alerts:
            where = " ".join(f"{k}={v}" for k, v in alert.dimensions)
            period = alert.period.isoformat() if alert.period else "all"
            subject = alert.kpi or alert.rule
            line = f"{alert.severity.upper():8} {subject} {period}"
            line += f" [{where}]" if where else ""
            stream.write(f"{line}: {alert.message}\n")


@dataclass(frozen=True)
class JsonLinesNotifier:
    """Appends one JSON object per alert to the file given as the target."""

    name: str = "jsonl"

    def notify(self, alerts: Sequence[Any], options: Mapping[str, Any]) -> None:
        target = options.get("target")
        if not target:
            raise NotifierError("the jsonl notifier needs a file: --notify jsonl=alerts.jsonl")
        lines = "".join(json.dumps(a.to_dict(), default=str) + "\n" for a in alerts)
        try:
            with Path(target).open("a", encoding="utf-8") as handle:
                handle.write(lines)
        except OSError as error:
            raise NotifierError(f"cannot write alerts to {target}: {error}") from error


@dataclass(frozen=True)
class WebhookNotifier:
    """POSTs ``{"project": ..., "alerts": [...]}`` as JSON to the target URL.

    Options: ``timeout`` per attempt (seconds, default 5), ``retries`` after the first
    attempt (default 3), ``backoff`` first delay (default 0.5 s, doubling), ``deadline``
    for all attempts together (default 30 s). Both times are hard: an endpoint that
    answers slowly, even one byte at a time, is cut off when they run out. Retries on
    connection errors, timeouts and 5xx answers; a 4xx or 3xx answer is final (redirects
    are not followed: the alerts go to the URL given or nowhere). URLs are printed
    without credentials and without their path, which often holds a secret token.
    """

    name: str = "webhook"

    def check_options(self, options: Mapping[str, Any]) -> WebhookOptions:
        """The options, or a :class:`UsageError` naming the bad one (before any work)."""
        return WebhookOptions.parse(options)

    def notify(self, alerts: Sequence[Any], options: Mapping[str, Any]) -> None:
        settings = self.check_options(options)
        body = json.dumps(alerts_payload(alerts, options.get("project", "")), default=str).encode(
            "utf-8"
        )
        deadline = time.monotonic() + settings.deadline
        delay = settings.backoff
        last_error, attempts = "no attempt made", 0
        for attempt in range(settings.retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempts += 1
            status, last_error = _post_within(settings.url, body, min(settings.timeout, remaining))
            if status is not None and 200 <= status < 300:
                return
            if status is not None and status < 500:
                break  # a 3xx or 4xx: the endpoint refuses this request, retrying won't help
            if attempt < settings.retries:
                time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                delay *= 2
        raise NotifierError(
            f"webhook {redact_url(settings.url)} failed after {attempts} attempt(s): {last_error}"
        )


@dataclass(frozen=True)
class WebhookOptions:
    url: str
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    deadline: float = 30.0

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> WebhookOptions:
        url = str(options.get("target") or "")
        if not url:
            raise UsageError("the webhook notifier needs a URL: --notify webhook=https://...")
        check_url(url)
        return cls(
            url,
            _number(options, "timeout", 5.0, 0.001, 3600.0),
            int(_number(options, "retries", 3, 0, 100, whole=True)),
            _number(options, "backoff", 0.5, 0.0, 3600.0),
            _number(options, "deadline", 30.0, 0.001, 86400.0),
        )


def _number(
    options: Mapping[str, Any],
    key: str,
    default: float,
    low: float,
    high: float,
    whole: bool = False,
) -> float:
    text = options.get(key, default)
    kind = "a whole number" if whole else "a number of seconds"
    try:
        value = int(str(text)) if whole else float(text)
    except (TypeError, ValueError):
        raise UsageError(f"webhook option {key}={text!s} is not {kind}") from None
    if not (low <= value <= high):  # also refuses nan
        raise UsageError(f"webhook option {key}={text!s} must be from {low:g} to {high:g}")
    return value


def check_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host (a usage error)."""
    shown = redact_url(url)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UsageError(f"webhook URL {shown} has spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise UsageError(f"webhook URL {shown} is malformed: {error}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UsageError(
            f"webhook URL {shown} must start with http:// or https://, not `{parts.scheme}:`"
        )
    if not parts.hostname:
        raise UsageError(f"webhook URL {shown} has no host")


def redact_url(url: str) -> str:
    """``https://user:secret@hooks.example.com/T000/B000/XXXX`` → ``https://hooks.example.com/…``:
    no credentials, no path or query (Slack-style webhooks carry their token there)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    if not parts.scheme or not host:
        return "<malformed URL>"
    if ":" in host:
        host = f"[{host}]"
    rest = "/…" if parts.path.strip("/") or parts.query or parts.fragment else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer (a failure), never a new request somewhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post_within(url: str, body: bytes, seconds: float) -> tuple[int | None, str]:
    """POST, cut off after ``seconds`` whatever the server does: ``(status, error)``.

    The request runs in a thread; the socket's own timeout only bounds each read, so a
    server sending one byte a second could hold it forever. When time is up, the
    connection is shut down from here, which ends the thread's blocked read."""
    connections: list[http.client.HTTPConnection] = []
    outcome: dict[str, Any] = {}

    def connection_class(base: type) -> Any:
        def make(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            connection = base(host, **kwargs)
            connections.append(connection)
            return connection

        return make

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(connection_class(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(
                connection_class(http.client.HTTPSConnection), req, context=self._context
            )

    opener = urllib.request.build_opener(_NoRedirects, Http, Https)
    url, headers = _credentials_as_header(url)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "kpiengine", **headers},
    )

    def attempt() -> None:
        try:
            with opener.open(request, timeout=seconds) as answer:
                outcome["status"] = answer.status
        except urllib.error.HTTPError as error:
            outcome["status"] = error.code
            error.close()
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            outcome["error"] = str(getattr(error, "reason", None) or error or type(error).__name__)

    worker = threading.Thread(target=attempt, name="kpiengine-webhook", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for connection in connections:
            _shut(connection)
        worker.join(1.0)
        return None, f"no complete answer within {seconds:.3g} s"
    status = outcome.get("status")
    if status is not None:
        return status, f"HTTP {status}" + (
            " (redirects are not followed)" if 300 <= status < 400 else ""
        )
    return None, outcome.get("error", "no answer")


def _credentials_as_header(url: str) -> tuple[str, dict[str, str]]:
    """``https://user:pass@host/...`` → the URL without them and a Basic auth header
    (urllib would take ``user:pass@host`` for a host name)."""
    import base64

    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, {}
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), {
        "Authorization": f"Basic {token}"
    }


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


BUILTIN_NOTIFIERS = (ConsoleNotifier(), JsonLinesNotifier(), WebhookNotifier())


def find_notifier(name: str, plugins: PluginHost | None = None) -> Any:
    """The notifier called ``name`` among ``plugins``' (the project's host; by default the
    process's: built-ins and installed plugins)."""
    from kpiengine.plugins.manager import default_host

    return (plugins or default_host()).find_named("kpiengine_notifiers", name, "notifier")
