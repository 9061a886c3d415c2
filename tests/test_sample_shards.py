"""A big sample company is generated in shards (issue 16: bounded memory at any size).

The shard size is made small here (``shard_rows``) so that a company of several shards
generates in a second. What must hold: small sizes are the data they always were (the
pinned digests), ids stay unique and dense, every reference points at a row that agrees
with it, company-wide tables (people, quotas, forecasts, spend, posts) have no repeated
key and are built from the whole company, a seed gives the same data twice, and every
writer — appending or not — writes exactly what the generator yields.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kpiengine.errors import UsageError
from kpiengine.sample import TABLES, generate, write_sample
from kpiengine.sample.activity import SPEND_PER_PIPELINE
from kpiengine.sample.shards import SHIFTED, shard_sizes
from kpiengine.sample.tables import SPEC_BY_NAME
from tests.test_sample_streaming import DIGESTS, table_digests

ROWS = 30_000
SHARD = 8_000  # 4 shards of 7 500 deals
SEED = 5


def collect(batches: Iterator[tuple[str, pa.RecordBatch]]) -> dict[str, pd.DataFrame]:
    parts: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in batches:
        parts.setdefault(table, []).append(batch)
    return {
        name: pa.Table.from_batches(found, SPEC_BY_NAME[name].schema).to_pandas()
        for name, found in parts.items()
    }


@pytest.fixture(scope="module")
def company() -> dict[str, pd.DataFrame]:
    return collect(generate(ROWS, SEED, shard_rows=SHARD))


def test_shards_are_nearly_equal_and_never_above_the_shard_size() -> None:
    assert shard_sizes(30_000, 8_000) == [7_500] * 4
    assert shard_sizes(10, 3) == [3, 3, 2, 2]
    assert shard_sizes(1_000_000, 1_000_000) == [1_000_000]
    sizes = shard_sizes(50_000_001, 1_000_000)
    assert len(sizes) == 51 and sum(sizes) == 50_000_001 and max(sizes) <= 1_000_000


def test_up_to_one_shard_the_data_is_what_it_always_was() -> None:
    assert table_digests(2_000, 7) == DIGESTS  # the default shard size
    exactly_one = list(generate(2_000, 7, shard_rows=2_000))
    default = list(generate(2_000, 7))
    assert [t for t, _ in exactly_one] == [t for t, _ in default]
    assert all(a.equals(b) for (_, a), (_, b) in zip(exactly_one, default, strict=True))
    assert tuple(dict.fromkeys(t for t, _ in exactly_one)) == TABLES  # each table whole


def test_a_bad_shard_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="shard_rows"):
        generate(1_000, shard_rows=10)
    with pytest.raises(UsageError, match="shard_rows"):
        generate(1_000, shard_rows="big")  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_sharded_data(company: dict[str, pd.DataFrame]) -> None:
    again = collect(generate(ROWS, SEED, shard_rows=SHARD))
    for table in TABLES:
        pd.testing.assert_frame_equal(again[table], company[table], check_exact=True)
    whole = collect(generate(ROWS, SEED))  # one shard: other data, same proportions
    assert not whole["opportunities"].equals(company["opportunities"])


def test_row_counts_keep_their_proportions(company: dict[str, pd.DataFrame]) -> None:
    count = {table: len(frame) for table, frame in company.items()}
    assert set(count) == set(TABLES)
    assert count["opportunities"] == ROWS
    assert count["leads"] == 3 * ROWS
    assert count["activities"] == 5 * ROWS
    assert count["accounts"] == 4 * (7_500 // 2)
    assert count["reps"] == ROWS // 700  # the company's reps, not a shard's
    assert count["employees"] == 4 * count["reps"]
    assert count["social_posts"] == ROWS // 20
    assert count["marketing_spend"] == 34 * 4 * 14


def test_ids_are_unique_and_dense(company: dict[str, pd.DataFrame]) -> None:
    keys = {t: key for t, columns in SHIFTED.items() for key, of in columns.items() if of == t}
    keys |= {"employees": "employee_id", "reps": "rep_id", "social_posts": "post_id"}
    for table, key in keys.items():
        ids = company[table][key].to_numpy()
        assert (np.sort(ids) == np.arange(1, len(ids) + 1)).all(), table


def _in_range(values: pd.Series, count: int) -> bool:
    known = values.dropna()
    return bool(((known >= 1) & (known <= count)).all())


def test_every_reference_points_at_a_row_that_agrees(company: dict[str, pd.DataFrame]) -> None:
    c = company
    for table, columns in SHIFTED.items():
        for name, target in columns.items():
            assert _in_range(c[table][name], len(c[target])), f"{table}.{name}"
    for table in ("opportunities", "leads", "activities", "quotas", "forecasts"):
        assert _in_range(c[table]["rep_id"], len(c["reps"])), table
    assert _in_range(c["reps"]["employee_id"], len(c["employees"]))
    assert _in_range(c["nps_responses"]["employee_id"], len(c["employees"]))

    opp = c["opportunities"].set_index("opportunity_id")
    leads = c["leads"].set_index("lead_id")
    subs = c["subscriptions"].set_index("subscription_id")
    # a deal and its lead name each other, and share the account
    pair = opp.dropna(subset=["lead_id"])
    assert (leads.loc[pair["lead_id"], "opportunity_id"].to_numpy() == pair.index).all()
    assert (leads.loc[pair["lead_id"], "account_id"].to_numpy() == pair["account_id"]).all()
    # a subscription from a deal belongs to the deal's account
    sold = subs.dropna(subset=["opportunity_id"])
    dealt = opp.loc[sold["opportunity_id"], "account_id"].to_numpy()
    assert (dealt == sold["account_id"].to_numpy()).all()
    # snapshots, invoices: the account of their subscription
    for table in ("mrr_snapshots", "invoices"):
        frame = c[table]
        owner = subs.loc[frame["subscription_id"], "account_id"].to_numpy()
        assert (owner == frame["account_id"].to_numpy()).all(), table
    # activities on a deal: the deal's account and rep
    on_deal = c["activities"].dropna(subset=["opportunity_id"])
    deal = opp.loc[on_deal["opportunity_id"]]
    assert (deal["account_id"].to_numpy() == on_deal["account_id"].to_numpy()).all()
    assert (deal["rep_id"].to_numpy() == on_deal["rep_id"].to_numpy()).all()
    # accounts became customers when their first subscription started
    since = c["subscriptions"].groupby("account_id")["start_date"].min()
    accounts = c["accounts"].set_index("account_id")
    assert (accounts.loc[since.index, "customer_since"] == since).all()


def test_company_tables_have_no_repeated_key(company: dict[str, pd.DataFrame]) -> None:
    keyed = {
        "quotas": ["rep_id", "month"],
        "forecasts": ["rep_id", "month"],
        "marketing_spend": ["month", "region", "department", "channel"],
        "mrr_snapshots": ["snapshot_date", "subscription_id"],
    }
    for table, key in keyed.items():
        assert not company[table].duplicated(key).any(), table
    staff = company["nps_responses"].dropna(subset=["employee_id"])
    quarter = staff["responded_at"].dt.to_period("M")
    assert not pd.concat([staff["employee_id"], quarter], axis=1).duplicated().any()
    assert len(staff) > 0


def test_company_tables_are_built_from_every_shard(company: dict[str, pd.DataFrame]) -> None:
    opp = company["opportunities"]
    real = opp[opp["region"] != "internal"]
    pipeline = real["amount"].sum()
    spend = company["marketing_spend"]["spend"].sum()
    assert 0.9 < spend / (SPEND_PER_PIPELINE * pipeline) < 1.1  # not one shard's quarter
    won = opp[opp["stage"] == "won"].copy()
    won["month"] = won["closed_at"].dt.to_period("M").dt.start_time
    won_per_rep_month = won.groupby(["rep_id", "month"])["amount"].sum()
    quotas = company["quotas"].assign(month=pd.to_datetime(company["quotas"]["month"]))
    quotas = quotas.set_index(["rep_id", "month"])
    attained = won_per_rep_month.reindex(quotas.index, fill_value=0.0) / quotas["quota"]
    assert 0.45 < attained.median() < 0.7  # quotas set from the whole company's wins
    deals_per_rep = opp.groupby("rep_id").size()
    assert deals_per_rep.index.nunique() > 0.9 * len(company["reps"])  # all shards share reps


# -- writers: appending ones stream, the others get each table whole ----------------------


def _int_key(table: str) -> str:
    """The first integer column of ``table`` (its id, or a reference), else its first."""
    columns = SPEC_BY_NAME[table].columns
    return next((c.name for c in columns if c.type == "integer"), columns[0].name)


def _checks(frame: pd.DataFrame, key: str) -> tuple[int, object]:
    """Row count and the sum of an integer column (or the count of distinct values)."""
    values = frame[key]
    if pd.api.types.is_integer_dtype(values):
        return len(frame), int(values.sum())
    return len(frame), int(values.nunique())


def _key_sums(company: dict[str, pd.DataFrame]) -> dict[str, tuple[int, object]]:
    return {t: _checks(frame, _int_key(t)) for t, frame in company.items()}


def _sql_checks(table: str, integer: bool) -> str:
    key = _int_key(table)
    summary = f'sum("{key}")' if integer else f'count(DISTINCT "{key}")'
    return f'SELECT count(*), {summary} FROM "{table}"'


def test_duckdb_sqlite_and_files_writers_append_the_shards(
    tmp_path: Path, company: dict[str, pd.DataFrame]
) -> None:
    expected = _key_sums(company)
    db = tmp_path / "s.duckdb"
    counts = write_sample(f"duckdb:///{db}", ROWS, SEED, shard_rows=SHARD)
    assert {t: n for t, (n, _) in expected.items()} == counts
    with duckdb.connect(str(db), read_only=True) as connection:
        for table, (rows, total) in expected.items():
            integer = pd.api.types.is_integer_dtype(company[table][_int_key(table)])
            found = connection.execute(_sql_checks(table, integer)).fetchone()
            assert found == (rows, total), table
        opp = connection.execute("SELECT * FROM opportunities ORDER BY opportunity_id").df()
    pd.testing.assert_series_equal(opp["amount"], company["opportunities"]["amount"])

    lite = tmp_path / "s.db"
    write_sample(f"sqlite:///{lite}", ROWS, SEED, shard_rows=SHARD)
    with sqlite3.connect(lite) as connection:
        for table, (rows, total) in expected.items():
            integer = pd.api.types.is_integer_dtype(company[table][_int_key(table)])
            found = connection.execute(_sql_checks(table, integer)).fetchone()
            assert found == (rows, total), table

    folder = tmp_path / "files"
    write_sample(f"files:///{folder}", ROWS, SEED, shard_rows=SHARD)
    for table in TABLES:
        frame = pq.read_table(folder / f"{table}.parquet").to_pandas()
        pd.testing.assert_frame_equal(frame, company[table], check_exact=True)
    csv = tmp_path / "csv"
    write_sample(f"files:///{csv}?format=csv", ROWS, SEED, shard_rows=SHARD)
    for table, (rows, _) in expected.items():
        lines = (csv / f"{table}.csv").read_text().count("\n")
        assert lines == rows + 1, table  # one header


PLAIN_WRITER = '''
import pyarrow as pa
import pyarrow.ipc as ipc
from pathlib import Path

from kpiengine.execute.connectors import path_of
from kpiengine.hookspecs import hookimpl
from kpiengine.sample.write import SampleWriterSpec


class PlainWriter:
    """No append_table: each table must arrive once, whole (an older plugin writer)."""

    def __init__(self, url, replace):
        self.folder = Path(path_of(url))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.order = []

    def write_table(self, table, schema, batches):
        assert table not in self.order, f"{table} written twice"
        self.order.append(table)
        with ipc.new_file(str(self.folder / f"{table}.arrow"), schema) as out:
            for batch in batches:
                out.write_batch(batch)

    def commit(self):
        (self.folder / "order.txt").write_text("\\n".join(self.order))

    def abort(self):
        pass


@hookimpl
def kpiengine_sample_writers():
    return [SampleWriterSpec("plain", PlainWriter, "Arrow files, a table at once")]
'''


def test_a_writer_without_append_gets_each_table_once_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, company: dict[str, pd.DataFrame]
) -> None:
    from kpiengine.plugins.manager import PluginHost

    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "kpi_tmp_plain_writer.py").write_text(PLAIN_WRITER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(modules))
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    try:
        out = tmp_path / "plain"
        host = PluginHost(["kpi_tmp_plain_writer"])
        write_sample(f"plain:///{out}", ROWS, SEED, plugins=host, shard_rows=SHARD)
    finally:
        sys.modules.pop("kpi_tmp_plain_writer", None)
    assert tuple((out / "order.txt").read_text().split("\n")) == TABLES
    for table in TABLES:
        with pa.OSFile(str(out / f"{table}.arrow")) as source:
            frame = pa.ipc.open_file(source).read_all().to_pandas()
        pd.testing.assert_frame_equal(frame, company[table], check_exact=True)
    assert list(spool.iterdir()) == []  # the spool is gone


@pytest.mark.parametrize(
    "url", ["duckdb:///{d}/x.duckdb", "sqlite:///{d}/x.db", "files:///{d}/out"]
)
def test_a_failure_in_a_later_shard_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    from kpiengine.sample.generate import EMITTERS

    invoices = EMITTERS["invoices"]

    def broken_in_shard_two(world):  # type: ignore[no-untyped-def]
        if world.shard == 2:
            raise RuntimeError("disk on fire")
        return invoices(world)

    monkeypatch.setitem(EMITTERS, "invoices", broken_in_shard_two)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_sample(url.format(d=tmp_path), rows=900, seed=1, shard_rows=300)
    assert list(tmp_path.iterdir()) == []
