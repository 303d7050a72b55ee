"""English, German and French: complete catalogues, chosen by Accept-Language or the switcher,
for the portal's pages and the emails."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from dsar import requests
from dsar.app import App
from dsar.locale import FOLDER, LANGUAGES, negotiate, translations
from tests.interfaces.portal.conftest import Inbox, deliver
from tests.interfaces.portal.test_portal_flow import csrf

REPO = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s|\{[a-z_]+\}")


def extracted() -> set[str]:
    """Every text babel.cfg collects (the portal, the emails, report.html and its labels), the
    plural forms by their singular."""
    with (FOLDER / "babel.cfg").open() as cfg:
        method_map, options = parse_mapping_cfg(cfg)
    return {message if isinstance(message, str) else message[0]
            for _, _, message, *_ in extract_from_dir(str(REPO), method_map, options)}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_text_is_translated_with_the_same_placeholders(lang: str) -> None:
    with (FOLDER / lang / "LC_MESSAGES" / "dsar.po").open("rb") as po:
        read = read_po(po, locale=lang)
    catalogue = {(m.id if isinstance(m.id, str) else m.id[0]): m for m in read if m.id}
    needed = extracted()
    assert len(needed) > 250 and {"Legal basis", "Contact details", "empty"} <= needed
    missing = sorted(m for m in needed if m not in catalogue or not all(
        [catalogue[m].string] if isinstance(catalogue[m].string, str) else catalogue[m].string))
    assert not missing, f"{lang} lacks: {missing[:5]}"
    for msgid in needed:
        entry = catalogue[msgid]
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        forms = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if len(ids) > 1:
            assert len(forms) == read.num_plurals, msgid
        for form in forms:
            assert sorted(set(PLACEHOLDER.findall(ids[-1]))) == sorted(set(
                PLACEHOLDER.findall(form))), msgid
    assert not set(catalogue) - needed, "obsolete entries: run pybabel update"


@given(st.text(max_size=80))
def test_negotiation_always_answers_one_of_ours(header: str) -> None:
    assert negotiate(header) in LANGUAGES


def test_negotiation_honours_quality_and_regions() -> None:
    assert negotiate("de-AT,de;q=0.9,en;q=0.8") == "de"
    assert negotiate("es, fr;q=0.5, de;q=0.4") == "fr"
    assert negotiate("en;q=0.2, fr") == "fr"
    assert negotiate("it, es") == negotiate(None) == negotiate("de;q=0") == "en"


def test_accept_language_and_the_switcher_pick_the_pages_language(client: TestClient) -> None:
    german = client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in german.text and "Was sollen wir tun?" in german.text
    assert german.headers["content-language"] == "de"
    assert 'href="/?lang=fr"' in german.text  # the switcher: a plain link
    french = client.get("/?lang=fr", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in french.text and "Que souhaitez-vous" in french.text
    assert "Allemagne" in french.text  # country names in the page's language
    again = client.get("/status", headers={"Accept-Language": "de"})  # the cookie now decides
    assert '<html lang="fr">' in again.text and "Où en est votre demande" in again.text
    wrong = client.post("/requests", headers={"Accept-Language": "de"},
                        data={"csrf": csrf(client), "kind": "nope", "email": "x", "place": "DE"})
    assert "Veuillez choisir ce que vous souhaitez" in wrong.text


def test_messages_are_written_in_the_language_of_the_form(
        client: TestClient, app: App, inbox: Inbox) -> None:
    client.headers["Accept-Language"] = "de"
    client.post("/requests", data={"csrf": csrf(client), "kind": "access",
                                   "email": "anna@example.org", "place": "DE",
                                   "name": "Anna Beispiel"})
    assert deliver(app) == 1
    [mail] = inbox.messages
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject.startswith("Bitte bestätigen Sie Ihre Anfrage")
    body = inbox.text(mail)
    assert body.startswith("Hallo Anna Beispiel,") and "Oder geben Sie diesen Code" in body
    [made] = requests.list_requests(app)
    requests.extend(app, made.id, "viele Archive", "privacy team")  # queued by the CLI's path
    assert deliver(app) == 1
    extension = inbox.text(inbox.messages[-1])
    assert "Wir benötigen mehr Zeit" in extension and "Grund: viele Archive" in extension
    assert re.search(r"\d{1,2}\. \w+ \d{4}", extension)  # a German long date


def test_an_unknown_language_is_english() -> None:
    assert translations("xx").gettext("Hello,") == "Hello,"
    assert translations("fr").gettext("Hello,") == "Bonjour,"
