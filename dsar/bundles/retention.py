"""Deleting bundles whose retention has ended (wired into the periodic work by the caller)."""

from __future__ import annotations

import logging
from datetime import datetime

from dsar.bundles.errors import BundleMissing
from dsar.bundles.record import SUFFIX, read_record, record_name
from dsar.bundles.store import BundleStore

log = logging.getLogger(__name__)
BLOB_SUFFIXES = (".zip.dsar", ".zip")


def purge_expired(store: BundleStore, now: datetime) -> list[str]:
    """Delete every bundle with ``expires_at <= now`` (blob first, then its record) and any
    blob left without a record; return the purged bundle ids. Safe to run concurrently with
    builds: a build writes its record before its blob."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    purged: list[str] = []
    records = {name[: -len(SUFFIX)] for name in store.names(SUFFIX)}
    for bundle_id in sorted(records):
        try:
            record = read_record(store, bundle_id)
        except BundleMissing:
            continue
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("bundle record %s is unreadable (%s); left in place", bundle_id, exc)
            continue
        if now >= record.expires_at:
            store.delete(record.blob)
            store.delete(record_name(bundle_id))
            purged.append(bundle_id)
    for name in list(store.names()):
        for suffix in BLOB_SUFFIXES:
            bundle_id = name[: -len(suffix)]
            if name.endswith(suffix) and not store.exists(record_name(bundle_id)):
                store.delete(name)
                purged.append(bundle_id)
                break
    return purged
