"""Go-to-market tables: activities, quotas, forecasts, marketing spend, social posts."""

from __future__ import annotations

import numpy as np

from kpiengine.sample.calendar import (
    DAY,
    END,
    MONTH_DAYS,
    MONTHS,
    lognormal_seconds,
    month_of_day,
    month_weights,
    random_times,
    spread_over_months,
)
from kpiengine.sample.columns import Batches, Col, codes, emit, ids, refs
from kpiengine.sample.people import employed_months
from kpiengine.sample.sales import INTERNAL
from kpiengine.sample.tables import (
    ACTIVITY_KINDS,
    POST_FORMATS,
    REGIONS,
    SOCIAL_CHANNELS,
    SPEND_CHANNELS,
    SPEND_DEPARTMENTS,
)
from kpiengine.sample.world import World

ACTIVITIES_PER_DEAL = 5  # all activities, prospecting included, per opportunity
_DEAL_ACTIVITIES = np.array([1.2, 2.2, 4.0])  # besides the first, per segment
_DEAL_KINDS = np.array([0.30, 0.40, 0.20, 0.10])  # ACTIVITY_KINDS
_REPLY_CHANCE = (0.35, 0.07)  # emails on a live deal, cold prospecting emails
_CHUNK = 50_000  # opportunities per part of the activities table
TARGET_ATTAINMENT = 0.58  # median monthly quota attainment (Xactly, SPEC seed 002)


def activities(w: World) -> Batches:
    opp, leads = w.opportunities, w.leads
    n = len(opp)
    counts = 1 + w.stream("activities").poisson(_DEAL_ACTIVITIES[opp.segment])
    counts += opp.stage == 1
    first_id = 1
    for part, start in enumerate(range(0, n, _CHUNK), start=1):
        rng = w.stream("activities", part)
        chunk = np.arange(start, min(start + _CHUNK, n))
        deal = np.repeat(chunk, counts[chunk])
        created = opp.created[deal]
        until = np.where(opp.closed[deal] >= 0, opp.closed[deal], END - 1)
        deal_at = created + (rng.random(len(deal)) * (until - created)).astype(np.int64)
        deal_kind = rng.choice(len(ACTIVITY_KINDS), len(deal), p=_DEAL_KINDS)

        # Prospecting: calls and emails to leads shortly after they come in.
        cold = max(ACTIVITIES_PER_DEAL * len(chunk) - len(deal), 0)
        lead = rng.integers(0, len(leads), cold)
        cold_at = np.minimum(leads.created[lead] + lognormal_seconds(rng, 3.0, 1.0, cold), END - 1)
        segment = rng.choice(3, cold, p=[0.45, 0.33, 0.22])
        any_rep = w.people.pick_reps(rng, leads.region[lead], segment, month_of_day(cold_at // DAY))
        cold_rep = np.where(leads.rep[lead] >= 0, leads.rep[lead], any_rep)
        cold_kind = np.where(rng.random(cold) < 0.4, 0, 1)

        # Both kinds of activity together, in time order within the part.
        at = np.concatenate([deal_at, cold_at])
        order = np.argsort(at, kind="stable")
        kind = np.concatenate([deal_kind, cold_kind])[order]
        rows = len(kind)
        email = kind == 1
        on_deal = order < len(deal)
        reply = np.where(on_deal, _REPLY_CHANCE[0], _REPLY_CHANCE[1])
        minutes = np.select(
            [kind == 0, kind == 2],
            [
                np.maximum(np.round(rng.lognormal(np.log(6.0), 0.8, rows)), 1),
                rng.choice([30, 45, 60], rows),
            ],
            rng.choice([45, 60, 90], rows),
        ).astype(np.int64)
        no_deal, no_lead = np.full(cold, -1), np.full(len(deal), -1)
        columns = {
            "activity_id": ids(rows, first_id),
            "rep_id": refs(np.concatenate([opp.rep[deal], cold_rep])[order]),
            "kind": codes(ACTIVITY_KINDS, kind),
            "occurred_at": Col(at[order]),
            "opportunity_id": refs(np.concatenate([deal, no_deal])[order]),
            "lead_id": refs(np.concatenate([no_lead, lead])[order]),
            "account_id": refs(np.concatenate([opp.account[deal], leads.account[lead]])[order]),
            "replied": Col(rng.random(rows) < reply, email),
            "duration_minutes": Col(minutes, ~email),
        }
        yield from emit("activities", columns, rows)
        first_id += rows


def _rep_months(w: World) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each (rep, month) a rep was employed: won amount and quota.

    Quotas are set per rep and year so that the median month is attained at about
    :data:`TARGET_ATTAINMENT`; a few reps and months beat them, most do not.
    """
    people = w.people
    won_amount = w.totals.won if w.totals is not None else won_by_rep_month(w)
    employee = people.rep_employee
    rep, month = employed_months(people.hire_day[employee], people.end_day[employee])
    order = np.lexsort((rep, month))  # month by month, reps in order
    rep, month = rep[order], month[order]
    actual = won_amount[rep * MONTHS + month]

    group = rep * 3 + month // 12
    by_value = np.lexsort((actual, group))
    values, groups = actual[by_value], group[by_value]
    unique, first, size = np.unique(groups, return_index=True, return_counts=True)
    median = (values[first + (size - 1) // 2] + values[first + size // 2]) / 2
    mean = np.bincount(groups, weights=values)[unique] / size
    typical = np.where(median > 0, median, mean)
    typical = np.where(typical > 0, typical, np.median(typical[typical > 0]))
    level = np.zeros(int(group.max()) + 1)
    level[unique] = typical
    noise = w.stream("quotas").lognormal(0.0, 0.08, len(level))
    quota = np.maximum(np.round(level[group] * noise[group] / TARGET_ATTAINMENT, -3), 1000.0)
    return rep, month, actual, quota


def won_by_rep_month(w: World) -> np.ndarray:
    """Amount won in the shard per ``rep * MONTHS + month`` (summed over the shards of a
    big company before quotas are set)."""
    opp = w.opportunities
    won = opp.stage == 1
    key = opp.rep[won] * MONTHS + month_of_day(opp.closed[won] // DAY)
    return np.bincount(key, weights=opp.amount[won], minlength=w.people.reps * MONTHS)


def quotas(w: World) -> Batches:
    rep, month, _, quota = _rep_months(w)
    columns = {
        "rep_id": refs(rep),
        "month": Col(MONTH_DAYS[month]),
        "region": codes(REGIONS, w.people.rep_region[rep]),
        "quota": Col(quota),
    }
    return emit("quotas", columns, len(rep))


def forecasts(w: World) -> Batches:
    rep, month, actual, quota = _rep_months(w)
    rng = w.stream("forecasts")
    n = len(rep)
    guess = np.where(
        actual > 0, actual * rng.lognormal(0.05, 0.3, n), quota * rng.uniform(0.05, 0.3, n)
    )
    forecast = np.round(guess, -2)
    columns = {
        "rep_id": refs(rep),
        "month": Col(MONTH_DAYS[month]),
        "region": codes(REGIONS, w.people.rep_region[rep]),
        "forecast": Col(forecast),
        "best_case": Col(np.round(forecast * rng.uniform(1.1, 1.6, n), -2)),
    }
    return emit("forecasts", columns, n)


# Marketing spend lines: (department, channel, share of the department, attribution ROI).
_LINES = (
    ("marketing", "paid_search", 0.24, 1.6),
    ("marketing", "social", 0.14, 0.9),
    ("marketing", "content", 0.16, None),  # grows over time, see below
    ("marketing", "events", 0.20, 1.3),
    ("marketing", "email", 0.06, 2.8),
    ("marketing", "partners", 0.10, 1.9),
    ("marketing", "brand", 0.10, None),
    ("sales", "salaries", 0.62, None),
    ("sales", "commissions", 0.18, None),
    ("sales", "tools", 0.10, None),
    ("sales", "travel", 0.10, None),
    ("success", "salaries", 0.75, None),
    ("success", "tools", 0.15, None),
    ("success", "onboarding", 0.10, None),
)
_DEPARTMENT_SHARE = {"marketing": 0.42, "sales": 0.46, "success": 0.12}
SPEND_PER_PIPELINE = 0.15  # go-to-market spend per unit of pipeline created


def pipeline_by_month_region(w: World) -> np.ndarray:
    """Amount of the shard's real deals created per ``month * 4 + region``."""
    opp = w.opportunities
    real = opp.region != INTERNAL  # test deals cost nothing
    month = month_of_day(opp.created[real] // DAY)
    return np.bincount(month * 4 + opp.region[real], weights=opp.amount[real], minlength=MONTHS * 4)


def marketing_spend(w: World) -> Batches:
    """Spend follows the pipeline created in each month and region (a fixed share of it)."""
    rng = w.stream("marketing_spend")
    pipeline = w.totals.pipeline if w.totals is not None else pipeline_by_month_region(w)
    budget = pipeline * SPEND_PER_PIPELINE * rng.lognormal(0.0, 0.05, len(pipeline))

    lines = len(_LINES)
    cell = np.repeat(np.arange(MONTHS * 4), lines)  # month * 4 + region
    line = np.tile(np.arange(lines), MONTHS * 4)
    department = np.array([SPEND_DEPARTMENTS.index(d) for d, _, _, _ in _LINES])[line]
    channel = np.array([SPEND_CHANNELS.index(c) for _, c, _, _ in _LINES])[line]
    share = np.array([_DEPARTMENT_SHARE[d] * s for d, _, s, _ in _LINES])[line]
    n = len(cell)
    spend = np.round(budget[cell] * share * rng.lognormal(0.0, 0.1, n), 2)
    roi = np.array([np.nan if r is None else r for _, _, _, r in _LINES])[line]
    content = channel == SPEND_CHANNELS.index("content")
    roi = np.where(content, 0.5 + 1.1 * (cell // 4) / (MONTHS - 1), roi)  # content compounds
    attributed = np.round(spend * np.nan_to_num(roi) * rng.lognormal(0.0, 0.25, n), 2)
    columns = {
        "month": Col(MONTH_DAYS[cell // 4]),
        "region": codes(REGIONS, cell % 4),
        "department": codes(SPEND_DEPARTMENTS, department),
        "channel": codes(SPEND_CHANNELS, channel),
        "spend": Col(spend),
        "attributed_revenue": Col(attributed, ~np.isnan(roi)),
    }
    return emit("marketing_spend", columns, n)


_SOCIAL_WEIGHTS = np.array([0.45, 0.2, 0.1, 0.1, 0.15])
_IMPRESSIONS = np.array([3000.0, 1500.0, 5000.0, 1200.0, 2000.0])
_ENGAGEMENT = np.array([0.035, 0.015, 0.05, 0.02, 0.04])
_FORMAT_ENGAGEMENT = np.array([0.8, 1.0, 1.4, 1.1])


def social_posts(w: World) -> Batches:
    rng = w.stream("social_posts")
    n = max(200, w.rows // 20)
    posted = np.sort(random_times(rng, spread_over_months(rng, n, month_weights(0.03))))
    channel = rng.choice(len(SOCIAL_CHANNELS), n, p=_SOCIAL_WEIGHTS)
    form = rng.choice(len(POST_FORMATS), n, p=[0.3, 0.35, 0.2, 0.15])
    impressions = np.round(_IMPRESSIONS[channel] * rng.lognormal(0.0, 1.0, n)).astype(np.int64)
    rate = np.minimum(
        _ENGAGEMENT[channel] * _FORMAT_ENGAGEMENT[form] * rng.lognormal(0, 0.4, n), 0.5
    )
    interactions = rng.binomial(impressions, rate)
    clicks = rng.binomial(impressions, rate * 0.35)
    columns = {
        "post_id": ids(n),
        "posted_at": Col(posted),
        "channel": codes(SOCIAL_CHANNELS, channel),
        "format": codes(POST_FORMATS, form),
        "impressions": Col(impressions),
        "interactions": Col(interactions.astype(np.int64)),
        "clicks": Col(clicks.astype(np.int64)),
        "leads": Col(rng.binomial(clicks, 0.03).astype(np.int64)),
    }
    return emit("social_posts", columns, n)
