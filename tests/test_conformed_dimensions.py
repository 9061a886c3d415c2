"""Conformed dimensions and multi-hop joins (SPEC §13.3), against pandas.

The expected numbers are computed here with pandas from the rows alone (merges written out
by hand), never from the engine's SQL: KPIs of three sources grouped by one conformed
`region` in one statement, a two-hop dimension (mrr_snapshots → subscriptions → accounts),
a source mapping `region` to its own `territory` column (which wins over its join to
accounts), and a derived KPI over inputs of two sources. DuckDB and SQLite always;
PostgreSQL and Spark in the slow suite (tests/engines.py).
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import kpiengine
from kpiengine.api import load_and_check
from kpiengine.errors import DefinitionError
from kpiengine.testing.compare import same_value
from kpiengine.testing.dataset import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require

START, END = dt.date(2024, 1, 1), dt.date(2024, 4, 1)
REGIONS = ["emea", "apac", "latam", None]
TERRITORIES = ["north", "south"]

PROJECT = """\
project: conformed
dimensions:
  region: {title: Sales region, column: accounts.region}
  segment: {column: accounts.segment}
"""

SOURCES = {
    "sources/accounts.yaml": """\
source: accounts
time: created_at
columns:
  account_id: {type: integer, key: true}
  region: string
  segment: string
  created_at: date
""",
    "sources/subscriptions.yaml": """\
source: subscriptions
time: start_date
columns:
  subscription_id: {type: integer, key: true}
  account_id: integer
  plan: string
  start_date: date
joins:
  - {source: accounts, on: account_id}
""",
    "sources/mrr_snapshots.yaml": """\
source: mrr_snapshots
time: snapshot_date
columns:
  snapshot_date: date
  subscription_id: integer
  mrr: number
joins:
  - {source: subscriptions, on: subscription_id}
""",
    "sources/deals.yaml": """\
source: deals
time: closed_at
columns:
  deal_id: {type: integer, key: true}
  account_id: integer
  amount: number
  stage: string
  closed_at: timestamp
joins:
  - {source: accounts, on: account_id}
""",
    "sources/tickets.yaml": """\
source: tickets
time: created_at
columns:
  ticket_id: {type: integer, key: true}
  account_id: integer
  territory: string
  created_at: timestamp
joins:
  - {source: accounts, on: account_id}
dimensions:
  region: territory
""",
}

KPIS = """\
kpis:
  - kpi: bookings
    source: deals
    expression: sum(amount where stage = 'won')
  - kpi: win_rate
    source: deals
    expression: count(where stage = 'won') / count(where stage in ('won', 'lost'))
    dimensions: [accounts.region]
  - kpi: mrr
    source: mrr_snapshots
    expression: sum(mrr)
    dimensions: [subscriptions.accounts.region, region, segment]
  - kpi: tickets_opened
    source: tickets
    expression: count()
  - kpi: bookings_per_mrr
    expression: bookings / mrr
"""


def _dataset(seed: int = 13) -> dict[str, tuple[str, list[tuple[Any, ...]]]]:
    """Rows with null regions, accounts that do not exist, and rows outside the range."""
    rng = random.Random(seed)
    accounts = [
        (i, rng.choice(REGIONS), rng.choice(["smb", "enterprise", None]), "2023-01-01")
        for i in range(1, 13)
    ]
    subscriptions = [
        (s, rng.randint(1, 14), rng.choice(["starter", "pro"]), "2023-06-01")  # 13, 14: none
        for s in range(1, 21)
    ]
    months = ["2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]
    snapshots = [
        (m, s, round(rng.uniform(10, 500), 2))
        for m in months
        for s in range(1, 21)
        if rng.random() < 0.7
    ]
    deals = []
    for d in range(1, 121):
        day = dt.datetime(2023, 12, 1) + dt.timedelta(days=rng.randint(0, 150), hours=9)
        stage = rng.choice(["won", "lost", "open"])
        amount = None if rng.random() < 0.1 else round(rng.uniform(100, 9000), 2)
        deals.append((d, rng.randint(1, 14), amount, stage, day.isoformat(" ")))
    tickets = []
    for t in range(1, 81):
        day = dt.datetime(2023, 12, 1) + dt.timedelta(days=rng.randint(0, 150), hours=15)
        territory = rng.choice([*TERRITORIES, None])
        tickets.append((t, rng.randint(1, 14), territory, day.isoformat(" ")))
    return {
        "accounts": (
            "account_id INTEGER, region VARCHAR, segment VARCHAR, created_at DATE",
            accounts,
        ),
        "subscriptions": (
            "subscription_id INTEGER, account_id INTEGER, plan VARCHAR, start_date DATE",
            subscriptions,
        ),
        "mrr_snapshots": ("snapshot_date DATE, subscription_id INTEGER, mrr DOUBLE", snapshots),
        "deals": (
            "deal_id INTEGER, account_id INTEGER, amount DOUBLE, stage VARCHAR, "
            "closed_at TIMESTAMP",
            deals,
        ),
        "tickets": (
            "ticket_id INTEGER, account_id INTEGER, territory VARCHAR, created_at TIMESTAMP",
            tickets,
        ),
    }


DATA = _dataset()


def _frames() -> dict[str, pd.DataFrame]:
    return {
        name: pd.DataFrame(rows, columns=[c.split()[0] for c in ddl.split(",")])
        for name, (ddl, rows) in DATA.items()
    }


# -- pandas, written out ---------------------------------------------------------------


def _in_range(df: pd.DataFrame, time: str) -> pd.DataFrame:
    t = pd.to_datetime(df[time])
    df = df[(t >= pd.Timestamp(START)) & (t < pd.Timestamp(END))].copy()
    df["period"] = pd.to_datetime(df[time]).dt.to_period("M").dt.start_time.dt.date
    return df


def _account_region(f: dict[str, pd.DataFrame], df: pd.DataFrame) -> pd.Series:
    region = f["accounts"].set_index("account_id")["region"]
    return df["account_id"].map(region)


def _grid(df: pd.DataFrame, dim: str) -> list[tuple[dt.date, Any]]:
    """Every month of the range × every dimension value its rows had in the range."""
    months = pd.date_range(START, END - dt.timedelta(days=1), freq="MS").date
    values = {None if pd.isna(v) else v for v in df[dim]}
    return [(m, v) for m in months for v in values]


def _by(df: pd.DataFrame, dim: str, fn) -> dict[tuple[dt.date, Any], float | None]:
    groups = {
        (p, None if pd.isna(v) else v): g
        for (p, v), g in df.groupby(["period", df[dim].astype(object)], dropna=False)
    }
    return {key: fn(groups.get(key, df.iloc[0:0])) for key in _grid(df, dim)}


def _sum_where(values: pd.Series, mask: pd.Series) -> float | None:
    kept = values[mask & values.notna()]
    return float(kept.sum()) if len(kept) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def expected(kpi: str, dim: str = "region") -> dict[tuple[dt.date, Any], float | None]:
    f = _frames()
    if kpi in ("bookings", "win_rate"):
        deals = _in_range(f["deals"], "closed_at")
        deals["region"] = _account_region(f, deals)  # deals have no region column: the join
        if kpi == "bookings":
            return _by(deals, "region", lambda g: _sum_where(g["amount"], g["stage"] == "won"))
        return _by(
            deals,
            "region",
            lambda g: _ratio(
                float((g["stage"] == "won").sum()), float(g["stage"].isin(["won", "lost"]).sum())
            ),
        )
    if kpi == "mrr":
        snaps = _in_range(f["mrr_snapshots"], "snapshot_date")
        owner = f["subscriptions"].set_index("subscription_id")["account_id"]
        snaps["account_id"] = snaps["subscription_id"].map(owner)  # hop 1
        snaps[dim] = _account_region(f, snaps)  # hop 2 (left joins: unmatched → null)
        return _by(snaps, dim, lambda g: _sum_where(g["mrr"], pd.Series(True, index=g.index)))
    if kpi == "tickets_opened":
        tickets = _in_range(f["tickets"], "created_at")
        if dim == "region":  # the source maps region to its own territory
            tickets["region"] = tickets["territory"]
        else:  # accounts.region: through the join
            tickets[dim] = _account_region(f, tickets)
        return _by(tickets, dim, lambda g: float(len(g)))
    raise AssertionError(kpi)


def _rows(result, dim: str) -> dict[str, dict[tuple[dt.date, Any], float | None]]:
    found: dict[str, dict[tuple[dt.date, Any], float | None]] = {}
    for row in result.rows:
        dims = dict(row.dimensions)
        assert list(dims) == [dim], "the output key is the name given in --by"
        found.setdefault(row.kpi, {})[(row.period, dims[dim])] = row.value
    return found


def _assert_matches(got: dict, want: dict) -> None:
    assert sorted(got, key=repr) == sorted(want, key=repr)
    wrong = {k: (got[k], want[k]) for k in want if not same_value(got[k], want[k])}
    assert not wrong, wrong
    assert any(v not in (None, 0) for v in want.values())


# -- on every engine --------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("conformed") / "defs"
    return write_files(root, {"kpiengine.yaml": PROJECT, **SOURCES, "kpis/kpis.yaml": KPIS})


@pytest.fixture(params=engine_params())
def connected(request: pytest.FixtureRequest, project_root: Path, tmp_path: Path):
    engine = ENGINES[request.param]
    require(engine)
    url = engine.load(arrow_tables(DATA), tmp_path)
    project = kpiengine.load(project_root)
    with kpiengine.connect(url) as connection:
        yield project, connection


def test_three_sources_one_conformed_region(connected):
    """deals (one hop), mrr_snapshots (two hops), tickets (mapped) in one statement."""
    project, connection = connected
    kpis = ["bookings", "win_rate", "mrr", "tickets_opened"]
    result = project.run(kpis, connection, grain="month", start=START, end=END, by=["region"])
    got = _rows(result, "region")
    for kpi in kpis:
        _assert_matches(got[kpi], expected(kpi))


def test_two_hop_dimension_explicit_path_and_shortest_path(connected):
    """`region`, `accounts.region` (shortest path) and the explicit path agree on mrr."""
    project, connection = connected
    for dim in ("subscriptions.accounts.region", "accounts.region"):
        result = project.run(["mrr"], connection, grain="month", start=START, end=END, by=[dim])
        _assert_matches(_rows(result, dim)["mrr"], expected("mrr", dim))


def test_mapping_wins_over_the_join_but_the_join_stays_reachable(connected):
    project, connection = connected
    by_region = project.run(
        ["tickets_opened"], connection, grain="month", start=START, end=END, by=["region"]
    )
    _assert_matches(_rows(by_region, "region")["tickets_opened"], expected("tickets_opened"))
    by_account = project.run(
        ["tickets_opened"], connection, grain="month", start=START, end=END, by=["accounts.region"]
    )
    _assert_matches(
        _rows(by_account, "accounts.region")["tickets_opened"],
        expected("tickets_opened", "accounts.region"),
    )


def test_derived_kpi_over_two_sources_by_the_conformed_region(connected):
    project, connection = connected
    result = project.run(
        ["bookings_per_mrr"], connection, grain="month", start=START, end=END, by=["region"]
    )
    got = _rows(result, "region")["bookings_per_mrr"]
    bookings, mrr = expected("bookings"), expected("mrr")
    shared = set(bookings) & set(mrr)
    assert shared <= set(got) <= set(bookings) | set(mrr)
    for key in got:
        want = _ratio(bookings.get(key), mrr.get(key))
        assert same_value(got[key], want), (key, got[key], want)
    assert any(got[k] is not None for k in shared)


# -- the statement ----------------------------------------------------------------------


def test_two_hops_are_a_chain_of_left_joins(project_root):
    sql = kpiengine.load(project_root).compile(
        ["mrr"], grain="month", start=START, end=END, by=["region"]
    )
    flat = " ".join(sql.split())
    assert (
        "FROM mrr_snapshots AS t LEFT JOIN subscriptions AS j_subscriptions "
        "ON t.subscription_id = j_subscriptions.subscription_id "
        "LEFT JOIN accounts AS j_subscriptions__accounts "
        "ON j_subscriptions.account_id = j_subscriptions__accounts.account_id"
    ) in flat
    assert "j_subscriptions__accounts.region AS d0" in flat


# -- static checks ----------------------------------------------------------------------


def _check(tmp_path: Path, files: dict[str, str]) -> list:
    root = write_files(tmp_path / "defs", {"kpiengine.yaml": PROJECT, **SOURCES, **files})
    _, diagnostics = load_and_check(root, lint=False)
    return [d for d in diagnostics if d.severity.name.lower() == "error"]


DIAMOND = {
    "sources/a.yaml": """\
source: a
time: at
columns: {a_id: integer, account_id: integer, at: date}
joins: [{source: accounts, on: account_id}]
""",
    "sources/b.yaml": """\
source: b
time: at
columns: {b_id: integer, account_id: integer, at: date}
joins: [{source: accounts, on: account_id}]
""",
    "sources/x.yaml": """\
source: x
time: at
columns: {a_id: integer, b_id: integer, at: date}
joins: [{source: a, on: a_id}, {source: b, on: b_id}]
""",
}


def test_two_shortest_paths_are_an_error_naming_both(tmp_path):
    files = {
        **DIAMOND,
        "kpis/x.yaml": "kpi: xs\nsource: x\nexpression: count()\ndimensions: [accounts.region]\n",
    }
    errors = _check(tmp_path, files)
    assert [e.code for e in errors] == ["KPI313"]
    assert "`a.accounts.region` or `b.accounts.region`" in errors[0].message
    assert (errors[0].span.line, errors[0].span.col) == (4, 14)


def test_an_explicit_path_is_always_allowed(tmp_path):
    files = {
        **DIAMOND,
        "kpis/x.yaml": "kpi: xs\nsource: x\nexpression: count(where a.accounts.region = 'emea')\n"
        "dimensions: [b.accounts.region]\n",
    }
    assert _check(tmp_path, files) == []


def test_by_region_over_an_ambiguous_path_is_refused_naming_both(tmp_path):
    root = write_files(
        tmp_path / "defs",
        {"kpiengine.yaml": PROJECT, **SOURCES, **DIAMOND, "kpis/x.yaml": KPI_X},
    )
    with pytest.raises(DefinitionError) as raised:
        kpiengine.load(root).plan(["xs"], by=["region"])
    text = str(raised.value) + " ".join(str(d.hint) for d in raised.value.diagnostics)
    assert "KPI310" in text and "a.accounts.region" in text and "b.accounts.region" in text


KPI_X = "kpi: xs\nsource: x\nexpression: count()\n"


def test_a_conformed_dimension_a_kpi_cannot_reach(tmp_path):
    files = {
        "sources/notes.yaml": "source: notes\ntime: at\ncolumns: {at: date}\n",
        "kpis/notes.yaml": "kpi: notes\nsource: notes\nexpression: count()\ndimensions: [region]\n",
    }
    errors = _check(tmp_path, files)
    assert [e.code for e in errors] == ["KPI310"]
    assert "no join path to `accounts`" in errors[0].hint
    assert (errors[0].span.line, errors[0].span.col) == (4, 14)


def test_unknown_conformed_dimension_and_missing_mapped_column(tmp_path):
    files = {
        "sources/notes.yaml": "source: notes\ntime: at\ncolumns: {at: date, zone: string}\n"
        "dimensions: {regoin: zone, segment: zonee}\n",
    }
    errors = _check(tmp_path, files)
    assert sorted((e.code, e.span.line) for e in errors) == [("KPI301", 4), ("KPI310", 4)]
    unknown = next(e for e in errors if e.code == "KPI310")
    assert "unknown conformed dimension `regoin`" in unknown.message
    assert "region" in (unknown.hint or "")
    missing = next(e for e in errors if e.code == "KPI301")
    assert "`zonee`" in missing.message and "zone" in (missing.hint or "")


def test_a_conformed_dimension_of_an_unknown_source_or_column(tmp_path):
    root = write_files(
        tmp_path / "defs",
        {
            "kpiengine.yaml": "dimensions:\n  region: {column: acounts.region}\n"
            "  tier: {column: accounts.tier}\n",
            **SOURCES,
        },
    )
    errors = [d for d in load_and_check(root, lint=False)[1] if d.severity.name == "ERROR"]
    assert sorted((e.code, e.span.line) for e in errors) == [("KPI301", 3), ("KPI311", 2)]


def test_catalog_declares_the_revenue_teams_dimensions():
    """region, segment, plan, product and channel are conformed in the catalog; a KPI
    whose own `dimensions:` leaves one out is told so, not that a join is missing."""
    from pathlib import Path

    import kpiengine
    from kpiengine.errors import DefinitionError

    catalog = kpiengine.load(Path(__file__).resolve().parents[1] / "definitions")
    assert {"region", "segment", "plan", "product", "channel"} <= set(catalog.model.dimensions)
    range_ = {"grain": "month", "start": "2025-01-01", "end": "2025-02-01"}
    for kpis, by in ((["mrr", "revenue"], "product"), (["leads_generated"], "channel")):
        assert "GROUP BY" in catalog.compile(kpis, by=[by], **range_)
    with pytest.raises(DefinitionError) as error:
        catalog.compile(["arpa"], by=["plan"], **range_)
    (problem,) = error.value.diagnostics
    assert problem.hint == "`customers` declares dimensions: accounts.region, accounts.segment"


def test_an_explicit_path_that_comes_back_is_a_cycle():
    """leads ↔ opportunities join both ways (one lead, one deal): legitimate, and the
    breadth-first resolution never loops; but a path written to go round the cycle
    (`leads.opportunities.amount` from opportunities) is refused, with the reason."""
    from pathlib import Path

    import kpiengine
    from kpiengine.language.names import resolve_column, unresolved_reason

    catalog = kpiengine.load(Path(__file__).resolve().parents[1] / "definitions").model
    deals = catalog.sources["opportunities"]
    assert resolve_column(catalog, deals, ("leads", "source")) is not None
    parts = ("leads", "opportunities", "amount")
    assert resolve_column(catalog, deals, parts) is None
    assert "comes back to `opportunities` (a cycle in joins)" in (
        unresolved_reason(catalog, deals, parts) or ""
    )
