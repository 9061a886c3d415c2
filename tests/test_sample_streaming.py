"""The sample generator's output, pinned: the same rows and seed give the same data, byte
for byte, whatever batches it comes in. A change that makes the generator stream with
bounded memory (issue 16: 50M opportunities under 2 GB) must keep these digests, or say
in docs/decisions.md that the data of a seed changed (every bench number and the demo's
report move with it).
"""

from __future__ import annotations

import hashlib

import pyarrow as pa

from kpiengine.sample.generate import generate
from kpiengine.sample.tables import TABLES

#: sha256 (first 16 hex digits) of each table of generate(2_000, seed=7), written as one
#: Arrow IPC stream of a single batch: independent of how the generator batches rows.
DIGESTS = {
    "accounts": "99d9266083b7b3ca",
    "employees": "2008fcb71a3f58d5",
    "reps": "3c102c698949403a",
    "opportunities": "73905dc5614d7e44",
    "leads": "8342294fdc263c3d",
    "activities": "9823217165337c8d",
    "quotas": "053d829b464873a4",
    "forecasts": "837aba0854779469",
    "subscriptions": "69f09c0046c1f0d1",
    "mrr_snapshots": "50593caddb60e3e8",
    "invoices": "cb94a85f709d81af",
    "nps_responses": "f27d1be29308a966",
    "support_tickets": "60792a64fbb2d2ed",
    "marketing_spend": "29ff91cd41ba7f58",
    "social_posts": "b37e07be4a9b02c9",
}


def table_digests(rows: int, seed: int) -> dict[str, str]:
    batches: dict[str, list[pa.RecordBatch]] = {}
    for table, batch in generate(rows, seed):
        batches.setdefault(table, []).append(batch)
    found = {}
    for table, parts in batches.items():
        whole = pa.Table.from_batches(parts).combine_chunks()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, whole.schema) as writer:
            writer.write_table(whole, max_chunksize=max(len(whole), 1))
        found[table] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]
    return found


def test_a_small_generation_is_byte_identical_to_the_pinned_one() -> None:
    assert table_digests(2_000, 7) == DIGESTS
    assert tuple(DIGESTS) == TABLES
