"""``round(x, n)`` gives DuckDB's number on SQLite, PostgreSQL and Spark, value for value.

DuckDB 2.0.1 rounds a DOUBLE by its exact binary value, halves away from zero
(round(2.675, 2) is 2.67: 2.675 is 2.67499999…; round(0.125, 2) is 0.13; round(1250, -2)
is 1300). kpiengine/compile/dialects/rounding.py rebuilds that in plain double arithmetic
for the engines whose own ROUND differs; ``reference_round`` is the same rule in Python.

- the rule in Python is DuckDB's, on random doubles (hypothesis) and decimal ties;
- the SQLite SQL, run in this process, is DuckDB's (hypothesis);
- on PostgreSQL and Spark (slow: servers, a JVM) and ClickHouse (chDB, in this process;
  its plugin's own rule), 3 000 values and digits -3..6 in one statement each, every value
  compared with DuckDB's (exactly, not within 1e-9).
"""

from __future__ import annotations

import functools
import math
import random
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import kpiengine
from kpiengine.compile.dialects import rules_for
from kpiengine.compile.dialects.rounding import reference_round
from kpiengine.language.functions import BUILTIN_FUNCTIONS
from tests.engines import ENGINES, engine_params, require

DIGITS = tuple(range(-3, 7))
_ROUND = next(f for f in BUILTIN_FUNCTIONS if f.name == "round")

#: any double a KPI could hold (past ±1e300, x * 10^n overflows PostgreSQL's float8)
doubles = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)
#: decimal ties: 2.675, -0.125, 20951.55 (most are not ties in binary)
decimal_ties = st.builds(
    lambda whole, places, sign: sign * float(f"{whole}5e-{places}"),
    st.integers(0, 10**9),
    st.integers(1, 9),
    st.sampled_from((1, -1)),
)
#: whole numbers with a tie at negative digits: 1250, -35
tens = st.builds(lambda k: float(k * 5), st.integers(-(10**12), 10**12))
values = st.one_of(doubles, decimal_ties, tens)


def _digits_literal(digits: int) -> exp.Expression:
    literal = exp.Literal.number(abs(digits))
    return exp.Neg(this=literal) if digits < 0 else literal


@functools.cache
def round_query(dialect: str, digits: tuple[int, ...]) -> str:
    """``SELECT i, round(x, d0) AS r0, ... FROM t`` compiled as the compiler does: the
    function's SQL builder, then the dialect's rewrites, printed in its dialect."""
    rules = rules_for(dialect)
    columns = [
        exp.alias_(_ROUND.sql([exp.column("x"), _digits_literal(d)], rules.name), f"r{k}")
        for k, d in enumerate(digits)
    ]
    query = rules.finish(exp.select(exp.column("i"), *columns).from_("t"))
    return query.sql(dialect=rules.sqlglot)


def duckdb_round(xs: Sequence[float], digits: tuple[int, ...]) -> list[tuple[float, ...]]:
    """DuckDB's own ROUND of each value, per digits."""
    with duckdb.connect() as connection:
        connection.register("t", _table(xs))
        rows = connection.execute(round_query("duckdb", digits)).fetchall()
    return [tuple(row[1:]) for row in sorted(rows)]


def _table(xs: Sequence[float]) -> pa.Table:
    return pa.table({"i": pa.array(range(len(xs)), pa.int64()), "x": pa.array(xs, pa.float64())})


def _mismatches(
    xs: Sequence[float],
    digits: Sequence[int],
    got: list[tuple[float, ...]],
    want: list[tuple[float, ...]],
) -> list[str]:
    assert len(got) == len(want) == len(xs)
    return [
        f"round({x!r}, {d}): {g!r}, duckdb {w!r}"
        for x, g_row, w_row in zip(xs, got, want, strict=True)
        for d, g, w in zip(digits, g_row, w_row, strict=True)
        if g != w
    ]


# -- the rule is DuckDB's -------------------------------------------------------------


def test_examples_of_the_brief() -> None:
    cases = {
        (2.675, 2): 2.67,
        (0.125, 2): 0.13,
        (-0.125, 2): -0.13,
        (1250.0, -2): 1300.0,
        (1.005, 2): 1.0,
        (2.5, 0): 3.0,
        (-2.5, 0): -3.0,
        (0.49999999999999994, 0): 0.0,
        (-35.0, -1): -40.0,
    }
    for (x, digits), want in cases.items():
        assert reference_round(x, digits) == want, (x, digits)
        assert duckdb_round([x], (digits,)) == [(want,)], (x, digits)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=60))
def test_the_rule_is_duckdbs(xs: list[float]) -> None:
    want = duckdb_round(xs, DIGITS)
    got = [tuple(reference_round(x, d) for d in DIGITS) for x in xs]
    assert not _mismatches(xs, DIGITS, got, want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=60))
def test_the_rule_is_duckdbs_for_many_digits(xs: list[float]) -> None:
    """Up to ±30 digits: past 10^22, 10^n is not a double and DuckDB decides a half as
    with the next double above it (rounding.py ``_tie_factor``)."""
    digits = (-30, -23, -22, -12, 7, 9, 12, 15, 18, 22, 23, 25, 30)
    want = duckdb_round(xs, digits)
    got = [tuple(reference_round(x, d) for d in digits) for x in xs]
    assert not _mismatches(xs, digits, got, want)


# -- SQLite, in this process ----------------------------------------------------------


def sqlite_round(xs: Sequence[float], digits: tuple[int, ...]) -> list[tuple[float, ...]]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE TABLE t (i INTEGER, x REAL)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", enumerate(xs))
        rows = connection.execute(round_query("sqlite", digits)).fetchall()
    finally:
        connection.close()
    return [tuple(row[1:]) for row in sorted(rows)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=60))
def test_sqlite_gives_duckdbs_numbers(xs: list[float]) -> None:
    problems = _mismatches(xs, DIGITS, sqlite_round(xs, DIGITS), duckdb_round(xs, DIGITS))
    assert not problems, "\n".join(problems[:20])


def test_sqlite_own_round_differs_where_the_rule_matters() -> None:
    """Not vacuous: SQLite's ROUND gives other numbers on these (decimal text, +0.5,
    negative digits ignored), the rewritten SQL DuckDB's."""
    connection = sqlite3.connect(":memory:")
    plain = {
        (x, d): connection.execute("SELECT ROUND(?, ?)", (x, d)).fetchone()[0]
        for x, d in ((2.675, 2), (0.49999999999999994, 0), (1250.0, -2))
    }
    connection.close()
    assert plain == {(2.675, 2): 2.68, (0.49999999999999994, 0): 1.0, (1250.0, -2): 1250.0}
    for (x, d), wrong in plain.items():
        [(got,)] = sqlite_round([x], (d,))
        assert got == reference_round(x, d) != wrong


def test_sqlite_rounds_integers_and_nulls() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (i INTEGER, x)")
    connection.executemany("INSERT INTO t VALUES (?, ?)", [(0, 1250), (1, None), (2, -35)])
    rows = sorted(connection.execute(round_query("sqlite", (-2, -1, 0, 2))).fetchall())
    connection.close()
    assert rows == [
        (0, 1300.0, 1250.0, 1250.0, 1250.0),
        (1, None, None, None, None),
        (2, -0.0, -40.0, -35.0, -35.0),
    ]


# -- PostgreSQL and Spark -------------------------------------------------------------


def sample_values(count: int, seed: int) -> list[float]:
    """Decimal ties, exact halves, wholes, and doubles of every size (deterministic)."""
    rng = random.Random(seed)
    found: list[float] = [2.675, 1.005, 0.285, 0.125, -0.125, 2.5, -2.5, 0.5, 1250.0, -35.0]
    found += [0.49999999999999994, 4503599627370495.5, 4069837628544102.0, 1e-310, 0.0]
    while len(found) < count:
        kind = rng.randrange(5)
        if kind == 0:
            value = float(f"{rng.randrange(10**8)}5e-{rng.randint(1, 8)}")
        elif kind == 1:
            value = rng.randrange(-(10**9), 10**9) / 8
        elif kind == 2:
            value = rng.uniform(-1e6, 1e6)
        elif kind == 3:
            value = 10 ** rng.uniform(-10, 18)
        else:
            value = float(rng.randrange(-(10**6), 10**6) * 5)
        found.append(value if rng.random() < 0.5 else -value)
    return found


ENGINE_VALUES = sample_values(3000, seed=12)


@pytest.mark.parametrize("engine", engine_params(["postgres", "spark"]))
def test_engine_gives_duckdbs_numbers(engine: str, tmp_path: Path) -> None:
    require(ENGINES[engine])
    url = ENGINES[engine].load({"t": _table(ENGINE_VALUES)}, tmp_path / engine)
    with kpiengine.connect(url) as connection:
        _, rows = connection.execute(round_query(engine, DIGITS))
    got = [tuple(row[1:]) for row in sorted(rows)]
    want = duckdb_round(ENGINE_VALUES, DIGITS)
    problems = _mismatches(ENGINE_VALUES, DIGITS, got, want)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])
    assert sum(1 for row in want for v in row if not math.isnan(v)) == 3000 * len(DIGITS)


def test_clickhouse_gives_duckdbs_numbers(tmp_path: Path) -> None:
    """The ClickHouse plugin's own ROUND rule (plugins/clickhouse), on the same values."""
    pytest.importorskip("chdb")
    pytest.importorskip("kpiengine_clickhouse")
    import pyarrow.parquet as pq

    folder = tmp_path / "parquet"
    folder.mkdir()
    pq.write_table(_table(ENGINE_VALUES), folder / "t.parquet")
    with kpiengine.connect(f"chdb:///{folder}") as connection:
        _, rows = connection.execute(round_query("clickhouse", DIGITS))
    got = [tuple(row[1:]) for row in sorted(rows)]
    problems = _mismatches(ENGINE_VALUES, DIGITS, got, duckdb_round(ENGINE_VALUES, DIGITS))
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:20])
