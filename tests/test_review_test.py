"""``kpi test`` (SPEC §13.9): the catalog's example tests pass on every engine, mismatches
come out as a table, and bad test files are positioned diagnostics."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kpiengine.cli import main
from tests import engines

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "definitions"


def kpi(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out + err


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the catalog without its tests, for tests of our own."""
    root = tmp_path / "proj"
    shutil.copytree(CATALOG, root, ignore=shutil.ignore_patterns("tests"))
    (root / "tests").mkdir()
    return root


def write(root: Path, name: str, text: str) -> Path:
    path = root / "tests" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_examples_pass_on_duckdb(capsys):
    code, out = kpi(capsys, "test", str(CATALOG))
    assert code == 0, out
    count = len(list((CATALOG / "tests").glob("*.yaml")))
    assert count >= 12
    assert f"{count} tests on duckdb: {count} passed" in out


def test_catalog_examples_pass_on_sqlite(capsys):
    code, out = kpi(capsys, "test", str(CATALOG), "--connector", "sqlite://")
    assert code == 0, out
    assert "on sqlite" in out and "failed" not in out


@pytest.mark.slow
def test_catalog_examples_pass_on_postgres(capsys):
    engine = engines.ENGINES["postgres"]
    engines.require(engine)
    url = engines.postgres_admin_url()
    assert url is not None
    code, out = kpi(capsys, "test", str(CATALOG / "tests" / "win_rate.yaml"), "--connector", url)
    assert code == 0, out
    # the scratch schema is gone afterwards
    import psycopg
    from kpiengine_postgres.connection import split_url

    with psycopg.connect(split_url(url)[0]) as connection:
        left = connection.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'kpi_test_%'"
        ).fetchone()
    assert left == (0,)


def test_test_files_are_not_definitions(capsys):
    """The project loader skips files with a top-level `test:`: the catalog validates."""
    code, out = kpi(capsys, "validate", str(CATALOG))
    assert code == 0, out


MISMATCH = """\
test: wrong_on_purpose
given:
  opportunities:
    - {opportunity_id: 1, region: emea, stage: won, amount: 10, closed_at: 2024-01-05}
run: {grain: month, from: 2024-01-01, to: 2024-03-01, by: [region]}
expect:
  - {period: 2024-01-01, region: emea, win_rate: 0.5, revenue: 10}
  - {period: 2024-02-01, region: apac, win_rate: 0.5}
"""


@pytest.mark.parametrize("connector", [None, "sqlite://"])
def test_mismatches_are_a_table(project, capsys, connector):
    write(project, "wrong.yaml", MISMATCH)
    extra = ["--connector", connector] if connector else []
    code, out = kpi(capsys, "test", str(project), *extra)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("FAIL  wrong_on_purpose")
    assert lines[1].split() == ["at", "period", "region", "kpi", "expected", "actual"]
    assert lines[2].split() == ["line", "7", "2024-01-01", "emea", "win_rate", "0.5", "1"]
    assert "(no such row)" in lines[3]
    assert "1 failed" in lines[-1]


def test_json_and_junit(project, capsys):
    write(project, "wrong.yaml", MISMATCH)
    shutil.copy(CATALOG / "tests" / "win_rate.yaml", project / "tests" / "ok.yaml")
    code, out = kpi(capsys, "test", str(project), "--format", "json")
    assert code == 1
    document = json.loads(out)
    assert (document["passed"], document["failed"], document["errors"]) == (1, 1, 0)
    wrong = next(t for t in document["tests"] if t["name"] == "wrong_on_purpose")
    assert wrong["mismatches"][0]["expected"] == 0.5
    assert wrong["mismatches"][0]["actual"] == 1.0
    assert wrong["mismatches"][1]["missing_row"] is True
    code, out = kpi(capsys, "test", str(project), "--format", "junit")
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("tests") == "2"


BAD = """\
test: bad_fixture
given:
  opportunities:
    - {opportunity_id: 1, region: emea, stage: won, amount: "lots", closed_at: 2024-01-05}
    - {opportunity_id: 2, regoin: emea, closed_at: yesterday}
  opportunitys: []
run: {grain: month, from: 2024-01-01, to: 2024-02-01, byy: [region]}
expect:
  - {period: 2024-01-01, win_rat: 0.5, revenue: "10"}
"""


def test_bad_test_file_gives_positioned_diagnostics(project, capsys):
    write(project, "bad.yaml", BAD)
    code, out = kpi(capsys, "test", str(project))
    assert code == 1
    file = str(project / "tests" / "bad.yaml")
    for where, code_ in [
        ("4:61", "KPI305"),  # a string in a number column
        ("5:27", "KPI301"),  # an unknown column
        ("5:52", "KPI305"),  # not a timestamp
        ("6:3", "KPI311"),  # an unknown source
        ("7:55", "KPI104"),  # an unknown run option
        ("9:26", "KPI302"),  # an unknown KPI
        ("9:49", "KPI305"),  # an expected value that is not a number
    ]:
        assert f"{file}:{where}: {code_}" in out, (where, out)
    assert "did you mean `region`?" in out and "did you mean `win_rate`?" in out


def test_dimension_a_kpi_cannot_use_is_reported_at_the_test(project, capsys):
    write(
        project,
        "dim.yaml",
        "test: by_unknown\nrun: {by: [planet]}\nexpect:\n  - {period: 2024-01-01, revenue: 1}\n",
    )
    code, out = kpi(capsys, "test", str(project))
    assert code == 1 and "ERROR  by_unknown" in out and "planet" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("test: x\nexpect: []\n", "`expect:` is a list"),
        ("test: x\nrun: {grain: fortnight}\nexpect:\n  - {revenue: 1}\n", "unknown grain"),
        ("test: x\nexpect:\n  - {revenue: 1}\n", "needs `period:`"),
        (
            "test: x\nrun: {from: 2024-13-01}\nexpect:\n  - {period: 2024-01-01, revenue: 1}\n",
            "is not a date",
        ),
        ("test: [x\n", "KPI101"),
    ],
)
def test_more_bad_inputs(project, capsys, text, message):
    write(project, "bad.yaml", text)
    code, out = kpi(capsys, "test", str(project))
    assert code == 1 and message in out, out


def test_fixture_rows_are_bounded(project, capsys, monkeypatch):
    from kpiengine.review import case_files

    monkeypatch.setattr(case_files, "MAX_FIXTURE_ROWS", 3)
    rows = "".join(f"    - {{opportunity_id: {i}}}\n" for i in range(5))
    write(
        project,
        "big.yaml",
        f"test: big\ngiven:\n  opportunities:\n{rows}"
        "expect:\n  - {period: 2024-01-01, revenue: 1}\n",
    )
    code, out = kpi(capsys, "test", str(project))
    assert code == 1 and "more than 3 fixture rows" in out


def test_test_file_outside_the_project_is_not_read(project, tmp_path, capsys):
    outside = tmp_path / "outside.yaml"
    outside.write_text("test: x\nexpect:\n  - {period: 2024-01-01, revenue: 1}\n")
    (project / "tests" / "link.yaml").symlink_to(outside)
    code, out = kpi(capsys, "test", str(project))
    assert code == 1 and "outside the project folder" in out


def test_no_tests_is_a_usage_error(project, capsys):
    code, out = kpi(capsys, "test", str(project))
    assert code == 2 and "no test files" in out


def test_unsupported_connector_is_a_usage_error(project, capsys):
    shutil.copy(CATALOG / "tests" / "win_rate.yaml", project / "tests" / "ok.yaml")
    code, out = kpi(capsys, "test", str(project), "--connector", "spark://local[1]")
    assert code == 2 and "DuckDB, SQLite or PostgreSQL" in out


def test_scratch_database_is_read_only_once_loaded(project):
    """The run goes through the ordinary read-only connection: no statement but a query."""
    from kpiengine import api
    from kpiengine.errors import EngineError
    from kpiengine.review.scratch import scratch_database

    model = api.load(project).model
    for url in (None, "sqlite://"):
        with scratch_database(model, {}, url) as connection:
            with pytest.raises(EngineError):
                connection.execute("DROP TABLE opportunities")
            assert connection.execute("SELECT count(*) FROM opportunities")[1] == [(0,)]


# -- PostgreSQL: bad inputs ---------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgres_is_an_engine_error(capsys):
    """No server needed: nothing listens on the port; exit 3, the address named, no password."""
    pytest.importorskip("kpiengine_postgres")
    port = _closed_port()
    url = f"postgresql://kpi:s3cret@127.0.0.1:{port}/warehouse?connect_timeout=2"
    code, out = kpi(capsys, "test", str(CATALOG / "tests" / "win_rate.yaml"), "--connector", url)
    assert code == 3, out
    assert "engine error" in out and f"127.0.0.1:{port}" in out and "refused" in out.lower()
    assert "s3cret" not in out


@pytest.mark.slow
def test_postgres_role_without_create_is_a_clear_error(capsys):
    """The reader role may not create a schema: `kpi test` says so and which role it needs;
    nothing is left behind."""
    engines.require(engines.ENGINES["postgres"])
    reader = engines.postgres_database()  # a new database; the reader role has no CREATE
    code, out = kpi(capsys, "test", str(CATALOG / "tests" / "win_rate.yaml"), "--connector", reader)
    assert code == 3, out
    assert "cannot create the scratch schema" in out
    assert "role that may create a schema" in out
    import psycopg

    with psycopg.connect(engines._libpq(engines.as_admin(reader))) as connection:
        left = connection.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'kpi_test_%'"
        ).fetchone()
    assert left == (0,)
