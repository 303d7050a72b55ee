"""The languages of the portal and of the messages to people: English, German and French.

The catalogues are gettext ``.po`` files kept in the repository (``<lang>/LC_MESSAGES/dsar.po``)
and compiled with Babel when first used, in memory: there is no ``.mo`` file to build, commit
or forget to rebuild, and a change to a ``.po`` file shows at the next start. English is the
source language (the msgids). Strings in Python are marked with :func:`N_` and translated where
they are shown; templates use Jinja2's i18n extension (``{% trans %}``, ``_()``).

    LANGUAGES                         the codes, English first
    translations(lang)                a gettext object for ``lang`` (English: identity)
    negotiate(accept_language)        the best of LANGUAGES for an Accept-Language header
    environment(lang, kind)           a Jinja2 environment for the templates, in ``lang``
    long_date(day, lang)              "4 December 2026", "4. Dezember 2026", "4 décembre 2026"
    format_size(size, lang)           "1.5 MB", "1,5 MB", "1,5 Mo"

Update the catalogues after changing a text: ``pybabel extract -F dsar/locale/babel.cfg -o
/tmp/dsar.pot . && pybabel update -i /tmp/dsar.pot -d dsar/locale -D dsar`` then translate
the new entries; ``tests/interfaces/portal/test_portal_i18n.py`` fails while any is missing.
"""

from __future__ import annotations

import functools
import gettext
import io
from datetime import date
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, Undefined, select_autoescape

LANGUAGES = ("en", "de", "fr")
NAMES = {"en": "English", "de": "Deutsch", "fr": "Français"}
FOLDER = Path(__file__).resolve().parent


def N_(message: str) -> str:
    """Mark ``message`` for the catalogues; it is translated where it is shown."""
    return message


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang`` (English, or an unknown code: no translation)."""
    source = FOLDER / lang / "LC_MESSAGES" / "dsar.po"
    if lang == "en" or not source.is_file():
        return gettext.NullTranslations()
    with source.open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate(accept_language: str | None) -> str:
    """The language of :data:`LANGUAGES` the header prefers most (q-values honoured, ``de-AT``
    matches ``de``); English when none matches or the header is malformed."""
    best, best_q = "en", 0.0
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().lower().split("-")[0]
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if code in LANGUAGES and q > best_q and 0 < q <= 1:
            best, best_q = code, q - position * 1e-6  # equal q: the first listed wins
    return best


@functools.cache
def environment(lang: str, kind: str = "portal") -> Environment:
    """The templates in ``lang``, for ``kind``: ``portal`` pages (HTML, lenient about missing
    values), ``mail`` HTML or ``text`` (strict: a missing value is an error)."""
    env = Environment(loader=PackageLoader("dsar", "templates"),
                      extensions=["jinja2.ext.i18n"],
                      undefined=Undefined if kind == "portal" else StrictUndefined,
                      autoescape=False if kind == "text" else select_autoescape(["html.j2", "j2"]),
                      keep_trailing_newline=kind == "text")
    catalogue = translations(lang)
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
    env.globals["lang"] = lang
    # ``|t``: a string marked in Python, translated as plain text (escaped like any value,
    # where ``_()`` would mark it safe)
    env.filters["t"] = lambda message: catalogue.gettext(str(message)) if message else message
    return env


def long_date(day: date, lang: str) -> str:
    """``day`` written out in ``lang``."""
    return format_date(day, format="long", locale=lang)


# Byte sizes in SI units (1 kB = 1000 bytes, as file managers show them); the unit names are in
# the catalogues (French writes octets: ko, Mo, Go, To).
SIZE_UNITS = (N_("%(size)s kB"), N_("%(size)s MB"), N_("%(size)s GB"), N_("%(size)s TB"))


def format_size(size: int, lang: str = "en") -> str:
    """``size`` bytes for a person reading ``lang``: "999 bytes", "1.5 MB", "1,5 Mo".

    Whole bytes below 1000 (with the language's plural), then one decimal in kB, MB, GB or
    TB; the number is formatted by Babel for the language (decimal comma in German, French)."""
    lang = lang if lang in LANGUAGES else "en"
    found = translations(lang)
    if size < 1000:
        return found.ngettext("%(size)s byte", "%(size)s bytes", size) % {
            "size": format_decimal(size, locale=lang)}
    value = size / 1000
    for unit in SIZE_UNITS:
        if value < 999.95 or unit == SIZE_UNITS[-1]:
            break
        value /= 1000
    return found.gettext(unit) % {"size": format_decimal(round(value, 1), format="#,##0.0",
                                                          locale=lang)}
