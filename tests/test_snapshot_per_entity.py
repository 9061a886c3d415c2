"""Per-entity snapshots (``semi_additive: {take, per}``, SPEC §13.4) against pandas.

Accounts snapshot their balance on different days; in each period each account counts
with its own latest (earliest) snapshot in the period, an account without rows in the
period contributes nothing, and rows with a null account never count. Expectations are
computed here with pandas ``groupby().idxmax()`` over the raw rows, on every engine.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kpiengine.errors import DefinitionError
from tests.conftest import write_files
from tests.engines import ENGINES, arrow_tables, engine_params, require
from tests.series import assert_same, got

FILES = {
    "balances.yaml": """
        source: balances
        table: balances
        time: snapshot_at
        columns:
          account_id: integer
          region: string
          arr: number
          snapshot_at: date
        """,
    "kpis.yaml": """
        kpis:
          - kpi: arr_latest
            source: balances
            expression: sum(arr)
            semi_additive: {take: last, per: account_id}
          - kpi: arr_earliest
            source: balances
            expression: sum(arr)
            semi_additive: {take: first, per: account_id}
          - kpi: accounts_latest
            source: balances
            expression: count()
            semi_additive: {take: last, per: account_id}
          - kpi: big_arr_latest
            source: balances
            expression: sum(arr)
            filter: arr >= 100
            semi_additive: {take: last, per: account_id}
          - kpi: arr_one_snapshot
            source: balances
            expression: sum(arr)
            semi_additive: last
        """,
}


def _balances() -> pd.DataFrame:
    """Twenty accounts (and rows without an account), each snapshotting on its own days:
    some several times a month, some every few months, a few twice on the same day."""
    rng = np.random.default_rng(3)
    rows = []
    for account in [*range(1, 21), None]:
        region = ("emea", "apac")[0 if account is None else account % 2]
        day = dt.date(2023, 1, 1) + dt.timedelta(days=int(rng.integers(0, 40)))
        while day < dt.date(2025, 1, 1):
            for _ in range(1 + int(rng.integers(0, 10) == 0)):  # sometimes twice a day
                rows.append((account, region, float(rng.integers(0, 30) * 10), day))
            day += dt.timedelta(days=int(rng.integers(3, 70)))
    return pd.DataFrame(rows, columns=["account_id", "region", "arr", "snapshot_at"])


BALANCES = _balances()


@pytest.fixture(scope="module", params=engine_params())
def env(request, tmp_path_factory):
    import kpiengine

    engine = ENGINES[request.param]
    require(engine)
    folder = tmp_path_factory.mktemp(f"per_entity_{request.param}")
    rows = [
        (None if pd.isna(a) else int(a), r, v, d)
        for a, r, v, d in BALANCES.itertuples(index=False, name=None)
    ]
    tables = {
        "balances": ("account_id INTEGER, region VARCHAR, arr DOUBLE, snapshot_at DATE", rows)
    }
    url = engine.load(arrow_tables(tables), folder / "data")
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(url)
    yield project, connection
    connection.close()


def expected(kpi: str, grain: str, start: str, end: str, by_region: bool) -> dict:
    frame = BALANCES.assign(moment=pd.to_datetime(BALANCES["snapshot_at"]))
    frame = frame[(frame["moment"] >= pd.Timestamp(start)) & (frame["moment"] < pd.Timestamp(end))]
    frequency = {"month": "M", "quarter": "Q"}[grain]
    frame = frame.assign(period=frame["moment"].dt.to_period(frequency).dt.start_time)
    seen = frame  # every row in range keeps its dimension value visible
    if kpi == "big_arr_latest":
        frame = frame[frame["arr"] >= 100]
    take = "min" if kpi == "arr_earliest" else "max"
    keys = ["period", "account_id"]
    if kpi == "arr_one_snapshot":  # one time for the whole source (per group: no)
        edge = frame.groupby("period")["moment"].transform(take)
    else:
        frame = frame[frame["account_id"].notna()]
        edge = frame.groupby(keys)["moment"].transform(take)
    kept = frame[frame["moment"] == edge]
    periods = pd.period_range(
        pd.Timestamp(start), pd.Timestamp(end) - pd.Timedelta(days=1), freq=frequency
    )
    groups = sorted(seen["region"].unique()) if by_region else [None]
    result = {}
    for group in groups:
        rows = kept if group is None else kept[kept["region"] == group]
        for period in periods.start_time:
            part = rows[rows["period"] == period]
            if kpi == "accounts_latest":
                result[(period.date(), group)] = float(len(part))
            else:
                result[(period.date(), group)] = float(part["arr"].sum()) if len(part) else None
    return result


KPIS = ["arr_latest", "arr_earliest", "accounts_latest", "big_arr_latest", "arr_one_snapshot"]


@pytest.mark.parametrize(
    ("grain", "start", "end"),
    [("month", "2023-06-01", "2024-09-01"), ("quarter", "2023-04-01", "2025-01-01")],
)
@pytest.mark.parametrize("by_region", [False, True], ids=["total", "by_region"])
def test_per_entity_snapshots_match_pandas(env, grain, start, end, by_region):
    project, connection = env
    result = project.run(
        KPIS, connection, grain=grain, start=start, end=end, by=["region"] if by_region else []
    )
    for kpi in KPIS:
        assert_same(got(result, kpi), expected(kpi, grain, start, end, by_region), kpi)


def test_per_names_a_column_of_the_source(tmp_path):
    import kpiengine

    files = dict(FILES)
    files["kpis.yaml"] = """
        kpi: arr_latest
        source: balances
        expression: sum(arr)
        semi_additive: {take: last, per: acount_id}
        """
    with pytest.raises(DefinitionError) as error:
        kpiengine.load(write_files(tmp_path / "defs", files))
    (problem,) = error.value.diagnostics
    assert problem.code == "KPI322" and "acount_id" in problem.message
    assert "account_id" in (problem.hint or "")
    assert problem.span is not None and (problem.span.line, problem.span.col) == (4, 34)
