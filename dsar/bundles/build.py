"""build_bundle: staged items in, a stored (encrypted) bundle and its digest out.

Steps: read the items once into an encrypted spool (:mod:`dsar.bundles.spool`), write the
sidecar (:mod:`dsar.bundles.sidecar`), stream the zip (:mod:`dsar.bundles.zip_stream`) through
SHA-256 and our AEAD (:mod:`dsar.bundles.aead`) into the store, complete the sidecar, delete the
spool. Memory stays flat in the size of the data; temporary disk use is about the size of the
staged data.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from dsar.bundles.aead import encrypt_stream
from dsar.bundles.items import BundleInfo, BundleMeta, ItemsFactory, iter_items
from dsar.bundles.sidecar import BundleSidecar, write_sidecar
from dsar.bundles.spool import Spool
from dsar.bundles.store import BundleStore
from dsar.bundles.zip_stream import members, zip_stream
from dsar.datamap.schema import DataMap
from dsar.errors import InvalidInput


class _Digest:
    """Counts and hashes bytes passing through."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def tap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.sha256.update(chunk)
            self.size += len(chunk)
            yield chunk


def blob_name(bundle_id: str, encrypted: bool) -> str:
    return f"{bundle_id}.zip.dsar" if encrypted else f"{bundle_id}.zip"


def build_bundle(
    request_meta: BundleMeta,
    datamap: DataMap,
    items_factory: ItemsFactory,
    store: BundleStore,
    key: bytes | None,
    now: datetime,
    *,
    spool_dir: str | os.PathLike[str] | None = None,
) -> BundleInfo:
    """Build, encrypt and store the bundle for one request; return where it is and its digest.

    ``items_factory`` is called once. ``key`` (32 bytes) encrypts the stored bundle with
    AES-256-GCM; ``None`` stores the plain zip and is only allowed for stores that encrypt
    server-side (S3 with SSE), for delivery by presigned URL. ``now`` must be timezone-aware.
    ``sha256``/``size`` in the result are of the zip the person downloads. Giving
    ``request_meta.bundle_id`` makes a re-run replace the same bundle (idempotent assemble).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if key is None and not store.server_side_encrypted:
        raise InvalidInput(f"a bundle kept in {store.location} must be encrypted by us",
                           "pass the 32-byte bundle key (key=None is only for S3 with SSE)")
    if key is not None and len(key) != 32:
        raise InvalidInput("the bundle key must be 32 bytes", "generate it with os.urandom(32)")
    bundle_id = request_meta.bundle_id or f"b{uuid.uuid4().hex}"
    created_at = now.astimezone(ZoneInfo(request_meta.timezone))
    expires_at = created_at + request_meta.link_ttl
    record = BundleSidecar(
        bundle_id=bundle_id,
        request_id=request_meta.request_id,
        created_at=created_at,
        expires_at=expires_at,
        blob=blob_name(bundle_id, key is not None),
        encrypted=key is not None,
        filename=f"personal-data-{created_at:%Y-%m-%d}.zip",
    )
    with Spool(spool_dir, request_meta.preview_rows) as spool:
        spool.add_all(iter_items(items_factory))
        spool.add_searched(request_meta.searched)
        write_sidecar(store, record)
        digest = _Digest()
        zipped = digest.tap(
            zip_stream(members(request_meta, bundle_id, datamap, spool, created_at, expires_at))
        )
        blob = encrypt_stream(zipped, key) if key is not None else zipped
        stored_size = store.write_stream(record.blob, blob)
    write_sidecar(store, record.completed(digest.sha256.hexdigest(), digest.size, stored_size))
    return BundleInfo(
        bundle_id=bundle_id,
        location=store.url_for(record.blob),
        sha256=digest.sha256.hexdigest(),
        size=digest.size,
        created_at=created_at,
        expires_at=expires_at,
        stored_size=stored_size,
        encrypted=key is not None,
    )
