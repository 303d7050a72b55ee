"""Keys and the two primitives that protect identities at rest: AES-GCM and the lookup HMAC."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.crypto import FieldCipher, Keys
from dsar.errors import DsarError, InvalidInput

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


@settings(max_examples=200)
@given(st.binary(max_size=512), st.binary(max_size=64))
def test_seal_open_round_trip(plaintext: bytes, context: bytes) -> None:
    cipher = FieldCipher(KEY)
    sealed = cipher.seal(plaintext, context)
    assert cipher.open(sealed, context) == plaintext
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    if len(plaintext) >= 4:
        assert plaintext not in sealed


def test_seal_uses_a_fresh_nonce() -> None:
    cipher = FieldCipher(KEY)
    assert cipher.seal(b"jane@example.com") != cipher.seal(b"jane@example.com")


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=64), st.data())
def test_tampering_detected(plaintext: bytes, data: st.DataObject) -> None:
    cipher = FieldCipher(KEY)
    sealed = bytearray(cipher.seal(plaintext, b"email"))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DsarError):
        cipher.open(bytes(sealed), b"email")


@settings(max_examples=100)
@given(st.binary(max_size=64), st.data())
def test_truncation_detected(plaintext: bytes, data: st.DataObject) -> None:
    cipher = FieldCipher(KEY)
    sealed = cipher.seal(plaintext)
    cut = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(DsarError):
        cipher.open(sealed[:cut])


@settings(max_examples=200)
@given(st.binary(max_size=64), st.binary(max_size=16), st.binary(max_size=16))
def test_other_context_does_not_open(plaintext: bytes, context: bytes, other: bytes) -> None:
    if context == other:
        other += b"x"
    cipher = FieldCipher(KEY)
    with pytest.raises(DsarError) as err:
        cipher.open(cipher.seal(plaintext, context), other)
    assert "DSAR_MASTER_KEY" in (err.value.fix or "")


def test_other_key_does_not_open() -> None:
    sealed = FieldCipher(KEY).seal(b"jane@example.com")
    with pytest.raises(DsarError, match="could not be decrypted"):
        FieldCipher(OTHER).open(sealed)


def test_unknown_format_refused() -> None:
    sealed = FieldCipher(KEY).seal(b"x")
    with pytest.raises(DsarError, match="unknown format"):
        FieldCipher(KEY).open(b"\x02" + sealed[1:])
    with pytest.raises(DsarError, match="unknown format"):
        FieldCipher(KEY).open(b"")


def test_purposes_have_separate_keys() -> None:
    keys = Keys(KEY)
    sealed = keys.identity_cipher.seal(b"jane@example.com", b"email")
    with pytest.raises(DsarError):
        keys.staging_cipher.open(sealed, b"email")
    derived = {keys.bundle_key, keys.link_key, keys.evidence_key, keys._lookup_key}
    assert len(derived) == 4
    assert KEY not in derived
    assert all(len(k) == 32 for k in derived)


def test_lookup_hash() -> None:
    keys = Keys(KEY)
    digest = keys.lookup_hash("email", "jane@example.com")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == Keys(KEY).lookup_hash("email", "jane@example.com")
    assert digest != keys.lookup_hash("customer_id", "jane@example.com")
    assert digest != keys.lookup_hash("email", "jane@example.org")
    assert digest != Keys(OTHER).lookup_hash("email", "jane@example.com")
    # kind and value are separated: ("a", "bc") is not ("ab", "c")
    assert keys.lookup_hash("a", "bc") != keys.lookup_hash("ab", "c")


def test_master_key_from_setting(tmp_path: Path) -> None:
    keys = Keys.load(base64.b64encode(KEY).decode(), tmp_path / "data")
    assert keys.master == KEY
    assert not (tmp_path / "data" / "master.key").exists()


def test_master_key_generated_once_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = Keys.load(None, data)
    path = data / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.master) == 32
    assert Keys.load(None, data).master == first.master
    assert Keys.load(None, tmp_path / "elsewhere").master != first.master


@pytest.mark.parametrize("bad", [
    "not base64!", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode(),
    "x" * 44,
])
def test_bad_master_key_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        Keys.load(bad, tmp_path)
    assert "DSAR_MASTER_KEY" in err.value.problem
    assert "base64" in err.value.problem
    assert "generate one" in (err.value.fix or "")
    assert bad not in err.value.one_line()


def test_bad_master_key_file_refused(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_text("garbage\n")
    (tmp_path / "master.key").chmod(0o600)  # private, so the refusal is about its content
    with pytest.raises(InvalidInput, match=r"master\.key.*base64"):
        Keys.load(None, tmp_path)
