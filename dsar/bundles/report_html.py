"""report.html: a self-contained, accessible page that explains the bundle to the person.

The page is rendered from the spool's summary (counts, columns, first rows, object list) and the
data map, never from the full data, so its size is bounded by ``preview_rows`` and
``listed_objects`` however large the bundle is. It has inline CSS only: no scripts, images,
fonts or style sheets from anywhere, and a Content-Security-Policy that forbids loading them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from markupsafe import Markup

from dsar.bundles.cells import CellFormat, html
from dsar.bundles.describe import CollectionFacts, rights
from dsar.bundles.errors import format_when
from dsar.bundles.items import BundleMeta
from dsar.bundles.labels import localise, name_label
from dsar.bundles.names import entry
from dsar.bundles.spool import SpooledCollection
from dsar.datamap.schema import Controller
from dsar.locale import LANGUAGES, N_, environment, format_size, translations

FORMAT = "dsar-export/1"
SCHEMA_ENTRY = "data.schema.json"
SCHEMA = Path(__file__).resolve().parent / SCHEMA_ENTRY
"""data.json's JSON Schema, shipped in every bundle and published as docs/data-json.schema.json."""


def human_size(size: int, language: str = "en") -> str:
    """``size`` bytes in the report's language ("1.5 MB", "1,5 Mo"): :func:`format_size`."""
    return format_size(size, language)


# The preview table is built here rather than by the template's loops: a few hundred cells
# per bundle, each escaped once.


def _header_cells(columns: Sequence[str], labels: dict[str, str],
                  gettext: Callable[[str], str]) -> Markup:
    cells = []
    for name in columns:
        label = localise(labels.get(name) or name_label(name), gettext)
        cells.append(f'<th scope="col">{html(label)}<br><code>{html(name)}</code></th>')
    return Markup("".join(cells))


def _preview_rows(preview: Sequence[dict[str, Any]], columns: Sequence[str],
                  cells: CellFormat) -> Markup:
    return Markup("".join(
        f"<tr>{''.join([cells.cell(column, row.get(column)) for column in columns])}</tr>\n"
        for row in preview))


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") or "x" for p in parts)


def _collection_context(
    coll: SpooledCollection, facts: CollectionFacts, csv_entry: str | None, listed: int,
    cells: CellFormat,
) -> dict[str, Any]:
    columns = list(coll.columns)
    cells.types, cells.money = coll.types, facts.money
    return {
        "anchor": _anchor("c", coll.system, coll.collection),
        "label": facts.label,
        "info": facts.info,
        "categories": "; ".join(localise(c.label, cells.gettext) for c in facts.categories),
        "row_count": coll.row_count,
        "nothing_found": not coll.row_count and not coll.objects,
        "row_count_text": format_decimal(coll.row_count, locale=cells.language),
        "truncated": coll.row_count > len(coll.preview),
        "csv": csv_entry,
        "header_cells": _header_cells(columns, facts.column_labels, cells.gettext),
        "preview_rows": _preview_rows(coll.preview, columns, cells),
        "preview_count": len(coll.preview),
        "objects": [
            {"name": o.name, "size": human_size(o.size, cells.language), "entry": o.entry}
            for o in coll.objects[:listed]
        ],
        "objects_more": max(0, len(coll.objects) - listed),
        "object_count_text": format_decimal(len(coll.objects), locale=cells.language),
        "files_dir": entry("files", coll.system, coll.collection) + "/",
    }


def _controller(controller: Controller | None) -> dict[str, Any]:
    data = controller.model_dump() if controller else {
        "name": N_("The controller"), "contact": None, "dpo": None,
        "supervisory_authority": None, "supervisory_authority_url": None}
    # no controller in the map: its name is a common noun, which some languages inflect
    # (German "an den Verantwortlichen"), so such sentences have their own translations
    data["unnamed"] = controller is None
    url = data.get("supervisory_authority_url") or ""
    if not re.match(r"^https?://", url):
        data["supervisory_authority_url"] = None
    return data


def context(
    meta: BundleMeta,
    controller: Controller | None,
    collections: Sequence[tuple[SpooledCollection, CollectionFacts, str | None]],
    created_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    """Everything the template shows. ``collections`` come in display order."""
    language = meta.language if meta.language in LANGUAGES else "en"
    zone = ZoneInfo(meta.timezone)
    gettext = translations(language).gettext
    cells = CellFormat(language=language, zone=zone, gettext=gettext)
    systems: list[dict[str, Any]] = []
    by_system: dict[str, dict[str, Any]] = {}
    for coll, facts, csv_entry in collections:
        if coll.system not in by_system:
            by_system[coll.system] = {
                "anchor": _anchor("s", coll.system), "label": facts.system_label,
                "collections": [], "cats": {}, "found": False,
            }
            systems.append(by_system[coll.system])
        system = by_system[coll.system]
        system["collections"].append(
            _collection_context(coll, facts, csv_entry, meta.listed_objects, cells)
        )
        if coll.row_count or coll.objects:  # what a searched, empty collection holds: nothing
            system["found"] = True
            for cat in facts.categories:
                where = system["cats"].setdefault(localise(cat.label, gettext), [])
                where.append(facts.label)
    for system in systems:
        system["categories"] = [
            {"label": label, "where": ", ".join(dict.fromkeys(where))}
            for label, where in system.pop("cats").items()
        ]
    rows = sum(c.row_count for c, _, _ in collections)
    found = sum(1 for system in systems if system.get("found"))
    objects = [o for c, _, _ in collections for o in c.objects]
    title = (N_("A copy of your personal data") if meta.kind == "access"
             else N_("Your data export"))
    searched = [(system["label"], [c["label"] for c in system["collections"]])
                for system in systems]
    return {
        "language": language,
        "title": gettext(title),
        "timezone": meta.timezone,
        "searched": searched,
        "schema": SCHEMA_ENTRY,
        "format": FORMAT,
        "request_id": meta.request_id,
        "controller": _controller(controller),
        "created_iso": created_at.isoformat(),
        "created_text": format_when(created_at),
        "expires_iso": expires_at.isoformat(),
        "expires_text": format_when(expires_at),
        "systems": systems,
        "totals": {
            "rows": format_decimal(rows, locale=language), "rows_n": rows,
            "objects": format_decimal(len(objects), locale=language), "objects_n": len(objects),
            "object_bytes": human_size(sum(o.size for o in objects), language),
            "systems": format_decimal(found, locale=language), "systems_n": found,
        },
        "rights": rights([facts.info for _, facts, _ in collections]),
    }


def render(ctx: dict[str, Any], block: int = 64 * 1024) -> Iterator[bytes]:
    """The page as UTF-8 in blocks of ``block`` bytes. Its size is bounded (see above), so it
    is rendered whole, then cut."""
    template = environment(ctx["language"], "report").get_template("report.html.j2")
    page = template.render(**ctx).encode()
    for start in range(0, len(page), block):
        yield page[start:start + block]
