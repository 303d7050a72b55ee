"""The sidecar ``<bundle id>.json`` kept beside each stored bundle.

It holds what downloads and retention need and nothing personal: ids, times, the blob's name,
whether we encrypted it, and the zip's SHA-256 and size. It is written *before* the bundle (as
``complete: false``) so retention can always find and delete a bundle, even one whose upload
was interrupted, and rewritten with the digest once the bundle is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import datetime

from dsar.bundles.errors import BundleMissing
from dsar.bundles.store import BundleStore

SUFFIX = ".json"


@dataclass(frozen=True)
class BundleSidecar:
    bundle_id: str
    request_id: str
    created_at: datetime
    expires_at: datetime
    blob: str
    encrypted: bool
    filename: str
    complete: bool = False
    sha256: str | None = None
    size: int | None = None
    stored_size: int | None = None

    def completed(self, sha256: str, size: int, stored_size: int) -> BundleSidecar:
        return replace(self, complete=True, sha256=sha256, size=size, stored_size=stored_size)

    def to_bytes(self) -> bytes:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # flat: no deep copy
        data["created_at"] = self.created_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> BundleSidecar:
        data = json.loads(raw)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return cls(**data)


def sidecar_name(bundle_id: str) -> str:
    return bundle_id + SUFFIX


def write_sidecar(store: BundleStore, record: BundleSidecar) -> None:
    """Store the record. The record of a bundle still being written only keeps the retention
    sweep from taking its blob for an orphan meanwhile; after a crash of the machine it is
    not needed (the blob, if any, is an orphan then), so it is not forced to disk."""
    store.write_stream(sidecar_name(record.bundle_id), [record.to_bytes()],
                       durable=record.complete)


def read_sidecar(store: BundleStore, bundle_id: str) -> BundleSidecar:
    """The record, or :class:`BundleMissing` if the bundle was purged or never stored."""
    try:
        raw = b"".join(store.open_stream(sidecar_name(bundle_id)))
    except BundleMissing:
        raise BundleMissing(
            "this bundle is no longer available: it was deleted after its retention period",
            "ask the controller for a new copy of your data",
        ) from None
    return BundleSidecar.from_bytes(raw)
