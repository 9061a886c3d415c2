"""The ``kpi`` command line: argument parsing only; the work is in the API and stages.

Exit codes (SPEC §6): 0 fine, 1 findings or definition errors, 2 usage errors,
3 engine or connection errors. No traceback ever reaches the user.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kpiengine.diagnostics import Severity
from kpiengine.errors import DefinitionError, EngineError, KpiError, UsageError
from kpiengine.loader.vocabulary import GRAINS, SEVERITIES
from kpiengine.render.diagnostic_formats import FORMATS


def _project_option(function: Any) -> Any:
    return click.option(
        "--project",
        "project_path",
        type=click.Path(path_type=Path),
        help="Definitions folder (default: nearest folder upward holding "
        "kpiengine.yaml, else ./definitions).",
    )(function)


def _connector_option(function: Any) -> Any:
    return click.option(
        "--connector",
        "connector_url",
        metavar="URL",
        help="Engine URL, e.g. duckdb:///warehouse.duckdb (default: the "
        "project file's `connector:`).",
    )(function)


def _plugin_option(function: Any) -> Any:
    return click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="MODULE",
        help="Load a plugin module (repeatable).",
    )(function)


def _common(function: Any) -> Any:
    return _plugin_option(_connector_option(_project_option(function)))


@dataclass
class Query:
    """What compile/run/check/report share: which KPIs, which periods, which project."""

    kpis: tuple[str, ...]
    grain: str
    by: tuple[str, ...]
    start: str | None
    end: str | None
    where: str | None
    all_kpis: bool
    project_path: Path | None
    connector_url: str | None
    plugins: tuple[str, ...]
    max_periods: int | None = None
    _project: Any = None
    _soundness: Any = None

    @property
    def project(self) -> Any:
        if self._project is None:
            self._project = _load(self.project_path, self.plugins)
        return self._project

    def names(self, default: str = "none") -> list[str] | None:
        """KPIs named, or every KPI with --all; else ``default``: "none" is a usage error,
        "all" every KPI, "rules" the KPIs with rules (None)."""
        if self.all_kpis:
            return list(self.project.kpis)
        if self.kpis:
            return list(self.kpis)
        if default == "all":
            return list(self.project.kpis)
        if default == "rules":
            return None
        raise UsageError("name at least one KPI, or use --all")

    def sound_names(self, default: str = "none") -> list[str]:
        """:meth:`names` minus the KPIs definition errors keep from being computed, and
        those that read one: `kpi run` computes the rest (SPEC §6: :meth:`finish` still
        exits 1). Their errors, and which KPIs were skipped, go to stderr now."""
        from kpiengine import api

        if self._project is None:
            self._project, self._soundness = api.load_lenient(self.project_path, self.plugins)
        soundness, model = self._soundness, self.project.model
        names = self.names(default)
        names = self.project.rule_kpis() if names is None else names
        if soundness is None or not soundness.errors:
            return names
        if soundness.fatal:
            raise DefinitionError(soundness.errors, model.texts)
        sound: list[str] = []
        shown: dict[Any, None] = {}
        skipped: list[str] = []
        for name in names:
            blocker = soundness.blocker(model, name) if name in model.kpis else None
            if blocker is None:
                sound.append(name)
                continue
            shown.update(dict.fromkeys(soundness.broken.get(blocker, ())))
            if blocker != name:
                skipped.append(
                    f"kpi: `{name}` not computed: it reads `{blocker}`, which has errors"
                )
        if not sound:
            for line in skipped:
                say(line)
            raise DefinitionError(list(shown) or soundness.errors, model.texts)
        _show_definition_error(DefinitionError(list(shown), model.texts))
        for line in skipped:
            say(line)
        others = [d for d in soundness.errors if d not in shown]
        if others:
            say(f"kpi: {len(others)} more definition error(s) in the project: see `kpi validate`")
        return sound

    def finish(self) -> None:
        """Exit 1 (SPEC §6: definition errors) when the project has errors, after the KPIs
        that could be computed were."""
        if self._soundness is not None and self._soundness.errors:
            sys.exit(1)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "grain": self.grain,
            "start": self.start,
            "end": self.end,
            "by": self.by,
            "where": self.where,
            "max_periods": self.max_periods,
        }

    def connect(self) -> Any:
        return self.project.connect(_connector_url(self.connector_url, self.project))


_QUERY_FIELDS = (
    "kpis",
    "grain",
    "by",
    "start",
    "end",
    "where",
    "all_kpis",
    "project_path",
    "connector_url",
    "plugins",
    "max_periods",
)


def _query_command(function: Any) -> Any:
    """Add the KPI arguments, query and common options; pass them as one ``query``."""

    @functools.wraps(function)
    def callback(**params: Any) -> Any:
        query = Query(**{name: params.pop(name) for name in _QUERY_FIELDS})
        return function(query=query, **params)

    options = [
        click.argument("kpis", nargs=-1),
        click.option(
            "--grain",
            type=click.Choice(GRAINS),
            default="month",
            show_default=True,
            help="Period size.",
        ),
        click.option(
            "--by",
            "by",
            multiple=True,
            metavar="DIM",
            help="Group by a dimension, e.g. region or accounts.segment (repeatable).",
        ),
        click.option("--from", "start", metavar="DATE", help="Range start (included)."),
        click.option("--to", "end", metavar="DATE", help="Range end (excluded)."),
        click.option(
            "--where",
            metavar="EXPR",
            help="Row filter over dimensions, e.g. \"accounts.segment = 'smb'\".",
        ),
        click.option("--all", "all_kpis", is_flag=True, help="Every KPI of the project."),
        click.option(
            "--max-periods",
            "max_periods",
            type=click.IntRange(min=1),
            metavar="N",
            help="Most periods one statement may produce, look-back included "
            "(default: $KPI_MAX_PERIODS, else 100000).",
        ),
    ]
    callback = _common(callback)
    for option in reversed(options):
        callback = option(callback)
    return callback


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kpiengine", prog_name="kpi")
def cli() -> None:
    """kpiengine: KPIs as YAML, compiled to SQL for any engine.

    \b
    Example:
      kpi validate definitions/
      kpi run win_rate --grain month --by region --from 2024-01-01 --to 2025-01-01
    """


# -- helpers ---------------------------------------------------------------------------


def _load(project_path: Path | None, plugins: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    from kpiengine import api

    return api.load(project_path, plugins)  # the project's own plugin host


def _connector_url(explicit: str | None, project: Any) -> str:
    if explicit:
        return explicit
    configured = project.model.connector
    if not configured:
        raise UsageError("no connector: pass --connector URL or set `connector:` in kpiengine.yaml")
    return _relative_to(configured, project.model.root)


def _relative_to(url: str, root: Path) -> str:
    """A file URL in the project file is relative to the project folder, not the cwd."""
    scheme, sep, rest = url.partition(":///")
    if sep and scheme in ("duckdb", "sqlite", "files") and rest and not rest.startswith("/"):
        path, query_sep, query = rest.partition("?")
        return f"{scheme}:///{(root / path).resolve()}{query_sep}{query}"
    return url


@contextmanager
def computing(names: list[str] | None) -> Iterator[None]:
    """A spinner while the engine works, on a terminal only."""
    from kpiengine.render.progress import progress

    with progress(1) as bar:
        bar.step(f"computing {len(names)} KPIs" if names else "computing the KPIs with rules")
        yield


class _Collected(logging.Handler):
    """Keeps the messages of a logger, to show them as warnings instead of raw log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def dialect_warnings(dialect: str) -> Iterator[None]:
    """Show what sqlglot could not translate for ``dialect`` as one ``kpi: warning:`` line
    each (once), instead of its raw log lines on stderr."""
    logger = logging.getLogger("sqlglot")
    handler = _Collected()
    logger.addHandler(handler)  # found first: Python's bare last-resort output is not used
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for message in dict.fromkeys(handler.messages):
            say(f"kpi: warning: {dialect} cannot express this: {message}")


#: where a URL or a ``user:secret@`` may start and end in a message
_TOKEN = re.compile(r"[^\s`'\"()<>\[\]]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_LONGEST_SHOWN = 2000  # a longer URL is shown as its scheme and length


def redact_urls(text: str) -> str:
    """``text`` with every URL in it passed through the one redaction function,
    :func:`kpiengine.execute.connectors.redact_url`, and any other ``user:secret@`` hidden too:
    no message of the CLI shows a password, even of a URL too malformed to parse.

    Token by token, in linear time: a flag may be megabytes long, and a message echoing
    it must not take minutes (a regex that retries at every position would)."""
    return _TOKEN.sub(lambda match: _redact_token(match.group(0)), text)


def _redact_token(token: str) -> str:
    from kpiengine.execute.connectors import redact_url

    scheme = _SCHEME.match(token)
    if scheme and len(token) > _LONGEST_SHOWN:
        return f"{scheme.group(0)}... ({len(token):,} characters)"
    if scheme:
        token = redact_url(token)
    at = token.rfind("@")
    if at < 0:
        return token
    # user:secret@ is hidden from the first `:` not followed by `/` (a scheme's) to the
    # last `@`, as redact_url does in a well-formed URL
    colon = 0
    while True:
        colon = token.find(":", colon, at)
        if colon < 0:
            return token
        if not token.startswith("/", colon + 1):
            break
        colon += 1
    if token[colon + 1 : at] == "***":
        return token
    return f"{token[: colon + 1]}***{token[at:]}"


_without_password = redact_urls  # the name tests/test_semantics.py knows

_LONGEST_LINE = 2000


def say(text: str, nl: bool = True) -> None:
    """Write a message to stderr: URLs redacted, and any line over 2 000 characters cut in
    the middle, so that echoing a megabyte-long flag stays readable (and fast)."""
    lines = []
    for line in redact_urls(text).split("\n"):
        if len(line) > _LONGEST_LINE:
            cut = len(line) - 600
            line = f"{line[:500]}... ({cut:,} characters) ...{line[-100:]}"
        lines.append(line)
    click.echo("\n".join(lines), err=True, nl=nl)


def _check_writable(path: Path) -> None:
    """A usage error (exit 2) before any work when ``path`` cannot be written: its folder
    is missing, or it is a folder."""
    if _is_stream(path):
        return
    target = path.resolve()
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write `{path}`: the folder `{path.parent}` does not exist")
    if target.is_dir():
        raise UsageError(f"cannot write `{path}`: it is a folder; give a file name")


def _is_stream(path: Path) -> bool:
    """A device, FIFO or socket (``/dev/stdout``, ``/dev/null``): written in place."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISBLK(mode)


def _write_output(path: Path, text: str | bytes) -> None:
    """Write whole or not at all: a temporary file beside the target, then a rename, done
    on the file a symlink names (never replacing the link). A device or FIFO is written
    in place: renaming over ``/dev/null`` would replace the device itself (as root).
    What the file system refuses (permissions, a full disk) is a usage error naming the
    file, never a traceback."""
    from kpiengine.demo import write_atomically

    _check_writable(path)
    try:
        if _is_stream(path):
            if isinstance(text, bytes):  # a renderer's PDF, image...
                path.write_bytes(text)
            else:
                with path.open("w", encoding="utf-8") as handle:
                    handle.write(text)
        else:
            write_atomically(path.resolve(), text)
    except OSError as error:
        raise UsageError(f"cannot write `{path}`: {error.strerror or error}") from None


_LARGEST_TEMPLATE = 1_000_000


def _check_template(path: Path) -> None:
    """A usage error unless ``--template`` is a regular UTF-8 text file of at most 1 MB:
    not a device (``/dev/zero`` reads forever), a FIFO (blocks) or a binary file."""
    import stat

    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise UsageError(f"--template `{path}` is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_LARGEST_TEMPLATE + 1)
    except OSError as error:
        raise UsageError(f"cannot read --template `{path}`: {error.strerror or error}") from None
    if len(data) > _LARGEST_TEMPLATE:
        raise UsageError(f"--template `{path}` is larger than {_LARGEST_TEMPLATE:,} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"--template `{path}` is not UTF-8 text (byte {error.start + 1})"
        ) from None


# -- commands --------------------------------------------------------------------------


@cli.command()
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people; json for scripts; github for Actions annotations; sarif for "
    "code scanning; junit for test reports.",
)
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice([str(level) for level in sorted(Severity, reverse=True)]),
    help="Lowest severity that makes the exit code 1 (default: the project's "
    "`validate: {fail_on: ...}`, else error).",
)
@click.option(
    "-o",
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--allow-plugins",
    "allow_plugins",
    is_flag=True,
    help="Import the modules of the project's `plugins:` list (project code; off by "
    "default, also on with KPI_ALLOW_PLUGINS=1).",
)
@click.option(
    "--dialect",
    metavar="D",
    help="Also check that every KPI can be compiled for this SQL dialect (KPI404: a "
    "function the warehouse's engine cannot compute as kpiengine does).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="Do not check tables and columns against the project's `connector:`.",
)
@_common
def validate(
    path: Path | None,
    fmt: str,
    fail_on: str | None,
    output_file: Path | None,
    allow_plugins: bool,
    dialect: str | None,
    offline: bool,
    project_path: Path | None,
    connector_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """Check definition files: schema, language, names, types, cycles, and warnings
    (KPI6xx) about unused sources, undocumented KPIs and the like.

    Every problem in every file is reported, in file and line order. Validation runs no
    code that comes with the definitions: the project's `plugins:` are imported only with
    --allow-plugins (or KPI_ALLOW_PLUGINS=1); installed plugins and --plugin always load.

    \b
    Exit 0 when nothing is at or above --fail-on, 1 when something is,
    2 on usage or internal errors.
    Example:
      kpi validate definitions/
      kpi validate --format github --fail-on warning
      kpi validate --format sarif -o kpi.sarif
      kpi validate --connector duckdb:///warehouse.duckdb
      kpi validate --offline
      kpi validate --dialect mysql
    """
    import os

    from kpiengine import api
    from kpiengine.diagnostics import Severity
    from kpiengine.plugins.manager import PluginHost
    from kpiengine.render.diagnostic_formats import formatter
    from kpiengine.render.diagnostic_formats.report import ValidationReport

    if output_file is not None:
        _check_writable(output_file)
    host = PluginHost(plugins)
    allowed = allow_plugins or api.plugins_allowed_by_environment()
    model, diagnostics = api.load_and_check(
        path or project_path, allow_plugins=allowed, plugins=host
    )
    if dialect:  # also: can the warehouse's engine compute every KPI as kpiengine does?
        from kpiengine.compile.dialects import require_dialect
        from kpiengine.compile.dialects.capabilities import check_dialect
        from kpiengine.diagnostics import Diagnostic

        rules = require_dialect(dialect, host).make_rules()
        found = check_dialect(model, rules, host.functions())
        diagnostics = sorted([*diagnostics, *found], key=Diagnostic.sort_key)
    if connector_url or (model.connector and not offline):
        from kpiengine.diagnostics import Diagnostic

        found = _warehouse_findings(model, host, connector_url)
        diagnostics = sorted([*diagnostics, *found], key=Diagnostic.sort_key)
    level = Severity[(fail_on or model.validate_fail_on or "error").upper()]
    colour = (
        fmt == "text"
        and output_file is None
        and sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
    )
    report = ValidationReport.of(model, diagnostics, level, colour)
    output = formatter(fmt)(report)
    if output_file is not None:
        _write_output(output_file, output + "\n" if output else "")
    elif output:
        click.echo(output)
    if report.failed:
        sys.exit(1)


def _warehouse_findings(model: Any, host: Any, explicit: str | None) -> list[Any]:
    """Tables, columns and types the definitions use that the warehouse lacks. With an
    explicit --connector, a connection that fails is an engine error (exit 3); the
    project's own `connector:` is checked only when reachable: otherwise a warning, since
    validation must work where the warehouse is not (a laptop offline, CI of a fork)."""
    from kpiengine.execute.warehouse_check import check_warehouse

    if explicit:
        with host.connect(explicit) as connection:
            return check_warehouse(model, connection, host)
    url = _relative_to(model.connector, model.root)
    try:
        connection = host.connect(url)
    except (EngineError, UsageError) as error:
        say(
            f"kpi: warning: the project's connector is not reachable ({error}); tables and "
            "columns were not checked against the warehouse (--offline skips this check)"
        )
        return []
    with connection:
        return check_warehouse(model, connection, host)


@cli.command(name="list")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
)
@_common
def list_command(
    path: Path | None,
    fmt: str,
    project_path: Path | None,
    connector_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """List the KPIs: name, title, unit, source, owner, tags.

    \b
    Example:
      kpi list --format markdown
    """
    from kpiengine.render.terminal import kpi_list

    project = _load(path or project_path, plugins)
    click.echo(kpi_list(list(project.model.kpis.values()), fmt))


@cli.command(name="compile")
@click.option(
    "--dialect",
    default="duckdb",
    show_default=True,
    help="duckdb, sqlite, postgres, bigquery, snowflake, spark, databricks, trino, "
    "redshift, tsql, mysql, or one a plugin adds (kpiengine_dialects).",
)
@_query_command
def compile_command(query: Query, dialect: str) -> None:
    """Print the one SQL statement that computes the KPIs.

    \b
    Example:
      kpi compile win_rate --dialect snowflake --grain month --by region
    """
    with dialect_warnings(dialect):
        sql = query.project.compile(query.names(), dialect=dialect, note=True, **query.options)
    click.echo(sql + ";")


def _as_of_option(function: Any) -> Any:
    """``--as-of DATE``: the date in-progress periods are judged at (SPEC §13.8)."""
    return click.option(
        "--as-of",
        "as_of",
        metavar="DATE",
        help="Judge in-progress periods at this date (default: today): rows of periods "
        "that have begun and not ended are partial, and `pace` projects them.",
    )(function)


@cli.command(name="run")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@_as_of_option
@_query_command
def run_command(query: Query, fmt: str, as_of: str | None) -> None:
    """Compute KPI values on an engine.

    \b
    Example:
      kpi run win_rate mrr --grain quarter --by region --format json \\
          --connector duckdb:///warehouse.duckdb
    """
    from kpiengine.render.terminal import result_csv, result_json, result_table

    names = query.sound_names()
    project = query.project
    as_of_date = _as_of(as_of)
    # definition errors before opening the engine; the KPIs rules read are computed too
    plan = project.plan(project.with_rule_inputs(names), **query.options)
    with query.connect() as connection, computing(names), dialect_warnings(connection.dialect):
        result = project.execute(plan, connection, as_of_date, shown=names)
    if fmt == "json":
        click.echo(result_json(result, project.model))
    elif fmt == "csv":
        click.echo(result_csv(result, project.model), nl=False)
    else:
        click.echo(result_table(result, project.model))
    query.finish()


def _severity_choice() -> click.Choice:
    return click.Choice(SEVERITIES)


@cli.command(name="check")
@click.option(
    "--fail-on",
    type=_severity_choice(),
    default="critical",
    show_default=True,
    help="Exit 1 when a rule of this severity or worse fires.",
)
@click.option(
    "--notify",
    "notify",
    multiple=True,
    metavar="NAME[=TARGET]",
    help="Send alerts: console (default), jsonl=FILE, webhook=URL (repeatable).",
)
@click.option(
    "--notify-option",
    "notify_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Notifier option, e.g. timeout=5, retries=3 (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the checked period, rows with status and partial, and alerts on stdout "
    "(no console notifier unless --notify names it).",
)
@_as_of_option
@_query_command
def check_command(
    query: Query,
    fail_on: str,
    notify: tuple[str, ...],
    notify_options: tuple[str, ...],
    fmt: str,
    as_of: str | None,
) -> None:
    """Evaluate rules (default: the last complete period) and send alerts.

    \b
    Exit 0 when no rule at or above --fail-on fires, 1 when one does, 2 on usage
    errors, 3 when the engine or a notifier fails.
    Example:
      kpi check --fail-on warning --notify console --notify jsonl=alerts.jsonl
    """
    from kpiengine.rules.evaluate import SEVERITY_ORDER
    from kpiengine.rules.notify import NotifierError, find_notifier

    names = query.sound_names(default="rules")
    project = query.project
    as_of_date = _as_of(as_of)
    options = _key_values(notify_options, "--notify-option")
    default_notify = ("console",) if fmt == "text" else ()
    targets = [_notifier_target(n) for n in (notify or default_notify)]
    notifiers = [(find_notifier(name, project.plugins), target) for name, target in targets]
    for notifier, target in notifiers:  # a bad option or URL: usage error before any query
        check_options = getattr(notifier, "check_options", None)
        if check_options is not None:
            check_options({**options, "target": target})
    with query.connect() as connection, computing(names), dialect_warnings(connection.dialect):
        result = project.check(names, connection, as_of=as_of_date, **query.options)
    _say_checked(result, query, fmt, project.model)
    failures = []
    for notifier, target in notifiers:
        try:
            notifier.notify(result.alerts, {**options, "target": target, "project": project.name})
        except NotifierError as error:
            failures.append(str(error))
    fired = [a for a in result.alerts if SEVERITY_ORDER[a.severity] >= SEVERITY_ORDER[fail_on]]
    click.echo(f"{len(result.alerts)} alert(s), {len(fired)} at or above {fail_on}", err=True)
    for failure in failures:
        say(f"kpi: notifier error: {failure}")
    if fired:
        sys.exit(1)
    if failures:
        sys.exit(3)
    query.finish()


def _as_of(text: str | None) -> dt.date:
    """``--as-of``: a date, default today (the machine's date)."""
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of `{text}` is not a date; write it as YYYY-MM-DD") from None


def _say_checked(result: Any, query: Query, fmt: str, model: Any) -> None:
    """Which period `kpi check` checked (stderr, or the JSON document on stdout), and a
    warning when it has no data: a default range past the end of the data checks
    nothing, and must not pass silently (issue 14)."""
    from kpiengine.render.terminal import checked_period, result_json

    checked = checked_period(result, default=query.start is None and query.end is None)
    if fmt == "json":
        click.echo(result_json(result, model, checked=checked))
    say(f"kpi: {checked['text']}")
    if checked["empty"]:
        say(
            f"kpi: warning: no data in the checked period ({checked['from']} to "
            f"{checked['to']}): every value is empty (null or 0); "
            "check another one with --from/--to"
        )
    insufficient = checked["insufficient_data"]
    if insufficient:
        say(f"kpi: {insufficient} row(s) with insufficient data: their guarded rules not evaluated")


def _notifier_target(text: str) -> tuple[str, str | None]:
    name, sep, target = text.partition("=")
    return name.strip(), (target.strip() if sep else None)


def _key_values(pairs: tuple[str, ...], flag: str) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} takes KEY=VALUE, not `{pair}`")
        found[key.strip()] = value.strip()
    return found


@cli.command(name="report")
@click.option(
    "--renderer",
    default="html",
    show_default=True,
    help="html, markdown, json, csv, or one a plugin adds.",
)
@click.option(
    "--template",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your own Jinja template (rendered in Jinja's sandbox).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="File to write (written whole or not at all).",
)
@_as_of_option
@_query_command
def report_command(
    query: Query, renderer: str, template: Path | None, output: Path, as_of: str | None
) -> None:
    """Compute KPIs, evaluate rules and render a report.

    \b
    Example:
      kpi report --all --from 2025-01-01 --to 2026-01-01 -o report.html
      kpi report win_rate --by region --renderer markdown -o report.md
    """
    from kpiengine.render.renderers import find_renderer, render_report, suffix_mismatch
    from kpiengine.render.report_data import build_report

    _check_writable(output)  # before the work, not after it
    if template is not None:
        _check_template(template)
    names = query.sound_names(default="all")
    project = query.project
    chosen = find_renderer(renderer, project.plugins)
    mismatch = None if _is_stream(output) else suffix_mismatch(chosen, output)
    if mismatch:
        say(f"kpi: warning: {mismatch}")
    with query.connect() as connection, computing(names), dialect_warnings(connection.dialect):
        result = project.run(names, connection, _as_of(as_of), **query.options)
    report = build_report(project.model, result, result.alerts, result.statuses)
    _write_output(output, render_report(chosen, report, template).content)
    say(f"wrote {output} ({len(report.cards)} KPIs, {len(result.alerts)} alerts)")
    query.finish()


@cli.command()
@click.argument("kpi")
@click.option("--dialect", default="duckdb", show_default=True)
@_common
def explain(
    kpi: str,
    dialect: str,
    project_path: Path | None,
    connector_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """Show a KPI's lineage: inputs, sources, columns, and the SQL.

    \b
    Example:
      kpi explain clv_cac_ratio
    """
    from kpiengine.render.explain import explain_kpi

    project = _load(project_path, plugins)
    if kpi not in project.model.kpis:
        from kpiengine.diagnostics import did_you_mean

        hint = did_you_mean(kpi, project.model.kpis)
        raise UsageError(f"unknown KPI `{kpi}`" + (f"; {hint}" if hint else ""))
    with dialect_warnings(dialect):
        text = explain_kpi(project, kpi, dialect)
    click.echo(text)


@cli.command()
@click.argument("kind", required=False, type=click.Choice(["project", "source", "kpi", "rule"]))
@click.option(
    "--write",
    "write_dir",
    type=click.Path(path_type=Path),
    help="Write every schema as <kind>.schema.json into this folder.",
)
def schema(kind: str | None, write_dir: Path | None) -> None:
    """Print the JSON Schema of a definition file kind (for editors and CI).

    \b
    Example:
      kpi schema kpi > kpi.schema.json
      kpi schema --write .schemas/
    """
    import json

    from kpiengine.loader.definitions import schema_for

    kinds = ["project", "source", "kpi", "rule"]
    if write_dir is not None:
        if write_dir.exists() and not write_dir.is_dir():
            raise UsageError(f"cannot write schemas into `{write_dir}`: it is a file")
        write_dir.mkdir(parents=True, exist_ok=True)
        for name in kinds:
            (write_dir / f"{name}.schema.json").write_text(
                json.dumps(schema_for(name), indent=2) + "\n", encoding="utf-8"
            )
        click.echo(f"wrote {len(kinds)} schemas to {write_dir}")
        return
    if kind is None:
        click.echo(json.dumps({name: schema_for(name) for name in kinds}, indent=2))
    else:
        click.echo(json.dumps(schema_for(kind), indent=2))


#: a sanity bound on generated rows: an absurd --rows is refused at once, not after
#: minutes of allocation (10 million is the largest size measured, SPEC §12)
MAX_SAMPLE_ROWS = 100_000_000


def _rows_option(function: Any) -> Any:
    return click.option(
        "--rows",
        default=100_000,
        show_default=True,
        type=click.IntRange(max=MAX_SAMPLE_ROWS),
        help="Opportunities to generate (100 to 100,000,000).",
    )(function)


@cli.command()
@_rows_option
@click.option("--seed", default=42, show_default=True, help="Random seed (same seed, same data).")
@click.option(
    "--out",
    "out",
    default="demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder for warehouse.duckdb and report.html.",
)
def demo(rows: int, seed: int, out: Path) -> None:
    """Build the sample B2B warehouse, run the whole catalog, write an HTML report.

    \b
    Example:
      kpi demo --rows 100000 --out demo
    """
    from kpiengine.demo import run_demo

    outcome = run_demo(out, rows=rows, seed=seed)
    click.echo(outcome.summary)
    click.echo(
        f"\n{outcome.kpis} KPIs computed on DuckDB ({outcome.warehouse}), {outcome.alerts} "
        f"alerts, {outcome.seconds:.1f} s\nreport: {outcome.report}"
    )


@cli.command(name="sample-data")
@click.option(
    "--to",
    "url",
    required=True,
    metavar="URL",
    help="duckdb:///file.duckdb, sqlite:///file.db, files:///dir (?format=csv), or a "
    "scheme a plugin writes (postgresql://...).",
)
@_rows_option
@click.option("--seed", default=42, show_default=True)
@click.option("--replace", is_flag=True, help="Replace sample tables that already exist.")
@_plugin_option
def sample_data(url: str, rows: int, seed: int, replace: bool, plugins: tuple[str, ...]) -> None:
    """Write the sample B2B dataset (15 tables) to a database or folder.

    \b
    Example:
      kpi sample-data --to duckdb:///warehouse.duckdb --rows 1000000
    """
    import time

    from kpiengine.plugins.manager import PluginHost
    from kpiengine.render.progress import progress
    from kpiengine.sample import TABLES, write_sample

    began = time.perf_counter()
    host = PluginHost(plugins)
    with progress(len(TABLES)) as bar:
        counts = write_sample(
            url,
            rows=rows,
            seed=seed,
            replace=replace,
            plugins=host,
            progress=lambda table, n: bar.note(f"{table}: {n:,} rows"),
        )
    total = sum(counts.values())
    click.echo(
        f"wrote {len(counts)} tables, {total:,} rows to {redact_urls(url)} in "
        f"{time.perf_counter() - began:.1f} s"
    )


@cli.command()
@_common
def catalog(project_path: Path | None, connector_url: str | None, plugins: tuple[str, ...]) -> None:
    """Print the KPI catalog as Markdown (docs/catalog.md is this output).

    \b
    Example:
      kpi catalog --project definitions > docs/catalog.md
    """
    from kpiengine.render.catalog_doc import render_catalog

    project = _load(project_path, plugins)
    click.echo(render_catalog(project.model), nl=False)


@cli.command(name="plugins")
@_project_option
@_plugin_option
def plugins_command(project_path: Path | None, plugins: tuple[str, ...]) -> None:
    """List installed plugins, their versions and what each adds.

    \b
    Example:
      kpi plugins --plugin my_company.kpi_plugin
      kpi plugins --project definitions
    """
    from kpiengine.plugins.manager import PluginHost

    host = PluginHost(plugins)
    if project_path is not None:  # the project's `plugins:` list and `plugin_config:` too
        from kpiengine import api

        api.load_and_check(project_path, plugins=host)
    click.echo(host.describe())


# -- review commands (SPEC §13.9; the work is in kpiengine.review) -------------------


@cli.command(name="test")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "junit"]),
    default="text",
    show_default=True,
)
@click.option(
    "--connector",
    "connector_url",
    metavar="URL",
    help="Load the fixtures into a scratch database of this engine (default: an "
    "in-memory DuckDB); sqlite:// uses a temporary file, postgresql:// a scratch schema.",
)
@_project_option
@_plugin_option
def test_command(
    path: Path | None,
    fmt: str,
    connector_url: str | None,
    project_path: Path | None,
    plugins: tuple[str, ...],
) -> None:
    """Run the YAML tests (files with a top-level `test:`) on their fixture rows.

    \b
    Example:
      kpi test definitions
      kpi test definitions/tests/win_rate.yaml --format junit > kpi-tests.xml
      kpi test --connector sqlite://
    """
    from kpiengine.review.outcome_formats import render
    from kpiengine.review.project_root import project_for
    from kpiengine.review.unit_tests import run_tests

    project = _load(project_path if project_path is not None else project_for(path), plugins)
    session = run_tests(project, path, connector_url)
    click.echo(render(session, fmt))
    if not session.ok:
        raise SystemExit(1)


@cli.command(name="init")
@click.argument("folder", required=False, default=".", type=click.Path(path_type=Path))
@click.option(
    "--connector",
    "connector_url",
    metavar="URL",
    help="Write one source per table of this connection (e.g. files:///data, a folder "
    "of CSV files), with its columns and types.",
)
def init_command(folder: Path, connector_url: str | None) -> None:
    """Start a project: project file, sources, an example KPI and an example test.

    \b
    Example:
      kpi init shop --connector files:///data
      kpi init starter
    """
    from kpiengine.review.init_project import init_project

    written = init_project(folder, connector_url)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: kpi validate {folder} && kpi test {folder}")


@cli.command(name="cohort")
@click.argument("kpi")
@click.option(
    "--cohort",
    "column",
    required=True,
    metavar="SOURCE.COLUMN",
    help="Date column whose period is the cohort, e.g. accounts.customer_since.",
)
@click.option(
    "--per",
    metavar="COLUMN",
    help="Entity column (e.g. account_id): adds gross retention, each entity capped at "
    "its value at age 0.",
)
@click.option("--grain", type=click.Choice(GRAINS), default="month", show_default=True)
@click.option("--from", "start", metavar="DATE", help="Range start (included).")
@click.option("--to", "end", metavar="DATE", help="Range end (excluded).")
@click.option("--where", metavar="EXPR", help="Row filter over dimensions.")
@click.option(
    "--max-periods", "max_periods", type=click.IntRange(min=1), metavar="N", help="Period cap."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv", "markdown", "html"]),
    default="text",
    show_default=True,
)
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), help="File to write.")
@_common
def cohort_command(
    kpi: str,
    column: str,
    per: str | None,
    grain: str,
    start: str | None,
    end: str | None,
    where: str | None,
    max_periods: int | None,
    fmt: str,
    out: Path | None,
    project_path: Path | None,
    connector_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """Retention triangle: a KPI by cohort (the period of a date column) and age.

    \b
    Example:
      kpi cohort mrr --cohort accounts.customer_since --from 2025-01-01 --to 2026-01-01
      kpi cohort customers --cohort accounts.customer_since --format html -o cohorts.html
    """
    from kpiengine.cohort import cohort_plans, run_cohort
    from kpiengine.render.cohort_formats import render_cohort

    if out is not None:
        _check_writable(out)  # before the work, not after it
    project = _load(project_path, plugins)
    plans = cohort_plans(project, kpi, column, per, grain, start, end, where, max_periods)
    url = _connector_url(connector_url, project)
    with project.connect(url) as connection, computing([kpi]), dialect_warnings(connection.dialect):
        cohorts = run_cohort(project, plans, connection, column, per)
    text = render_cohort(cohorts, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        _write_output(out, text)
        say(f"wrote {out} ({len(cohorts.cohorts)} cohorts)")


@cli.command(name="diff")
@click.argument("base")
@click.argument("head", required=False)
@click.option("--grain", type=click.Choice(GRAINS), default="month", show_default=True)
@click.option("--by", "by", multiple=True, metavar="DIM", help="Group by a dimension (repeatable).")
@click.option("--from", "start", metavar="DATE", help="Range start (included).")
@click.option("--to", "end", metavar="DATE", help="Range end (excluded).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="text for terminals, markdown for a pull-request comment, json for tools.",
)
@click.option(
    "--fail-on-change",
    is_flag=True,
    help="Exit 1 when a KPI was added, removed or changed, or a value moved "
    "(title/description-only changes do not count).",
)
@click.option(
    "--allow-plugins",
    "allow_plugins",
    is_flag=True,
    help="Import the modules of both sides' `plugins:` lists (off by default, also on "
    "with KPI_ALLOW_PLUGINS=1).",
)
@_common
def diff_command(
    base: str,
    head: str | None,
    grain: str,
    by: tuple[str, ...],
    start: str | None,
    end: str | None,
    fmt: str,
    fail_on_change: bool,
    allow_plugins: bool,
    project_path: Path | None,
    connector_url: str | None,
    plugins: tuple[str, ...],
) -> None:
    """Compare the KPIs of two git revisions or folders: definitions and values.

    BASE and HEAD are folders or git revisions of the project's repository (read into
    temporary folders; your work tree is not touched); HEAD defaults to the working
    tree. Only the KPIs whose meaning changed, and those using them, are computed, on
    --connector (default: HEAD's `connector:`). Neither side's `plugins:` are imported
    unless --allow-plugins.

    \b
    Exit 0, or 1 with --fail-on-change when something changed; 2 on usage errors.
    Example:
      kpi diff origin/main --from 2024-01-01 --to 2025-01-01 --format markdown
      kpi diff old_definitions/ definitions/ --fail-on-change
    """
    from kpiengine import api
    from kpiengine.loader.definitions import find_project_root
    from kpiengine.review.diff import SideError, run_diff
    from kpiengine.review.diff_formats import render

    allowed = allow_plugins or api.plugins_allowed_by_environment()
    options = {"grain": grain, "start": start, "end": end, "by": by}
    project = project_path if project_path is not None else find_project_root()
    try:
        found = run_diff(base, head, project, connector_url, options, allowed, plugins)
    except SideError as error:
        say(f"kpi: error: the definitions of {error.label} have errors:")
        raise
    if found.values_skipped:
        say(f"kpi: warning: values not compared: {found.values_skipped}")
    click.echo(render(found, fmt))
    if fail_on_change and found.changed:
        raise SystemExit(1)


# -- entry point -----------------------------------------------------------------------


class _Interrupts:
    """Ctrl-C (SIGINT) while the CLI runs: stop the engine now, say ``aborted``, exit 130.

    Two paths, since Python runs signal handlers only between bytecodes: in Python code,
    the handler raises KeyboardInterrupt as usual; while an engine runs a statement in
    native code, a watcher thread woken through :func:`signal.set_wakeup_fd` asks it to
    stop (:func:`kpiengine.execute.run.interrupt_running`), and the engine's own error comes
    out (DuckDB "Query interrupted", SQLite "interrupted"). Either way the user asked to
    stop, so ``seen`` decides the exit, whatever the exception.
    """

    def __init__(self) -> None:
        self.seen = False
        self.finishing = False  # main is reporting: a late signal must not raise there
        self._previous: Any = None
        self._wakeup: tuple[Any, Any] | None = None
        self._previous_fd = -1

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._interrupt)
        import socket

        reader, writer = socket.socketpair()
        writer.setblocking(False)
        try:
            self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not allowed here: the handler alone still works
            reader.close()
            writer.close()
            return self
        self._wakeup = (reader, writer)
        threading.Thread(target=self._watch, args=(reader,), daemon=True).start()
        return self

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.seen = True
        if not self.finishing:
            raise KeyboardInterrupt

    def _watch(self, reader: Any) -> None:
        from kpiengine.execute.run import interrupt_running

        with reader:  # until __exit__ closes the other end
            while True:
                try:
                    data = reader.recv(64)
                except OSError:
                    return
                if not data:
                    return
                if signal.SIGINT in data:
                    self.seen = True
                    interrupt_running()

    def __exit__(self, *exc: object) -> None:
        if self._previous is None:
            return
        signal.signal(signal.SIGINT, self._previous)
        if self._wakeup is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._wakeup[1].close()  # the watcher reads the end of it and stops


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map every error to a message and an exit code, never a traceback."""
    with _Interrupts() as interrupts:
        try:
            if argv is not None:
                _check_arguments(argv)
            with _warnings_as_lines():
                cli.main(args=argv, prog_name="kpi", standalone_mode=False)
        except BaseException as error:
            interrupts.finishing = True
            if interrupts.seen or isinstance(error, KeyboardInterrupt | click.exceptions.Abort):
                click.echo("aborted", err=True)
                return 130
            return _exit_code(error)
    return 0


def _check_arguments(argv: list[str]) -> None:
    """What a process's arguments cannot hold but a caller of :func:`main` can pass: a NUL,
    or a lone surrogate (which no file name or output can encode)."""
    for arg in argv:
        if "\x00" in arg:
            raise UsageError("an argument contains a NUL character")
        try:
            arg.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise UsageError("an argument is not valid Unicode (a lone surrogate)") from None


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """kpiengine's logged warnings (a plugin that failed to load) as ``kpi: warning:``
    lines, URLs redacted, instead of bare log lines."""

    class Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            say(f"kpi: warning: {record.getMessage()}")

    logger = logging.getLogger("kpiengine")
    handler = Echo(logging.WARNING)
    logger.addHandler(handler)  # found first: Python's bare last-resort output is not used
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _exit_code(error: BaseException) -> int:
    """Show ``error`` (URLs redacted) and return the exit code its kind has (SPEC §6)."""
    if isinstance(error, click.exceptions.Exit):
        return int(error.exit_code or 0)
    if isinstance(error, click.ClickException):
        import io

        shown = io.StringIO()
        error.show(file=shown)
        say(shown.getvalue(), nl=False)
        return 2
    if isinstance(error, DefinitionError):
        _show_definition_error(error)
        return error.exit_code
    if isinstance(error, UsageError | EngineError):
        kind = "error" if isinstance(error, UsageError) else "engine error"
        say(f"kpi: {kind}: {error}")
        return error.exit_code
    if isinstance(error, KpiError):
        say(f"kpi: {error}")
        return error.exit_code
    if isinstance(error, SystemExit):
        return int(error.code or 0) if isinstance(error.code, int | None) else 1
    if isinstance(error, OSError):  # a path the file system refuses (too long, no access)
        name = str(error.filename) if error.filename is not None else ""
        if len(name) > 200:
            name = f"{name[:60]}... ({len(name):,} characters)"
        where = f" `{name}`" if name else ""
        say(f"kpi: error: cannot use{where}: {error.strerror or error}")
        return 2
    if not isinstance(error, Exception):
        raise error
    # last resort: a bug of ours, still no traceback
    say(
        f"kpi: internal error: {error!r}\n  hint: please report this with "
        "the command you ran (set KPI_DEBUG=1 to see the traceback)"
    )
    import os

    if os.environ.get("KPI_DEBUG"):
        raise error
    return 2


def _show_definition_error(error: DefinitionError) -> None:
    from kpiengine.render.diagnostic_formats.text import render_one
    from kpiengine.source import SourceTexts

    texts = getattr(error, "texts", None) or SourceTexts()
    for diagnostic in error.diagnostics:
        say(render_one(diagnostic, texts))


def entry() -> None:
    sys.exit(main())
