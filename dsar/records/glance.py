"""A completion record read at a glance: one sentence, local times, explained counts.

Shared by the record page (:mod:`dsar.records.html`) and ``dsar show``, so both say the same
thing. The input is a record's predicate (see :func:`dsar.records.record.build_predicate`) and,
where the state database is at hand, :func:`request_facts`: how identity was verified and when
the export was first downloaded, which the signed record does not hold.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.db.models import AuditEvent, Request

__all__ = ["collection_notes", "columns_for", "local", "predicate_of", "request_facts",
           "summary_sentence"]

#: What a connector's extra count means, singular and plural.
COUNT_PHRASES: dict[str, tuple[str, str]] = {
    "versions_deleted": ("object version deleted", "object versions deleted"),
    "markers_removed": ("delete marker removed", "delete markers removed"),
    "uploads_aborted": ("unfinished upload aborted", "unfinished uploads aborted"),
    "records_redacted": ("record removed from shared files", "records removed from shared files"),
    "objects_retained": ("object kept under a retention lock or legal hold",
                         "objects kept under a retention lock or legal hold"),
    "noncurrent_records": ("record in older object versions", "records in older object versions"),
    "uploads_in_progress": ("upload in progress", "uploads in progress"),
}

_KIND_WORDS = {"access": "an access request", "export": "an export (portability) request",
               "erasure": "an erasure request"}


def predicate_of(envelope: dict[str, Any] | None) -> dict[str, Any]:
    """The predicate inside a record's DSSE envelope (``{}`` when it cannot be read)."""
    try:
        statement = json.loads(base64.b64decode((envelope or {})["payload"]))
        return dict(statement["predicate"])
    except (KeyError, TypeError, ValueError):
        return {}


def local(value: str | datetime | None, tz: str) -> str:
    """An ISO 8601 time (or an aware datetime) as ``2025-03-05 10:30 CET`` in ``tz``, minutes
    only; ``—`` for none."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def _day(value: str | None) -> str:
    if not value:
        return "—"
    return date.fromisoformat(value).strftime("%-d %B %Y")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def columns_for(kind: str) -> list[str]:
    """The per-collection columns that mean something for a request ``kind``: no deleted,
    masked or retained columns for access and export records, no collected one for erasure."""
    if kind == "erasure":
        return ["found", "deleted", "masked", "retained", "remaining"]
    return ["found", "collected"]


def collection_notes(c: dict[str, Any]) -> list[str]:
    """Sentences that explain a collection's counts where they differ or need a word: object
    versions, rows kept and why, a SaaS vendor's erasure job and its final status, what a
    recount left."""
    notes, counts = [], dict(c.get("counts") or {})
    if c.get("retained"):
        ground = c.get("retained_ground") or "no ground recorded"
        period = f" for {c['retained_period']}" if c.get("retained_period") else ""
        notes.append(f"{c['retained']} kept under {ground}{period}")
    for name, (one, many) in COUNT_PHRASES.items():
        if counts.get(name):
            notes.append(_plural(int(counts[name]), one, many))
    if counts.get("kept_shared"):
        notes.append(f"kept: shared with other records ({counts['kept_shared']})")
    if counts.get("kept_findable"):
        notes.append(f"still findable by a column kept on purpose ({counts['kept_findable']})")
    if counts.get("vendor_status"):
        notes.append(f"the vendor's erasure job {counts.get('vendor_job')} ended "
                     f"{counts['vendor_status']}")
    if counts.get("vendor_jobs_pending"):
        notes.append(f"waiting for {counts['vendor_jobs_pending']} erasure job(s) at the vendor")
    if counts.get("versions_deleted") and c.get("found") != c.get("deleted"):
        notes.append(f"found counts objects ({c.get('found')}), deleted counts their versions")
    if c.get("remaining"):
        notes.append(f"a recount still found {c['remaining']}: erasure is not complete")
    if c.get("outcome") not in (None, "ok"):
        notes.append(f"{c['outcome']}" + (f": {c['error_code']}" if c.get("error_code") else ""))
    return notes


def _totals(p: dict[str, Any]) -> dict[str, int]:
    totals = {"found": 0, "collected": 0, "deleted": 0, "masked": 0, "retained": 0}
    for system in p.get("systems", []):
        for c in system.get("collections", []):
            for name in totals:
                totals[name] += int(c.get(name) or 0)
    return totals


def summary_sentence(p: dict[str, Any]) -> str:
    """One sentence: what was asked, what was done, on time or not."""
    r, d, t = p.get("request", {}), p.get("deadline", {}), p.get("timeline", {})
    result = p.get("result", {})
    kind = r.get("kind", "")
    systems = len(p.get("systems", []))
    tz = p.get("rule", {}).get("timezone") or "UTC"
    asked = (f"{_KIND_WORDS.get(kind, kind + ' request').capitalize()} under "
             f"{(r.get('regime') or '').upper()}, received {local(t.get('received'), tz)[:10]}"
             f" via {r.get('channel')}")
    n = _totals(p)
    in_systems = f"in {_plural(systems, 'system', 'systems')}"
    if result.get("state") == "rejected":
        done = f"was refused ({result.get('closing_reason') or 'no reason recorded'})"
    elif result.get("state") == "cancelled":
        done = "was cancelled"
    elif kind == "erasure":
        done = (f"was completed: {n['found']} found {in_systems}, {n['deleted']} deleted, "
                f"{n['masked']} masked, {n['retained']} kept under a legal ground")
    else:
        done = (f"was completed: {n['found']} found {in_systems}, {n['collected']} "
                f"collected for the {'export' if kind == 'export' else 'copy'}")
    due = d.get("effective_due")
    answered = _day(d.get("completed_local_date"))
    timing = (f"answered {answered}, on time (due {_day(due)})" if d.get("on_time")
              else f"answered {answered}, late (due {_day(due)})")
    return f"{asked}; it {done}; {timing}."


def request_facts(session: Session, request_id: str) -> dict[str, Any]:
    """What the state database knows beyond the signed record: the identity verification's
    method and time, and when the export was first downloaded (and how often), from the
    request's audit events. No personal data."""
    request = session.get(Request, request_id)
    if request is None:
        return {}
    downloads = session.scalars(
        sa.select(AuditEvent.at).where(AuditEvent.request_id == request_id,
                                       AuditEvent.event == "downloaded")
        .order_by(AuditEvent.at)).all()
    return {"identity_method": request.identity_method,
            "identity_verified_at": request.identity_verified_at,
            "first_downloaded_at": downloads[0] if downloads else None,
            "downloads": len(downloads)}
