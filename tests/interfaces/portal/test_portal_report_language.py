"""report.html in the person's language: a German web request's bundle explains itself in
German (through the fleet on the in-process broker), a CLI request's in English, and the
category labels follow the page."""

from __future__ import annotations

import html
import io
import re
import zipfile
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dsar import requests
from dsar.bundles import BundleMeta, RowsBatch, build_bundle, issue_link, open_download
from dsar.bundles.labels import LABELS, category_label, localise
from dsar.locale import translations
from interfaces.portal import make_portal
from tests.dsar.bundles.conftest import customer_rows, datamap, key, local_store, now, secret
from tests.interfaces.portal.conftest import Inbox
from tests.interfaces.portal.test_portal_flow import csrf
from tests.workflows.fleet_helpers import CUSTOMER, Fleet, several_chinooks, wait_until

__all__ = ["datamap", "key", "local_store", "now", "secret"]  # fixtures used below


@pytest.fixture
def fleet(tmp_path: Path, chinook_dir: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch):
    datamap, env = several_chinooks(chinook_dir, tmp_path)
    datamap["systems"] = datamap["systems"][:1]
    made = Fleet(tmp_path / "fleet", f"sqlite:///{tmp_path / 'state.db'}", "memory://", datamap,
                 {**env, "DSAR_SMTP_URL": inbox.url,  # type: ignore[attr-defined]
                  "DSAR_MAIL_FROM": "privacy@chinook.example",
                  "DSAR_PUBLIC_URL": "https://portal.example",
                  "DSAR_TIMEZONE": "Europe/Berlin"})
    made.apply_env(monkeypatch)
    yield made
    made.close()


def _report(client: TestClient, inbox: Inbox) -> str:
    """report.html of the bundle the completion email links to."""
    completion = next(m for m in inbox.messages if "/download/" in inbox.text(m))
    path = re.search(r"https://portal\.example(/download/\S+)",  # type: ignore[union-attr]
                     inbox.text(completion)).group(1)
    body = client.get(path + "/file")
    assert body.status_code == 200, body.text
    return zipfile.ZipFile(io.BytesIO(body.content)).read("report.html").decode()


def test_a_german_web_request_gets_a_german_report(fleet: Fleet, inbox: Inbox) -> None:
    from workflows.runtime import InProcessFleet

    app = fleet.app
    with TestClient(make_portal(app, sweep_expired=False), base_url="https://portal.example",
                    follow_redirects=False, headers={"Accept-Language": "de-DE"}) as client, \
            InProcessFleet(app, threads=2, watch_interval=3600):  # type: ignore[attr-defined]
        filed = client.post("/requests", data={"csrf": csrf(client), "kind": "access",
                                               "email": CUSTOMER, "place": "DE"})
        assert filed.status_code == 303
        wait_until(lambda: inbox.messages, 30, "the verification email")
        link = re.search(r"https://portal\.example(/verify/\S+)",  # type: ignore[union-attr]
                         inbox.text(inbox.messages[-1])).group(1)
        client.get(link)
        assert "Ihr Belegcode" in client.post(link, data={"csrf": csrf(client)}).text
        [made] = requests.list_requests(app)
        fleet.wait_settled([made.id])
        wait_until(lambda: any("/download/" in inbox.text(m) for m in inbox.messages), 30,
                   "the completion email")
        page = _report(client, inbox)
    assert '<html lang="de">' in page
    assert "Kopie Ihrer personenbezogenen Daten" in page and "Ihre Rechte" in page
    assert "Recht auf Berichtigung" in page and "Aufsichtsbehörde" in page
    assert "Your rights" not in page and "Summary" not in page


def test_a_request_filed_without_a_form_gets_an_english_report(fleet: Fleet) -> None:
    from workflows.assembly import request_language

    request_id = fleet.submit("access")
    with fleet.app.db.engine.connect() as conn:
        assert request_language(conn, request_id) == "en"


@pytest.mark.parametrize(("lang", "words"), [
    ("de", ["Zusammenfassung", "Rechtsgrundlage", "E-Mail-Adresse<br><code>email</code>",
            "Recht auf Löschung", "Recht auf Einschränkung der Verarbeitung", "Einträge"]),
    ("fr", ["Résumé", "Base juridique", "Adresse électronique<br><code>email</code>",
            "Droit à l'effacement", "Droit à la limitation du traitement", "enregistrements"]),
])
def test_the_report_and_its_labels_follow_the_bundle_language(
        datamap, local_store, key, secret, now, lang: str, words: list[str]) -> None:
    items = [RowsBatch("crm", "customer", customer_rows())]
    info = build_bundle(BundleMeta("r", timezone="Europe/Berlin", language=lang), datamap,
                        lambda: items, local_store, key, now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=local_store, key=key, secret=secret,
                                  now=now).chunks)
    page = zipfile.ZipFile(io.BytesIO(body)).read("report.html").decode()
    missing = [w for w in words if w not in html.unescape(page)]
    assert not missing, missing
    assert f'<html lang="{lang}">' in page


def test_localise_translates_only_labels_it_made() -> None:
    german = translations("de").gettext
    for label in LABELS.values():
        assert localise(label, german) != label or label in {"Name", "Profil", "Profile"}
    assert localise(category_label("user.contact.fax"), german) == "Kontaktdaten: Fax"
    assert localise(category_label(None), german) == "Sonstige Daten"
    assert localise("Summary", german) == "Summary"  # the data map's own words stay as written
    assert localise("Amount: total", german) == "Amount: total"
