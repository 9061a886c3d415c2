"""The seeds' worked examples, reproduced through the bundled catalog's own definitions.

Each test writes a tiny DuckDB warehouse whose tables have the names and column types of
the sample sources (definitions/sources/*.yaml), holding just the rows that make up the
seed's figure, runs the catalog KPI on it and checks the figure. Only the tables the KPI
reads are created; columns a test does not set are null.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.execute.result import Result, ResultRow
from kpiengine.rules.evaluate import evaluate

DEFINITIONS = Path(__file__).resolve().parents[1] / "definitions"
SQL_TYPES = {
    "string": "VARCHAR",
    "integer": "BIGINT",
    "number": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def catalog() -> kpiengine.api.KpiProject:
    return kpiengine.load(DEFINITIONS)


@pytest.fixture
def warehouse(tmp_path: Path, catalog):
    """``warehouse(tables)`` writes the tables (name -> list of row dicts) and opens them."""
    import duckdb

    opened = []

    def build(tables: Mapping[str, Sequence[Mapping[str, Any]]]):
        path = tmp_path / f"w{len(opened)}.duckdb"
        connection = duckdb.connect(str(path))
        for name, rows in tables.items():
            columns = catalog.model.sources[name].columns
            unknown = {c for row in rows for c in row} - set(columns)
            assert not unknown, f"not columns of {name}: {unknown}"
            ddl = ", ".join(f"{c} {SQL_TYPES[col.type]}" for c, col in columns.items())
            connection.execute(f"CREATE TABLE {name} ({ddl})")
            for row in rows:
                values = [row.get(c) for c in columns]
                marks = ", ".join("?" * len(values))
                connection.execute(f"INSERT INTO {name} VALUES ({marks})", values)
        connection.close()
        opened.append(kpiengine.connect(f"duckdb:///{path}"))
        return opened[-1]

    yield build
    for connection in opened:
        connection.close()


def run(catalog, connection, kpis, start, end, grain="month", by=()):
    return catalog.run(kpis, connection, grain=grain, start=start, end=end, by=list(by))


def deal(closed: str, amount: float, stage: str = "won", **extra: Any) -> dict[str, Any]:
    """A closed deal of the `opportunities` source (region emea unless given)."""
    closed_at = dt.datetime.fromisoformat(closed)
    row = {
        "opportunity_id": next(_ids),
        "account_id": next(_ids),
        "rep_id": 1,
        "region": "emea",
        "product": "platform",
        "type": "new_business",
        "stage": stage,
        "created_at": closed_at - dt.timedelta(days=30),
        "closed_at": closed_at,
        "quantity": 1,
        "list_price": amount,
        "amount": amount,
        "term_years": 1,
        "one_time_fees": 0.0,
        "total_contract_value": amount,
    }
    row.update(extra)
    return row


def spend(month: str, amount: float, department: str = "marketing", **extra: Any) -> dict:
    row = {
        "month": dt.date.fromisoformat(month),
        "region": "emea",
        "department": department,
        "channel": "content" if department == "marketing" else "salaries",
        "spend": amount,
    }
    row.update(extra)
    return row


def snapshot(month: str, mrr: float, change: float, movement: str, **extra: Any) -> dict:
    row = {
        "snapshot_date": dt.date.fromisoformat(month),
        "subscription_id": next(_ids),
        "account_id": next(_ids),
        "mrr": mrr,
        "mrr_change": change,
        "movement": movement,
    }
    row.update(extra)
    return row


# -- SPEC §10 worked examples ---------------------------------------------------------


def test_acv(catalog, warehouse):
    """Seed 002: a 3-year contract of 380,000 with a 20,000 one-time fee: 120,000 a year."""
    connection = warehouse(
        {
            "opportunities": [
                deal(
                    "2024-03-12 10:00:00",
                    130_000.0,
                    term_years=3,
                    one_time_fees=20_000.0,
                    total_contract_value=380_000.0,
                ),
                deal("2024-03-20 10:00:00", 99_000.0, stage="lost", term_years=1),
            ]
        }
    )
    result = run(catalog, connection, ["acv"], "2024-03-01", "2024-04-01")
    assert result.value("acv", "2024-03-01") == pytest.approx((380_000 - 20_000) / 3)
    assert result.value("acv", "2024-03-01") == pytest.approx(120_000)


def unit_sales(catalog, warehouse):
    """Seed 002's running example: ten units sold for 100,000; selling them cost 20,000."""
    return warehouse(
        {
            "opportunities": [
                deal("2024-05-06 11:00:00", 60_000.0, quantity=6),
                deal("2024-05-21 15:00:00", 40_000.0, quantity=4),
                deal("2024-05-22 15:00:00", 70_000.0, quantity=7, stage="lost"),
            ],
            "marketing_spend": [
                spend("2024-05-01", 12_000.0),
                spend("2024-05-01", 8_000.0, department="sales"),
                spend("2024-05-01", 5_000.0, department="success", channel="onboarding"),
            ],
        }
    )


def test_average_revenue_per_unit(catalog, warehouse):
    """Seed 002: 100,000 for ten units is 10,000 of average revenue per unit."""
    result = run(
        catalog,
        unit_sales(catalog, warehouse),
        ["average_revenue_per_unit"],
        "2024-05-01",
        "2024-06-01",
    )
    assert result.value("average_revenue_per_unit", "2024-05-01") == pytest.approx(10_000)


def test_lifetime_value_per_unit(catalog, warehouse):
    """Seed 002: (100,000 - 20,000 it cost to sell them) / 10 units = 8,000."""
    connection = unit_sales(catalog, warehouse)
    result = run(
        catalog,
        connection,
        ["unit_lifetime_value", "revenue", "acquisition_spend"],
        "2024-05-01",
        "2024-06-01",
    )
    assert result.value("revenue", "2024-05-01") == pytest.approx(100_000)
    assert result.value("acquisition_spend", "2024-05-01") == pytest.approx(20_000)
    assert result.value("unit_lifetime_value", "2024-05-01") == pytest.approx(8_000)


def test_marginal_revenue(catalog, warehouse):
    """Seed 002: ten more units take revenue from 100,000 to 110,000: 1,000 per extra unit."""
    connection = warehouse(
        {
            "opportunities": [
                deal("2024-01-15 09:00:00", 100_000.0, quantity=10),
                deal("2024-02-10 09:00:00", 55_000.0, quantity=10),
                deal("2024-02-20 09:00:00", 55_000.0, quantity=10),
            ]
        }
    )
    result = run(
        catalog,
        connection,
        ["marginal_revenue", "revenue", "units_sold"],
        "2024-02-01",
        "2024-03-01",
    )
    assert result.value("revenue", "2024-02-01") == pytest.approx(110_000)
    assert result.value("units_sold", "2024-02-01") == 20
    assert result.value("marginal_revenue", "2024-02-01") == pytest.approx(1_000)


def test_sales_productivity(catalog, warehouse):
    """Seed 002: 100,000 of revenue in a quarter with 10 sellers: 10,000 per seller."""
    quotas = [
        {"rep_id": rep, "month": dt.date(2024, month, 1), "region": "emea", "quota": 5_000.0}
        for rep in range(1, 11)
        for month in (4, 5, 6)
    ]
    deals = [deal(f"2024-0{4 + i % 3}-1{i} 10:00:00", 10_000.0, rep_id=i + 1) for i in range(10)]
    connection = warehouse({"opportunities": deals, "quotas": quotas})
    result = run(
        catalog,
        connection,
        ["sales_productivity", "active_reps"],
        "2024-04-01",
        "2024-07-01",
        grain="quarter",
    )
    assert result.value("active_reps", "2024-04-01") == 10
    assert result.value("sales_productivity", "2024-04-01") == pytest.approx(10_000)


def test_roi(catalog, warehouse):
    """Seed 002: a gain of 775,000 on 1,525,000 invested is an ROI of about 50.8 %."""
    connection = warehouse(
        {
            "marketing_spend": [
                spend("2024-09-01", 1_000_000.0, channel="events", attributed_revenue=1_500_000.0),
                spend("2024-09-01", 500_000.0, channel="content", attributed_revenue=800_000.0),
                spend("2024-09-01", 25_000.0, channel="brand"),  # not attributable
                spend("2024-09-01", 90_000.0, department="sales"),  # not marketing
            ]
        }
    )
    result = run(catalog, connection, ["roi"], "2024-09-01", "2024-10-01")
    roi = result.value("roi", "2024-09-01")
    assert roi == pytest.approx(775_000 / 1_525_000)
    assert round(roi, 3) == 0.508 and round(roi * 100) == 51  # "50,8 %, arrondi à 51 %"


def test_net_sales_efficiency(catalog, warehouse):
    """Seed 002: 10 of net incremental revenue for 1 spent on sales, marketing and success."""
    connection = warehouse(
        {
            "mrr_snapshots": [
                snapshot("2024-06-01", 900.0, 900.0, "new"),
                snapshot("2024-06-01", 1_300.0, 300.0, "expansion"),
                snapshot("2024-06-01", 0.0, -200.0, "churn"),
                snapshot("2024-06-01", 800.0, -100.0, "contraction"),  # not customer loss
                snapshot("2024-06-01", 5_000.0, 0.0, "flat"),
            ],
            "marketing_spend": [
                spend("2024-06-01", 500.0),
                spend("2024-06-01", 400.0, department="sales"),
                spend("2024-06-01", 300.0, department="success", channel="onboarding"),
            ],
        }
    )
    result = run(catalog, connection, ["net_sales_efficiency"], "2024-06-01", "2024-07-01")
    # net incremental recurring revenue: 12 x (900 + 300 - 200) = 12,000 for 1,200 spent
    assert result.value("net_sales_efficiency", "2024-06-01") == pytest.approx(10)


def growth_ceiling_warehouse(warehouse):
    """A month with 300,000 of MRR at its start, 2 % of it churned, 10,000 of new MRR."""
    return warehouse(
        {
            "mrr_snapshots": [
                snapshot("2024-04-01", 150_000.0, 0.0, "flat"),
                snapshot("2024-04-01", 144_000.0, 0.0, "flat"),
                snapshot("2024-04-01", 0.0, -6_000.0, "churn"),
                snapshot("2024-04-01", 10_000.0, 10_000.0, "new"),
            ]
        }
    )


def test_growth_ceiling(catalog, warehouse):
    """Seed 002 (SPEC §10): 10,000 of new MRR a month at 2 % revenue churn caps MRR at 500,000."""
    connection = growth_ceiling_warehouse(warehouse)
    kpis = ["growth_ceiling", "new_mrr", "revenue_churn_rate", "mrr"]
    result = run(catalog, connection, kpis, "2024-04-01", "2024-05-01")
    assert result.value("new_mrr", "2024-04-01") == pytest.approx(10_000)
    assert result.value("revenue_churn_rate", "2024-04-01") == pytest.approx(0.02)
    assert result.value("growth_ceiling", "2024-04-01") == pytest.approx(500_000)
    # MRR (304,000) is past 60 % of the ceiling: growth slows from there (seed: 60-70 %)
    alerts, _ = evaluate(catalog.model, result)
    fired = {(a.kpi, a.rule) for a in alerts}
    assert ("growth_ceiling", "approaching_ceiling") in fired
    assert ("revenue_churn_rate", "above_ceiling") not in fired  # 2 % is not above 2 %


def test_trailing_growth(catalog, warehouse):
    """Seed 002: on 1 July 2021, (17M - 10M) + 25M = 32M of trailing 6-month growth."""
    half_years = {  # (first month, revenue of each of its six months)
        "2020-01": 10_000_000 / 6,
        "2020-07": 15_000_000 / 6,
        "2021-01": 17_000_000 / 6,
    }
    deals = []
    for first, monthly in half_years.items():
        year, month = map(int, first.split("-"))
        for offset in range(6):
            deals.append(deal(f"{year}-{month + offset:02d}-15 12:00:00", monthly))
    connection = warehouse({"opportunities": deals})
    result = run(
        catalog,
        connection,
        ["trailing_growth_6m", "trailing_revenue_6m", "trailing_revenue_12m"],
        "2021-06-01",
        "2021-07-01",
    )
    assert result.value("trailing_revenue_6m", "2021-06-01") == pytest.approx(17_000_000)
    assert result.value("trailing_growth_6m", "2021-06-01") == pytest.approx(32_000_000)
    # the 12-month form: (last 12 months - the 12 before) + the 12 before = last 12 months
    late = run(catalog, connection, ["trailing_growth_12m"], "2021-06-01", "2021-07-01")
    assert late.value("trailing_growth_12m", "2021-06-01") == pytest.approx(15_000_000 + 17_000_000)
    # the window form gives the same 32M at month and at quarter grain: June 2021 and
    # Q2 2021 end the same six months
    for grain, period in (("month", "2021-06-01"), ("quarter", "2021-04-01")):
        windowed = run(catalog, connection, ["trailing_growth"], period, "2021-07-01", grain=grain)
        assert windowed.value("trailing_growth", period) == pytest.approx(32_000_000), grain


# -- other numbers in the seeds -------------------------------------------------------


def test_sales_growth_from_200_to_2000(catalog, warehouse):
    """Seed 004: "sales grew from 200 EUR to 2,000 EUR from December to March" is +900 %."""
    connection = warehouse(
        {
            "opportunities": [
                deal("2024-12-10 10:00:00", 200.0),
                deal("2025-03-10 10:00:00", 2_000.0),
            ]
        }
    )
    result = run(
        catalog, connection, ["monthly_sales_growth"], "2025-01-01", "2025-04-01", grain="quarter"
    )
    assert result.value("monthly_sales_growth", "2025-01-01") == pytest.approx(9.0)


def test_nps_ranges_from_minus_100_to_plus_100(catalog, warehouse):
    """Seed 002: -100 when everyone is a detractor, +100 when everyone is a promoter."""

    def answer(day: str, score: int, kind: str = "customer") -> dict:
        return {
            "response_id": next(_ids),
            "kind": kind,
            "responded_at": dt.datetime.fromisoformat(day),
            "account_id": 1 if kind == "customer" else None,
            "employee_id": 1 if kind == "employee" else None,
            "score": score,
        }

    rows = [answer("2024-01-03 10:00:00", s) for s in (0, 3, 6)]  # January: detractors only
    rows += [answer("2024-02-03 10:00:00", s) for s in (9, 10)]  # February: promoters only
    rows += [answer("2024-03-03 10:00:00", s) for s in (10, 9, 8, 7, 6)]  # March: 2 - 1 of 5
    rows += [answer("2024-03-04 10:00:00", 0, kind="employee")]  # eNPS only
    connection = warehouse({"nps_responses": rows})
    result = run(catalog, connection, ["nps", "enps"], "2024-01-01", "2024-04-01")
    assert [result.value("nps", m) for m in ("2024-01-01", "2024-02-01", "2024-03-01")] == [
        pytest.approx(-100),
        pytest.approx(100),
        pytest.approx(20),
    ]
    assert result.value("enps", "2024-03-01") == pytest.approx(-100)
    assert result.value("enps", "2024-01-01") is None


def test_employee_retention_three_sellers_in_ten_leave(catalog, warehouse):
    """Seed 002: about 3 sellers in 10 leave each year: a 70 % yearly retention."""
    people = [
        {
            "employee_id": i,
            "department": "sales",
            "role": "account_executive",
            "region": "emea",
            "hire_date": dt.date(2019, 3, i),
            "termination_date": dt.date(2021, 2 + 3 * i, 15) if i <= 3 else None,
            "hire_source": "referral" if i <= 3 else "inbound",
        }
        for i in range(1, 11)
    ]
    connection = warehouse({"employees": people})
    result = run(
        catalog,
        connection,
        ["employee_retention", "headcount"],
        "2021-01-01",
        "2022-01-01",
        grain="year",
    )
    assert result.value("headcount", "2021-01-01") == 7
    assert result.value("employee_retention", "2021-01-01") == pytest.approx(0.7)
    alerts, _ = evaluate(catalog.model, result)
    assert not [a for a in alerts if a.kpi == "employee_retention"]  # 70 % meets the floor
    # 3 of the 10 hires came from employee referrals: 30 %, the low end of "30-40 %"
    hires = run(
        catalog, connection, ["referral_hire_rate"], "2019-01-01", "2020-01-01", grain="year"
    )
    assert hires.value("referral_hire_rate", "2019-01-01") == pytest.approx(0.3)


def test_quota_consistency_counts_consecutive_months_at_quota(catalog, warehouse):
    """Seed 002: the number of consecutive months a seller reaches quota (by rep)."""
    quotas = [
        {"rep_id": rep, "month": dt.date(2024, m, 1), "region": "emea", "quota": 10_000.0}
        for rep in (1, 2)
        for m in range(1, 6)
    ]
    won = {1: [12_000, 10_000, 3_000, 10_500, 20_000], 2: [10_000, 10_000, 10_000, 10_000, 10_000]}
    deals = [
        deal(f"2024-{m + 1:02d}-10 10:00:00", float(amount), rep_id=rep)
        for rep, amounts in won.items()
        for m, amount in enumerate(amounts)
    ]
    connection = warehouse({"opportunities": deals, "quotas": quotas})
    result = run(
        catalog,
        connection,
        ["quota_consistency", "quota_attainment"],
        "2024-01-01",
        "2024-06-01",
        by=["rep_id"],
    )
    months = [f"2024-0{m}-01" for m in range(1, 6)]
    assert [result.value("quota_consistency", m, rep_id=1) for m in months] == [1, 2, 0, 1, 2]
    assert [result.value("quota_consistency", m, rep_id=2) for m in months] == [1, 2, 3, 4, 5]
    assert result.value("quota_attainment", "2024-03-01", rep_id=1) == pytest.approx(0.3)


def test_clv_is_purchase_value_times_frequency_times_lifetime(catalog, warehouse):
    """Seed 001's formula on hand-made numbers (the seeds give no figure for it).

    One month: 10 customers at its start, one churns (10 % logo churn: a 10-month
    lifetime), one new customer; 5 invoices of 2,000 on 10 customers at the end.
    CLV = 2,000 x 0.5 x 10 = 10,000.
    """
    churned = {
        "account_id": 10,
        "customer_since": dt.date(2023, 1, 1),
        "churn_date": dt.date(2024, 7, 20),
    }
    accounts = [
        {"account_id": a, "region": "emea", "segment": "smb", "customer_since": dt.date(2023, 1, 1)}
        for a in range(1, 10)
    ]
    accounts += [{**churned, "region": "emea", "segment": "smb"}]
    accounts += [
        {
            "account_id": 11,
            "region": "emea",
            "segment": "smb",
            "customer_since": dt.date(2024, 7, 5),
        }
    ]
    snaps = [snapshot("2024-07-01", 1_000.0, 0.0, "flat", account_id=a) for a in range(1, 10)]
    snaps += [snapshot("2024-07-01", 0.0, -1_000.0, "churn", account_id=10)]
    snaps += [snapshot("2024-07-01", 1_000.0, 1_000.0, "new", account_id=11)]
    invoices = [
        {"invoice_id": i, "account_id": i, "invoice_date": dt.date(2024, 7, 10), "amount": 2_000.0}
        for i in range(1, 6)
    ]
    connection = warehouse({"accounts": accounts, "mrr_snapshots": snaps, "invoices": invoices})
    kpis = [
        "clv",
        "average_order_value",
        "purchase_frequency",
        "customer_lifetime",
        "customer_retention_rate",
    ]
    result = run(catalog, connection, kpis, "2024-07-01", "2024-08-01")
    assert result.value("average_order_value", "2024-07-01") == pytest.approx(2_000)
    assert result.value("purchase_frequency", "2024-07-01") == pytest.approx(0.5)
    assert result.value("customer_lifetime", "2024-07-01") == pytest.approx(10)
    assert result.value("clv", "2024-07-01") == pytest.approx(10_000)
    # (10 customers at the end - 1 new) / 10 at the start
    assert result.value("customer_retention_rate", "2024-07-01") == pytest.approx(0.9)


# -- benchmarks as rules --------------------------------------------------------------


def alerts_for(catalog, kpi: str, value: float) -> dict[str, str]:
    """The catalog's rules of ``kpi`` fired by one value: rule -> message."""
    result = Result("month", None, None, (), [ResultRow(dt.date(2024, 1, 1), kpi, value)])
    alerts, _ = evaluate(catalog.model, result)
    return {a.rule: a.message for a in alerts if a.kpi == kpi}


@pytest.mark.parametrize(
    ("kpi", "value", "fired"),
    [
        ("win_rate", 0.46, {"below_benchmark"}),  # seed 002: 47 % (RAIN Group)
        ("win_rate", 0.47, set()),
        ("quota_attainment", 0.5, {"below_benchmark"}),  # seed 002: 58 % (Xactly)
        ("quota_attainment", 0.58, set()),
        ("clv_cac_ratio", 3.0, set()),  # seed 000: 3:1 or better is healthy
        ("clv_cac_ratio", 2.5, {"unhealthy"}),
        ("clv_cac_ratio", 0.8, {"unhealthy", "losing_money"}),
        ("discount_impact", 0.15, set()),  # seed 002: 10-15 % is routine
        ("discount_impact", 0.2, {"excessive_discounting"}),
        ("nps", 25.0, set()),  # seed 002: -100 .. +100
        ("nps", -10.0, {"more_detractors"}),
        ("nps", 130.0, {"out_of_range"}),
        ("referral_hire_rate", 0.35, set()),  # seed 002: 30-40 % of hires
        ("referral_hire_rate", 0.2, {"below_benchmark"}),
    ],
)
def test_seed_benchmarks_fire_the_catalog_rules(catalog, kpi, value, fired):
    assert set(alerts_for(catalog, kpi, value)) == fired


def test_rule_messages_render_values_in_units(catalog):
    messages = alerts_for(catalog, "win_rate", 0.4)
    assert messages["below_benchmark"] == "Win rate 40.0 % is under the 47.0 % benchmark"
    messages = alerts_for(catalog, "clv_cac_ratio", 0.5)
    assert "0.5" in messages["losing_money"]


def standalone_alerts(catalog, values: dict[str, float]) -> dict[str, str]:
    """The catalog's standalone rules fired by one period's KPI values: rule -> message."""
    rows = [ResultRow(dt.date(2024, 1, 1), kpi, value) for kpi, value in values.items()]
    alerts, _ = evaluate(catalog.model, Result("month", None, None, (), rows))
    return {a.rule: a.message for a in alerts if a.kpi is None}


def test_standalone_rules(catalog):
    assert set(standalone_alerts(catalog, {"clv": 60_000.0, "cac": 20_000.0})) == set()
    fired = standalone_alerts(catalog, {"clv": 40_000.0, "cac": 20_000.0})
    assert set(fired) == {"unhealthy_unit_economics"}
    assert fired["unhealthy_unit_economics"].startswith("CLV:CAC is 2, under the healthy 3:1")
    mrr = {"new_mrr": 5_000.0, "expansion_mrr": 1_000.0, "churned_mrr": 5_500.0}
    assert set(standalone_alerts(catalog, {**mrr, "contraction_mrr": 400.0})) == set()
    assert set(standalone_alerts(catalog, {**mrr, "contraction_mrr": 600.0})) == {"mrr_shrinking"}
    sales = standalone_alerts(catalog, {"win_rate": 0.4, "quota_attainment": 0.5})
    assert set(sales) == {"below_sales_benchmarks"}
    assert "40.0 %" in sales["below_sales_benchmarks"]
    assert not standalone_alerts(catalog, {"win_rate": 0.4, "quota_attainment": 0.6})
