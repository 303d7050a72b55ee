"""The ledger: an append-only RFC 9162 Merkle log of completion records in the state database.

Each :class:`~dsar.db.models.LedgerEntry` is one leaf: ``leaf`` is the canonical JSON (RFC 8785)
of a record's DSSE envelope and ``leaf_hash`` its RFC 9162 leaf hash, stored so that roots and
proofs are computed from hashes alone. Indexes run 0, 1, 2, … without gaps.

Appends are serialised: on PostgreSQL :func:`append` takes ``LOCK TABLE ledger_entries IN
EXCLUSIVE MODE`` inside the caller's transaction (readers are not blocked), SQLite serialises
writers already (every transaction here is ``BEGIN IMMEDIATE``). The lock is held until the
caller's transaction ends, so the index read and the insert can never race another writer.

A :class:`~dsar.db.models.Checkpoint` is a C2SP signed note of ``(size, root)`` signed with the
active Ed25519 key under the origin ``settings.ledger_origin``; :func:`issue_checkpoint` is
cheap to call often (a no-op when nothing was appended since the last one).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar.db.models import Checkpoint, LedgerEntry
from dsar.db.rows import fetch, send
from dsar.errors import InvalidInput, NotFound
from dsar.records import merkle, signing
from dsar.records.algorithms import Signer
from dsar.records.checkpoint import sign_checkpoint

if TYPE_CHECKING:
    from dsar.app import App
    from dsar.settings import Settings

__all__ = [
    "LEDGER_FORMAT",
    "ExportedLedger",
    "append",
    "checkpoint_covering",
    "consistency_proof",
    "export_ledger",
    "inclusion_proof",
    "issue_checkpoint",
    "latest_checkpoint",
    "leaf_hashes",
    "load_signer",
    "lock",
    "parse_export",
    "root",
    "size",
]

LEDGER_FORMAT = "dsar-ledger/v1"
"""The ``format`` field of an exported ledger file (see docs/verify.md)."""


def load_signer(settings: Settings) -> Signer:
    """The key that signs records and checkpoints: see :func:`dsar.records.signing.load_signer`
    (an AWS KMS key, a mounted key file, or the keyring, generated on first use only in the
    embedded default; elsewhere a missing keyring raises :class:`~dsar.errors.NotFound` naming
    ``dsar keys generate``: in production the key is an operator's decision)."""
    return signing.load_signer(settings)


_LOCK = sa.text("LOCK TABLE ledger_entries IN EXCLUSIVE MODE")
_APPEND = (sa.insert(LedgerEntry)
           .values(index=sa.select(sa.func.coalesce(sa.func.max(LedgerEntry.index) + 1, 0))
                   .scalar_subquery(),
                   leaf=sa.bindparam("leaf", type_=LedgerEntry.leaf.type),
                   leaf_hash=sa.bindparam("leaf_hash", type_=LedgerEntry.leaf_hash.type),
                   appended_at=sa.bindparam("now", type_=LedgerEntry.appended_at.type))
           .returning(LedgerEntry.index))


def lock(session: Session) -> None:
    """Serialise ledger writers for the rest of the caller's transaction.

    PostgreSQL: ``LOCK TABLE ledger_entries IN EXCLUSIVE MODE`` (plain reads still proceed).
    SQLite: nothing to do, the write transaction already excludes other writers.
    """
    if session.get_bind().dialect.name == "postgresql":
        send(session, _LOCK, {})  # inside deferred(): with the append that follows


def size(session: Session) -> int:
    """The number of leaves in the ledger."""
    last = session.scalar(sa.select(sa.func.max(LedgerEntry.index)))
    return 0 if last is None else int(last) + 1


def append(session: Session, leaf: bytes, now: datetime) -> int:
    """Append ``leaf`` (bytes) as the next entry inside the caller's transaction; return its
    index. Takes the ledger lock first (see :func:`lock`)."""
    if not isinstance(leaf, bytes) or not leaf:
        raise InvalidInput("a ledger leaf must be non-empty bytes", "pass canonical JSON bytes")
    lock(session)
    appended = fetch(session, _APPEND,
                     {"leaf": leaf, "leaf_hash": merkle.leaf_hash(leaf), "now": now})
    return int(appended[0][0])


def leaf_hashes(session: Session, tree_size: int | None = None, start: int = 0) -> list[bytes]:
    """The leaf hashes of entries ``start`` up to ``tree_size`` (all when ``None``), in order.

    Loads the 32-byte hash column only, never the leaves.
    """
    query = sa.select(LedgerEntry.leaf_hash).order_by(LedgerEntry.index)
    if start:
        query = query.where(LedgerEntry.index >= start)
    if tree_size is not None:
        query = query.where(LedgerEntry.index < tree_size)
    hashes = [bytes(h) for h in session.scalars(query)]
    if tree_size is not None and len(hashes) != tree_size - start:
        raise NotFound(f"the ledger has {start + len(hashes)} entries, not {tree_size}",
                       "ask for a size no larger than the ledger")
    return hashes


def root(session: Session, tree_size: int | None = None) -> bytes:
    """The RFC 9162 root of the first ``tree_size`` entries (all when ``None``)."""
    return merkle.root_from_hashes(leaf_hashes(session, tree_size))


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    """The audit path of entry ``index`` in the tree of the first ``tree_size`` entries."""
    if not 0 <= index < tree_size:
        raise InvalidInput(f"ledger index {index} is not inside a tree of size {tree_size}",
                           "use a checkpoint issued after the entry was appended")
    return merkle.inclusion_proof_from_hashes(index, leaf_hashes(session, tree_size))


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """The RFC 9162 proof that the tree of ``old_size`` entries is a prefix of ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise InvalidInput(f"no consistency proof from size {old_size} to {new_size}",
                           "the old size must not exceed the new one")
    return merkle.consistency_proof_from_hashes(old_size, leaf_hashes(session, new_size))


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """The checkpoint of the largest tree size, or ``None`` before the first one."""
    return session.scalars(sa.select(Checkpoint).order_by(Checkpoint.size.desc()).limit(1)).first()


def checkpoint_covering(session: Session, index: int) -> Checkpoint | None:
    """The smallest checkpoint whose tree contains entry ``index``, or ``None``."""
    return session.scalars(
        sa.select(Checkpoint).where(Checkpoint.size > index).order_by(Checkpoint.size).limit(1)
    ).first()


def issue_checkpoint(session: Session, app: App) -> Checkpoint:
    """Sign and store a checkpoint of the current ledger, inside the caller's transaction.

    Returns the latest checkpoint unchanged when it already covers the current size (so the
    fleet may call this as often as it likes). Takes the ledger lock, so the size and root it
    signs are those of a ledger no one else is appending to. Signs with the active key under
    ``app.settings.ledger_origin``.
    """
    lock(session)
    current = size(session)
    latest = latest_checkpoint(session)
    if latest is not None and latest.size >= current:
        return latest
    frontier = _frontier_after(session, latest, current)
    tree_root = merkle.root_from_frontier(frontier)
    signer = load_signer(app.settings)
    note = sign_checkpoint(app.settings.ledger_origin, current, tree_root, signer)
    made = Checkpoint(size=current, root=tree_root, frontier=b"".join(frontier), note=note,
                      issued_at=app.now())
    session.add(made)
    session.flush()
    return made


def _frontier_after(session: Session, latest: Checkpoint | None, tree_size: int) -> list[bytes]:
    """The frontier of the first ``tree_size`` entries: the latest checkpoint's, extended by the
    entries appended since (all entries when there is none, or it predates stored frontiers).
    Checkpoints are issued under the ledger lock, so this hashes only what is new."""
    if latest is None or latest.frontier is None:
        return merkle.extend_frontier([], 0, leaf_hashes(session, tree_size))
    stored = bytes(latest.frontier)
    peaks = [stored[i:i + merkle.HASH_SIZE] for i in range(0, len(stored), merkle.HASH_SIZE)]
    return merkle.extend_frontier(peaks, latest.size,
                                  leaf_hashes(session, tree_size, start=latest.size))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def export_ledger(session: Session, path: Path | str) -> dict[str, Any]:
    """Write every entry and checkpoint to the JSON file ``path``; return a summary.

    Format (``dsar-ledger/v1``, see docs/verify.md)::

        {"format": "dsar-ledger/v1", "size": N,
         "entries": [{"index": 0, "leaf": "<base64 leaf bytes>", "appended_at": "…Z"}, …],
         "checkpoints": [{"size": n, "note": "<signed note>", "issued_at": "…Z"}, …]}

    Entries are streamed in index order, so the file can be larger than memory allows for the
    ledger itself. The summary is ``{"path", "size", "checkpoints", "root"}`` (root in hex).
    """
    path = Path(path)
    checkpoints = list(session.scalars(sa.select(Checkpoint).order_by(Checkpoint.size)))
    count = 0
    hashes: list[bytes] = []
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(f'{{"format": "{LEDGER_FORMAT}",\n "entries": [')
        rows = session.execute(
            sa.select(LedgerEntry.index, LedgerEntry.leaf, LedgerEntry.leaf_hash,
                      LedgerEntry.appended_at)
            .order_by(LedgerEntry.index).execution_options(yield_per=500)
        )
        for index, leaf, hash_, appended_at in rows:
            if index != count:
                raise InvalidInput(f"the ledger has a gap before index {index}",
                                   "restore the state database from backup")
            entry = {"index": index, "leaf": base64.b64encode(bytes(leaf)).decode("ascii"),
                     "appended_at": _iso(appended_at)}
            out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(entry))
            hashes.append(bytes(hash_))
            count += 1
        out.write("\n ],\n \"checkpoints\": [")
        for i, cp in enumerate(checkpoints):
            item = {"size": cp.size, "note": cp.note, "issued_at": _iso(cp.issued_at)}
            out.write(("\n  " if i == 0 else ",\n  ") + json.dumps(item))
        out.write(f"\n ],\n \"size\": {count}\n}}\n")
    tmp.replace(path)
    return {"path": str(path), "size": count, "checkpoints": len(checkpoints),
            "root": merkle.root_from_hashes(hashes).hex()}


@dataclass(frozen=True)
class ExportedLedger:
    """A parsed ledger export: leaf bytes and hashes by index, and ``(size, note)`` of each
    checkpoint in increasing size. Nothing in it is verified yet."""

    leaves: list[bytes]
    hashes: list[bytes]
    checkpoints: list[tuple[int, str]]


def parse_export(data: Any) -> ExportedLedger:
    """Parse the JSON value of a ledger export (pure, no database).

    Raises :class:`~dsar.errors.InvalidInput` when the format is wrong, an index is missing or
    out of order, a leaf is not base64, ``size`` disagrees with the entries, or checkpoints are
    not in increasing size order.
    """
    fix = "export the ledger again with `dsar ledger export -o FILE`"
    if not isinstance(data, dict) or data.get("format") != LEDGER_FORMAT:
        raise InvalidInput(f"the ledger file is not in the {LEDGER_FORMAT} format", fix)
    entries, checkpoints = data.get("entries"), data.get("checkpoints")
    if not isinstance(entries, list) or not isinstance(checkpoints, list):
        raise InvalidInput("the ledger file lacks entries or checkpoints", fix)
    leaves: list[bytes] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("index") != position:
            raise InvalidInput(f"ledger entry {position} is missing or out of order", fix)
        try:
            leaves.append(base64.b64decode(str(entry.get("leaf")), validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"ledger entry {position} is not base64", fix) from None
    if data.get("size") != len(leaves):
        raise InvalidInput(f"the ledger file says size {data.get('size')} but holds "
                           f"{len(leaves)} entries", fix)
    cps: list[tuple[int, str]] = []
    for cp in checkpoints:
        if (not isinstance(cp, dict) or type(cp.get("size")) is not int
                or not isinstance(cp.get("note"), str) or (cps and cp["size"] <= cps[-1][0])):
            raise InvalidInput("the ledger file's checkpoints are malformed or out of order", fix)
        cps.append((cp["size"], cp["note"]))
    return ExportedLedger(leaves, [merkle.leaf_hash(leaf) for leaf in leaves], cps)
