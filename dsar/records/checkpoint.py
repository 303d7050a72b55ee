"""Signed checkpoints of the ledger, in the C2SP ``tlog-checkpoint`` / ``signed-note`` format.

A checkpoint is a note whose text is three lines::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>

followed by a blank line and a signature line::

    — <origin> <base64(key hash || Ed25519 signature)>

The signature covers the text including its final newline. The 4-byte key hash is
``SHA-256(origin || "\\n" || 0x01 || raw public key)[:4]`` (0x01 marks Ed25519), so the key
name of a checkpoint signer is its origin. A P-256 key (AWS KMS) signs with the signed-note
type 0x02 (ECDSA, as in github.com/transparency-dev/witness): key hash
``SHA-256(origin || "\\n" || 0x02 || DER SubjectPublicKeyInfo)[:4]``, signature ASN.1 DER.
Verification follows signed-note rules: signature lines from other keys are ignored, but a
line that claims the expected key and does not verify rejects the checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dsar.errors import InvalidInput
from dsar.records import algorithms
from dsar.records.algorithms import PublicKey, Signer
from dsar.records.errors import CheckpointError
from dsar.records.merkle import HASH_SIZE

__all__ = [
    "key_hash",
    "open_note",
    "parse_and_verify_checkpoint",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

_ED25519 = b"\x01"
_ECDSA = b"\x02"
_DASH = "\u2014 "
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_SIG_LINE = re.compile(r"\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})")
_MAX_SIGNATURES = 100
_FIX = "fetch the checkpoint again from the ledger export; if it still fails, it was altered"


def _raw(public_key: PublicKey) -> bytes:
    """Signature type byte and key encoding of the signed-note key hash."""
    if isinstance(public_key, Ed25519PublicKey):
        return _ED25519 + public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _ECDSA + public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _check_origin(origin: str) -> None:
    if (
        not origin
        or any(ch.isspace() or ch == "+" or ord(ch) < 0x20 for ch in origin)
        or "\u2014" in origin
    ):
        raise InvalidInput(
            f"checkpoint origin {origin!r} is not a valid key name",
            "use a non-empty name without spaces or '+', such as 'dsar.example.com/ledger'",
        )


def key_hash(name: str, public_key: PublicKey) -> bytes:
    """The signed-note key hash: ``SHA-256(name || 0x0A || type || public key)[:4]``."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _raw(public_key)).digest()[:4]


def verifier_key(name: str, public_key: PublicKey) -> str:
    """The signed-note verifier key string ``<name>+<hex key hash>+<base64(0x01 || key)>``.

    Lets standard tools (e.g. Go's ``golang.org/x/mod/sumdb/note``) verify our checkpoints.
    """
    _check_origin(name)
    encoded = base64.b64encode(_raw(public_key)).decode("ascii")
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def sign_note(text: str, name: str, key: Ed25519PrivateKey | Signer) -> str:
    """Sign ``text`` as a C2SP signed note under key name ``name``; return the whole note.

    ``text`` must end with a newline and contain no control characters other than newline.
    """
    _check_origin(name)
    if not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise InvalidInput(
            "note text must end with a newline and contain no control characters",
            "build the text with sign_checkpoint",
        )
    signature = key.sign(text.encode("utf-8"))
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key.public_key
    blob = base64.b64encode(key_hash(name, public) + signature).decode("ascii")
    return f"{text}\n{_DASH}{name} {blob}\n"


def sign_checkpoint(origin: str, size: int, root: bytes,
                    key: Ed25519PrivateKey | Signer) -> str:
    """The signed checkpoint note for a tree of ``size`` leaves with ``root``.

    Raises :class:`~dsar.errors.InvalidInput` for an invalid origin, a negative size or a
    root that is not 32 bytes.
    """
    _check_origin(origin)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 1 << 64:
        raise InvalidInput(f"checkpoint size {size!r} is not a non-negative 64-bit integer")
    if len(root) != HASH_SIZE:
        raise InvalidInput(f"checkpoint root is {len(root)} bytes, expected {HASH_SIZE}")
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n"
    return sign_note(body, origin, key)


def _split_note(text: str) -> tuple[str, list[str]]:
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise CheckpointError("checkpoint contains control characters", _FIX)
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise CheckpointError("checkpoint is not a signed note", _FIX)
    body, sig_block = text[: cut + 1], text[cut + 2 :]
    lines = sig_block[:-1].split("\n")
    if not lines or len(lines) > _MAX_SIGNATURES:
        raise CheckpointError("checkpoint has no or too many signature lines", _FIX)
    return body, lines


def _b64(text: str) -> bytes:
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return data


def open_note(note: str | bytes, name: str, pubkey: PublicKey) -> str:
    """Verify a signed note's signature by ``pubkey`` under ``name``; return the note text.

    Signature lines of other keys are ignored; a line for this key that does not verify
    rejects the note. Raises :class:`~dsar.records.errors.CheckpointError` on any failure.
    """
    _check_origin(name)
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as err:
            raise CheckpointError("checkpoint is not UTF-8", _FIX) from err
    try:
        note.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate: no signed note can hold one
        raise CheckpointError("checkpoint is not valid UTF-8 text", _FIX) from err
    body, sig_lines = _split_note(note)
    wanted = key_hash(name, pubkey)
    for line in sig_lines:
        match = _SIG_LINE.fullmatch(line)
        if not match:
            raise CheckpointError("checkpoint has a malformed signature line", _FIX)
        sig_name, blob_text = match.groups()
        try:
            blob = _b64(blob_text)
        except (binascii.Error, ValueError) as err:
            raise CheckpointError("checkpoint signature is not valid base64", _FIX) from err
        if len(blob) < 5:
            raise CheckpointError("checkpoint signature is too short", _FIX)
        if sig_name != name or blob[:4] != wanted:
            continue  # someone else's signature (e.g. a witness): ignore it
        if not algorithms.verify(pubkey, blob[4:], body.encode("utf-8")):
            raise CheckpointError("checkpoint signature does not verify", _FIX)
        return body
    raise CheckpointError(
        f"checkpoint is not signed by the expected key for {name}",
        "verify with the ledger's public key (`dsar keys export-public` on the signing host)",
    )


def parse_and_verify_checkpoint(
    text: str | bytes, origin: str, pubkey: PublicKey
) -> tuple[int, bytes]:
    """Verify a signed checkpoint for ``origin`` under ``pubkey``; return ``(size, root)``.

    Raises :class:`~dsar.records.errors.CheckpointError` if the note is malformed, is for
    another origin, has no signature by ``pubkey`` under the name ``origin``, or that
    signature does not verify. Nothing from the note is trusted until the signature has.
    """
    return _parse_body(open_note(text, origin, pubkey), origin)


def _parse_body(body: str, origin: str) -> tuple[int, bytes]:
    lines = body[:-1].split("\n")
    if len(lines) != 3:
        raise CheckpointError(
            f"checkpoint body has {len(lines)} lines, expected 3 (origin, size, root)", _FIX
        )
    got_origin, size_text, root_text = lines
    if got_origin != origin:
        raise CheckpointError(
            f"checkpoint is for log {got_origin!r}, expected {origin!r}",
            "verify against the ledger this checkpoint came from",
        )
    if not _SIZE.fullmatch(size_text) or int(size_text) >= 1 << 64:
        raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal integer", _FIX)
    try:
        root = _b64(root_text)
    except (binascii.Error, ValueError) as err:
        raise CheckpointError("checkpoint root is not valid base64", _FIX) from err
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root is {len(root)} bytes, expected {HASH_SIZE}", _FIX)
    return int(size_text), root
