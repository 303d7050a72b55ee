"""Byte sizes in the page's language (landing page, report.html), and report.html's sentence
for a data map without a controller, which German must not inflect wrongly."""

from __future__ import annotations

import html
import io
import re
import zipfile
from decimal import Decimal

import pytest
from babel.numbers import parse_decimal
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from dsar.app import App
from dsar.bundles import (
    BundleMeta,
    RowsBatch,
    build_bundle,
    download_links,
    issue_link,
    open_download,
)
from dsar.bundles.report_html import human_size
from dsar.db.models import Bundle
from dsar.locale import LANGUAGES, format_size
from interfaces.portal import make_portal
from tests.dsar.bundles.conftest import customer_rows, datamap, key, local_store, now, secret
from tests.interfaces.portal.test_portal_downloads import completed, new_link

__all__ = ["completed", "datamap", "key", "local_store", "now", "secret"]  # fixtures

UNITS = {"en": ("bytes?", "kB", "MB", "GB", "TB"), "de": ("Byte", "kB", "MB", "GB", "TB"),
         "fr": ("octets?", "ko", "Mo", "Go", "To")}


@given(st.integers(min_value=0, max_value=10**17), st.sampled_from(LANGUAGES))
def test_a_size_reads_back_to_within_rounding(size: int, lang: str) -> None:
    shown = format_size(size, lang)
    match = re.fullmatch(r"(.+) (\S+)", shown)
    assert match, shown
    units = UNITS[lang]
    unit = next(i for i, name in enumerate(units) if re.fullmatch(name, match.group(2)))
    number = parse_decimal(match.group(1), locale=lang, strict=True)
    read = number * Decimal(1000) ** unit
    assert abs(read - size) <= Decimal("0.05") * Decimal(1000) ** unit, shown
    if unit:
        assert re.search(r"[.,]\d$", match.group(1)), shown  # one decimal, in its own mark
    assert human_size(size, lang) == shown


def test_sizes_use_the_languages_marks_and_units() -> None:
    assert [format_size(1_500_000, lang) for lang in LANGUAGES] == ["1.5 MB", "1,5 MB",
                                                                     "1,5 Mo"]
    assert [format_size(1, lang) for lang in LANGUAGES] == ["1 byte", "1 Byte", "1 octet"]
    assert format_size(999_950) == "1.0 MB" and format_size(999) == "999 bytes"


@pytest.mark.parametrize(("lang", "size"), [("en", "1.5 MB"), ("de", "1,5 MB"),
                                             ("fr", "1,5 Mo")])
def test_the_landing_page_gives_the_size_in_its_language(
        app: App, completed: str, lang: str, size: str) -> None:
    token = new_link(app, completed)
    with app.db.session() as session:
        bundle = download_links.bundle_of(session, completed)
        session.get(Bundle, bundle.id).size = 1_500_000  # type: ignore[union-attr]
    with TestClient(make_portal(app, sweep_expired=False),
                    headers={"Accept-Language": lang}) as client:
        page = html.unescape(client.get(f"/download/{token}").text)
    assert size in page and "KB" not in page, page


@pytest.mark.parametrize(("lang", "sentence", "wrong"), [
    ("de", "wenden Sie sich an den Verantwortlichen, der Ihnen diese Kopie geschickt hat",
     "an Der Verantwortliche"),
    ("fr", "contactez le responsable du traitement qui vous a envoyé cette copie", "contactez Le"),
    ("en", "contact the controller that sent you this copy", "contact The controller"),
])
def test_a_report_without_a_controller_has_its_own_sentence(
        datamap, local_store, key, secret, now, lang: str, sentence: str, wrong: str) -> None:
    unnamed = datamap.model_copy(update={"controller": None})
    items = [RowsBatch("crm", "customer", customer_rows())]
    info = build_bundle(BundleMeta("r", timezone="Europe/Berlin", language=lang), unnamed,
                        lambda: items, local_store, key, now)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    body = b"".join(open_download(token, store=local_store, key=key, secret=secret,
                                  now=now).chunks)
    page = html.unescape(zipfile.ZipFile(io.BytesIO(body)).read("report.html").decode())
    assert sentence in page and wrong not in page
