"""Execute stage: run a plan's one statement on a connection and shape the rows.

When the request has no ``--from``/``--to``, the run first asks the engine for the time
range of the data (a small min/max query), so that the period spine is complete; the
KPIs themselves are still computed by one statement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kpiengine.execute.connectors import Connection
from kpiengine.execute.result import Result, ResultRow
from kpiengine.plan.periods import DateOutOfRange, add_periods, period_start
from kpiengine.plan.planner import Plan, RunRequest, data_range_needed, with_range

if TYPE_CHECKING:
    from kpiengine.compile.dialects import DialectRules
    from kpiengine.plugins.manager import PluginHost


def run(plan: Plan, connection: Connection, host: PluginHost | None = None) -> Result:
    """Compute ``plan`` on ``connection``: the plan is built once, by the caller; when it
    lacks a range, the data's range completes it (:func:`~kpiengine.plan.planner.with_range`)
    rather than a second plan being built. The connection's dialect is looked up in
    ``host`` (the project's plugins; by default the process's).

    Both statements come from :mod:`kpiengine.cache` when a previous process compiled
    them for the same definitions and request: then sqlglot is not even imported."""
    from kpiengine import cache

    rules = _Rules(connection.dialect, host)
    if data_range_needed(plan):
        with running(connection):
            plan = with_range(plan, _with_data_range(plan, connection, rules))
    sql = _compiled(plan, rules) if cache.usable(host) else _compile(plan, rules)
    with running(connection):
        columns, rows = connection.execute(sql)
    return _assemble(plan, columns, rows, sql)


class _Rules:
    """A dialect's rules, looked up (importing sqlglot) only when a statement is compiled."""

    def __init__(self, dialect: str, host: PluginHost | None) -> None:
        self.dialect = dialect
        self.host = host
        self._rules: DialectRules | None = None

    def get(self) -> DialectRules:
        if self._rules is None:
            from kpiengine.compile.dialects import rules_for

            self._rules = rules_for(self.dialect, self.host)
        return self._rules


def _compile(plan: Plan, rules: _Rules) -> str:
    from kpiengine.compile.statement import compile_plan

    return compile_plan(plan, rules.get())


def _compiled(plan: Plan, rules: _Rules) -> str:
    from kpiengine import cache

    return cache.statement(plan, rules.dialect, "statement", lambda: _compile(plan, rules))


_running: list[Connection] = []  # connections executing a statement now
_running_lock = threading.Lock()


@contextmanager
def running(connection: Connection) -> Iterator[None]:
    """Mark ``connection`` as executing, so that :func:`interrupt_running` can stop it."""
    with _running_lock:
        _running.append(connection)
    try:
        yield
    finally:
        with _running_lock:
            _running.remove(connection)


def interrupt_running() -> None:
    """Ask every connection executing a statement to stop, from any thread (the CLI's
    Ctrl-C watcher). An engine busy in native code does not see Python's KeyboardInterrupt
    until its statement ends, which can be minutes; ``interrupt()`` (DuckDB, SQLite) stops
    it now. Connections without ``interrupt()`` finish their statement."""
    with _running_lock:
        connections = list(_running)
    for connection in connections:
        stop = getattr(connection, "interrupt", None)
        if stop is None:
            continue
        try:
            stop()
        except Exception:  # closed meanwhile, or the engine refuses: no matter
            continue


def _range_sql(plan: Plan, rules: _Rules) -> str:
    """One row: the earliest and latest time of each scan's table."""
    from sqlglot import exp

    from kpiengine.compile.dialects import column_ref, table_ref

    selects = []
    for scan in plan.scans:
        table = table_ref(scan.source.table, "t")
        column = column_ref(scan.time, "t")
        selects.append(exp.select(exp.Min(this=column)).from_(table.copy()).subquery())
        selects.append(exp.select(exp.Max(this=column)).from_(table.copy()).subquery())
    return exp.select(*selects).sql(dialect=rules.get().sqlglot)


def _with_data_range(plan: Plan, connection: Connection, rules: _Rules) -> RunRequest:
    """Fill a missing start or end from the earliest and latest times in the data, and
    the first period with data for KPIs that read all history (``cumulative_sum``)."""
    from kpiengine import cache

    request = plan.request
    earliest: dt.date | None = None
    latest: dt.date | None = None
    if plan.scans:
        if cache.usable(rules.host):
            sql = cache.statement(plan, rules.dialect, "range", lambda: _range_sql(plan, rules))
        else:
            sql = _range_sql(plan, rules)
        _, rows = connection.execute(sql)
        values = [_to_date(v) for v in rows[0]]
        starts = [v for v in values[0::2] if v is not None]
        ends = [v for v in values[1::2] if v is not None]
        earliest = min(starts) if starts else None
        latest = max(ends) if ends else None
    project = plan.project
    calendar = project.fiscal_year_start, project.week_start
    retail = project.retail_calendar
    first_data = None
    if earliest is not None:
        first_data = period_start(earliest, request.grain, *calendar, retail=retail)
    start = request.start or first_data or dt.date.today()
    if request.end is not None:
        end = request.end
    elif latest is not None:
        last = period_start(latest, request.grain, *calendar, retail=retail)
        try:
            end = add_periods(last, request.grain, 1, retail=retail)
        except DateOutOfRange:  # data up to the calendar's end (a 9999-12-31 sentinel)
            end = dt.date.max
    else:
        end = start
    if end <= start:  # no data in range: an empty spine
        end = start
    history = min(first_data, start) if first_data is not None else start
    return dataclasses.replace(request, start=start, end=max(end, start), history_start=history)


def _assemble(plan: Plan, columns: list[str], rows: list[tuple[Any, ...]], sql: str) -> Result:
    request = plan.request
    index = {name: i for i, name in enumerate(columns)}
    flag_index = {flag.alias: index.get(flag.alias) for flag in plan.flags}
    dim_index = [index[f"d{i}"] for i in range(len(request.by))]
    period_index = index.get("period")
    result_rows: list[ResultRow] = []
    ordered = sorted(rows, key=lambda row: _sort_key(row, period_index, dim_index))
    for name in plan.outputs:
        column = plan.columns[name]
        value_index = index[column.alias]
        flags = [flag_index[f] for f in column.flags]
        for row in ordered:
            if dim_index and flags and not any(row[f] for f in flags if f is not None):
                continue  # this KPI's rows (after its filter) never had these values
            period = _to_date(row[period_index]) if period_index is not None else None
            dimensions = tuple((d, row[i]) for d, i in zip(request.by, dim_index, strict=True))
            result_rows.append(ResultRow(period, name, _number(row[value_index]), dimensions))
    retail = plan.project.retail_calendar
    return Result(
        request.grain,
        request.start,
        request.end,
        request.by,
        result_rows,
        [],
        sql,
        retail_calendar=retail,
    )


def _sort_key(
    row: tuple[Any, ...], period_index: int | None, dim_index: list[int]
) -> tuple[Any, ...]:
    key: list[Any] = []
    if period_index is not None:
        key.append(str(row[period_index]))
    for i in dim_index:
        value = row[i]
        key.append((value is None, "" if value is None else str(value)))
    return tuple(key)


def _number(value: Any) -> int | float | None:
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and _exponent(value) >= 0
            else float(value)
        )
    if isinstance(value, bool):
        return int(value)
    return float(value)


def _exponent(value: Decimal) -> int:
    """A decimal's exponent; an infinity's is a letter, which no number compares with."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise TypeError(f"'>=' not supported between instances of 'str' and 'int' ({value})")
    return exponent


def _to_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
