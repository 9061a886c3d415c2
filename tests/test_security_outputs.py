"""Issue 10, outputs: bounded template rendering (rule messages and report templates),
static checks of messages, a webhook that cannot be held, redirected or leak its URL, safe
Markdown and CSV, and report files with the user's permissions, written whole or not at all.

Every attack goes through the command a user runs (`kpi check`, `kpi report`,
`kpi validate`); the hangs and memory bombs run in a subprocess, bounded in time and
memory, so a regression fails instead of taking the machine down."""

from __future__ import annotations

import csv
import http.server
import io
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kpiengine.cli import main
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files

# -- rule messages: every failure is a per-rule error, every attack is bounded ------------

ATTACKS = {
    "nested_range": (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "loop steps",
    ),
    "big_range": ("{% for i in range(100000) %}{% endfor %}", "range() may give at most"),
    "string_bomb": ("{{ 'x' * 10**9 }}", "`*` would build"),
    "power_bomb": ("{{ 9**30000000 }}", "`**` would give a number"),
    "concat_bomb": (
        "{% set s = 'xxxxxxxxxx' %}"
        + "{% set s = s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s %}" * 7
        + "{{ s | length }}",
        "`~` would build",
    ),
    "macro_bomb": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}",
        "loop steps",
    ),
    "pad_bomb": ("{{ 'x' | center(999999999) }}{{ 'x'.ljust(999999999) }}", "size over"),
    "format_bomb": ("{{ '{:>999999999}'.format(1) }}", "width over"),
    "percent_bomb": ("{{ '%0999999999d' % 1 }}", "width over"),
    "join_bomb": ("{{ (['y' * 900000] * 1000) | join }}", "on more than"),
    "print_bomb": ("{{ ['y' * 900000] * 1000 }}", "a value to print is longer"),
    "hoard": (
        "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
        "{% set ns.l = ns.l + ['x' * 900000] %}{% endfor %}{{ ns.l | length }}",
        "produces more than",
    ),
    "division": ("{{ value / 0 }}", "ZeroDivisionError"),
    "type_error": ("{{ value + 'x' }}", "TypeError"),
    "mutation": ("{{ [].pop() }}", "unsafe"),
    "undefined_attribute": ("{{ value.nope }}", "has no attribute 'nope'"),
    "escape": ("{{ ''.__class__.__mro__ }}", "unsafe"),
}


def _rules_project(tmp_path: Path, messages: dict[str, str]) -> tuple[Path, str]:
    rules = "".join(
        f"  - name: {name}\n    when: value >= 0\n    severity: info\n"
        f"    message: {json.dumps(message)}\n"
        for name, message in messages.items()
    )
    text = "kpi: attacked\nsource: opportunities\nexpression: count()\nrules:\n" + rules
    files = {**SALES_FILES, "kpis/attacked.yaml": text}
    root = write_files(tmp_path / "defs", files)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url


def _kpi(*args: str, limit_mb: int = 1500, timeout: float = 120) -> tuple[int, str, str, float]:
    """`kpi ...` in a subprocess with an address-space cap: (exit, out, err, peak MB)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb * 2**20, limit_mb * 2**20))

    # the child's own high-water mark (VmHWM starts afresh at exec, unlike ru_maxrss,
    # which Linux carries over from the forking pytest process)
    run = (
        "import runpy, sys\n"
        "sys.argv = ['kpi', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('kpiengine', run_name='__main__')\n"
        "finally:\n"
        "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "    print('VmHWM', hwm[0].split()[1], file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", run, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap,
        env={**os.environ, "NO_COLOR": "1"},
    )
    marks = [line for line in done.stderr.splitlines() if line.startswith("VmHWM ")]
    peak = int(marks[-1].split()[1]) / 1024 if marks else 0.0
    err = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("VmHWM "))
    return done.returncode, done.stdout, err, peak


def test_message_attacks_are_bounded_per_rule_errors(tmp_path):
    root, url = _rules_project(tmp_path, {name: text for name, (text, _) in ATTACKS.items()})
    args = ["check", "attacked", "--project", str(root), "--connector", url]
    started = time.monotonic()
    code, out, err, peak = _kpi(*args, "--from", "2024-01-01", "--to", "2024-03-01")
    elapsed = time.monotonic() - started
    assert "internal error" not in err and "Traceback" not in out + err, err
    assert code == 0, err  # info alerts only: per SPEC §6, exit 0 below --fail-on
    assert elapsed < 60 and peak < 1000, (elapsed, peak)
    lines = [line for line in out.splitlines() if line.startswith("INFO")]
    for name, (_, reason) in ATTACKS.items():
        mine = [line for line in lines if f": {ATTACKS[name][0][:40]}" in line]
        assert len(mine) == 2, (name, lines)  # January and February both fire
        assert all("message template error" in line and reason in line for line in mine), (
            name,
            mine,
        )


def test_message_errors_keep_check_exit_codes(tmp_path, capsys):
    root, url = _rules_project(tmp_path, {"broken": "{{ value / 0 }}", "fine": "{{ value }} deals"})
    code = main(
        ["check", "attacked", "--project", str(root), "--connector", url, "--fail-on", "info"]
    )
    out, err = capsys.readouterr()
    assert code == 1 and "internal error" not in err  # the rules fired: exit 1, as always
    assert "message template error: ZeroDivisionError" in out
    assert "deals" in out


def test_message_time_budget_is_paid_once_per_run():
    from kpiengine.rules.messages import MESSAGE_LIMITS, render_message

    # 100 000 steps are cheap; a loop of slow steps (big sorts) runs into the time budget
    slow = "{% for i in range(10000) %}{{ (range(10000) | list | sort | length) }}{% endfor %}"
    started = time.monotonic()
    first = render_message(slow, {})
    second = render_message(slow, {})
    assert "limit reached" in first and "limit reached" in second
    assert time.monotonic() - started < MESSAGE_LIMITS.max_seconds * 3 + 2


def test_runtime_undefined_names_and_filters_are_errors_not_empty_text():
    # `kpi validate` and `kpi check` refuse these (KPI320); the Python API renders them
    from kpiengine.rules.messages import render_message

    assert "'valeu' is undefined" in render_message("{{ valeu }}", {"value": 1})
    assert "No filter named 'nosuch'" in render_message("{{ value | nosuch }}", {"value": 1})


def test_messages_render_normally():
    from kpiengine.rules.messages import render_message

    text = (
        "{% if previous %}from {{ previous | percent }} {% endif %}to {{ value | percent }}"
        " ({{ '%.1f' | format(value * 100) }}, {{ '{:,}'.format(2000000000) }}, "
        "{{ region | default('all regions') }}, {{ 2000000000 * 3 }})"
    )
    assert render_message(text, {"value": 0.5, "previous": 0.25}) == (
        "from 25.0 % to 50.0 % (50.0, 2,000,000,000, all regions, 6000000000)"
    )


# -- report templates: the same limits, a usage error, nothing written ----------------------


@pytest.fixture
def sales(tmp_path):
    root = write_files(tmp_path / "defs", SALES_FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url, tmp_path


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'x' * 10**9 }}", "`*` would build"),
        ("{{ 9**30000000 }}", "`**` would give"),
        (
            "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            "loop steps",
        ),
        ("line one\n{{ report.nope }}", "report.j2:2: UndefinedError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ report.rows.pop() }}", "unsafe"),
    ],
)
def test_report_template_attacks_are_usage_errors(sales, template, reason):
    root, url, folder = sales
    (folder / "report.j2").write_text(template)
    target = folder / "never.html"
    code, _, err, peak = _kpi(
        "report",
        "revenue",
        "--project",
        str(root),
        "--connector",
        url,
        "--template",
        str(folder / "report.j2"),
        "-o",
        str(target),
        timeout=200,
    )
    assert code == 2 and reason in err and "internal error" not in err, err
    assert not target.exists() and peak < 1000


# -- kpi validate: messages checked statically ------------------------------------------


def test_validate_finds_unknown_names_filters_and_syntax_in_messages(tmp_path, capsys):
    files = {
        **SALES_FILES,
        "kpis/typos.yaml": """
            kpi: typos
            source: opportunities
            expression: count()
            rules:
              - name: unknown_name
                when: value > 1
                severity: info
                message: "Now {{ valeu | number }} deals"
              - message: >-
                  Fell to {{ value | percnt }}
                  in {{ period }} for {{ region }}
                name: unknown_filter
                when: value < previous
                severity: warning
              - {name: broken, when: value < 1, severity: info, message: "{{ value }"}
            """,
        "rules/standalone.yaml": """
            rule: per_deal
            when: revenue / deals > 2
            severity: info
            message: "{{ revenue }} over {{ deals }} in {{ period }}, {{ value }}"
            """,
    }
    root = write_files(tmp_path / "defs", files)
    assert main(["validate", str(root), "--format", "json"]) == 1
    found = {
        (d["code"], d["file"].rsplit("/", 1)[-1], d["line"], d["column"]): d["message"]
        for d in json.loads(capsys.readouterr().out)["diagnostics"]
        if d["code"] in ("KPI319", "KPI320")
    }
    assert found == {
        ("KPI320", "typos.yaml", 8, 22): "unknown name `valeu` in the message of rule "
        "`unknown_name`",
        ("KPI320", "typos.yaml", 10, 26): "unknown filter `percnt` in the message of rule "
        "`unknown_filter`",
        ("KPI319", "typos.yaml", 15, 62): "the message of rule `broken` is not a valid "
        "template: unexpected '}'",
        ("KPI320", "standalone.yaml", 4, 62): "unknown name `value` in the message of rule "
        "`per_deal`",
    }


def test_validate_hint_for_a_typo(tmp_path, capsys):
    files = {
        **SALES_FILES,
        "kpis/typo.yaml": """
            kpi: typo
            source: opportunities
            expression: count()
            rules: [{name: r, when: value > 1, severity: info, message: "{{ valeu }}"}]
            """,
    }
    assert main(["validate", str(write_files(tmp_path / "defs", files))]) == 1
    err = capsys.readouterr().out
    assert "KPI320 unknown name `valeu`" in err and "did you mean `value`?" in err


# -- webhook: a hard deadline, no redirects, validated options, redacted URLs --------------


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers 200 one header line every 0.3 s, forever: each read is quick, the whole
    answer never ends."""

    hits: list[str] = []

    def do_POST(self):
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for index in range(200):
                self.wfile.write(f"X-Slow-{index}: 1\r\n".encode())
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            pass

    def log_message(self, *args):
        pass


class _Redirect(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    target = ""

    def do_POST(self):
        type(self).hits.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(302)
        self.send_header("Location", type(self).target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        type(self).hits.append("GET " + self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def rules_env(tmp_path):
    return _rules_project(tmp_path, {"fires": "{{ value }} deals"})


def _check(capsys, env, *args):
    root, url = env
    code = main(
        [
            *("check", "attacked", "--project", str(root), "--connector", url),
            *("--from", "2024-01-01", "--to", "2024-02-01", *args),
        ]
    )
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in out + err, err
    return code, out, err


def test_webhook_deadline_is_hard_against_a_trickling_server(rules_env, capsys):
    _Trickle.hits = []
    server, base = _serve(_Trickle)
    try:
        started = time.monotonic()
        code, _, err = _check(
            capsys,
            rules_env,
            "--notify",
            f"webhook={base}/hook",
            "--notify-option",
            "timeout=1",
            "--notify-option",
            "deadline=2",
            "--notify-option",
            "backoff=0.1",
        )
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert code == 3 and "no complete answer within" in err
    assert elapsed < 6, elapsed  # before: 200 × 0.3 s per attempt, 4 attempts
    assert 1 <= len(_Trickle.hits) <= 2


def test_webhook_redirect_is_a_failure_never_followed_nor_retried(rules_env, capsys):
    _Redirect.hits = []
    elsewhere, other = _serve(_Redirect)
    server, base = _serve(_Redirect)
    _Redirect.target = f"{other}/stolen"
    try:
        code, _, err = _check(
            capsys, rules_env, "--notify", f"webhook={base}/T000/SECRET", "--notify-option",
            "backoff=0.01",
        )  # fmt: skip
    finally:
        for each in (server, elsewhere):
            each.shutdown()
            each.server_close()
    assert code == 3 and "HTTP 302 (redirects are not followed)" in err
    assert _Redirect.hits == ["/T000/SECRET"]  # one attempt, nothing sent to the Location
    assert "SECRET" not in err and f"{base}/…" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("timeout=-1", "webhook option timeout=-1 must be from"),
        ("retries=-5", "webhook option retries=-5 must be from 0 to 100"),
        ("retries=lots", "webhook option retries=lots is not a whole number"),
        ("deadline=nan", "webhook option deadline=nan must be from"),
    ],
)
def test_webhook_options_are_usage_errors(rules_env, capsys, option, message):
    code, _, err = _check(
        capsys, rules_env, "--notify", "webhook=http://127.0.0.1:9/x", "--notify-option", option
    )
    assert code == 2 and message in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1", "is malformed"),
        ("http://127.0.0.1:99999/x", "is malformed"),
        ("ftp://example.com/x", "must start with http:// or https://"),
        ("http:///nohost", "has no host"),
        ("http://exa mple.com/", "spaces or control characters"),
    ],
)
def test_webhook_urls_are_validated(rules_env, capsys, url, message):
    code, _, err = _check(capsys, rules_env, "--notify", f"webhook={url}")
    assert code == 2 and message in err


def test_webhook_errors_never_show_credentials_or_paths(rules_env, capsys):
    url = "http://alice:s3cr3t@127.0.0.1:9/services/T000/B000/XXXXSECRET?token=abc"
    code, _, err = _check(
        capsys, rules_env, "--notify", f"webhook={url}", "--notify-option", "retries=0"
    )
    assert code == 3 and "http://127.0.0.1:9/…" in err
    for secret in ("alice", "s3cr3t", "services", "XXXXSECRET", "token"):
        assert secret not in err


def test_webhook_sends_url_credentials_as_basic_auth(rules_env, capsys):
    seen = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(self.headers.get("Authorization"))
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server, base = _serve(Hook)
    try:
        url = base.replace("http://", "http://alice:s%40cret@") + "/hook"
        code, _, _ = _check(capsys, rules_env, "--notify", f"webhook={url}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0 and seen == ["Basic YWxpY2U6c0BjcmV0"]  # alice:s@cret


def test_redact_url():
    from kpiengine.rules.notify import redact_url

    assert redact_url("https://u:p@hooks.example.com/T/B/X") == "https://hooks.example.com/…"
    assert redact_url("https://hooks.example.com") == "https://hooks.example.com/"
    assert redact_url("http://[::1]:8080/x?y") == "http://[::1]:8080/…"
    assert redact_url("http://[::1") == "<malformed URL>"


# -- Markdown and CSV: no markup, no broken table, no formula --------------------------------

EVIL_TITLE = "Evil <script>alert(1)</script> | col\\nnext [x](javascript:alert(2))"
EVIL_ROWS = [
    *OPPORTUNITIES[1],
    ("e1", "a1", '=HYPERLINK("http://evil.example","click")', "won", -5.0, None, None),
    ("e2", "a1", "@SUM(A1)", "won", 1.0, "2024-01-02 00:00:00", "2024-01-20 00:00:00"),
    ("e3", "a1", "-2+3", "won", 1.0, "2024-01-02 00:00:00", "2024-01-20 00:00:00"),
    ("e4", "a1", "-7", "won", 1.0, "2024-01-02 00:00:00", "2024-01-20 00:00:00"),
]


@pytest.fixture
def evil(tmp_path):
    files = {
        **SALES_FILES,
        "kpis/evil.yaml": f"""
            kpi: evil_sum
            title: "{EVIL_TITLE}"
            source: opportunities
            expression: sum(amount) - 1000
            rules:
              - name: low
                when: value < 0
                severity: warning
                message: "<b>low</b> | {{{{ value }}}}\\nsecond line"
            """,
    }
    root = write_files(tmp_path / "defs", files)
    rows = [
        (*r[:5], r[5] or "2024-01-02 00:00:00", r[6] or "2024-01-20 00:00:00") for r in EVIL_ROWS
    ]
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": (OPPORTUNITIES[0], rows), "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url, tmp_path


def _report(capsys, env, *args):
    root, url, _ = env
    code = main(
        [
            *("report", "--project", str(root), "--connector", url),
            *("--from", "2024-01-01", "--to", "2024-02-01", *args),
        ]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    return code, err


def test_markdown_escapes_markup_pipes_and_newlines(evil, capsys):
    target = evil[2] / "r.md"
    assert _report(capsys, evil, "evil_sum", "--by", "region", "--renderer", "markdown",
                   "-o", str(target))[0] == 0  # fmt: skip
    text = target.read_text()
    assert "<script" not in text and "<b>" not in text
    assert "\\[x\\](javascript:" in text and not re.search(r"(?<!\\)\]\(", text)  # no link
    assert "&lt;script&gt;" in text and "\\|" in text and "<br>second line" in text
    tables = [block.splitlines() for block in text.split("\n\n") if block.startswith("|")]
    assert len(tables) == 2  # alerts and KPIs: no row broken out of its table
    for table in tables:
        widths = {len(line.replace("\\|", "").split("|")) for line in table}
        assert len(widths) == 1 and all(line.endswith("|") for line in table), table


def test_csv_neutralises_formulas_and_keeps_numbers(evil, capsys):
    target = evil[2] / "r.csv"
    assert _report(capsys, evil, "evil_sum", "--by", "region", "--renderer", "csv",
                   "-o", str(target))[0] == 0  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    regions = {r["region"]: r["value"] for r in rows}
    assert '\'=HYPERLINK("http://evil.example","click")' in regions
    assert "'@SUM(A1)" in regions and "'-2+3" in regions
    assert "-7" in regions  # a number as text is no formula: unchanged
    assert regions['\'=HYPERLINK("http://evil.example","click")'] == "-1005.0"  # stays a number
    assert not any(r["region"].startswith(("=", "@", "+")) for r in rows)


# -- output files: the user's umask, whole or not at all, a clear error for a bad folder ----


def test_report_gets_the_users_umask_and_keeps_an_existing_mode(sales, capsys):
    root, url, folder = sales
    env = (root, url, folder)
    old = os.umask(0o022)
    try:
        assert _report(capsys, env, "revenue", "-o", str(folder / "new.html"))[0] == 0
        assert (folder / "new.html").stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        assert _report(capsys, env, "revenue", "-o", str(folder / "group.html"))[0] == 0
        assert (folder / "group.html").stat().st_mode & 0o777 == 0o640
        kept = folder / "kept.html"
        kept.write_text("old")
        kept.chmod(0o604)
        assert _report(capsys, env, "revenue", "-o", str(kept))[0] == 0
        assert kept.stat().st_mode & 0o777 == 0o604 and kept.read_text() != "old"
    finally:
        os.umask(old)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_report_into_a_missing_folder_is_a_usage_error(sales, capsys):
    folder = sales[2]
    code, err = _report(capsys, sales, "revenue", "-o", str(folder / "nope" / "r.html"))
    assert code == 2
    assert str(folder / "nope") in err and "does not exist" in err
    assert not (folder / "nope").exists()


def test_report_into_a_folder_target_is_a_usage_error(sales, capsys):
    folder = sales[2]
    (folder / "taken").mkdir()
    code, err = _report(capsys, sales, "revenue", "-o", str(folder / "taken"))
    assert code == 2 and "cannot write" in err
    assert list((folder / "taken").iterdir()) == [] and not [
        p for p in folder.iterdir() if p.name.startswith(".taken")
    ]
