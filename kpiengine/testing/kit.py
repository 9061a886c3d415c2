"""The kit's checks, without pytest: numbers, the connection contract, read-only.

:func:`run_conformance` runs them all on a connector URL and returns the problems found
(empty: conformant); :class:`kpiengine.testing.pytest_kit.ConnectorConformance` runs the
same functions as pytest tests. Nothing here imports pytest, so a connector's own test
harness (or a plain script) can use the kit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpiengine.testing.cases import CASES, Case
from kpiengine.testing.compare import same_value
from kpiengine.testing.dataset import DATASET, write_project

# -- the numbers --------------------------------------------------------------------------


def case_problems(project: Any, connection: Any, case: Case) -> list[str]:
    """Differences between what ``project.run`` gives on ``connection`` and the case."""
    result = project.run(
        case.kpis,
        connection,
        grain=case.grain,
        start=case.start,
        end=case.end,
        by=case.by,
        where=case.where,
    )
    got: dict[tuple[Any, ...], Any] = {}
    for row in result.rows:
        period = row.period.isoformat() if row.period is not None else None
        got[(period, row.kpi, *(value for _, value in row.dimensions))] = row.value
    want = case.expected()
    problems = []
    for key, value in want.items():
        if key not in got:
            problems.append(f"missing row {_key_text(key)} (expected {value!r})")
        elif not same_value(got[key], value):
            problems.append(f"{_key_text(key)}: got {got[key]!r}, expected {value!r}")
    problems.extend(f"unexpected row {_key_text(k)} = {got[k]!r}" for k in got if k not in want)
    if problems:
        problems.insert(0, f"case {case.id} ({case.about}):")
    return problems


def _key_text(key: tuple[Any, ...]) -> str:
    period, kpi, *dims = key
    where = f" [{', '.join(map(repr, dims))}]" if dims else ""
    return f"{kpi} {period or 'all'}{where}"


def contract_problems(connection: Any, project: Any, schema: str | None = None) -> list[str]:
    """The connection contract: dialect, execute, columns, errors, types, read-only."""
    from kpiengine.compile.dialects import dialect_names
    from kpiengine.errors import EngineError
    from kpiengine.execute.warehouse_check import check_warehouse

    prefix = f"{schema}." if schema else ""
    problems: list[str] = []
    dialect = getattr(connection, "dialect", None)
    # built-in and plugins' (kpiengine_dialects), as the project that runs the cases has
    registered = dialect_names(getattr(project, "plugins", None))
    if dialect not in registered:
        problems.append(
            f"dialect {dialect!r} is not a registered one: {', '.join(registered)} "
            "(a plugin adds one through kpiengine_dialects)"
        )
    try:
        names, rows = connection.execute("SELECT 1 AS one")
        if list(names) != ["one"] or [tuple(r) for r in rows] != [(1,)]:
            problems.append(f"execute('SELECT 1 AS one') gave {names!r}, {rows!r}")
    except Exception as error:
        problems.append(f"execute('SELECT 1 AS one') raised {error!r}")
    try:
        connection.execute(f"SELECT * FROM {prefix}kpi_conformance_no_such_table")
        problems.append("a query on a missing table did not raise")
    except EngineError:
        pass
    except Exception as error:
        problems.append(f"a failing query must raise kpiengine.errors.EngineError, not {error!r}")
    for name, table in DATASET.tables.items():
        columns = connection.columns(f"{prefix}{name}")
        if not columns:
            problems.append(f"columns({prefix}{name!r}) found no table")
        elif sorted(c.lower() for c in columns) != sorted(table.names):
            problems.append(f"columns({prefix}{name!r}) gave {sorted(columns)}")
        elif not all(isinstance(kind, str) for kind in columns.values()):
            problems.append(f"columns({prefix}{name!r}) must map names to type names (str)")
    missing = connection.columns(f"{prefix}kpi_conformance_no_such_table")
    if missing is not None:
        problems.append(f"columns() of a missing table must be None, got {missing!r}")
    checked = check_warehouse(project.model, connection, getattr(project, "plugins", None))
    problems.extend(f"introspection: {d}" for d in checked)
    return problems


# -- read-only probes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A statement a read-only connection must refuse with EngineError.

    ``sql`` is a template: ``{prefix}`` is the schema prefix of the kit's tables,
    ``{folder}`` a scratch folder outside the warehouse (nothing may appear in it) and
    ``{canary}`` a file in it that no statement may read.
    """

    id: str
    sql: str
    kind: str = "write"  # "write" (or run code) | "read" (outside the warehouse)

    def text(self, prefix: str, folder: Path) -> str:
        return self.sql.format(prefix=prefix, folder=folder, canary=folder / CANARY)


#: The file every read probe aims at, and what it holds.
CANARY = "kpi_canary.csv"
_CANARY_TEXT = "secret\nkpi-canary-7f3a91\n"

#: Writes, file output, code execution and reads outside the warehouse, in the SQL of
#: the engines kpiengine meets (DuckDB, SQLite, PostgreSQL, Spark, MySQL, ClickHouse):
#: whatever the engine, each must raise EngineError.
PROBES: tuple[Probe, ...] = (
    Probe("create-table", "CREATE TABLE {prefix}kpi_conformance_probe (a INTEGER)"),
    Probe("insert", "INSERT INTO {prefix}accounts SELECT * FROM {prefix}accounts WHERE 1 = 0"),
    Probe("update", "UPDATE {prefix}accounts SET segment = segment WHERE 1 = 0"),
    Probe("delete", "DELETE FROM {prefix}accounts WHERE 1 = 0"),
    Probe("drop-table", "DROP TABLE {prefix}accounts"),
    Probe("create-temp-table", "CREATE TEMP TABLE kpi_conformance_temp (a INTEGER)"),
    Probe("create-temp-as", "CREATE TEMPORARY TABLE kpi_conformance_temp2 AS SELECT 1 AS a"),
    Probe("select-into-table", "SELECT 1 AS a INTO kpi_conformance_into"),
    Probe(
        "writing-cte",
        "WITH gone AS (DELETE FROM {prefix}accounts WHERE 1 = 0 RETURNING *)"
        " SELECT COUNT(*) FROM gone",
    ),
    Probe("select-for-update", "SELECT * FROM {prefix}accounts FOR UPDATE"),
    Probe("copy-query-to-file", "COPY (SELECT 1 AS a) TO '{folder}/copy.csv'"),
    Probe("copy-table-to-file", "COPY {prefix}accounts TO '{folder}/accounts.csv'"),
    Probe("copy-to-program", "COPY (SELECT 1 AS a) TO PROGRAM 'touch {folder}/program'"),
    Probe("export-database", "EXPORT DATABASE '{folder}/export'"),
    Probe("attach", "ATTACH '{folder}/attached.db' AS kpi_probe"),
    Probe("attach-read-write", "ATTACH '{folder}/attached_rw.duckdb' AS kpi_probe_rw (READ_WRITE)"),
    Probe("vacuum-into", "VACUUM INTO '{folder}/vacuum.db'"),
    Probe("insert-into-function", "INSERT INTO FUNCTION file('{folder}/f.csv') SELECT 1"),
    Probe("select-into-outfile", "SELECT 1 INTO OUTFILE '{folder}/outfile.csv'"),
    Probe("insert-overwrite-directory", "INSERT OVERWRITE DIRECTORY '{folder}/dir' SELECT 1"),
    Probe("two-statements", "SELECT 1; CREATE TABLE {prefix}kpi_conformance_two (a INTEGER)"),
    Probe("commit-then-write", "COMMIT; DROP TABLE {prefix}accounts"),
    Probe("set", "SET TimeZone = 'UTC'"),
    Probe("set-external-access", "SET enable_external_access = true"),
    Probe("pragma", "PRAGMA user_version = 7"),
    Probe("install-extension", "INSTALL kpi_no_such_extension"),
    Probe("load-extension", "LOAD httpfs"),
    Probe("sqlite-load-extension", "SELECT load_extension('{folder}/lib')"),
    Probe("path-as-table", "SELECT * FROM '{canary}'", "read"),
    Probe("read-csv", "SELECT * FROM read_csv('{canary}')", "read"),
    Probe("read-text", "SELECT * FROM read_text('{canary}')", "read"),
    Probe("glob", "SELECT * FROM glob('{folder}/*')", "read"),
    Probe("http-url", "SELECT * FROM read_csv('http://127.0.0.1:9/kpi.csv')", "read"),
    Probe("pg-read-file", "SELECT pg_read_file('{canary}')", "read"),
    Probe("spark-file-query", "SELECT * FROM csv.`{canary}`", "read"),
    Probe("spark-reflect", "SELECT reflect('java.lang.System', 'getProperty', 'user.dir')"),
)


def read_only_problems(
    connection: Any,
    schema: str | None = None,
    watch: Sequence[Path] = (),
    probes: Sequence[Probe] = PROBES,
) -> list[str]:
    """Every probe must fail with EngineError and leave the data and the file system as
    they were: the rows of the kit's tables, the bytes of every file under ``watch``
    (e.g. the database file), and an empty scratch folder (but for the canary)."""
    import tempfile

    prefix = f"{schema}." if schema else ""
    problems: list[str] = []
    before = _table_checksums(connection, prefix, problems)
    files_before = _file_checksums(watch)
    folder = Path(tempfile.mkdtemp(prefix="kpi-probe-")).resolve()
    try:
        (folder / CANARY).write_text(_CANARY_TEXT, encoding="utf-8")
        for probe in probes:
            problems.extend(_probe_problems(connection, probe.text(prefix, folder), probe))
        left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        if left != [CANARY]:
            created = ", ".join(p for p in left if p != CANARY)
            problems.append(f"the probes created files: {created}")
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    after = _table_checksums(connection, prefix, problems)
    problems.extend(
        f"{name} changed under the probes" for name in before if before[name] != after.get(name)
    )
    files_after = _file_checksums(watch)
    problems.extend(
        f"{path} changed under the probes"
        for path in sorted(set(files_before) | set(files_after))
        if files_before.get(path) != files_after.get(path)
    )
    return problems


def _probe_problems(connection: Any, sql: str, probe: Probe) -> list[str]:
    from kpiengine.errors import EngineError

    try:
        connection.execute(sql)
    except EngineError:
        return []
    except Exception as error:
        return [f"{sql} must raise EngineError, not {error!r}"]
    what = "a write was accepted" if probe.kind == "write" else "a read outside was accepted"
    return [f"{what}: {sql}"]


def _table_checksums(connection: Any, prefix: str, problems: list[str]) -> dict[str, str]:
    """Table → a digest of its rows (in a stable order), read through the connection."""
    import hashlib

    sums: dict[str, str] = {}
    for name in DATASET.tables:
        try:
            _, rows = connection.execute(f"SELECT * FROM {prefix}{name}")
        except Exception as error:
            problems.append(f"reading {prefix}{name} around the probes failed: {error!r}")
            continue
        text = "\n".join(sorted(repr(tuple(row)) for row in rows))
        sums[f"table {prefix}{name}"] = hashlib.sha256(text.encode()).hexdigest()
    return sums


def _file_checksums(watch: Sequence[Path]) -> dict[str, str]:
    import hashlib

    sums: dict[str, str] = {}
    for root in watch:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


# -- everything at once -------------------------------------------------------------------


def run_conformance(
    url: str,
    workdir: Path,
    schema: str | None = None,
    open: Callable[[str], Any] | None = None,
    skip: Sequence[str] = (),
    plugins: Sequence[str] = (),
) -> list[str]:
    """Everything the pytest class checks, as a list of problems (empty: conformant).

    ``url`` must point at an engine already holding :data:`DATASET`; ``open`` defaults
    to opening it through the kit's projects' plugins; ``skip`` lists case ids not to
    run; ``plugins`` are modules to load as ``--plugin`` does (a connector, or a dialect
    that is not installed).
    """
    projects = load_projects(workdir, schema, plugins)
    connect = open or projects[1].connect
    problems: list[str] = []
    with connect(url) as connection:
        problems.extend(contract_problems(connection, projects[1], schema))
        for case in CASES:
            if case.id in skip:
                continue
            try:
                problems.extend(case_problems(projects[case.fiscal_year_start], connection, case))
            except Exception as error:
                problems.append(f"case {case.id} raised {error!r}")
        problems.extend(read_only_problems(connection, schema, watch=[workdir]))
    return problems


def load_projects(workdir: Path, schema: str | None, plugins: Sequence[str] = ()) -> dict[int, Any]:
    """Fiscal year start → the kit's project loaded from ``workdir`` (one per start the
    cases use), so every case runs against definitions that match its fiscal year;
    ``plugins`` are loaded into each project's plugins, as ``--plugin`` does."""
    import kpiengine

    years = sorted({case.fiscal_year_start for case in CASES})
    return {
        year: kpiengine.load(
            write_project(workdir / f"definitions-fy{year}", year, schema), plugins
        )
        for year in years
    }
