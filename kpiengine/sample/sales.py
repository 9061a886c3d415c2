"""Accounts, opportunities and leads: the sales side of the sample company.

Deals are drawn first (their count is ``rows``), month by month with growth and season;
each goes to an account that exists by then and to a rep of its territory. Leads are
derived backwards from the deals they became (stage timestamps before the deal's
creation), and the leads that never converted are added around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpiengine.sample.calendar import (
    DAY,
    END,
    MONTH_DAYS,
    MONTHS,
    START,
    START_DAY,
    lognormal_seconds,
    month_of_day,
    month_start_day,
    month_weights,
    random_times,
    spread_over_months,
    time_of_day,
    year_of_day,
)
from kpiengine.sample.draws import choose_rows
from kpiengine.sample.people import REGION_WEIGHTS, People
from kpiengine.sample.tables import (
    CONTACT_METHODS,
    COUNTRIES,
    INDUSTRIES,
    LEAD_SOURCES,
    LOSS_REASONS,
    PRODUCTS,
)

_FIRST = (
    "Blue", "North", "Bright", "Silver", "Green", "Red", "Swift", "Prime", "Nova", "Atlas",
    "Summit", "Harbor", "Iron", "Cedar", "Lumen", "Vertex", "Orbit", "Polar", "Quantum", "Solid",
    "Urban", "Vivid", "Wild", "Zen", "Apex", "Crystal", "Delta", "Echo", "Falcon", "Granite",
)  # fmt: skip
_SECOND = (
    "Labs", "Logistics", "Systems", "Health", "Foods", "Energy", "Media", "Capital", "Works",
    "Retail", "Robotics", "Analytics", "Dynamics", "Networks", "Motors", "Pharma", "Studios",
    "Foundry", "Textiles", "Partners",
)  # fmt: skip
_SUFFIX = ("Inc", "Ltd", "GmbH", "SAS", "BV", "AB", "Pty", "SA", "LLC", "Group")
ACCOUNT_NAMES = (
    *(f"{a} {b} {c}" for a in _FIRST for b in _SECOND for c in _SUFFIX),
    "Test Account",
)
COUNTRY_CODES = tuple(sorted({code for codes in COUNTRIES for code in codes}))
_COUNTRY_WEIGHTS = (
    (0.85, 0.15),
    (0.25, 0.2, 0.2, 0.1, 0.1, 0.08, 0.07),
    (0.35, 0.25, 0.2, 0.2),
    (0.4, 0.3, 0.1, 0.1, 0.1),
    (1.0,),
)
INTERNAL = 4  # REGIONS index of `internal`

SEGMENT_SHARE = np.array([0.6, 0.28, 0.12])  # of accounts
_DEAL_WEIGHT = np.array([1.0, 1.6, 2.5])  # how many deals an account of each segment gets
_EMPLOYEES_MEDIAN = np.array([40.0, 500.0, 5000.0])
SEATS_MEDIAN = np.array([8.0, 40.0, 220.0])
_CYCLE_MEDIAN_DAYS = np.array([21.0, 45.0, 90.0])
DEAL_GROWTH = 0.02  # more deals every month
_EXPANSION_SHARE = 0.45  # deals opened for existing customers
_UPSELL_SHARE = 0.7  # of those, more seats of a product they have (else cross-sell)
_WIN_NEW = np.array([0.38, 0.34, 0.28])
_WIN_EXPANSION = np.array([0.68, 0.64, 0.58])
_METHOD_WEIGHTS = np.array([0.20, 0.22, 0.25, 0.08, 0.10, 0.08, 0.07])
_METHOD_WIN = np.array([-0.04, -0.06, 0.0, -0.03, 0.03, 0.15, 0.06])
_PRODUCT_WEIGHTS = np.array([0.38, 0.20, 0.17, 0.15, 0.10])
UNIT_PRICE = np.array([600.0, 420.0, 540.0, 300.0, 240.0])  # per seat and year, 2024 list
_TERM_WEIGHTS = np.array([[0.85, 0.10, 0.05], [0.6, 0.25, 0.15], [0.3, 0.3, 0.4]])
_FEE_CHANCE = np.array([0.2, 0.5, 0.8])
_FEE_RANGE = np.array([[500.0, 2_000.0], [2_000.0, 10_000.0], [10_000.0, 50_000.0]])
_LOSS_WEIGHTS = np.array([0.30, 0.25, 0.25, 0.10, 0.10])
assert len(_METHOD_WEIGHTS) == len(CONTACT_METHODS) and len(_PRODUCT_WEIGHTS) == len(PRODUCTS)
assert len(_LOSS_WEIGHTS) == len(LOSS_REASONS)

# Leads. Source given the deal's contact method (rows: CONTACT_METHODS, then unknown).
_SOURCE_GIVEN_METHOD = np.array(
    [
        [0.1, 0.1, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.7],
        [0.0, 0.0, 0.0, 0.5, 0.0, 0.2, 0.0, 0.0, 0.3],
        [0.4, 0.35, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        [0.2, 0.18, 0.14, 0.1, 0.08, 0.14, 0.04, 0.02, 0.1],
    ]
)
_SOURCE_WEIGHTS = _SOURCE_GIVEN_METHOD[-1]  # leads that never became a deal
_MQL_CHANCE = np.array([0.3, 0.25, 0.18, 0.2, 0.35, 0.28, 0.35, 0.5, 0.15])
_SQL_CHANCE = 0.28
assert _SOURCE_GIVEN_METHOD.shape == (len(CONTACT_METHODS) + 1, len(LEAD_SOURCES))


@dataclass
class Accounts:
    name: np.ndarray
    region: np.ndarray
    country: np.ndarray
    segment: np.ndarray  # -1 = unknown
    industry: np.ndarray  # -1 = unknown
    employee_count: np.ndarray
    employee_count_known: np.ndarray
    created: np.ndarray  # seconds
    is_test: np.ndarray
    birth_month: np.ndarray  # -1 = before the window; sorted
    legacy_customer: np.ndarray  # a customer already before the window
    customer_since: np.ndarray | None = None  # day, -1 = never; set with subscriptions
    churn_day: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.name)

    def segment_or_smb(self, index: np.ndarray) -> np.ndarray:
        return np.maximum(self.segment[index], 0)


@dataclass
class Opportunities:
    account: np.ndarray
    rep: np.ndarray
    region: np.ndarray
    segment: np.ndarray  # of the account, unknown as smb
    product: np.ndarray
    method: np.ndarray  # -1 = not recorded
    expansion: np.ndarray
    upsell: np.ndarray  # an expansion meant to add seats to a subscription
    stage: np.ndarray  # OPPORTUNITY_STAGES codes
    created: np.ndarray
    closed: np.ndarray  # -1 = open
    quantity: np.ndarray
    list_price: np.ndarray
    discount: np.ndarray
    amount: np.ndarray
    term_years: np.ndarray
    fees: np.ndarray
    contract_value: np.ndarray
    loss_reason: np.ndarray
    lead: np.ndarray | None = None  # -1 = not from a lead; set with leads

    def __len__(self) -> int:
        return len(self.account)


@dataclass
class Leads:
    created: np.ndarray
    source: np.ndarray
    region: np.ndarray
    country: np.ndarray
    account: np.ndarray
    rep: np.ndarray
    referrer: np.ndarray
    mql: np.ndarray
    sql: np.ndarray
    opportunity_at: np.ndarray
    customer_at: np.ndarray
    opportunity: np.ndarray
    stage: np.ndarray

    def __len__(self) -> int:
        return len(self.created)


def build_accounts(rng: np.random.Generator, rows: int) -> Accounts:
    n = max(60, rows // 2)
    before = round(0.35 * n)
    first_day = int(np.datetime64("2019-01-01", "D").astype(np.int64))
    old = np.sort(first_day + (rng.random(before) * (START_DAY - first_day)).astype(np.int64))
    old = old * DAY + time_of_day(rng, before)
    birth = spread_over_months(rng, n - before, month_weights(0.02))
    new = np.sort(random_times(rng, birth))
    birth_month = np.concatenate([np.full(before, -1), month_of_day(new // DAY)])

    region = rng.choice(4, n, p=REGION_WEIGHTS)
    segment = rng.choice(3, n, p=SEGMENT_SHARE)
    is_test = np.zeros(n, bool)
    is_test[rng.choice(n, max(1, round(n * 0.003)), replace=False)] = True
    region[is_test] = INTERNAL
    unknown = rng.choice(np.flatnonzero(~is_test), max(1, round(n * 0.004)), replace=False)
    name = rng.integers(0, len(ACCOUNT_NAMES) - 1, n)
    name[is_test] = len(ACCOUNT_NAMES) - 1
    country = _countries(rng, region)
    staff = _EMPLOYEES_MEDIAN[segment] * rng.lognormal(0.0, 0.6, n)
    industry = rng.integers(0, len(INDUSTRIES), n)
    industry[rng.random(n) < 0.02] = -1
    legacy = (birth_month < 0) & ~is_test & (rng.random(n) < 0.6)
    segment[unknown] = -1
    return Accounts(
        name=name,
        region=region,
        country=country,
        segment=segment,
        industry=industry,
        employee_count=np.maximum(staff.astype(np.int64), 2),
        employee_count_known=rng.random(n) >= 0.03,
        created=np.concatenate([old, new]),
        is_test=is_test,
        birth_month=birth_month,
        legacy_customer=legacy,
    )


def build_opportunities(
    rng: np.random.Generator, rows: int, accounts: Accounts, people: People
) -> Opportunities:
    """Deals month by month: some for accounts that are not customers yet (new business),
    the rest for customers (expansion). A win makes the account a customer for the deals
    of the following months. Prices come later (:func:`price_opportunities`), once the
    subscriptions decided which product each upsell is for."""
    month = spread_over_months(rng, rows, month_weights(DEAL_GROWTH))
    created = np.sort(random_times(rng, month))  # ids follow creation order
    month = month_of_day(created // DAY)
    bounds = np.searchsorted(month, np.arange(MONTHS + 1))
    for_customer = rng.random(rows) < _EXPANSION_SHARE
    upsell = for_customer & (rng.random(rows) < _UPSELL_SHARE)
    product = rng.choice(len(PRODUCTS), rows, p=_PRODUCT_WEIGHTS)
    method = rng.choice(len(CONTACT_METHODS), rows, p=_METHOD_WEIGHTS)
    method[rng.random(rows) < 0.01] = -1
    method_win = np.where(method >= 0, _METHOD_WIN[method], 0.0)
    account_draw, win_draw = rng.random(rows), rng.random(rows)
    cycle_draw = rng.lognormal(0.0, 0.65, rows)
    stalled = rng.random(rows) < 0.02

    weight = _DEAL_WEIGHT[np.maximum(accounts.segment, 0)]
    existing = np.searchsorted(accounts.birth_month, np.arange(MONTHS), side="right")
    first_win = np.full(len(accounts), np.iinfo(np.int64).max)
    first_win[accounts.legacy_customer] = START - 1
    account = np.zeros(rows, np.int64)
    rep = np.zeros(rows, np.int64)
    closed = np.zeros(rows, np.int64)
    won = np.zeros(rows, bool)
    for m in range(MONTHS):
        lo, hi = bounds[m], bounds[m + 1]
        pool = existing[m]
        customer = first_win[:pool] < MONTH_DAYS[m] * DAY
        for wanted in (False, True):
            deals = lo + np.flatnonzero(for_customer[lo:hi] == wanted)
            eligible = customer == wanted
            if not eligible.any():  # nobody to sell to: anyone who exists
                eligible[:] = True
            cumulative = np.cumsum(np.where(eligible, weight[:pool], 0.0))
            pick = np.searchsorted(cumulative, account_draw[deals] * cumulative[-1], side="right")
            account[deals] = np.minimum(pick, pool - 1)
        a = account[lo:hi]
        segment = accounts.segment_or_smb(a)
        rep[lo:hi] = people.pick_reps(rng, accounts.region[a], accounts.segment[a], month[lo:hi])
        is_customer = first_win[a] < MONTH_DAYS[m] * DAY
        chance = np.where(is_customer, _WIN_EXPANSION[segment], _WIN_NEW[segment])
        chance = np.clip(chance + method_win[lo:hi] + people.rep_skill[rep[lo:hi]], 0.05, 0.95)
        won[lo:hi] = win_draw[lo:hi] < chance
        days = _CYCLE_MEDIAN_DAYS[segment] * cycle_draw[lo:hi] * np.where(won[lo:hi], 1.0, 0.85)
        close = created[lo:hi] + np.maximum((days * DAY).astype(np.int64), 3600)
        close = _quarter_end_push(rng, created[lo:hi], close, won[lo:hi])
        close = _august_lull(rng, close)
        close = np.where((close >= END) | stalled[lo:hi], -1, close)
        closed[lo:hi] = close
        wins = won[lo:hi] & (close >= 0)
        np.minimum.at(first_win, a[wins], close[wins])

    stage = np.where(closed < 0, 0, np.where(won, 1, 2))
    loss = rng.choice(len(LOSS_REASONS), rows, p=_LOSS_WEIGHTS)
    loss = np.where((stage == 2) & (rng.random(rows) >= 0.08), loss, -1)
    empty = np.zeros(0)
    return Opportunities(
        account=account,
        rep=rep,
        region=accounts.region[account],
        segment=accounts.segment_or_smb(account),
        product=product,
        method=method,
        expansion=first_win[account] < created,  # a customer when the deal was opened
        upsell=upsell,
        stage=stage,
        created=created,
        closed=closed,
        quantity=empty,
        list_price=empty,
        discount=empty,
        amount=empty,
        term_years=empty,
        fees=empty,
        contract_value=empty,
        loss_reason=loss,
    )


def price_opportunities(rng: np.random.Generator, opp: Opportunities) -> None:
    """Seats, list price, discount, amount and contract terms of every deal."""
    rows, segment = len(opp), opp.segment
    quantity = np.round(SEATS_MEDIAN[segment] * rng.lognormal(0.0, 0.75, rows))
    quantity = np.maximum(np.where(opp.expansion, np.round(quantity * 0.4), quantity), 1)
    opp.quantity = quantity.astype(np.int64)
    price = UNIT_PRICE[opp.product] * 1.05 ** (year_of_day(opp.created // DAY) - 2024)
    opp.list_price = np.round(opp.quantity * price, 2)
    discount = np.select(
        [segment == 0, segment == 1],
        [np.where(rng.random(rows) < 0.3, 0.0, rng.beta(2, 18, rows)), rng.beta(2.5, 15, rows)],
        rng.beta(3, 11, rows),
    )
    opp.discount = np.round(np.minimum(discount, 0.45), 3)
    opp.amount = np.round(opp.list_price * (1 - opp.discount), 2)
    opp.term_years = choose_rows(rng, _TERM_WEIGHTS, segment) + 1
    has_fees = (rng.random(rows) < _FEE_CHANCE[segment]) & ~opp.upsell
    low, high = _FEE_RANGE[segment, 0], _FEE_RANGE[segment, 1]
    fees = np.round((low + rng.random(rows) * (high - low)) / 100) * 100
    opp.fees = np.where(has_fees, fees, 0.0)
    uplift = rng.choice(np.array([0.0, 0.03, 0.05]), rows, p=[0.5, 0.3, 0.2])
    growth = ((1 + uplift) ** opp.term_years - 1) / np.where(uplift > 0, uplift, 1.0)
    years = np.where(uplift > 0, growth, opp.term_years)
    opp.contract_value = np.round(opp.amount * years + opp.fees, 2)


def _august_lull(rng: np.random.Generator, closed: np.ndarray) -> np.ndarray:
    """Buyers are on holiday: a third of the deals due in August slip into September."""
    august = (month_of_day(closed // DAY) % 12 == 7) & (rng.random(len(closed)) < 0.35)
    return np.where(august, closed + rng.integers(14, 35, len(closed)) * DAY, closed)


def _quarter_end_push(
    rng: np.random.Generator, created: np.ndarray, closed: np.ndarray, won: np.ndarray
) -> np.ndarray:
    """Reps pull wins due early in a quarter into the last days of the one before."""
    day = closed // DAY
    month = month_of_day(day)
    early = (month % 3 == 0) & (day - month_start_day(month) < 12)
    pulled_day = month_start_day(month) - 1 - rng.integers(0, 4, len(day))
    pulled = pulled_day * DAY + time_of_day(rng, len(day))
    move = won & early & (rng.random(len(day)) < 0.35) & (pulled > created + DAY)
    return np.where(move, pulled, closed)


def build_leads(
    rng: np.random.Generator,
    rows: int,
    accounts: Accounts,
    opportunities: Opportunities,
    people: People,
) -> Leads:
    opp = opportunities
    # Leads that became deals: their stages happened before the deal was created.
    sourced = rng.random(len(opp)) < np.where(opp.expansion, 0.25, 0.75)
    to_mql = lognormal_seconds(rng, 2.0, 1.0, len(opp))
    to_sql = lognormal_seconds(rng, 6.0, 0.8, len(opp))
    to_opp = lognormal_seconds(rng, 3.0, 0.8, len(opp))
    born = opp.created - to_opp - to_sql - to_mql
    deal = np.flatnonzero(sourced & (born >= START))  # leads before 2024 are not in the data
    deal = deal[np.argsort(born[deal], kind="stable")]  # nearly sorted already: cheap
    method = np.where(opp.method[deal] >= 0, opp.method[deal], len(CONTACT_METHODS))
    won = opp.stage[deal] == 1
    converted = Leads(
        created=born[deal],
        source=choose_rows(rng, _SOURCE_GIVEN_METHOD, method),
        region=opp.region[deal],
        country=accounts.country[opp.account[deal]],
        account=opp.account[deal],
        rep=opp.rep[deal],
        referrer=np.full(len(deal), -1),
        mql=born[deal] + to_mql[deal],
        sql=born[deal] + to_mql[deal] + to_sql[deal],
        opportunity_at=opp.created[deal],
        customer_at=np.where(won, opp.closed[deal], -1),
        opportunity=deal,
        stage=np.where(won, 4, 3),
    )

    # Leads that did not (yet) become a deal.
    n = max(3 * rows - len(deal), 0)
    created = np.sort(random_times(rng, spread_over_months(rng, n, month_weights(DEAL_GROWTH))))
    source = rng.choice(len(LEAD_SOURCES), n, p=_SOURCE_WEIGHTS)
    region = rng.choice(4, n, p=REGION_WEIGHTS)
    region[rng.random(n) < 0.001] = INTERNAL
    mql = created + lognormal_seconds(rng, 2.0, 1.0, n)
    sql = mql + lognormal_seconds(rng, 6.0, 0.8, n)
    reached_mql = (rng.random(n) < _MQL_CHANCE[source]) & (mql < END)
    reached_sql = reached_mql & (rng.random(n) < _SQL_CHANCE) & (sql < END)
    sql_month = month_of_day(np.where(reached_sql, sql, START) // DAY)
    rep = people.pick_reps(rng, region, rng.choice(3, n, p=[0.45, 0.33, 0.22]), sql_month)
    country = _countries(rng, region)
    none = np.full(n, -1)
    cold = Leads(
        created=created,
        source=source,
        region=region,
        country=country,
        account=none,
        rep=np.where(reached_sql, rep, -1),
        referrer=none,
        mql=np.where(reached_mql, mql, -1),
        sql=np.where(reached_sql, sql, -1),
        opportunity_at=none,
        customer_at=none,
        opportunity=none,
        stage=np.where(reached_sql, 2, np.where(reached_mql, 1, 0)),
    )

    # Merge the two sorted runs (ids follow creation order) by scattering each into place.
    ahead = np.searchsorted(cold.created, converted.created, side="left")
    into = ahead + np.arange(len(converted))  # positions of the converted leads
    rest = np.ones(len(converted) + len(cold), bool)
    rest[into] = False
    elsewhere = np.flatnonzero(rest)
    merged = {}
    for name in list(vars(converted)):  # letting go of each merged part keeps the peak low
        out = np.empty(len(rest), np.int64)
        out[into], out[elsewhere] = vars(converted).pop(name), vars(cold).pop(name)
        merged[name] = out
    leads = Leads(**merged)
    leads.country[rng.random(len(leads)) < 0.05] = -1
    # Referral leads name the customer account that referred them.
    referral = np.flatnonzero(leads.source == LEAD_SOURCES.index("referral"))
    existing = np.searchsorted(
        accounts.birth_month, month_of_day(leads.created[referral] // DAY), side="right"
    )
    leads.referrer[referral] = (rng.random(len(referral)) * existing).astype(np.int64)

    lead_of = np.full(len(opp), -1)
    from_deal = leads.opportunity >= 0
    lead_of[leads.opportunity[from_deal]] = np.flatnonzero(from_deal)
    opp.lead = lead_of
    return leads


def _countries(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """A country (COUNTRY_CODES index) of each row's region."""
    country = np.empty(len(region), np.int64)
    for r, codes in enumerate(COUNTRIES):
        where = np.flatnonzero(region == r)
        pick = rng.choice(len(codes), len(where), p=_COUNTRY_WEIGHTS[r])
        country[where] = np.array([COUNTRY_CODES.index(c) for c in codes])[pick]
    return country
