"""Flow and snapshot KPIs of one table in one request (the catalog's MRR movements and
balances): flows read every row in range, the first period of an unaligned range from
``from`` on, while ``last``/``first`` KPIs take their snapshot times among the rows in
range and a look-back reads whole earlier periods. Issue 16 measured sharing one scan
between them (docs/performance.md, "Where the by-region time goes"): no gain at 1M, so
each keeps its scan; this pins their numbers and that shape.

Expectations are computed here with pandas over the raw rows, on every engine.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require
from tests.series import assert_same, got

FILES = {
    "ledger.yaml": """
        source: ledger
        table: ledger
        time: snapshot_at
        columns:
          region: string
          kind: string
          balance: number
          change: number
          snapshot_at: date
        """,
    "kpis.yaml": """
        kpis:
          - kpi: closing
            source: ledger
            expression: sum(balance)
            semi_additive: last
          - kpi: opening
            source: ledger
            expression: sum(balance - change)
            semi_additive: first
          - kpi: moved
            source: ledger
            expression: sum(change)
          - kpi: new_moves
            source: ledger
            expression: sum(change where kind = 'new')
          - kpi: churned
            source: ledger
            expression: sum(change)
            filter: kind = 'churn'
          - kpi: closing_before
            expression: previous(closing)
        """,
}

KPIS = ["closing", "opening", "moved", "new_moves", "churned", "closing_before"]
START, END = "2024-02-10", "2024-08-01"  # unaligned: February from the 10th


def _ledger() -> pd.DataFrame:
    """Rows on irregular days (several regions and kinds a day, some days without rows),
    December 2023 to September 2024: before, in and after the range."""
    rng = np.random.default_rng(16)
    rows = []
    day = dt.date(2023, 12, 1)
    while day < dt.date(2024, 10, 1):
        for _ in range(int(rng.integers(1, 5))):
            region = ("emea", "apac", "latam")[int(rng.integers(0, 3))]
            kind = ("new", "churn", "expansion")[int(rng.integers(0, 3))]
            balance = float(rng.integers(0, 50) * 10)
            change = float(rng.integers(-20, 20))
            rows.append((region, kind, balance, change, day))
        day += dt.timedelta(days=int(rng.integers(1, 9)))
    return pd.DataFrame(rows, columns=["region", "kind", "balance", "change", "snapshot_at"])


LEDGER = _ledger()


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"shared_scan_{request.param}")
    rows = list(LEDGER.itertuples(index=False, name=None))
    columns = "region VARCHAR, kind VARCHAR, balance DOUBLE, change DOUBLE, snapshot_at DATE"
    url = engine.load(arrow_tables({"ledger": (columns, rows)}), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


def _frame(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    moment = pd.to_datetime(LEDGER["snapshot_at"])
    frame = LEDGER.assign(moment=moment)
    frame = frame[(frame["moment"] >= start) & (frame["moment"] < end)]
    return frame.assign(period=frame["moment"].dt.to_period("M").dt.start_time)


def _total(rows: pd.DataFrame, column: pd.Series) -> float | None:
    return float(column.sum()) if len(rows) else None


def expected(kpi: str, by_region: bool) -> dict:
    """Month grain over [START, END): flows over every row in range; ``last``/``first``
    over the rows at the period's latest (earliest) time in range (one time for every
    region); ``closing_before`` the previous month's ``closing`` over that whole month."""
    start, end = pd.Timestamp(START), pd.Timestamp(END)
    periods = pd.period_range(start, end - pd.Timedelta(days=1), freq="M").start_time
    if kpi == "closing_before":
        before = pd.Timestamp("2024-01-01")
        whole = _frame(before, pd.Timestamp("2024-02-01"))
        frame = pd.concat([whole, _frame(start, end)])
        shown = periods
        periods = pd.DatetimeIndex([before, *periods])
        inner = "closing"
    else:
        frame = _frame(start, end)
        shown = periods
        inner = kpi
    seen = _frame(start, end)  # which regions show: their rows in range, after the filter
    if kpi == "churned":
        frame, seen = frame[frame["kind"] == "churn"], seen[seen["kind"] == "churn"]
    if inner in ("closing", "opening"):
        take = "max" if inner == "closing" else "min"
        frame = frame[frame["moment"] == frame.groupby("period")["moment"].transform(take)]
    groups = sorted(seen["region"].unique()) if by_region else [None]
    values: dict = {}
    for group in groups:
        rows = frame if group is None else frame[frame["region"] == group]
        for period in periods:
            part = rows[rows["period"] == period]
            if inner == "closing":
                value = _total(part, part["balance"])
            elif inner == "opening":
                value = _total(part, part["balance"] - part["change"])
            elif inner == "new_moves":
                news = part[part["kind"] == "new"]
                value = _total(news, news["change"])
            else:
                value = _total(part, part["change"])
            values[(period.date(), group)] = value
    if kpi == "closing_before":
        return {
            (period.date(), group): values[((period - pd.DateOffset(months=1)).date(), group)]
            for group in groups
            for period in shown
        }
    return values


@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_flows_beside_snapshots_match_pandas(env, by_region):
    project, connection = env
    by = ["region"] if by_region else []
    result = project.run(KPIS, connection, grain="month", start=START, end=END, by=by)
    for kpi in KPIS:
        assert_same(got(result, kpi), expected(kpi, by_region), kpi)


def test_flows_and_snapshots_keep_their_own_scans(tmp_path):
    """Edge times, the snapshot scan and the flows' scan: the table read three times (the
    flows' scan runs beside the edges-then-snapshot chain, which is why sharing one scan
    did not pay at 1M)."""
    import kpiengine

    options = {"grain": "month", "start": START, "end": END}
    sql = kpiengine.load(write_files(tmp_path / "defs", FILES)).compile(KPIS, **options)
    assert sql.count("FROM ledger") == 3, sql
