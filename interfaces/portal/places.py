"""Where the person lives, as the form asks it, and the regime that place picks.

The form offers a short list of places (:data:`PLACES`): the EEA countries (GDPR), the United
Kingdom (UK GDPR), the US states whose laws dsar knows (CCPA, VCDPA, CPA), Brazil (LGPD) and
Canada (PIPEDA), and "somewhere else", which takes the controller's DSAR_DEFAULT_REGIME.
:func:`regime_for` is the only way from a place to a regime.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from babel import Locale

from dsar.locale import N_, translations
from dsar.settings import Settings

ELSEWHERE = "other"


@dataclass(frozen=True)
class Place:
    code: str  # ISO 3166-1 alpha-2, or ISO 3166-2 for a US state
    name: str  # in English: a country's name in other languages comes from Babel (CLDR)
    regime: str


_EEA = {
    "AT": "Austria", "BE": "Belgium", "BG": "Bulgaria", "HR": "Croatia", "CY": "Cyprus",
    "CZ": "Czechia", "DK": "Denmark", "EE": "Estonia", "FI": "Finland", "FR": "France",
    "DE": "Germany", "GR": "Greece", "HU": "Hungary", "IS": "Iceland", "IE": "Ireland",
    "IT": "Italy", "LV": "Latvia", "LI": "Liechtenstein", "LT": "Lithuania",
    "LU": "Luxembourg", "MT": "Malta", "NL": "Netherlands", "NO": "Norway", "PL": "Poland",
    "PT": "Portugal", "RO": "Romania", "SK": "Slovakia", "SI": "Slovenia", "ES": "Spain",
    "SE": "Sweden",
}
PLACES: tuple[Place, ...] = (
    *(Place(code, name, "gdpr") for code, name in _EEA.items()),
    Place("GB", "United Kingdom", "uk_gdpr"),
    Place("US-CA", N_("California"), "ccpa"),
    Place("US-CO", N_("Colorado"), "cpa"),
    Place("US-VA", N_("Virginia"), "vcdpa"),
    Place("BR", "Brazil", "lgpd"),
    Place("CA", "Canada", "pipeda"),
)
BY_CODE = {place.code: place for place in PLACES}
#: Regimes under which an authorised agent may file for the person (CCPA §1798.135(c)(2),
#: 11 CCR §7063; Colorado and Virginia allow it for opt-outs only, so not here).
AGENT_REGIMES = frozenset({"ccpa"})


def options(lang: str) -> list[tuple[str, str]]:
    """The places as (code, name in ``lang``), sorted by name as ``lang`` writes it: country
    names from Babel's CLDR data, US states as "<United States>: <state>"."""
    locale = Locale.parse(lang)
    catalogue = translations(lang)
    named = []
    for place in PLACES:
        if place.code.startswith("US-"):
            name = f"{locale.territories['US']}: {catalogue.gettext(place.name)}"
        else:
            name = locale.territories.get(place.code, place.name)
        named.append((place.code, name))
    return sorted(named, key=lambda option: unicodedata.normalize("NFKD", option[1]).casefold())


def regime_for(code: str, settings: Settings) -> str | None:
    """The regime of the place ``code``; the default regime for "somewhere else"; None for a
    code the form does not offer."""
    if code == ELSEWHERE:
        return settings.default_regime
    place = BY_CODE.get(code)
    return place.regime if place else None
