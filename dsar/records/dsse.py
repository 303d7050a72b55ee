"""DSSE v1 envelopes signed with Ed25519 (or ECDSA P-256), and the in-toto Statement v1 they
carry.

An envelope is the standard DSSE JSON object::

    {"payload": "<base64>", "payloadType": "<type>",
     "signatures": [{"keyid": "<hex sha256 of raw public key>", "sig": "<base64>"}]}

Each signature is over the Pre-Authentication Encoding (PAE), with the algorithm of the key
its ``keyid`` names (Ed25519 by default, ECDSA P-256 SHA-256 for an AWS KMS key: see
:mod:`dsar.records.algorithms`)::

    "DSSEv1" SP len(type) SP type SP len(body) SP body

where lengths are ASCII decimal byte counts and ``type`` is UTF-8. The payload is never
parsed before its signature has verified.

Base64 fields are written, and read, in one form only: the standard alphabet (RFC 4648
section 4) with ``=`` padding, zero padding bits and no whitespace. The decoder refuses the
URL-safe alphabet, missing or extra padding and any other non-canonical spelling of the same
bytes, so that changing any character of a signed envelope makes it fail.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dsar.errors import InvalidInput
from dsar.records import algorithms
from dsar.records.algorithms import PublicKey, Signer
from dsar.records.canonical import canonical_json
from dsar.records.errors import EnvelopeError

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "keyid_of",
    "make_statement",
    "pae",
    "sign_envelope",
    "sign_statement",
    "verify_envelope",
    "verify_statement",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
"""DSSE ``payloadType`` of an in-toto Statement."""

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
"""The ``_type`` of an in-toto Statement v1."""

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ENVELOPE_FIX = "re-fetch the record from its source; if it still fails, it was altered"


def keyid_of(public_key: PublicKey) -> str:
    """The key id used in envelopes and the keyring: hex SHA-256 of the raw 32-byte Ed25519
    key (of the DER SubjectPublicKeyInfo for a P-256 key)."""
    return algorithms.keyid_of(public_key)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding of ``payload`` with type ``payload_type``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
"""Standard base64 with padding, in whole quanta: the only spelling the decoder reads."""


def _b64decode_canonical(text: Any, field: str) -> bytes:
    """Decode standard, padded base64, accepting only the canonical text of the bytes.

    Refused: anything but a ``str``; the URL-safe alphabet; missing, partial or extra ``=``;
    whitespace; non-zero padding bits (``QR==`` spells the same byte as ``QQ==``)."""
    if not isinstance(text, str) or not text.isascii() or not _BASE64.fullmatch(text):
        raise EnvelopeError(
            f"envelope field {field} is not standard padded base64", _ENVELOPE_FIX
        )
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as err:  # pragma: no cover - the pattern admits only valid text
        raise EnvelopeError(f"envelope field {field} is not valid base64", _ENVELOPE_FIX) from err
    if base64.b64encode(data).decode("ascii") != text:
        raise EnvelopeError(f"envelope field {field} is not canonical base64", _ENVELOPE_FIX)
    return data


def sign_envelope(
    payload: bytes, payload_type: str, key: Ed25519PrivateKey | Signer, keyid: str
) -> dict[str, Any]:
    """Sign ``payload`` and return the DSSE JSON envelope (a plain ``dict``) with one signature.

    ``key`` is an Ed25519 private key or any :class:`~dsar.records.algorithms.Signer` (a KMS
    key signs through it). ``keyid`` is recorded as given; pass :func:`keyid_of` of the key's
    public half so verifiers can find the key.
    """
    if not payload_type:
        raise InvalidInput(
            "DSSE payload type is empty", f"pass a media type such as {INTOTO_PAYLOAD_TYPE!r}"
        )
    signature = key.sign(pae(payload_type, payload))
    return {
        "payload": _b64encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": _b64encode(signature)}],
    }


def verify_envelope(
    env: Mapping[str, Any],
    public_keys: Mapping[str, PublicKey],
    *,
    payload_type: str | None = None,
) -> bytes:
    """Verify a DSSE envelope and return its payload bytes.

    Succeeds when at least one signature verifies under a key in ``public_keys`` (looked up
    by its ``keyid``; a signature without a keyid is tried against every key). If
    ``payload_type`` is given, the envelope's type must equal it. Any malformed field, an
    unknown or wrong key, or a signature that fails to verify raises
    :class:`~dsar.records.errors.EnvelopeError`.
    """
    if not isinstance(env, Mapping):
        raise EnvelopeError("DSSE envelope is not a JSON object", _ENVELOPE_FIX)
    extra = set(env) - {"payload", "payloadType", "signatures"}
    if extra:
        raise EnvelopeError(f"DSSE envelope has unexpected fields {sorted(extra)}", _ENVELOPE_FIX)
    ptype = env.get("payloadType")
    if not isinstance(ptype, str) or not ptype:
        raise EnvelopeError("DSSE envelope has no payloadType", _ENVELOPE_FIX)
    if payload_type is not None and ptype != payload_type:
        raise EnvelopeError(
            f"DSSE envelope carries {ptype!r}, expected {payload_type!r}",
            "check that this file is a dsar completion record",
        )
    payload = _b64decode_canonical(env.get("payload"), "payload")
    signatures = env.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("DSSE envelope has no signatures", _ENVELOPE_FIX)
    message = pae(ptype, payload)
    seen: list[str] = []
    for entry in signatures:
        if (
            not isinstance(entry, Mapping)
            or set(entry) - {"keyid", "sig"}
            or not isinstance(entry.get("keyid", ""), str)
        ):
            raise EnvelopeError("DSSE envelope has a malformed signature entry", _ENVELOPE_FIX)
        sig = _b64decode_canonical(entry.get("sig"), "signatures[].sig")
        keyid = entry.get("keyid", "")
        if keyid:
            seen.append(keyid)
            candidates = [public_keys[keyid]] if keyid in public_keys else []
        else:
            candidates = list(public_keys.values())
        for candidate in candidates:
            if algorithms.verify(candidate, sig, message):
                return payload
    if seen and not any(k in public_keys for k in seen):
        raise EnvelopeError(
            f"DSSE envelope is signed by unknown key {', '.join(seen)}",
            "verify with the public key that signed it (`dsar keys export-public` on the signer)",
        )
    raise EnvelopeError("DSSE envelope signature does not verify", _ENVELOPE_FIX)


def make_statement(
    subject_name: str,
    subject_digest_sha256: str,
    predicate_type: str,
    predicate: Mapping[str, Any],
) -> dict[str, Any]:
    """An in-toto Statement v1 about one subject identified by its SHA-256 digest.

    ``subject_digest_sha256`` must be 64 lowercase hex characters. The predicate is copied
    shallowly; it must be canonical-JSON serializable (checked when signing).
    """
    if not subject_name:
        raise InvalidInput("in-toto subject name is empty", "name the artifact the record is about")
    if not isinstance(subject_digest_sha256, str) or not _SHA256_HEX.fullmatch(
        subject_digest_sha256
    ):
        raise InvalidInput(
            f"subject digest {subject_digest_sha256!r} is not a SHA-256 hex digest",
            "pass 64 lowercase hexadecimal characters",
        )
    if not predicate_type:
        raise InvalidInput("in-toto predicate type is empty", "pass the predicate's type URI")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": subject_digest_sha256}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }


def sign_statement(
    statement: Mapping[str, Any], key: Ed25519PrivateKey | Signer, keyid: str,
    *, predicate_json: bytes | None = None,
) -> dict[str, Any]:
    """Serialize ``statement`` as canonical JSON and sign it into an in-toto DSSE envelope.

    ``predicate_json``, when the caller already has it, must be the canonical JSON of
    ``statement["predicate"]``: the statement's serialization then reuses it."""
    if predicate_json is None:
        payload = canonical_json(statement)
    elif set(statement) != {"_type", "predicate", "predicateType", "subject"}:
        raise InvalidInput("not an in-toto Statement v1", "build it with make_statement")
    else:  # RFC 8785 writes an object's members sorted by key: these four in this order
        payload = b"".join((
            b'{"_type":', canonical_json(statement["_type"]),
            b',"predicate":', predicate_json,
            b',"predicateType":', canonical_json(statement["predicateType"]),
            b',"subject":', canonical_json(statement["subject"]), b"}"))
    return sign_envelope(payload, INTOTO_PAYLOAD_TYPE, key, keyid)


def verify_statement(
    env: Mapping[str, Any], public_keys: Mapping[str, PublicKey]
) -> dict[str, Any]:
    """Verify an in-toto envelope and return its Statement.

    Beyond :func:`verify_envelope`, requires the in-toto payload type, a JSON object payload
    and ``_type`` equal to :data:`STATEMENT_TYPE`; raises
    :class:`~dsar.records.errors.EnvelopeError` otherwise.
    """
    payload = verify_envelope(env, public_keys, payload_type=INTOTO_PAYLOAD_TYPE)
    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise EnvelopeError("signed payload is not JSON", _ENVELOPE_FIX) from err
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(
            "signed payload is not an in-toto Statement v1",
            "check that this file is a dsar completion record",
        )
    return statement
