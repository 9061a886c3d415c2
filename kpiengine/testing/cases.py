"""The kit's cases: KPIs run over one request, with the values expected on :data:`DATASET`.

Every expected value is worked out by hand from the rows of
:data:`kpiengine.testing.dataset.DATASET` (the comments show the arithmetic), never
computed by kpiengine: a case that fails on one engine is a bug in that engine's
connector or dialect, or in kpiengine. Nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Values = Sequence[float | int | None]


@dataclass(frozen=True)
class Case:
    """KPIs run over one request, and the expected value per period.

    ``values`` maps a KPI name (no ``by``) or ``(kpi, *dimension values)`` to one value
    per period of ``periods`` (ISO dates; ``None`` for grain ``all``).
    """

    id: str
    about: str
    grain: str
    periods: tuple[str | None, ...]
    values: Mapping[str | tuple[Any, ...], Values]
    start: str | None = None
    end: str | None = None
    by: tuple[str, ...] = ()
    where: str | None = None
    fiscal_year_start: int = 1

    @property
    def kpis(self) -> list[str]:
        names = (key if isinstance(key, str) else key[0] for key in self.values)
        return list(dict.fromkeys(names))

    def expected(self) -> dict[tuple[Any, ...], Any]:
        """(period, kpi, *dimension values) → value."""
        found: dict[tuple[Any, ...], Any] = {}
        for key, values in self.values.items():
            kpi, dims = (key, ()) if isinstance(key, str) else (key[0], tuple(key[1:]))
            if len(values) != len(self.periods):
                raise ValueError(f"case {self.id}: {key} needs one value per period")
            for period, value in zip(self.periods, values, strict=True):
                found[(period, kpi, *dims)] = value
        return found


_MONTHS = ("2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01")
_JAN_TO_MAY = {"start": "2024-01-01", "end": "2024-06-01"}
_YEAR_2024 = {"start": "2024-01-01", "end": "2025-01-01"}
_H1 = {"start": "2024-01-01", "end": "2024-07-01"}
N = None  # short for an expected null

CASES: tuple[Case, ...] = (
    Case(
        "month-aggregates",
        "every aggregate by month, March and May empty (counts 0, the rest null)",
        "month",
        _MONTHS,
        {
            "deals_count": [2, 2, 0, 3, 0],
            "amounts_counted": [2, 1, 0, 3, 0],  # d4's null amount is not counted
            "won": [1, 2, 0, 2, 0],
            "closed": [2, 2, 0, 3, 0],
            "revenue": [100, 250, N, 160, N],  # 250 + null; 60 + 100
            "avg_amount": [70, 250, N, 170 / 3, N],
            "min_amount": [40, 250, N, 10, N],
            "max_amount": [100, 250, N, 100, N],
            "median_amount": [70, 250, N, 60, N],  # (40 + 100) / 2; middle of 10, 60, 100
            "p75_amount": [85, 250, N, 80, N],  # 40 + 0.75 × 60; 60 + 0.5 × 40
            "accounts_won": [1, 2, 0, 2, 0],  # {a1}; {a1, a3}; {a2, a3}
            "seats_total": [3, 8, N, 7, N],
            "cycle_days": [4, 31, N, 46.5, N],  # 4; (35 + 27) / 2; (52 + 41) / 2
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-conditions-and-nulls",
        "where, filter, booleans, comparisons with null, row functions, x / 0",
        "month",
        _MONTHS,
        {
            "win_rate": [0.5, 1.0, N, 2 / 3, N],  # 0 / 0 is null
            "new_deals": [1, 1, 0, 1, 0],
            "old_deals": [1, 1, 0, 1, 0],  # `not null` is not true: d6 is in neither
            "not_north": [0, 2, 0, 1, 0],  # `!=` drops d5's null region
            "outside_north_east": [0, 2, 0, 1, 0],  # so does `not in`
            "no_region": [0, 0, 0, 1, 0],
            "unknown_region": [0, 0, 0, 1, 0],
            "north_upper": [2, 0, 0, 1, 0],
            "big_deals": [1, 1, 0, 2, 0],  # filter amount >= 50 drops the null amount
            "mid_deals": [1, 0, 0, 2, 0],  # between is inclusive: 100 and 60, 100
            "late_created": [0, 1, 0, 3, 0],  # timestamp >= date: d4 created at midnight
            "by_zero": [N, N, N, N, N],
            "new_flag_sum": [1, 1, N, 1, N],  # if(null, 1, 0) is 0
            "capped_seats": [3, 6, N, 6, N],  # 1 + 2; 3 + 3; 1 + 3 + 2
            "distance": [60, 150, N, 130, N],  # 0 + 60; 150; 40 + 90 + 0
            "thirds": [46.66, 83.33, N, 56.66, N],  # 33.33 + 13.33; 83.33; 20 + 3.33 + 33.33
            "smb_deals": [1, 1, 0, 0, 0],  # a condition on a joined column
            "revenue_filled": [100, 250, 0, 160, 0],
            "created_deals": [3, 2, 2, 1, 0],  # by created_at instead of closed_at
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-derived-and-time-functions",
        "derived KPIs and time functions, looking back before the range",
        "month",
        _MONTHS,
        {
            "avg_deal": [100, 125, N, 80, N],
            "prev_revenue": [N, 100, 250, N, 160],
            "prev2_won": [0, 0, 1, 2, 0],  # November and December 2023 had 0 won
            "revenue_growth": [N, 1.5, -1, N, -1],  # growth from 0 is x / 0: null
            "revenue_3m": [100, 350, 350, 410, 160],  # windows skip nulls
            "revenue_avg_2m": [100, 175, 250, 160, 160],
            "revenue_cum": [100, 350, 350, 510, 510],
            "win_streak": [1, 2, 0, 1, 0],
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "month-history-before-range",
        "a range starting in March: cumulative_sum and previous still see January",
        "month",
        _MONTHS[2:],
        {
            "deals_count": [0, 3, 0],
            "revenue_cum": [350, 510, 510],
            "prev_revenue": [250, N, 160],
            "prev2_won": [1, 2, 0],
            "revenue_3m": [350, 410, 160],
            "win_streak": [0, 1, 0],
        },
        start="2024-03-01",
        end="2024-06-01",
    ),
    Case(
        "month-semi-additive",
        "snapshot balances: last / first snapshot of each month, March without one",
        "month",
        _MONTHS,
        {
            "mrr_last": [40, 22, N, 38, N],  # 15 + 20 + 5 on Jan 31; 30 + 8 + null
            "mrr_first": [30, 22, N, 38, N],  # 10 + 20 on Jan 1
            "customers_last": [3, 2, 0, 3, 0],
            "mrr_plain": [70, 22, N, 38, N],  # without semi_additive every row adds up
            "arr": [480, 264, N, 456, N],
        },
        **_JAN_TO_MAY,
    ),
    Case(
        "week",
        "Monday weeks; d2 closes on Saturday 20 January at 23:30",
        "week",
        ("2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"),
        {"deals_count": [1, 0, 1, 0], "revenue": [100, N, N, N]},
        start="2024-01-01",
        end="2024-01-29",
    ),
    Case(
        "day",
        "days, with a timestamp late in the evening",
        "day",
        ("2024-01-19", "2024-01-20", "2024-01-21"),
        {"deals_count": [0, 1, 0], "closed": [0, 1, 0]},
        start="2024-01-19",
        end="2024-01-22",
    ),
    Case(
        "calendar-quarter",
        "quarters of a calendar year",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            "deals_count": [4, 3],
            "revenue": [350, 160],
            "mrr_last": [22, 38],  # Q1's last snapshot is Feb 29
            "mrr_first": [30, 38],
            "mrr_plain": [92, 38],
        },
        **_H1,
    ),
    Case(
        "fiscal-quarter",
        "fiscal year starting in February: quarters Nov-Jan, Feb-Apr, May-Jul",
        "quarter",
        ("2023-11-01", "2024-02-01", "2024-05-01"),
        {
            "deals_count": [2, 5, 0],
            "revenue": [100, 410, N],
            "median_amount": [70, 80, N],  # (60 + 100) / 2 of 10, 60, 100, 250
            "mrr_last": [40, 38, N],
            "mrr_first": [30, 22, N],
            "revenue_cum": [100, 510, 510],
            "prev_revenue": [N, 100, 410],
        },
        start="2023-11-01",
        end="2024-08-01",
        fiscal_year_start=2,
    ),
    Case(
        "year",
        "one calendar year",
        "year",
        ("2024-01-01",),
        {
            "deals_count": [7],
            "revenue": [510],
            "avg_amount": [560 / 6],
            "median_amount": [80],  # (60 + 100) / 2 of 10, 40, 60, 100, 100, 250
            "p75_amount": [100],  # position 3.75 between 100 and 100
            "accounts_won": [3],
            "win_rate": [5 / 7],
            "cycle_days": [31.8],  # (4 + 35 + 27 + 52 + 41) / 5
            "seats_total": [18],
            "not_north": [3],
            "created_deals": [8],
            "mrr_last": [38],
            "mrr_first": [30],
            "customers_last": [3],
        },
        **_YEAR_2024,
    ),
    Case(
        "all-without-range",
        "grain all without a range counts every row, the open deal d8 too",
        "all",
        (None,),
        {
            "deals_count": [8],
            "amounts_counted": [7],
            "won": [5],
            "revenue": [510],
            "max_amount": [500],
            "seats_total": [28],
            "late_created": [5],
            "mrr_last": [38],
        },
    ),
    Case(
        "by-joined-dimension",
        "grouped by a column of a joined source; a4 has no account: a null group",
        "all",
        (None,),
        {
            ("deals_count", "enterprise"): [2],
            ("deals_count", "mid_market"): [2],
            ("deals_count", "smb"): [2],
            ("deals_count", None): [1],
            ("revenue", "enterprise"): [60],
            ("revenue", "mid_market"): [100],
            ("revenue", "smb"): [350],
            ("revenue", None): [N],
            ("win_rate", "enterprise"): [0.5],
            ("win_rate", "mid_market"): [1.0],
            ("win_rate", "smb"): [1.0],
            ("win_rate", None): [0.0],
        },
        by=("accounts.segment",),
        **_YEAR_2024,
    ),
    Case(
        "by-region-quarter",
        "every quarter × every region seen in the range, null region included",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            ("won", "north"): [1, 0],
            ("won", "south"): [2, 1],
            ("won", None): [0, 1],
            ("win_rate", "north"): [0.5, 0.0],
            ("win_rate", "south"): [1.0, 1.0],
            ("win_rate", None): [N, 1.0],
            ("revenue", "north"): [100, N],
            ("revenue", "south"): [250, 100],
            ("revenue", None): [N, 60],
            ("prev_revenue", "north"): [N, 100],
            ("prev_revenue", "south"): [N, 250],
            ("prev_revenue", None): [N, N],
        },
        by=("region",),
        **_H1,
    ),
    Case(
        "semi-additive-by-region",
        "one snapshot time for all regions: south is absent on Jan 1",
        "quarter",
        ("2024-01-01", "2024-04-01"),
        {
            ("mrr_last", "north"): [15, 30],
            ("mrr_last", "south"): [7, 8],
            ("mrr_first", "north"): [30, 30],
            ("mrr_first", "south"): [N, 8],
            ("customers_last", "north"): [1, 2],
            ("customers_last", "south"): [1, 1],
        },
        by=("region",),
        **_H1,
    ),
    Case(
        "where-on-joined-dimension",
        "a --where filter over a joined column, applied to every source KPI",
        "all",
        (None,),
        {"deals_count": [2], "won": [2], "revenue": [350], "avg_deal": [175]},
        where="accounts.segment = 'smb'",
        **_YEAR_2024,
    ),
    Case(
        "round-ties-and-exact-median",
        "ROUND of exact halves away from zero (not to even), and an exact median and"
        " percentile over 10 001 rows (not a sample of 8 192)",
        "all",
        (None,),
        {
            "ticks_count": [10_001],
            "ticks_median": [25_000_000],  # 5 000²: the middle of 0², 1², ..., 10 000²
            "ticks_p90": [81_000_000],  # 9 000²: position 0.9 × 10 000 = 9 000
            # per 10 rows: round(0.5 ... 9.5) = 1 + ... + 10 = 55 (to even: 50); id 10 000
            # is 0.5 → 1
            "ticks_round": [55_001],
            "ticks_round_negative": [-55_001],  # -0.5 → -1 (floor(x + 0.5) gives 0)
            # h / 4 = 0.125, 0.375, ..., 2.375 → 0.13, 0.38, ..., 2.38: 12.55 per 10 rows
            "ticks_round_2": [12_550.13],
        },
    ),
)
