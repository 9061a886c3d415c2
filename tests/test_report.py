"""Reports: every renderer shows the product's numbers; HTML is self-contained and safe."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from kpiengine.cli import main
from tests.conftest import ACCOUNTS, OPPORTUNITIES, SALES_FILES, SPEND, make_duckdb, write_files

EVIL = "<script>alert(1)</script>"
FILES = {
    **SALES_FILES,
    "kpis/evil.yaml": f"""
        kpi: evil
        title: "{EVIL}"
        description: "<img src=x onerror=alert(2)>"
        source: opportunities
        expression: count()
        unit: count
        rules:
          - name: many
            when: value >= 3
            severity: warning
            message: "{{{{ value }}}} deals <b>bold</b>"
        """,
}


@pytest.fixture
def env(tmp_path):
    root = write_files(tmp_path / "defs", FILES)
    url = make_duckdb(
        tmp_path / "w.duckdb",
        {"opportunities": OPPORTUNITIES, "accounts": ACCOUNTS, "spend": SPEND},
    )
    return root, url, tmp_path


def report(capsys, env, *args):
    root, url, _ = env
    code = main(
        [
            "report",
            "--project",
            str(root),
            "--connector",
            url,
            "--from",
            "2024-01-01",
            "--to",
            "2024-06-01",
            *args,
        ]
    )
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def test_html_is_self_contained_and_escaped(env, capsys):
    out = env[2] / "r.html"
    code, _ = report(capsys, env, "evil", "revenue", "win_rate", "-o", str(out))
    assert code == 0
    html = out.read_text()
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html and "onerror=alert" not in html.replace("&lt;", "")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # rule messages are text too
    assert not re.search(r"(src|href)=\"?https?://", html)  # no network, no CDN
    assert html.count('<svg class="trend"') == 3  # one chart per KPI
    assert "110 EUR" in html and "66.7 %" in html
    assert "All 2 alerts in the range" in html  # evil fires in January and March (3 deals)


def test_html_by_dimension_has_a_series_per_value(env, capsys):
    out = env[2] / "r.html"
    code, _ = report(capsys, env, "win_rate", "--by", "region", "-o", str(out))
    assert code == 0
    html = out.read_text()
    assert html.count("<polyline") == 4  # apac, emea, internal, ∅
    assert "internal: —" in html  # the latest period (May) has no closed deal


def test_json_and_csv_and_markdown_match_the_run(env, capsys):
    folder = env[2]
    assert (
        report(capsys, env, "revenue", "deals", "--renderer", "json", "-o", str(folder / "r.json"))[
            0
        ]
        == 0
    )
    doc = json.loads((folder / "r.json").read_text())
    values = {(r["kpi"], r["period"]): r["value"] for r in doc["rows"]}
    assert values[("revenue", "2024-01-01")] == 110 and values[("deals", "2024-02-01")] == 0
    assert values[("revenue", "2024-02-01")] is None
    assert report(capsys, env, "revenue", "--renderer", "csv", "-o", str(folder / "r.csv"))[0] == 0
    rows = list(csv.DictReader(io.StringIO((folder / "r.csv").read_text())))
    assert [(r["period"], r["value"]) for r in rows] == [
        ("2024-01-01", "110.0"),
        ("2024-02-01", ""),
        ("2024-03-01", "200.0"),
        ("2024-04-01", "70.0"),
        ("2024-05-01", ""),
    ]
    assert report(capsys, env, "evil", "--renderer", "markdown", "-o", str(folder / "r.md"))[0] == 0
    markdown = (folder / "r.md").read_text()
    assert "| warning | evil | 2024-01-01 | 3 deals &lt;b&gt;bold&lt;/b&gt; |" in markdown


def test_custom_template(env, capsys):
    folder = env[2]
    template = folder / "mine.j2"
    template.write_text(
        "{% for c in report.cards %}{{ c.name }}={{ c.series[0].latest }}\n{% endfor %}"
    )
    assert (
        report(
            capsys,
            env,
            "revenue",
            "deals",
            "--template",
            str(template),
            "-o",
            str(folder / "mine.txt"),
        )[0]
        == 0
    )
    assert (folder / "mine.txt").read_text() == "revenue=None\ndeals=0\n"  # May is empty


def test_bad_template_is_a_clear_error_and_writes_nothing(env, capsys):
    folder = env[2]
    template = folder / "bad.j2"
    template.write_text("{% for x in %}")
    code, err = report(
        capsys, env, "revenue", "--template", str(template), "-o", str(folder / "never.html")
    )
    assert code == 2
    assert "TemplateSyntaxError" in err and "bad.j2:1" in err
    assert not (folder / "never.html").exists()
    template.write_text("{{ report.__class__.__mro__ }}")
    code, err = report(
        capsys, env, "revenue", "--template", str(template), "-o", str(folder / "never.html")
    )
    assert code == 2 and "unsafe" in err
    assert not (folder / "never.html").exists()


def test_unknown_renderer(env, capsys):
    code, err = report(capsys, env, "revenue", "--renderer", "pdf", "-o", "x.pdf")
    assert code == 2 and "unknown renderer `pdf`" in err
