"""Cross-engine equivalence: the same definitions give the same numbers on every engine.

The sample dataset (small, fixed seed) is loaded once per session into every engine of
tests/engines.py. The whole bundled catalog is run at month and quarter grain over a
fixed range, without a dimension and by region (for the KPIs that can be grouped by it),
and every value is compared with DuckDB's: relative 1e-9, nulls equal, the same rows.
The number of values compared is printed at the end of the session and written to
engine_equivalence.json in the run's test output folder (conftest.py's ``run_output``:
$KPI_TEST_OUTPUT, or pytest's temporary folder; the path is printed).

The hand-computed cases of test_semantics.py run here too on every engine that
conftest.py does not already cover (PostgreSQL, Spark).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import kpiengine
from kpiengine.errors import DefinitionError
from kpiengine.testing import compare
from tests import test_semantics
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, write_files
from tests.engines import ENGINES, ROOT, arrow_tables, engine_params, require, sample_tables

SAMPLE_ROWS = 2000
SAMPLE_SEED = 20240917
RANGE = {"start": "2025-01-01", "end": "2026-01-01"}
REFERENCE = "duckdb"
OUTPUT_NAME = "engine_equivalence.json"

_compared: dict[str, int] = {}
_types: dict[str, str] = {}


# -- sessions ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_data() -> dict[str, Any]:
    return sample_tables(SAMPLE_ROWS, SAMPLE_SEED)


@pytest.fixture(scope="session")
def sample_urls(
    sample_data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """engine → URL of the sample dataset, loaded on first use."""
    return _Loaded(sample_data, tmp_path_factory.mktemp("sample"))


class _Loaded(dict):  # type: ignore[type-arg]
    def __init__(self, tables: dict[str, Any], folder: Path) -> None:
        super().__init__()
        self.tables = tables
        self.folder = folder

    def __missing__(self, engine: str) -> str:
        url = ENGINES[engine].load(self.tables, self.folder / engine)
        self[engine] = url
        return url


@pytest.fixture(scope="session")
def catalog() -> kpiengine.KpiProject:
    return kpiengine.load(ROOT / "definitions")


@pytest.fixture(scope="session")
def reference_results(catalog, sample_urls) -> dict[tuple[str, str | None], dict]:
    """DuckDB's values per (grain, dimension), computed once."""
    return _Cache(catalog, sample_urls)


class _Cache(dict):  # type: ignore[type-arg]
    def __init__(self, catalog: Any, urls: dict[str, str]) -> None:
        super().__init__()
        self.catalog = catalog
        self.urls = urls

    def __missing__(self, key: tuple[str, str | None]) -> dict:
        value = run_catalog(self.catalog, self.urls[REFERENCE], *key)
        self[key] = value
        return value


@pytest.fixture(scope="session", autouse=True)
def _report_counts(request: pytest.FixtureRequest, run_output: Path):
    yield
    if not _compared:
        return
    total = sum(_compared.values())
    run_output.mkdir(parents=True, exist_ok=True)
    output = run_output / OUTPUT_NAME
    report = {"total": total, "by_case": _compared, "type_differences": _types}
    output.write_text(json.dumps(report, indent=2) + "\n")
    plugins = request.config.pluginmanager
    reporter = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        engines = sorted({case.split("/")[0] for case in _compared})
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nengine equivalence: {total} KPI values compared with {REFERENCE}"
                f" ({', '.join(engines)}; details in {output})"
            )


# -- running the catalog ----------------------------------------------------------------


def groupable(catalog: kpiengine.KpiProject, dimension: str) -> list[str]:
    """KPIs of the catalog that can be grouped by ``dimension`` (the others are a check
    error, KPI310, at that dimension)."""
    names = []
    for name in catalog.kpis:
        try:
            catalog.plan([name], grain="month", by=[dimension], **RANGE)
        except DefinitionError:
            continue
        names.append(name)
    return names


def run_catalog(
    catalog: kpiengine.KpiProject, url: str, grain: str, dimension: str | None
) -> dict[tuple[Any, ...], Any]:
    """(kpi, period, dimension value) → value, for every KPI that allows the dimension."""
    kpis = catalog.kpis if dimension is None else groupable(catalog, dimension)
    by = [] if dimension is None else [dimension]
    with kpiengine.connect(url) as connection:
        result = catalog.run(kpis, connection, grain=grain, by=by, **RANGE)
    values: dict[tuple[Any, ...], Any] = {}
    for row in result.rows:
        key = (row.kpi, row.period, *(v for _, v in row.dimensions))
        assert key not in values, f"duplicate row {key}"
        values[key] = row.value
    return values


def differences(got: dict, expected: dict) -> list[str]:
    return compare.differences(got, expected, reference=REFERENCE)


def type_differences(got: dict, expected: dict) -> dict[str, str]:
    """KPI → e.g. 'int != duckdb float': equal numbers of different Python types."""
    found: dict[str, str] = {}
    for key in expected.keys() & got.keys():
        a, b = got[key], expected[key]
        if a is not None and b is not None and type(a) is not type(b):
            found[key[0]] = f"{type(a).__name__} != {REFERENCE} {type(b).__name__}"
    return found


OTHER_ENGINES = [p for p in engine_params() if p.id != REFERENCE]


@pytest.mark.parametrize("dimension", [None, "region"], ids=["total", "by-region"])
@pytest.mark.parametrize("grain", ["month", "quarter"])
@pytest.mark.parametrize("engine", OTHER_ENGINES)
def test_catalog_equal_across_engines(
    engine, grain, dimension, catalog, sample_urls, reference_results
):
    require(ENGINES[engine])
    assert catalog.kpis, "the catalog has no KPIs"
    expected = reference_results[(grain, dimension)]
    got = run_catalog(catalog, sample_urls[engine], grain, dimension)
    assert expected, "DuckDB computed nothing"
    problems = differences(got, expected)
    assert not problems, f"{len(problems)} differences on {engine}:\n" + "\n".join(problems[:40])
    _compared[f"{engine}/{grain}/{dimension or 'total'}"] = len(expected)
    _types.update({f"{engine}: {k}": v for k, v in type_differences(got, expected).items()})


def test_reference_catalog_has_values(catalog, reference_results):
    """The comparison is not vacuous: DuckDB gives non-null values for most KPIs."""
    values = reference_results[("month", None)]
    with_values = {kpi for (kpi, *_), v in values.items() if v not in (None, 0)}
    assert len(with_values) >= 0.8 * len(catalog.kpis), sorted(set(catalog.kpis) - with_values)


# -- the hand-computed cases of test_semantics.py on the server engines -----------------

SERVER_ENGINES = [p for p in engine_params() if p.id not in ("duckdb", "sqlite")]
_TINY = {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND}


@pytest.fixture(scope="session")
def tiny_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _Loaded(arrow_tables(_TINY), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(params=SERVER_ENGINES)
def sales(request: pytest.FixtureRequest, tmp_path: Path, tiny_urls) -> Any:
    """Overrides conftest's ``sales`` for the tests imported below."""
    require(ENGINES[request.param])
    project = kpiengine.load(write_files(tmp_path / "defs", SALES_FILES))
    connection = kpiengine.connect(tiny_urls[request.param])
    yield project, connection
    connection.close()


for _name in dir(test_semantics):
    if _name.startswith("test_"):
        globals()[f"{_name}"] = getattr(test_semantics, _name)
