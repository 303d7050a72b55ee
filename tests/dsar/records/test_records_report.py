"""The reviewer report: counts, on-time share, durations, and the §7101 / Rule 6.11 fields."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_records_cli import root
from test_records_record_setup import BACKENDS, clock_of, complete_request, make_app

from dsar import requests
from dsar.app import App
from dsar.identities import Identity
from dsar.records.reviewer_report import build_report, report_rows, rows_csv, summarize


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def _scenario(app: App) -> dict[str, str]:
    """Four requests: two completed (one late), one refused, one still open."""
    made = {"fast": complete_request(app, days=2), "late": complete_request(app, days=40,
                                                                            extend=False)}
    made["access"] = complete_request(app, kind="access", regime="ccpa", days=10, extend=True)
    refused = requests.submit(app, "erasure", [Identity("email", "email", "x@example.com")],
                              submitted_by="t", channel="web")
    requests.reject(app, refused.request.id, "the same request was answered last week", "dpo",
                    ground="excessive")
    made["refused"] = refused.request.id
    clock_of(app).advance(days=1)
    made["open"] = requests.submit(app, "export", [Identity("email", "email", "y@example.com")],
                                   submitted_by="t", identity_method="email-link").request.id
    return made


def test_report_summary_and_rows(app: App) -> None:
    made = _scenario(app)
    with app.db.session() as session:
        data = build_report(session, tz="UTC")
    s = data["summary"]
    assert s["requests"] == 5
    assert s["by_kind"] == {"access": 1, "erasure": 3, "export": 1}
    assert s["by_regime"] == {"ccpa": 1, "gdpr": 4}
    assert {"kind": "erasure", "regime": "gdpr", "requests": 3} in s["by_kind_and_regime"]
    assert (s["completed"], s["refused"], s["open"], s["extended"]) == (3, 1, 1, 1)
    assert (s["answered"], s["answered_on_time"]) == (4, 3)
    assert s["on_time_share"] == 0.75
    assert s["median_days_to_complete"] == 10.08  # 2, 10 (+2h extension), 40 days
    assert s["p95_days_to_complete"] == 40.0
    rows = {r["request_id"]: r for r in data["requests"]}
    refused = rows[made["refused"]]
    assert refused["response"] == "refused" and refused["channel"] == "web"
    assert "excessive" in refused["denial_basis"] and refused["on_time"] is True
    assert rows[made["late"]]["on_time"] is False
    assert rows[made["open"]]["response"] == "open" and rows[made["open"]]["on_time"] is None
    assert rows[made["fast"]]["denial_basis"] is None


def test_report_period_is_by_local_date_of_receipt(app: App) -> None:
    _scenario(app)
    with app.db.session() as session:
        march_3 = report_rows(session, start=date(2025, 3, 3), end=date(2025, 3, 3))
        later = report_rows(session, start=date(2025, 3, 4), tz="Pacific/Kiritimati")
    assert len(march_3) == 1
    assert all(r.received_on >= date(2025, 3, 4) for r in later)
    assert summarize([])["on_time_share"] is None


def test_report_command_json_and_csv(app: App) -> None:
    _scenario(app)
    env = {"DSAR_DATA_DIR": str(app.settings.data_dir), "DSAR_DATABASE_URL": app.db.url}
    out = CliRunner().invoke(root, ["report", "--json"], env=env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["summary"]["requests"] == 5
    out = CliRunner().invoke(root, ["report", "--csv", "--from", "2025-03-01"], env=env)
    parsed = list(csv.DictReader(io.StringIO(out.output)))
    assert len(parsed) == 5 and {"received_on", "kind", "channel", "responded_on", "response",
                                 "denial_basis"} <= set(parsed[0])
    text = CliRunner().invoke(root, ["report"], env=env)
    assert text.exit_code == 0 and "answered on time: 3/4" in text.output
    bad = CliRunner().invoke(root, ["report", "--from", "2025-04-01", "--to", "2025-03-01"],
                             env=env)
    assert bad.exit_code == 2 and "swap" in bad.output


def test_csv_neutralises_formulas() -> None:
    rows = [{"request_id": "dsr_1", "denial_basis": "=HYPERLINK(\"x\")"}]
    assert "'=HYPERLINK" in rows_csv(rows)
