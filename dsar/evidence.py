"""Evidence: what a connector did to one collection, with counts and digests, never data.

Evidence is what the completion record proves. It holds counts, the legal ground of anything
kept, a digest of what was collected and keyed hashes (HMAC) of individual items, so it can be
kept for years after the data it speaks of has been erased.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

Outcome = Literal["ok", "failed", "skipped"]


@dataclass
class CollectionEvidence:
    """The result of one action on one collection (a table, an object set, a shared file set).

    Counts are of rows, objects or records as the connector kind defines them. ``remaining`` is
    what a recount found after erasure that erasure should have removed: anything other than 0
    means erasure did not complete. ``counts`` holds kind-specific extras such as S3's
    ``versions_deleted`` or ``uploads_aborted``, and SQL's ``kept_shared`` (rows left as they
    were because other records still point at them; never counted as remaining) and
    ``kept_findable`` (masked rows still findable by a column the map keeps on purpose).
    """

    system: str
    collection: str
    action: str
    found: int = 0
    collected: int = 0
    deleted: int = 0
    masked: int = 0
    retained: int = 0
    retained_ground: str | None = None
    retained_period: str | None = None
    remaining: int | None = None
    digest: str | None = None
    item_hashes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    duration_ms: int = 0
    outcome: Outcome = "ok"
    error_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-able dict (what :func:`dataclasses.asdict` gives, with the
        lists and dicts copied one level, which is all they have)."""
        data = {name: getattr(self, name) for name in _FIELDS}
        data["item_hashes"] = list(self.item_hashes)
        data["counts"] = dict(self.counts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionEvidence:
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(CollectionEvidence))
