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
class World:
    rows: int
    seed: int
    people: People
    accounts: Accounts
    opportunities: Opportunities
    leads: Leads
    subscriptions: Subscriptions


def build_world(rows: int, seed: int) -> World:
    people = build_people(stream(seed, "reps"), rows)
    accounts = build_accounts(stream(seed, "accounts"), rows)
    opportunities = build_opportunities(stream(seed, "opportunities"), rows, accounts, people)
    leads = build_leads(stream(seed, "leads"), rows, accounts, opportunities, people)
    _created_before_first_touch(stream(seed, "accounts", 1), accounts, opportunities, leads)
    plan = plan_subscriptions(stream(seed, "subscriptions"), accounts, opportunities)
    price_opportunities(stream(seed, "opportunities", 1), opportunities)
    subscriptions = build_subscriptions(
        stream(seed, "subscriptions", 1), plan, accounts, opportunities
    )
    return World(rows, seed, people, accounts, opportunities, leads, subscriptions)


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
