"""Customer tables that follow the month-by-month MRR path: snapshots, invoices, support
tickets and NPS answers. Each walks :func:`mrr_months` again from the same seed, so it
sees exactly the subscriptions and seats the snapshots show."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from kpiengine.sample.calendar import (
    DAY,
    END,
    END_DAY,
    MONTH_DAYS,
    lognormal_seconds,
    month_start_day,
    random_times,
)
from kpiengine.sample.columns import Batches, Col, codes, emit, ids, refs
from kpiengine.sample.subscriptions import BILLING_MONTHS, MonthState, mrr_months
from kpiengine.sample.tables import (
    INVOICE_STATUSES,
    MOVEMENTS,
    NPS_KINDS,
    PRODUCTS,
    TICKET_CATEGORIES,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
)
from kpiengine.sample.world import World


def _path(w: World) -> Iterator[MonthState]:
    return mrr_months(w.subscriptions, w.opportunities, w.stream("mrr_snapshots"))


def mrr_snapshots(w: World) -> Batches:
    subs = w.subscriptions
    for state in _path(w):
        n = len(state.sub)
        columns = {
            "snapshot_date": Col(np.full(n, MONTH_DAYS[state.month])),
            "subscription_id": refs(state.sub),
            "account_id": refs(subs.account[state.sub]),
            "seats": Col(state.seats),
            "mrr": Col(state.mrr),
            "mrr_change": Col(state.change),
            "movement": codes(MOVEMENTS, state.movement),
        }
        yield from emit("mrr_snapshots", columns, n)


_COGS_RATE = np.array([0.18, 0.22, 0.20, 0.25, 0.45])  # PRODUCTS


def invoices(w: World) -> Batches:
    """Each subscription is invoiced at the start of each billing period, on the day of the
    month it started; the first invoice also carries the deal's one-time fees."""
    subs = w.subscriptions
    rng = w.stream("invoices")
    start_month = subs.start_month
    day_of_month = subs.start_day - month_start_day(start_month)
    first_id = 1
    for state in _path(w):
        period = BILLING_MONTHS[subs.billing[state.sub]]
        due = state.live & ((state.month - start_month[state.sub]) % period == 0)
        sub = state.sub[due]
        n = len(sub)
        period, seats, mrr = period[due], state.seats[due], state.mrr[due]
        length = MONTH_DAYS[state.month + 1] - MONTH_DAYS[state.month]
        issued = MONTH_DAYS[state.month] + np.minimum(day_of_month[sub], length - 1)
        net = np.round(mrr * period, 2)
        list_ratio = subs.list_mrr[sub] / np.maximum(subs.mrr[sub], 0.01)  # 1 / (1 - discount)
        discount = np.maximum(np.round(net * list_ratio - net, 2), 0.0)
        fees = np.where(start_month[sub] == state.month, subs.fees[sub], 0.0)
        amount = np.round(net + fees, 2)
        refunded = rng.random(n) < 0.015
        refund = np.where(refunded, np.round(amount * rng.uniform(0.1, 1.0, n), 2), 0.0)
        cogs = np.round(amount * _COGS_RATE[subs.product[sub]] * rng.uniform(0.85, 1.15, n), 2)
        enterprise = subs.segment[sub] == 2
        due_date = issued + np.where(enterprise, 45, 30)
        pay_days = np.where(enterprise, 35.0, 20.0) * rng.lognormal(0.0, 0.6, n)
        paid = issued + pay_days.astype(np.int64)
        paid = np.where((paid >= END_DAY) | (rng.random(n) < 0.01), -1, paid)
        status = np.where(paid >= 0, 0, np.where(due_date < END_DAY, 2, 1))
        columns = {
            "invoice_id": ids(n, first_id),
            "account_id": refs(subs.account[sub]),
            "subscription_id": refs(sub),
            "invoice_date": Col(issued),
            "due_date": Col(due_date),
            "paid_date": Col(paid),
            "status": codes(INVOICE_STATUSES, status),
            "period_months": Col(period.astype(np.int64)),
            "quantity": Col(seats),
            "subtotal": Col(np.round(net + discount, 2)),
            "discount": Col(discount),
            "one_time_fees": Col(fees),
            "amount": Col(amount),
            "refund": Col(refund),
            "cogs": Col(cogs),
        }
        yield from emit("invoices", columns, n)
        first_id += n


# Score 0..10 probabilities: happy customers, customers who will churn, employees.
_CUSTOMER_SCORES = np.array([2, 1, 2, 3, 3, 5, 6, 10, 16, 24, 28]) / 100
_CHURNING_SCORES = np.array([6, 4, 5, 7, 7, 9, 10, 12, 14, 14, 12]) / 100
_EMPLOYEE_SCORES = np.array([1, 1, 2, 3, 3, 5, 8, 17, 20, 20, 20]) / 100
_SURVEY_CHANCE = 0.06  # a customer account answers in a given month
_ENPS_CHANCE = 0.7  # an employee answers a quarterly pulse survey


def nps_responses(w: World) -> Batches:
    """Customers answer now and then; employees answer a pulse survey every quarter."""
    rng = w.stream("nps_responses")
    subs, people = w.subscriptions, w.people
    first_id = 1
    churning = w.accounts.churn_day >= 0
    for state in _path(w):
        customer = np.zeros(len(w.accounts), bool)
        customer[subs.account[state.sub[state.live]]] = True
        account = np.flatnonzero(customer)
        account = account[rng.random(len(account)) < _SURVEY_CHANCE]
        unhappy = churning[account]
        score = np.where(
            unhappy,
            rng.choice(11, len(account), p=_CHURNING_SCORES),
            rng.choice(11, len(account), p=_CUSTOMER_SCORES),
        )
        employee = np.zeros(0, np.int64)
        if state.month % 3 == 0 and w.shard == 0:  # the staff answers once, not per shard
            staff = np.flatnonzero(people.active_in(state.month))
            employee = staff[rng.random(len(staff)) < _ENPS_CHANCE]
        score = np.r_[score, rng.choice(11, len(employee), p=_EMPLOYEE_SCORES)]
        n = len(score)
        when = random_times(rng, np.full(n, state.month))
        order = np.argsort(when, kind="stable")
        is_employee = np.r_[np.zeros(len(account), np.int64), np.ones(len(employee), np.int64)]
        columns = {
            "response_id": ids(n, first_id),
            "kind": codes(NPS_KINDS, is_employee[order]),
            "responded_at": Col(when[order]),
            "account_id": refs(np.r_[account, np.full(len(employee), -1)][order]),
            "employee_id": refs(np.r_[np.full(len(account), -1), employee][order]),
            "score": Col(score[order].astype(np.int64)),
        }
        yield from emit("nps_responses", columns, n)
        first_id += n


_TICKETS_PER_MONTH = np.array([0.06, 0.10, 0.18])  # per active subscription, per segment
_FIRST_RESPONSE_HOURS = np.array([10.0, 5.0, 2.0, 0.5])  # TICKET_PRIORITIES
_RESOLUTION_DAYS = np.array([3.0, 0.8, 1.5, 6.0])  # TICKET_CATEGORIES
_ESCALATION = np.array([0.01, 0.04, 0.12, 0.25])
_CSAT = np.array([[0.03, 0.04, 0.1, 0.33, 0.5], [0.2, 0.2, 0.25, 0.2, 0.15]])  # calm, escalated
_EFFORT = np.array(
    [[0.3, 0.3, 0.18, 0.1, 0.06, 0.04, 0.02], [0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.15]]
)


def support_tickets(w: World) -> Batches:
    rng = w.stream("support_tickets")
    subs = w.subscriptions
    first_id = 1
    for state in _path(w):
        live = state.sub[state.live]
        sub = np.repeat(live, rng.poisson(_TICKETS_PER_MONTH[subs.segment[live]]))
        n = len(sub)
        created = random_times(rng, np.full(n, state.month))
        created = np.maximum(created, subs.start_day[sub] * DAY + 9 * 3600)  # not before start
        order = np.argsort(created, kind="stable")
        sub, created = sub[order], created[order]
        priority = rng.choice(len(TICKET_PRIORITIES), n, p=[0.25, 0.5, 0.18, 0.07])
        category = rng.choice(len(TICKET_CATEGORIES), n, p=[0.3, 0.4, 0.15, 0.15])
        escalation = _ESCALATION[priority] * np.where(category == 0, 1.5, 1.0)
        escalated = rng.random(n) < escalation
        answer = lognormal_seconds(rng, _FIRST_RESPONSE_HOURS[priority] / 24, 0.9, n)
        first_response = created + answer
        work = lognormal_seconds(
            rng, _RESOLUTION_DAYS[category] * np.where(escalated, 2.5, 1.0), 1.0, n
        )
        resolved = first_response + work
        closed = resolved < END
        surveyed = closed & (rng.random(n) < 0.4)
        csat = np.where(escalated, _pick(rng, _CSAT[1], n), _pick(rng, _CSAT[0], n)) + 1
        effort = np.where(escalated, _pick(rng, _EFFORT[1], n), _pick(rng, _EFFORT[0], n)) + 1
        columns = {
            "ticket_id": ids(n, first_id),
            "account_id": refs(subs.account[sub]),
            "product": codes(PRODUCTS, subs.product[sub]),
            "channel": codes(TICKET_CHANNELS, rng.choice(4, n, p=[0.4, 0.3, 0.1, 0.2])),
            "priority": codes(TICKET_PRIORITIES, priority),
            "category": codes(TICKET_CATEGORIES, category),
            "created_at": Col(created),
            "first_response_at": Col(np.where(first_response < END, first_response, -1)),
            "resolved_at": Col(np.where(closed, resolved, -1)),
            "status": codes(TICKET_STATUSES, closed.astype(np.int64)),
            "escalated": Col(escalated),
            "csat": Col(csat, surveyed),
            "effort": Col(effort, surveyed & (rng.random(n) < 0.75)),
        }
        yield from emit("support_tickets", columns, n)
        first_id += n


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    return rng.choice(len(weights), n, p=weights).astype(np.int64)
