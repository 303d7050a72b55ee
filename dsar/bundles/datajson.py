"""data.json, written incrementally: the whole bundle as one structured document.

Layout (``"format": "dsar-export/1"``, documented in docs/bundle.md)::

    {"format": "dsar-export/1",
     "request": {"id": ..., "kind": "access" | "export"},
     "bundle": {"id": ..., "created_at": ISO 8601, "expires_at": ISO 8601},
     "controller": {...} | null,
     "collections": [
       {"system": ..., "system_label": ..., "collection": ..., "label": ...,
        "info": {"purposes": [...], "legal_basis": ..., "recipients": [...],
                 "retention": ..., "source": ...},
        "categories": [{"code": ..., "label": ..., "columns": [...]}],
        "columns": [...], "types": {column: type}, "row_count": n, "csv": path | null,
        "rows": [{column: value, ...}, ...],
        "objects": [{"name": ..., "path": ..., "size": n, "sha256": ..., "metadata": {...}}]}
     ]}

Rows are copied line by line from the spool, so memory stays flat whatever the row count.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from dsar.bundles.describe import CollectionFacts
from dsar.bundles.items import BundleMeta
from dsar.bundles.report_html import FORMAT
from dsar.bundles.spool import Spool, SpooledCollection
from dsar.datamap.schema import Controller

BLOCK = 256 * 1024


_READABLE = json.JSONEncoder(ensure_ascii=False)


def _j(value: Any) -> str:
    return _READABLE.encode(value)


def _collection_head(coll: SpooledCollection, facts: CollectionFacts, csv: str | None) -> str:
    head = {
        "system": coll.system,
        "system_label": facts.system_label,
        "collection": coll.collection,
        "label": facts.label,
        "info": facts.info.model_dump(),
        "categories": [
            {"code": c.code, "label": c.label, "columns": list(c.columns)}
            for c in facts.categories
        ],
        "columns": list(coll.columns),
        "types": coll.types,
        "row_count": coll.row_count,
        "csv": csv,
    }
    return _j(head)[:-1]  # left open: rows and objects follow


def _objects(coll: SpooledCollection) -> Iterator[bytes]:
    yield b'],\n"objects": ['
    for index, obj in enumerate(coll.objects):
        item = {"name": obj.name, "path": obj.entry, "size": obj.size, "sha256": obj.sha256,
                "metadata": obj.metadata}
        yield ((",\n" if index else "\n") + _j(item)).encode()
    yield b"\n]}" if coll.objects else b"]}"


def _pieces(
    meta: BundleMeta,
    bundle_id: str,
    controller: Controller | None,
    collections: Sequence[tuple[SpooledCollection, CollectionFacts, str | None]],
    spool: Spool,
    created_at: datetime,
    expires_at: datetime,
) -> Iterator[bytes]:
    top = {
        "format": FORMAT,
        "request": {"id": meta.request_id, "kind": meta.kind},
        "bundle": {"id": bundle_id, "created_at": created_at.isoformat(),
                   "expires_at": expires_at.isoformat()},
        "controller": controller.model_dump() if controller else None,
    }
    yield (_j(top)[:-1] + ',\n"collections": [').encode()
    for index, (coll, facts, csv) in enumerate(collections):
        head = _collection_head(coll, facts, csv)
        yield ((",\n" if index else "\n") + head + ',\n"rows": [').encode()
        first = True
        for line in spool.row_lines(coll):
            yield (b"\n" if first else b",\n") + line[:-1]
            first = False
        if not first:
            yield b"\n"
        yield from _objects(coll)
    yield b"\n]}\n"


def data_json(
    meta: BundleMeta,
    bundle_id: str,
    controller: Controller | None,
    collections: Sequence[tuple[SpooledCollection, CollectionFacts, str | None]],
    spool: Spool,
    created_at: datetime,
    expires_at: datetime,
) -> Iterator[bytes]:
    """data.json as UTF-8 blocks of about 256 KiB."""
    pending, size = [], 0
    for piece in _pieces(meta, bundle_id, controller, collections, spool, created_at, expires_at):
        pending.append(piece)
        size += len(piece)
        if size >= BLOCK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)
