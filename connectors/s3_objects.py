"""Objects that belong to one subject: ``avatars/{customer_id}.png``, ``uploads/{customer_id}/``.

A *target* is a filled template: ``(text, exact)`` where ``exact`` means a single key and
otherwise a prefix that ends at a ``/``. Collection streams current objects to the sink;
erasure removes every version and delete marker (so nothing survives in a versioned bucket's
history) and aborts multipart uploads in progress, never bypassing Object Lock: a version
under retention or legal hold is reported retained with the lock read from its own headers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

from connectors.base import CollectionSink
from connectors.s3_client import (
    Bucket,
    Lock,
    Version,
    list_uploads,
    list_versions,
    read_lock,
    retained_summary,
    version_pages,
)
from dsar.datamap.schema import S3ObjectSpec
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

Target = tuple[str, bool]
ERASE_COUNTS = ("versions_deleted", "markers_removed", "uploads_aborted", "records_redacted",
                "objects_retained")


def _elapsed(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def _current_keys(b: Bucket, target: Target) -> Iterator[str]:
    text, exact = target
    params: dict[str, Any] = {"Bucket": b.name, "Prefix": text, "MaxKeys": b.settings.page_size}
    while True:
        page = b.client.list_objects_v2(**params)
        for item in page.get("Contents", []):
            if not exact or item["Key"] == text:
                yield item["Key"]
        if not page.get("IsTruncated") or (exact and page.get("Contents")):
            return
        params["ContinuationToken"] = page["NextContinuationToken"]


def collect_objects(
    b: Bucket, spec: S3ObjectSpec, targets: list[Target], sink: CollectionSink
) -> CollectionEvidence:
    """Stream each current object (metadata, then content in chunks) into ``sink``."""
    start = time.monotonic()
    ev = b.evidence(spec.name, "collect")
    digest = hashlib.sha256()
    for target in targets:
        with b.guard(spec.name, f"listing {target[0]!r}"):
            keys = list(_current_keys(b, target))
        for key in keys:
            with b.guard(spec.name, f"reading {key!r}"):
                try:
                    obj = b.client.get_object(Bucket=b.name, Key=key)
                except b.client.exceptions.NoSuchKey:
                    continue  # deleted since it was listed
                ev.found += 1
                version = obj.get("VersionId") or "null"
                meta = {
                    "key": key,
                    "version_id": version,
                    "content_type": obj.get("ContentType", ""),
                    "content_length": str(obj.get("ContentLength", "")),
                    "etag": obj.get("ETag", ""),
                    "last_modified": obj["LastModified"].isoformat(),
                    **{f"meta.{k}": v for k, v in obj.get("Metadata", {}).items()},
                }
                chunks = _hashing(obj["Body"].iter_chunks(b.settings.chunk_size), digest)
                sink.write_object(b.system, spec.name, key, meta, chunks)
                for _ in chunks:  # the sink may stop early; the digest covers the whole object
                    pass
            ev.collected += 1
            ev.item_hashes.append(b.item_hash(key, version))
    ev.digest = digest.hexdigest()
    ev.duration_ms = _elapsed(start)
    return ev


def _hashing(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def count_objects(b: Bucket, spec: S3ObjectSpec, targets: list[Target]) -> CollectionEvidence:
    """Current objects as ``found``; versions, delete markers and uploads in ``counts``."""
    start = time.monotonic()
    ev = b.evidence(spec.name, "count")
    counts = {"versions": 0, "delete_markers": 0, "uploads_in_progress": 0}
    for text, exact in targets:
        with b.guard(spec.name, f"listing versions under {text!r}"):
            for v in list_versions(b.client, b.name, text, b.settings.page_size, exact=exact):
                counts["delete_markers" if v.is_marker else "versions"] += 1
                ev.found += int(v.is_latest and not v.is_marker)
            counts["uploads_in_progress"] += sum(
                1 for _ in list_uploads(b.client, b.name, text, b.settings.page_size, exact=exact)
            )
    ev.counts = counts
    ev.duration_ms = _elapsed(start)
    return ev


def recount_objects(b: Bucket, collection: str, targets: list[Target]) -> tuple[int, list[Lock]]:
    """``(remaining, locks)``: what erasure should have removed but is still there, and the
    locks of versions that are kept because Object Lock protects them."""
    remaining, locks = 0, []
    for text, exact in targets:
        with b.guard(collection, f"recounting under {text!r}"):
            for v in list_versions(b.client, b.name, text, b.settings.page_size, exact=exact):
                if not v.is_marker:
                    lock = read_lock(b.client, b.name, v.key, v.version_id)
                    if lock.active:
                        locks.append(lock)
                        continue
                remaining += 1
            remaining += sum(
                1 for _ in list_uploads(b.client, b.name, text, b.settings.page_size, exact=exact)
            )
    return remaining, locks


def erase_objects(b: Bucket, spec: S3ObjectSpec, targets: list[Target]) -> CollectionEvidence:
    """Delete every version and marker, abort uploads, then recount (remaining must be 0)."""
    start = time.monotonic()
    ev = b.evidence(spec.name, "erase")
    counts = dict.fromkeys(ERASE_COUNTS, 0)
    if spec.erasure.action == "retain":
        found = count_objects(b, spec, targets)
        ev.found = ev.retained = found.found
        counts["objects_retained"] = found.found
        assert spec.erasure.retain is not None
        ev.retained_ground = spec.erasure.retain.ground
        ev.retained_period = spec.erasure.retain.period
        ev.remaining, ev.counts, ev.duration_ms = 0, counts, _elapsed(start)
        return ev
    for text, exact in targets:
        previous: list[Version] = []
        with b.guard(spec.name, f"deleting versions under {text!r}"):
            # Delete a page only once the next one is fetched, so paging never loses its place.
            for page in version_pages(b.client, b.name, text, b.settings.page_size, exact=exact):
                ev.found += sum(1 for v in page if v.is_latest and not v.is_marker)
                if previous:
                    _delete_batch(b, spec.name, previous, counts, ev)
                previous = page
            if previous:
                _delete_batch(b, spec.name, previous, counts, ev)
        with b.guard(spec.name, f"aborting multipart uploads under {text!r}"):
            for key, upload_id in list(
                list_uploads(b.client, b.name, text, b.settings.page_size, exact=exact)
            ):
                try:
                    b.client.abort_multipart_upload(Bucket=b.name, Key=key, UploadId=upload_id)
                except b.client.exceptions.NoSuchUpload:
                    continue
                counts["uploads_aborted"] += 1
    remaining, locks = recount_objects(b, spec.name, targets)
    counts["objects_retained"] = len(locks)
    ev.deleted = counts["versions_deleted"]
    ev.retained = len(locks)
    ev.retained_ground, ev.retained_period = retained_summary(locks)
    ev.remaining, ev.counts, ev.duration_ms = remaining, counts, _elapsed(start)
    if remaining:
        raise ConnectorError(
            f"{remaining} version(s), marker(s) or upload(s) of {spec.name!r} are still in bucket "
            f"{b.name!r} after erasure",
            "another writer may be adding objects under the subject's prefix; run erasure again",
            system=b.system, collection=spec.name, code="s3_erasure_incomplete", transient=True,
        )
    return ev


def _delete_batch(
    b: Bucket, collection: str, batch: list[Version], counts: dict[str, int],
    ev: CollectionEvidence,
) -> None:
    """DeleteObjects on one batch of versions; locked versions are left (recount reports them)."""
    by_id = {(v.key, v.version_id): v for v in batch}
    answer = b.client.delete_objects(
        Bucket=b.name,
        Delete={
            "Objects": [{"Key": v.key, "VersionId": v.version_id} for v in batch],
            "Quiet": False,
        },
    )
    for done in answer.get("Deleted", []):
        v = by_id.get((done["Key"], done.get("VersionId") or "null"))
        if v is None:
            continue
        counts["markers_removed" if v.is_marker else "versions_deleted"] += 1
        ev.item_hashes.append(b.item_hash(v.key, v.version_id))
    for err in answer.get("Errors", []):
        v = by_id.get((err["Key"], err.get("VersionId") or "null"))
        suspects = [v] if v else [x for x in batch if x.key == err["Key"]]
        code = err.get("Code", "")
        if code == "AccessDenied" and any(
            not x.is_marker and read_lock(b.client, b.name, x.key, x.version_id).active
            for x in suspects
        ):
            continue  # kept by Object Lock; the recount reports it as retained
        raise ConnectorError(
            f"S3 refused to delete a version in {collection!r} of bucket {b.name!r} ({code}: "
            f"{err.get('Message', '')})",
            "grant s3:DeleteObject and s3:DeleteObjectVersion to the worker's credentials",
            system=b.system, collection=collection,
            code="s3_access_denied" if code == "AccessDenied" else f"s3_{code.lower()}",
        )
