"""Conformance kit for connector authors: same definitions, same numbers, on your engine.

A connector plugin passes when a fixed set of KPIs over a tiny fixed dataset gives the
numbers written below — worked out by hand from the rows, not computed by kpiengine — and
when its connection keeps the contract (``dialect``, ``execute``, ``columns``, ``close``,
read-only). Every aggregate, ``where``, ``filter``, the null rules, each grain with an
empty period, a fiscal quarter, a join dimension, ``--where``, derived KPIs, the time
functions and ``semi_additive`` snapshots are covered.

Use it from pytest (the class is not collected itself: its name does not start with
``Test``)::

    from kpiengine.testing import ConnectorConformance, Dataset

    class TestMyDbConformance(ConnectorConformance):
        def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
            # create dataset.tables in your engine; return a connector URL for it
            ...
            return "mydb://localhost/kit"

Or without pytest: ``problems = run_conformance(url, workdir)`` after loading
:data:`DATASET`.

The package, by what each module holds (only ``pytest_kit`` imports pytest, and it is
imported only when ``ConnectorConformance`` is asked for)::

    dataset.py    the tables (DATASET) and their definition files; the small sales
                  project the test suite and the benchmarks share (SALES_FILES)
    cases.py      the cases and their hand-computed numbers (CASES)
    kit.py        the checks as functions returning problems; run_conformance
    pytest_kit.py the pytest base class ConnectorConformance

Dataset (closed_at decides the period; ``d8`` is still open, so it is in no period when a
range is given)::

    id  account region stage amount seats is_new created_at        closed_at
    d1  a1      north  won     100    1   true   2024-01-01 08:00  2024-01-05 10:00
    d2  a2      north  lost     40    2   false  2024-01-03 00:00  2024-01-20 23:30
    d3  a1      south  won     250    5   false  2024-01-10 00:00  2024-02-14 09:00
    d4  a3      south  won    null    3   true   2024-02-01 00:00  2024-02-28 12:00
    d5  a2      null   won      60    1   true   2024-02-10 00:00  2024-04-02 00:00
    d6  a4      north  lost     10    4   null   2024-03-01 00:00  2024-04-15 00:00
    d7  a3      south  won     100    2   false  2024-03-20 00:00  2024-04-30 23:59:59
    d8  a1      north  open    500   10   true   2024-04-01 00:00  null

    accounts: a1 smb, a2 enterprise, a3 mid_market (a4 has no account row)
    balances (snapshot_date, account, region, mrr): 2024-01-01 a1 north 10, a2 north 20;
      2024-01-31 a1 north 15, a2 north 20, a3 south 5; 2024-02-29 a1 north 15, a3 south 7;
      2024-04-30 a1 north 30, a3 south 8, a4 north null
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kpiengine.testing.cases import CASES, Case
from kpiengine.testing.dataset import (
    DATASET,
    SQL_TYPES,
    Dataset,
    Table,
    project_files,
    write_project,
)
from kpiengine.testing.kit import (
    CANARY,
    PROBES,
    Probe,
    case_problems,
    contract_problems,
    read_only_problems,
    run_conformance,
)

if TYPE_CHECKING:
    from kpiengine.testing.pytest_kit import ConnectorConformance

__all__ = [
    "CANARY",
    "CASES",
    "DATASET",
    "PROBES",
    "SQL_TYPES",
    "Case",
    "ConnectorConformance",
    "Dataset",
    "Probe",
    "Table",
    "case_problems",
    "contract_problems",
    "project_files",
    "read_only_problems",
    "run_conformance",
    "write_project",
]


def __getattr__(name: str) -> Any:
    """``ConnectorConformance`` on first use: only that class needs pytest, so importing
    the kit (or running :func:`run_conformance`) works where pytest is not installed."""
    if name == "ConnectorConformance":
        from kpiengine.testing.pytest_kit import ConnectorConformance

        return ConnectorConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
