"""Numbers on the tiny sales dataset of conftest.py, every expected value computed by hand.

Closed months: Jan o1 (won 100 emea a1), o2 (lost 50 emea a2), o8 (won 10 internal a3);
Feb nothing; Mar o3 (won 200 apac a1), o4 (won, amount null, apac a3), o5 (lost 30 emea
a4, no account row); Apr o6 (won 70, region null, a2); May nothing; o7 is open (no
closed_at) and so in no period.
"""

from __future__ import annotations

import datetime as dt

import pytest

from kpiengine.errors import DefinitionError

MONTHS = ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01"]
RANGE = {"start": "2024-01-01", "end": "2024-06-01"}


def series(result, kpi: str) -> dict[str, object]:
    return {
        row.period.isoformat() if row.period else None: row.value
        for row in result.rows
        if row.kpi == kpi
    }


def same(got, expected) -> bool:
    """Equal lists where numbers match to 1e-12 relative and nulls match nulls."""
    return len(got) == len(expected) and all(
        (g is None and e is None)
        or (g is not None and e is not None and g == pytest.approx(e, rel=1e-12))
        for g, e in zip(got, expected, strict=True)
    )


def run(sales, kpis, **options):
    project, connection = sales
    options = {**RANGE, **options}
    return project.run(kpis, connection, **options)


@pytest.mark.parametrize(
    ("kpi", "expected"),
    [
        ("won_count", [2, 0, 2, 1, 0]),
        ("closed_count", [3, 0, 3, 1, 0]),
        ("win_rate", [2 / 3, None, 2 / 3, 1.0, None]),
        ("revenue", [110, None, 200, 70, None]),
        ("avg_won", [55, None, 200, 70, None]),
        ("deals", [3, 0, 3, 1, 0]),
        ("amounts_counted", [3, 0, 2, 1, 0]),
        ("accounts_won", [2, 0, 2, 1, 0]),
        ("min_amount", [10, None, 30, 70, None]),
        ("max_amount", [100, None, 200, 70, None]),
        ("median_amount", [50, None, 115, 70, None]),
        ("p90_amount", [90, None, 183, 70, None]),
        ("external_deals", [2, 0, 3, 0, 0]),  # the null region of o6 is dropped by `!=`
        ("cycle_days", [11, None, 36, 18, None]),  # (8 + 14) / 2; (33 + 39) / 2; 16 + 2
        ("big_deals", [1, None, 1, 1, None]),  # if(null > 60, 1, 0) is 0
        ("not_apac", [3, 0, 1, 0, 0]),  # `not in` drops the null region
        ("by_zero", [None] * 5),
        ("mod_zero", [None] * 5),
        ("created_deals", [3, 2, 2, 1, 0]),  # o7 counts in April by created_at
        ("avg_deal", [55, None, 100, 70, None]),
        ("spend", [1000, None, 900, None, 50]),
        ("spend_filled", [1000, 0, 900, 0, 50]),
        ("cost_per_deal", [1000 / 3, None, 300, None, None]),
    ],
)
def test_month_values(sales, kpi, expected):
    result = run(sales, [kpi])
    assert list(series(result, kpi)) == MONTHS  # complete spine, February and May included
    got = list(series(result, kpi).values())
    assert same(got, expected), got


def test_kpis_share_one_result_and_keep_request_order(sales):
    result = run(sales, ["deals", "win_rate"])
    assert [r.kpi for r in result.rows] == ["deals"] * 5 + ["win_rate"] * 5


def test_quarter_and_year(sales):
    quarter = run(sales, ["won_count", "revenue"], grain="quarter")
    assert series(quarter, "won_count") == {"2024-01-01": 4, "2024-04-01": 1}
    assert series(quarter, "revenue") == {"2024-01-01": 310, "2024-04-01": 70}
    year = run(sales, ["deals"], grain="year")
    assert series(year, "deals") == {"2024-01-01": 7}


def test_fiscal_year_start_shifts_quarters_and_years(sales):
    project, connection = sales
    import dataclasses

    from kpiengine.api import KpiProject

    shifted = KpiProject(dataclasses.replace(project.model, fiscal_year_start=2))
    quarter = shifted.run(["deals", "revenue"], connection, grain="quarter", **RANGE)
    # fiscal quarters start in Feb, May, Aug, Nov: Jan 2024 is in the one from Nov 2023
    assert series(quarter, "deals") == {"2023-11-01": 3, "2024-02-01": 4, "2024-05-01": 0}
    assert series(quarter, "revenue") == {"2023-11-01": 110, "2024-02-01": 270, "2024-05-01": None}
    year = shifted.run(["deals"], connection, grain="year", **RANGE)
    assert series(year, "deals") == {"2023-02-01": 3, "2024-02-01": 4}


def test_week_and_day(sales):
    week = run(sales, ["deals"], grain="week", start="2024-01-08", end="2024-01-22")
    # o1 closes Wed 10 Jan (week of Mon 8 Jan), o8 Mon 15 Jan
    assert series(week, "deals") == {"2024-01-08": 1, "2024-01-15": 1}
    day = run(sales, ["deals"], grain="day", start="2024-03-30", end="2024-04-03")
    assert series(day, "deals") == {
        "2024-03-30": 0,
        "2024-03-31": 1,
        "2024-04-01": 0,
        "2024-04-02": 1,
    }


def test_sunday_weeks(sales):
    import dataclasses

    from kpiengine.api import KpiProject

    project, connection = sales
    sunday = KpiProject(dataclasses.replace(project.model, week_start="sunday"))
    week = sunday.run(["deals"], connection, grain="week", start="2024-01-07", end="2024-01-21")
    assert series(week, "deals") == {"2024-01-07": 1, "2024-01-14": 1}


def test_grain_all_with_and_without_range(sales):
    assert series(run(sales, ["deals"], grain="all"), "deals") == {None: 7}
    project, connection = sales
    everything = project.run(["deals"], connection, grain="all")
    assert series(everything, "deals") == {None: 8}  # no range: every row, open o7 too


def test_range_defaults_to_the_data(sales):
    project, connection = sales
    result = project.run(["deals"], connection)
    assert series(result, "deals") == {
        "2024-01-01": 3,
        "2024-02-01": 0,
        "2024-03-01": 3,
        "2024-04-01": 1,
    }
    assert (result.start, result.end) == (dt.date(2024, 1, 1), dt.date(2024, 5, 1))


def test_unaligned_range_filters_rows_exactly(sales):
    result = run(sales, ["deals"], start="2024-01-12", end="2024-03-31")
    # o1 (10 Jan) and o5 (31 Mar 23:00) fall outside; periods still start on the 1st
    assert series(result, "deals") == {"2024-01-01": 2, "2024-02-01": 0, "2024-03-01": 2}


def test_dimension_with_null_group(sales):
    result = run(sales, ["win_rate"], by=["region"], start="2024-01-01", end="2024-05-01")
    values = {(r.period.isoformat(), r.dimensions[0][1]): r.value for r in result.rows}
    assert len(values) == 4 * 4  # every month × every region seen in range (null too)
    assert values[("2024-01-01", "emea")] == 0.5
    assert values[("2024-01-01", "internal")] == 1.0
    assert values[("2024-01-01", "apac")] is None
    assert values[("2024-03-01", "apac")] == 1.0
    assert values[("2024-03-01", "emea")] == 0.0
    assert values[("2024-04-01", None)] == 1.0
    assert values[("2024-02-01", "emea")] is None
    regions = [r.dimensions[0][1] for r in result.rows if r.period == dt.date(2024, 1, 1)]
    assert regions == ["apac", "emea", "internal", None]  # sorted, null last


def test_dimension_through_join_left_join_semantics(sales):
    result = run(sales, ["won_count", "deals"], grain="all", by=["accounts.segment"])
    deals = {r.dimensions: r.value for r in result.rows if r.kpi == "deals"}
    assert deals == {
        (("accounts.segment", "enterprise"),): 2,
        (("accounts.segment", "mid_market"),): 2,
        (("accounts.segment", "smb"),): 2,
        (("accounts.segment", None),): 1,  # o5's account a4 has no accounts row
    }
    assert result.to_dicts()[0] == {
        "period": None,
        "kpi": "won_count",
        "value": 1,
        "accounts.segment": "enterprise",
    }


def test_two_dimensions(sales):
    result = run(sales, ["deals"], grain="all", by=["region", "accounts.segment"])
    got = {tuple(v for _, v in r.dimensions): r.value for r in result.rows}
    assert got == {
        ("apac", "mid_market"): 1,
        ("apac", "smb"): 1,
        ("emea", "enterprise"): 1,
        ("emea", "smb"): 1,
        ("emea", None): 1,
        ("internal", "mid_market"): 1,
        (None, "enterprise"): 1,
    }


def test_where_flag_filters_every_source_kpi(sales):
    result = run(sales, ["deals", "revenue"], where="region = 'emea'")
    assert series(result, "deals") == dict(zip(MONTHS, [2, 0, 1, 0, 0], strict=True))
    assert series(result, "revenue") == dict(
        zip(MONTHS, [100, None, None, None, None], strict=True)
    )


def test_where_through_join(sales):
    result = run(sales, ["deals"], grain="all", where="accounts.segment in ('smb', 'enterprise')")
    assert series(result, "deals") == {None: 4}


def test_derived_across_sources_needs_every_input_to_have_the_dimension(sales):
    with pytest.raises(DefinitionError) as error:
        run(sales, ["cost_per_deal"], by=["region"])
    assert [d.code for d in error.value.diagnostics] == ["KPI310"]
    assert "spend" in error.value.diagnostics[0].message


def test_declared_dimensions_are_the_only_ones(sales):
    with pytest.raises(DefinitionError) as error:
        run(sales, ["win_rate"], by=["stage"])
    assert error.value.diagnostics[0].code == "KPI310"


def test_where_on_unavailable_dimension(sales):
    with pytest.raises(DefinitionError) as error:
        run(sales, ["win_rate"], where="stage = 'won'")
    assert error.value.diagnostics[0].code == "KPI310"


def test_per_kpi_dimension_values(sales):
    # spend has no region, but derived KPIs combining sources with dimensions only list the
    # dimension values their own sources saw: run two sources side by side.
    result = run(
        sales,
        ["deals", "created_deals"],
        grain="all",
        by=["region"],
        start="2024-04-01",
        end="2024-05-01",
    )
    assert {r.dimensions[0][1]: r.value for r in result.rows if r.kpi == "deals"} == {None: 1}
    assert {r.dimensions[0][1]: r.value for r in result.rows if r.kpi == "created_deals"} == {
        "emea": 1
    }


def test_dimension_values_are_those_left_after_the_kpis_filter(sales):
    # external_deals filters region != 'internal' (which also drops the null region)
    result = run(sales, ["external_deals", "deals"], grain="all", by=["region"])
    external = {r.dimensions[0][1]: r.value for r in result.rows if r.kpi == "external_deals"}
    assert external == {"apac": 2, "emea": 3}
    deals = {r.dimensions[0][1]: r.value for r in result.rows if r.kpi == "deals"}
    assert deals == {"apac": 2, "emea": 3, "internal": 1, None: 1}


def test_shared_filter_gives_the_same_rows_alone_or_together(sales):
    alone = run(sales, ["external_deals"], by=["region"])
    together = run(sales, ["external_deals", "deals", "win_rate"], by=["region"])
    assert [r for r in together.rows if r.kpi == "external_deals"] == alone.rows


def test_modulo_keeps_fractions(tmp_path):
    """`%` truncates like DuckDB on every engine (SQLite's own `%` drops fractions)."""
    import kpiengine
    from tests.conftest import ENGINES, engine_url, write_files

    files = {
        "s.yaml": "source: t\ntable: t\ntime: day\ncolumns:\n  day: date\n  x: number\n",
        "k.yaml": "kpi: rest\nsource: t\nexpression: sum(x) % 2\n",
    }
    project = kpiengine.load(write_files(tmp_path / "defs", files))
    rows = [("2024-01-05", 7.5), ("2024-02-05", -7.5)]
    for engine in ENGINES:
        (tmp_path / engine).mkdir()
        url = engine_url(engine, tmp_path / engine, {"t": ("day DATE, x DOUBLE", rows)})
        with kpiengine.connect(url) as connection:
            result = project.run(["rest"], connection, start="2024-01-01", end="2024-03-01")
        assert [r.value for r in result.rows] == [1.5, -1.5], engine


def test_password_is_not_printed():
    from kpiengine.cli import _without_password

    assert _without_password("postgresql://kpi:s3cr3t@127.0.0.1:5432/db") == (
        "postgresql://kpi:***@127.0.0.1:5432/db"
    )
    assert _without_password("duckdb:///w.duckdb") == "duckdb:///w.duckdb"
