"""Shared files: objects under a prefix that hold many people's records (JSONL, CSV, JSON).

Every object is streamed (never read whole) through :mod:`connectors.s3_records`. Erasure
rewrites an object without the subject's records:

1. read the current version and parse *all* of it, writing the kept bytes to a spooled temp
   file; a malformed record raises before anything is written, so there is never a partial
   rewrite;
2. upload the temp file with ``IfMatch`` = the ETag that was read, keeping content type,
   encoding, metadata, tags and server-side encryption settings; on 412 (a concurrent writer
   changed the object) start again from 1, a few times;
3. in a versioned bucket delete the version that was read, and every older version that still
   holds the subject's records (unless Object Lock keeps it: then it is reported retained).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import IO, Any

from botocore.exceptions import ClientError

from connectors.base import CollectionSink
from connectors.s3_client import Bucket, Lock, Version, is_conflict, list_versions, read_lock
from connectors.s3_client import retained_summary as _summary
from connectors.s3_objects import ERASE_COUNTS, _elapsed
from connectors.s3_ranges import range_header, read_ahead, read_ranges
from connectors.s3_records import MalformedRecord, Matcher, Rewriter, Segment
from connectors.s3_records import decoded_chunks as _decoded
from connectors.s3_scan import record_segments
from connectors.s3_verified import Verified, count_written
from dsar.datamap.schema import S3SharedSpec
from dsar.errors import ConnectorError

KEPT_ATTRIBUTES = (
    "ContentType", "ContentEncoding", "ContentDisposition", "ContentLanguage", "CacheControl",
    "WebsiteRedirectLocation", "ServerSideEncryption", "SSEKMSKeyId", "BucketKeyEnabled",
    "StorageClass",
)


def matcher_for(spec: S3SharedSpec, keys: Any) -> Matcher:
    return Matcher(spec.match, keys, dotted=spec.format != "csv")


def _versions(b: Bucket, spec: S3SharedSpec, *, current_only: bool = False) -> list[Version]:
    """The shared files under the prefix: every version, or only current ones.

    A bucket that never had versioning holds only current objects, so ListObjectsV2 lists the
    same files as ListObjectVersions, which some stores (moto) answer far more slowly.
    """
    with b.guard(spec.name, f"listing shared files under {spec.prefix!r}"):
        if current_only or not _ever_versioned(b):
            found = _current(b, spec.prefix)
        else:
            found = list_versions(b.client, b.name, spec.prefix, b.settings.page_size)
        return [v for v in found if not v.is_marker and not v.key.endswith("/")]


def _ever_versioned(b: Bucket) -> bool:
    """True unless GetBucketVersioning says versioning was never enabled (or cannot say)."""
    try:
        status = b.client.get_bucket_versioning(Bucket=b.name).get("Status")
    except ClientError as exc:
        if exc.response["Error"].get("Code") in ("AccessDenied", "NotImplemented"):
            return True  # cannot tell: list every version
        raise
    return status in ("Enabled", "Suspended")


def _current(b: Bucket, prefix: str) -> Iterator[Version]:
    params: dict[str, Any] = {"Bucket": b.name, "Prefix": prefix,
                              "MaxKeys": b.settings.page_size}
    while True:
        page = b.client.list_objects_v2(**params)
        for item in page.get("Contents", []):
            yield Version(item["Key"], "null", True, False, item.get("Size", 0),
                          item.get("ETag", ""))
        if not page.get("IsTruncated"):
            return
        params["ContinuationToken"] = page["NextContinuationToken"]


def _open(
    b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher | None = None
) -> tuple[dict[str, Any], bool, Iterator[Segment]] | None:
    """GET one version; ``(response, is_gzip, segments)`` or None if it has gone.

    With a ``matcher`` (and ``prefilter`` on) JSONL is searched for the subject's values and
    only candidate lines are parsed (:mod:`connectors.s3_scan`); objects over two
    ``range_size`` are read as parallel ranges (:mod:`connectors.s3_ranges`).
    """
    s = b.settings
    if spec.format == "parquet":
        return _open_parquet(b, spec, v, matcher)
    params: dict[str, Any] = {"Bucket": b.name, "Key": v.key}
    if not v.is_latest:
        params["VersionId"] = v.version_id
    ranged = s.range_workers > 1 and v.size > 2 * s.range_size
    try:
        if ranged:
            try:
                obj = b.client.get_object(**params, Range=range_header(0, s.range_size, v.size))
            except ClientError as exc:
                if exc.response["Error"].get("Code") != "InvalidRange":
                    raise
                ranged, obj = False, b.client.get_object(**params)  # emptied since listed
        else:
            obj = b.client.get_object(**params)
    except b.client.exceptions.NoSuchKey:
        return None
    if ranged:
        total = int(obj["ContentRange"].rsplit("/", 1)[1])
        raw = read_ranges(b.client, params, obj, total, range_size=s.range_size,
                          workers=s.range_workers)
    else:
        raw = obj["Body"].iter_chunks(s.chunk_size)
        if s.read_ahead:
            raw = read_ahead(raw, s.read_ahead)
    try:
        is_gzip, plain = _decoded(raw, spec.compression, s.chunk_size)
    except MalformedRecord as exc:
        raise _malformed(b, spec, v.key, exc) from None

    def segments() -> Iterator[Segment]:
        try:
            yield from record_segments(plain, spec.format, matcher, s.prefilter)
        except MalformedRecord as exc:
            raise _malformed(b, spec, v.key, exc) from None
        finally:
            obj["Body"].close()

    return obj, is_gzip, segments()


def _open_parquet(
    b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher | None
) -> tuple[dict[str, Any], bool, Iterator[Segment]] | None:
    """Parquet: only the subject's rows come out, as segments (see :mod:`connectors.s3_parquet`)."""
    assert matcher is not None
    opened = _parquet_scan(b, spec, v, matcher)
    if opened is None:
        return None
    from connectors.s3_parquet import parquet_segments

    return opened[0], False, parquet_segments(opened[1])


def _parquet_scan(b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher) -> Any:
    """``(head, ParquetScan)`` or None; pyarrow is imported only for Parquet collections."""
    try:
        from connectors.s3_parquet import NotParquet, open_parquet
    except ImportError:
        raise ConnectorError(
            f"shared collection {spec.name!r} is Parquet, and pyarrow is not installed",
            "install the 'lake' extra (pip install 'dsar[lake]') on the workers",
            system=b.system, collection=spec.name, code="s3_parquet_unavailable",
        ) from None
    try:
        return open_parquet(b.client, b.name, v.key, None if v.is_latest else v.version_id,
                            matcher, request_bytes=b.settings.range_size)
    except NotParquet as exc:
        raise ConnectorError(
            f"shared file {v.key!r} in bucket {b.name!r} is not a readable Parquet file ({exc})",
            f"remove {v.key!r} from {spec.prefix!r} or correct 'format' of {spec.name!r} in the "
            "data map; nothing was changed",
            system=b.system, collection=spec.name, code="s3_malformed_record",
        ) from None


def _malformed(b: Bucket, spec: S3SharedSpec, key: str, exc: MalformedRecord) -> ConnectorError:
    return ConnectorError(
        f"shared file {key!r} in bucket {b.name!r} is malformed at line {exc.line}: {exc.reason}",
        f"fix or remove line {exc.line} of {key!r}, or correct 'format'/'compression' of "
        f"{spec.name!r} in the data map; nothing was changed",
        system=b.system, collection=spec.name, code="s3_malformed_record",
    )


def _count_matches(b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher,
                   verified: Verified | None = None) -> int:
    """Matching records in one version; with ``verified``, a version found clean is added."""
    with b.guard(spec.name, f"scanning {v.key!r}"):
        opened = _open(b, spec, v, matcher)
        if opened is None:
            return 0
        n = sum(1 for seg in opened[2] if seg[3] is not None and matcher(seg[3]))
    if not n and verified is not None:
        verified.add(v.key, opened[0])
    return n


def collect_shared(
    b: Bucket, spec: S3SharedSpec, matcher: Matcher, sink: CollectionSink
) -> Any:
    """Send the subject's records of current versions to ``sink`` in batches.

    A row is ``{"object": key, "line": n, "record": {...}}``; the digest is SHA-256 over the
    raw bytes of the matched records in the order sent.
    """
    start = time.monotonic()
    ev = b.evidence(spec.name, "collect")
    digest = hashlib.sha256()
    scanned = 0
    batch: list[dict[str, Any]] = []
    for v in _versions(b, spec, current_only=True) if not matcher.empty else ():
        with b.guard(spec.name, f"scanning {v.key!r}"):
            opened = _open(b, spec, v, matcher)
            if opened is None:
                continue
            obj, _, segments = opened
            version = obj.get("VersionId") or "null"
            scanned += 1
            for _lead, raw, line, record in segments:
                if record is None or not matcher(record):
                    continue
                ev.found += 1
                digest.update(raw)
                ev.item_hashes.append(b.item_hash(v.key, version, line))
                batch.append({"object": v.key, "line": line, "record": record})
                if len(batch) >= b.settings.batch_size:
                    sink.write_rows(b.system, spec.name, batch)
                    ev.collected += len(batch)
                    batch = []
    if batch:
        sink.write_rows(b.system, spec.name, batch)
        ev.collected += len(batch)
    ev.digest = digest.hexdigest()
    ev.counts = {"objects_scanned": scanned}
    ev.duration_ms = _elapsed(start)
    return ev


def count_shared(b: Bucket, spec: S3SharedSpec, matcher: Matcher) -> Any:
    """Records of the subject: ``found`` in current versions, ``noncurrent_records`` in older."""
    start = time.monotonic()
    ev = b.evidence(spec.name, "count")
    noncurrent = 0
    for v in _versions(b, spec) if not matcher.empty else []:
        n = _count_matches(b, spec, v, matcher)
        if v.is_latest:
            ev.found += n
        else:
            noncurrent += n
    ev.counts = {"noncurrent_records": noncurrent}
    ev.duration_ms = _elapsed(start)
    return ev


def erase_shared(b: Bucket, spec: S3SharedSpec, matcher: Matcher) -> Any:
    """Remove the subject's records from every version (see the module doc), then recount."""
    start = time.monotonic()
    ev = b.evidence(spec.name, "erase")
    counts = dict.fromkeys(ERASE_COUNTS, 0)
    if spec.erasure.action == "retain" or matcher.empty:
        found = count_shared(b, spec, matcher)
        ev.found = found.found
        if spec.erasure.retain is not None and found.found:
            ev.retained = counts["objects_retained"] = found.found
            ev.retained_ground = spec.erasure.retain.ground
            ev.retained_period = spec.erasure.retain.period
        ev.remaining, ev.counts, ev.duration_ms = 0, counts, _elapsed(start)
        return ev
    verified = Verified()
    for v in _versions(b, spec):
        if v.is_latest:
            _rewrite(b, spec, v, matcher, counts, ev, verified)
        elif _count_matches(b, spec, v, matcher, verified):
            _delete_version(b, spec, v.key, v.version_id, counts)
    remaining, locks = recount_shared(b, spec, matcher, verified)
    counts["objects_retained"] = len(locks)
    counts["versions_checked_in_pass"] = verified.reused
    ev.deleted = counts["records_redacted"]
    ev.retained = len(locks)
    ev.retained_ground, ev.retained_period = _summary(locks)
    ev.remaining, ev.counts, ev.duration_ms = remaining, counts, _elapsed(start)
    if remaining:
        raise ConnectorError(
            f"{remaining} record(s) of the subject are still in shared files of {spec.name!r} "
            f"in bucket {b.name!r} after erasure",
            "a writer may be adding the subject's records again; stop it and run erasure again",
            system=b.system, collection=spec.name, code="s3_erasure_incomplete", transient=True,
        )
    return ev


def recount_shared(b: Bucket, spec: S3SharedSpec, matcher: Matcher,
                   verified: Verified | None = None) -> tuple[int, list[Lock]]:
    """``(remaining, locks)``: matching records still erasable, and locks of kept versions.
    Versions ``verified`` holds are not read again (:mod:`connectors.s3_verified`)."""
    remaining, locks = 0, []
    for v in _versions(b, spec):
        if verified is not None and verified.holds(v):
            continue
        n = _count_matches(b, spec, v, matcher)
        if n and not v.is_latest:
            with b.guard(spec.name, f"reading the lock of {v.key!r}"):
                lock = read_lock(b.client, b.name, v.key, v.version_id)
            if lock.active:
                locks.append(lock)
                continue
        remaining += n
    return remaining, locks


def rewrite_conditionally(b: Bucket, spec: S3SharedSpec, v: Version,
                          read: Callable[[Version, IO[bytes]], tuple[Any, Any] | None],
                          matcher: Matcher, verified: Verified | None = None,
                          before_upload: Callable[[Any], None] | None = None,
                          ) -> tuple[Any, Any] | None:
    """Rewrite object ``v`` without what ``read`` drops: ``read(version, spool)`` writes the
    kept records to ``spool`` and returns ``(object, dropped)`` (None when the object is gone).
    The spool is counted again with ``matcher`` before it is uploaded, and must hold none
    (else ``s3_rewrite_check_failed``, nothing written). The upload is conditional on the
    version read; when the object changed or went meanwhile it is read again, up to
    ``write_attempts`` times, then a transient ``s3_write_conflict``. The version written, or
    the version read when there was nothing to drop, is added to ``verified``.
    ``before_upload(dropped)`` runs after the check, just before each upload.
    Returns ``(object, dropped)`` as written, or None when there was nothing to drop."""
    s = b.settings
    latest = Version(v.key, v.version_id, True, False, v.size)
    for _attempt in range(s.write_attempts):
        with tempfile.SpooledTemporaryFile(max_size=s.spool_memory) as spool:
            with b.guard(spec.name, f"reading {v.key!r}"):
                result = read(latest, spool)
                if result is not None and not result[1] and verified is not None:
                    verified.add(v.key, result[0])
                if result is None or not result[1]:
                    return None
                left = count_written(b, spec, v.key, spool, matcher)
            if left:
                raise ConnectorError(
                    f"the rewrite of shared file {v.key!r} in bucket {b.name!r} still held "
                    f"{left} matching record(s) and was not uploaded",
                    "report this as a bug in dsar with the collection's format; nothing was "
                    "changed", system=b.system, collection=spec.name,
                    code="s3_rewrite_check_failed",
                )
            if before_upload is not None:
                before_upload(result[1])
            if s.before_write is not None:
                s.before_write(v.key)
            with b.guard(spec.name, f"rewriting {v.key!r}"):
                try:
                    written = _upload(b, v.key, spool, result[0])
                except ClientError as exc:
                    if is_conflict(exc) or exc.response["Error"].get("Code") == "NoSuchKey":
                        continue  # changed or deleted since we read it: read again
                    raise
            if verified is not None:
                verified.add(v.key, written)
        return result
    raise ConnectorError(
        f"shared file {v.key!r} in bucket {b.name!r} kept changing while it was being rewritten "
        f"({s.write_attempts} attempts)",
        "retry later; another process writes to this file continuously",
        system=b.system, collection=spec.name, code="s3_write_conflict", transient=True,
    )


def _rewrite(
    b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher, counts: dict[str, int], ev: Any,
    verified: Verified,
) -> None:
    done = rewrite_conditionally(b, spec, v, lambda latest, spool: _read_kept(
        b, spec, latest, matcher, spool), matcher, verified)
    if done is None:
        return
    obj, dropped = done
    version = obj.get("VersionId") or "null"
    counts["records_redacted"] += len(dropped)
    ev.found += len(dropped)
    ev.item_hashes.extend(b.item_hash(v.key, version, line) for line in dropped)
    if version != "null":
        _delete_version(b, spec, v.key, version, counts)


def _read_kept(
    b: Bucket, spec: S3SharedSpec, v: Version, matcher: Matcher, spool: IO[bytes],
    records: list[tuple[int, Any]] | None = None,
) -> tuple[dict[str, Any], list[int]] | None:
    """Write the current version without the subject's records to ``spool``:
    ``(response, dropped lines or rows)``, or None if the object has gone. With ``records``,
    each dropped ``(line, record)`` is appended to it (a batch attributes them)."""
    if spec.format == "parquet":
        scanned = _parquet_scan(b, spec, v, matcher)
        if scanned is None:
            return None
        head, scan = scanned
        head["TagCount"] = 1  # HeadObject does not say; _attributes asks for the tags
        try:
            if not scan.count():
                return head, []
            removed: list[tuple[int, Any]] = []
            lines = [row + 1 for row in scan.rewrite(spool, removed)]
        finally:
            scan.close()
        if records is not None:
            records.extend((row + 1, record) for row, record in removed)
        return head, lines
    opened = _open(b, spec, v, matcher)
    if opened is None:
        return None
    obj, is_gzip, segments = opened
    writer = Rewriter(spool, gzip=is_gzip)
    dropped: list[int] = []
    for seg in segments:
        if seg[3] is not None and matcher(seg[3]):
            dropped.append(seg[2])
            if records is not None:
                records.append((seg[2], seg[3]))
        else:
            writer.keep(seg)
    writer.finish()
    return obj, dropped


def _attributes(b: Bucket, key: str, obj: dict[str, Any]) -> dict[str, Any]:
    attrs = {name: obj[name] for name in KEPT_ATTRIBUTES if obj.get(name) is not None}
    attrs["Metadata"] = obj.get("Metadata", {})
    if obj.get("TagCount"):
        params: dict[str, Any] = {"Bucket": b.name, "Key": key}
        if obj.get("VersionId"):
            params["VersionId"] = obj["VersionId"]
        tags = b.client.get_object_tagging(**params)["TagSet"]
        if tags:
            attrs["Tagging"] = urllib.parse.urlencode([(t["Key"], t["Value"]) for t in tags])
    return attrs


def _upload(b: Bucket, key: str, spool: IO[bytes], obj: dict[str, Any]) -> dict[str, Any]:
    """Conditional write of ``spool``: one PUT, or a multipart upload above the threshold.
    Returns the response naming the version written (``ETag``, ``VersionId``)."""
    etag = obj["ETag"]
    attrs = _attributes(b, key, obj)
    size = spool.seek(0, 2)
    spool.seek(0)
    if size <= b.settings.multipart_threshold:
        written: dict[str, Any] = b.client.put_object(
            Bucket=b.name, Key=key, Body=spool, IfMatch=etag, **attrs)
        return written
    upload_id = b.client.create_multipart_upload(Bucket=b.name, Key=key, **attrs)["UploadId"]
    try:
        parts = []
        number = 1
        while chunk := spool.read(b.settings.part_size):
            part = b.client.upload_part(
                Bucket=b.name, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )
            parts.append({"PartNumber": number, "ETag": part["ETag"]})
            number += 1
        b.client.head_object(Bucket=b.name, Key=key, IfMatch=etag)
        completed: dict[str, Any] = b.client.complete_multipart_upload(
            Bucket=b.name, Key=key, UploadId=upload_id, IfMatch=etag,
            MultipartUpload={"Parts": parts},
        )
    except BaseException:
        b.client.abort_multipart_upload(Bucket=b.name, Key=key, UploadId=upload_id)
        raise
    return completed


def _delete_version(
    b: Bucket, spec: S3SharedSpec, key: str, version_id: str, counts: dict[str, int]
) -> None:
    """Delete one old version holding the subject's records, unless Object Lock keeps it."""
    with b.guard(spec.name, f"deleting an old version of {key!r}"):
        try:
            b.client.delete_object(Bucket=b.name, Key=key, VersionId=version_id)
        except ClientError as exc:
            if exc.response["Error"].get("Code") == "AccessDenied" and read_lock(
                b.client, b.name, key, version_id
            ).active:
                return  # kept by Object Lock; the recount reports it as retained
            raise
        counts["versions_deleted"] += 1
