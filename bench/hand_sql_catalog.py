"""Hand-written DuckDB statements for bench/hand_sql.py beyond the opportunity sets: 28
common catalog KPIs over seven tables, with and without the conformed `region`, and the
whole bundled catalog (133 KPIs: time functions, windows and conversions included).

Written as an analyst fluent in SQL writes them: one aggregate per table and time column
(`FILTER` clauses for the conditional measures), each joined to a month spine (with a
dimension: the spine × the regions that occur), derived ratios computed in the final
`SELECT`. The region of invoices, MRR snapshots, support tickets and NPS answers is the
account's (a join to `accounts`, as `kpiengine.yaml`'s conformed dimension says);
opportunities, leads and spend have their own `region` column, which wins. The catalog's
time functions read narrow all-history aggregates laid on a month spine (window
functions: running totals, rolling sums, `LAG`, the streak), its to-date KPIs are window
sums partitioned by year or quarter, its 90-day distinct count a range join, its
conversions a join of the leads to their deals (SPEC §5, §13.1, §13.5 say what each means).
"""

from __future__ import annotations

#: A KPI the bundled catalog lacks but a metrics layer is expected to have: a median.
#: The bench adds it to a copy of definitions/ (bench.yaml next to the catalog's files).
BENCH_KPIS = """kpis:
  - kpi: median_deal_size
    title: Median deal size
    description: Median first-year value of the deals won in the period (bench only).
    unit: currency
    source: opportunities
    expression: median(amount where stage = 'won')
    filter: region != 'internal'
    dimensions: [region]
"""

#: 28 KPIs of the kind a MetricFlow project defines: counts, sums, averages, ratios, a
#: distinct count, a median and derived ratios, over opportunities (two time columns),
#: leads (two), invoices (two), MRR snapshots, support tickets, NPS answers and spend.
K28 = [
    "revenue",
    "deals_won",
    "win_rate",
    "average_deal_size",
    "units_sold",
    "sales_cycle_length",
    "customers_acquired",
    "median_deal_size",
    "opportunities_created",
    "pipeline_created",
    "leads_generated",
    "mqls",
    "lead_to_mql_rate",
    "invoiced_revenue",
    "invoices_issued",
    "gross_margin",
    "average_order_value",
    "cash_collected",
    "new_mrr",
    "churned_mrr",
    "net_new_mrr",
    "tickets_opened",
    "first_response_time",
    "csat",
    "nps",
    "marketing_spend",
    "acquisition_spend",
    "cac",
]


def _month(column: str) -> str:
    return f"CAST(DATE_TRUNC('month', {column}) AS DATE) AS period"


def _in_2025(column: str) -> str:
    return f"{column} >= '2025-01-01' AND {column} < '2026-01-01'"


def k28_aggregates(by_region: bool, join_kind: str = "") -> dict[str, str]:
    """One aggregate per table and time column, keyed by its CTE name. ``join_kind``: ""
    (the inner join an analyst who knows every row has an account writes) or "LEFT" (what
    kpiengine must write: SPEC §5 keeps rows without a match as a null group)."""
    own = ", region" if by_region else ""  # the source's own region column
    acc = ", a.region" if by_region else ""  # the account's
    join = f" {join_kind} JOIN accounts a ON a.account_id = t.account_id" if by_region else ""
    won = "FILTER (WHERE stage = 'won')"
    return {
        "o": f"""SELECT {_month("closed_at")}{own},
                 SUM(amount) {won} AS revenue, COUNT(*) {won} AS won,
                 COUNT(*) FILTER (WHERE stage IN ('won', 'lost')) AS closed,
                 AVG(amount) {won} AS average_deal, SUM(quantity) {won} AS units,
                 AVG(DATE_DIFF('day', CAST(created_at AS DATE), CAST(closed_at AS DATE)))
                   {won} AS cycle,
                 COUNT(DISTINCT account_id)
                   FILTER (WHERE stage = 'won' AND type = 'new_business') AS acquired,
                 MEDIAN(amount) {won} AS median_deal
          FROM opportunities
          WHERE {_in_2025("closed_at")} AND region != 'internal' GROUP BY ALL""",
        "n": f"""SELECT {_month("created_at")}{own}, COUNT(*) AS created,
                 SUM(amount) AS pipeline
          FROM opportunities
          WHERE {_in_2025("created_at")} AND region != 'internal' GROUP BY ALL""",
        "l": f"""SELECT {_month("created_at")}{own}, COUNT(*) AS leads,
                 COUNT(mql_at) AS became_mql
          FROM leads WHERE {_in_2025("created_at")} AND region != 'internal' GROUP BY ALL""",
        "q": f"""SELECT {_month("mql_at")}{own}, COUNT(*) AS mqls
          FROM leads WHERE {_in_2025("mql_at")} AND region != 'internal' GROUP BY ALL""",
        "i": f"""SELECT {_month("t.invoice_date")}{acc}, SUM(t.amount) AS invoiced,
                 COUNT(*) AS invoices, SUM(t.cogs) AS cogs
          FROM invoices t{join} WHERE {_in_2025("t.invoice_date")} GROUP BY ALL""",
        "p": f"""SELECT {_month("t.paid_date")}{acc}, SUM(t.amount - t.refund) AS cash
          FROM invoices t{join} WHERE {_in_2025("t.paid_date")} GROUP BY ALL""",
        "r": f"""SELECT {_month("t.snapshot_date")}{acc},
                 SUM(t.mrr_change) FILTER (WHERE t.movement = 'new') AS new_mrr,
                 -SUM(t.mrr_change) FILTER (WHERE t.movement = 'churn') AS churned_mrr,
                 SUM(t.mrr_change) AS net_new_mrr
          FROM mrr_snapshots t{join} WHERE {_in_2025("t.snapshot_date")} GROUP BY ALL""",
        "s": f"""SELECT {_month("t.created_at")}{acc}, COUNT(*) AS tickets,
                 AVG(DATE_DIFF('day', CAST(t.created_at AS DATE),
                                      CAST(t.first_response_at AS DATE))) AS response,
                 COUNT(*) FILTER (WHERE t.csat >= 4) AS satisfied, COUNT(t.csat) AS rated
          FROM support_tickets t{join} WHERE {_in_2025("t.created_at")} GROUP BY ALL""",
        "v": f"""SELECT {_month("t.responded_at")}{acc},
                 100 * (COUNT(*) FILTER (WHERE t.score >= 9)
                        - COUNT(*) FILTER (WHERE t.score <= 6)) / COUNT(*) AS nps
          FROM nps_responses t{join}
          WHERE {_in_2025("t.responded_at")} AND t.kind = 'customer' GROUP BY ALL""",
        "m": f"""SELECT month AS period{own},
                 SUM(spend) FILTER (WHERE department = 'marketing') AS marketing,
                 SUM(spend) FILTER (WHERE department IN ('marketing', 'sales')) AS acquisition
          FROM marketing_spend WHERE {_in_2025("month")} GROUP BY ALL""",
    }


K28_VALUES = """o.revenue, COALESCE(o.won, 0), o.won / NULLIF(o.closed, 0), o.average_deal,
    o.units, o.cycle, COALESCE(o.acquired, 0), o.median_deal, COALESCE(n.created, 0),
    COALESCE(n.pipeline, 0), COALESCE(l.leads, 0), COALESCE(q.mqls, 0),
    l.became_mql / NULLIF(l.leads, 0), i.invoiced, COALESCE(i.invoices, 0),
    (i.invoiced - i.cogs) / NULLIF(i.invoiced, 0), i.invoiced / NULLIF(i.invoices, 0), p.cash,
    COALESCE(r.new_mrr, 0), COALESCE(r.churned_mrr, 0), COALESCE(r.net_new_mrr, 0),
    COALESCE(s.tickets, 0), s.response, s.satisfied / NULLIF(s.rated, 0), v.nps,
    m.marketing, m.acquisition, m.acquisition / NULLIF(o.acquired, 0)"""


def k28_sql(by_region: bool, join_kind: str = "") -> str:
    """The 28 KPIs by hand: the aggregates left-joined to the month spine (× regions)."""
    aggregates = k28_aggregates(by_region, join_kind)
    ctes = ",\n".join(f"{name} AS ({body})" for name, body in aggregates.items())
    spine = (
        "months AS (SELECT CAST(range AS DATE) AS period FROM range(DATE '2025-01-01', "
        "DATE '2026-01-01', INTERVAL 1 MONTH))"
    )
    if not by_region:
        joins = " ".join(f"LEFT JOIN {n} ON {n}.period = k.period" for n in aggregates)
        return f"""WITH {spine}, {ctes}
            SELECT k.period, {K28_VALUES} FROM months k {joins}"""
    regions = " UNION ".join(f"SELECT region FROM {n}" for n in aggregates)
    joins = " ".join(
        f"LEFT JOIN {n} ON {n}.period = k.period AND {n}.region = k.region" for n in aggregates
    )
    return f"""WITH {spine}, {ctes},
        keys AS (SELECT period, region FROM months, ({regions}) r)
        SELECT k.period, k.region, {K28_VALUES} FROM keys k {joins}"""


# -- the whole catalog ------------------------------------------------------------------
#
# Three layers, as an analyst writes them: one aggregate per table and time column over
# 2025 (CATALOG_AGGREGATES; the conversions' flags per lead inside the leads' one), narrow
# all-history aggregates for the time functions (HISTORY_AGGREGATES) laid on a contiguous
# month spine where window functions give the running totals, rolling sums, look-backs
# (LAG) and the streak (HISTORY_COLUMNS, then LOOK_BACK_COLUMNS over those), and a range
# join of the months to the activities for the one distinct count over 90 days
# (ACTIVE_ACCOUNTS). Year- and quarter-to-date sums are window sums over the 2025
# aggregates in the final SELECT (PARTITION BY year / quarter: the calendar is the fiscal
# year, fiscal_year_start 1).


def _agg(time: str, table: str, measures: str, where: str = "") -> str:
    """One aggregate of ``table`` per month of ``time`` over 2025."""
    extra = f" AND {where}" if where else ""
    return f"""SELECT {_month(time)}, {measures}
        FROM {table} WHERE {_in_2025(time)}{extra} GROUP BY ALL"""


def _days(start: str, end: str) -> str:
    return f"DATE_DIFF('day', CAST({start} AS DATE), CAST({end} AS DATE))"


WON = "FILTER (WHERE stage = 'won')"
SHUT = "FILTER (WHERE stage IN ('won', 'lost'))"
REAL = "region != 'internal'"

#: One aggregate per table and time column over 2025 (24; the leads' joined to their deals).
CATALOG_AGGREGATES = {
    "o": _agg(
        "closed_at",
        "opportunities",
        f"""SUM(amount) {WON} AS revenue, COUNT(*) {WON} AS won,
            COUNT(*) FILTER (WHERE stage = 'lost') AS lost, COUNT(*) {SHUT} AS closed,
            AVG(amount) {WON} AS average_deal,
            AVG((total_contract_value - one_time_fees) / NULLIF(term_years, 0)) {WON} AS acv,
            SUM(quantity) {WON} AS units, SUM(list_price) {WON} AS list_won,
            AVG({_days("created_at", "closed_at")}) {WON} AS cycle,
            AVG({_days("created_at", "closed_at")}) {SHUT} AS velocity,
            COUNT(DISTINCT account_id)
              FILTER (WHERE stage = 'won' AND type = 'new_business') AS acquired,
            SUM(amount) {SHUT} AS pipeline_closed""",
        REAL,
    ),
    "n": _agg(
        "created_at",
        "opportunities",
        f"COUNT(*) AS created, SUM(amount) AS pipeline, COUNT(*) {WON} AS opened_won",
        REAL,
    ),
    # the conversions (SPEC 13.5): a lead converts when one event of the same lead falls in
    # [its time, its time + within]; events after 2025 count, the event source has no filter.
    # One join of the leads to their deals, flags per lead (BOOL_OR), then the month's counts.
    "l": f"""SELECT {_month("created_at")}, COUNT(*) AS leads, COUNT(mql_at) AS became_mql,
           COUNT(*) FILTER (WHERE source = 'referral') AS referrals,
           COUNT(*) FILTER (WHERE won_180) AS became_customer,
           COUNT(*) FILTER (WHERE opened_60) AS became_opportunity
        FROM (
          SELECT t.lead_id, t.created_at, t.mql_at, t.source,
                 BOOL_OR(o.stage = 'won' AND o.closed_at BETWEEN t.created_at
                                                 AND t.created_at + INTERVAL 180 DAY) AS won_180,
                 BOOL_OR(o.created_at BETWEEN t.created_at
                                          AND t.created_at + INTERVAL 60 DAY) AS opened_60
          FROM leads t LEFT JOIN opportunities o ON o.lead_id = t.lead_id
          WHERE {_in_2025("t.created_at")} AND t.region != 'internal'
          GROUP BY ALL)
        GROUP BY ALL""",
    # lead_id is the leads' key: the SQL event of an MQL is its own row's sql_at
    "lm": _agg(
        "mql_at",
        "leads",
        """COUNT(*) AS mqls,
           COUNT(*) FILTER (WHERE sql_at BETWEEN mql_at AND mql_at + INTERVAL 30 DAY)
             AS became_sql""",
        REAL,
    ),
    "ls": _agg("sql_at", "leads", "COUNT(*) AS sqls", REAL),
    "lc": _agg("customer_at", "leads", f"AVG({_days('created_at', 'customer_at')}) AS days", REAL),
    "i": _agg(
        "invoice_date",
        "invoices",
        """SUM(subtotal + one_time_fees) AS gross, SUM(discount) AS discounts,
           SUM(refund) AS refunds, SUM(cogs) AS cogs, SUM(amount) AS invoiced,
           COUNT(*) AS invoices""",
    ),
    "ip": _agg("paid_date", "invoices", "SUM(amount - refund) AS cash"),
    # at month grain the monthly snapshot is both the first and the last of its month
    "r": _agg(
        "snapshot_date",
        "mrr_snapshots",
        """COUNT(DISTINCT account_id) FILTER (WHERE mrr > 0) AS customers,
           COUNT(DISTINCT account_id) FILTER (WHERE mrr - mrr_change > 0) AS at_start,
           SUM(mrr) AS mrr, SUM(mrr - mrr_change) AS starting,
           SUM(mrr_change) FILTER (WHERE movement = 'new') AS new,
           SUM(mrr_change) FILTER (WHERE movement = 'expansion') AS expansion,
           -SUM(mrr_change) FILTER (WHERE movement = 'contraction') AS contraction,
           -SUM(mrr_change) FILTER (WHERE movement = 'churn') AS churned,
           SUM(mrr_change) AS net_new""",
    ),
    "s": _agg(
        "created_at",
        "support_tickets",
        f"""COUNT(*) AS tickets, COUNT(*) FILTER (WHERE category = 'bug') AS bugs,
            AVG({_days("created_at", "first_response_at")}) AS response,
            COUNT(*) FILTER (WHERE escalated) AS escalations,
            COUNT(*) FILTER (WHERE csat >= 4) AS satisfied, COUNT(csat) AS rated,
            AVG(effort) AS effort""",
    ),
    "sr": _agg(
        "resolved_at",
        "support_tickets",
        f"""AVG({_days("created_at", "resolved_at")}) AS resolution,
            COUNT(*) FILTER (WHERE escalated) AS escalations_resolved""",
    ),
    "v": _agg(
        "responded_at",
        "nps_responses",
        """100 * (COUNT(*) FILTER (WHERE kind = 'customer' AND score >= 9)
                  - COUNT(*) FILTER (WHERE kind = 'customer' AND score <= 6))
              / NULLIF(COUNT(*) FILTER (WHERE kind = 'customer'), 0) AS nps,
           100 * (COUNT(*) FILTER (WHERE kind = 'employee' AND score >= 9)
                  - COUNT(*) FILTER (WHERE kind = 'employee' AND score <= 6))
              / NULLIF(COUNT(*) FILTER (WHERE kind = 'employee'), 0) AS enps""",
    ),
    "m": _agg(
        "month",
        "marketing_spend",
        """SUM(spend) AS gtm, SUM(spend) FILTER (WHERE department = 'marketing') AS marketing,
           SUM(attributed_revenue) FILTER (WHERE department = 'marketing') AS attributed,
           SUM(spend) FILTER (WHERE department = 'marketing' AND channel = 'content')
             AS content_spend,
           SUM(attributed_revenue) FILTER (WHERE department = 'marketing' AND channel = 'content')
             AS content_attributed,
           SUM(spend) FILTER (WHERE department IN ('marketing', 'sales')) AS acquisition""",
    ),
    "a": _agg(
        "occurred_at",
        "activities",
        """COUNT(*) FILTER (WHERE kind = 'call') AS calls,
           COUNT(*) FILTER (WHERE kind = 'email') AS emails,
           COUNT(*) FILTER (WHERE kind = 'email' AND replied) AS replies,
           COUNT(*) FILTER (WHERE kind = 'demo') AS demos,
           COUNT(*) FILTER (WHERE kind = 'meeting') AS meetings,
           COUNT(lead_id) AS touches, COUNT(DISTINCT lead_id) AS touched_leads,
           COUNT(DISTINCT rep_id) AS reps""",
    ),
    "sp": _agg(
        "posted_at",
        "social_posts",
        """COUNT(*) AS posts, SUM(impressions) AS impressions,
           SUM(interactions) AS interactions, SUM(clicks) AS clicks, SUM(leads) AS leads""",
    ),
    "e": _agg(
        "hire_date",
        "employees",
        "COUNT(*) AS hires, COUNT(*) FILTER (WHERE hire_source = 'referral') AS referred",
    ),
    "ed": _agg("termination_date", "employees", "COUNT(*) AS departures"),
    "er": _agg("ramped_date", "employees", f"AVG({_days('hire_date', 'ramped_date')}) AS ramp"),
    "ac": _agg("customer_since", "accounts", "COUNT(*) AS won_customers"),
    "ax": _agg("churn_date", "accounts", "COUNT(*) AS lost_customers"),
    "uv": _agg(
        "first_value_date",
        "subscriptions",
        f"AVG({_days('start_date', 'first_value_date')}) AS ttv",
    ),
    "ue": _agg("end_date", "subscriptions", f"AVG({_days('start_date', 'end_date')}) AS lifetime"),
    "qu": _agg("month", "quotas", "SUM(quota) AS quota, COUNT(DISTINCT rep_id) AS active_reps"),
    "f": _agg("month", "forecasts", "SUM(forecast) AS forecast"),
}


def _until_2026(time: str, table: str, measures: str, where: str = "", since: str = "") -> str:
    """One aggregate of ``table`` per month of ``time`` up to the end of 2025: from the first
    row (all history) unless ``since`` says how far back the look-backs reach."""
    extra = f" AND {time} >= '{since}'" if since else ""
    extra += f" AND {where}" if where else ""
    return f"""SELECT {_month(time)}, {measures}
        FROM {table} WHERE {time} < '2026-01-01'{extra} GROUP BY ALL"""


#: Narrow aggregates over the history the time functions read: only the measures that a
#: running total, a look-back, a rolling sum or the streak needs.
HISTORY_AGGREGATES = {
    "ho": _until_2026(
        "closed_at",
        "opportunities",
        f"""SUM(amount) {WON} AS revenue, SUM(quantity) {WON} AS units,
            COUNT(*) {SHUT} AS closed, SUM(amount) {SHUT} AS pipeline_closed""",
        REAL,
    ),
    "hn": _until_2026(
        "created_at", "opportunities", "COUNT(*) AS created, SUM(amount) AS pipeline", REAL
    ),
    "he": _until_2026("hire_date", "employees", "COUNT(*) AS hires"),
    "hd": _until_2026("termination_date", "employees", "COUNT(*) AS departures"),
    "hs": _until_2026("created_at", "support_tickets", "COUNT(*) AS escalations", "escalated"),
    "hr": _until_2026("resolved_at", "support_tickets", "COUNT(*) AS resolved", "escalated"),
    "hq": _until_2026("month", "quotas", "SUM(quota) AS quota"),
    # new MRR a year before 2025 (growth(new_mrr, 1, year))
    "hm": _until_2026(
        "snapshot_date",
        "mrr_snapshots",
        "SUM(mrr_change) FILTER (WHERE movement = 'new') AS new",
        since="2024-01-01",
    ),
}

#: Per month of the history spine: running totals from the first row, rolling sums over the
#: spine's rows (a month spine makes `ROWS n PRECEDING` the trailing n months, empty months
#: included), and the break marks of the streak. `w` orders the spine.
HISTORY_COLUMNS = """ho.revenue, ho.units, COALESCE(hm.new, 0) AS new,
    ROW_NUMBER() OVER w AS idx, ho.revenue / NULLIF(hq.quota, 0) AS attainment,
    SUM(COALESCE(hn.pipeline, 0)) OVER w - SUM(COALESCE(ho.pipeline_closed, 0)) OVER w
      AS pipeline_value,
    SUM(COALESCE(hn.created, 0)) OVER w - SUM(COALESCE(ho.closed, 0)) OVER w AS open_deals,
    SUM(COALESCE(he.hires, 0)) OVER w - SUM(COALESCE(hd.departures, 0)) OVER w AS headcount,
    SUM(COALESCE(hs.escalations, 0)) OVER w - SUM(COALESCE(hr.resolved, 0)) OVER w
      AS open_escalations,
    SUM(ho.revenue) OVER (w ROWS 5 PRECEDING) AS t6,
    SUM(ho.revenue) OVER (w ROWS 11 PRECEDING) AS t12,
    SUM(ho.revenue) OVER (w ROWS 17 PRECEDING) AS t18"""

#: The look-backs over HISTORY_COLUMNS (a window over windows needs a second layer); the
#: streak is the distance to the last month whose attainment was not >= 1 (null included).
LOOK_BACK_COLUMNS = """*, LAG(revenue) OVER w AS revenue_1, LAG(units) OVER w AS units_1,
    LAG(revenue, 12) OVER w AS revenue_12, LAG(new, 12) OVER w AS new_12,
    LAG(headcount) OVER w AS headcount_1, LAG(t6, 12) OVER w AS t6_12,
    LAG(t12, 6) OVER w AS t12_6, LAG(t12, 12) OVER w AS t12_12,
    idx - COALESCE(MAX(CASE WHEN attainment >= 1 THEN NULL ELSE idx END) OVER w, 0) AS streak"""

#: Accounts active in the 90 days ending with each month: a range join of the months'
#: bounds to the activities (a distinct count: no sum of monthly values gives it), the scan
#: bounded by the first month's window.
ACTIVE_ACCOUNTS = """WITH bounds AS (
      SELECT period, CAST(period + INTERVAL 1 MONTH - INTERVAL 90 DAY AS DATE) AS lo,
             CAST(period + INTERVAL 1 MONTH AS DATE) AS hi
      FROM months)
    SELECT b.period, COUNT(DISTINCT t.account_id) AS active
    FROM bounds b JOIN activities t ON t.occurred_at >= b.lo AND t.occurred_at < b.hi
    WHERE t.occurred_at >= '2024-11-03' AND t.occurred_at < '2026-01-01'
    GROUP BY ALL"""


# derived inputs, spelled once
_AOV = "i.invoiced / NULLIF(i.invoices, 0)"
_FREQ = "i.invoices / NULLIF(COALESCE(r.customers, 0), 0)"
_LOGO = "COALESCE(ax.lost_customers, 0) / NULLIF(COALESCE(r.at_start, 0), 0)"
_LIFETIME = f"1 / NULLIF({_LOGO}, 0)"
_CLV = f"{_AOV} * {_FREQ} * {_LIFETIME}"
_CAC = "m.acquisition / NULLIF(COALESCE(o.acquired, 0), 0)"
_CHURN_RATE = "COALESCE(r.churned, 0) / NULLIF(r.starting, 0)"

#: (KPI, its value over the joined aggregates), in the catalog's order.
CATALOG_VALUES: list[tuple[str, str]] = [
    ("customers", "COALESCE(r.customers, 0)"),
    ("customers_at_start", "COALESCE(r.at_start, 0)"),
    ("new_customers", "COALESCE(ac.won_customers, 0)"),
    ("churned_customers", "COALESCE(ax.lost_customers, 0)"),
    (
        "customer_retention_rate",
        "(COALESCE(r.customers, 0) - COALESCE(ac.won_customers, 0))"
        " / NULLIF(COALESCE(r.at_start, 0), 0)",
    ),
    ("logo_churn_rate", _LOGO),
    ("nps", "v.nps"),
    ("time_to_value", "uv.ttv"),
    ("average_subscription_lifetime", "ue.lifetime"),
    ("customer_referrals", "COALESCE(l.referrals, 0)"),
    ("gross_revenue", "i.gross"),
    ("discounts", "i.discounts"),
    ("refunds", "i.refunds"),
    ("cogs", "i.cogs"),
    ("invoiced_revenue", "i.invoiced"),
    ("net_revenue", "i.gross - i.discounts - i.refunds - i.cogs"),
    ("invoices_issued", "COALESCE(i.invoices, 0)"),
    ("average_order_value", _AOV),
    ("commercial_margin", "i.invoiced - i.cogs"),
    ("gross_margin", "(i.invoiced - i.cogs) / NULLIF(i.invoiced, 0)"),
    ("gtm_spend", "m.gtm"),
    ("net_margin", "(i.invoiced - i.refunds - i.cogs - m.gtm) / NULLIF(i.invoiced, 0)"),
    ("cash_collected", "ip.cash"),
    ("cash_flow", "ip.cash - i.cogs - m.gtm"),
    ("leads_generated", "COALESCE(l.leads, 0)"),
    ("mqls", "COALESCE(lm.mqls, 0)"),
    ("sqls", "COALESCE(ls.sqls, 0)"),
    ("lead_to_customer_rate", "l.became_customer / NULLIF(l.leads, 0)"),
    ("lead_to_opportunity_rate", "l.became_opportunity / NULLIF(l.leads, 0)"),
    ("lead_to_mql_rate", "l.became_mql / NULLIF(l.leads, 0)"),
    ("mql_to_sql_rate", "lm.became_sql / NULLIF(lm.mqls, 0)"),
    ("touches_per_lead", "a.touches / NULLIF(a.touched_leads, 0)"),
    ("marketing_spend", "m.marketing"),
    ("cost_per_lead", "m.marketing / NULLIF(COALESCE(l.leads, 0), 0)"),
    ("roi", "(m.attributed - m.marketing) / NULLIF(m.marketing, 0)"),
    ("content_marketing_roi", "m.content_attributed / NULLIF(m.content_spend, 0)"),
    ("acquisition_spend", "m.acquisition"),
    ("customers_acquired", "COALESCE(o.acquired, 0)"),
    ("cac", _CAC),
    ("social_posts_published", "COALESCE(sp.posts, 0)"),
    ("social_impressions", "COALESCE(sp.impressions, 0)"),
    ("social_engagement_rate", "sp.interactions / NULLIF(sp.impressions, 0)"),
    ("social_click_through_rate", "sp.clicks / NULLIF(sp.impressions, 0)"),
    ("social_leads", "COALESCE(sp.leads, 0)"),
    ("hires", "COALESCE(e.hires, 0)"),
    ("departures", "COALESCE(ed.departures, 0)"),
    ("headcount", "h.headcount"),
    ("employee_retention", "(h.headcount - COALESCE(e.hires, 0)) / NULLIF(h.headcount_1, 0)"),
    ("employee_referrals", "COALESCE(e.referred, 0)"),
    ("referral_hire_rate", "e.referred / NULLIF(e.hires, 0)"),
    ("time_to_productivity", "er.ramp"),
    ("enps", "v.enps"),
    ("opportunities_created", "COALESCE(n.created, 0)"),
    ("pipeline_created", "COALESCE(n.pipeline, 0)"),
    ("pipeline_closed", "COALESCE(o.pipeline_closed, 0)"),
    ("pipeline_value", "h.pipeline_value"),
    ("open_deals", "h.open_deals"),
    ("demos", "COALESCE(a.demos, 0)"),
    ("meetings", "COALESCE(a.meetings, 0)"),
    ("sales_cycle_length", "o.cycle"),
    ("deal_velocity", "o.velocity"),
    ("lead_time_to_convert", "lc.days"),
    ("pipeline_coverage", "h.pipeline_value / NULLIF(qu.quota, 0)"),
    ("mrr", "r.mrr"),
    ("arr", "12 * r.mrr"),
    ("starting_mrr", "r.starting"),
    ("new_mrr", "COALESCE(r.new, 0)"),
    ("expansion_mrr", "COALESCE(r.expansion, 0)"),
    ("contraction_mrr", "COALESCE(r.contraction, 0)"),
    ("churned_mrr", "COALESCE(r.churned, 0)"),
    ("net_new_mrr", "COALESCE(r.net_new, 0)"),
    (
        "nrr",
        "(r.starting + COALESCE(r.expansion, 0) - COALESCE(r.contraction, 0)"
        " - COALESCE(r.churned, 0)) / NULLIF(r.starting, 0)",
    ),
    (
        "grr",
        "(r.starting - COALESCE(r.contraction, 0) - COALESCE(r.churned, 0))"
        " / NULLIF(r.starting, 0)",
    ),
    ("revenue_churn_rate", _CHURN_RATE),
    ("growth_ceiling", f"COALESCE(r.new, 0) / NULLIF({_CHURN_RATE}, 0)"),
    ("trailing_revenue_6m", "h.t6"),
    ("trailing_revenue_12m", "h.t12"),
    ("trailing_growth_6m", "(h.t6 - h.t6_12) + h.t12_6"),
    ("trailing_growth_12m", "(h.t12 - h.t12_12) + h.t12_12"),
    ("arpa", "r.mrr / NULLIF(COALESCE(r.customers, 0), 0)"),
    ("purchase_frequency", _FREQ),
    ("customer_lifetime", _LIFETIME),
    ("clv", _CLV),
    ("unit_lifetime_value", "(o.revenue - m.acquisition) / NULLIF(o.units, 0)"),
    ("clv_cac_ratio", f"{_CLV} / NULLIF({_CAC}, 0)"),
    ("new_mrr_yoy", "(h.new - h.new_12) / NULLIF(h.new_12, 0)"),
    ("trailing_growth", "(h.t6 - h.t6_12) + (h.t18 - h.t6)"),
    ("revenue", "o.revenue"),
    ("deals_won", "COALESCE(o.won, 0)"),
    ("deals_lost", "COALESCE(o.lost, 0)"),
    ("deals_closed", "COALESCE(o.closed, 0)"),
    ("win_rate", "o.won / NULLIF(o.closed, 0)"),
    ("opened_deal_win_rate", "n.opened_won / NULLIF(n.created, 0)"),
    ("average_deal_size", "o.average_deal"),
    ("acv", "o.acv"),
    ("units_sold", "o.units"),
    ("average_revenue_per_unit", "o.revenue / NULLIF(o.units, 0)"),
    ("marginal_revenue", "(h.revenue - h.revenue_1) / NULLIF(h.units - h.units_1, 0)"),
    ("discount_impact", "1 - o.revenue / NULLIF(o.list_won, 0)"),
    ("monthly_sales_growth", "(h.revenue - h.revenue_1) / NULLIF(h.revenue_1, 0)"),
    ("quota", "qu.quota"),
    ("quota_attainment", "o.revenue / NULLIF(qu.quota, 0)"),
    ("quota_consistency", "h.streak"),
    ("active_reps", "COALESCE(qu.active_reps, 0)"),
    ("sales_productivity", "o.revenue / NULLIF(COALESCE(qu.active_reps, 0), 0)"),
    ("sales_forecast", "f.forecast"),
    ("forecast_accuracy", "1 - ABS(o.revenue - f.forecast) / NULLIF(f.forecast, 0)"),
    (
        "net_sales_efficiency",
        "12 * (COALESCE(r.new, 0) + COALESCE(r.expansion, 0) - COALESCE(r.churned, 0))"
        " / NULLIF(m.gtm, 0)",
    ),
    ("calls_made", "COALESCE(a.calls, 0)"),
    ("emails_sent", "COALESCE(a.emails, 0)"),
    ("calls_per_rep", "COALESCE(a.calls, 0) / NULLIF(COALESCE(a.reps, 0), 0)"),
    ("emails_per_rep", "COALESCE(a.emails, 0) / NULLIF(COALESCE(a.reps, 0), 0)"),
    ("email_reply_rate", "a.replies / NULLIF(a.emails, 0)"),
    ("revenue_ytd", "SUM(o.revenue) OVER ytd"),
    ("revenue_qtd", "SUM(o.revenue) OVER qtd"),
    ("win_rate_ytd", "SUM(o.won) OVER ytd / NULLIF(SUM(o.closed) OVER ytd, 0)"),
    ("quota_qtd", "SUM(qu.quota) OVER qtd"),
    ("quota_attainment_qtd", "SUM(o.revenue) OVER qtd / NULLIF(SUM(qu.quota) OVER qtd, 0)"),
    ("revenue_yoy", "(h.revenue - h.revenue_12) / NULLIF(h.revenue_12, 0)"),
    ("revenue_t6m", "h.t6"),
    ("revenue_t12m", "h.t12"),
    ("revenue_t18m", "h.t18"),
    ("active_accounts_90d", "COALESCE(aa.active, 0)"),
    ("tickets_opened", "COALESCE(s.tickets, 0)"),
    ("bug_ticket_share", "s.bugs / NULLIF(s.tickets, 0)"),
    ("first_response_time", "s.response"),
    ("resolution_time", "sr.resolution"),
    ("escalations", "COALESCE(s.escalations, 0)"),
    ("escalations_resolved", "COALESCE(sr.escalations_resolved, 0)"),
    ("open_escalations", "h.open_escalations"),
    ("escalation_rate", "s.escalations / NULLIF(s.tickets, 0)"),
    ("csat", "s.satisfied / NULLIF(s.rated, 0)"),
    ("ces", "s.effort"),
]
CATALOG = [name for name, _ in CATALOG_VALUES]


def _ctes(aggregates: dict[str, str]) -> str:
    return ",\n".join(f"{name} AS ({body})" for name, body in aggregates.items())


def catalog_sql() -> str:
    """The whole catalog by hand, month grain over 2025, no dimension: the 2025 aggregates,
    the history spine's look-backs (``h``) and the 90-day range join (``aa``) left-joined to
    the 2025 months, the to-date sums as windows over them."""
    months = (
        "months AS (SELECT CAST(range AS DATE) AS period FROM range(DATE '2025-01-01', "
        "DATE '2026-01-01', INTERVAL 1 MONTH))"
    )
    # the history spine starts at the first month with data (running totals, streak), or
    # earlier if the look-backs reach further: 2025-01 reads back to 2023-02 (t12, 12 back)
    firsts = " UNION ALL ".join(f"SELECT MIN(period) FROM {name}" for name in HISTORY_AGGREGATES)
    history = f"""history AS (SELECT CAST(range AS DATE) AS period FROM range(
        (SELECT LEAST(MIN(first), DATE '2023-02-01') FROM ({firsts}) f(first)),
        DATE '2026-01-01', INTERVAL 1 MONTH))"""
    spine_joins = " ".join(f"LEFT JOIN {n} USING (period)" for n in HISTORY_AGGREGATES)
    layers = f"""h1 AS (SELECT period, {HISTORY_COLUMNS}
        FROM history {spine_joins} WINDOW w AS (ORDER BY period)),
      h AS (SELECT {LOOK_BACK_COLUMNS} FROM h1 WINDOW w AS (ORDER BY period)),
      aa AS ({ACTIVE_ACCOUNTS})"""
    joined = [*CATALOG_AGGREGATES, "h", "aa"]
    joins = " ".join(f"LEFT JOIN {n} ON {n}.period = k.period" for n in joined)
    values = ",\n  ".join(value for _, value in CATALOG_VALUES)
    return f"""WITH {months}, {_ctes(CATALOG_AGGREGATES)}, {_ctes(HISTORY_AGGREGATES)},
      {history}, {layers}
    SELECT k.period,\n  {values}\nFROM months k {joins}
    WINDOW ytd AS (PARTITION BY YEAR(k.period) ORDER BY k.period),
      qtd AS (PARTITION BY YEAR(k.period), QUARTER(k.period) ORDER BY k.period)"""
