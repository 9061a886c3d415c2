"""Conversion KPIs (``conversion:``, SPEC §13.5) against pandas, on every engine.

Leads (base, a *date* per lead) convert when an opportunity (event, a *timestamp*) of the
same account follows: at or after the lead's time, within 30 days for the windowed KPIs
(exactly: an opportunity at lead + 30 days 00:00:00 counts, one a second later does
not). The data holds every case the semantics name: accounts with several leads (each
counts once, each converted by the same later opportunity), opportunities before the
lead (not counted), opportunities after `to` (counted: the window looks ahead), leads and
opportunities without an account (never convert), a month without leads (rate null,
count 0), and the edges of the window. The expectations are computed here with pandas
from the raw rows, one base event at a time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kpiengine.testing.compare import differences
from tests.engines import ENGINES, arrow_tables, engine_params, require

FILES = {
    "leads.yaml": """
        source: leads
        table: leads
        time: created_at
        columns:
          lead_id: integer
          account_id: integer
          region: string
          is_mql: boolean
          created_at: date
        """,
    "opportunities.yaml": """
        source: opportunities
        table: opportunities
        time: closed_at
        columns:
          opportunity_id: integer
          account_id: integer
          stage: string
          created_at: timestamp
          closed_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: lead_to_opp
            unit: percent
            conversion:
              base: {source: leads}
              event: {source: opportunities, time: created_at}
              entity: account_id
          - kpi: lead_to_opp_30d
            unit: percent
            conversion:
              base: {source: leads}
              event: {source: opportunities, time: created_at}
              entity: {base: account_id, event: account_id}
              within: {days: 30}
          - kpi: converted_30d
            unit: count
            conversion:
              base: {source: leads}
              event: {source: opportunities, time: created_at}
              entity: account_id
              within: {days: 30}
              value: count
          - kpi: mql_to_won_60d
            unit: percent
            conversion:
              base: {source: leads, filter: is_mql}
              event: {source: opportunities, filter: "stage = 'won'"}
              entity: account_id
              within: {days: 60}
          - kpi: windowed_share
            unit: ratio
            expression: converted_30d / (lead_to_opp_30d * 100)
          - kpi: converted_before
            unit: count
            expression: previous(converted_30d)
        """,
}

START, END = dt.date(2024, 1, 1), dt.date(2024, 7, 1)
MONTHS = [dt.date(2024, m, 1) for m in range(1, 7)]
KPIS = ["lead_to_opp", "lead_to_opp_30d", "converted_30d", "mql_to_won_60d"]
#: base filter, event filter, window in days, value
SPECS: dict[str, tuple[str | None, str | None, str, int | None, str]] = {
    "lead_to_opp": (None, None, "created_at", None, "rate"),
    "lead_to_opp_30d": (None, None, "created_at", 30, "rate"),
    "converted_30d": (None, None, "created_at", 30, "count"),
    "mql_to_won_60d": ("is_mql", "won", "closed_at", 60, "rate"),
}


def _data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-placed edge cases, then random leads and opportunities around them."""
    ts = dt.datetime.fromisoformat
    leads = [
        # account 1: two leads; one opportunity 10 days after the second: both convert
        (1, 1, "emea", True, dt.date(2024, 1, 5)),
        (2, 1, "emea", False, dt.date(2024, 1, 20)),
        # account 2: the opportunity is before the lead: never converts
        (3, 2, "apac", True, dt.date(2024, 2, 10)),
        # account 3: opportunity exactly at lead + 30 days 00:00: converts in 30d
        (4, 3, "apac", True, dt.date(2024, 4, 1)),
        # account 4: opportunity at lead + 30 days + 1 second: only without a window
        (5, 4, "emea", False, dt.date(2024, 4, 2)),
        # account 5: opportunity at the lead's own midnight: converts (e = b)
        (6, 5, "emea", True, dt.date(2024, 5, 3)),
        # account 6: lead in June, opportunity in July (after `to`): converts
        (7, 6, "apac", True, dt.date(2024, 6, 25)),
        # no account: never converts, though an opportunity without account follows
        (8, None, "emea", True, dt.date(2024, 6, 1)),
        # before the range: outside every period, and its opportunity does not leak in
        (9, 7, "emea", True, dt.date(2023, 12, 20)),
    ]
    opportunities = [
        (1, 1, "won", ts("2024-01-30 09:00:00"), ts("2024-02-20 10:00:00")),
        (2, 2, "won", ts("2024-02-09 23:59:59"), ts("2024-03-01 00:00:00")),
        (3, 3, "lost", ts("2024-05-01 00:00:00"), ts("2024-05-10 00:00:00")),
        (4, 4, "won", ts("2024-05-02 00:00:01"), ts("2024-05-20 00:00:00")),
        (5, 5, "won", ts("2024-05-03 00:00:00"), ts("2024-06-01 00:00:00")),
        (6, 6, "won", ts("2024-07-05 12:00:00"), ts("2024-08-01 00:00:00")),
        (7, None, "won", ts("2024-06-02 00:00:00"), ts("2024-06-03 00:00:00")),
        (8, 7, "won", ts("2023-12-28 00:00:00"), ts("2024-01-02 00:00:00")),
    ]
    rng = np.random.default_rng(14)
    lead_id, opportunity_id = 100, 100
    for _ in range(400):
        day = dt.date(2023, 11, 1) + dt.timedelta(days=int(rng.integers(0, 270)))
        if day.month == 3 and day.year == 2024:
            continue  # March has no lead: rate null, count 0
        account = int(rng.integers(10, 60)) if rng.random() > 0.1 else None
        region = ("emea", "apac", "latam")[int(rng.integers(0, 3))]
        leads.append((lead_id, account, region, bool(rng.random() < 0.5), day))
        lead_id += 1
    for _ in range(250):
        created = dt.datetime(2023, 10, 1) + dt.timedelta(
            days=int(rng.integers(0, 360)), seconds=int(rng.integers(0, 86400))
        )
        account = int(rng.integers(10, 65)) if rng.random() > 0.1 else None
        stage = ("won", "lost", "open")[int(rng.integers(0, 3))]
        closed = created + dt.timedelta(days=int(rng.integers(0, 90)))
        opportunities.append((opportunity_id, account, stage, created, closed))
        opportunity_id += 1
    lead_frame = pd.DataFrame(
        leads, columns=["lead_id", "account_id", "region", "is_mql", "created_at"]
    )
    opportunity_frame = pd.DataFrame(
        opportunities, columns=["opportunity_id", "account_id", "stage", "created_at", "closed_at"]
    )
    return lead_frame, opportunity_frame


LEADS, OPPORTUNITIES = _data()


def expected(
    kpi: str, start: dt.date, end: dt.date, by_region: bool = False, all_leads: Any = None
) -> dict:
    """(period, region) → value, one base event at a time, from the raw rows."""
    base_filter, event_filter, event_time, within, value = SPECS[kpi]
    all_leads = LEADS if all_leads is None else all_leads
    leads = all_leads[(all_leads.created_at >= start) & (all_leads.created_at < end)]
    if base_filter == "is_mql":
        leads = leads[leads.is_mql]
    events = OPPORTUNITIES
    if event_filter == "won":
        events = events[events.stage == "won"]
    converted = []
    for lead in leads.itertuples():
        b = dt.datetime.combine(lead.created_at, dt.time())
        if pd.isna(lead.account_id):
            converted.append(False)
            continue
        times = events[events.account_id == lead.account_id][event_time]
        hit = (times >= b) & (True if within is None else times <= b + dt.timedelta(days=within))
        converted.append(bool(hit.any()))
    leads = leads.assign(
        converted=converted,
        period=[dt.date(d.year, d.month, 1) for d in leads.created_at],
    )
    regions = sorted(leads.region.unique())
    months = [m for m in MONTHS if start <= m < end]
    result = {}
    for month in months:
        for region in regions if by_region else [None]:
            rows = leads[leads.period == month]
            if region is not None:
                rows = rows[rows.region == region]
            hits = int(rows.converted.sum())
            if value == "count":
                result[(month, region)] = hits
            else:
                result[(month, region)] = hits / len(rows) if len(rows) else None
    return result


def _tables() -> dict[str, Any]:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    leads = [tuple(clean(v) for v in row) for row in LEADS.astype(object).itertuples(index=False)]
    opportunities = [
        tuple(clean(v) for v in row) for row in OPPORTUNITIES.astype(object).itertuples(index=False)
    ]
    return arrow_tables(
        {
            "leads": (
                "lead_id INTEGER, account_id INTEGER, region VARCHAR, is_mql BOOLEAN, "
                "created_at DATE",
                [(int(a), None if b is None else int(b), c, bool(d), e) for a, b, c, d, e in leads],
            ),
            "opportunities": (
                "opportunity_id INTEGER, account_id INTEGER, stage VARCHAR, "
                "created_at TIMESTAMP, closed_at TIMESTAMP",
                [
                    (int(a), None if b is None else int(b), c, d.to_pydatetime(), e.to_pydatetime())
                    for a, b, c, d, e in opportunities
                ],
            ),
        }
    )


def _slow_engine(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.slow, id=name)


@pytest.fixture(
    scope="module", params=[*engine_params(), _slow_engine("mariadb"), _slow_engine("chdb")]
)
def env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import kpiengine
    from kpiengine.testing.dataset import write_files

    folder = tmp_path_factory.mktemp(f"conversion_{request.param}")
    tables = _tables()
    if request.param == "mariadb":
        from tests.test_mysql import load_mysql  # skips (fails on CI) without a server

        url = load_mysql(tables)
    elif request.param == "chdb":
        from tests.test_clickhouse import write_parquet_folder  # skips without chDB

        url = write_parquet_folder(tables, folder / "data")
    else:
        engine = ENGINES[request.param]
        require(engine)
        url = engine.load(tables, folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


def _got(result: Any, kpi: str, by_region: bool = False) -> dict:
    return {
        (row.period, dict(row.dimensions).get("region") if by_region else None): row.value
        for row in result.rows
        if row.kpi == kpi
    }


def _same(got: dict, want: dict) -> list[str]:
    return differences(got, want, rel_tol=1e-12)


def test_reference_covers_the_cases() -> None:
    """Not vacuous: the window matters, March is empty, some rates are neither 0 nor 1."""
    unbounded = expected("lead_to_opp", START, END)
    windowed = expected("lead_to_opp_30d", START, END)
    assert unbounded != windowed
    assert unbounded[(dt.date(2024, 3, 1), None)] is None
    assert expected("converted_30d", START, END)[(dt.date(2024, 3, 1), None)] == 0
    assert any(v is not None and 0 < v < 1 for v in windowed.values())


@pytest.mark.parametrize("kpi", KPIS)
def test_values_match_pandas(env: Any, kpi: str) -> None:
    project, connection = env
    result = project.run([kpi], connection, start=START, end=END)
    problems = _same(_got(result, kpi), expected(kpi, START, END))
    assert not problems, "\n".join(problems)


def test_by_region_and_a_short_range(env: Any) -> None:
    """Dimensions are the base source's; a `to` before the events still sees them."""
    project, connection = env
    start, end = dt.date(2024, 4, 1), dt.date(2024, 7, 1)
    result = project.run(KPIS, connection, start=start, end=end, by=["region"])
    problems = []
    for kpi in KPIS:
        problems += _same(_got(result, kpi, True), expected(kpi, start, end, by_region=True))
    assert not problems, "\n".join(problems)


#: The placed leads alone (``--where "lead_id < 10"``), by hand, per month Jan..Jun:
#: Jan leads 1, 2 of account 1, opportunity Jan 30: both convert, each once; Feb lead 3,
#: its opportunity the evening before: no; Mar no lead; Apr lead 4 (opportunity at
#: exactly +30 days) and lead 5 (+30 days and a second); May lead 6 (opportunity at its
#: own midnight); Jun lead 7 (opportunity in July, after `to`) and lead 8 (no account).
#: mql_to_won_60d reads won deals by closed_at: lead 3's closes Mar 1 (converts), lead
#: 4's is lost, lead 7's closes Aug 1 (within 60 days of Jun 25).
BY_HAND = {
    "converted_30d": [2, 0, 0, 1, 1, 1],
    "lead_to_opp_30d": [1.0, 0.0, None, 0.5, 1.0, 0.5],
    "lead_to_opp": [1.0, 0.0, None, 1.0, 1.0, 0.5],
    "mql_to_won_60d": [1.0, 1.0, None, 0.0, 1.0, 0.5],
}


def test_hand_computed_edges(env: Any) -> None:
    project, connection = env
    result = project.run(list(BY_HAND), connection, start=START, end=END, where="lead_id < 10")
    for kpi, values in BY_HAND.items():
        assert list(_got(result, kpi).values()) == values, kpi
        placed = expected(kpi, START, END, all_leads=LEADS[LEADS.lead_id < 10])
        assert list(placed.values()) == values, kpi  # the reference agrees with the hand


def test_derived_and_time_functions(env: Any) -> None:
    project, connection = env
    result = project.run(
        ["windowed_share", "converted_before"], connection, start=dt.date(2024, 2, 1), end=END
    )
    counts = expected("converted_30d", dt.date(2024, 1, 1), END)
    rates = expected("lead_to_opp_30d", START, END)
    before = _got(result, "converted_before")
    for month in MONTHS[1:]:
        previous = dt.date(month.year, month.month - 1, 1)
        assert before[(month, None)] == counts[(previous, None)]
    share = _got(result, "windowed_share")
    for month in MONTHS[1:]:
        rate = rates[(month, None)]
        want = None if not rate else counts[(month, None)] / (rate * 100)
        got = share[(month, None)]
        assert (got is None and want is None) or math.isclose(got, want, rel_tol=1e-12)


# -- definitions: positioned diagnostics ------------------------------------------------

BAD_CASES = {
    # (the conversion mapping, the code, the text the diagnostic points at)
    "unknown event source": (
        "base: {source: leads}\n  event: {source: opportunites}\n  entity: account_id",
        "KPI311",
        "opportunites",
    ),
    "entity missing on the event side": (
        "base: {source: leads}\n  event: {source: opportunities}\n"
        "  entity: {base: account_id, event: lead_id}",
        "KPI301",
        "lead_id",
    ),
    "entity missing on both": (
        "base: {source: leads}\n  event: {source: opportunities}\n  entity: acount_id",
        "KPI301",
        "acount_id",
    ),
    "event time not a column": (
        "base: {source: leads}\n  event: {source: opportunities, time: opened_at}\n"
        "  entity: account_id",
        "KPI315",
        "opened_at",
    ),
    "base filter not a condition": (
        "base: {source: leads, filter: lead_id}\n  event: {source: opportunities}\n"
        "  entity: account_id",
        "KPI305",
        "lead_id",
    ),
    "event filter with an unknown column": (
        "base: {source: leads}\n  event: {source: opportunities, filter: \"stag = 'won'\"}\n"
        "  entity: account_id",
        "KPI301",
        "stag",
    ),
    "negative window": (
        "base: {source: leads}\n  event: {source: opportunities}\n  entity: account_id\n"
        "  within: {days: -1}",
        "KPI105",
        "-1",
    ),
    "unknown value": (
        "base: {source: leads}\n  event: {source: opportunities}\n  entity: account_id\n"
        "  value: share",
        "KPI105",
        "share",
    ),
    "entity of another type": (
        "base: {source: leads}\n  event: {source: opportunities}\n"
        "  entity: {base: region, event: account_id}",
        "KPI305",
        "account_id",
    ),
}


def _check(tmp_path: Any, kpi_text: str) -> list[Any]:
    from kpiengine.api import load_and_check
    from kpiengine.testing.dataset import write_files

    files = {**{k: v for k, v in FILES.items() if k != "kpis.yaml"}, "step.yaml": kpi_text}
    _, diagnostics = load_and_check(write_files(tmp_path / "defs", files), lint=False)
    return [d for d in diagnostics if d.severity.name.lower() == "error"]


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_definitions_are_positioned(tmp_path: Any, case: str) -> None:
    mapping, code, at = BAD_CASES[case]
    text = "kpi: step\nconversion:\n  " + mapping + "\n"
    errors = _check(tmp_path, text)
    assert {e.code for e in errors} == {code}, [str(e) for e in errors]  # one per side at most
    span = errors[0].span
    assert span is not None and span.file.endswith("step.yaml")
    line = text.splitlines()[span.line - 1]
    assert line[span.col - 1 :].startswith(at), (line, span)
    assert errors[0].hint


def test_conversion_replaces_expression_and_source(tmp_path: Any) -> None:
    text = (
        "kpi: step\nsource: leads\nexpression: count()\nconversion:\n"
        "  base: {source: leads}\n  event: {source: opportunities}\n  entity: account_id\n"
    )
    errors = _check(tmp_path, text)
    assert sorted((e.code, e.span.line) for e in errors) == [("KPI104", 2), ("KPI104", 3)]
    assert "conversion.base" in (errors[0].hint or "")


def test_neither_expression_nor_conversion(tmp_path: Any) -> None:
    errors = _check(tmp_path, "kpi: step\nsource: leads\n")
    assert [(e.code, e.span.line) for e in errors] == [("KPI105", 1)]
    assert "expression" in errors[0].message


def test_window_does_not_combine(tmp_path: Any) -> None:
    text = (
        "kpi: step\nwindow: {to_date: year}\nconversion:\n"
        "  base: {source: leads}\n  event: {source: opportunities}\n  entity: account_id\n"
    )
    errors = _check(tmp_path, text)
    assert [(e.code, e.span.line) for e in errors] == [("KPI314", 2)]


# -- commands -------------------------------------------------------------------------


def test_commands(tmp_path: Any, capsys: Any) -> None:
    """validate, compile, explain and run on a conversion KPI, from the command line."""
    from kpiengine.cli import main
    from kpiengine.testing.dataset import write_files

    root = write_files(tmp_path / "defs", FILES)
    url = ENGINES["duckdb"].load(_tables(), tmp_path / "data")
    assert main(["validate", str(root), "--offline"]) == 0
    assert (
        main(
            [
                "compile",
                "lead_to_opp_30d",
                "--project",
                str(root),
                "--from",
                "2024-01-01",
                "--to",
                "2024-02-01",
                "--dialect",
                "postgres",
            ]
        )
        == 0
    )
    sql = capsys.readouterr().out
    assert "ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING" in sql
    assert main(["explain", "lead_to_opp_30d", "--project", str(root)]) == 0
    assert "conversion rate: leads → opportunities.created_at" in capsys.readouterr().out
    assert (
        main(
            [
                "run",
                "converted_30d",
                "--project",
                str(root),
                "--connector",
                url,
                "--from",
                "2024-01-01",
                "--to",
                "2024-07-01",
                "--format",
                "json",
            ]
        )
        == 0
    )
    import json

    rows = json.loads(capsys.readouterr().out)["rows"]
    want = expected("converted_30d", START, END)
    assert [r["value"] for r in rows] == [want[(m, None)] for m in MONTHS]


# -- the report's funnel ----------------------------------------------------------------


def test_funnel_section_values(tmp_path: Any) -> None:
    """One funnel for the leads' base events: the steps by decreasing rate, the period
    the latest whose 60-day windows closed by `to`, step rates hand-computed."""
    import kpiengine
    from kpiengine.render.renderers import render_html
    from kpiengine.render.report_data import build_report
    from kpiengine.testing.dataset import write_files

    files = dict(FILES)
    files["kpis.yaml"] += """
          - kpi: lead_to_opp_60d
            conversion:
              base: {source: leads}
              event: {source: opportunities, time: created_at}
              entity: account_id
              within: {days: 60}
        """
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    url = ENGINES["duckdb"].load(_tables(), tmp_path / "data")
    names = ["lead_to_opp_30d", "lead_to_opp_60d", "lead_to_opp", "mql_to_won_60d"]
    with kpiengine.connect(url) as connection:
        result = project.run(names, connection, start=START, end=END)
    report = build_report(project.model, result, result.alerts, result.statuses)
    assert [f.title for f in report.funnels] == [
        "leads by created_at",
        "leads by created_at where is_mql",
    ]
    leads = report.funnels[0]
    # June + 60 days is past `to` (Jul 1); April ends Apr 30, + 60 days = Jun 29 < Jul 1
    assert leads.period == dt.date(2024, 4, 1)
    rates = {
        k: expected(k, START, END)[(leads.period, None)] for k in ("lead_to_opp", "lead_to_opp_30d")
    }
    with_60 = _hand_60d(leads.period)
    shares = sorted([rates["lead_to_opp"], rates["lead_to_opp_30d"], with_60], reverse=True)
    assert [s.share for s in leads.steps] == pytest.approx([1.0, *shares])
    steps = [1.0, *shares]
    texts = [s.step_text for s in leads.steps[1:]]
    assert texts == [f"{100 * b / a:.1f} %" for a, b in itertools.pairwise(steps)]
    html = render_html(report)
    assert html.count('class="funnel-step"') == 4 + 2


def _hand_60d(month: dt.date) -> float:
    """lead_to_opp within 60 days, by the reference over that month only."""
    leads = LEADS[
        (LEADS.created_at >= month) & (LEADS.created_at < dt.date(2024, month.month + 1, 1))
    ]
    hits = 0
    for lead in leads.itertuples():
        if pd.isna(lead.account_id):
            continue
        b = dt.datetime.combine(lead.created_at, dt.time())
        times = OPPORTUNITIES[OPPORTUNITIES.account_id == lead.account_id].created_at
        hits += bool(((times >= b) & (times <= b + dt.timedelta(days=60))).any())
    return hits / len(leads)


def test_no_funnel_when_grouped(tmp_path: Any) -> None:
    import kpiengine
    from kpiengine.render.report_data import build_report
    from kpiengine.testing.dataset import write_files

    project = kpiengine.load(write_files(tmp_path / "defs", FILES))
    url = ENGINES["duckdb"].load(_tables(), tmp_path / "data")
    with kpiengine.connect(url) as connection:
        result = project.run(["lead_to_opp"], connection, start=START, end=END, by=["region"])
    assert build_report(project.model, result, [], {}).funnels == []


# -- the commands the docs show ---------------------------------------------------------

DOC_SECTIONS = {
    "docs/language.md": "## Conversion KPIs",
    "docs/semantics.md": "## Conversion KPIs (funnels)",
    "docs/reports.md": "## Funnel section",
}


def doc_commands() -> list[str]:
    """Every `kpi ...` command (in backticks) of the docs' conversion sections."""
    import re
    from pathlib import Path

    found = []
    for name, heading in DOC_SECTIONS.items():
        text = (Path(__file__).parents[1] / name).read_text(encoding="utf-8")
        section = text[text.index(heading) :]
        section = section[: section.find("\n## ", len(heading))]
        found += re.findall(r"`(kpi (?:run|explain|compile|validate)[^`]*)`", section)
    return found


def test_docs_commands_run(tmp_path: Any, capsys: Any) -> None:
    import shlex
    from pathlib import Path

    from kpiengine.cli import main
    from kpiengine.sample import write_sample

    commands = doc_commands()
    assert len(commands) >= 3
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    write_sample(url, rows=3000, seed=42, replace=True)
    definitions = Path(__file__).parents[1] / "definitions"
    for command in commands:
        args = [*shlex.split(command)[1:], "--project", str(definitions)]
        if args[0] == "run":
            args += ["--connector", url]
        assert main(args) == 0, (command, capsys.readouterr().err)
        assert "%" in capsys.readouterr().out or args[0] != "run"
