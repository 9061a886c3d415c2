"""The sample dataset: deterministic, shaped like a B2B SaaS company, true to its sources.

The sources in definitions/sources/*.yaml are read with plain PyYAML, so these tests
check the data against what analysts read, independently of the loader.
"""

from __future__ import annotations

import datetime
import functools
import io
import itertools
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import yaml

from kpiengine.errors import UsageError
from kpiengine.sample import TABLES, generate, source_yaml, write_sample
from kpiengine.sample.generate import EMITTERS
from kpiengine.sample.tables import SPEC_BY_NAME, SPECS

SOURCES = Path(__file__).parent.parent / "definitions" / "sources"
ROWS = 3_000
SEED = 11
WINDOW = (np.datetime64("2024-01-01"), np.datetime64("2026-11-01"))  # [start, end)
ARROW_KINDS = {
    "string": pa.types.is_string,
    "integer": pa.types.is_integer,
    "number": pa.types.is_floating,
    "boolean": pa.types.is_boolean,
    "date": pa.types.is_date,
    "timestamp": pa.types.is_timestamp,
}


def collect(batches: Iterator[tuple[str, pa.RecordBatch]]) -> dict[str, pa.Table]:
    parts: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in batches:
        parts.setdefault(table, []).append(batch)
    return {name: pa.Table.from_batches(b, SPEC_BY_NAME[name].schema) for name, b in parts.items()}


def ipc_bytes(tables: dict[str, pa.Table]) -> bytes:
    out = io.BytesIO()
    for name in TABLES:
        with ipc.new_stream(out, tables[name].schema) as writer:
            writer.write_table(tables[name])
    return out.getvalue()


@pytest.fixture(scope="module")
def data() -> dict[str, pa.Table]:
    return collect(generate(ROWS, SEED))


@pytest.fixture(scope="module")
def sources() -> dict[str, dict]:
    found = {}
    for path in sorted(SOURCES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        found[document["source"]] = document
    return found


def column(tables: dict[str, pa.Table], ref: str) -> np.ndarray:
    table, name = ref.split(".")
    return tables[table][name].to_numpy(zero_copy_only=False)


# -- determinism and size ----------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_other_data(data: dict[str, pa.Table]) -> None:
    again = collect(generate(ROWS, SEED))
    assert ipc_bytes(again) == ipc_bytes(data)
    other = collect(generate(ROWS, SEED + 1))
    assert not other["opportunities"].equals(data["opportunities"])
    assert not other["mrr_snapshots"].equals(data["mrr_snapshots"])


def test_every_table_in_order_and_batches_are_bounded() -> None:
    seen: list[str] = []
    for table, batch in generate(ROWS, SEED):
        assert batch.num_rows <= 250_000
        assert batch.schema == SPEC_BY_NAME[table].schema
        if not seen or seen[-1] != table:
            seen.append(table)
    assert tuple(seen) == TABLES
    assert len(TABLES) == 15


def test_row_counts_scale_with_rows(data: dict[str, pa.Table]) -> None:
    bigger = collect(generate(4 * ROWS, SEED))
    small = {name: t.num_rows for name, t in data.items()}
    large = {name: t.num_rows for name, t in bigger.items()}
    assert small["opportunities"] == ROWS and large["opportunities"] == 4 * ROWS
    assert small["leads"] == 3 * ROWS
    assert small["activities"] == 5 * ROWS
    assert small["accounts"] == ROWS // 2
    scaled = (
        "leads",
        "activities",
        "subscriptions",
        "mrr_snapshots",
        "invoices",
        "support_tickets",
        "accounts",
    )
    for table in scaled:
        assert 3.2 < large[table] / small[table] < 4.8, table
    customers = [
        pc.sum(pc.equal(t["nps_responses"]["kind"], "customer")).as_py() for t in (data, bigger)
    ]
    assert 3.2 < customers[1] / customers[0] < 4.8
    # people and social posts have a floor, so that small samples still have a team
    assert small["reps"] >= 20
    assert small["marketing_spend"] == 34 * 4 * 14  # months x regions x spend lines


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        generate(10)
    with pytest.raises(UsageError):
        generate(1000, seed=-1)
    with pytest.raises(UsageError, match="use one of"):
        write_sample(f"mysql:///{tmp_path}/x", rows=200)
    with pytest.raises(UsageError, match="format"):
        write_sample(f"files:///{tmp_path}/x?format=xml", rows=200)
    with pytest.raises(UsageError):
        write_sample("duckdb://", rows=200)
    assert not (tmp_path / "x").exists()


# -- the sources describe the data ---------------------------------------------------------


def test_one_source_file_per_table_rendered_from_the_specs(sources: dict[str, dict]) -> None:
    assert sorted(sources) == sorted(TABLES)
    for spec in SPECS:
        path = SOURCES / f"{spec.name}.yaml"
        assert yaml.safe_load(source_yaml(spec)) == yaml.safe_load(path.read_text("utf-8"))


def test_the_documentation_describes_every_table_and_column() -> None:
    text = (SOURCES.parent.parent / "docs" / "sample-data.md").read_text(encoding="utf-8")
    for spec in SPECS:
        section = text.split(f"### {spec.name}\n", 1)[1].split("\n### ", 1)[0]
        for spec_column in spec.columns:
            assert f"| `{spec_column.name}` | {spec_column.type}" in section, spec_column.name


def test_data_has_the_declared_columns_types_and_values(
    data: dict[str, pa.Table], sources: dict[str, dict]
) -> None:
    for name, source in sources.items():
        table = data[source["table"]]
        assert list(source["columns"]) == table.column_names, name
        assert source["time"] in source["columns"]
        for col, declared in source["columns"].items():
            kind = declared if isinstance(declared, str) else declared["type"]
            assert ARROW_KINDS[kind](table.schema.field(col).type), f"{name}.{col}"
            if isinstance(declared, dict) and "values" in declared:
                present = set(pc.unique(table[col].drop_null()).to_pylist())
                assert present <= set(declared["values"]), f"{name}.{col}: {present}"
            if isinstance(declared, dict) and declared.get("unit") == "currency":
                assert kind == "number"
        keys = [c for c, d in source["columns"].items() if isinstance(d, dict) and d.get("key")]
        assert keys, name
        key_rows = table.select(keys).to_pylist()
        assert len({tuple(r.values()) for r in key_rows}) == table.num_rows, f"{name} key"
        assert all(v is not None for r in key_rows for v in r.values())


def test_joins_are_many_to_one_and_every_reference_exists(
    data: dict[str, pa.Table], sources: dict[str, dict]
) -> None:
    for name, source in sources.items():
        for join in source.get("joins", []):
            on = join["on"] if "on" in join else join[True]  # PyYAML reads `on:` as True
            left, right = (on, on) if isinstance(on, str) else (on["left"], on["right"])
            target = data[sources[join["source"]]["table"]]
            keys = target[right].to_numpy()
            assert len(np.unique(keys)) == len(keys), f"{join['source']}.{right} not unique"
            refs = data[source["table"]][left].drop_null().to_numpy()
            assert np.isin(refs, keys).all(), f"{name}.{left} -> {join['source']}"


def test_references_outside_the_joins(data: dict[str, pa.Table]) -> None:
    accounts = column(data, "accounts.account_id")
    assert np.isin(data["leads"]["referrer_account_id"].drop_null().to_numpy(), accounts).all()
    # a deal's lead points back at the deal, and the deal was opened when the lead converted
    opp = data["opportunities"].filter(pc.is_valid(data["opportunities"]["lead_id"]))
    leads = data["leads"].to_pandas().set_index("lead_id")
    linked = leads.loc[opp["lead_id"].to_numpy()]
    assert (linked["opportunity_id"].to_numpy() == opp["opportunity_id"].to_numpy()).all()
    assert (linked["opportunity_at"].to_numpy() == opp["created_at"].to_numpy()).all()
    # a rep is one of the employees, with the same dates
    reps = data["reps"].to_pandas()
    staff = data["employees"].to_pandas().set_index("employee_id").loc[reps["employee_id"]]
    assert (staff["hire_date"].to_numpy() == reps["hire_date"].to_numpy()).all()
    assert set(staff["role"]) == {"account_executive"}


# -- consistent timelines ----------------------------------------------------------------------


def in_window(values: np.ndarray) -> bool:
    values = values[~np.isnat(values)]
    start, end = (w.astype(values.dtype) for w in WINDOW)
    return bool(((values >= start) & (values < end)).all())


def test_activity_happens_inside_the_window(data: dict[str, pa.Table]) -> None:
    for ref in (
        "opportunities.created_at",
        "opportunities.closed_at",
        "leads.created_at",
        "leads.customer_at",
        "activities.occurred_at",
        "mrr_snapshots.snapshot_date",
        "invoices.invoice_date",
        "support_tickets.created_at",
        "support_tickets.resolved_at",
        "nps_responses.responded_at",
        "social_posts.posted_at",
        "marketing_spend.month",
        "quotas.month",
        "forecasts.month",
    ):
        assert in_window(column(data, ref)), ref


def test_funnel_timestamps_are_monotonic_and_null_once_not_reached(
    data: dict[str, pa.Table],
) -> None:
    stages = ["created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"]
    frame = data["leads"].to_pandas()
    for earlier, later in itertools.pairwise(stages):
        reached = frame[later].notna()
        assert frame.loc[reached, earlier].notna().all(), f"{later} without {earlier}"
        assert (frame.loc[reached, earlier] <= frame.loc[reached, later]).all(), later
    assert (frame["opportunity_at"].notna() == frame["opportunity_id"].notna()).all()
    furthest = frame[stages[1:]].notna().sum(axis=1)
    assert (
        frame["stage"].map(
            {s: i for i, s in enumerate(["lead", "mql", "sql", "opportunity", "customer"])}
        )
        == furthest
    ).all()


def test_deals_subscriptions_and_tickets_have_consistent_dates(data: dict[str, pa.Table]) -> None:
    opp = data["opportunities"].to_pandas()
    assert ((opp["stage"] == "open") == opp["closed_at"].isna()).all()
    closed = opp["closed_at"].notna()
    assert (opp.loc[closed, "closed_at"] > opp.loc[closed, "created_at"]).all()
    assert (opp["amount"] <= opp["list_price"] + 0.005).all()
    assert np.allclose(1 - opp["amount"] / opp["list_price"], opp["discount_rate"], atol=1e-3)
    acv = (opp["total_contract_value"] - opp["one_time_fees"]) / opp["term_years"]
    assert (acv >= opp["amount"] - 0.01).all() and (acv <= opp["amount"] * 1.11).all()
    first_deal = opp.groupby("account_id")["created_at"].min()
    accounts = data["accounts"].to_pandas().set_index("account_id")
    assert (accounts.loc[first_deal.index, "created_at"] <= first_deal).all()

    subs = data["subscriptions"].to_pandas()
    ended = subs["end_date"].notna()
    assert (subs.loc[ended, "end_date"] > subs.loc[ended, "start_date"]).all()
    assert ((subs["status"] == "churned") == ended).all()
    assert (subs["churn_reason"].notna() == ended).all()

    tickets = data["support_tickets"].to_pandas()
    answered = tickets["first_response_at"].notna()
    assert (tickets.loc[answered, "first_response_at"] >= tickets.loc[answered, "created_at"]).all()
    resolved = tickets["resolved_at"].notna()
    assert (
        tickets.loc[resolved, "resolved_at"] >= tickets.loc[resolved, "first_response_at"]
    ).all()
    assert ((tickets["status"] == "closed") == resolved).all()
    assert tickets.loc[~resolved, "csat"].isna().all()
    assert tickets["csat"].dropna().between(1, 5).all()
    assert tickets["effort"].dropna().between(1, 7).all()

    employees = data["employees"].to_pandas()
    left = employees["termination_date"].notna()
    assert (employees.loc[left, "termination_date"] > employees.loc[left, "hire_date"]).all()


def test_mrr_snapshots_follow_their_subscriptions(data: dict[str, pa.Table]) -> None:
    assert pc.unique(pc.day(data["mrr_snapshots"]["snapshot_date"])).to_pylist() == [1]
    snaps = data["mrr_snapshots"].to_pandas().sort_values(["subscription_id", "snapshot_date"])
    subs = data["subscriptions"].to_pandas().set_index("subscription_id")
    first = snaps.groupby("subscription_id").first()
    started_in_window = subs.loc[first.index, "start_date"] >= datetime.date(2024, 1, 1)
    assert (first.loc[started_in_window, "movement"] == "new").all()
    # mrr_change is the month-on-month difference, churn leaves a zero row
    previous = snaps.groupby("subscription_id")["mrr"].shift()
    following = snaps["movement"] != "new"
    known = following & previous.notna()
    diff = snaps.loc[known, "mrr"] - previous[known]
    assert np.allclose(diff, snaps.loc[known, "mrr_change"], atol=0.011)
    churn = snaps["movement"] == "churn"
    assert (snaps.loc[churn, "mrr"] == 0).all() and (snaps.loc[~churn, "mrr"] > 0).all()
    movement = np.select([snaps["mrr_change"] > 0, snaps["mrr_change"] < 0], ["up", "down"], "flat")
    steady = snaps["movement"].isin(["expansion", "contraction", "flat"])
    expected = snaps.loc[steady, "movement"].map(
        {"expansion": "up", "contraction": "down", "flat": "flat"}
    )
    assert (movement[steady.to_numpy()] == expected.to_numpy()).all()
    churned = subs[subs["end_date"].notna()]
    last = snaps.groupby("subscription_id").last()
    assert (last.loc[churned.index, "movement"] == "churn").all()


# -- realistic shapes (hand-checked on 20 000 deals) ---------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    path = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    write_sample(f"duckdb:///{path}", rows=20_000, seed=3)
    connection = duckdb.connect(str(path), read_only=True)
    yield connection
    connection.close()


def scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> float:
    return connection.execute(sql).fetchone()[0]


def test_win_rate_and_deal_sizes_are_realistic(warehouse: duckdb.DuckDBPyConnection) -> None:
    win_rate = scalar(
        warehouse,
        "SELECT count(*) FILTER (stage = 'won') / "
        "count(*) FILTER (stage IN ('won', 'lost')) FROM opportunities",
    )
    assert 0.35 < win_rate < 0.6  # benchmark 47 %
    sizes = warehouse.execute(
        "SELECT a.segment, median(o.amount) FROM opportunities o JOIN accounts a "
        "USING (account_id) WHERE o.stage = 'won' GROUP BY 1"
    ).fetchall()
    size = dict(sizes)
    assert size["smb"] < size["mid_market"] < size["enterprise"]
    new, expansion = warehouse.execute(
        "SELECT count(*) FILTER (type = 'new_business'), count(*) FILTER (type = 'expansion') "
        "FROM opportunities"
    ).fetchone()
    assert 0.3 < new / (new + expansion) < 0.75
    impact = scalar(warehouse, "SELECT 1 - sum(amount) / sum(list_price) FROM opportunities")
    assert 0.05 < impact < 0.3


def test_quota_attainment_is_around_the_58_percent_benchmark(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    attainment = scalar(
        warehouse,
        """
        WITH won AS (
            SELECT rep_id, date_trunc('month', closed_at)::DATE AS month, sum(amount) AS amount
            FROM opportunities WHERE stage = 'won' GROUP BY ALL)
        SELECT median(coalesce(won.amount, 0) / quota)
        FROM quotas LEFT JOIN won USING (rep_id, month)""",
    )
    assert 0.45 < attainment < 0.7
    reps_per_month = scalar(
        warehouse, "SELECT min(n) FROM (SELECT count(*) n FROM quotas GROUP BY month)"
    )
    assert reps_per_month >= 20


def test_seasonality_growth_and_churn_are_visible(warehouse: duckdb.DuckDBPyConnection) -> None:
    by_month = dict(
        warehouse.execute(
            "SELECT month(created_at), count(*) FROM opportunities WHERE year(created_at) = 2025 "
            "GROUP BY 1"
        ).fetchall()
    )
    assert by_month[8] < min(by_month[7], by_month[9])  # August dip
    quarters = dict(
        warehouse.execute(
            "SELECT quarter(closed_at), sum(amount) FROM opportunities "
            "WHERE stage = 'won' AND year(closed_at) = 2025 GROUP BY 1"
        ).fetchall()
    )
    assert quarters[4] > max(quarters[1], quarters[2], quarters[3])  # Q4 peak
    mrr = warehouse.execute(
        "SELECT snapshot_date, sum(mrr) FROM mrr_snapshots GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert mrr[-1][1] > 1.5 * mrr[0][1]
    movements = dict(
        warehouse.execute("SELECT movement, count(*) FROM mrr_snapshots GROUP BY 1").fetchall()
    )
    assert set(movements) == {"new", "expansion", "contraction", "churn", "flat"}


def test_scores_and_messy_rows(warehouse: duckdb.DuckDBPyConnection) -> None:
    nps = dict(
        warehouse.execute(
            "SELECT kind, 100 * (avg((score >= 9)::INT) - avg((score <= 6)::INT)) "
            "FROM nps_responses GROUP BY 1"
        ).fetchall()
    )
    assert 10 < nps["customer"] < 50 and 0 < nps["employee"] < 40
    assert scalar(warehouse, "SELECT count(*) FROM accounts WHERE segment IS NULL") > 0
    assert (
        scalar(warehouse, "SELECT count(*) FROM accounts WHERE is_test AND region = 'internal'") > 0
    )
    assert scalar(warehouse, "SELECT count(*) FROM opportunities WHERE region = 'internal'") > 0
    reply = scalar(warehouse, "SELECT avg(replied::INT) FROM activities WHERE kind = 'email'")
    assert 0.05 < reply < 0.5
    assert (
        scalar(
            warehouse,
            "SELECT count(*) FROM activities WHERE kind <> 'email' AND replied IS NOT NULL",
        )
        == 0
    )
    margin = scalar(warehouse, "SELECT 1 - sum(cogs) / sum(amount) FROM invoices")
    assert 0.6 < margin < 0.9


# -- writers -----------------------------------------------------------------------------------


@functools.cache
def expected_counts() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for table, batch in generate(400, 5):
        counts[table] += batch.num_rows
    return dict(counts)


def test_duckdb_writer_round_trip_and_refusal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.duckdb"
    url = f"duckdb:///{path}"
    seen: list[tuple[str, int]] = []
    counts = write_sample(url, rows=400, seed=5, progress=lambda t, n: seen.append((t, n)))
    assert counts == expected_counts()
    assert seen[-1] == ("social_posts", counts["social_posts"])
    with duckdb.connect(str(path), read_only=True) as connection:
        for table, n in counts.items():
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'opportunities'"
            ).fetchall()
        )
    assert types["closed_at"] == "TIMESTAMP" and types["amount"] == "DOUBLE"
    assert types["opportunity_id"] == "BIGINT" and types["stage"] == "VARCHAR"
    with pytest.raises(UsageError, match="already has sample table"):
        write_sample(url, rows=400, seed=6)
    # replace: other tables stay, ours are rewritten
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE mine AS SELECT 1 AS x")
    again = write_sample(url, rows=500, seed=6, replace=True)
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM opportunities").fetchone()[0] == 500
        assert connection.execute("SELECT x FROM mine").fetchone()[0] == 1
    assert again["opportunities"] == 500
    assert [p.name for p in path.parent.iterdir()] == ["w.duckdb"]  # no temporary left


def test_sqlite_writer_types_and_iso_text(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    counts = write_sample(f"sqlite:///{path}", rows=400, seed=5)
    assert counts == expected_counts()
    with sqlite3.connect(path) as connection:
        for table, n in counts.items():
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == n
        declared = {r[1]: r[2] for r in connection.execute("PRAGMA table_info(opportunities)")}
        assert declared["closed_at"] == "TIMESTAMP" and declared["amount"] == "REAL"
        assert declared["opportunity_id"] == "INTEGER" and declared["stage"] == "TEXT"
        created, closed = connection.execute(
            "SELECT created_at, closed_at FROM opportunities WHERE closed_at IS NOT NULL LIMIT 1"
        ).fetchone()
        assert len(created) == 19 and created[10] == " " and closed > created
        start = connection.execute("SELECT min(start_date) FROM subscriptions").fetchone()[0]
        assert len(start) == 10 and start[4] == "-"
        assert connection.execute("SELECT DISTINCT typeof(is_test) FROM accounts").fetchall() == [
            ("integer",)
        ]
        assert (
            connection.execute(
                "SELECT count(*) FROM opportunities WHERE closed_at IS NULL AND stage = 'open'"
            ).fetchone()[0]
            > 0
        )
    with pytest.raises(UsageError):
        write_sample(f"sqlite:///{path}", rows=400, seed=5)


def test_parquet_and_csv_files(tmp_path: Path) -> None:
    counts = expected_counts()
    assert write_sample(f"files:///{tmp_path}/pq", rows=400, seed=5) == counts
    assert write_sample(f"files:///{tmp_path}/csv?format=csv", rows=400, seed=5) == counts
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == sorted(
        f"{t}.parquet" for t in TABLES
    )
    for table, n in counts.items():
        parquet = pq.read_table(tmp_path / "pq" / f"{table}.parquet")
        assert parquet.num_rows == n and parquet.schema == SPEC_BY_NAME[table].schema
    connection = duckdb.connect()
    for table, n in counts.items():
        relation = connection.read_csv(str(tmp_path / "csv" / f"{table}.csv"))
        assert relation.aggregate("count(*)").fetchall() == [(n,)]
        kinds = dict(zip(relation.columns, map(str, relation.types), strict=True))
        for spec_column in SPEC_BY_NAME[table].columns:
            engine = {
                "string": "VARCHAR",
                "integer": "BIGINT",
                "number": "DOUBLE",
                "boolean": "BOOLEAN",
                "date": "DATE",
                "timestamp": "TIMESTAMP",
            }
            assert kinds[spec_column.name] == engine[spec_column.type], (table, spec_column.name)
    header = (tmp_path / "csv" / "opportunities.csv").read_text().splitlines()[0]
    assert header.startswith('"opportunity_id","account_id"')
    with pytest.raises(UsageError, match="opportunities"):
        write_sample(f"files:///{tmp_path}/pq", rows=400, seed=5)
    # replace in another format removes the stale file that would shadow the new one
    write_sample(f"files:///{tmp_path}/pq?format=csv", rows=400, seed=5, replace=True)
    assert not list((tmp_path / "pq").glob("*.parquet"))
    assert len(list((tmp_path / "pq").glob("*.csv"))) == len(TABLES)


def failing_emitter(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(world: object) -> Iterator[tuple[str, pa.RecordBatch]]:
        raise RuntimeError("disk on fire")
        yield  # pragma: no cover

    monkeypatch.setitem(EMITTERS, "invoices", broken)


@pytest.mark.parametrize(
    "url",
    [
        "duckdb:///{d}/x.duckdb",
        "sqlite:///{d}/x.db",
        "files:///{d}/out",
        "files:///{d}/out?format=csv",
    ],
)
def test_a_failure_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    failing_emitter(monkeypatch)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_sample(url.format(d=tmp_path), rows=300, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_leaves_an_existing_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    duck, lite = tmp_path / "x.duckdb", tmp_path / "x.db"
    write_sample(f"duckdb:///{duck}", rows=300, seed=1)
    write_sample(f"sqlite:///{lite}", rows=300, seed=1)
    failing_emitter(monkeypatch)
    for url in (f"duckdb:///{duck}", f"sqlite:///{lite}"):
        with pytest.raises(RuntimeError, match="disk on fire"):
            write_sample(url, rows=600, seed=2, replace=True)
    with duckdb.connect(str(duck), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM opportunities").fetchone()[0] == 300
    with sqlite3.connect(lite) as connection:
        assert connection.execute("SELECT count(*) FROM opportunities").fetchone()[0] == 300


# -- writers come from plugins (kpiengine_sample_writers) ----------------------------------

JSONL_WRITER = '''
import json
from pathlib import Path

from kpiengine.errors import UsageError
from kpiengine.execute.connectors import path_of
from kpiengine.hookspecs import hookimpl
from kpiengine.sample.write import SampleWriterSpec


class JsonLinesWriter:
    """One <table>.jsonl per table, written under a temporary name, renamed on commit."""

    def __init__(self, url, replace):
        self.folder = Path(path_of(url))
        existing = sorted(p.stem for p in self.folder.glob("*.jsonl"))
        if existing and not replace:
            raise UsageError(f"{url} already has sample tables {', '.join(existing)}")
        self.written = []

    def write_table(self, table, schema, batches):
        self.folder.mkdir(parents=True, exist_ok=True)
        part = self.folder / f".{table}.part"
        with part.open("w", encoding="utf-8") as out:
            for batch in batches:
                for row in batch.to_pylist():
                    out.write(json.dumps(row, default=str) + "\\n")
        self.written.append((part, self.folder / f"{table}.jsonl"))

    def commit(self):
        for part, final in self.written:
            part.replace(final)

    def abort(self):
        for part, _ in self.written:
            part.unlink(missing_ok=True)


@hookimpl
def kpiengine_sample_writers():
    return [SampleWriterSpec("jsonl", JsonLinesWriter, "JSON Lines files")]
'''


@pytest.fixture
def jsonl_writer_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import sys

    folder = tmp_path / "plugin_modules"
    folder.mkdir()
    (folder / "kpi_tmp_jsonl_writer.py").write_text(JSONL_WRITER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    yield "kpi_tmp_jsonl_writer"
    sys.modules.pop("kpi_tmp_jsonl_writer", None)


def test_kpi_sample_data_uses_a_writer_from_a_plugin_module(
    tmp_path: Path, jsonl_writer_plugin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from kpiengine.cli import main

    target = tmp_path / "out"
    url = f"jsonl:///{target}"
    args = ["sample-data", "--to", url, "--rows", "200", "--seed", "3"]
    assert main([*args, "--plugin", jsonl_writer_plugin]) == 0, capsys.readouterr().err
    assert sorted(p.stem for p in target.glob("*.jsonl")) == sorted(TABLES)
    expected = {name: batch.num_rows for name, batch in _tables(200, 3).items()}
    for name, count in expected.items():
        assert len((target / f"{name}.jsonl").read_text().splitlines()) == count, name
    assert "wrote 15 tables" in capsys.readouterr().out
    # without the plugin the scheme is unknown: a usage error naming the writers there are
    assert main([*args, "--replace"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the sample data to" in err and "duckdb://" in err


def test_the_builtin_writers_register_through_the_hook() -> None:
    from kpiengine.plugins import builtin
    from kpiengine.plugins.manager import PluginHost

    host = PluginHost()
    assert hasattr(builtin.kpiengine_sample_writers, "kpiengine_impl")
    specs = host.collect("kpiengine_sample_writers")
    assert [s.scheme for s in specs] == ["duckdb", "sqlite", "files"]
    assert {s.plugin for s in specs} == {"builtin"}


def _tables(rows: int, seed: int) -> dict[str, pa.Table]:
    batches: dict[str, list[pa.RecordBatch]] = {}
    for name, batch in generate(rows, seed):
        batches.setdefault(name, []).append(batch)
    return {name: pa.Table.from_batches(found) for name, found in batches.items()}
