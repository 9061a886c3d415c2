"""The kit as a pytest base class: subclass it and pytest runs every check on your engine.

This is the only module of :mod:`kpiengine.testing` that imports pytest (at its top, as a
pytest plugin module does): :mod:`kpiengine.testing` loads it only when
``ConnectorConformance`` is asked for, so ``run_conformance`` works where pytest is not
installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kpiengine.testing.cases import CASES, Case
from kpiengine.testing.dataset import DATASET, Dataset
from kpiengine.testing.kit import (
    case_problems,
    contract_problems,
    load_projects,
    read_only_problems,
)

__all__ = ["ConnectorConformance"]


@dataclass
class _Loaded:
    url: str
    workdir: Path
    connection: Any
    projects: dict[int, Any] = field(default_factory=dict)


class ConnectorConformance:
    """Subclass as ``TestSomething(ConnectorConformance)`` and implement
    :meth:`load_dataset`; pytest then runs every case and contract check against your
    connector. The dataset is loaded once per class."""

    #: Schema (or database) the tables live in, when your engine needs one: the kit's
    #: definitions then say ``table: <schema>.deals``.
    schema: str | None = None
    #: Case id → why it fails on this engine for now. Such a case is expected to fail
    #: (strict xfail): once it passes, the test fails until the entry is removed.
    known_failures: Mapping[str, str] = {}
    #: Plugin modules to load, as ``--plugin`` does: a connector or dialect that is not
    #: installed (e.g. tested from its source tree).
    plugins: Sequence[str] = ()

    def load_dataset(self, dataset: Dataset, workdir: Path) -> str:
        """Create ``dataset.tables`` in your engine and return a connector URL for them.

        ``workdir`` is an empty temporary folder (for database files, Parquet files...).
        """
        raise NotImplementedError("implement load_dataset() in your conformance test class")

    def open(self, url: str) -> Any:
        """Open a connection; by default through the installed plugins and
        :attr:`plugins`, as users do."""
        from kpiengine.plugins.manager import PluginHost

        return PluginHost(self.plugins).connect(url)

    @pytest.fixture(scope="class")
    @classmethod
    def conformance(cls, tmp_path_factory: pytest.TempPathFactory) -> Any:
        kit = cls()
        workdir = tmp_path_factory.mktemp("kpi-conformance")
        url = kit.load_dataset(DATASET, workdir)
        connection = kit.open(url)
        projects = load_projects(workdir, cls.schema, cls.plugins)
        loaded = _Loaded(url, workdir, connection, projects)
        yield loaded
        connection.close()

    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    def test_kpis(self, conformance: _Loaded, case: Case, request: pytest.FixtureRequest) -> None:
        if case.id in self.known_failures:
            reason = self.known_failures[case.id]
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
        project = conformance.projects[case.fiscal_year_start]
        problems = case_problems(project, conformance.connection, case)
        assert not problems, "\n".join(problems)

    def test_connection_contract(self, conformance: _Loaded) -> None:
        problems = contract_problems(conformance.connection, conformance.projects[1], self.schema)
        assert not problems, "\n".join(problems)

    def test_read_only(self, conformance: _Loaded) -> None:
        problems = read_only_problems(
            conformance.connection, self.schema, watch=[conformance.workdir]
        )
        assert not problems, "\n".join(problems)

    def test_close(self, conformance: _Loaded) -> None:
        """A second connection opens, works in ``with`` and closes; the first still works."""
        with self.open(conformance.url) as other:
            assert [tuple(r) for r in other.execute("SELECT 2 AS two")[1]] == [(2,)]
        _, rows = conformance.connection.execute("SELECT 3 AS three")
        assert [tuple(r) for r in rows] == [(3,)], "closing one connection broke another"
