"""Subscriptions and their month-by-month MRR.

A won new-business or cross-sell deal starts a subscription; a won upsell adds its seats
to a subscription the account already has (an ``expansion`` month in the snapshots);
customers from before 2024 bring older subscriptions. Churn is a small monthly hazard,
much higher at each yearly renewal. :func:`plan_subscriptions` walks the months once to
decide all of that (so the subscriptions table knows its end dates); :func:`mrr_months`
then replays seats and MRR month by month from its own seed, so the snapshot, invoice,
ticket and NPS tables each walk the same path without keeping every month in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kpiengine.sample.calendar import (
    DAY,
    END_DAY,
    MONTH_DAYS,
    MONTHS,
    month_of_day,
    month_start_day,
    random_days,
)
from kpiengine.sample.draws import choose_rows
from kpiengine.sample.sales import SEATS_MEDIAN, UNIT_PRICE, Accounts, Opportunities
from kpiengine.sample.tables import CHURN_REASONS, PRODUCTS

BILLING_MONTHS = np.array([1, 3, 12])  # BILLING_PERIODS
_PLAN_WEIGHTS = np.array([[0.7, 0.3, 0.0], [0.15, 0.7, 0.15], [0.0, 0.25, 0.75]])
_BILLING_WEIGHTS = np.array([[0.5, 0.0, 0.5], [0.2, 0.3, 0.5], [0.0, 0.2, 0.8]])
_MONTHLY_CHURN = np.array([0.006, 0.003, 0.0015])
_RENEWAL_CHURN = np.array([0.20, 0.12, 0.07])
_SEAT_GROWTH = np.array([0.01, 0.012, 0.015])  # chance per month of a seat true-up
_SEAT_CUT = np.array([0.012, 0.012, 0.01])  # chance per month of fewer seats
_VALUE_DAYS = np.array([30.0, 60.0, 90.0])
NOT_ENDED = 10_000  # end month of subscriptions still active


@dataclass
class Subscriptions:
    account: np.ndarray
    opportunity: np.ndarray  # -1 = started before the window
    segment: np.ndarray
    product: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray  # -1 = active
    plan: np.ndarray
    billing: np.ndarray
    seats: np.ndarray  # at the start
    mrr: np.ndarray  # at the start, after discount
    list_mrr: np.ndarray
    term_months: np.ndarray
    fees: np.ndarray  # one-time fees, billed on the first invoice
    first_value_day: np.ndarray
    churn_reason: np.ndarray
    # won upsells: (opportunity, subscription, month) adding seats and MRR
    upsell_opportunity: np.ndarray
    upsell_subscription: np.ndarray
    upsell_month: np.ndarray

    def __len__(self) -> int:
        return len(self.account)

    @property
    def start_month(self) -> np.ndarray:
        return month_of_day(self.start_day)

    @property
    def end_month(self) -> np.ndarray:
        return np.where(self.end_day < 0, NOT_ENDED, month_of_day(self.end_day))


@dataclass
class _Plan:
    account: np.ndarray
    opportunity: np.ndarray
    product: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray
    upsell_opportunity: np.ndarray
    upsell_subscription: np.ndarray
    upsell_month: np.ndarray


def plan_subscriptions(rng: np.random.Generator, accounts: Accounts, opp: Opportunities) -> _Plan:
    """Which subscriptions exist, when they start and end, and where upsells go.

    Sets the product of each won upsell to the product of the subscription it grows.
    """
    # Customers from before the window: one or a few subscriptions, started 2021-2023.
    owners = np.flatnonzero(accounts.legacy_customer)
    legacy_account = np.repeat(owners, 1 + rng.poisson(0.8, len(owners)))
    legacy = len(legacy_account)
    created = accounts.created[legacy_account] // DAY  # started after the account existed
    legacy_start = created + (rng.random(legacy) * (MONTH_DAYS[0] - created)).astype(np.int64)
    order = np.argsort(legacy_start, kind="stable")  # ids follow start order
    legacy_account, legacy_start = legacy_account[order], legacy_start[order]

    won = np.flatnonzero(opp.stage == 1)
    won = won[np.argsort(opp.closed[won], kind="stable")]
    won_month = month_of_day(opp.closed[won] // DAY)
    bounds = np.searchsorted(won_month, np.arange(MONTHS + 1))

    capacity = legacy + len(won)
    account = np.r_[legacy_account, np.zeros(len(won), np.int64)]
    source = np.r_[np.full(legacy, -1), np.zeros(len(won), np.int64)]
    product = np.r_[rng.choice(len(PRODUCTS), legacy), np.zeros(len(won), np.int64)]
    start_day = np.r_[legacy_start, np.zeros(len(won), np.int64)]
    end_day = np.full(capacity, -1)
    segment = np.zeros(capacity, np.int64)
    segment[:legacy] = accounts.segment_or_smb(legacy_account)
    latest = np.full(len(accounts), -1)  # each account's newest live subscription
    latest[legacy_account] = np.arange(legacy)
    count = legacy
    upsells: list[tuple[np.ndarray, np.ndarray]] = []
    for month in range(MONTHS):
        # Churn first: subscriptions older than a month may end this month.
        start_month = month_of_day(start_day[:count])
        age = month - start_month
        at_risk = (end_day[:count] < 0) & (age > 0)
        renewal = at_risk & (age % 12 == 0)
        hazard = _MONTHLY_CHURN[segment[:count]] + np.where(
            renewal, _RENEWAL_CHURN[segment[:count]], 0
        )
        gone = np.flatnonzero(at_risk & (rng.random(count) < hazard))
        length = MONTH_DAYS[month + 1] - MONTH_DAYS[month]
        day_of_month = start_day[gone] - month_start_day(start_month[gone])
        anniversary = MONTH_DAYS[month] + np.minimum(day_of_month, length - 1)
        end_day[gone] = np.where(
            renewal[gone], anniversary, random_days(rng, np.full(len(gone), month))
        )
        stale = gone[latest[account[gone]] == gone]
        latest[account[stale]] = -1

        # Then this month's wins: upsells grow a live subscription, the others start one.
        deals = won[bounds[month] : bounds[month + 1]]
        target = np.where(opp.upsell[deals], latest[opp.account[deals]], -1)
        grow = target >= 0
        upsells.append((deals[grow], target[grow]))
        opp.product[deals[grow]] = product[target[grow]]
        new = deals[~grow]
        slots = np.arange(count, count + len(new))
        account[slots] = opp.account[new]
        source[slots] = new
        product[slots] = opp.product[new]
        start_day[slots] = opp.closed[new] // DAY
        segment[slots] = opp.segment[new]
        latest[opp.account[new]] = slots
        count += len(new)

    grown = np.concatenate([d for d, _ in upsells])
    return _Plan(
        account=account[:count],
        opportunity=source[:count],
        product=product[:count],
        start_day=start_day[:count],
        end_day=end_day[:count],
        upsell_opportunity=grown,
        upsell_subscription=np.concatenate([t for _, t in upsells]),
        upsell_month=month_of_day(opp.closed[grown] // DAY),
    )


def build_subscriptions(
    rng: np.random.Generator, plan: _Plan, accounts: Accounts, opp: Opportunities
) -> Subscriptions:
    """Seats and prices of the planned subscriptions, once the deals are priced."""
    n = len(plan.account)
    segment = accounts.segment_or_smb(plan.account)
    from_deal = plan.opportunity >= 0
    deal = np.maximum(plan.opportunity, 0)
    legacy_seats = np.round(SEATS_MEDIAN[segment] * rng.lognormal(0, 0.75, n))
    seats = np.where(from_deal, opp.quantity[deal], np.maximum(legacy_seats, 1)).astype(np.int64)
    legacy_list = seats * UNIT_PRICE[plan.product] / 1.05 / 12  # 2023 list prices
    legacy_mrr = legacy_list * (1 - np.minimum(rng.beta(2.5, 15, n), 0.45))
    list_mrr = np.round(np.where(from_deal, opp.list_price[deal] / 12, legacy_list), 2)
    mrr = np.round(np.where(from_deal, opp.amount[deal] / 12, legacy_mrr), 2)
    legacy_term = rng.choice(np.array([12, 24, 36]), n, p=[0.7, 0.2, 0.1])
    term = np.where(from_deal, 12 * opp.term_years[deal], legacy_term)
    ended = plan.end_day >= 0
    value = plan.start_day + (_VALUE_DAYS[segment] * rng.lognormal(0, 0.5, n)).astype(np.int64)
    never = (value >= END_DAY) | (ended & (value > plan.end_day)) | (rng.random(n) < 0.05)
    subs = Subscriptions(
        account=plan.account,
        opportunity=plan.opportunity,
        segment=segment,
        product=plan.product,
        start_day=plan.start_day,
        end_day=plan.end_day,
        plan=choose_rows(rng, _PLAN_WEIGHTS, segment),
        billing=choose_rows(rng, _BILLING_WEIGHTS, segment),
        seats=seats,
        mrr=mrr,
        list_mrr=list_mrr,
        term_months=term,
        fees=np.where(from_deal, opp.fees[deal], 0.0),
        first_value_day=np.where(never, -1, value),
        churn_reason=np.where(
            ended, rng.choice(len(CHURN_REASONS), n, p=[0.3, 0.25, 0.2, 0.15, 0.1]), -1
        ),
        upsell_opportunity=plan.upsell_opportunity,
        upsell_subscription=plan.upsell_subscription,
        upsell_month=plan.upsell_month,
    )
    _customer_dates(accounts, subs)
    return subs


def _customer_dates(accounts: Accounts, subs: Subscriptions) -> None:
    n = len(accounts)
    since = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(since, subs.account, subs.start_day)
    accounts.customer_since = np.where(since == np.iinfo(np.int64).max, -1, since)
    last_end = np.full(n, -1)
    np.maximum.at(last_end, subs.account, subs.end_day)
    active = np.bincount(subs.account[subs.end_day < 0], minlength=n)
    accounts.churn_day = np.where((accounts.customer_since >= 0) & (active == 0), last_end, -1)


@dataclass
class MonthState:
    """The snapshot of one month: the subscriptions in it and their MRR at month end."""

    month: int
    sub: np.ndarray
    seats: np.ndarray
    mrr: np.ndarray
    change: np.ndarray
    movement: np.ndarray  # MOVEMENTS codes

    @property
    def live(self) -> np.ndarray:
        """Rows of subscriptions still active at the end of the month."""
        return self.movement != 3


def mrr_months(
    subs: Subscriptions, opp: Opportunities, rng: np.random.Generator
) -> Iterator[MonthState]:
    """Walk the window month by month; the same ``rng`` seed gives the same path."""
    seats = subs.seats.copy()
    mrr = subs.mrr.copy()
    start_month, end_month = subs.start_month, subs.end_month
    upsell_bounds = np.searchsorted(subs.upsell_month, np.arange(MONTHS + 1))
    for month in range(MONTHS):
        sub = np.flatnonzero((start_month <= month) & (end_month >= month))
        new = start_month[sub] == month
        churn = end_month[sub] == month
        previous = mrr[sub]
        # Seat true-ups and cuts on running subscriptions...
        steady = sub[~new & ~churn]
        segment = subs.segment[steady]
        draw = rng.random(len(steady))
        up = draw < _SEAT_GROWTH[segment]
        down = ~up & (draw < _SEAT_GROWTH[segment] + _SEAT_CUT[segment])
        factor = np.where(up, rng.uniform(1.1, 1.5, len(steady)), 1.0)
        factor = np.where(down, rng.uniform(0.6, 0.9, len(steady)), factor)
        changed = steady[up | down]
        before = seats[changed]
        seats[changed] = np.maximum(np.round(before * factor[up | down]), 1).astype(np.int64)
        mrr[changed] = np.round(mrr[changed] * seats[changed] / before, 2)
        # ...and the seats of this month's won upsells.
        part = slice(upsell_bounds[month], upsell_bounds[month + 1])
        deal, grown = subs.upsell_opportunity[part], subs.upsell_subscription[part]
        np.add.at(seats, grown, opp.quantity[deal])
        np.add.at(mrr, grown, np.round(opp.amount[deal] / 12, 2))
        mrr[grown] = np.round(mrr[grown], 2)

        now_seats = np.where(churn, 0, seats[sub])
        now_mrr = np.where(churn, 0.0, mrr[sub])
        change = np.round(np.where(new, now_mrr, now_mrr - previous), 2)
        movement = np.select([new, churn, change > 0, change < 0], [0, 3, 1, 2], 4)
        yield MonthState(month, sub, now_seats, now_mrr, change, movement)
