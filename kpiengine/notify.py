"""Alert notifiers for ``kpi check``: console, JSON lines file, HTTP webhook.

A notifier has a ``name`` and ``notify(alerts, options)``; more come through the
``kpiengine_notifiers`` hook. The webhook retries with exponential backoff and bounds the
total time, so a dead endpoint can never block a run forever.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpiengine.errors import KpiError


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
    for all attempts together (default 30 s). Retries on connection errors, timeouts and
    5xx answers; a 4xx answer is final.
    """

    name: str = "webhook"

    def notify(self, alerts: Sequence[Any], options: Mapping[str, Any]) -> None:
        url = options.get("target")
        if not url or not str(url).startswith(("http://", "https://")):
            raise NotifierError("the webhook notifier needs a URL: --notify webhook=https://...")
        timeout = float(options.get("timeout", 5))
        retries = int(options.get("retries", 3))
        delay = float(options.get("backoff", 0.5))
        deadline = time.monotonic() + float(options.get("deadline", 30))
        body = json.dumps(alerts_payload(alerts, options.get("project", "")), default=str).encode(
            "utf-8"
        )
        last_error = "no attempt made"
        for attempt in range(retries + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            request = urllib.request.Request(
                str(url),
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "kpiengine"},
            )
            try:
                with urllib.request.urlopen(request, timeout=min(timeout, remaining)) as answer:
                    if 200 <= answer.status < 300:
                        return
                    last_error = f"HTTP {answer.status}"
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
                if 400 <= error.code < 500:
                    break  # the endpoint refuses this request: retrying will not help
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                last_error = str(getattr(error, "reason", error))
            if attempt < retries:
                time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                delay *= 2
        raise NotifierError(f"webhook {url} failed after {attempt + 1} attempt(s): {last_error}")


BUILTIN_NOTIFIERS = (ConsoleNotifier(), JsonLinesNotifier(), WebhookNotifier())


def find_notifier(name: str) -> Any:
    from kpiengine.plugins import find_named

    return find_named("kpiengine_notifiers", name, "notifier")
