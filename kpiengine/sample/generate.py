"""``generate()``: the sample dataset as a stream of ``(table, RecordBatch)``.

The reference tables (people, accounts, deals, leads, subscriptions) are built first as
numpy arrays (:mod:`kpiengine.sample.world`); then each table is emitted in turn, in
batches of at most 250 000 rows. The biggest tables (activities, snapshots, invoices,
tickets) are generated part by part as they are emitted. A company of more than
:data:`SHARD_ROWS` deals is generated in shards (:mod:`kpiengine.sample.shards`), so that
memory stays bounded whatever the size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kpiengine.errors import UsageError
from kpiengine.sample import activity, customers
from kpiengine.sample.columns import Batches, Col, codes, emit, ids, refs
from kpiengine.sample.people import NAMES
from kpiengine.sample.sales import ACCOUNT_NAMES, COUNTRY_CODES
from kpiengine.sample.shards import generate_shards
from kpiengine.sample.tables import (
    BILLING_PERIODS,
    CHURN_REASONS,
    CONTACT_METHODS,
    DEPARTMENTS,
    HIRE_SOURCES,
    INDUSTRIES,
    LEAD_SOURCES,
    LEAD_STAGES,
    LOSS_REASONS,
    OPPORTUNITY_STAGES,
    OPPORTUNITY_TYPES,
    PLANS,
    PRODUCTS,
    REGIONS,
    ROLES,
    SEGMENTS,
    SUBSCRIPTION_STATUSES,
    TABLES,
)
from kpiengine.sample.world import World, build_world

MIN_ROWS = 100
#: Most deals generated at once (≈ 0.9 GB of numpy arrays per million). Up to this size
#: the company is one shard, generated exactly as it always was (byte-identical data);
#: above it, in shards of at most this size, and the data of a seed differs.
SHARD_ROWS = 1_000_000
_MIN_SHARD_ROWS = 2 * MIN_ROWS


def generate(rows: int = 100_000, seed: int = 42, *, shard_rows: int | None = None) -> Batches:
    """Yield ``(table, batch)`` for every table of :data:`TABLES`.

    ``rows`` is the number of opportunities; the other tables follow in proportion. The
    same ``rows`` and ``seed`` always give the same data, byte for byte. Up to
    ``shard_rows`` (default :data:`SHARD_ROWS`) each table comes whole, in TABLES order;
    above it the company comes shard by shard, each shard table in one run per shard
    (order in :func:`kpiengine.sample.shards.generate_shards`). ``shard_rows`` other than
    the default is for tests and benchmarks: it changes the data of bigger sizes.
    """
    shard_rows = check_arguments(rows, seed, shard_rows)  # now, not at the first batch
    if rows > shard_rows:
        return generate_shards(rows, seed, shard_rows, EMITTERS)
    return _generate(rows, seed)


def _generate(rows: int, seed: int) -> Batches:
    world = build_world(rows, seed)
    for table in TABLES:
        yield from EMITTERS[table](world)


def check_arguments(rows: int, seed: int, shard_rows: int | None = None) -> int:
    """Raise UsageError unless ``rows`` and ``seed`` can generate a dataset; return the
    shard size to use."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < MIN_ROWS:
        raise UsageError(f"rows must be an integer of at least {MIN_ROWS}, not {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, not {seed!r}")
    if shard_rows is None:
        return SHARD_ROWS
    if isinstance(shard_rows, bool) or not isinstance(shard_rows, int):
        raise UsageError(f"shard_rows must be an integer, not {shard_rows!r}")
    if shard_rows < _MIN_SHARD_ROWS:
        raise UsageError(f"shard_rows must be at least {_MIN_SHARD_ROWS}, not {shard_rows}")
    return shard_rows


def _accounts(w: World) -> Batches:
    a = w.accounts
    columns = {
        "account_id": ids(len(a)),
        "name": codes(ACCOUNT_NAMES, a.name),
        "region": codes(REGIONS, a.region),
        "country": codes(COUNTRY_CODES, a.country),
        "segment": codes(SEGMENTS, a.segment),
        "industry": codes(INDUSTRIES, a.industry),
        "employee_count": Col(a.employee_count, a.employee_count_known),
        "created_at": Col(a.created),
        "customer_since": Col(a.customer_since),
        "churn_date": Col(a.churn_day),
        "is_test": Col(a.is_test),
    }
    return emit("accounts", columns, len(a))


def _employees(w: World) -> Batches:
    p = w.people
    columns = {
        "employee_id": ids(p.employees),
        "name": codes(NAMES, p.name),
        "department": codes(DEPARTMENTS, p.department),
        "role": codes(ROLES, p.role),
        "region": codes(REGIONS, p.region),
        "hire_date": Col(p.hire_day),
        "termination_date": Col(p.end_day),
        "hire_source": codes(HIRE_SOURCES, p.hire_source),
        "ramped_date": Col(p.ramped_day),
    }
    return emit("employees", columns, p.employees)


def _reps(w: World) -> Batches:
    p = w.people
    employee = p.rep_employee
    columns = {
        "rep_id": ids(p.reps),
        "employee_id": refs(employee),
        "name": codes(NAMES, p.name[employee]),
        "region": codes(REGIONS, p.rep_region),
        "segment": codes(SEGMENTS, p.rep_segment),
        "hire_date": Col(p.hire_day[employee]),
        "termination_date": Col(p.end_day[employee]),
    }
    return emit("reps", columns, p.reps)


def _opportunities(w: World) -> Batches:
    o = w.opportunities
    assert o.lead is not None
    columns = {
        "opportunity_id": ids(len(o)),
        "account_id": refs(o.account),
        "rep_id": refs(o.rep),
        "lead_id": refs(o.lead),
        "region": codes(REGIONS, o.region),
        "product": codes(PRODUCTS, o.product),
        "contact_method": codes(CONTACT_METHODS, o.method),
        "type": codes(OPPORTUNITY_TYPES, o.expansion.astype(np.int64)),
        "stage": codes(OPPORTUNITY_STAGES, o.stage),
        "created_at": Col(o.created),
        "closed_at": Col(o.closed),
        "quantity": Col(o.quantity),
        "list_price": Col(o.list_price),
        "discount_rate": Col(o.discount),
        "amount": Col(o.amount),
        "term_years": Col(o.term_years),
        "one_time_fees": Col(o.fees),
        "total_contract_value": Col(o.contract_value),
        "loss_reason": codes(LOSS_REASONS, o.loss_reason),
    }
    return emit("opportunities", columns, len(o))


def _leads(w: World) -> Batches:
    le = w.leads
    columns = {
        "lead_id": ids(len(le)),
        "created_at": Col(le.created),
        "source": codes(LEAD_SOURCES, le.source),
        "region": codes(REGIONS, le.region),
        "country": codes(COUNTRY_CODES, le.country),
        "account_id": refs(le.account),
        "rep_id": refs(le.rep),
        "referrer_account_id": refs(le.referrer),
        "mql_at": Col(le.mql),
        "sql_at": Col(le.sql),
        "opportunity_at": Col(le.opportunity_at),
        "customer_at": Col(le.customer_at),
        "opportunity_id": refs(le.opportunity),
        "stage": codes(LEAD_STAGES, le.stage),
    }
    return emit("leads", columns, len(le))


def _subscriptions(w: World) -> Batches:
    s = w.subscriptions
    columns = {
        "subscription_id": ids(len(s)),
        "account_id": refs(s.account),
        "opportunity_id": refs(s.opportunity),
        "product": codes(PRODUCTS, s.product),
        "plan": codes(PLANS, s.plan),
        "billing_period": codes(BILLING_PERIODS, s.billing),
        "start_date": Col(s.start_day),
        "end_date": Col(s.end_day),
        "status": codes(SUBSCRIPTION_STATUSES, (s.end_day >= 0).astype(np.int64)),
        "seats": Col(s.seats),
        "monthly_amount": Col(s.mrr),
        "monthly_list_price": Col(s.list_mrr),
        "term_months": Col(s.term_months),
        "first_value_date": Col(s.first_value_day),
        "churn_reason": codes(CHURN_REASONS, s.churn_reason),
    }
    return emit("subscriptions", columns, len(s))


EMITTERS: dict[str, Callable[[World], Batches]] = {
    "accounts": _accounts,
    "employees": _employees,
    "reps": _reps,
    "opportunities": _opportunities,
    "leads": _leads,
    "activities": activity.activities,
    "quotas": activity.quotas,
    "forecasts": activity.forecasts,
    "subscriptions": _subscriptions,
    "mrr_snapshots": customers.mrr_snapshots,
    "invoices": customers.invoices,
    "nps_responses": customers.nps_responses,
    "support_tickets": customers.support_tickets,
    "marketing_spend": activity.marketing_spend,
    "social_posts": activity.social_posts,
}
assert tuple(EMITTERS) == TABLES
