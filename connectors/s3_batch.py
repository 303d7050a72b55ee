"""One pass over shared files for many people at once (issue #25, docs/decisions/0001).

A batch is ``{member: Matcher}``: each member is one erasure request (its task id, as text).
The search runs once with the union of every member's values (one Aho-Corasick pass for JSONL,
one ``is_in`` push-down for Parquet, see :mod:`connectors.s3_scan` and
:mod:`connectors.s3_parquet`), each file is rewritten once without every member's records, and
every record found is attributed to each member whose own matcher accepts it (a record two
members share counts for both). Each member gets evidence of its own: its ``found``, its
``deleted``, the keyed hashes of its own lines and its own recount; never another member's.

Crash safety is the single erasure's (:mod:`connectors.s3_shared`): each file is rewritten with
a conditional write, so a pass killed midway leaves every file old or new, and a rerun finds
what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import closing
from typing import Any

from connectors.s3_client import Bucket, Lock, Version, read_lock
from connectors.s3_client import retained_summary as _summary
from connectors.s3_objects import ERASE_COUNTS, _elapsed
from connectors.s3_owners import Owners
from connectors.s3_records import Matcher
from connectors.s3_shared import (
    _delete_version,
    _open,
    _read_kept,
    _versions,
    matcher_for,
    rewrite_conditionally,
)
from connectors.s3_tables import TABLE_FORMATS, count_table_batch, erase_table_batch
from connectors.s3_verified import Verified
from dsar.datamap.schema import S3SharedSpec
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

#: ``before_change(collection, file, counts)``: called just before the pass changes a current
#: file (``file`` is its key) or a table (``file`` is the collection's prefix), with the records
#: of each member (by member id) the file holds; only members with records are named.
BeforeChange = Callable[[str, str, dict[str, int]], None]
TableOpener = Callable[[S3SharedSpec], Any]


def members_for(spec: S3SharedSpec, keys_by_member: Mapping[str, Any]) -> dict[str, Matcher]:
    """One matcher per member, from each member's own keys."""
    return {member: matcher_for(spec, keys) for member, keys in keys_by_member.items()}


def union_of(spec: S3SharedSpec, keys_by_member: Mapping[str, Any]) -> Matcher:
    """The matcher of every member's values together: what the search looks for."""
    merged: dict[str, set[str]] = {}
    for keys in keys_by_member.values():
        for name, values in keys.items():
            merged.setdefault(name, set()).update(values)
    return matcher_for(spec, {name: frozenset(values) for name, values in merged.items()})


def _attributed(b: Bucket, spec: S3SharedSpec, v: Version, owners: Owners,
                verified: Verified | None = None) -> dict[str, int]:
    """Each member's records in one version, from one read of it; with ``verified``, a
    version holding none of the union's records is added."""
    hits = dict.fromkeys(owners.members, 0)
    found = 0
    union = owners.union
    with b.guard(spec.name, f"scanning {v.key!r}"):
        opened = _open(b, spec, v, union)
        if opened is None:
            return hits
        for seg in opened[2]:
            if seg[3] is not None and union(seg[3]):
                found += 1
                for member in owners.of(seg[3]):
                    hits[member] += 1
    if not found and verified is not None:
        verified.add(v.key, opened[0])
    return hits


def count_shared_batch(b: Bucket, spec: S3SharedSpec, keys_by_member: Mapping[str, Any],
                       table: TableOpener | None = None) -> dict[str, CollectionEvidence]:
    """Each member's records in current versions (``found``) and older ones
    (``counts["noncurrent_records"]``), in one scan of every version. A Delta Lake or
    Iceberg collection is read through ``table(spec)`` (:mod:`connectors.s3_tables`)."""
    if spec.format in TABLE_FORMATS and table is not None:
        with closing(table(spec)) as opened:
            return count_table_batch(b, spec, opened, members_for(spec, keys_by_member),
                                     union_of(spec, keys_by_member))
    start = time.monotonic()
    members = {m: x for m, x in members_for(spec, keys_by_member).items() if not x.empty}
    evs = {m: b.evidence(spec.name, "count") for m in keys_by_member}
    noncurrent = dict.fromkeys(keys_by_member, 0)
    if members:
        owners = Owners(members, union_of(spec, keys_by_member))
        for v in _versions(b, spec):
            for member, n in _attributed(b, spec, v, owners).items():
                if v.is_latest:
                    evs[member].found += n
                else:
                    noncurrent[member] += n
    for member, ev in evs.items():
        ev.counts = {"noncurrent_records": noncurrent[member]}
        ev.duration_ms = _elapsed(start)
    return evs


def erase_shared_batch(b: Bucket, spec: S3SharedSpec, keys_by_member: Mapping[str, Any],
                       table: TableOpener | None = None,
                       before_change: BeforeChange | None = None,
                       ) -> dict[str, CollectionEvidence]:
    """Remove every member's records from every version in one pass, then recount each
    member. Raises ConnectorError (``s3_erasure_incomplete``, transient) if any member's
    records are still there. A Delta Lake or Iceberg collection is erased through
    ``table(spec)`` with one delete whose predicate covers every member
    (:mod:`connectors.s3_tables`). ``before_change`` is told what each file held before the
    pass changes it (see :data:`BeforeChange`)."""
    if spec.format in TABLE_FORMATS and table is not None:
        with closing(table(spec)) as opened:
            return erase_table_batch(b, spec, opened, members_for(spec, keys_by_member),
                                     union_of(spec, keys_by_member), before_change)
    start = time.monotonic()
    evs = {m: b.evidence(spec.name, "erase") for m in keys_by_member}
    counts = {m: dict.fromkeys(ERASE_COUNTS, 0) for m in keys_by_member}
    members = {m: x for m, x in members_for(spec, keys_by_member).items() if not x.empty}
    if spec.erasure.action == "retain" or not members:
        found = count_shared_batch(b, spec, keys_by_member)
        for member, ev in evs.items():
            ev.found = found[member].found
            if spec.erasure.retain is not None and ev.found:
                ev.retained = counts[member]["objects_retained"] = ev.found
                ev.retained_ground = spec.erasure.retain.ground
                ev.retained_period = spec.erasure.retain.period
            ev.remaining, ev.counts, ev.duration_ms = 0, counts[member], _elapsed(start)
        return evs
    owners = Owners(members, union_of(spec, keys_by_member))
    verified = Verified()
    for v in _versions(b, spec):
        if v.is_latest:
            _rewrite_batch(b, spec, v, owners, counts, evs, verified, before_change)
            continue
        hits = _attributed(b, spec, v, owners, verified)
        if any(hits.values()):
            deleted = dict.fromkeys(ERASE_COUNTS, 0)
            _delete_version(b, spec, v.key, v.version_id, deleted)
            for member, n in hits.items():
                if n:
                    counts[member]["versions_deleted"] += deleted["versions_deleted"]
    remaining, locks = recount_shared_batch(b, spec, owners, verified)
    for member, ev in evs.items():
        own_locks = locks.get(member, [])
        counts[member]["objects_retained"] = len(own_locks)
        counts[member]["versions_checked_in_pass"] = verified.reused
        ev.deleted = counts[member]["records_redacted"]
        ev.retained = len(own_locks)
        ev.retained_ground, ev.retained_period = _summary(own_locks)
        ev.remaining = remaining.get(member, 0)
        ev.counts, ev.duration_ms = counts[member], _elapsed(start)
    left = sum(remaining.values())
    if left:
        raise ConnectorError(
            f"{left} record(s) of {sum(1 for n in remaining.values() if n)} batched subject(s) "
            f"are still in shared files of {spec.name!r} in bucket {b.name!r} after erasure",
            "a writer may be adding their records again; stop it and the batch runs again",
            system=b.system, collection=spec.name, code="s3_erasure_incomplete", transient=True,
        )
    return evs


def recount_shared_batch(b: Bucket, spec: S3SharedSpec, owners: Owners,
                         verified: Verified | None = None,
                         ) -> tuple[dict[str, int], dict[str, list[Lock]]]:
    """``(remaining, locks)`` per member: records still erasable, and locks of kept versions
    that hold the member's records. Versions ``verified`` holds are not read again
    (:mod:`connectors.s3_verified`)."""
    remaining = dict.fromkeys(owners.members, 0)
    locks: dict[str, list[Lock]] = {}
    for v in _versions(b, spec):
        if verified is not None and verified.holds(v):
            continue
        hits = _attributed(b, spec, v, owners)
        if not any(hits.values()):
            continue
        if not v.is_latest:
            with b.guard(spec.name, f"reading the lock of {v.key!r}"):
                lock = read_lock(b.client, b.name, v.key, v.version_id)
            if lock.active:
                for member, n in hits.items():
                    if n:
                        locks.setdefault(member, []).append(lock)
                continue
        for member, n in hits.items():
            remaining[member] += n
    return remaining, locks


def _rewrite_batch(b: Bucket, spec: S3SharedSpec, v: Version, owners: Owners,
                   counts: dict[str, dict[str, int]],
                   evs: dict[str, CollectionEvidence], verified: Verified,
                   before_change: BeforeChange | None = None) -> None:
    """:func:`connectors.s3_shared._rewrite` with the union matcher, each removed line
    credited to its members."""
    dropped: list[tuple[int, Any]] = []
    union = owners.union

    def read(latest: Version, spool: Any) -> tuple[Any, Any] | None:
        dropped.clear()  # each attempt reads afresh
        return _read_kept(b, spec, latest, union, spool, dropped)

    def tell(_lines: Any) -> None:
        if before_change is not None:
            held: dict[str, int] = {}
            for _line, record in dropped:
                for member in owners.of(record):
                    held[member] = held.get(member, 0) + 1
            before_change(spec.name, v.key, held)

    done = rewrite_conditionally(b, spec, v, read, union, verified, tell)
    if done is None:
        return
    version = done[0].get("VersionId") or "null"
    touched: set[str] = set()
    for line, record in dropped:
        for member in owners.of(record):
            touched.add(member)
            counts[member]["records_redacted"] += 1
            evs[member].found += 1
            evs[member].item_hashes.append(b.item_hash(v.key, version, line))
    if version != "null":
        deleted = dict.fromkeys(ERASE_COUNTS, 0)
        _delete_version(b, spec, v.key, version, deleted)
        for member in touched:
            counts[member]["versions_deleted"] += deleted["versions_deleted"]
