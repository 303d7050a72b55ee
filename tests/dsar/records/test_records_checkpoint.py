"""C2SP signed checkpoints."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.errors import InvalidInput
from dsar.records import checkpoint
from dsar.records.errors import CheckpointError

ORIGIN = "dsar.example.com/ledger"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ledger key").digest())
PUB = KEY.public_key()
ROOT = hashlib.sha256(b"root").digest()

# Reference vector from golang.org/x/mod sumdb/note (package documentation example and
# note_test.go): the signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>"
# produces this exact note; Ed25519 is deterministic, so ours must match byte for byte.
GO_SKEY_MATERIAL = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_matches_go_sumdb_note_reference() -> None:
    material = base64.b64decode(GO_SKEY_MATERIAL)
    assert material[0] == 1
    key = Ed25519PrivateKey.from_private_bytes(material[1:])
    assert checkpoint.key_hash("PeterNeumann", key.public_key()).hex() == "c74f20a3"
    assert checkpoint.verifier_key("PeterNeumann", key.public_key()) == GO_VKEY
    assert checkpoint.sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    assert checkpoint.open_note(GO_NOTE, "PeterNeumann", key.public_key()) == GO_TEXT
    with pytest.raises(CheckpointError):
        checkpoint.open_note(
            GO_NOTE.replace("cryptography", "cryptographY"), "PeterNeumann", key.public_key()
        )


def test_format_and_round_trip() -> None:
    note = checkpoint.sign_checkpoint(ORIGIN, 42, ROOT, KEY)
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "42", base64.b64encode(ROOT).decode(), ""]
    assert lines[4].startswith(f"\u2014 {ORIGIN} ")
    assert lines[5:] == [""]
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert blob[:4] == checkpoint.key_hash(ORIGIN, PUB)
    assert len(blob) == 4 + 64
    assert checkpoint.parse_and_verify_checkpoint(note, ORIGIN, PUB) == (42, ROOT)
    assert checkpoint.parse_and_verify_checkpoint(note.encode(), ORIGIN, PUB) == (42, ROOT)


def test_signed_by_another_key_fails() -> None:
    other = Ed25519PrivateKey.generate()
    note = checkpoint.sign_checkpoint(ORIGIN, 1, ROOT, other)
    with pytest.raises(CheckpointError, match="not signed by the expected key"):
        checkpoint.parse_and_verify_checkpoint(note, ORIGIN, PUB)


def test_other_origin_fails() -> None:
    note = checkpoint.sign_checkpoint("other.example/log", 1, ROOT, KEY)
    with pytest.raises(CheckpointError):
        checkpoint.parse_and_verify_checkpoint(note, ORIGIN, PUB)


def test_cosignatures_are_ignored_but_a_bad_own_signature_rejects() -> None:
    note = checkpoint.sign_checkpoint(ORIGIN, 7, ROOT, KEY)
    witness = Ed25519PrivateKey.generate()
    body = note[: note.index("\n\n") + 1]
    extra = checkpoint.sign_note(body, "witness.example", witness).split("\n\n")[1]
    cosigned = note + extra
    assert checkpoint.parse_and_verify_checkpoint(cosigned, ORIGIN, PUB) == (7, ROOT)
    # A line that claims to be ours (name and key hash) but carries a bad signature.
    bad = base64.b64encode(checkpoint.key_hash(ORIGIN, PUB) + bytes(64)).decode()
    forged = body + f"\n\u2014 {ORIGIN} {bad}\n" + note.split("\n\n")[1]
    with pytest.raises(CheckpointError, match="does not verify"):
        checkpoint.parse_and_verify_checkpoint(forged, ORIGIN, PUB)


def _signed_body(body: str) -> str:
    return checkpoint.sign_note(body, ORIGIN, KEY)


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n42\n",
        f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\nextension\n",
        f"{ORIGIN}\n042\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n1\nnot base64!\n",
        f"other\n1\n{base64.b64encode(ROOT).decode()}\n",
    ],
)
def test_signed_but_malformed_bodies_are_rejected(body: str) -> None:
    with pytest.raises(CheckpointError):
        checkpoint.parse_and_verify_checkpoint(_signed_body(body), ORIGIN, PUB)


@pytest.mark.parametrize(
    "text",
    ["", "no signature\n", f"{ORIGIN}\n1\nAA==\n\n", f"{ORIGIN}\n1\nAA==\n\n- {ORIGIN} AAAA\n"],
)
def test_unsigned_or_malformed_notes_are_rejected(text: str) -> None:
    with pytest.raises(CheckpointError):
        checkpoint.parse_and_verify_checkpoint(text, ORIGIN, PUB)


@given(data=st.data())
@settings(max_examples=400)
def test_any_changed_character_fails(data: st.DataObject) -> None:
    note = checkpoint.sign_checkpoint(ORIGIN, 123456, ROOT, KEY)
    i = data.draw(st.integers(0, len(note) - 1), label="position")
    new = data.draw(st.characters().filter(lambda c: c != note[i]), label="char")
    with pytest.raises(CheckpointError):
        checkpoint.parse_and_verify_checkpoint(note[:i] + new + note[i + 1 :], ORIGIN, PUB)


@given(size=st.integers(0, 2**64 - 1), root=st.binary(min_size=32, max_size=32))
def test_round_trip_any_size_and_root(size: int, root: bytes) -> None:
    note = checkpoint.sign_checkpoint(ORIGIN, size, root, KEY)
    assert checkpoint.parse_and_verify_checkpoint(note, ORIGIN, PUB) == (size, root)


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [("", 1, ROOT), ("a b", 1, ROOT), ("a+b", 1, ROOT), (ORIGIN, -1, ROOT), (ORIGIN, 1, b"x")],
)
def test_sign_rejects_bad_input(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(InvalidInput):
        checkpoint.sign_checkpoint(origin, size, root, KEY)
