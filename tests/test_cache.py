"""The on-disk cache of projects and statements (kpiengine.cache): a repeated `kpi run` or
`kpi check` in a new process imports neither PyYAML, lark nor sqlglot, and the cache never
changes a number: edited or added definition files, new data (the data-range query),
another request, a corrupt entry, an unsafe folder or KPI_CACHE=0 all give what a run
without cache gives. Real DuckDB; the expected numbers are summed by hand from the rows.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kpiengine import cache
from tests.conftest import make_duckdb

ROOT = Path(__file__).resolve().parent.parent
ORDERS = [
    (dt.datetime(2025, 1, 5), 10.0, "emea"),
    (dt.datetime(2025, 1, 20), 5.0, "apac"),
    (dt.datetime(2025, 2, 3), 7.0, "emea"),
    (dt.datetime(2025, 3, 9), 1.5, "emea"),
]
FILES = {
    "kpiengine.yaml": "project: shop\n",
    "sources/orders.yaml": (
        "source: orders\ntable: orders\ntime: ordered_at\n"
        "columns:\n  ordered_at: timestamp\n  amount: number\n  region: string\n"
    ),
    "kpis/revenue.yaml": (
        "kpi: revenue\nsource: orders\nexpression: sum(amount)\n"
        "rules:\n  - name: high\n    when: value > 12\n"
        "    severity: warning\n    message: high revenue\n"
    ),
}
#: reports which heavy modules the command imported
PROBE = """
import sys
from kpiengine.cli import main
code = main(sys.argv[1:])
heavy = [m for m in ("sqlglot", "lark", "yaml") if m in sys.modules]
print("IMPORTED=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


@pytest.fixture
def shop(tmp_path: Path) -> dict[str, Any]:
    project = write(tmp_path / "defs", FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"orders": ("ordered_at TIMESTAMP, amount DOUBLE, region VARCHAR", ORDERS)},
    )
    return {"project": project, "url": url, "cache": tmp_path / "cache", "tmp": tmp_path}


def kpi(shop: dict[str, Any], *args: str, **env: str) -> tuple[dict[str, float], set[str]]:
    """Run `kpi ARGS --format json` in a new process: (period -> value, heavy modules)."""
    environment = {**os.environ, "KPI_CACHE_DIR": str(shop["cache"]), **env}
    if "KPI_CACHE" not in env:
        environment.pop("KPI_CACHE", None)
    command = [sys.executable, "-c", PROBE, *args, "--project", str(shop["project"])]
    command += ["--connector", shop["url"], "--format", "json"]
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment, cwd=shop["tmp"], check=False
    )
    assert done.returncode == 0, done.stderr
    imported = done.stderr.rsplit("IMPORTED=", 1)[1].strip()
    values = {row["period"]: row["value"] for row in json.loads(done.stdout)["rows"]}
    return values, set(filter(None, imported.split(",")))


def by_month(rows: list[tuple[dt.datetime, float, str]]) -> dict[str, float]:
    """The expected revenue per month, summed by hand from the rows."""
    totals: dict[str, float] = {}
    for at, amount, _ in rows:
        month = at.date().replace(day=1).isoformat()
        totals[month] = totals.get(month, 0.0) + amount
    return totals


RANGE = ("--from", "2025-01-01", "--to", "2025-04-01")


def test_second_run_uses_the_cache_and_prints_the_same_numbers(shop: dict[str, Any]) -> None:
    first, heavy_first = kpi(shop, "run", "revenue", *RANGE)
    second, heavy_second = kpi(shop, "run", "revenue", *RANGE)
    assert first == second == by_month(ORDERS)
    assert {"sqlglot", "lark", "yaml"} <= heavy_first
    assert heavy_second == set()


def test_run_without_range_asks_the_engine_again(shop: dict[str, Any]) -> None:
    """The data-range query is cached, its answer is not: new data adds a period."""
    before, _ = kpi(shop, "run", "revenue")
    again, heavy = kpi(shop, "run", "revenue")
    assert before == again == by_month(ORDERS) and heavy == set()
    import duckdb

    more = (dt.datetime(2025, 5, 2), 4.0, "emea")
    with duckdb.connect(str(shop["tmp"] / "w.duckdb")) as connection:
        connection.execute("INSERT INTO orders VALUES (?, ?, ?)", list(more))
    after, _ = kpi(shop, "run", "revenue")
    expected = by_month([*ORDERS, more]) | {"2025-04-01": None}  # a sum of no rows
    assert after == expected


def test_edited_and_added_definition_files_change_the_key(shop: dict[str, Any]) -> None:
    kpi(shop, "run", "revenue", *RANGE)
    (shop["project"] / "kpis" / "revenue.yaml").write_text(
        FILES["kpis/revenue.yaml"].replace("sum(amount)", "sum(amount where region = 'emea')")
    )
    emea, heavy = kpi(shop, "run", "revenue", *RANGE)
    assert emea == by_month([r for r in ORDERS if r[2] == "emea"]) | {"2025-01-01": 10.0}
    assert "yaml" in heavy
    write(
        shop["project"], {"kpis/count.yaml": "kpi: orders\nsource: orders\nexpression: count()\n"}
    )
    counts, _ = kpi(shop, "run", "orders", *RANGE)
    assert counts == {"2025-01-01": 2, "2025-02-01": 1, "2025-03-01": 1}


def test_check_reuses_the_cache(shop: dict[str, Any]) -> None:
    command = ["check", *RANGE, "--fail-on", "critical", "--project", str(shop["project"])]
    environment = {**os.environ, "KPI_CACHE_DIR": str(shop["cache"])}
    environment.pop("KPI_CACHE", None)  # on: the suite turns it off (conftest.py)
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *command, "--connector", shop["url"]],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done)
    # January: 10 + 5 = 15 > 12, the only month over the threshold
    assert "1 alert(s)" in outputs[0].stderr and "1 alert(s)" in outputs[1].stderr
    assert outputs[0].stdout == outputs[1].stdout
    assert outputs[1].stderr.rsplit("IMPORTED=", 1)[1].strip() == ""


def test_corrupt_entries_are_ignored(shop: dict[str, Any]) -> None:
    kpi(shop, "run", "revenue", *RANGE)
    entries = [p for p in shop["cache"].iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2  # the project and the statement
    for number, entry in enumerate(entries):
        entry.write_bytes(b"not a pickle" if number else entry.read_bytes()[:20])
    values, heavy = kpi(shop, "run", "revenue", *RANGE)
    assert values == by_month(ORDERS)
    assert "sqlglot" in heavy  # recomputed, then stored again
    assert kpi(shop, "run", "revenue", *RANGE) == (values, set())


def test_disabled_by_environment(shop: dict[str, Any]) -> None:
    for _ in range(2):
        values, heavy = kpi(shop, "run", "revenue", *RANGE, KPI_CACHE="0")
        assert values == by_month(ORDERS) and "sqlglot" in heavy
    assert not shop["cache"].exists()


def test_a_folder_others_can_write_is_not_used(shop: dict[str, Any]) -> None:
    shop["cache"].mkdir(mode=0o700)
    shop["cache"].chmod(0o777)  # a pickle from there could run anyone's code
    for _ in range(2):
        values, heavy = kpi(shop, "run", "revenue", *RANGE)
        assert values == by_month(ORDERS) and "sqlglot" in heavy
    assert list(shop["cache"].iterdir()) == []


def test_projects_with_plugins_are_not_cached(
    shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugin code can change a result without a definition file changing."""
    (shop["project"] / "shop_plugin.py").write_text("")
    (shop["project"] / "kpiengine.yaml").write_text("project: shop\nplugins: [shop_plugin]\n")
    for _ in range(2):
        values, heavy = kpi(shop, "run", "revenue", *RANGE)
        assert values == by_month(ORDERS) and "yaml" in heavy


def test_entries_stay_in_the_folder_and_are_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "c"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    cache.store("k" * 64, {"value": 1})
    assert cache.load("k" * 64) == {"value": 1}
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["k" * 64]  # no temporary left
    assert cache.load("x" * 64) is None
    (tmp_path / "c" / ("y" * 64)).write_bytes(b"\x80\x05garbage")
    assert cache.load("y" * 64) is None


def test_the_cache_walks_the_files_the_loader_reads(tmp_path: Path) -> None:
    """The key covers exactly the loader's files (hidden files and folders skipped)."""
    folder = write(
        tmp_path / "p",
        {
            "kpiengine.yaml": "project: x\n",
            "a.yml": "",
            "z/b.yaml": "",
            ".hidden.yaml": "",
            ".git/c.yaml": "",
            "notes.txt": "",
        },
    )
    found = [path.relative_to(folder).as_posix() for path in cache.definition_files(folder)]
    assert found == ["kpiengine.yaml", "a.yml", "z/b.yaml"]  # the loader's walk itself


def test_the_folder_keeps_the_recently_used_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "c"))
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setattr(cache, "MAX_ENTRIES", 5)
    for number in range(5):
        cache.store(f"{number:064d}", number)
        os.utime(tmp_path / "c" / f"{number:064d}", (number, number))  # an older write
    assert cache.load(f"{0:064d}") == 0  # used now: the most recent
    cache.store(f"{5:064d}", 5)
    kept = sorted(int(p.name) for p in (tmp_path / "c").iterdir())
    assert kept == [0, 3, 4, 5]  # down to 4 after the sixth write: the two oldest gone
