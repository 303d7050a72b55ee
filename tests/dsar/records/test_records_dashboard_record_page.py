"""The record page at a glance: one sentence, local times without microseconds, identity
verification and delivery, columns that fit the kind, explained counts, a verification summary."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_records_cli import root
from test_records_record_setup import BACKENDS, clock_of, complete_request, make_app

from dsar import requests
from dsar.app import App
from dsar.db.models import Request
from dsar.records import keys
from dsar.records.glance import collection_notes, summary_sentence


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    for made in make_app(request.param, tmp_path):
        # the controller's zone is Berlin: times must be shown there, with the zone named
        yield dataclasses.replace(made, settings=dataclasses.replace(
            made.settings, timezone="Europe/Berlin"))


class _Table(HTMLParser):
    """The header cells of the table with class ``systems``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.cell, self.headers = False, False, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "systems") in attrs:
            self.inside = True
        self.cell = self.inside and tag == "th"

    def handle_endtag(self, tag: str) -> None:
        self.inside = self.inside and tag != "table"
        self.cell = False

    def handle_data(self, data: str) -> None:
        if self.cell:
            self.headers.append(data.strip())


def headers(page: str) -> list[str]:
    parser = _Table()
    parser.feed(page)
    return parser.headers


def page_of(app: App, request_id: str, tmp_path: Path) -> str:
    out = tmp_path / f"{request_id}.html"
    env = {"DSAR_DATA_DIR": str(app.settings.data_dir), "DSAR_DATABASE_URL": app.db.url,
           "DSAR_LEDGER_ORIGIN": app.settings.ledger_origin, "DSAR_TIMEZONE": "Europe/Berlin"}
    result = CliRunner().invoke(root, ["record", request_id, "--html", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_erasure_page_reads_at_a_glance(app: App, tmp_path: Path) -> None:
    request_id = complete_request(app, pause_first=True)
    page = page_of(app, request_id, tmp_path)
    summary = re.search(r'<p class="summary" id="summary">(.*?)</p>', page, re.S).group(1)
    assert summary.startswith("An erasure request under GDPR, received 2025-03-03")
    assert "5 deleted, 1 masked, 1 kept under a legal ground" in summary
    assert "on time (due" in summary
    assert "times in Europe/Berlin" in page
    assert "2025-03-03 10:00 CET" in page  # 09:00 UTC received, shown in Berlin
    assert not re.search(r"\d\d:\d\d:\d\d", page.split("<h2>Signed envelope")[0])
    assert "2025-03-04 10:00 CET by email-link" in page  # identity: method and time
    assert "(waiting for identity verification)" in page
    assert headers(page) == ["System", "Collection", "Action", "Found", "Deleted", "Masked",
                             "Retained", "Remaining", "Outcome"]
    assert "3 object versions deleted" in page
    assert "1 kept under Art. 17(3)(b) for P6Y" in page
    assert "All checks passed" in page and "not who signed it" in page
    assert "Delivered" not in page  # nothing is delivered for an erasure


def test_access_page_has_access_columns_and_delivery(app: App, tmp_path: Path) -> None:
    request_id = complete_request(app, kind="access", export_bundle=True,
                                  items=(("crm", "customers", "collect", {}),
                                         ("s3", "uploads", "collect", {"collected": 1})))
    before = page_of(app, request_id, tmp_path)
    assert "not downloaded yet" in before
    assert headers(before) == ["System", "Collection", "Found", "Collected", "Outcome"]
    assert "Deleted" not in before and "Masked" not in before
    clock = clock_of(app)
    with app.db.session() as session:
        request = session.get(Request, request_id)
        for hours in (3, 30):
            requests.add_event(session, request, clock.now + timedelta(hours=hours),
                               "data subject", "downloaded", None, None, "bundle x")
    page = page_of(app, request_id, tmp_path)
    assert re.search(r"first downloaded 2025-03-\d\d \d\d:\d\d CET \(2 downloads\)", page)
    assert "An access request under GDPR" in page and "3 collected for the copy" in page


def test_page_with_the_published_key_says_so(app: App, tmp_path: Path) -> None:
    from dsar.records.html import render_record_html
    from dsar.records.record_bundle import make_bundle
    from dsar.records.verify import verify_bundle

    request_id = complete_request(app)
    with app.db.session() as session:
        bundle = make_bundle(session, app, request_id)
    trusted = keys.public_keys(app.settings.signing_keys_dir)
    page = render_record_html(bundle, verify_bundle(bundle, public_keys=trusted))
    assert "with the controller's published key" in page
    bundle["evidence"][0]["found"] = 99
    broken = render_record_html(bundle)
    assert "Verification failed:" in broken and "evidence-root" in broken


def test_notes_explain_differing_counts() -> None:
    s3 = {"found": 1, "deleted": 2, "counts": {"versions_deleted": 2, "markers_removed": 1},
          "outcome": "ok"}
    assert collection_notes(s3) == ["2 object versions deleted", "1 delete marker removed",
                                    "found counts objects (1), deleted counts their versions"]
    shared = {"found": 3, "deleted": 2, "counts": {"kept_shared": 1}, "remaining": 0,
              "outcome": "ok"}
    assert collection_notes(shared) == ["kept: shared with other records (1)"]
    left = {"found": 3, "deleted": 2, "remaining": 1, "outcome": "failed",
            "error_code": "timeout"}
    assert collection_notes(left) == ["a recount still found 1: erasure is not complete",
                                      "failed: timeout"]


def test_summary_of_a_refused_request() -> None:
    p = {"request": {"kind": "erasure", "regime": "gdpr", "channel": "web"},
         "rule": {"timezone": "UTC"},
         "timeline": {"received": "2025-03-03T09:00:00Z"},
         "deadline": {"effective_due": "2025-04-03", "completed_local_date": "2025-03-05",
                      "on_time": True},
         "result": {"state": "rejected", "closing_reason": "manifestly unfounded"},
         "systems": []}
    assert summary_sentence(p) == (
        "An erasure request under GDPR, received 2025-03-03 via web; it was refused "
        "(manifestly unfounded); answered 5 March 2025, on time (due 3 April 2025).")
