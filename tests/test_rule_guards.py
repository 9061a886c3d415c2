"""Rules that know when not to fire (SPEC §13.8, issue 14): `pace` on in-progress periods,
`--as-of`, `partial` rows, `require:` guards and the `insufficient_data` status, statuses
and alerts in `kpi run`'s table and CSV, and `kpi check` saying which period it checked.

Every expected number is computed by hand from the rows below (see DATA).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

import kpiengine
from kpiengine.cli import main
from kpiengine.rules.pace import is_partial, not_additive, pace
from tests.conftest import ENGINES, engine_url, write_files

# May 2025 (complete): 25 closed deals, 10 won at 100 (bookings 1000), win rate 10/25 = 0.4.
# June 2025 (in progress at 2025-06-16): 3 closed deals, 1 won at 300, win rate 1/3.
# July 2025: nothing.
DEALS = [
    *((i, dt.date(2025, 5, 1 + i % 28), "won", 100.0) for i in range(10)),
    *((10 + i, dt.date(2025, 5, 2 + i % 27), "lost", 50.0) for i in range(15)),
    (30, dt.date(2025, 6, 3), "won", 300.0),
    (31, dt.date(2025, 6, 5), "lost", 80.0),
    (32, dt.date(2025, 6, 10), "lost", 20.0),
]
DATA = {"deals": ("id INTEGER, closed_at DATE, stage VARCHAR, amount DOUBLE", DEALS)}

FILES = {
    "sources/deals.yaml": """
        source: deals
        table: deals
        time: closed_at
        columns:
          id: {type: integer, key: true}
          closed_at: date
          stage: string
          amount: {type: number, unit: currency}
        """,
    "kpis/sales.yaml": """
        kpis:
          - kpi: bookings
            source: deals
            expression: sum(amount where stage = 'won')
            unit: currency
            target: {value: 500, direction: higher}
            rules:
              - name: behind_pace
                when: pace < target
                severity: warning
                message: "Bookings {{ value | currency }}: on pace to miss {{ target | currency }}"
          - kpi: deals_closed
            source: deals
            expression: count(where stage in ('won', 'lost'))
            unit: count
          - kpi: deals_won
            source: deals
            expression: count(where stage = 'won')
          - kpi: win_rate
            expression: deals_won / deals_closed
            unit: percent
            target: {value: 0.47, direction: higher}
            rules:
              - name: below_benchmark
                when: value < target
                require: deals_closed >= 20
                severity: warning
                message: "Win rate {{ value | percent }} under {{ target | percent }}"
          - kpi: net_bookings
            expression: bookings - 0.5 * deals_closed
        """,
    "rules/pace.yaml": """
        rule: won_deals_behind_pace
        when: pace(deals_won) < 4
        require: deals_closed >= 3
        severity: info
        message: "{{ deals_won }} won deals, on pace for fewer than 4"
        """,
}
MAY, JUNE, JULY = "2025-05-01", "2025-06-01", "2025-07-01"


@pytest.fixture(params=sorted(ENGINES))
def env(request, tmp_path):
    root = write_files(tmp_path / "defs", FILES)
    return str(root), engine_url(request.param, tmp_path, DATA)


def kpi(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def run_json(capsys, env, *args: str) -> dict:
    root, url = env
    code, out, err = kpi(
        capsys, "run", *args, "--project", root, "--connector", url, "--format", "json"
    )
    assert code == 0, err
    return json.loads(out)


def by_key(rows: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["kpi"], r["period"]): r for r in rows}


# -- pace arithmetic --------------------------------------------------------------------


def test_pace_on_a_half_elapsed_month():
    june = (dt.date(2025, 6, 1), dt.date(2025, 7, 1))
    assert pace(300, june, dt.date(2025, 6, 16)) == 600  # 15 of 30 days: twice the value
    assert pace(300, june, dt.date(2025, 6, 25)) == 300 * 30 / 24
    assert pace(300, june, dt.date(2025, 7, 1)) == 300  # complete: the value itself
    assert pace(300, june, dt.date(2025, 6, 1)) is None  # begun, no day elapsed yet
    assert pace(300, june, dt.date(2025, 5, 20)) is None  # not begun
    assert pace(None, june, dt.date(2025, 6, 16)) is None
    assert is_partial(june, dt.date(2025, 6, 1)) and is_partial(june, dt.date(2025, 6, 30))
    assert not is_partial(june, dt.date(2025, 7, 1)) and not is_partial(june, dt.date(2025, 5, 31))


# -- kpi run: partial rows, statuses, the guard ------------------------------------------


def test_run_json_partial_status_and_require(env, capsys):
    doc = run_json(
        capsys, env, "win_rate", "bookings", "--from", MAY, "--to", "2025-08-01",
        "--as-of", "2025-06-16",
    )  # fmt: skip
    assert doc["as_of"] == "2025-06-16"
    rows = by_key(doc["rows"])
    assert {r["kpi"] for r in doc["rows"]} == {"win_rate", "bookings"}  # deals_closed hidden
    assert [k for k, r in rows.items() if r["partial"]] == [("win_rate", JUNE), ("bookings", JUNE)]
    assert rows["win_rate", MAY]["value"] == pytest.approx(10 / 25)
    assert rows["win_rate", MAY]["status"] == "warning"  # 25 closed deals: evaluated, fires
    assert rows["win_rate", JUNE]["value"] == pytest.approx(1 / 3)
    assert rows["win_rate", JUNE]["status"] == "insufficient_data"  # 3 closed deals < 20
    assert rows["win_rate", JULY]["status"] == "insufficient_data"  # 0 closed deals
    # bookings: May 1000 (complete, pace = value), June 300 at 15/30 days → pace 600 ≥ 500
    assert rows["bookings", MAY]["value"] == 1000 and rows["bookings", JUNE]["value"] == 300
    assert {rows["bookings", p]["status"] for p in (MAY, JUNE, JULY)} == {"ok"}
    fired = sorted((a["kpi"], a["rule"], a["period"]) for a in doc["alerts"])
    assert fired == [("win_rate", "below_benchmark", MAY)]


def test_pace_fires_later_in_the_month(env, capsys):
    # at 2025-06-25, 24 of 30 days elapsed: pace = 300 × 30 / 24 = 375 < 500
    doc = run_json(capsys, env, "bookings", "--from", JUNE, "--to", JULY, "--as-of", "2025-06-25")
    assert doc["rows"][0]["partial"] is True
    assert [(a["rule"], a["value"]) for a in doc["alerts"]] == [("behind_pace", 300)]
    # once the month is over, pace is the value: 300 < 500 still fires, not partial
    doc = run_json(capsys, env, "bookings", "--from", JUNE, "--to", JULY, "--as-of", "2025-07-01")
    assert doc["rows"][0]["partial"] is False and len(doc["alerts"]) == 1


def test_pace_in_a_standalone_rule(env, capsys):
    # June: 1 won deal at 15/30 days → pace 2 < 4 and 3 closed deals ≥ 3: fires
    # May: 10 won, complete → 10 ≥ 4: does not fire
    doc = run_json(
        capsys, env, "deals_won", "deals_closed", "--from", MAY, "--to", JULY,
        "--as-of", "2025-06-16",
    )  # fmt: skip
    fired = [(a["rule"], a["period"]) for a in doc["alerts"]]
    assert fired == [("won_deals_behind_pace", JUNE)]
    # at 2025-06-06 (5 days): pace 1 × 30 / 5 = 6 ≥ 4, and the guard holds: no alert
    doc = run_json(
        capsys, env, "deals_won", "deals_closed", "--from", JUNE, "--to", JULY,
        "--as-of", "2025-06-06",
    )  # fmt: skip
    assert doc["alerts"] == []


def test_run_table_and_csv_show_status_alerts_and_partial(env, capsys):
    root, url = env
    args = ["run", "win_rate", "--project", root, "--connector", url, "--from", MAY]
    args += ["--to", JULY, "--as-of", "2025-06-16"]
    code, out, _ = kpi(capsys, *args, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["period", "kpi", "value", "status", "alerts", "partial"]
    assert [(r["period"], r["status"], r["alerts"], r["partial"]) for r in rows] == [
        (MAY, "warning", "below_benchmark", "false"),
        (JUNE, "insufficient_data", "", "true"),
    ]
    code, out, _ = kpi(capsys, *args)
    assert code == 0
    header, _, may, june, *rest = out.splitlines()
    assert header.split() == ["period", "kpi", "value", "status", "partial"]
    assert may.split()[-1] == "warning" and june.split()[-2:] == ["insufficient_data", "partial"]
    assert "1 alert(s):" in rest and any("warning  win_rate  2025-05-01" in r for r in rest)


def test_run_without_rules_has_no_status_column(env, capsys):
    root, url = env
    code, out, _ = kpi(
        capsys, "run", "deals_closed", "--project", root, "--connector", url,
        "--from", MAY, "--to", JUNE, "--format", "csv",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines() == ["period,kpi,value,partial", f"{MAY},deals_closed,25,false"]


# -- kpi check ----------------------------------------------------------------------------


def test_check_says_which_period_it_checked(env, capsys):
    root, url = env
    base = ["check", "--project", root, "--connector", url]
    code, out, err = kpi(capsys, *base, "--as-of", "2025-06-16")
    assert code == 0  # a warning fired; the default --fail-on is critical
    assert "checked month 2025-05-01 to 2025-06-01 (end excluded), the last complete month " \
        "before 2025-06-16" in err  # fmt: skip
    assert "no data" not in err
    assert "below_benchmark" in out or "Win rate 40.0 %" in out
    code, _, _ = kpi(capsys, *base, "--as-of", "2025-06-16", "--fail-on", "warning")
    assert code == 1


def test_check_warns_when_the_period_has_no_data(env, capsys):
    root, url = env
    code, _, err = kpi(
        capsys, "check", "--project", root, "--connector", url, "--as-of", "2026-11-30"
    )
    assert code == 0  # a warning, not an error
    assert "checked month 2026-10-01 to 2026-11-01" in err
    assert "warning: no data in the checked period (2026-10-01 to 2026-11-01)" in err
    assert "insufficient data" in err  # win rate: 0 closed deals


def test_check_json_in_progress_period(env, capsys):
    root, url = env
    code, out, err = kpi(
        capsys, "check", "--project", root, "--connector", url, "--from", JUNE, "--to", JULY,
        "--as-of", "2025-06-16", "--format", "json", "--fail-on", "warning",
    )  # fmt: skip
    assert code == 0, err  # insufficient_data does not fail a check
    doc = json.loads(out)
    assert doc["checked"] == {
        "grain": "month",
        "from": JUNE,
        "to": JULY,
        "as_of": "2025-06-16",
        "default": False,
        "partial": True,
        "empty": False,
        "insufficient_data": 1,
    }
    statuses = {r["kpi"]: (r["status"], r["partial"]) for r in doc["rows"]}
    assert statuses == {
        "bookings": ("ok", True),  # pace 600 ≥ 500
        "win_rate": ("insufficient_data", True),  # 3 closed deals < 20
        "deals_won": (None, True),  # no rules of its own: no status
        "deals_closed": (None, True),
    }
    assert [(a["rule"], a["period"]) for a in doc["alerts"]] == [("won_deals_behind_pace", JUNE)]
    assert "in progress" in err


# -- the checker ----------------------------------------------------------------------------


def test_pace_on_a_ratio_is_a_positioned_error(tmp_path, capsys):
    files = dict(FILES)
    files["kpis/bad.yaml"] = """
        kpis:
          - kpi: bad_rate
            expression: deals_won / deals_closed
            rules:
              - name: paced
                when: pace < 0.5
                severity: info
              - name: guarded
                when: value < 0.5
                require: deals_closed
                severity: info
          - kpi: fine
            expression: net_bookings + deals_won
            rules:
              - name: paced
                when: pace < 10 and pace(net_bookings) < 5
                require: dealz >= 20
                severity: info
        """
    root = write_files(tmp_path / "defs", files)
    code, out, _ = kpi(capsys, "validate", str(root))
    assert code == 1
    lines = [line for line in out.splitlines() if ": KPI" in line]
    assert any(
        "bad.yaml:6:15: KPI323 `pace` needs an additive KPI (sums and counts): `bad_rate` "
        "divides" in line
        for line in lines
    ), out
    assert any("bad.yaml:10:18: KPI305 a rule's `require` must be a condition" in x for x in lines)
    assert any("bad.yaml:17:18: KPI302 unknown KPI `dealz`" in x for x in lines), out
    assert not any("bad.yaml:16:" in x for x in lines), out  # net_bookings is additive
    assert "3 errors" in out


def test_not_additive_reasons(tmp_path):
    files = dict(FILES)
    files["kpis/more.yaml"] = """
        kpis:
          - kpi: avg_deal
            source: deals
            expression: avg(amount)
          - kpi: distinct
            source: deals
            expression: count_distinct(stage)
          - kpi: scaled
            source: deals
            expression: 2 * sum(amount) - count() / 4
          - kpi: growth_of
            expression: bookings - previous(bookings)
        """
    model = kpiengine.load(write_files(tmp_path / "defs", files)).model
    reasons = {name: not_additive(model, model.kpis[name]) for name in model.kpis}
    assert reasons["bookings"] is None and reasons["deals_closed"] is None
    assert reasons["net_bookings"] is None and reasons["scaled"] is None
    assert reasons["win_rate"] and "divides" in reasons["win_rate"]
    assert reasons["avg_deal"] == "`avg_deal` uses avg()"
    assert reasons["distinct"] == "`distinct` uses count_distinct()"
    assert reasons["growth_of"] == "`growth_of` uses previous()"


# -- reports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("renderer", ["csv", "markdown", "json", "html"])
def test_reports_show_partial_and_insufficient_data(env, capsys, tmp_path, renderer):
    root, url = env
    output = tmp_path / f"report.{renderer}"
    code, _, err = kpi(
        capsys, "report", "win_rate", "bookings", "--project", root, "--connector", url,
        "--from", MAY, "--to", JULY, "--as-of", "2025-06-16", "--renderer", renderer,
        "-o", str(output),
    )  # fmt: skip
    assert code == 0, err
    text = output.read_text(encoding="utf-8")
    if renderer == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        got = {(r["kpi"], r["period"]): (r["status"], r["partial"]) for r in rows}
        assert got[("win_rate", JUNE)] == ("insufficient_data", "true")
        assert got[("win_rate", MAY)] == ("warning", "false")
    elif renderer == "json":
        doc = json.loads(text)
        assert doc["as_of"] == "2025-06-16"
        cards = {k["kpi"]: k for k in doc["kpis"]}
        assert cards["win_rate"]["series"][0] | {"status": "insufficient_data", "partial": True} \
            == cards["win_rate"]["series"][0]  # fmt: skip
    elif renderer == "markdown":
        assert "(partial)" in text and "insufficient\\_data" in text
        assert "as of 2025-06-16" in text
    else:
        assert "As of 2025-06-16, 2025-06-01 is in progress" in text
        assert "Insufficient data: 1 row not checked" in text
        assert "bg-insufficient_data" in text
