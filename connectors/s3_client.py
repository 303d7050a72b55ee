"""The boto3 side of the S3 connector: client set-up, error translation and paginated listings.

Every call to S3 goes through a client built by :func:`make_client` (botocore retries
throttling and 5xx answers with backoff) inside :func:`translated` (whatever still fails
becomes a :class:`~dsar.errors.ConnectorError` that says what to do). Listings are generators
that page with ``MaxKeys``/``MaxUploads`` = ``page_size`` and never hold more than one page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ResponseStreamingError

from connectors.base import ConnectorContext
from dsar.errors import ConnectorError
from dsar.evidence import CollectionEvidence

THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "503"}
UNAVAILABLE = {"InternalError", "ServiceUnavailable", "500", "502", "504"}
DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "AllAccessDisabled"}
CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def make_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    retry_mode: str,
    max_attempts: int,
    timeout: float,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """An S3 client with the credentials of ``environ`` (the connector's environment:
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``) when it holds a
    key, else from the standard credential chain (config files, instance role)."""
    env = environ or {}
    key = env.get("AWS_ACCESS_KEY_ID") or None
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") if key else None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if key else None,
    )
    config = Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        connect_timeout=timeout,
        read_timeout=timeout,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or session.region_name or "us-east-1",
        config=config,
    )


def error_code(exc: ClientError) -> str:
    """The S3 error code of a ClientError, or its HTTP status as text."""
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(err.get("Code") or status or "")


def is_conflict(exc: ClientError) -> bool:
    return error_code(exc) in CONFLICT


@contextmanager
def translated(system: str, bucket: str, collection: str | None, doing: str) -> Iterator[None]:
    """Turn botocore failures inside the block into ConnectorError with a fix."""
    where = {"system": system, "collection": collection}
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            raise ConnectorError(
                f"S3 bucket {bucket!r} does not exist (while {doing})",
                "create the bucket or correct 'bucket:' (and the endpoint) in the data map",
                code="s3_no_such_bucket", **where,
            ) from exc
        if code in DENIED or status == 403:
            raise ConnectorError(
                f"access to S3 bucket {bucket!r} was denied (while {doing}; {code})",
                "grant the worker's credentials s3:ListBucket, s3:ListBucketVersions, "
                "s3:GetObject, s3:PutObject, s3:DeleteObject, s3:DeleteObjectVersion and "
                "s3:AbortMultipartUpload on the bucket",
                code="s3_access_denied", **where,
            ) from exc
        if code in THROTTLED or status == 503:
            raise ConnectorError(
                f"S3 kept throttling requests to bucket {bucket!r} (while {doing}; {code})",
                "retry later, or lower max_concurrent_tasks for this system",
                code="s3_throttled", transient=True, retry_after=30.0, **where,
            ) from exc
        if code in UNAVAILABLE or (status or 0) >= 500:
            raise ConnectorError(
                f"S3 failed while {doing} in bucket {bucket!r} ({code})",
                "retry later; the store reported an internal error",
                code="s3_unavailable", transient=True, **where,
            ) from exc
        raise ConnectorError(
            f"S3 refused {doing} in bucket {bucket!r} ({code}: {exc})",
            "check the bucket's configuration and the data map",
            code=f"s3_{code.lower() or 'error'}", **where,
        ) from exc
    except (ConnectionError, ResponseStreamingError) as exc:
        raise ConnectorError(
            f"the S3 endpoint for bucket {bucket!r} could not be reached (while {doing}: {exc})",
            "check the endpoint URL and the network; retry later",
            code="s3_unreachable", transient=True, **where,
        ) from exc
    except BotoCoreError as exc:
        raise ConnectorError(
            f"S3 client error while {doing} in bucket {bucket!r}: {exc}",
            "check the credentials and region configuration of the worker",
            code="s3_client_error", **where,
        ) from exc


@dataclass(frozen=True)
class Version:
    """One entry of ListObjectVersions: an object version or a delete marker."""

    key: str
    version_id: str
    is_latest: bool
    is_marker: bool
    size: int = 0
    etag: str = ""  # as the listing gives it ("" for a delete marker)


def version_pages(
    client: Any, bucket: str, prefix: str, page_size: int, *, exact: bool = False
) -> Iterator[list[Version]]:
    """Every version and delete marker under ``prefix`` (only ``key == prefix`` if ``exact``),
    one page at a time. Works on unversioned buckets too (version id ``null``).

    The next page is requested only when the caller asks for it, with the last entry of the
    previous page as marker: a caller that deletes a page must first fetch the next one.
    """
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    while True:
        page = client.list_object_versions(**params)
        entries = [
            Version(v["Key"], v.get("VersionId") or "null", v.get("IsLatest", False), False,
                    v.get("Size", 0), v.get("ETag", ""))
            for v in page.get("Versions", [])
        ] + [
            Version(m["Key"], m.get("VersionId") or "null", m.get("IsLatest", False), True)
            for m in page.get("DeleteMarkers", [])
        ]
        entries.sort(key=lambda v: v.key)
        yield [e for e in entries if not exact or e.key == prefix]
        if exact and entries and entries[-1].key > prefix:
            return
        if not page.get("IsTruncated"):
            return
        params["KeyMarker"] = page.get("NextKeyMarker", "")
        params["VersionIdMarker"] = page.get("NextVersionIdMarker", "")


def list_versions(
    client: Any, bucket: str, prefix: str, page_size: int, *, exact: bool = False
) -> Iterator[Version]:
    """:func:`version_pages`, flattened."""
    for page in version_pages(client, bucket, prefix, page_size, exact=exact):
        yield from page


def list_uploads(
    client: Any, bucket: str, prefix: str, page_size: int, *, exact: bool = False
) -> Iterator[tuple[str, str]]:
    """``(key, upload id)`` of every multipart upload in progress under ``prefix``."""
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxUploads": page_size}
    while True:
        page = client.list_multipart_uploads(**params)
        for upload in page.get("Uploads", []):
            if not exact or upload["Key"] == prefix:
                yield upload["Key"], upload["UploadId"]
        if not page.get("IsTruncated"):
            return
        params["KeyMarker"] = page.get("NextKeyMarker", "")
        params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


@dataclass(frozen=True)
class Lock:
    """Object Lock state read from an object version's own headers."""

    mode: str | None
    retain_until: dt.datetime | None
    legal_hold: bool

    @property
    def active(self) -> bool:
        if self.legal_hold:
            return True
        now = dt.datetime.now(dt.UTC)
        return bool(self.mode and self.retain_until and self.retain_until > now)

    def describe(self) -> str:
        parts = []
        if self.mode and self.retain_until:
            parts.append(f"{self.mode} retention until {self.retain_until.isoformat()}")
        if self.legal_hold:
            parts.append("legal hold")
        return " and ".join(parts) or "no lock"


def read_lock(client: Any, bucket: str, key: str, version_id: str) -> Lock:
    """HeadObject on one version and read ObjectLockMode/RetainUntilDate/LegalHoldStatus."""
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id != "null":
        params["VersionId"] = version_id
    head: Mapping[str, Any] = client.head_object(**params)
    until = head.get("ObjectLockRetainUntilDate")
    if isinstance(until, str):
        until = dt.datetime.fromisoformat(until.replace("Z", "+00:00"))
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    return Lock(head.get("ObjectLockMode"), until, head.get("ObjectLockLegalHoldStatus") == "ON")


@dataclass(frozen=True)
class S3Settings:
    """Connector tuning. The defaults suit AWS; tests shrink ``page_size`` to exercise paging.

    ``before_write`` is a hook called with the object key just before a shared file's
    conditional rewrite is sent (tests use it to play a concurrent writer).
    """

    page_size: int = 1000
    retry_mode: str = "standard"
    max_attempts: int = 5
    timeout: float = 60.0
    chunk_size: int = 1 << 20
    batch_size: int = 500
    write_attempts: int = 4
    spool_memory: int = 2 << 20
    multipart_threshold: int = 4 << 30
    part_size: int = 16 << 20
    prefilter: bool = True
    range_size: int = 8 << 20
    range_workers: int = 1
    read_ahead: int = 4  # chunks a thread reads ahead while the last one is searched
    before_write: Callable[[str], None] | None = None


@dataclass
class Bucket:
    """One bucket as the connector sees it: the client, its name, settings and context."""

    client: Any
    name: str
    system: str
    settings: S3Settings
    context: ConnectorContext

    def guard(self, collection: str | None, doing: str) -> AbstractContextManager[None]:
        """:func:`translated` for this bucket."""
        return translated(self.system, self.name, collection, doing)

    def evidence(self, collection: str, action: str) -> CollectionEvidence:
        return CollectionEvidence(system=self.system, collection=collection, action=action)

    def item_hash(self, key: str, version_id: str, line: int | None = None) -> str:
        """HMAC of key + version id (+ line for a record), for per-item evidence."""
        text = f"{key}\0{version_id}" if line is None else f"{key}\0{version_id}\0{line}"
        return self.context.keyed_hash(text)


def retained_summary(locks: list[Lock]) -> tuple[str | None, str | None]:
    """``(retained_ground, retained_period)`` for evidence, from the locks that kept objects."""
    if not locks:
        return None, None
    kinds = sorted(
        {f"{lock.mode} retention" for lock in locks if lock.mode and lock.retain_until}
        | {"legal hold" for lock in locks if lock.legal_hold}
    )
    untils = [lock.retain_until for lock in locks if lock.retain_until and lock.mode]
    period = f"until {max(untils).isoformat()}" if untils else None
    if any(lock.legal_hold for lock in locks):
        period = f"{period}; legal hold has no end date" if period else "legal hold (no end date)"
    return "S3 Object Lock: " + ", ".join(kinds), period
