"""Employees and sales reps: who works when, and which rep takes which deal.

Reps are account executives, each covering one region and segment. The first rep of
every (region, segment) territory stays for the whole window, so every deal always has
a rep to go to; the others are hired and leave over time (about 30 % of sellers leave
each year, SPEC seed 002), and referred hires stay longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kpiengine.sample.calendar import (
    END_DAY,
    MONTH_DAYS,
    MONTHS,
    START_DAY,
    month_of_day,
    month_weights,
    random_days,
    spread_over_months,
)
from kpiengine.sample.tables import DEPARTMENTS, HIRE_SOURCES, ROLES

REGION_WEIGHTS = np.array([0.42, 0.33, 0.15, 0.10])  # north_america, emea, apac, latam
SEGMENT_DEAL_SHARE = np.array([0.45, 0.33, 0.22])  # share of deals per segment

FIRST_NAMES = (
    "Ava", "Liam", "Emma", "Noah", "Olivia", "Lucas", "Sofia", "Mateo", "Chloe", "Hugo",
    "Amelia", "Leo", "Mia", "Arthur", "Isla", "Louis", "Nora", "Gabriel", "Lea", "Jules",
    "Hannah", "Ethan", "Zoe", "Adam", "Alice", "Raphael", "Ines", "Oscar", "Maya", "Theo",
    "Aisha", "Kenji", "Priya", "Diego", "Yara", "Omar", "Freya", "Ivan", "Lina", "Sami",
    "Elena", "Marco", "Clara", "Felix", "Ana", "Tomas", "Julia", "Pablo", "Nina", "Kai",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Smith", "Garcia", "Muller", "Rossi", "Dubois", "Johnson", "Silva", "Kim",
    "Tanaka", "Nguyen", "Brown", "Lopez", "Schmidt", "Bernard", "Wilson", "Moreau", "Costa",
    "Novak", "Jensen", "Patel", "Singh", "Cohen", "Weber", "Fischer", "Laurent", "Taylor",
    "Andersen", "Romero", "Fontaine", "Okafor", "Haddad", "Ivanova", "Larsen", "Suzuki",
    "Petit", "Meyer", "Alves", "Walker", "Roux", "Hansen", "Kowalski", "Santos", "Lee",
    "Young", "Wright", "Klein", "Bianchi", "Horvat", "Ortiz",
)  # fmt: skip
NAMES = tuple(f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES)

_OTHER_ROLES = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])  # ROLES other than account_executive
_OTHER_ROLE_WEIGHTS = np.array([0.10, 0.05, 0.12, 0.12, 0.13, 0.33, 0.07, 0.04, 0.04])
_ROLE_DEPARTMENT = np.array(
    [DEPARTMENTS.index(d) for d in (
        "sales", "sales", "sales", "marketing", "success", "support", "engineering", "product",
        "g_and_a", "g_and_a",
    )]
)  # fmt: skip
assert len(_ROLE_DEPARTMENT) == len(ROLES)
_SALES_ATTRITION = 0.30  # per year
_OTHER_ATTRITION = 0.12
_HIRE_SOURCE_WEIGHTS = np.array([0.32, 0.33, 0.15, 0.20])
assert len(_HIRE_SOURCE_WEIGHTS) == len(HIRE_SOURCES)


@dataclass
class People:
    # employees, sorted by hire date (index = employee id - 1)
    name: np.ndarray
    department: np.ndarray
    role: np.ndarray
    region: np.ndarray
    hire_day: np.ndarray
    end_day: np.ndarray  # termination, -1 = still employed
    hire_source: np.ndarray
    ramped_day: np.ndarray  # -1 = not ramped
    # reps (index = rep id - 1)
    rep_employee: np.ndarray
    rep_region: np.ndarray
    rep_segment: np.ndarray
    rep_skill: np.ndarray  # added to a deal's win probability
    _territory_reps: np.ndarray  # [territory * MONTHS + month, k] active reps, padded
    _territory_count: np.ndarray

    @property
    def employees(self) -> int:
        return len(self.name)

    @property
    def reps(self) -> int:
        return len(self.rep_employee)

    def active_in(self, month: int) -> np.ndarray:
        """Mask of employees employed at some point in ``month``."""
        return (self.hire_day < MONTH_DAYS[month + 1]) & (
            (self.end_day < 0) | (self.end_day >= MONTH_DAYS[month])
        )

    def pick_reps(
        self, rng: np.random.Generator, region: np.ndarray, segment: np.ndarray, month: np.ndarray
    ) -> np.ndarray:
        """A rep employed in ``month`` covering the deal's region and segment, at random.
        Internal (test) regions go to north_america, unknown segments to smb."""
        region = np.where((region < 0) | (region > 3), 0, region)
        segment = np.where(segment < 0, 0, segment)
        group = (region * 3 + segment) * MONTHS + np.clip(month, 0, MONTHS - 1)
        slot = (rng.random(len(group)) * self._territory_count[group]).astype(np.int64)
        return self._territory_reps[group, slot]


def build_people(rng: np.random.Generator, rows: int) -> People:
    reps = max(32, rows // 700)
    territory = _territories(reps)
    core = np.r_[True, territory[1:] != territory[:-1]]  # first rep of each territory
    rep_hire, rep_end = _tenures(
        rng,
        reps,
        np.full(reps, _SALES_ATTRITION),
        pre_window_share=0.55,
        keep=core,
        earliest="2020-06-01",
    )
    rep_skill = rng.normal(0.0, 0.06, reps)

    others = 3 * reps
    role = np.r_[np.zeros(reps, np.int64), rng.choice(_OTHER_ROLES, others, p=_OTHER_ROLE_WEIGHTS)]
    department = _ROLE_DEPARTMENT[role]
    source = rng.choice(len(HIRE_SOURCES), reps + others, p=_HIRE_SOURCE_WEIGHTS)
    attrition = np.where(department == 0, _SALES_ATTRITION, _OTHER_ATTRITION)
    attrition = np.where(source == 0, attrition * 0.6, attrition)  # referrals stay longer
    hire, end = _tenures(rng, others, attrition[reps:], pre_window_share=0.6, earliest="2018-01-01")
    hire = np.r_[rep_hire, hire]
    end = np.r_[rep_end, end]
    region = np.r_[territory // 3, rng.choice(4, others, p=[0.5, 0.25, 0.15, 0.10])]
    ramp = np.where(department == 0, 90.0, 60.0) * rng.lognormal(0.0, 0.35, reps + others)
    ramped = hire + ramp.astype(np.int64)
    ramped = np.where((ramped >= END_DAY) | ((end >= 0) & (ramped > end)), -1, ramped)
    name = rng.integers(0, len(NAMES), reps + others)

    order = np.argsort(hire, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    territory_reps, territory_count = _territory_table(territory, rep_hire, rep_end)
    return People(
        name=name[order],
        department=department[order],
        role=role[order],
        region=region[order],
        hire_day=hire[order],
        end_day=end[order],
        hire_source=source[order],
        ramped_day=ramped[order],
        rep_employee=position[:reps],
        rep_region=territory // 3,
        rep_segment=territory % 3,
        rep_skill=rep_skill,
        _territory_reps=territory_reps,
        _territory_count=territory_count,
    )


def _territories(reps: int) -> np.ndarray:
    """Territory (region * 3 + segment) of each rep, sorted, in proportion to deal volume."""
    share = np.outer(REGION_WEIGHTS, SEGMENT_DEAL_SHARE).ravel()
    counts = np.maximum(1, np.floor(share * reps).astype(np.int64))
    while counts.sum() < reps:  # largest remainders first
        counts[np.argmax(share * reps - counts)] += 1
    while counts.sum() > reps:
        counts[np.argmax(np.where(counts > 1, counts - share * reps, -np.inf))] -= 1
    return np.repeat(np.arange(len(share)), counts)


def _tenures(
    rng: np.random.Generator,
    n: int,
    attrition: np.ndarray,
    pre_window_share: float,
    earliest: str,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Hire and termination days: some hired before the window, the rest over it as the
    company grows; leaving at ``attrition`` per year from the window's start on."""
    first = int(np.datetime64(earliest, "D").astype(np.int64))
    before = rng.random(n) < pre_window_share
    if keep is not None:
        before |= keep
    hire = first + (rng.random(n) * (START_DAY - 60 - first)).astype(np.int64)
    months = spread_over_months(rng, n, month_weights(0.02, seasonal=False))
    hire = np.where(before, hire, random_days(rng, rng.permutation(months)))
    stay = rng.exponential(365.0 / attrition, n).astype(np.int64)
    end = np.maximum(hire, START_DAY) + 30 + stay
    end = np.where(end >= END_DAY, -1, end)
    if keep is not None:
        end = np.where(keep, -1, end)
    return hire, end


def _territory_table(
    territory: np.ndarray, hire: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each territory and month, the reps employed then (padded 2-D table + counts)."""
    groups = 12 * MONTHS
    active = (hire[:, None] < MONTH_DAYS[1:][None, :]) & (
        (end[:, None] < 0) | (end[:, None] >= MONTH_DAYS[:-1][None, :])
    )  # [rep, month]
    rep, mon = np.nonzero(active)
    group = territory[rep] * MONTHS + mon
    order = np.lexsort((rep, group))
    rep, group = rep[order], group[order]
    count = np.bincount(group, minlength=groups)
    if (count == 0).any():
        raise RuntimeError("sample data: a sales territory has no rep in some month")
    table = np.zeros((groups, int(count.max())), np.int64)
    start = np.r_[0, np.cumsum(count)[:-1]]
    table[group, np.arange(len(group)) - start[group]] = rep
    return table, count


def employed_months(hire_day: np.ndarray, end_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, month) pairs of every month of the window each person was employed in."""
    first = np.clip(month_of_day(np.maximum(hire_day, START_DAY)), 0, MONTHS)
    last = np.where(end_day < 0, MONTHS - 1, month_of_day(np.maximum(end_day, START_DAY)))
    last = np.minimum(last, MONTHS - 1)
    count = np.maximum(last - first + 1, 0)
    row = np.repeat(np.arange(len(hire_day)), count)
    month = first[row] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return row, month
