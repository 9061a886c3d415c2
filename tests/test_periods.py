"""Period arithmetic in Python (spine, look-back) agrees with the SQL bucketing, per engine."""

from __future__ import annotations

import datetime as dt
import sqlite3

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from kpiengine.compile.dialects import rules_for
from kpiengine.plan.periods import add_periods, period_start, spine


def test_period_start_examples():
    day = dt.date(2024, 3, 20)  # a Wednesday
    assert period_start(day, "day") == day
    assert period_start(day, "week") == dt.date(2024, 3, 18)
    assert period_start(day, "week", week_start="sunday") == dt.date(2024, 3, 17)
    assert period_start(day, "month") == dt.date(2024, 3, 1)
    assert period_start(day, "quarter") == dt.date(2024, 1, 1)
    assert period_start(day, "year") == dt.date(2024, 1, 1)
    assert period_start(day, "quarter", fiscal_year_start=2) == dt.date(2024, 2, 1)
    assert period_start(day, "year", fiscal_year_start=4) == dt.date(2023, 4, 1)
    assert period_start(dt.date(2024, 1, 31), "quarter", fiscal_year_start=11) == dt.date(
        2023, 11, 1
    )


def test_add_periods_and_spine():
    assert add_periods(dt.date(2024, 11, 1), "quarter", 1) == dt.date(2025, 2, 1)
    assert add_periods(dt.date(2024, 1, 1), "month", -13) == dt.date(2022, 12, 1)
    assert spine(dt.date(2024, 1, 15), dt.date(2024, 4, 1), "month") == [
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
        dt.date(2024, 3, 1),
    ]
    assert spine(dt.date(2024, 1, 1), dt.date(2024, 1, 1), "month") == []


GRAIN_CASES = [
    ("day", 1, "monday"),
    ("week", 1, "monday"),
    ("week", 1, "sunday"),
    ("month", 1, "monday"),
    ("quarter", 1, "monday"),
    ("quarter", 2, "monday"),
    ("quarter", 11, "monday"),
    ("year", 1, "monday"),
    ("year", 7, "monday"),
]
moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2060, 12, 31))


def _bucket_sql(dialect: str, moment: dt.datetime, grain: str, fiscal: int, week: str) -> str:
    rules = rules_for(dialect)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    value = (
        exp.Literal.string(text)
        if dialect == "sqlite"
        else exp.Cast(this=exp.Literal.string(text), to=exp.DataType.build("TIMESTAMP"))
    )
    return exp.select(rules.bucket(value, grain, fiscal, week)).sql(dialect=dialect)


@pytest.mark.parametrize(("grain", "fiscal", "week"), GRAIN_CASES)
@settings(max_examples=40, deadline=None)
@given(moment=moments)
def test_duckdb_bucket_matches_python(grain, fiscal, week, moment):
    got = duckdb.execute(_bucket_sql("duckdb", moment, grain, fiscal, week)).fetchall()[0][0]
    assert got == period_start(moment.date(), grain, fiscal, week)


@pytest.mark.parametrize(("grain", "fiscal", "week"), GRAIN_CASES)
@settings(max_examples=40, deadline=None)
@given(moment=moments)
def test_sqlite_bucket_matches_python(grain, fiscal, week, moment):
    with sqlite3.connect(":memory:") as connection:
        got = connection.execute(_bucket_sql("sqlite", moment, grain, fiscal, week)).fetchone()
    assert dt.date.fromisoformat(got[0]) == period_start(moment.date(), grain, fiscal, week)
