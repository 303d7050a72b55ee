"""What a bundle is built from, and what building one returns.

The input is a stream of :data:`CollectedItem` values, as the fleet staged them: batches of rows
(:class:`RowsBatch`) and whole objects (:class:`StagedObject`), each tagged with the
``(system, collection)`` they came from. Items of different collections may be interleaved and a
collection may arrive in many batches; the builder reads the stream exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

BUNDLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


@dataclass(frozen=True)
class RowsBatch:
    """Rows of one collection. Values are str/int/float/bool/None, date/datetime/time, Decimal,
    UUID, bytes, or JSON-like lists and dicts (see :mod:`dsar.bundles.values`)."""

    system: str
    collection: str
    rows: Iterable[Mapping[str, Any]]


@dataclass(frozen=True)
class StagedObject:
    """One object (a file, an S3 object). ``chunks`` is consumed once."""

    system: str
    collection: str
    name: str
    chunks: Iterable[bytes]
    metadata: Mapping[str, str] = field(default_factory=dict)


CollectedItem = RowsBatch | StagedObject

ItemsFactory = Callable[[], Iterable[CollectedItem]]
"""Returns the staged items. :func:`dsar.bundles.build_bundle` calls it exactly once."""


@dataclass(frozen=True)
class BundleMeta:
    """Facts about the request that the bundle states. No personal data beyond what it holds.

    ``timezone`` is the IANA zone times are shown in (the controller's); ``link_ttl`` how long
    the download link works, which is also how long the stored bundle is kept. ``searched``
    names the ``(system, collection)`` pairs that were searched for the person: those that
    held nothing are still listed (no rows; "searched, nothing found" in the report).
    """

    request_id: str
    kind: Literal["access", "export"] = "access"
    bundle_id: str | None = None
    timezone: str = "UTC"
    link_ttl: timedelta = timedelta(days=30)
    preview_rows: int = 20
    listed_objects: int = 200
    language: str = "en"
    searched: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.bundle_id is not None and not BUNDLE_ID.match(self.bundle_id):
            raise ValueError(f"bundle id {self.bundle_id!r} must match {BUNDLE_ID.pattern}")
        if self.link_ttl <= timedelta(0):
            raise ValueError("link_ttl must be positive")


@dataclass(frozen=True)
class BundleInfo:
    """A stored bundle: where it is, the SHA-256 and size of the zip (before our encryption),
    and when it was made and stops being downloadable."""

    bundle_id: str
    location: str
    sha256: str
    size: int
    created_at: datetime
    expires_at: datetime
    stored_size: int
    encrypted: bool = True


def iter_items(factory: ItemsFactory) -> Iterator[CollectedItem]:
    """The factory's items, checked for type so a wrong feed fails with a clear message."""
    for item in factory():
        if not isinstance(item, RowsBatch | StagedObject):
            raise TypeError(f"expected RowsBatch or StagedObject, got {type(item).__name__}")
        yield item
