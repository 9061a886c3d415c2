"""``kpi diff`` (SPEC §13.9) on a real git repository with three commits: a reformatting
(no change reported), then a filter change (values move, downstream KPIs too), a new KPI
and a title change (metadata only); on DuckDB and SQLite; plus bad inputs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from kpiengine.cli import main

PROJECT = "connector: duckdb:///../warehouse.duckdb\nproject: shop\n"
SOURCE = """\
source: orders
table: orders
time: ordered_at
columns:
  order_id: {type: integer, key: true}
  status: {type: string, values: [paid, refunded, cancelled]}
  region: string
  amount: number
  ordered_at: timestamp
"""
KPIS = """\
kpis:
  - kpi: orders
    title: Orders
    source: orders
    expression: count()
  - kpi: revenue
    title: Revenue
    source: orders
    expression: sum(amount)
    filter: status = 'paid' and amount > 0
  - kpi: average_order
    title: Average order
    expression: revenue / orders
"""
#: the same KPIs, reformatted: keys reordered, expressions re-spaced and re-cased
KPIS_REFORMATTED = """\
kpis:
  - title: Orders
    kpi: orders
    expression: "count( )"
    source: orders

  - kpi: revenue
    filter: "(status = 'paid') AND (amount > 0)"
    expression: |
      SUM(amount)
    source: orders
    title: Revenue
  - expression: "(revenue) / (orders)"
    kpi: average_order
    title: Average order
"""
#: a filter change, a new KPI and a title change
KPIS_CHANGED = KPIS_REFORMATTED.replace(
    "(status = 'paid') AND", "status in ('paid', 'refunded') and"
).replace("title: Orders", "title: Orders placed") + (
    "  - kpi: refunds\n    source: orders\n    expression: count(where status = 'refunded')\n"
)
ROWS = [
    (1, "paid", "emea", 100.0, "2024-01-05 10:00:00"),
    (2, "refunded", "emea", 40.0, "2024-01-09 10:00:00"),
    (3, "paid", "amer", 60.0, "2024-02-02 10:00:00"),
    (4, "cancelled", "amer", 10.0, "2024-02-03 10:00:00"),
    (5, "paid", "amer", 80.0, "2024-03-15 10:00:00"),
]


def kpi(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def git(repo: Path, *args: str) -> str:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout


def write_duckdb(path: Path) -> str:
    import duckdb

    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id BIGINT, status VARCHAR, region VARCHAR,"
            " amount DOUBLE, ordered_at TIMESTAMP)"
        )
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ROWS)
    return f"duckdb:///{path}"


def write_sqlite(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id INTEGER, status TEXT, region TEXT,"
            " amount REAL, ordered_at TIMESTAMP)"
        )
        connection.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ROWS)
    connection.close()
    return f"sqlite:///{path}"


def write_project(folder: Path, kpis: str) -> None:
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "kpis").mkdir(exist_ok=True)
    (folder / "kpiengine.yaml").write_text(PROJECT)
    (folder / "sources" / "orders.yaml").write_text(SOURCE)
    (folder / "kpis" / "orders.yaml").write_text(kpis)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """Commits: base, reformatted; the working tree holds the changed KPIs (committed too,
    so HEAD~1..HEAD and HEAD~1..working tree say the same)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("warehouse.duckdb\n")
    write_duckdb(root / "warehouse.duckdb")
    project = root / "definitions"
    write_project(project, KPIS)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    (project / "kpis" / "orders.yaml").write_text(KPIS_REFORMATTED)
    git(root, "commit", "-q", "-am", "reformat")
    (project / "kpis" / "orders.yaml").write_text(KPIS_CHANGED)
    git(root, "commit", "-q", "-am", "change")
    return root


def test_reformatting_is_no_change(repo, capsys):
    project = str(repo / "definitions")
    code, out, _ = kpi(capsys, "diff", "HEAD~2", "HEAD~1", "--project", project, "--fail-on-change")
    assert code == 0, out
    assert "no definition changes" in out and out.rstrip().endswith("no changes")


def test_filter_change_new_kpi_and_title(repo, capsys):
    status_before = git(repo, "status", "--porcelain")
    temp_before = set(Path(tempfile.gettempdir()).glob("kpi-diff-*"))
    project = str(repo / "definitions")
    args = ["diff", "HEAD~1", "--project", project, "--from", "2024-01-01", "--to", "2024-04-01"]
    code, out, _ = kpi(capsys, *args, "--format", "json", "--fail-on-change")
    assert code == 1
    document = json.loads(out)
    definitions = document["definitions"]
    assert definitions["added"] == ["refunds"]
    assert definitions["removed"] == []
    assert definitions["changed"] == {"revenue": ["filter"]}
    assert definitions["metadata"] == {"orders": ["title"]}
    assert definitions["affected"] == {
        "revenue": "definition: filter",
        "average_order": "uses revenue",
    }
    values = {v["kpi"]: v for v in document["values"]["kpis"]}
    assert set(values) == {"revenue", "average_order"}  # orders unchanged: not run
    revenue = values["revenue"]
    assert revenue["cells"] == 3 and revenue["changed_cells"] == 1
    first = revenue["first_changed_rows"][0]
    assert first["period"] == "2024-01-01" and first["base"] == 100 and first["head"] == 140
    assert revenue["largest_change"]["change"] == 40
    assert revenue["largest_relative_change"]["relative_change"] == pytest.approx(0.4)
    assert values["average_order"]["changed_cells"] == 1
    # nothing of the user's repository moved, no temporary folder is left
    assert git(repo, "status", "--porcelain") == status_before
    assert set(Path(tempfile.gettempdir()).glob("kpi-diff-*")) == temp_before


def test_text_and_markdown(repo, capsys):
    project = str(repo / "definitions")
    code, out, _ = kpi(capsys, "diff", "HEAD~1", "--project", project, "--by", "region")
    assert code == 0  # no --fail-on-change
    assert "added" in out and "refunds" in out and "revenue (filter)" in out
    assert "metadata only" in out and "orders (title)" in out
    assert "1 of 6 cells changed" in out, out  # 3 months × 2 regions
    assert "region" in out and "+40" in out
    code, out, _ = kpi(capsys, "diff", "HEAD~1", "--project", project, "--format", "markdown")
    assert code == 0
    assert out.startswith("### KPI changes: HEAD~1")
    assert "| changed | revenue (filter) |" in out
    assert "<details><summary>revenue: first changed rows" in out
    assert "**Changes found.**" in out


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
def test_engines(repo, tmp_path, capsys, engine):
    url = (
        write_duckdb(tmp_path / "w.duckdb")
        if engine == "duckdb"
        else write_sqlite(tmp_path / "w.db")
    )
    project = str(repo / "definitions")
    code, out, _ = kpi(
        capsys, "diff", "HEAD~1", "HEAD", "--project", project, "--connector", url,
        "--format", "json", "--grain", "quarter",
    )  # fmt: skip
    assert code == 0, out
    values = {v["kpi"]: v for v in json.loads(out)["values"]["kpis"]}
    change = values["revenue"]["first_changed_rows"][0]
    assert (change["period"], change["base"], change["head"]) == ("2024-01-01", 240, 280)


def test_two_folders_and_no_connector(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    write_project(old, KPIS)
    write_project(new, KPIS_CHANGED)
    for folder in (old, new):
        (folder / "kpiengine.yaml").write_text("project: shop\n")
    code, out, err = kpi(capsys, "diff", str(old), str(new), "--fail-on-change")
    assert code == 1
    assert "revenue (filter)" in out and "values not compared: no connector" in err


def test_plugins_of_either_side_are_not_imported(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    marker = tmp_path / "imported"
    for folder in (old, new):
        write_project(folder, KPIS)
        (folder / "kpiengine.yaml").write_text("project: shop\nplugins: [side_effect]\n")
        (folder / "side_effect.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    code, out, _ = kpi(capsys, "diff", str(old), str(new))
    assert code == 0, out
    assert not marker.exists()


@pytest.mark.parametrize(
    "base, message",
    [
        ("no-such-branch", "neither a folder nor a revision"),
        ("--output=/tmp/x", "not a revision name"),  # an option for git: refused
        ("HEAD~40", "neither a folder nor a revision"),
    ],
)
def test_bad_revisions(repo, capsys, base, message):
    code, out, err = kpi(capsys, "diff", "--project", str(repo / "definitions"), "--", base)
    assert code == 2, out + err
    assert message in err


def test_bad_inputs(repo, tmp_path, capsys):
    project = str(repo / "definitions")
    code, _, err = kpi(capsys, "diff", "HEAD", "HEAD", "--project", project)
    assert code == 2 and "nothing to compare" in err
    outside = tmp_path / "plain"
    write_project(outside, KPIS)
    code, _, err = kpi(capsys, "diff", "main", "--project", str(outside))
    assert code == 2 and "not inside a git repository" in err
    code, _, err = kpi(capsys, "diff", "HEAD~1", "--project", project, "--by", "nowhere")
    assert code == 1 and "nowhere" in err
    code, _, err = kpi(capsys, "diff", "HEAD~1", "--project", project, "--from", "soon")
    assert code == 2 and "not a date" in err


def test_a_side_with_errors_is_named(repo, capsys):
    project = repo / "definitions"
    (project / "kpis" / "orders.yaml").write_text(KPIS + "  - kpi: broken\n    expression: (\n")
    code, _, err = kpi(capsys, "diff", "HEAD", "--project", str(project))
    assert code == 1 and "the definitions of the working tree have errors" in err


# -- PostgreSQL ---------------------------------------------------------------------------


def write_postgres() -> str:
    """A new database on the test server holding ROWS, written as the admin role; the URL
    returned is the reader role's (SELECT only), the one the values are compared on."""
    import psycopg

    from tests import engines

    reader = engines.postgres_database()
    with psycopg.connect(engines._libpq(engines.as_admin(reader))) as connection:
        connection.execute(
            "CREATE TABLE orders (order_id bigint, status text, region text,"
            " amount double precision, ordered_at timestamp)"
        )
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s)", ROWS)
    return reader


@pytest.mark.slow
def test_postgres(repo, capsys):
    from tests import engines

    engines.require(engines.ENGINES["postgres"])
    url = write_postgres()
    project = str(repo / "definitions")
    code, out, _ = kpi(
        capsys, "diff", "HEAD~1", "HEAD", "--project", project, "--connector", url,
        "--format", "json", "--grain", "quarter", "--fail-on-change",
    )  # fmt: skip
    assert code == 1, out
    document = json.loads(out)
    assert document["definitions"]["changed"] == {"revenue": ["filter"]}
    values = {v["kpi"]: v for v in document["values"]["kpis"]}
    assert set(values) == {"revenue", "average_order"}
    change = values["revenue"]["first_changed_rows"][0]
    assert (change["period"], change["base"], change["head"]) == ("2024-01-01", 240, 280)
    assert values["revenue"]["largest_change"]["change"] == 40
    # a reformatting only: nothing to run, no change, on the same server
    code, out, _ = kpi(
        capsys, "diff", "HEAD~2", "HEAD~1", "--project", project, "--connector", url,
        "--fail-on-change",
    )  # fmt: skip
    assert code == 0 and out.rstrip().endswith("no changes"), out


def test_unreachable_postgres_is_an_engine_error(repo, capsys):
    """No server needed: nothing listens on the port; exit 3, the address named."""
    pytest.importorskip("kpiengine_postgres")
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://kpi:s3cret@127.0.0.1:{port}/warehouse"
    project = str(repo / "definitions")
    code, out, err = kpi(capsys, "diff", "HEAD~1", "--project", project, "--connector", url)
    assert code == 3, out + err
    assert f"127.0.0.1:{port}" in err and "connection refused" in err
    assert "s3cret" not in out + err


def test_window_snapshot_and_conversion_changes_are_semantic(tmp_path):
    """A window, a per-entity snapshot and a conversion decide values: changing one (and
    only its meaning, not where it is written) is a change."""
    import kpiengine
    from kpiengine.review.definition_changes import fingerprint

    def load(kpis: str):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        (root / "sources").mkdir(parents=True)
        (root / "kpiengine.yaml").write_text("project: shop\n")
        (root / "sources" / "orders.yaml").write_text(SOURCE)
        (root / "kpis.yaml").write_text(kpis)
        return kpiengine.load(root).model.kpis["k"]

    base = "kpi: k\nsource: orders\nexpression: sum(amount)\n"
    ytd = load(base + "window: {to_date: year}\n")
    assert fingerprint(ytd) == fingerprint(load(base + "window:\n  to_date: year\n"))
    assert fingerprint(ytd) != fingerprint(load(base + "window: {to_date: quarter}\n"))
    assert fingerprint(ytd) != fingerprint(load(base))
    last = load(base + "semi_additive: {take: last, per: order_id}\n")
    assert fingerprint(last) != fingerprint(load(base + "semi_additive: last\n"))
    funnel = "kpi: k\nconversion:\n  base: {source: orders}\n  event: {source: orders}\n"
    funnel += "  entity: region\n"
    assert fingerprint(load(funnel)) != fingerprint(load(funnel + "  within: {days: 7}\n"))
