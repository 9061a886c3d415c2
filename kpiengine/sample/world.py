"""The sample company as numpy arrays: the tables every other table refers to."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpiengine.sample.calendar import DAY
from kpiengine.sample.draws import stream
from kpiengine.sample.people import People, build_people
from kpiengine.sample.sales import (
    Accounts,
    Leads,
    Opportunities,
    build_accounts,
    build_leads,
    build_opportunities,
    price_opportunities,
)
from kpiengine.sample.subscriptions import Subscriptions, build_subscriptions, plan_subscriptions


@dataclass
class Totals:
    """Company-wide sums over every shard, for the tables keyed by rep, month or region
    (quotas, forecasts, marketing spend): each is generated once, from these."""

    won: np.ndarray  # amount won per rep * MONTHS + month
    pipeline: np.ndarray  # amount of real deals created per month * 4 + region


@dataclass
class World:
    """One shard of the company: its own accounts, deals, leads and subscriptions (all
    indexes 0-based inside the shard), and the company's people, shared by every shard."""

    rows: int
    seed: int
    people: People
    accounts: Accounts
    opportunities: Opportunities
    leads: Leads
    subscriptions: Subscriptions
    shard: int = 0  # 0 for the first (or only) shard: it also speaks for the company
    totals: Totals | None = None  # set for the company-wide tables of a sharded company

    def stream(self, name: str, part: int = 0) -> np.random.Generator:
        """The random stream of ``name`` (and ``part``) for this shard."""
        return stream(self.seed, name, part, self.shard)


def build_world(rows: int, seed: int, people: People | None = None, shard: int = 0) -> World:
    """The shard ``shard`` of ``rows`` deals. ``people``: the company's staff (built for
    ``rows`` deals when not given, as for a company of one shard)."""

    def rng(name: str, part: int = 0) -> np.random.Generator:
        return stream(seed, name, part, shard)

    if people is None:
        people = build_people(rng("reps"), rows)
    accounts = build_accounts(rng("accounts"), rows)
    opportunities = build_opportunities(rng("opportunities"), rows, accounts, people)
    leads = build_leads(rng("leads"), rows, accounts, opportunities, people)
    _created_before_first_touch(rng("accounts", 1), accounts, opportunities, leads)
    plan = plan_subscriptions(rng("subscriptions"), accounts, opportunities)
    price_opportunities(rng("opportunities", 1), opportunities)
    subscriptions = build_subscriptions(rng("subscriptions", 1), plan, accounts, opportunities)
    return World(rows, seed, people, accounts, opportunities, leads, subscriptions, shard)


def _created_before_first_touch(
    rng: np.random.Generator, accounts: Accounts, opp: Opportunities, leads: Leads
) -> None:
    """An account exists in the CRM before its first lead or deal: move created_at back."""
    first = np.full(len(accounts), np.iinfo(np.int64).max)
    np.minimum.at(first, opp.account, opp.created)
    known = leads.account >= 0
    np.minimum.at(first, leads.account[known], leads.created[known])
    earlier = first < accounts.created
    lead_time = (rng.random(len(accounts)) * 5 * DAY).astype(np.int64) + 3600
    accounts.created = np.where(earlier, first - lead_time, accounts.created)
