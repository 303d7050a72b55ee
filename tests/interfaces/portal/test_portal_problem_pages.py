"""Download problem pages in the person's language: expired, withdrawn, deleted and forged links
say what happened and what to do in German and French, never in the errors' own English."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.bundles import download_links
from dsar.bundles.sidecar import read_sidecar, write_sidecar
from interfaces.portal import make_portal
from tests.interfaces.portal.test_portal_downloads import Clock, completed, new_link

__all__ = ["completed"]  # the fixture used below

ENGLISH = re.compile(r"\b(link|deleted|withdrawn|request|copy|Ask|Make|valid)\b")

WORDS = {
    "de": {"expired": ("Dieser Link ist abgelaufen", "Bitten Sie uns bis dahin um einen neuen"),
           "withdrawn": ("Dieser Link wurde zurückgezogen", "Bitten Sie uns um einen neuen Link"),
           "deleted": ("Download nicht verfügbar", "inzwischen gelöscht"),
           "forged": ("Link ungültig", "stammt nicht von uns")},
    "fr": {"expired": ("Ce lien a expiré", "Demandez-nous un nouveau lien d'ici là"),
           "withdrawn": ("Ce lien a été retiré", "Nous avons retiré ce lien"),
           "deleted": ("Téléchargement indisponible", "a depuis été supprimée"),
           "forged": ("Lien non valide", "n'a pas été émis par nous")},
}


def _main(page: str) -> str:
    """The page's own words: its <main>, tags dropped, entities read."""
    body = page.split("<main", 1)[1].split("</main>", 1)[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", body.split(">", 1)[1]))


@pytest.mark.parametrize("lang", ["de", "fr"])
def test_download_problems_are_in_the_page_language(app: App, completed: str, lang: str) -> None:
    clock = Clock(app)
    app.clock = clock
    withdrawn = new_link(app, completed)
    with app.db.session() as session:
        download_links.revoke(session, app, download_links.bundle_of(session, completed),
                              "privacy team")
    expired = new_link(app, completed)
    seen: dict[str, str] = {}
    with TestClient(make_portal(app, sweep_expired=False),
                    headers={"Accept-Language": lang}) as client:
        seen["withdrawn"] = client.get(f"/download/{withdrawn}").text
        seen["forged"] = client.get("/download/bm90LWEtdG9rZW4.Zm9yZ2Vk").text
        clock.now += timedelta(days=31)  # past the link, before the bundle's deletion
        seen["expired"] = client.get(f"/download/{expired}").text
        fresh = new_link(app, completed)  # what `dsar bundle --new-link` does
        with app.db.session() as session:  # then retention deletes the bundle
            download_links.bundle_of(session, completed).deleted_at = clock.now
        seen["deleted"] = client.get(f"/download/{fresh}").text
    for what, (title, advice) in WORDS[lang].items():
        text = _main(seen[what])
        assert title in text and advice in text, (what, text)
        assert not ENGLISH.findall(text.replace("Link", "")), (what, text)
    assert requests.load(app, completed).state == "completed"


@pytest.mark.parametrize(("lang", "words"), [("en", "still being prepared"),
                                              ("de", "noch vorbereitet"),
                                              ("fr", "encore en préparation")])
def test_a_bundle_still_being_written_is_not_called_deleted(
        app: App, completed: str, lang: str, words: str) -> None:
    """The page tells "still being prepared" from "deleted" by the error's class
    (BundleNotReady), whatever the error's wording."""
    token = new_link(app, completed)
    with app.db.session() as session:
        bundle = download_links.bundle_of(session, completed)
    store = download_links.store_of(app, bundle)
    record = read_sidecar(store, bundle.id)
    write_sidecar(store, replace(record, complete=False))
    with TestClient(make_portal(app, sweep_expired=False),
                    headers={"Accept-Language": lang}) as client:
        got = client.get(f"/download/{token}/file")
    assert got.status_code == 503 and got.headers["retry-after"] == "300"
    text = _main(got.text)
    assert words in text and "gelöscht" not in text and "deleted" not in text, text
    write_sidecar(store, record)
    with TestClient(make_portal(app, sweep_expired=False)) as client:
        assert client.get(f"/download/{token}/file").status_code == 200
