"""The staff area in Chromium, without JavaScript of ours: sign in, filter the queue, open a
request and confirm its identity. Every page passes axe-core (WCAG 2.1 AA), does not scroll
sideways at 320 px, and is photographed at desktop width and 390 px into
test-artifacts/portal/ (staff-*.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dsar import requests
from dsar.app import App
from dsar.identities import Identity
from interfaces.portal import make_portal
from interfaces.portal import staff_accounts as accounts
from tests.interfaces.portal.browser import Checker, free_port, require_browser, serve
from tests.interfaces.portal.conftest import DEMO_MAP, Inbox

pytestmark = pytest.mark.usefixtures("chromium")  # marks them `browser`

PASSWORD = "correct horse battery staple"


def test_staff_sign_in_filter_and_confirm_in_chromium(tmp_path: Path, inbox: Inbox) -> None:
    from playwright.sync_api import sync_playwright

    require_browser()
    port = free_port()
    shutil.copyfile(DEMO_MAP, tmp_path / "datamap.yaml")
    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_TIMEZONE": "Europe/Berlin",
                        "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                        "DSAR_MAIL_FROM": "privacy@northwind.example",
                        "DSAR_PUBLIC_URL": f"http://127.0.0.1:{port}"})
    waiting = requests.submit(app, "erasure", [Identity("email", "email",
                                                        "henri.gilles.1@example.org")],
                              channel="web", submitted_by="test").request.id
    working = requests.submit(app, "access", [Identity("email", "email",
                                                       "henri.gilles.1@example.org")],
                              submitted_by="test", identity_method="email-link").request.id
    accounts.add_user(app, "alice", PASSWORD)

    with serve(make_portal(app, sweep_expired=False), port) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      java_script_enabled=True, bypass_csp=True)
        page = context.new_page()
        check = Checker(page, "staff")

        page.goto(base + "/staff")
        assert page.url.endswith("/staff/login")
        check.check("login")
        page.get_by_label("Name").fill("alice")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        assert "Wrong name or password" in page.locator(".error").inner_text()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        assert page.url.endswith("/staff")
        ids = page.locator("#queue td.id").all_inner_texts()
        assert set(ids) == {waiting, working}
        check.check("queue")

        page.get_by_label("State").select_option("awaiting_identity")
        page.get_by_label("Channel").select_option("web")
        page.get_by_role("button", name="Filter").click()
        assert "state=awaiting_identity" in page.url
        assert page.locator("#queue td.id").all_inner_texts() == [waiting]
        check.check("queue-filtered")

        page.get_by_role("link", name=waiting).click()
        assert "h***@example.org" in page.locator("#identities").inner_text()
        check.check("request")
        page.get_by_label("Method (no documents are kept)").fill("called back on their number")
        page.get_by_role("button", name="Confirm identity").click()
        assert "Identity confirmed" in page.locator(".ok").inner_text()
        assert page.locator("#state").inner_text().startswith("in_progress")
        assert "staff:alice" in page.locator("#timeline").inner_text()
        check.check("request-confirmed")
        browser.close()

    done = requests.load(app, waiting)
    assert done.identity_method == "called back on their number"
    assert [e.actor for e in done.events if e.event == "identity_verified"] == ["staff:alice"]
    assert [e.event for e in accounts.events(app)].count("signed_in") == 1
