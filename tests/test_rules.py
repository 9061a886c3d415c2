"""Rules: conditions with SQL null logic, targets, previous, standalone rule files,
sandboxed messages, statuses, and `kpi check` exit codes and notifiers."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time

import pytest

import kpiengine
from kpiengine.cli import main
from kpiengine.rules.notify import NotifierError, WebhookNotifier
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files

RULE_FILES = {
    **SALES_FILES,
    "kpis/ruled.yaml": """
        kpis:
          - kpi: ruled_win_rate
            source: opportunities
            expression: count(where stage = 'won') / count(where stage in ('won', 'lost'))
            unit: percent
            target: {value: 0.7, direction: higher}
            rules:
              - name: below_target
                when: value < target
                severity: warning
                message: "Win rate {{ value | percent }} is under {{ target | percent }}"
              - name: collapse
                when: value < previous / 2
                severity: critical
                message: "Win rate fell from {{ previous | percent }} to {{ value | percent }}"
          - kpi: ruled_revenue
            source: opportunities
            expression: sum(amount where stage = 'won')
            unit: currency
            rules:
              - name: no_revenue
                when: value is null
                severity: info
                message: "No revenue in {{ period }}"
              - name: sneaky
                when: value > 1000000
                severity: critical
                message: "{{ ''.__class__.__mro__ }}"
        """,
    "rules/ratio.yaml": """
        rule: spend_per_deal_high
        when: spend / deals > 200
        severity: warning
        message: "Spend per deal is {{ (spend / deals) | number }} in {{ period }}"
        """,
}
# Months (closed_at): Jan win rate 2/3, revenue 110, 3 deals, spend 1000; Feb nothing, spend
# null; Mar 2/3, revenue 200, 3 deals, spend 900; Apr 1/1, revenue 70, 1 deal; May nothing.


@pytest.fixture
def env(tmp_path):
    root = write_files(tmp_path / "defs", RULE_FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url


def alerts_of(result):
    return sorted(
        (a.rule, a.period.isoformat() if a.period else None, a.severity) for a in result.alerts
    )


def test_rules_fire_with_null_logic_and_previous(env):
    root, url = env
    project = kpiengine.load(root)
    with kpiengine.connect(url) as connection:
        result = project.run(
            ["ruled_win_rate", "ruled_revenue"], connection, start="2024-01-01", end="2024-06-01"
        )
    assert alerts_of(result) == [
        ("below_target", "2024-01-01", "warning"),  # 0.667 < 0.7
        ("below_target", "2024-03-01", "warning"),
        ("no_revenue", "2024-02-01", "info"),
        ("no_revenue", "2024-05-01", "info"),
    ]  # Feb/May: value null → `value < target` is not true; April 1.0 meets the target
    statuses = {(r.kpi, r.period.month): s for r, s in result.statuses.items()}
    assert statuses[("ruled_win_rate", 1)] == "warning"
    assert statuses[("ruled_win_rate", 4)] == "ok"
    assert statuses[("ruled_revenue", 2)] == "info"
    message = next(a.message for a in result.alerts if a.rule == "below_target")
    assert message == "Win rate 66.7 % is under 70.0 %"


def test_previous_in_rules(tmp_path):
    files = dict(RULE_FILES)
    rows = [
        *OPPORTUNITIES[1],
        ("o9", "a1", "emea", "lost", 5.0, "2024-04-01 00:00:00", "2024-04-20 00:00:00"),
        ("o10", "a1", "emea", "lost", 5.0, "2024-04-01 00:00:00", "2024-04-21 00:00:00"),
        ("o11", "a1", "emea", "lost", 5.0, "2024-04-01 00:00:00", "2024-04-22 00:00:00"),
    ]
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": (OPPORTUNITIES[0], rows), "accounts": ACCOUNTS, "spend": SPEND},
    )
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    with kpiengine.connect(url) as connection:
        result = project.run(["ruled_win_rate"], connection, start="2024-03-01", end="2024-05-01")
    # March 2/3, April 1/4: 0.25 < 0.667 / 2 → the critical rule fires in April only
    assert ("collapse", "2024-04-01", "critical") in alerts_of(result)
    assert ("collapse", "2024-03-01", "critical") not in alerts_of(result)


def test_standalone_rule_file(env):
    root, url = env
    project = kpiengine.load(root)
    with kpiengine.connect(url) as connection:
        result = project.run(["spend", "deals"], connection, start="2024-01-01", end="2024-06-01")
    fired = [a for a in result.alerts if a.rule == "spend_per_deal_high"]
    # Jan 1000/3 = 333 > 200, Mar 900/3 = 300 > 200; May 50/0 is null: not true
    assert [(a.period.isoformat(), a.kpi) for a in fired] == [
        ("2024-01-01", None),
        ("2024-03-01", None),
    ]
    assert fired[0].message == "Spend per deal is 333.3 in 2024-01-01"


def test_message_templates_are_sandboxed(tmp_path):
    project = kpiengine.load(write_files(tmp_path / "defs", RULE_FILES))
    rows = [("o1", "a1", "emea", "won", 2_000_000.0, "2024-01-02 00:00:00", "2024-01-10 00:00:00")]
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": (OPPORTUNITIES[0], rows), "accounts": ACCOUNTS, "spend": SPEND},
    )
    with kpiengine.connect(url) as connection:
        result = project.run(["ruled_revenue"], connection, start="2024-01-01", end="2024-02-01")
    sneaky = next(a for a in result.alerts if a.rule == "sneaky")
    assert "<class" not in sneaky.message  # the sandbox refused the attribute
    assert "template error" in sneaky.message and "unsafe" in sneaky.message


def test_rules_are_checked_statically(tmp_path, capsys):
    files = {
        **SALES_FILES,
        "rules/bad.yaml": "rule: bad\nwhen: revenu > 3\nseverity: info\n",
        "kpis/bad.yaml": "kpi: t\nsource: opportunities\nexpression: count()\nrules:\n"
        "  - name: r\n    when: value < target\n    severity: warning\n",
    }
    root = write_files(tmp_path / "defs", files)
    assert main(["validate", str(root), "--format", "json"]) == 1
    found = {
        (d["code"], d["file"].rsplit("/", 1)[-1], d["line"])
        for d in json.loads(capsys.readouterr().out)["diagnostics"]
    }
    assert ("KPI302", "bad.yaml", 2) in found  # unknown KPI `revenu` in the rule file
    assert any(code == "KPI302" and line == 6 for code, _, line in found)  # no target


# -- kpi check ----------------------------------------------------------------------------


def check(capsys, env, *args):
    root, url = env
    code = main(["check", "--project", str(root), "--connector", url, *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_check_exit_codes(env, capsys):
    args = ["ruled_win_rate", "--from", "2024-01-01", "--to", "2024-02-01"]
    code, out, _ = check(capsys, env, *args)
    assert code == 0  # a warning fired, default --fail-on is critical
    assert "WARNING  ruled_win_rate 2024-01-01: Win rate 66.7 % is under 70.0 %" in out
    code, _, _ = check(capsys, env, *args, "--fail-on", "warning")
    assert code == 1
    code, _, err = check(capsys, env, *args, "--fail-on", "fatal")
    assert code == 2
    code, _, err = check(capsys, env, *args, "--notify", "pager")
    assert code == 2 and "unknown notifier `pager`" in err


def test_check_default_range_is_last_complete_period(env, capsys):
    code, _, err = check(capsys, env)
    assert code == 0  # today's last complete month has no data: nothing fires but info
    assert "alert(s)" in err


def test_check_sees_previous_before_the_range(env, capsys, tmp_path):
    # the first checked period still has its previous value (one period is read before)
    root, url = env
    project = kpiengine.load(root)
    with kpiengine.connect(url) as connection:
        result = project.check(["ruled_win_rate"], connection, start="2024-04-01", end="2024-05-01")
    assert [r.period for r in result.rows] == [dt.date(2024, 4, 1)]


def test_jsonl_notifier(env, capsys, tmp_path):
    target = tmp_path / "alerts.jsonl"
    code, _, _ = check(
        capsys,
        env,
        "ruled_win_rate",
        "--from",
        "2024-01-01",
        "--to",
        "2024-04-01",
        "--notify",
        f"jsonl={target}",
    )
    assert code == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(a["rule"], a["period"], a["severity"]) for a in lines] == [
        ("below_target", "2024-01-01", "warning"),
        ("below_target", "2024-03-01", "warning"),
    ]
    assert lines[0]["value"] == pytest.approx(2 / 3) and lines[0]["target"] == 0.7


# -- webhook, against a server on 127.0.0.1 -----------------------------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    received: list[dict] = []
    delay = 0.0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay)
        code = type(self).answers.pop(0) if type(self).answers else 200
        type(self).received.append(json.loads(body))
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    _Hook.answers, _Hook.received, _Hook.delay = [], [], 0.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook
    server.shutdown()
    server.server_close()


def test_webhook_posts_alerts(env, capsys, hook):
    url, handler = hook
    code, _, _ = check(
        capsys,
        env,
        "ruled_win_rate",
        "--from",
        "2024-01-01",
        "--to",
        "2024-02-01",
        "--notify",
        f"webhook={url}",
    )
    assert code == 0
    assert [a["rule"] for a in handler.received[0]["alerts"]] == ["below_target"]


def test_webhook_retries_with_backoff(hook):
    url, handler = hook
    handler.answers = [500, 503, 200]
    started = time.monotonic()
    WebhookNotifier().notify([], {"target": url, "retries": 3, "backoff": 0.05})
    assert len(handler.received) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # waited 0.05 then 0.1


def test_webhook_gives_up_on_client_errors(hook):
    url, handler = hook
    handler.answers = [404, 200]
    with pytest.raises(NotifierError, match="HTTP 404"):
        WebhookNotifier().notify([], {"target": url, "retries": 3, "backoff": 0.01})
    assert len(handler.received) == 1


def test_webhook_timeout_never_blocks_forever(hook):
    url, handler = hook
    handler.delay = 2.0
    started = time.monotonic()
    with pytest.raises(NotifierError, match="failed after"):
        WebhookNotifier().notify(
            [], {"target": url, "timeout": 0.2, "retries": 5, "backoff": 0.05, "deadline": 1.0}
        )
    assert time.monotonic() - started < 1.6


def test_webhook_failure_is_exit_3(env, capsys):
    code, _, err = check(
        capsys,
        env,
        "ruled_win_rate",
        "--from",
        "2024-01-01",
        "--to",
        "2024-02-01",
        "--notify",
        "webhook=http://127.0.0.1:9/none",
        "--notify-option",
        "retries=0",
    )
    assert code == 3
    assert "notifier error" in err
