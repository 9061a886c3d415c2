"""``kpi cohort`` (SPEC §13.6): retention triangles against pandas, on every engine.

Accounts first pay (``accounts.first_paid``, a timestamp) in some month; ``usage`` holds
their monthly amounts. The cohort of a usage row is the month of its account's first
payment. Hand-placed accounts give exact triangles: the January cohort expands, shrinks
and half churns (net and gross retention differ), February has no cohort at all (value and
retention null), March starts at 0 (retention null), and accounts paying first before the
range, after it, or never stay out. Random accounts fill April and earlier cohorts. The
pandas side buckets and groups the raw rows itself; it never looks at the product's SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import kpiengine
from kpiengine.cli import main
from kpiengine.cohort import cohort_plans, run_cohort
from tests.conftest import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require

FILES = {
    "kpiengine.yaml": "project: cohorts\ncurrency: EUR\n",
    "accounts.yaml": """
        source: accounts
        table: accounts
        time: signed_up
        columns:
          account_id: {type: integer, key: true}
          region: string
          signed_up: date
          first_paid: timestamp
        """,
    "usage.yaml": """
        source: usage
        table: usage
        time: month
        columns:
          account_id: integer
          month: date
          amount: number
        joins:
          - source: accounts
            on: account_id
        """,
    "events.yaml": """
        source: events
        table: events
        time: happened_at
        columns:
          event_id: integer
          happened_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            unit: currency
            source: usage
            expression: sum(amount)
            dimensions: [accounts.region]
          - kpi: active
            unit: count
            source: usage
            expression: count_distinct(account_id where amount > 0)
          - kpi: arpa
            unit: currency
            expression: revenue / active
          - kpi: events
            unit: count
            source: events
            expression: count()
        """,
}

START, END = dt.date(2025, 1, 1), dt.date(2025, 5, 1)
MONTHS = [dt.date(2025, m, 1) for m in range(1, 5)]
COLUMN = "accounts.first_paid"


def _data() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ts = dt.datetime.fromisoformat
    accounts: list[tuple[Any, ...]] = [
        (1, "emea", dt.date(2024, 11, 2), ts("2025-01-10 08:00:00")),
        (2, "apac", dt.date(2024, 12, 2), ts("2025-01-31 23:59:59")),
        (3, "emea", dt.date(2025, 2, 2), ts("2025-03-01 00:00:00")),
        (4, "emea", dt.date(2024, 10, 2), ts("2024-12-15 00:00:00")),  # before the range
        (5, "apac", dt.date(2024, 10, 2), None),  # never paid
        (6, "apac", dt.date(2025, 3, 2), ts("2025-05-02 00:00:00")),  # after the range
    ]
    usage: list[tuple[Any, ...]] = [
        *((1, m, a) for m, a in zip(MONTHS, [100.0, 120.0, 50.0, 0.0], strict=True)),
        *((2, m, 100.0) for m in MONTHS),
        (3, MONTHS[2], 0.0),
        (3, MONTHS[3], 40.0),
        *((4, m, 30.0) for m in MONTHS),
        *((5, m, 20.0) for m in MONTHS),
        (6, MONTHS[3], 10.0),
        (1, dt.date(2024, 12, 1), 999.0),  # before the range: not read
        (2, dt.date(2025, 5, 1), 999.0),  # at `to`: not read
    ]
    rng = np.random.default_rng(136)
    for account in range(10, 50):
        paid = None
        if rng.random() > 0.15:  # April 2025, or a month of 2024 (before the range)
            month = 4 if rng.random() < 0.5 else int(rng.integers(1, 13))
            year = 2025 if month == 4 and rng.random() < 0.8 else 2024
            paid = dt.datetime(year, month, int(rng.integers(1, 29)), int(rng.integers(0, 24)))
        accounts.append((account, "latam", dt.date(2024, 1, 1), paid))
        for month_start in MONTHS:
            if rng.random() < 0.7:
                usage.append((account, month_start, float(rng.integers(0, 5)) * 25.0))
    return accounts, usage


ACCOUNTS, USAGE = _data()
TABLES = {
    "accounts": (
        "account_id INTEGER, region VARCHAR, signed_up DATE, first_paid TIMESTAMP",
        ACCOUNTS,
    ),
    "usage": ("account_id INTEGER, month DATE, amount DOUBLE", USAGE),
    "events": ("event_id INTEGER, happened_at TIMESTAMP", [(1, dt.datetime(2025, 1, 5))]),
}


# -- the independent computation -------------------------------------------------------


def _frame(start: dt.date = START, end: dt.date = END) -> pd.DataFrame:
    usage = pd.DataFrame(USAGE, columns=["account_id", "month", "amount"])
    accounts = pd.DataFrame(ACCOUNTS, columns=["account_id", "region", "signed_up", "first_paid"])
    rows = usage.merge(accounts, on="account_id", how="left")
    rows = rows[(rows.month >= start) & (rows.month < end)]
    rows = rows.assign(
        cohort=[None if pd.isna(t) else dt.date(t.year, t.month, 1) for t in rows.first_paid]
    )
    return rows


def _kpi(rows: pd.DataFrame, kpi: str) -> Any:
    """A KPI over the rows of one cohort and month; ``rows`` may be empty."""
    revenue = rows.amount.sum() if len(rows) else None
    active = rows[rows.amount > 0].account_id.nunique()
    if kpi == "revenue":
        return revenue
    if kpi == "active":
        return active
    return None if revenue is None or active == 0 else revenue / active


def expected(kpi: str, per: bool = False) -> list[dict[str, Any]]:
    """Every cohort in range × every month from its own: value, retention (and gross)."""
    rows = _frame()
    found = []
    for i, cohort in enumerate(MONTHS):
        mine = rows[rows.cohort == cohort]
        seen = len(mine) > 0  # a cohort without rows in range has no values at all
        first = _kpi(mine[mine.month == cohort], kpi) if seen else None
        starts = mine[mine.month == cohort].groupby("account_id").amount.sum()
        starts = starts[starts > 0]
        for month in MONTHS[i:]:
            value = _kpi(mine[mine.month == month], kpi) if seen else None
            ok = value is not None and first not in (None, 0)
            row = {
                "cohort": cohort.isoformat(),
                "age": MONTHS.index(month) - i,
                "period": month.isoformat(),
                "value": value,
                "retention": value / first if ok else None,
            }
            if per:
                now = mine[mine.month == month].groupby("account_id").amount.sum()
                kept = sum(min(now.get(a, 0.0), start) for a, start in starts.items())
                row["gross_retention"] = kept / starts.sum() if len(starts) else None
            found.append(row)
    return found


def close(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [(r["cohort"], r["period"], r["age"]) for r in got] == [
        (r["cohort"], r["period"], r["age"]) for r in want
    ]
    for mine, theirs in zip(got, want, strict=True):
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] is not None and math.isclose(mine[key], value, rel_tol=1e-9), (
                    key,
                    mine,
                    theirs,
                )
            else:
                assert mine[key] == value, (key, mine, theirs)


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_files(tmp_path_factory.mktemp("cohort") / "defs", FILES)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {}


def _url(engine: str, urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    require(ENGINES[engine])
    if engine not in urls:
        folder = tmp_path_factory.mktemp(engine)
        urls[engine] = ENGINES[engine].load(arrow_tables(TABLES), folder)
    return urls[engine]


def cohort(root: Any, url: str, kpi: str, per: str | None = None, **options: Any) -> Any:
    project = kpiengine.load(root)
    options = {"start": START, "end": END, **options}
    plans = cohort_plans(project, kpi, COLUMN, per, **options)
    with kpiengine.connect(url) as connection:
        return run_cohort(project, plans, connection, COLUMN, per)


# -- the triangles on every engine -------------------------------------------------------


@pytest.mark.parametrize("engine", engine_params())
@pytest.mark.parametrize("kpi", ["revenue", "active", "arpa"])
def test_triangle_matches_pandas(engine, kpi, root, urls, tmp_path_factory):
    url = _url(engine, urls, tmp_path_factory)
    got = cohort(root, url, kpi, per="account_id" if kpi == "revenue" else None)
    close(got.to_json()["rows"], expected(kpi, per=kpi == "revenue"))
    assert len(got.cells) == 4 + 3 + 2 + 1


def test_hand_computed_cohorts(root, urls, tmp_path_factory):
    """The January cohort (accounts 1 and 2), February (none) and March (account 3)."""
    url = _url("duckdb", urls, tmp_path_factory)
    rows = {
        (r["cohort"], r["age"]): r
        for r in cohort(root, url, "revenue", "account_id").to_json()["rows"]
    }
    jan = [rows[("2025-01-01", age)] for age in range(4)]
    assert [r["value"] for r in jan] == [200, 220, 150, 100]
    assert [r["retention"] for r in jan] == [1, 1.1, 0.75, 0.5]  # net: expansion counts
    assert [r["gross_retention"] for r in jan] == [1, 1, 0.75, 0.5]  # capped per account
    feb = [rows[("2025-02-01", age)] for age in range(3)]
    assert all(r["value"] is None and r["retention"] is None for r in feb)  # empty cohort
    assert [r["period"] for r in feb] == ["2025-02-01", "2025-03-01", "2025-04-01"]
    mar = [rows[("2025-03-01", age)] for age in range(2)]
    assert [r["value"] for r in mar] == [0, 40]
    assert [r["retention"] for r in mar] == [None, None]  # value 0 at age 0: no ratio
    arpa = cohort(root, url, "arpa").to_json()["rows"]
    assert [r["value"] for r in arpa[:4]] == [100, 110, 75, 100]  # acc 1 is 0 in April


def test_fiscal_quarters(root, urls, tmp_path_factory, tmp_path):
    """Cohorts bucket like periods: fiscal quarters from February."""
    url = _url("duckdb", urls, tmp_path_factory)
    files = {**FILES, "kpiengine.yaml": "project: cohorts\nfiscal_year_start: 2\n"}
    fiscal = write_files(tmp_path / "defs", files)
    got = cohort(fiscal, url, "revenue", grain="quarter", start=dt.date(2024, 11, 1))
    rows = _frame(dt.date(2024, 11, 1))
    rows = rows[rows.first_paid.notna() & (rows.first_paid >= pd.Timestamp("2024-11-01"))]

    def quarter(day: Any) -> dt.date:
        index = day.year * 12 + day.month - 2  # months since a February
        start = index - index % 3 + 1
        return dt.date(start // 12, start % 12 + 1, 1)

    rows = rows.assign(q=[quarter(m) for m in rows.month], c=[quarter(t) for t in rows.first_paid])
    quarters = [dt.date(2024, 11, 1), dt.date(2025, 2, 1)]
    want = []
    for i, c in enumerate(quarters):
        first = rows[(rows.c == c) & (rows.q == c)].amount.sum()
        for q in quarters[i:]:
            value = rows[(rows.c == c) & (rows.q == q)].amount.sum()
            want.append(
                {
                    "cohort": c.isoformat(),
                    "age": quarters.index(q) - i,
                    "period": q.isoformat(),
                    "value": value,
                    "retention": value / first,
                }
            )
    close(got.to_json()["rows"], want)


def test_where_filters_rows(root, urls, tmp_path_factory):
    url = _url("duckdb", urls, tmp_path_factory)
    got = cohort(root, url, "revenue", where="accounts.region = 'emea'").to_json()["rows"]
    jan = [r["value"] for r in got if r["cohort"] == "2025-01-01"]
    assert jan == [100, 120, 50, 0]  # account 1 only


# -- the command -----------------------------------------------------------------------


def _cli(root: Any, url: str, *args: str) -> list[str]:
    column = [] if "--cohort" in args else ["--cohort", COLUMN]
    return [
        "cohort",
        *args,
        *column,
        "--from",
        str(START),
        "--to",
        str(END),
        "--project",
        str(root),
        "--connector",
        url,
    ]


def test_cli_formats(root, urls, tmp_path_factory, capsys, tmp_path):
    url = _url("duckdb", urls, tmp_path_factory)
    assert main(_cli(root, url, "revenue", "--format", "json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["kpi"] == "revenue" and document["cohort"] == COLUMN
    assert document["from"] == "2025-01-01" and document["to"] == "2025-05-01"
    close(document["rows"], expected("revenue"))
    assert set(document["rows"][0]) == {"cohort", "age", "period", "value", "retention"}

    assert main(_cli(root, url, "revenue", "--format", "csv", "--per", "account_id")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cohort,age,period,value,retention,gross_retention"
    assert lines[1:5] == [
        "2025-01-01,0,2025-01-01,200.0,1.0,1.0",
        "2025-01-01,1,2025-02-01,220.0,1.1,1.0",
        "2025-01-01,2,2025-03-01,150.0,0.75,0.75",
        "2025-01-01,3,2025-04-01,100.0,0.5,0.5",
    ]
    assert lines[5] == "2025-02-01,0,2025-02-01,,,"  # the empty cohort: nulls
    assert len(lines) == 11

    assert main(_cli(root, url, "revenue", "--format", "markdown")) == 0
    markdown = capsys.readouterr().out
    assert "| cohort | age 0 value | 0 | 1 | 2 | 3 |" in markdown
    assert "| 2025-01-01 | 200 EUR | 100.0 % | 110.0 % | 75.0 % | 50.0 % |" in markdown
    assert "| 2025-03-01 | 0.00 EUR | — | — |  |  |" in markdown

    assert main(_cli(root, url, "revenue")) == 0
    text = capsys.readouterr().out
    assert "2025-01-01      200 EUR  100.0 %  110.0 %  75.0 %  50.0 %" in text

    out = tmp_path / "cohorts.html"
    assert (
        main(_cli(root, url, "revenue", "--per", "account_id", "--format", "html", "-o", str(out)))
        == 0
    )
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert page.count('class="heat"') == 2 * 10  # net and gross triangles
    assert 'title="2025-02-01: revenue 220 EUR, retention 110.0 %" style="background-color:' in page
    assert ">110.0 %</td>" in page


def test_html_escapes_definition_text(root, urls, tmp_path_factory, tmp_path, capsys):
    url = _url("duckdb", urls, tmp_path_factory)
    files = dict(FILES)
    files["kpis.yaml"] = FILES["kpis.yaml"].replace(
        "- kpi: revenue\n", '- kpi: revenue\n            title: "<script>alert(1)</script>"\n'
    )
    hostile = write_files(tmp_path / "defs", files)
    assert main(_cli(hostile, url, "revenue", "--format", "html")) == 0
    page = capsys.readouterr().out
    assert "<script>" not in page and "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["revenu"], "unknown KPI `revenu`; did you mean `revenue`?"),
        (["revenue", "--grain", "all"], "needs a time grain, not `all`"),
        (["revenue", "--cohort", "first_paid"], "--cohort takes SOURCE.COLUMN"),
        (["revenue", "--cohort", "acounts.first_paid"], "did you mean `accounts`?"),
        (["revenue", "--cohort", "accounts.first_payd"], "did you mean `first_paid`?"),
        (["revenue", "--cohort", "accounts.region"], "is a string column, not a date"),
        (
            ["revenue", "--cohort", "accounts.region"],
            "date columns of `accounts`: signed_up, first_paid",
        ),
        (["events"], "KPI `events` reads source `events`, which does not reach it; hint:"),
        (["revenue", "--per", "nothing"], "--per `nothing`: KPI `revenue` reads source `usage`"),
    ],
)
def test_bad_inputs_are_usage_errors(root, urls, tmp_path_factory, capsys, args, message):
    url = _url("duckdb", urls, tmp_path_factory)
    assert main(_cli(root, url, *args)) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err


# -- the heat map in a real browser ------------------------------------------------------


@pytest.mark.slow
def test_heat_map_in_chromium_without_javascript(tmp_path, run_output):
    """The demo report's cohort section and the standalone page: drawn with JavaScript
    off, coloured by inline styles, numbers as text, no request leaves the file."""
    from tests.test_browser import CHROMIUM, open_report

    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    out = tmp_path / "demo"
    assert main(["demo", "--rows", "3000", "--out", str(out)]) == 0
    standalone = tmp_path / "cohorts.html"
    command = ["cohort", "customers", "--cohort", "accounts.customer_since", "--format", "html"]
    command += ["--project", str(Path(kpiengine.__file__).parents[1] / "definitions")]
    command += ["--connector", f"duckdb:///{out / 'warehouse.duckdb'}", "-o", str(standalone)]
    assert main([*command, "--from", "2025-01-01", "--to", "2026-01-01"]) == 0
    from tests.test_browser import ARGS

    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for path, tables in ((out / "report.html", 2), (standalone, 1)):
                page, events = open_report(browser, path, javascript=False)
                section = page.locator("section.cohort")
                assert section.count() == 1
                assert page.locator("table.heatmap").count() == tables
                cells = page.locator("table.heatmap td.heat")
                assert cells.count() >= 12 * 13 // 2  # a 12-month triangle at least
                assert cells.first.inner_text().strip() == "100.0 %"
                box = section.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
                colour = cells.first.evaluate("cell => getComputedStyle(cell).backgroundColor")
                assert colour == "rgb(9, 105, 218)"  # 100 %: the full colour, inline
                assert [u for u in events["requests"] if not u.startswith("file://")] == []
                assert events["console"] == [] and events["dialogs"] == []
                if path == standalone:
                    run_output.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(run_output / "cohorts.png"), full_page=True)
        finally:
            browser.close()


# -- the commands the docs show ------------------------------------------------------------

DOCS = ("docs/cli.md", "docs/reports.md", "docs/semantics.md")


def doc_commands() -> list[str]:
    """Every `kpi cohort` command of the docs, in code blocks or in backticks, without
    placeholders (upper-case words such as KPI or SOURCE.COLUMN)."""
    import re
    import shlex

    found: list[str] = []
    for name in DOCS:
        text = (Path(kpiengine.__file__).parents[1] / name).read_text(encoding="utf-8")
        candidates = re.findall(r"^kpi cohort [^\n]+", text, re.M)
        candidates += re.findall(r"`(kpi cohort [^`]+)`", text)
        for command in candidates:
            words = shlex.split(command)
            if not any(re.fullmatch(r"[A-Z][A-Z._]*", w) for w in words):
                found.append(command)
    return list(dict.fromkeys(found))


def test_docs_commands_run(tmp_path, monkeypatch, capsys):
    import shlex

    from kpiengine.sample import write_sample

    commands = doc_commands()
    assert len(commands) >= 5
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    write_sample(url, rows=3000, seed=42, replace=True)
    definitions = Path(kpiengine.__file__).parents[1] / "definitions"
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = [*shlex.split(command)[1:], "--project", str(definitions), "--connector", url]
        assert main(args) == 0, (command, capsys.readouterr().err)
    assert "Retention of customers" in (tmp_path / "cohorts.html").read_text(encoding="utf-8")
