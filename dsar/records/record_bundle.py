"""The record bundle: one JSON file that lets anyone verify a completion record offline.

Format ``dsar-record-bundle/v1`` (documented in docs/verify.md)::

    {
      "format": "dsar-record-bundle/v1",
      "request_id": "dsr_…",
      "envelope": {DSSE envelope of the in-toto Statement},
      "evidence": [evidence bodies, in leaf order],
      "ledger": {"origin": "…", "index": i, "tree_size": n,
                 "inclusion_proof": ["<hex>", …], "checkpoint": "<signed note of size n>"},
      "keyid": "<hex keyid of the record's signature>",
      "public_key_pem": "<PEM of the record's and the checkpoint's keys>"
    }

Evidence bodies hold no personal data, so the bundle can be handed to an auditor. The public
key is included for convenience only: a verifier proves origin only with a key it got from the
controller (``dsar verify --public-key``).
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session

from dsar.errors import InvalidInput, NotFound
from dsar.records import ledger, signing
from dsar.records.checkpoint import key_hash
from dsar.records.record import evidence_bodies, record_for

if TYPE_CHECKING:
    from dsar.app import App

__all__ = ["BUNDLE_FORMAT", "load_json_file", "make_bundle"]

BUNDLE_FORMAT = "dsar-record-bundle/v1"


def _pem(key: Any) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _checkpoint_keyid(note: str, origin: str, ring: dict[str, Any]) -> str | None:
    """The keyid in ``ring`` whose signed-note key hash appears on the checkpoint, if any."""
    for line in note.rstrip("\n").split("\n\n", 1)[-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[1] != origin:
            continue
        try:
            wanted = base64.b64decode(parts[2])[:4]
        except (binascii.Error, ValueError):
            continue
        for keyid, key in ring.items():
            if key_hash(origin, key) == wanted:
                return keyid
    return None


def make_bundle(session: Session, app: App, request_id: str) -> dict[str, Any]:
    """The record bundle of ``request_id``, inside the caller's transaction.

    Uses the earliest checkpoint that covers the record, issuing a new one (see
    :func:`dsar.records.ledger.issue_checkpoint`) when none does yet. Raises
    :class:`~dsar.errors.NotFound` when the request has no completion record.
    """
    record = record_for(session, request_id)
    if record is None:
        raise NotFound(f"request {request_id!r} has no completion record yet",
                       f"records are made when a request completes; see `dsar show {request_id}`")
    checkpoint = ledger.checkpoint_covering(session, record.ledger_index)
    if checkpoint is None:
        checkpoint = ledger.issue_checkpoint(session, app)
    proof = ledger.inclusion_proof(session, record.ledger_index, checkpoint.size)
    envelope = record.envelope
    keyid = envelope["signatures"][0]["keyid"]
    ring = signing.public_ring(app.settings)
    if keyid not in ring:
        raise NotFound(f"the key {keyid} that signed this record is not in the keyring",
                       "restore the keyring's .pub files from backup (or list the key in "
                       "DSAR_SIGNING_PUBLIC_KEYS_FILE)")
    origin = app.settings.ledger_origin
    needed = [keyid]
    cp_keyid = _checkpoint_keyid(checkpoint.note, origin, ring)
    if cp_keyid is not None and cp_keyid != keyid:
        needed.append(cp_keyid)
    return {
        "format": BUNDLE_FORMAT,
        "request_id": request_id,
        "envelope": envelope,
        "evidence": evidence_bodies(session, request_id),
        "ledger": {"origin": origin, "index": record.ledger_index,
                   "tree_size": checkpoint.size,
                   "inclusion_proof": [h.hex() for h in proof],
                   "checkpoint": checkpoint.note},
        "keyid": keyid,
        "public_key_pem": "".join(_pem(ring[k]) for k in needed),
    }


def load_json_file(path: Path | str, what: str) -> Any:
    """Read a JSON file; a missing or malformed file raises a DsarError naming ``what``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{what} {path} does not exist", "check the path") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidInput(f"{what} {path} is not JSON: {err}",
                           f"pass the file written by dsar ({what})") from None
