"""Downloads on the portal: the landing page, the file, the ledger of links, revocation."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.bundles import BundleMeta, build_bundle, download_links, open_store
from dsar.datamap.current import load_map
from dsar.db.models import Bundle
from dsar.db.rows import insert_rows
from dsar.identities import parse_identities
from dsar.lifecycle import State
from tests.interfaces.portal.conftest import Inbox, deliver


class Clock:
    def __init__(self, app: App) -> None:
        self.now = app.now()

    def __call__(self):
        return self.now


@pytest.fixture
def completed(app: App, tmp_path: Path) -> str:
    """A completed access request whose bundle sits in a folder other than DSAR_EXPORT_URL."""
    made = requests.submit(app, "access", parse_identities(["jane@example.org"]),
                           submitted_by="test", identity_method="test")
    store = open_store(str(tmp_path / "old-exports"))
    datamap, _ = load_map(app)
    info = build_bundle(BundleMeta(made.request.id, bundle_id=f"b_{made.request.id}",
                                   timezone="Europe/Berlin", link_ttl=timedelta(days=30)),
                        datamap, lambda: iter([]), store, app.keys.bundle_key, app.now())
    with app.db.session() as session:
        insert_rows(session, Bundle.__table__, [{
            "id": info.bundle_id, "request_id": made.request.id, "location": info.location,
            "sha256": info.sha256, "size": info.size, "created_at": info.created_at,
            "link_expires_at": info.expires_at, "deleted_at": None,
            "delete_after": info.created_at + timedelta(days=60)}])
        request = requests.get(session, made.request.id)
        request.state = State.COMPLETED.value
        request.completed_at = app.now()
    return made.request.id


def new_link(app: App, request_id: str, via: str = "test") -> str:
    with app.db.session() as session:
        bundle = download_links.bundle_of(session, request_id)
        return download_links.issue(session, app, bundle, via).token


def test_landing_page_then_the_file_each_on_the_record(
        client: TestClient, app: App, completed: str) -> None:
    token = new_link(app, completed)
    landing = client.get(f"/download/{token}")
    assert landing.status_code == 200
    assert "What is inside" in landing.text and "personal-data-" in landing.text
    assert "Europe/Berlin" in landing.text or "CET" in landing.text
    for _ in range(2):
        got = client.get(f"/download/{token}/file")
        assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
        assert zipfile.ZipFile(io.BytesIO(got.content)).testzip() is None
    events = [e.event for e in requests.load(app, completed).events]
    assert events.count("link_issued") == 1 and events.count("downloaded") == 2
    assert "download_page_viewed" in events
    reasons = " ".join(e.reason or "" for e in requests.load(app, completed).events)
    assert token not in reasons and "jane" not in reasons


def test_revoke_and_new_link_by_command(client: TestClient, app: App, completed: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import main

    old = new_link(app, completed)
    monkeypatch.setattr("interfaces.commands.context.CliState.app",
                        property(lambda self: app), raising=False)
    out = CliRunner().invoke(main, ["bundle", completed, "--revoke", "--new-link", "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["links_revoked"] == 1
    revoked = client.get(f"/download/{old}")
    assert revoked.status_code == 410 and "withdrawn" in revoked.text
    fresh = shown["link"].rsplit("/download/", 1)[1]
    got = client.get(f"/download/{fresh}/file")
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == shown["sha256"]


def test_an_expired_link_says_what_the_cli_does(app: App, completed: str, inbox: Inbox) -> None:
    from interfaces.portal import make_portal

    clock = Clock(app)
    app.clock = clock
    token = new_link(app, completed)
    clock.now += timedelta(days=31)  # past the link, before the bundle's deletion
    with TestClient(make_portal(app, sweep_expired=False)) as client:
        expired = client.get(f"/download/{token}")
        assert expired.status_code == 410 and "Ask us for a new link" in expired.text
        again = new_link(app, completed)  # what `dsar bundle --new-link` does
        assert client.get(f"/download/{again}/file").status_code == 200
        clock.now += timedelta(days=40)  # past the bundle's deletion
        gone = client.get(f"/download/{again}")
        assert gone.status_code == 410 and "deleted" in gone.text


def test_forged_and_unrecorded_links_are_refused(client: TestClient, app: App,
                                                 completed: str) -> None:
    from dsar.bundles import issue_link

    assert client.get("/download/bm90LWEtdG9rZW4.Zm9yZ2Vk").status_code == 403
    with app.db.session() as session:
        bundle = download_links.bundle_of(session, completed)
    unrecorded = issue_link(bundle.id, bundle.delete_after, app.keys.link_key)
    assert client.get(f"/download/{unrecorded}/file").status_code == 403
    assert client.post(f"/download/{unrecorded}/file").status_code == 405


def test_completion_email_carries_a_working_link(client: TestClient, app: App, completed: str,
                                                 inbox: Inbox) -> None:
    from dsar.mail import queue_message

    with app.db.session() as session:
        queue_message(session, app, requests.get(session, completed), "completion")
    assert deliver(app) == 1
    body = inbox.text(inbox.messages[-1])
    url = next(word for word in body.split() if "/download/" in word)
    token = url.rsplit("/download/", 1)[1]
    assert client.get(f"/download/{token}").status_code == 200
    events = [e for e in requests.load(app, completed).events if e.event == "link_issued"]
    assert [e.actor for e in events] == ["completion email"]
