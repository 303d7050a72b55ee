"""The reviewer dashboard (`dsar report --html`) and the CCPA §7102 metrics: the charts' data,
read back from the SVG, agrees with the report's numbers."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from test_records_cli import root
from test_records_record_setup import BACKENDS, make_app
from test_records_report import _scenario

from dsar.app import App
from dsar.records.charts import Series, bar_chart, hbar_chart
from dsar.records.reviewer_report import build_dashboard, build_report, ccpa_7102, report_rows

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def charts(page: str) -> dict[str, ET.Element]:
    """Every chart of a page, parsed as XML, by its data-chart name."""
    found = {}
    for svg in re.findall(r"<svg .*?</svg>", page, flags=re.S):
        element = ET.fromstring(svg)
        found[element.get("data-chart")] = element
    return found


def bars(chart: ET.Element) -> dict[tuple[str, str], float]:
    """``{(category, series): value}`` of a chart's bars, and each title says the same."""
    out = {}
    for rect in chart.iter(f"{SVG}rect"):
        key = (rect.get("data-category"), rect.get("data-series"))
        out[key] = float(rect.get("data-value"))
        title = rect.find(f"{SVG}title").text
        assert title.startswith(key[0]) and rect.get("data-value") in title
    return out


def env_of(app: App) -> dict[str, str]:
    return {"DSAR_DATA_DIR": str(app.settings.data_dir), "DSAR_DATABASE_URL": app.db.url}


def test_dashboard_charts_carry_the_reports_numbers(app: App, tmp_path: Path) -> None:
    made = _scenario(app)
    page_file = tmp_path / "dashboard.html"
    result = CliRunner().invoke(root, ["report", "--html", "-o", str(page_file)],
                                env=env_of(app))
    assert result.exit_code == 0, result.output
    page = page_file.read_text()
    assert "<script" not in page and "http://" not in page.replace(SVG[1:-1], "")
    found = charts(page)
    assert set(found) == {"weekly-kind", "weekly-channel", "on-time", "days", "open",
                          "systems", "extensions", "refusals"}
    with app.db.session() as session:
        summary = build_report(session)["summary"]
        rows = report_rows(session)
    by_kind = bars(found["weekly-kind"])
    for kind, n in summary["by_kind"].items():
        assert sum(v for (_, k), v in by_kind.items() if k == kind) == n
    by_channel = bars(found["weekly-channel"])
    assert {c: sum(v for (_, k), v in by_channel.items() if k == c)
            for c in summary["by_channel"]} == summary["by_channel"]
    share = bars(found["on-time"])
    months = {r.responded_on.strftime("%Y-%m") for r in rows if r.on_time is not None}
    assert {m for m, _ in share} == months
    answered = [r for r in rows if r.on_time is not None]
    for (month, _), value in share.items():
        mine = [r for r in answered if r.responded_on.strftime("%Y-%m") == month]
        assert value == pytest.approx(100 * sum(r.on_time for r in mine) / len(mine), abs=0.1)
    days = bars(found["days"])
    assert sum(v for (_, s), v in days.items() if s == "late") == 1  # the 40-day one
    assert sum(days.values()) == summary["completed"]
    assert bars(found["open"])[("overdue", "requests")] == 1  # the open one, months later
    assert made["open"] in page
    systems = bars(found["systems"])
    assert systems[("crm", "deleted")] == 3 * (1 + 2) and systems[("s3", "found")] == 3 * 2
    assert "Art. 17(3)(b): 3" in page
    refusals = bars(found["refusals"])
    assert [v for (reason, _), v in refusals.items() if "answered last week" in reason] == [1]
    assert bars(found["extensions"]) == {("complex request: many systems", "requests"): 1.0}


def test_dashboard_needs_a_file_and_an_existing_folder(app: App, tmp_path: Path) -> None:
    env = env_of(app)
    bad = CliRunner().invoke(root, ["report", "--html"], env=env)
    assert bad.exit_code == 2 and "-o FILE" in bad.output and "Traceback" not in bad.output
    missing = tmp_path / "nowhere" / "d.html"
    bad = CliRunner().invoke(root, ["report", "--html", "-o", str(missing)], env=env)
    assert bad.exit_code == 2 and "does not exist" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_empty_dashboard_says_so(app: App, tmp_path: Path) -> None:
    with app.db.session() as session:
        data = build_dashboard(session, today=date(2026, 12, 4))
    from dsar.records.html import render_dashboard_html

    page = render_dashboard_html(data)
    assert "No open requests." in page and "No requests in the period." in page


def test_ccpa_7102_metrics(app: App) -> None:
    _scenario(app)
    with app.db.session() as session:
        rows = report_rows(session)
    data = {x["kind"]: x for x in ccpa_7102(rows, 2025)["kinds"]}
    erasure = data["erasure"]
    assert (erasure["received"], erasure["complied_in_whole_or_part"], erasure["denied"]) == \
        (3, 2, 1)
    # completed after 2 and 40 days, refused the day it came: 0, 2, 40
    assert erasure["median_days_to_respond"] == 2 and erasure["mean_days_to_respond"] == 14
    assert data["export"]["received"] == 1 and data["export"]["median_days_to_respond"] is None
    assert ccpa_7102(rows, 2024)["kinds"][0]["received"] == 0
    out = CliRunner().invoke(root, ["report", "--ccpa-7102", "2025", "--json"], env=env_of(app))
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["kinds"][1]["kind"] == "erasure"
    text = CliRunner().invoke(root, ["report", "--ccpa-7102", "2025"], env={
        **env_of(app), "COLUMNS": "80"})
    assert text.exit_code == 0 and "requests to delete" in text.output
    assert "None" not in text.output and "—" in text.output


def test_report_text_reads_yes_no_and_dash(app: App) -> None:
    _scenario(app)
    text = CliRunner().invoke(root, ["report"], env={**env_of(app), "COLUMNS": "200"})
    assert text.exit_code == 0
    assert "True" not in text.output and "False" not in text.output
    assert "None" not in text.output and " yes " in text.output


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 10_000), min_size=2, max_size=2), min_size=1,
                max_size=30),
       st.booleans(), st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                        max_size=90), min_size=1, max_size=6))
def test_charts_give_back_what_they_draw(values: list[list[int]], stacked: bool,
                                         labels: list[str]) -> None:
    categories = [f"c{i}<&>" for i in range(len(values))]
    series = [Series("a\"'", [v[0] for v in values], "#000"),
              Series("b", [v[1] for v in values], "#111")]
    drawn = bars(ET.fromstring(str(bar_chart("x", "t & t", categories, series,
                                             stacked=stacked))))
    assert drawn == {(c, s.name): float(s.values[i]) for i, c in enumerate(categories)
                     for s in series}
    items = [(label, i, "#222") for i, label in enumerate(labels)]
    back = ET.fromstring(str(hbar_chart("y", "t", items)))
    assert [r.get("data-category") for r in back.iter(f"{SVG}rect")] == labels

