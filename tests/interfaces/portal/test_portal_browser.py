"""The portal as a person uses it, in Chromium: submit, confirm by the emailed link, see the
status, let the fleet finish, get the completion email, download and open the ZIP; in English
and in German. Every page passes axe-core (WCAG 2.1 AA), does not scroll sideways at 320 px,
and is photographed at desktop width and 390 px into test-artifacts/portal/."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from dsar import requests
from interfaces.portal import make_portal
from tests.interfaces.portal.browser import Checker, free_port, require_browser, serve
from tests.interfaces.portal.conftest import Inbox
from tests.workflows.fleet_helpers import CUSTOMER, Fleet, several_chinooks, wait_until

pytestmark = pytest.mark.usefixtures("chromium")  # marks them `browser`

WORDS = {
    "en": {"send": "Send my request", "sent": "Check your email", "yes": "Yes, this is my request",
           "receipt": "Your receipt code is", "show": "Show", "working": "Where it stands",
           "ready": "Your data is ready", "download": "Download", "kind": "Give me a copy",
           "check": "Check our record"},
    "de": {"send": "Anfrage senden", "sent": "Sehen Sie in Ihr E-Mail-Postfach",
           "yes": "Ja, das ist meine Anfrage", "receipt": "Ihr Belegcode ist",
           "show": "Anzeigen", "working": "Stand", "ready": "Ihre Daten sind bereit",
           "download": "herunterladen", "kind": "Eine Kopie meiner Daten",
           "check": "Unseren Nachweis"},
}


@pytest.fixture
def fleet(tmp_path: Path, chinook_dir: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch):
    require_browser()
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    datamap["systems"] = datamap["systems"][:1]
    port = free_port()
    made = Fleet(tmp_path / "fleet", f"sqlite:///{tmp_path / 'state.db'}", "memory://", datamap,
                 {**env, "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                  "DSAR_MAIL_FROM": "privacy@chinook.example",
                  "DSAR_PUBLIC_URL": f"http://127.0.0.1:{port}",
                  "DSAR_TIMEZONE": "Europe/Berlin"})
    made.apply_env(monkeypatch)
    made.port = port  # type: ignore[attr-defined]
    yield made
    made.close()


def link_in(inbox: Inbox, pattern: str) -> str:
    text = inbox.text(inbox.messages[-1])
    return re.search(pattern, text).group(0)  # type: ignore[union-attr]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_a_person_gets_their_data_in_chromium(fleet: Fleet, inbox: Inbox, lang: str) -> None:
    from playwright.sync_api import sync_playwright

    from workflows.runtime import InProcessFleet

    words = WORDS[lang]
    app = fleet.app
    with serve(make_portal(app), fleet.port) as base, sync_playwright() as pw, \
            InProcessFleet(app, threads=2, watch_interval=3600):  # type: ignore[attr-defined]
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(locale="de-DE" if lang == "de" else "en-GB",
                                      viewport={"width": 1280, "height": 900},
                                      bypass_csp=True, accept_downloads=True)
        page = context.new_page()
        check = Checker(page, lang)

        page.goto(base + "/")
        check.check("form")
        page.get_by_role("button", name=words["send"]).click()  # empty: errors by the fields
        assert page.locator(".field-error").count() >= 3
        check.check("form-errors")
        page.get_by_label(words["kind"]).check()
        page.locator("#email").fill(CUSTOMER)
        page.locator("#place").select_option("DE")
        page.get_by_role("button", name=words["send"]).click()
        assert words["sent"] in page.content()
        check.check("sent")

        wait_until(lambda: inbox.messages, 30, "the verification email")
        page.goto(link_in(inbox, r"http://127\.0\.0\.1:\d+/verify/\S+"))
        check.check("verify")
        page.get_by_role("button", name=words["yes"]).click()
        assert words["receipt"] in page.content()
        check.check("verified")
        receipt = page.locator("code").inner_text()
        request_id = re.search(r"dsr_[0-9a-f]{12}", page.content()).group(0)  # type: ignore[union-attr]

        assert requests.load(app, request_id).state in ("in_progress", "completed")
        fleet.wait_settled([request_id])
        wait_until(lambda: any("/download/" in inbox.text(m) for m in inbox.messages), 30,
                   "the completion email")
        page.goto(base + "/status")
        check.check("status-form")
        page.locator("#request").fill(request_id)
        page.locator("#receipt").fill(receipt)
        page.get_by_role("button", name=words["show"], exact=True).click()
        assert words["working"] in page.content() and request_id in page.content()
        check.check("status")

        completion = next(m for m in inbox.messages if "/download/" in inbox.text(m))
        url = re.search(r"http://127\.0\.0\.1:\d+/download/\S+",  # type: ignore[union-attr]
                        inbox.text(completion)).group(0)
        page.goto(url)
        assert words["ready"] in page.content()
        check.check("download")
        with page.expect_download() as got:
            page.get_by_role("link", name=re.compile(words["download"], re.I)).click()
        archive = zipfile.ZipFile(io.BytesIO(Path(got.value.path()).read_bytes()))
        assert archive.testzip() is None and "report.html" in archive.namelist()

        page.goto(base + "/records/check")
        assert words["check"] in page.content()
        check.check("record-check")
        page.goto(base + "/verify")
        check.check("enter-code")
        page.goto(base + "/no-such-page")
        check.check("not-found")
        browser.close()
    assert len(check.seen) == 11


def test_the_checker_fails_on_a_violation_and_on_sideways_scrolling(tmp_path: Path) -> None:
    """The checks can fail: a control that has no name, and a page wider than 320 px."""
    from playwright.sync_api import sync_playwright

    require_browser()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        check = Checker(page, "control")
        page.set_content('<html lang="en"><title>t</title><main><input type="text"></main>')
        with pytest.raises(AssertionError, match="axe on bad"):
            check.check("bad")
        page.set_content('<html lang="en"><title>t</title><main><div style="width:600px">'
                         "wide</div></main>")
        with pytest.raises(AssertionError, match="scrolls sideways at 390 px"):
            check.check("wide")
        browser.close()
