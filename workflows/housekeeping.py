"""The fleet's periodic housekeeping, run by the watch (:mod:`workflows.watch`) in every worker
process: completion records for requests closed while no signing key existed, forgetting the
identities of long-closed requests, ledger checkpoints, and deleting expired bundles.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.bundles.retention import purge_expired
from dsar.db.models import Bundle, CompletionRecord, IdentityRow, Request
from dsar.lifecycle import State
from workflows import fanout
from workflows.assembly import bundle_store


def sign_closed_requests(app: App, limit: int = 100) -> int:
    """Completion records for rejected and cancelled requests that have none yet (closed while
    no signing key was available). Returns how many were made."""
    with app.db.session() as session:
        ids = list(session.scalars(
            sa.select(Request.id).outerjoin(CompletionRecord)
            .where(Request.state.in_([State.REJECTED.value, State.CANCELLED.value]),
                   CompletionRecord.request_id.is_(None)).limit(limit)))
    made = 0
    for request_id in ids:
        with app.db.session() as session:
            request = fanout.lock_request(session, request_id)
            if request.completed_at is None:
                request.completed_at = request.updated_at
            if session.get(CompletionRecord, request_id) is None:
                made += int(requests.sign_closed_request(session, app, request))
    return made


def forget_identities(app: App) -> int:
    """Delete the encrypted identities of requests closed more than
    DSAR_IDENTITY_RETENTION_DAYS ago (their completion records need none). Returns how many
    identity rows were deleted."""
    cutoff = app.now() - timedelta(days=app.settings.identity_retention_days)
    closed = [State.COMPLETED.value, State.REJECTED.value, State.CANCELLED.value]
    with app.db.session() as session:
        expired = sa.select(Request.id).where(Request.state.in_(closed),
                                              Request.completed_at < cutoff)
        result = session.execute(sa.delete(IdentityRow).where(IdentityRow.request_id.in_(expired)))
        return int(result.rowcount or 0)


_LAST_SWEEP: dict[str, datetime] = {}


def retention_sweep_interval() -> timedelta:
    """How often a worker process lists the bundle store for expired bundles."""
    return timedelta(seconds=float(os.environ.get("DSAR_RETENTION_SWEEP_SECONDS", "300")))


def periodic_housekeeping(app: App) -> None:
    """Issue a ledger checkpoint when the ledger grew; delete bundles past retention.

    Deleting bundles lists and reads the whole store (every bundle's sidecar, and on S3 paid
    LIST requests), so each process does it at most once per
    ``DSAR_RETENTION_SWEEP_SECONDS``, not at every tick; a link stops working at its expiry
    regardless (downloads check it)."""
    from dsar.records.ledger import issue_checkpoint

    now = app.now()
    sign_closed_requests(app)
    forget_identities(app)
    with app.db.session() as session:
        issue_checkpoint(session, app)
    store = bundle_store(app)
    last = _LAST_SWEEP.get(store.location)
    if last is not None and now - last < retention_sweep_interval():
        return
    _LAST_SWEEP[store.location] = now
    purged = purge_expired(store, now)
    if purged:
        with app.db.session() as session:
            session.execute(sa.update(Bundle).where(Bundle.id.in_(purged))
                            .values(deleted_at=now))
