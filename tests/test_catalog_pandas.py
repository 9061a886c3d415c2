"""Every KPI of the bundled catalog against an independent pandas computation.

A small sample dataset (fixed seed) is written once to DuckDB; each catalog KPI is run
at month grain over 2025, without dimensions and by `region` where the KPI allows it, and
compared with a plain-pandas computation from the raw tables. The pandas side is written
by hand from the KPI's meaning (one function per KPI in :data:`EXPECTED`), with SQL's
null rules spelt out in small helpers; it never looks at the product's SQL.

Semantics mirrored here (docs/semantics.md): periods bucket the KPI's time column; every
period x every dimension value its own source rows saw in the range appears (a derived
KPI: the union of its inputs'); empty periods give 0 for counts and null otherwise;
`x / 0` is null; `!=` drops null rows; time functions look back before the range over
the complete period grid; semi-additive KPIs read the period's last (first) snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kpiengine
from kpiengine.language.names import base_kpis, dimension_available

DEFINITIONS = Path(__file__).resolve().parents[1] / "definitions"
START, END = pd.Timestamp("2025-01-01"), pd.Timestamp("2026-01-01")
EARLY = pd.Timestamp("2017-01-01")  # before the first hire: time functions read from here
NULL = "∅"  # a null dimension value, as a hashable key
REL = 1e-9

#: Catalog KPIs the engine cannot compute yet (answering KPI314), with the reason.
#: Empty since time functions and semi_additive landed; keep the mechanism.
NOT_COMPUTABLE: dict[str, str] = {}


# -- data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, pd.DataFrame]]:
    import duckdb

    from kpiengine.sample import write_sample

    path = tmp_path_factory.mktemp("catalog") / "sample.duckdb"
    counts = write_sample(f"duckdb:///{path}", rows=3000, seed=7, replace=True)
    connection = duckdb.connect(str(path), read_only=True)
    tables = {name: connection.sql(f"select * from {name}").df() for name in counts}
    connection.close()
    return f"duckdb:///{path}", tables


@pytest.fixture(scope="module")
def project() -> kpiengine.api.KpiProject:
    return kpiengine.load(DEFINITIONS)


@pytest.fixture(scope="module")
def engine_results(warehouse, project) -> dict[tuple[str, str | None], dict]:
    """Every computable KPI, run once per grouping: none, `region`, another dimension."""
    url, _ = warehouse
    names = [k for k in project.kpis if k not in NOT_COMPUTABLE]
    groupings: dict[str | None, list[str]] = {None: names}
    for name in names:
        by = grouping(project, name, "dimension")
        if by is not None:
            groupings.setdefault(by, []).append(name)
    found: dict[tuple[str, str | None], dict] = {}
    with kpiengine.connect(url) as connection:
        for by, kpis in groupings.items():
            result = project.run(
                kpis,
                connection,
                grain="month",
                start=START.date(),
                end=END.date(),
                by=[by] if by else [],
            )
            for row in result.rows:
                dims = tuple(NULL if v is None else v for _, v in row.dimensions)
                key = (pd.Timestamp(row.period), *dims)
                found.setdefault((row.kpi, by), {})[key] = row.value
    return found


def allows(project, name: str, dimension: str) -> bool:
    bases = base_kpis(project.model, name)
    return all(dimension_available(project.model, b, dimension) for b in bases)


def grouping(project, name: str, kind: str) -> str | None:
    """`region` where the KPI allows it; else (kind "dimension") its first usable one."""
    if allows(project, name, "region"):
        return "region"
    if kind == "region":
        return None
    candidates = list(project.model.kpis[name].dimensions or ())
    for base in base_kpis(project.model, name):
        candidates += list(base.dimensions or ())
    return next((d for d in candidates if allows(project, name, d)), None)


#: How a source reaches the sources it joins (many-to-one), written out for pandas.
JOIN_KEYS = {
    ("mrr_snapshots", "accounts"): "account_id",
    ("mrr_snapshots", "subscriptions"): "subscription_id",
    ("invoices", "accounts"): "account_id",
    ("invoices", "subscriptions"): "subscription_id",
    ("subscriptions", "accounts"): "account_id",
    ("support_tickets", "accounts"): "account_id",
    ("nps_responses", "accounts"): "account_id",
    ("nps_responses", "employees"): "employee_id",
    ("activities", "reps"): "rep_id",
    ("activities", "leads"): "lead_id",
    ("activities", "accounts"): "account_id",
    ("opportunities", "accounts"): "account_id",
}


#: The catalog's conformed dimensions (definitions/kpiengine.yaml): a table's own column of
#: that name, else the account's through the table's join to accounts.
CONFORMED = {"region": "accounts.region", "segment": "accounts.segment"}


def with_dimension(tables: dict[str, pd.DataFrame], table: str, dimension: str) -> pd.DataFrame:
    """The table with a column named ``dimension`` (a left join for `source.column`)."""
    df = tables[table]
    if "." not in dimension:
        if dimension in df.columns or dimension not in CONFORMED:
            return df
        df = with_dimension(tables, table, CONFORMED[dimension])
        df[dimension] = df[CONFORMED[dimension]]
        return df
    owner, column = dimension.split(".")
    df = df.copy()
    if owner == table:
        df[dimension] = df[column]
        return df
    key = JOIN_KEYS[(table, owner)]
    lookup = tables[owner].set_index(key)[column]
    df[dimension] = df[key].map(lookup)
    return df


# -- SQL-like helpers over pandas -----------------------------------------------------


def nn(mask: pd.Series) -> pd.Series:
    """A condition as SQL sees it: null is not true."""
    return mask.fillna(False).astype(bool)


def ne(column: pd.Series, value: object) -> pd.Series:
    """`column != value`: rows where column is null are dropped, as in SQL."""
    return column.notna() & (column != value)


def cnt(mask: pd.Series) -> float:
    return float(nn(mask).sum())


def ssum(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.sum()) if len(values) else math.nan


def savg(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.mean()) if len(values) else math.nan


def cdist(values: pd.Series) -> float:
    return float(values.dropna().nunique())


def days(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole calendar days from start to end, time of day ignored."""
    return (pd.to_datetime(end).dt.normalize() - pd.to_datetime(start).dt.normalize()).dt.days


def div(a, b):
    """True division where x / 0 and anything with null are null (scalars or Series)."""
    if isinstance(a, pd.Series) or isinstance(b, pd.Series):
        a = pd.Series(a, dtype=float) if isinstance(a, pd.Series) else a
        b = pd.Series(b, dtype=float) if isinstance(b, pd.Series) else b
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a / b
        return (
            out.where(b != 0) if isinstance(b, pd.Series) else (out if b != 0 else out * math.nan)
        )
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


# -- KPI values as series over the (period x dimension values) grid -------------------


@dataclass
class K:
    """One KPI's values: index (period, *dims) over a complete grid from ctx.lo."""

    values: pd.Series
    empty: float  # value of a grid cell without rows (0 for counts, fill_null, else null)
    in_range: frozenset  # dimension values seen in [START, END): the output's rows


class Ctx:
    def __init__(self, tables: dict[str, pd.DataFrame], by: str | None, lo: pd.Timestamp):
        self.tables, self.by, self.lo = tables, by, lo
        self.cache: dict[str, K] = {}

    @property
    def dims(self) -> list[str]:
        return [self.by] if self.by else []

    def k(self, name: str) -> K:
        """The pandas value of another catalog KPI (memoised)."""
        if name not in self.cache:
            self.cache[name] = EXPECTED[name](self)
        return self.cache[name]

    def history(self) -> Ctx:
        """The same grouping over all history, for time functions."""
        return context(self.tables, self.by, EARLY)

    def months(self) -> pd.DatetimeIndex:
        return pd.date_range(self.lo, END - pd.Timedelta(days=1), freq="MS")

    def src(
        self,
        table: str,
        time: str,
        func: Callable[[pd.DataFrame], float],
        *,
        filt: Callable[[pd.DataFrame], pd.Series] | None = None,
        fill: float | None = None,
        semi: str | None = None,
    ) -> K:
        """A source KPI: ``func`` aggregates the rows of one period and group."""
        df = self.tables[table]
        for d in self.dims:
            df = with_dimension(self.tables, table, d)
        stamp = pd.to_datetime(df[time])
        rows = df[(stamp >= self.lo) & (stamp < END)].copy()
        rows["_t"] = pd.to_datetime(rows[time])
        rows["_p"] = rows["_t"].dt.to_period("M").dt.start_time
        for d in self.dims:
            rows[d] = rows[d].astype(object).where(rows[d].notna(), NULL)
        keys = ["_p", *self.dims]
        if filt is not None:  # the KPI's rows: its dimension values are those left after it
            rows = rows[nn(filt(rows))]
        if self.dims:
            seen = rows.loc[rows["_t"] >= START, self.dims].drop_duplicates().values
            in_range = frozenset(tuple(r) for r in seen)
            combos = sorted({tuple(r) for r in rows[self.dims].drop_duplicates().values})
        else:
            in_range, combos = frozenset({()}), [()]
        if semi is not None:  # the period's latest (earliest) snapshot, one time for all
            pick = rows.groupby("_p")["_t"].transform("max" if semi == "last" else "min")
            rows = rows[rows["_t"] == pick]
        empty = func(rows.iloc[0:0])
        values = {
            (key if isinstance(key, tuple) else (key,)): func(group)
            for key, group in rows.groupby(keys, sort=False)
        }
        grid = pd.MultiIndex.from_tuples(
            [(m, *c) for m in self.months() for c in combos], names=keys
        )
        series = pd.Series(values, dtype=float).reindex(grid, fill_value=empty).astype(float)
        if fill is not None:
            series, empty = series.fillna(fill), fill if math.isnan(empty) else empty
        return K(series, empty, in_range)

    def windowed(
        self,
        table: str,
        time: str,
        func: Callable[[pd.DataFrame], float],
        lo: Callable[[pd.Timestamp], pd.Timestamp | None],
        *,
        filt: Callable[[pd.DataFrame], pd.Series] | None = None,
    ) -> K:
        """A source KPI with a window: for month m, ``func`` aggregates the rows with time
        in [lo(m), m + 1 month) (no lo: all before), never past END (SPEC §13.1)."""
        df = self.tables[table]
        for d in self.dims:
            df = with_dimension(self.tables, table, d)
        rows = df.assign(_t=pd.to_datetime(df[time]))
        rows = rows[rows["_t"] < END].copy()
        for d in self.dims:
            rows[d] = rows[d].astype(object).where(rows[d].notna(), NULL)
        if filt is not None:
            rows = rows[nn(filt(rows))]
        values: dict[tuple, float] = {}
        combos: set[tuple] = set()
        in_range: set[tuple] = set()
        for month in self.months():
            start = lo(month)
            mask = rows["_t"] < month + pd.DateOffset(months=1)
            if start is not None:
                mask &= rows["_t"] >= start
            part = rows[mask]
            groups = part.groupby(self.dims, sort=False) if self.dims else [((), part)]
            for key, group in groups:
                key = key if isinstance(key, tuple) else (key,)
                values[(month, *key)] = func(group)
                combos.add(key)
                if month >= START:
                    in_range.add(key)
        if not self.dims:
            combos, in_range = {()}, {()}
        empty = func(rows.iloc[0:0])
        keys = ["_p", *self.dims]
        grid = pd.MultiIndex.from_tuples(
            [(m, *c) for m in self.months() for c in sorted(combos)], names=keys
        )
        series = pd.Series(values, dtype=float).reindex(grid, fill_value=empty).astype(float)
        return K(series, empty, frozenset(in_range))

    def derive(self, fn: Callable[..., pd.Series], *inputs: K, fill: float | None = None) -> K:
        """A derived KPI: inputs aligned on the union of their grids."""
        index = inputs[0].values.index
        for k in inputs[1:]:
            index = index.union(k.values.index)
        aligned = [k.values.reindex(index, fill_value=k.empty) for k in inputs]
        out = pd.Series(fn(*aligned), index=index, dtype=float)
        empty = float(pd.Series(fn(*(pd.Series([k.empty]) for k in inputs))).iloc[0])
        if fill is not None:
            out, empty = out.fillna(fill), fill if math.isnan(empty) else empty
        return K(out, empty, frozenset().union(*(k.in_range for k in inputs)))

    # -- time functions: computed over all history, then cut back to this context ----
    def window(self, name: str, fn: Callable[[pd.Series], pd.Series]) -> K:
        source = self.history().k(name)
        if self.dims:
            levels = list(range(1, source.values.index.nlevels))
            out = source.values.groupby(level=levels, group_keys=False).transform(fn)
        else:
            out = fn(source.values)
        out = out[out.index.get_level_values(0) >= self.lo]
        return K(out, math.nan, source.in_range)

    def previous(self, name: str, n: int = 1) -> K:
        return self.window(name, lambda s: s.shift(n))

    def rolling_sum(self, name: str, n: int) -> K:
        return self.window(name, lambda s: s.rolling(n, min_periods=1).sum())

    def cumulative_sum(self, name: str) -> K:
        def running(s: pd.Series) -> pd.Series:
            return s.cumsum().where(s.notna().cumsum() > 0)

        return self.window(name, running)

    def streak(self, name: str, holds: Callable[[pd.Series], pd.Series]) -> K:
        def count(s: pd.Series) -> pd.Series:
            ok = nn(holds(s)).to_numpy()
            run, out = 0, []
            for flag in ok:
                run = run + 1 if flag else 0
                out.append(float(run))
            return pd.Series(out, index=s.index)

        return self.window(name, count)


CONTEXTS: dict[tuple[int, str | None, pd.Timestamp], Ctx] = {}


def context(tables: dict[str, pd.DataFrame], by: str | None, lo: pd.Timestamp = START) -> Ctx:
    """One context per dataset, grouping and start, so KPI values are computed once."""
    key = (id(tables), by, lo)
    if key not in CONTEXTS:
        CONTEXTS[key] = Ctx(tables, by, lo)
    return CONTEXTS[key]


def growth(now: pd.Series, before: pd.Series) -> pd.Series:
    return div(now - before, before)


# -- the expected value of every catalog KPI -------------------------------------------

EXPECTED: dict[str, Callable[[Ctx], K]] = {}


def expect(name: str):
    def register(fn: Callable[[Ctx], K]) -> Callable[[Ctx], K]:
        assert name not in EXPECTED, name
        EXPECTED[name] = fn
        return fn

    return register


def real_deals(o: pd.DataFrame) -> pd.Series:
    return ne(o["region"], "internal")


WON = "won"
CLOSED = ["won", "lost"]


def opp(c: Ctx, func, time: str = "closed_at", fill: float | None = None) -> K:
    return c.src("opportunities", time, func, filt=real_deals, fill=fill)


# sales ---------------------------------------------------------------------------------
expect("revenue")(lambda c: opp(c, lambda g: ssum(g.amount[g.stage == WON])))
expect("deals_won")(lambda c: opp(c, lambda g: cnt(g.stage == WON)))
expect("deals_lost")(lambda c: opp(c, lambda g: cnt(g.stage == "lost")))
expect("deals_closed")(lambda c: opp(c, lambda g: cnt(g.stage.isin(CLOSED))))
expect("win_rate")(lambda c: opp(c, lambda g: div(cnt(g.stage == WON), cnt(g.stage.isin(CLOSED)))))
expect("opened_deal_win_rate")(
    lambda c: opp(c, lambda g: div(cnt(g.stage == WON), float(len(g))), time="created_at")
)
expect("average_deal_size")(lambda c: opp(c, lambda g: savg(g.amount[g.stage == WON])))
expect("acv")(
    lambda c: opp(
        c,
        lambda g: savg(((g.total_contract_value - g.one_time_fees) / g.term_years)[g.stage == WON]),
    )
)
expect("units_sold")(lambda c: opp(c, lambda g: ssum(g.quantity[g.stage == WON].astype(float))))
expect("average_revenue_per_unit")(lambda c: c.derive(div, c.k("revenue"), c.k("units_sold")))
expect("marginal_revenue")(
    lambda c: c.derive(
        lambda r, pr, u, pu: div(r - pr, u - pu),
        c.k("revenue"),
        c.previous("revenue"),
        c.k("units_sold"),
        c.previous("units_sold"),
    )
)
expect("discount_impact")(
    lambda c: opp(
        c,
        lambda g: 1 - div(ssum(g.amount[g.stage == WON]), ssum(g.list_price[g.stage == WON])),
    )
)
expect("monthly_sales_growth")(lambda c: c.derive(growth, c.k("revenue"), c.previous("revenue")))
expect("quota")(lambda c: c.src("quotas", "month", lambda g: ssum(g.quota)))
expect("quota_attainment")(lambda c: c.derive(div, c.k("revenue"), c.k("quota")))
expect("quota_consistency")(lambda c: c.streak("quota_attainment", lambda s: s >= 1))
expect("active_reps")(lambda c: c.src("quotas", "month", lambda g: cdist(g.rep_id)))
expect("sales_productivity")(lambda c: c.derive(div, c.k("revenue"), c.k("active_reps")))
expect("sales_forecast")(lambda c: c.src("forecasts", "month", lambda g: ssum(g.forecast)))
expect("forecast_accuracy")(
    lambda c: c.derive(
        lambda a, f: 1 - div((a - f).abs(), f), c.k("revenue"), c.k("sales_forecast")
    )
)
expect("net_sales_efficiency")(
    lambda c: c.derive(
        lambda n, e, ch, s: div(12 * (n + e - ch), s),
        c.k("new_mrr"),
        c.k("expansion_mrr"),
        c.k("churned_mrr"),
        c.k("gtm_spend"),
    )
)


def activity(c: Ctx, func) -> K:
    return c.src("activities", "occurred_at", func)


expect("calls_made")(lambda c: activity(c, lambda g: cnt(g.kind == "call")))
expect("emails_sent")(lambda c: activity(c, lambda g: cnt(g.kind == "email")))
expect("calls_per_rep")(
    lambda c: activity(c, lambda g: div(cnt(g.kind == "call"), cdist(g.rep_id)))
)
expect("emails_per_rep")(
    lambda c: activity(c, lambda g: div(cnt(g.kind == "email"), cdist(g.rep_id)))
)
expect("email_reply_rate")(
    lambda c: activity(
        c,
        lambda g: div(cnt((g.kind == "email") & nn(g.replied == True)), cnt(g.kind == "email")),  # noqa: E712
    )
)

# pipeline ------------------------------------------------------------------------------
expect("opportunities_created")(lambda c: opp(c, lambda g: float(len(g)), time="created_at"))
expect("pipeline_created")(lambda c: opp(c, lambda g: ssum(g.amount), time="created_at", fill=0))
expect("pipeline_closed")(lambda c: opp(c, lambda g: ssum(g.amount[g.stage.isin(CLOSED)]), fill=0))
expect("pipeline_value")(
    lambda c: c.derive(
        lambda a, b: a - b,
        c.cumulative_sum("pipeline_created"),
        c.cumulative_sum("pipeline_closed"),
    )
)
expect("open_deals")(
    lambda c: c.derive(
        lambda a, b: a - b,
        c.cumulative_sum("opportunities_created"),
        c.cumulative_sum("deals_closed"),
    )
)
expect("demos")(lambda c: activity(c, lambda g: cnt(g.kind == "demo")))
expect("meetings")(lambda c: activity(c, lambda g: cnt(g.kind == "meeting")))
expect("sales_cycle_length")(
    lambda c: opp(c, lambda g: savg(days(g.created_at, g.closed_at)[g.stage == WON]))
)
expect("deal_velocity")(
    lambda c: opp(c, lambda g: savg(days(g.created_at, g.closed_at)[g.stage.isin(CLOSED)]))
)


def lead(c: Ctx, func, time: str = "created_at") -> K:
    return c.src("leads", time, func, filt=lambda g: ne(g.region, "internal"))


expect("lead_time_to_convert")(
    lambda c: lead(c, lambda g: savg(days(g.created_at, g.customer_at)), time="customer_at")
)

# marketing -----------------------------------------------------------------------------
expect("leads_generated")(lambda c: lead(c, lambda g: float(len(g))))
expect("mqls")(lambda c: lead(c, lambda g: float(len(g)), time="mql_at"))
expect("sqls")(lambda c: lead(c, lambda g: float(len(g)), time="sql_at"))


def funnel(
    tables: dict[str, pd.DataFrame], base_time: str, events: pd.DataFrame, time: str, days: int
) -> pd.Series:
    """lead_id → whether an event of the same lead has its time in [base, base + days]
    (a conversion KPI, SPEC §13.5; events after the range count)."""
    leads = tables["leads"][["lead_id", base_time]].dropna().set_axis(["lead_id", "_b"], axis=1)
    found = events[["lead_id", time]].dropna().set_axis(["lead_id", "_e"], axis=1)
    hits = found.merge(leads, on="lead_id")
    base, event = pd.to_datetime(hits["_b"]), pd.to_datetime(hits["_e"])
    ok = (event >= base) & (event <= base + pd.Timedelta(days=days))
    converted = set(hits.loc[ok, "lead_id"])
    return tables["leads"]["lead_id"].isin(converted).set_axis(tables["leads"]["lead_id"])


def funnel_rate(c: Ctx, base_time: str, events: str, time: str, days: int, won: bool = False):
    table = c.tables[events]
    if won:
        table = table[table.stage == "won"]
    flags = funnel(c.tables, base_time, table, time, days)
    return lead(c, lambda g: div(cnt(g.lead_id.map(flags)), float(len(g))), time=base_time)


expect("lead_to_customer_rate")(
    lambda c: funnel_rate(c, "created_at", "opportunities", "closed_at", 180, won=True)
)
expect("lead_to_opportunity_rate")(
    lambda c: funnel_rate(c, "created_at", "opportunities", "created_at", 60)
)
expect("lead_to_mql_rate")(lambda c: lead(c, lambda g: div(cnt(g.mql_at.notna()), float(len(g)))))
expect("mql_to_sql_rate")(lambda c: funnel_rate(c, "mql_at", "leads", "sql_at", 30))


def spend(c: Ctx, func, filt=None) -> K:
    return c.src("marketing_spend", "month", func, filt=filt)


def marketing_only(g: pd.DataFrame) -> pd.Series:
    return g.department == "marketing"


expect("touches_per_lead")(
    lambda c: activity(c, lambda g: div(cnt(g.lead_id.notna()), cdist(g.lead_id)))
)
expect("marketing_spend")(lambda c: spend(c, lambda g: ssum(g.spend), marketing_only))
expect("cost_per_lead")(lambda c: c.derive(div, c.k("marketing_spend"), c.k("leads_generated")))
expect("roi")(
    lambda c: spend(
        c,
        lambda g: div(ssum(g.attributed_revenue) - ssum(g.spend), ssum(g.spend)),
        marketing_only,
    )
)
expect("content_marketing_roi")(
    lambda c: spend(
        c,
        lambda g: div(ssum(g.attributed_revenue), ssum(g.spend)),
        lambda g: (g.department == "marketing") & (g.channel == "content"),
    )
)
expect("acquisition_spend")(
    lambda c: spend(c, lambda g: ssum(g.spend[g.department.isin(["marketing", "sales"])]))
)
expect("customers_acquired")(
    lambda c: opp(c, lambda g: cdist(g.account_id[(g.stage == WON) & (g.type == "new_business")]))
)
expect("cac")(lambda c: c.derive(div, c.k("acquisition_spend"), c.k("customers_acquired")))


def post(c: Ctx, func, fill=None) -> K:
    return c.src("social_posts", "posted_at", func, fill=fill)


expect("social_posts_published")(lambda c: post(c, lambda g: float(len(g))))
expect("social_impressions")(lambda c: post(c, lambda g: ssum(g.impressions.astype(float)), 0))
expect("social_engagement_rate")(
    lambda c: post(
        c, lambda g: div(ssum(g.interactions.astype(float)), ssum(g.impressions.astype(float)))
    )
)
expect("social_click_through_rate")(
    lambda c: post(
        c, lambda g: div(ssum(g.clicks.astype(float)), ssum(g.impressions.astype(float)))
    )
)
expect("social_leads")(lambda c: post(c, lambda g: ssum(g.leads.astype(float)), 0))

# revenue (SaaS) ------------------------------------------------------------------------


def snap(c: Ctx, func, semi=None, fill=None) -> K:
    return c.src("mrr_snapshots", "snapshot_date", func, semi=semi, fill=fill)


def movement(kind: str, sign: float = 1.0):
    return lambda g: sign * ssum(g.mrr_change[g.movement == kind])


expect("mrr")(lambda c: snap(c, lambda g: ssum(g.mrr), semi="last"))
expect("arr")(lambda c: c.derive(lambda m: 12 * m, c.k("mrr")))
expect("starting_mrr")(lambda c: snap(c, lambda g: ssum(g.mrr - g.mrr_change), semi="first"))
expect("new_mrr")(lambda c: snap(c, movement("new"), fill=0))
expect("expansion_mrr")(lambda c: snap(c, movement("expansion"), fill=0))
expect("contraction_mrr")(lambda c: snap(c, movement("contraction", -1.0), fill=0))
expect("churned_mrr")(lambda c: snap(c, movement("churn", -1.0), fill=0))
expect("net_new_mrr")(lambda c: snap(c, lambda g: ssum(g.mrr_change), fill=0))
expect("nrr")(
    lambda c: c.derive(
        lambda s, e, co, ch: div(s + e - co - ch, s),
        c.k("starting_mrr"),
        c.k("expansion_mrr"),
        c.k("contraction_mrr"),
        c.k("churned_mrr"),
    )
)
expect("grr")(
    lambda c: c.derive(
        lambda s, co, ch: div(s - co - ch, s),
        c.k("starting_mrr"),
        c.k("contraction_mrr"),
        c.k("churned_mrr"),
    )
)
expect("revenue_churn_rate")(lambda c: c.derive(div, c.k("churned_mrr"), c.k("starting_mrr")))
expect("growth_ceiling")(lambda c: c.derive(div, c.k("new_mrr"), c.k("revenue_churn_rate")))
expect("trailing_revenue_6m")(lambda c: c.rolling_sum("revenue", 6))
expect("trailing_revenue_12m")(lambda c: c.rolling_sum("revenue", 12))
expect("trailing_growth_6m")(
    lambda c: c.derive(
        lambda now, year_ago, base: (now - year_ago) + base,
        c.k("trailing_revenue_6m"),
        c.previous("trailing_revenue_6m", 12),
        c.previous("trailing_revenue_12m", 6),
    )
)
expect("trailing_growth_12m")(
    lambda c: c.derive(
        lambda now, year_ago: (now - year_ago) + year_ago,
        c.k("trailing_revenue_12m"),
        c.previous("trailing_revenue_12m", 12),
    )
)
expect("arpa")(lambda c: c.derive(div, c.k("mrr"), c.k("customers")))
expect("purchase_frequency")(lambda c: c.derive(div, c.k("invoices_issued"), c.k("customers")))
expect("customer_lifetime")(lambda c: c.derive(lambda r: div(1.0, r), c.k("logo_churn_rate")))
expect("clv")(
    lambda c: c.derive(
        lambda a, f, life: a * f * life,
        c.k("average_order_value"),
        c.k("purchase_frequency"),
        c.k("customer_lifetime"),
    )
)
expect("unit_lifetime_value")(
    lambda c: c.derive(
        lambda r, s, u: div(r - s, u), c.k("revenue"), c.k("acquisition_spend"), c.k("units_sold")
    )
)
expect("clv_cac_ratio")(lambda c: c.derive(div, c.k("clv"), c.k("cac")))

# customer success ----------------------------------------------------------------------
expect("customers")(lambda c: snap(c, lambda g: cdist(g.account_id[g.mrr > 0]), semi="last"))
expect("customers_at_start")(
    lambda c: snap(c, lambda g: cdist(g.account_id[(g.mrr - g.mrr_change) > 0]), semi="first")
)
expect("new_customers")(lambda c: c.src("accounts", "customer_since", lambda g: float(len(g))))
expect("churned_customers")(lambda c: c.src("accounts", "churn_date", lambda g: float(len(g))))
expect("customer_retention_rate")(
    lambda c: c.derive(
        lambda end, new, start: div(end - new, start),
        c.k("customers"),
        c.k("new_customers"),
        c.k("customers_at_start"),
    )
)
expect("logo_churn_rate")(
    lambda c: c.derive(div, c.k("churned_customers"), c.k("customers_at_start"))
)


def answers(c: Ctx, kind: str) -> K:
    return c.src(
        "nps_responses",
        "responded_at",
        lambda g: div(100 * (cnt(g.score >= 9) - cnt(g.score <= 6)), float(len(g))),
        filt=lambda g: g.kind == kind,
    )


expect("nps")(lambda c: answers(c, "customer"))
expect("time_to_value")(
    lambda c: c.src(
        "subscriptions", "first_value_date", lambda g: savg(days(g.start_date, g.first_value_date))
    )
)
expect("average_subscription_lifetime")(
    lambda c: c.src("subscriptions", "end_date", lambda g: savg(days(g.start_date, g.end_date)))
)
expect("customer_referrals")(lambda c: lead(c, lambda g: cnt(g.source == "referral")))

# support -------------------------------------------------------------------------------


def tickets(c: Ctx, func, time: str = "created_at") -> K:
    return c.src("support_tickets", time, func)


def escalated(g: pd.DataFrame) -> pd.Series:
    return nn(g.escalated == True)  # noqa: E712


expect("tickets_opened")(lambda c: tickets(c, lambda g: float(len(g))))
expect("bug_ticket_share")(
    lambda c: tickets(c, lambda g: div(cnt(g.category == "bug"), float(len(g))))
)
expect("first_response_time")(
    lambda c: tickets(c, lambda g: savg(days(g.created_at, g.first_response_at)))
)
expect("resolution_time")(
    lambda c: tickets(c, lambda g: savg(days(g.created_at, g.resolved_at)), time="resolved_at")
)
expect("escalations")(lambda c: tickets(c, lambda g: cnt(escalated(g))))
expect("escalations_resolved")(
    lambda c: tickets(c, lambda g: cnt(escalated(g)), time="resolved_at")
)
expect("open_escalations")(
    lambda c: c.derive(
        lambda a, b: a - b,
        c.cumulative_sum("escalations"),
        c.cumulative_sum("escalations_resolved"),
    )
)
expect("escalation_rate")(lambda c: tickets(c, lambda g: div(cnt(escalated(g)), float(len(g)))))
expect("csat")(lambda c: tickets(c, lambda g: div(cnt(g.csat >= 4), float(g.csat.notna().sum()))))
expect("ces")(lambda c: tickets(c, lambda g: savg(g.effort.astype(float))))

# finance -------------------------------------------------------------------------------


def invoice(c: Ctx, func, time: str = "invoice_date") -> K:
    return c.src("invoices", time, func)


expect("gross_revenue")(lambda c: invoice(c, lambda g: ssum(g.subtotal + g.one_time_fees)))
expect("discounts")(lambda c: invoice(c, lambda g: ssum(g.discount)))
expect("refunds")(lambda c: invoice(c, lambda g: ssum(g.refund)))
expect("cogs")(lambda c: invoice(c, lambda g: ssum(g.cogs)))
expect("invoiced_revenue")(lambda c: invoice(c, lambda g: ssum(g.amount)))
expect("net_revenue")(
    lambda c: c.derive(
        lambda g, d, r, cg: g - d - r - cg,
        c.k("gross_revenue"),
        c.k("discounts"),
        c.k("refunds"),
        c.k("cogs"),
    )
)
expect("invoices_issued")(lambda c: invoice(c, lambda g: float(len(g))))
expect("average_order_value")(
    lambda c: c.derive(div, c.k("invoiced_revenue"), c.k("invoices_issued"))
)
expect("commercial_margin")(
    lambda c: c.derive(lambda r, cg: r - cg, c.k("invoiced_revenue"), c.k("cogs"))
)
expect("gross_margin")(
    lambda c: c.derive(lambda r, cg: div(r - cg, r), c.k("invoiced_revenue"), c.k("cogs"))
)
expect("gtm_spend")(lambda c: spend(c, lambda g: ssum(g.spend)))
expect("net_margin")(
    lambda c: c.derive(
        lambda r, rf, cg, s: div(r - rf - cg - s, r),
        c.k("invoiced_revenue"),
        c.k("refunds"),
        c.k("cogs"),
        c.k("gtm_spend"),
    )
)
expect("cash_collected")(
    lambda c: invoice(c, lambda g: ssum(g.amount - g.refund), time="paid_date")
)
expect("cash_flow")(
    lambda c: c.derive(
        lambda cash, cg, s: cash - cg - s, c.k("cash_collected"), c.k("cogs"), c.k("gtm_spend")
    )
)

# people --------------------------------------------------------------------------------


def staff(c: Ctx, func, time: str = "hire_date") -> K:
    return c.src("employees", time, func)


expect("hires")(lambda c: staff(c, lambda g: float(len(g))))
expect("departures")(lambda c: staff(c, lambda g: float(len(g)), time="termination_date"))
expect("headcount")(
    lambda c: c.derive(
        lambda h, d: h - d, c.cumulative_sum("hires"), c.cumulative_sum("departures")
    )
)
expect("employee_retention")(
    lambda c: c.derive(
        lambda now, hired, before: div(now - hired, before),
        c.k("headcount"),
        c.k("hires"),
        c.previous("headcount"),
    )
)
expect("employee_referrals")(lambda c: staff(c, lambda g: cnt(g.hire_source == "referral")))
expect("referral_hire_rate")(
    lambda c: staff(c, lambda g: div(cnt(g.hire_source == "referral"), float(len(g))))
)
expect("time_to_productivity")(
    lambda c: staff(c, lambda g: savg(days(g.hire_date, g.ramped_date)), time="ramped_date")
)
expect("enps")(lambda c: answers(c, "employee"))


# windows (definitions/kpis/windows.yaml) ---------------------------------------------
def year_start(month: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(month.year, 1, 1)


def quarter_start(month: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(month.year, 3 * ((month.month - 1) // 3) + 1, 1)


def trailing(months: int = 0, days: int = 0):
    """lo(m) of a trailing window: its end (m + 1 month) minus the span."""
    return lambda m: m + pd.DateOffset(months=1) - pd.DateOffset(months=months, days=days)


def won_amount(g: pd.DataFrame) -> float:
    return ssum(g.amount[g.stage == WON])


def opp_window(c: Ctx, func, lo) -> K:
    return c.windowed("opportunities", "closed_at", func, lo, filt=real_deals)


expect("revenue_ytd")(lambda c: opp_window(c, won_amount, year_start))
expect("revenue_qtd")(lambda c: opp_window(c, won_amount, quarter_start))
expect("win_rate_ytd")(
    lambda c: opp_window(
        c, lambda g: div(cnt(g.stage == WON), cnt(g.stage.isin(CLOSED))), year_start
    )
)
expect("quota_qtd")(lambda c: c.windowed("quotas", "month", lambda g: ssum(g.quota), quarter_start))
expect("quota_attainment_qtd")(lambda c: c.derive(div, c.k("revenue_qtd"), c.k("quota_qtd")))
expect("revenue_yoy")(lambda c: c.derive(growth, c.k("revenue"), c.previous("revenue", 12)))
expect("new_mrr_yoy")(lambda c: c.derive(growth, c.k("new_mrr"), c.previous("new_mrr", 12)))
expect("revenue_t6m")(lambda c: opp_window(c, won_amount, trailing(months=6)))
expect("revenue_t12m")(lambda c: opp_window(c, won_amount, trailing(months=12)))
expect("revenue_t18m")(lambda c: opp_window(c, won_amount, trailing(months=18)))
expect("trailing_growth")(
    lambda c: c.derive(
        lambda six, six_year_ago, eighteen: (six - six_year_ago) + (eighteen - six),
        c.k("revenue_t6m"),
        c.previous("revenue_t6m", 12),
        c.k("revenue_t18m"),
    )
)
expect("active_accounts_90d")(
    lambda c: c.windowed(
        "activities", "occurred_at", lambda g: cdist(g.account_id), trailing(days=90)
    )
)
expect("pipeline_coverage")(lambda c: c.derive(div, c.k("pipeline_value"), c.k("quota")))


# -- the tests -----------------------------------------------------------------------


def expected_values(tables, name: str, by: str | None) -> dict:
    k = context(tables, by).k(name)
    values = k.values[k.values.index.get_level_values(0) >= START]
    found = {}
    for key, value in values.items():
        key = key if isinstance(key, tuple) else (key,)
        if tuple(key[1:]) in k.in_range or not by:
            found[(pd.Timestamp(key[0]), *key[1:])] = None if math.isnan(value) else value
    return found


def same(got, want) -> bool:
    if got is None or want is None:
        return got is None and want is None
    return math.isclose(got, want, rel_tol=REL, abs_tol=1e-6)


def test_every_catalog_kpi_has_a_pandas_counterpart(project):
    missing = sorted(set(project.kpis) - set(EXPECTED) - set(NOT_COMPUTABLE))
    assert not missing, f"catalog KPIs without a pandas computation: {missing}"
    stale = sorted(set(EXPECTED) - set(project.kpis))
    assert not stale, f"pandas computations for KPIs no longer in the catalog: {stale}"


def test_not_computable_list_is_current(project, warehouse):
    """KPIs listed as not computable must really answer KPI314 (else un-list them)."""
    from kpiengine.errors import DefinitionError

    url, _ = warehouse
    with kpiengine.connect(url) as connection:
        for name in NOT_COMPUTABLE:
            with pytest.raises(DefinitionError, match="KPI314"):
                project.run([name], connection, grain="month", start="2025-01-01", end="2025-02-01")


def _cases() -> list:
    """(KPI, grouping) pairs: no dimension, then `region` or else another dimension."""
    catalog = kpiengine.load(DEFINITIONS)
    cases = []
    for name in sorted(catalog.kpis):
        marks = [pytest.mark.skip(reason=NOT_COMPUTABLE[name])] if name in NOT_COMPUTABLE else []
        cases.append(pytest.param(name, None, id=f"{name}-total", marks=marks))
        by = grouping(catalog, name, "dimension")
        if by is not None:
            cases.append(pytest.param(name, by, id=f"{name}-by-{by}", marks=marks))
    return cases


@pytest.mark.parametrize(("name", "by"), _cases())
def test_kpi_matches_pandas(name, by, warehouse, engine_results):
    """Month grain over 2025: no dimension, and by region (else another dimension)."""
    _, tables = warehouse
    got = engine_results[(name, by)]
    want = expected_values(tables, name, by)
    assert sorted(got) == sorted(want), "the rows (periods x dimension values) differ"
    wrong = {k: (got[k], want[k]) for k in want if not same(got[k], want[k])}
    assert not wrong, f"{len(wrong)} of {len(want)} values differ (engine, pandas): {wrong}"
    assert any(v is not None for v in want.values()), "the check needs some non-null values"


@pytest.mark.parametrize("name", ["mrr", "starting_mrr", "customers", "customers_at_start"])
def test_semi_additive_kpis_take_one_snapshot_per_quarter(name, project, warehouse):
    """At quarter grain a balance is the last (first) monthly snapshot, not a sum of three."""
    url, tables = warehouse
    with kpiengine.connect(url) as connection:
        result = project.run(
            [name], connection, grain="quarter", start="2025-01-01", end="2026-01-01"
        )
    got = {pd.Timestamp(r.period): r.value for r in result.rows}
    snaps = tables["mrr_snapshots"].copy()
    snaps["snapshot_date"] = pd.to_datetime(snaps["snapshot_date"])
    want = {}
    for quarter in pd.date_range(START, END - pd.Timedelta(days=1), freq="QS"):
        rows = snaps[
            (snaps.snapshot_date >= quarter)
            & (snaps.snapshot_date < quarter + pd.DateOffset(months=3))
        ]
        last = name in ("mrr", "customers")
        at = rows[
            rows.snapshot_date == (rows.snapshot_date.max() if last else rows.snapshot_date.min())
        ]
        if name == "mrr":
            want[quarter] = ssum(at.mrr)
        elif name == "starting_mrr":
            want[quarter] = ssum(at.mrr - at.mrr_change)
        elif name == "customers":
            want[quarter] = cdist(at.account_id[at.mrr > 0])
        else:
            want[quarter] = cdist(at.account_id[(at.mrr - at.mrr_change) > 0])
    assert sorted(got) == sorted(want)
    assert all(same(got[q], want[q]) for q in want), (got, want)
