"""A range starting inside a period (docs/semantics.md, "Unaligned from"), and the note
`kpi compile`/`kpi explain` print without a range (issue 15, "the first hour").

Tiny data, month grain, ``--from 2024-03-15``: amounts 1 on Feb 10, 10 on Mar 2 (before
``from``), 100 on Mar 20, 1000 on Apr 5. March's own value keeps the rows in
``[from, to)`` (decisions.md #4): revenue 100, one order. Time functions read whole
periods, the rows of March before ``from`` included: cumulative revenue is 1 + 10 + 100 =
111 at March and 1 111 at April (1 101 before the fix dropped March 2), the same as with
``--from 2024-03-01``.
"""

from __future__ import annotations

import pytest

from tests.conftest import ENGINES, engine_url, write_files

FILES = {
    "sources.yaml": """
        source: orders
        table: orders
        time: ordered_at
        columns:
          order_id: integer
          region: string
          amount: number
          ordered_at: timestamp
        """,
    "kpis.yaml": """
        kpis:
          - kpi: revenue
            source: orders
            expression: sum(amount)
          - kpi: orders
            source: orders
            expression: count()
          - kpi: revenue_cumulative
            expression: cumulative_sum(revenue)
          - kpi: revenue_before
            expression: previous(revenue)
          - kpi: revenue_growth
            expression: growth(revenue)
          - kpi: revenue_rolling
            expression: rolling_sum(revenue, 2)
          - kpi: busy_streak
            expression: streak(orders >= 2)
          - kpi: share_of_total
            expression: revenue / cumulative_sum(revenue)
        """,
}
ROWS = [
    (1, "emea", 1.0, "2024-02-10 09:00:00"),
    (2, "emea", 10.0, "2024-03-02 09:00:00"),
    (3, "emea", 100.0, "2024-03-20 09:00:00"),
    (4, "emea", 1000.0, "2024-04-05 09:00:00"),
]
TABLES = {"orders": ("order_id INTEGER, region VARCHAR, amount DOUBLE, ordered_at TIMESTAMP", ROWS)}
MID = {"grain": "month", "start": "2024-03-15", "end": "2024-05-01"}


@pytest.fixture(scope="module", params=sorted(ENGINES))
def env(request, tmp_path_factory):
    import kpiengine

    folder = tmp_path_factory.mktemp(request.param)
    project = kpiengine.load(write_files(folder / "defs", FILES))
    connection = kpiengine.connect(engine_url(request.param, folder, TABLES))
    yield project, connection
    connection.close()


def values(env, kpis: list[str], **options) -> dict[tuple[str, str], object]:
    project, connection = env
    result = project.run(kpis, connection, **{**MID, **options})
    return {(row.kpi, row.period.isoformat()): row.value for row in result.rows}


def test_cumulative_reads_the_first_period_before_from(env):
    got = values(env, ["revenue_cumulative"])
    assert got == {
        ("revenue_cumulative", "2024-03-01"): 111,
        ("revenue_cumulative", "2024-04-01"): 1111,
    }
    aligned = values(env, ["revenue_cumulative"], start="2024-03-01")
    assert aligned == got


def test_the_period_keeps_its_own_rows(env):
    alone = values(env, ["revenue", "orders"])
    together = values(env, ["revenue", "orders", "revenue_cumulative", "busy_streak"])
    expected = {
        ("revenue", "2024-03-01"): 100,
        ("revenue", "2024-04-01"): 1000,
        ("orders", "2024-03-01"): 1,
        ("orders", "2024-04-01"): 1,
    }
    assert alone == expected
    assert {k: v for k, v in together.items() if k in expected} == expected


def test_time_functions_read_whole_periods(env):
    got = values(
        env,
        ["revenue_before", "revenue_growth", "revenue_rolling", "busy_streak", "share_of_total"],
    )
    assert got[("revenue_before", "2024-03-01")] == 1  # February
    assert got[("revenue_before", "2024-04-01")] == 110  # the whole of March
    assert got[("revenue_growth", "2024-03-01")] == pytest.approx((110 - 1) / 1)
    assert got[("revenue_growth", "2024-04-01")] == pytest.approx((1000 - 110) / 110)
    assert got[("revenue_rolling", "2024-03-01")] == 111
    assert got[("revenue_rolling", "2024-04-01")] == 1110
    # two orders in the whole of March: the streak starts there; one in April ends it
    assert got[("busy_streak", "2024-03-01")] == 1
    assert got[("busy_streak", "2024-04-01")] == 0
    # a plain reference is March's own value, the window the whole history
    assert got[("share_of_total", "2024-03-01")] == pytest.approx(100 / 111)
    assert got[("share_of_total", "2024-04-01")] == pytest.approx(1000 / 1111)


NOTE = "no --from/--to: the period grid is the periods with data"


def test_compile_without_a_range_says_its_grid_is_the_data(env):
    project, _ = env
    assert "/*" not in project.compile(["revenue"], grain="month")  # plain SQL by default
    sql = project.compile(["revenue"], grain="month", note=True)
    assert sql.startswith(f"/* {NOTE}")
    assert sql.count("/*") == 1
    ranged = project.compile(
        ["revenue"], grain="month", start="2024-03-01", end="2024-05-01", note=True
    )
    assert "/*" not in ranged


def test_cli_compile_and_explain_print_the_note(tmp_path, capsys):
    from kpiengine.cli import main

    folder = str(write_files(tmp_path / "defs", FILES))
    for args in (["compile", "revenue"], ["explain", "revenue"]):
        assert main([*args, "--project", folder]) == 0
        assert NOTE in capsys.readouterr().out
