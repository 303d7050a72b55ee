"""The fleet's periodic housekeeping, run by the watch (:mod:`workflows.watch`) in every worker
process: completion records for requests closed while no signing key existed, messages to
people queued again when their retries ran out, forgetting the identities of long-closed
requests, ledger checkpoints, deleting bundles past retention and
orphaned ones, and the partial files a killed bundle write left behind in a local store.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.bundles.retention import delete_bundle, purge_orphans
from dsar.bundles.store import BundleStore, LocalBundleStore
from dsar.db.models import Bundle, CompletionRecord, IdentityRow, Request
from dsar.lifecycle import State
from dsar.mail.queue import requeue_unsent
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


class LastSweeps(dict[tuple[str, str], datetime]):
    """When an App's housekeeping last swept each bundle store, by sweep kind and store
    location (``app.local(LastSweeps)``)."""


ORPHAN_GRACE = timedelta(hours=1)
"""How old the sidecar of a bundle without a database row must be before the bundle is taken
for an orphan: no completing transaction lasts that long."""
_SWEEP_BATCH = 500


def _due(app: App, kind: str, store: BundleStore, now: datetime, seconds: float) -> bool:
    """Whether the ``kind`` sweep of ``store`` is due (its last one was ``seconds`` ago or
    longer); if so, it counts as done now."""
    last_sweeps = app.local(LastSweeps)
    last = last_sweeps.get((kind, store.location))
    if last is not None and now - last < timedelta(seconds=seconds):
        return False
    last_sweeps[(kind, store.location)] = now
    return True


def delete_expired_bundles(app: App, store: BundleStore, now: datetime) -> list[str]:
    """Delete the bundles whose retention ended (``delete_after``, from
    DSAR_BUNDLE_RETENTION_DAYS): blob and sidecar, then the row is marked deleted. Works from
    the state database, so it costs what has expired, not what is kept. Returns their ids."""
    purged: list[str] = []
    while True:
        with app.db.session() as session:
            batch = list(session.scalars(
                sa.select(Bundle.id).where(Bundle.deleted_at.is_(None), Bundle.delete_after <= now)
                .order_by(Bundle.delete_after).limit(_SWEEP_BATCH)))
        for bundle_id in batch:
            delete_bundle(store, bundle_id)
        if batch:
            with app.db.session() as session:
                session.execute(sa.update(Bundle).where(Bundle.id.in_(batch))
                                .values(deleted_at=now))
        purged += batch
        if len(batch) < _SWEEP_BATCH:
            return purged


def delete_orphan_bundles(app: App, store: BundleStore, now: datetime) -> list[str]:
    """Delete what the store keeps of bundles that have no live row (a completion whose
    transaction rolled back after the bundle was written, a row marked deleted); see
    :func:`dsar.bundles.retention.purge_orphans`."""
    def known(ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        listed = sorted(ids)
        with app.db.session() as session:
            for i in range(0, len(listed), _SWEEP_BATCH):
                found.update(session.scalars(sa.select(Bundle.id).where(
                    Bundle.id.in_(listed[i:i + _SWEEP_BATCH]), Bundle.deleted_at.is_(None))))
        return found

    return purge_orphans(store, known, now, ORPHAN_GRACE)


PARTIAL_GRACE = timedelta(hours=1)
"""How old a ``.part`` file must be before it is taken for the leftover of a killed write: no
bundle write lasts that long."""
_PARTIAL = re.compile(r"\..+\.[0-9a-f]{32}\.part")


def delete_partial_writes(store: BundleStore, now: datetime,
                          grace: timedelta = PARTIAL_GRACE) -> list[str]:
    """Delete the temporary ``.<name>.<hex>.part`` files that a write killed before its rename
    left in a local store (:meth:`LocalBundleStore.write_stream`), once ``grace`` old; returns
    their names. S3 keeps no partial objects (an incomplete multipart upload is the bucket's
    lifecycle rule's business), so other stores have nothing to sweep."""
    if not isinstance(store, LocalBundleStore):
        return []
    cutoff = (now - grace).timestamp()
    swept = []
    with os.scandir(store.root) as entries:
        for entry in entries:
            if not _PARTIAL.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    swept.append(entry.name)
            except FileNotFoundError:  # its writer finished, or another process swept it
                continue
    return sorted(swept)


def periodic_housekeeping(app: App) -> None:
    """Issue a ledger checkpoint when the ledger grew; delete bundles past retention.

    Bundles past retention are found in the state database, at most once per
    ``DSAR_RETENTION_SWEEP_SECONDS``; listing the store for orphans (which reads every name,
    and on S3 costs paid LIST requests) happens at most once per ``DSAR_ORPHAN_SWEEP_SECONDS``
    in each process; partial files of killed writes, at most once per
    ``DSAR_PARTIAL_SWEEP_SECONDS``. A link stops working at its expiry regardless (downloads
    check it)."""
    from dsar.records.ledger import issue_checkpoint

    now = app.now()
    sign_closed_requests(app)
    requeue_unsent(app)  # messages to people whose retries ran out
    forget_identities(app)
    with app.db.session() as session:
        issue_checkpoint(session, app)
    store = bundle_store(app)
    timings = app.settings
    if _due(app, "retention", store, now, timings.retention_sweep_seconds):
        delete_expired_bundles(app, store, now)
    if _due(app, "orphans", store, now, timings.orphan_sweep_seconds):
        delete_orphan_bundles(app, store, now)
    if _due(app, "partial", store, now, timings.partial_sweep_seconds):
        delete_partial_writes(store, now)
