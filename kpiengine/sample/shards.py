"""A big sample company generated in shards, with memory bounded by the shard size.

Building the company as numpy arrays costs ≈ 0.9 KB per opportunity (50M deals would
need ≈ 45 GB), and every table depends on the others across all rows. So a company of
more than :data:`~kpiengine.sample.generate.SHARD_ROWS` deals is split into shards of
nearly equal size: each shard is a small company of its own (accounts, deals, leads,
subscriptions and the tables that follow them), built by the same code from random
streams of its own (:func:`~kpiengine.sample.draws.stream`), emitted, then dropped.

What stays company-wide:

- the people (employees, reps): built once for all the deals, so their counts keep
  their proportion to deals, and every shard's deals go to the company's reps;
- quotas and forecasts (keyed by rep and month), marketing spend (month, region,
  department, channel) and social posts: generated once, at the end, from sums kept
  over the shards (:class:`~kpiengine.sample.world.Totals`), so no key repeats;
- the employees' pulse-survey answers (nps_responses): given by the first shard only.

Ids stay unique and dense: a shard's tables are generated with ids from 1, as a small
company's, and each id column (and each reference to a shard table) is shifted by the
rows the earlier shards emitted. Ids follow creation order within a shard, not across.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kpiengine.sample.activity import pipeline_by_month_region, won_by_rep_month
from kpiengine.sample.calendar import MONTHS
from kpiengine.sample.columns import Batches
from kpiengine.sample.draws import stream
from kpiengine.sample.people import build_people
from kpiengine.sample.world import Totals, World, build_world

#: The id columns of each shard table, and the table whose rows each one counts: the id
#: of row ``i`` of shard ``k`` is ``i + 1 +`` the rows of that table in shards before ``k``.
#: Reps and employees are company-wide: their ids are never shifted.
SHIFTED: dict[str, dict[str, str]] = {
    "accounts": {"account_id": "accounts"},
    "opportunities": {
        "opportunity_id": "opportunities",
        "account_id": "accounts",
        "lead_id": "leads",
    },
    "leads": {
        "lead_id": "leads",
        "account_id": "accounts",
        "referrer_account_id": "accounts",
        "opportunity_id": "opportunities",
    },
    "activities": {
        "activity_id": "activities",
        "opportunity_id": "opportunities",
        "lead_id": "leads",
        "account_id": "accounts",
    },
    "subscriptions": {
        "subscription_id": "subscriptions",
        "account_id": "accounts",
        "opportunity_id": "opportunities",
    },
    "mrr_snapshots": {"subscription_id": "subscriptions", "account_id": "accounts"},
    "invoices": {
        "invoice_id": "invoices",
        "account_id": "accounts",
        "subscription_id": "subscriptions",
    },
    "nps_responses": {"response_id": "nps_responses", "account_id": "accounts"},
    "support_tickets": {"ticket_id": "support_tickets", "account_id": "accounts"},
}
SHARD_TABLES = tuple(SHIFTED)  # in the order of TABLES
PEOPLE_TABLES = ("employees", "reps")  # emitted once, before the first shard's tables
COMPANY_TABLES = ("quotas", "forecasts", "marketing_spend", "social_posts")  # at the end


def shard_sizes(rows: int, shard_rows: int) -> list[int]:
    """``rows`` deals in the fewest shards of at most ``shard_rows``, nearly equal."""
    count = -(-rows // shard_rows)
    base, extra = divmod(rows, count)
    return [base + 1 if k < extra else base for k in range(count)]


def generate_shards(
    rows: int, seed: int, shard_rows: int, emitters: Mapping[str, Callable[[World], Batches]]
) -> Batches:
    """Yield ``(table, batch)`` for a company of ``rows`` deals, shard after shard, each
    table made by ``emitters[table]`` (:data:`kpiengine.sample.generate.EMITTERS`).

    Order: employees and reps; then each shard's tables in :data:`SHARD_TABLES` order;
    then :data:`COMPANY_TABLES`. A shard table therefore comes in one run per shard.
    """
    people = build_people(stream(seed, "reps"), rows)
    emitted = dict.fromkeys(SHARD_TABLES, 0)
    won = np.zeros(people.reps * MONTHS)
    pipeline = np.zeros(MONTHS * 4)
    world: World | None = None
    for shard, size in enumerate(shard_sizes(rows, shard_rows)):
        world = None  # let the previous shard go before building the next one
        world = build_world(size, seed, people, shard)
        if shard == 0:
            for table in PEOPLE_TABLES:
                yield from emitters[table](world)
        before = dict(emitted)
        for table in SHARD_TABLES:
            for _, batch in emitters[table](world):
                emitted[table] += batch.num_rows
                yield table, _shift(table, batch, before)
        won += won_by_rep_month(world)
        pipeline += pipeline_by_month_region(world)
    assert world is not None
    company = dataclasses.replace(world, rows=rows, shard=0, totals=Totals(won, pipeline))
    for table in COMPANY_TABLES:
        yield from emitters[table](company)


def _shift(table: str, batch: pa.RecordBatch, before: dict[str, int]) -> pa.RecordBatch:
    """The batch with its ids moved past the rows of the earlier shards (nulls stay)."""
    columns = list(batch.columns)
    for name, target in SHIFTED[table].items():
        if before[target]:
            i = batch.schema.get_field_index(name)
            columns[i] = pc.add(columns[i], pa.scalar(before[target], columns[i].type))
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
