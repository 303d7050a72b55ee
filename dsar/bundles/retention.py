"""Deleting stored bundles (wired into the periodic work by the caller).

:func:`purge_expired` works from the store alone: it reads every sidecar. A caller that keeps
its own list of bundles (the fleet's state database) deletes those whose retention ended with
:func:`delete_bundle`, and what it has no list of (builds whose transaction rolled back) with
:func:`purge_orphans`, which reads only the sidecars of bundles it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from dsar.bundles.errors import BundleMissing
from dsar.bundles.sidecar import SUFFIX, BundleSidecar, read_sidecar, sidecar_name
from dsar.bundles.store import BundleStore

log = logging.getLogger(__name__)
BLOB_SUFFIXES = (".zip.dsar", ".zip")


def _sidecar(store: BundleStore, bundle_id: str) -> BundleSidecar | None:
    """The bundle's sidecar, or None when it is gone or unreadable (logged; left in place)."""
    try:
        return read_sidecar(store, bundle_id)
    except BundleMissing:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("bundle record %s is unreadable (%s); left in place", bundle_id, exc)
        return None


def purge_expired(store: BundleStore, now: datetime) -> list[str]:
    """Delete every bundle with ``expires_at <= now`` (blob first, then its record) and any
    blob left without a record; return the purged bundle ids. Safe to run concurrently with
    builds: a build writes its record before its blob."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    purged: list[str] = []
    records = {name[: -len(SUFFIX)] for name in store.names(SUFFIX)}
    for bundle_id in sorted(records):
        record = _sidecar(store, bundle_id)
        if record is not None and now >= record.expires_at:
            store.delete(record.blob)
            store.delete(sidecar_name(bundle_id))
            purged.append(bundle_id)
    for name in list(store.names()):
        for suffix in BLOB_SUFFIXES:
            bundle_id = name[: -len(suffix)]
            if name.endswith(suffix) and not store.exists(sidecar_name(bundle_id)):
                store.delete(name)
                purged.append(bundle_id)
                break
    return purged


def delete_bundle(store: BundleStore, bundle_id: str) -> None:
    """Delete the bundle's blob, then its sidecar; nothing missing is an error."""
    for suffix in BLOB_SUFFIXES:
        store.delete(bundle_id + suffix)
    store.delete(sidecar_name(bundle_id))


def _bundle_id(name: str) -> str | None:
    for suffix in (*BLOB_SUFFIXES, SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def purge_orphans(store: BundleStore, known: Callable[[Collection[str]], Collection[str]],
                  now: datetime, grace: timedelta) -> list[str]:
    """Delete the stored bundles that ``known`` (given every bundle id in the store, returns
    those its caller keeps) does not know: a blob without a sidecar at once, any other once its
    sidecar is ``grace`` old (a build may still be committing meanwhile). Returns their ids.
    Lists the store; reads only the sidecars of unknown bundles."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    names = set(store.names())
    stored = {i for i in map(_bundle_id, names) if i is not None}
    purged: list[str] = []
    for bundle_id in sorted(stored - set(known(stored))):
        if sidecar_name(bundle_id) in names:
            record = _sidecar(store, bundle_id)
            if record is None or now - record.created_at < grace:
                continue
        delete_bundle(store, bundle_id)
        purged.append(bundle_id)
    return purged
