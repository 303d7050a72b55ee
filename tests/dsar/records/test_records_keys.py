"""The on-disk Ed25519 keyring."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from dsar.errors import InvalidInput, NotFound
from dsar.records import dsse, keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_creates_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    ring = tmp_path / "keys"
    keyid = keys.generate(ring)
    assert _mode(ring / f"{keyid}.key") == 0o600
    assert _mode(ring) & 0o077 == 0
    assert (ring / f"{keyid}.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert (ring / f"{keyid}.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    signer = keys.active_signer(ring)
    assert signer.keyid == keyid == keys.active_keyid(ring)
    assert dsse.keyid_of(signer.public_key) == keyid
    signer.public_key.verify(signer.sign(b"m"), b"m")


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    keys.generate(tmp_path)
    with pytest.raises(InvalidInput) as err:
        keys.generate(tmp_path)
    assert "dsar keys rotate" in (err.value.fix or "")


def test_missing_keyring_names_the_fix(tmp_path: Path) -> None:
    for call in (keys.active_signer, keys.public_keys, keys.rotate, keys.export_public):
        with pytest.raises(NotFound) as err:
            call(tmp_path / "nope")
        assert err.value.fix == "run `dsar keys generate`"
        assert str(tmp_path / "nope") in str(err.value)


def test_rotate_retires_but_keeps_old_keys(tmp_path: Path) -> None:
    first = keys.generate(tmp_path)
    old_signer = keys.active_signer(tmp_path)
    envelope = dsse.sign_envelope(b"old record", "t", old_signer.private_key, first)
    second = keys.rotate(tmp_path)
    assert second != first
    assert keys.active_signer(tmp_path).keyid == second
    pubs = keys.public_keys(tmp_path)
    assert set(pubs) == {first, second}
    assert dsse.verify_envelope(envelope, pubs) == b"old record"


def test_export_public_round_trips(tmp_path: Path) -> None:
    first = keys.generate(tmp_path)
    second = keys.rotate(tmp_path)
    bundle = keys.export_public(tmp_path)
    assert f"# keyid {first} (retired)" in bundle
    assert f"# keyid {second} (active)" in bundle
    assert "PRIVATE" not in bundle
    loaded = keys.load_public_pem(bundle)
    assert set(loaded) == {first, second}
    path = tmp_path / "export.pem"
    path.write_text(bundle)
    assert set(keys.load_public_key_file(path)) == {first, second}
    # A single plain .pub file loads too.
    assert set(keys.load_public_key_file(tmp_path / f"{first}.pub")) == {first}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_refuses_a_world_readable_private_key(tmp_path: Path) -> None:
    keyid = keys.generate(tmp_path)
    path = tmp_path / f"{keyid}.key"
    path.chmod(0o644)
    with pytest.raises(InvalidInput) as err:
        keys.active_signer(tmp_path)
    assert err.value.fix == f"run `chmod 600 {path}`"


def test_detects_swapped_key_files(tmp_path: Path) -> None:
    first = keys.generate(tmp_path)
    second = keys.rotate(tmp_path)
    a, b = tmp_path / f"{first}.key", tmp_path / f"{second}.key"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(InvalidInput, match="different key"):
        keys.active_signer(tmp_path)
    (tmp_path / f"{first}.pub").write_bytes((tmp_path / f"{second}.pub").read_bytes())
    with pytest.raises(InvalidInput, match="name says"):
        keys.public_keys(tmp_path)


def test_broken_active_pointer_and_missing_private_key(tmp_path: Path) -> None:
    keyid = keys.generate(tmp_path)
    (tmp_path / f"{keyid}.key").unlink()
    with pytest.raises(NotFound, match="missing"):
        keys.active_signer(tmp_path)
    (tmp_path / "active").write_text("garbage\n")
    with pytest.raises(InvalidInput, match="does not hold a key id"):
        keys.active_signer(tmp_path)


def test_garbage_private_key(tmp_path: Path) -> None:
    keyid = keys.generate(tmp_path)
    (tmp_path / f"{keyid}.key").write_text("not a key")
    with pytest.raises(InvalidInput, match="PEM private key"):
        keys.active_signer(tmp_path)


def test_load_public_pem_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no PEM public key"):
        keys.load_public_pem("hello")
    bogus = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(InvalidInput, match="malformed"):
        keys.load_public_pem(bogus)
    ec_pem = (  # P-256 is accepted (AWS KMS signs with it); other curves are not
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InvalidInput, match="neither Ed25519 nor ECDSA P-256"):
        keys.load_public_pem(ec_pem)
    with pytest.raises(NotFound):
        keys.load_public_key_file(tmp_path / "missing.pem")
