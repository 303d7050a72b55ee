"""One value of the report's preview tables, as a person reads it: an HTML ``<td>``.

Values arrive as the spool keeps them (:mod:`dsar.bundles.values`: JSON forms, with the
column's type). They are shown so that nobody needs to know JSON or ISO 8601:

- money (a data map column with ``format: money`` or ``money_minor`` and a ``currency``) in the
  person's language: ``€1,234.50``, ``1.234,50 €``;
- date-times converted to the bundle's time zone (the page says which), dates written out;
  a date-time stored without a zone is shown as it was stored;
- lists and objects as nested lists (``<ul>``, ``<dl>``), never raw JSON, bounded in depth
  and items so a large document cannot blow up the page (it is whole in data.json);
- yes/no for booleans, "binary data (N bytes)" for bytes, "empty" for nulls.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, get_currency_precision
from markupsafe import escape

from dsar.locale import N_

MAX_TEXT = 200
MAX_DEPTH = 4
MAX_ITEMS = 30
"""Items shown per nested list or object; the rest are counted ("and 12 more")."""

EMPTY = N_("empty")
"""What a null shows (marked here: the f-strings below hide it from the extractor)."""
_SPECIAL = re.compile(r"[&<>\"']")


def html(text: str) -> str:
    """``text`` escaped for HTML (most values have nothing to escape)."""
    return str(escape(text)) if _SPECIAL.search(text) else text


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


@dataclass
class CellFormat:
    """How the cells of one page are written: its language, time zone and translations, and
    per column the spool's type and the data map's money format ``(format, currency)``."""

    language: str = "en"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    gettext: Callable[[str], str] = lambda message: message
    types: dict[str, str] = field(default_factory=dict)
    money: dict[str, tuple[str, str]] = field(default_factory=dict)

    @cached_property
    def locale(self) -> Locale:
        """The page's language, parsed once (Babel parses a language name on every call)."""
        return Locale.parse(self.language)

    def cell(self, column: str, value: Any) -> str:
        """The ``<td>`` for ``value`` of ``column``."""
        if value is None:
            return f'<td class="empty">—<span class="sr"> ({self.gettext(EMPTY)})</span></td>'
        if column in self.money:
            shown = self.amount(value, *self.money[column])
            if shown is not None:
                return f'<td class="num">{html(shown)}</td>'
        kind = self.types.get(column)
        if kind in {"datetime", "date"} and isinstance(value, str):
            shown = self.when(value, kind)
            if shown is not None:
                return f'<td><time datetime="{html(value)}">{html(shown)}</time></td>'
        if kind == "bytes" and isinstance(value, str):
            size = len(value) * 3 // 4 - value.count("=")
            text = self.gettext("binary data (%(size)s bytes)") % {"size": self.number(size)}
            return f'<td class="empty">{html(text)}</td>'
        return f"<td>{self.nested(value, 0)}</td>"

    def number(self, count: int) -> str:
        """``1,234`` / ``1.234`` / ``1 234``: a count in the page's language."""
        return format_decimal(count, locale=self.locale)

    def amount(self, value: Any, fmt: str, currency: str) -> str | None:
        """``value`` as money, or None when it is not a number."""
        if isinstance(value, bool):
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        if not number.is_finite():
            return None
        if fmt == "money_minor":
            number = number.scaleb(-get_currency_precision(currency))
        return format_currency(number, currency, locale=self.locale)

    def when(self, text: str, kind: str) -> str | None:
        """An ISO 8601 date or date-time written out; None when it does not parse."""
        try:
            if kind == "date":
                return format_date(dt.date.fromisoformat(text), "long", locale=self.locale)
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:  # stored without a zone: shown as stored
            return format_datetime(moment, "medium", tzinfo=dt.UTC, locale=self.locale)
        return format_datetime(moment, "medium", tzinfo=self.zone, locale=self.locale)

    def nested(self, value: Any, depth: int) -> str:
        """A JSON value as escaped text or nested lists."""
        if value is None:
            return f'<span class="empty">{self.gettext(EMPTY)}</span>'
        if isinstance(value, bool):
            return self.gettext("yes") if value else self.gettext("no")
        if isinstance(value, str):
            return html(_short(value))
        if isinstance(value, int | float | Decimal):
            return html(str(value))
        if not isinstance(value, list | dict):
            return html(_short(str(value)))
        if not value:
            return f'<span class="empty">{self.gettext(EMPTY)}</span>'
        if depth >= MAX_DEPTH:
            return html(self.gettext("more levels: see data.json"))
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        more = len(items) - MAX_ITEMS
        parts = []
        for key, item in items[:MAX_ITEMS]:
            inner = self.nested(item, depth + 1)
            if isinstance(value, dict):
                parts.append(f"<div><dt>{html(_short(str(key)))}</dt><dd>{inner}</dd></div>")
            else:
                parts.append(f"<li>{inner}</li>")
        if more > 0:
            tail = html(self.gettext("and %(count)s more") % {"count": self.number(more)})
            parts.append(f"<div><dt>…</dt><dd>{tail}</dd></div>" if isinstance(value, dict)
                         else f"<li>… {tail}</li>")
        tag = "dl" if isinstance(value, dict) else "ul"
        return f'<{tag} class="nest">{"".join(parts)}</{tag}>'
