"""Keys from secrets: AWS KMS signing (on moto's server over HTTP) and mounted key files.

A worker with DSAR_MASTER_KEY_FILE and DSAR_SIGNING_KMS_KEY_ID signs records and checkpoints
without a data folder; the bundle verifies offline from `dsar keys export-public`'s PEM.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from test_records_record_setup import Clock, complete_request

from dsar.app import App
from dsar.crypto import Keys
from dsar.db.engine import StateDB
from dsar.errors import DsarError, InvalidInput
from dsar.records import keys, signing
from dsar.records.algorithms import P256
from dsar.records.checkpoint import parse_and_verify_checkpoint, sign_checkpoint
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import verify_bundle
from dsar.settings import Settings
from tests import services

pytest_plugins = ["tests.s3server"]

MASTER = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes


@pytest.fixture
def kms(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """boto3's KMS client on moto; AWS_ENDPOINT_URL_KMS points dsar's own client there."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", moto_endpoint)
    return boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-east-1")


def _kms_key(kms: Any, spec: str = "ECC_NIST_P256") -> str:
    usage = "SIGN_VERIFY" if spec != "SYMMETRIC_DEFAULT" else "ENCRYPT_DECRYPT"
    return str(kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"])


def _secret(path: Path, data: bytes, mode: int = 0o400) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def kms_app(kms: Any, tmp_path: Path) -> Iterator[App]:
    """A production-shaped App: PostgreSQL, the master key from a mounted file, records
    signed by KMS, and a data folder that does not exist."""
    url = services.create_postgres_database()
    env = {"DSAR_DATA_DIR": str(tmp_path / "no-such-folder"), "DSAR_DATABASE_URL": url,
           "DSAR_MASTER_KEY_FILE": str(_secret(tmp_path / "master-key", MASTER.encode())),
           "DSAR_SIGNING_KMS_KEY_ID": _kms_key(kms),
           "DSAR_LEDGER_ORIGIN": "test.dsar.local/ledger"}
    settings = Settings.from_env(env)
    db = StateDB(url)
    db.upgrade()
    app = App(settings=settings, keys=Keys.load(None, settings.data_dir,
                                                settings.master_key_file),
              db=db, clock=Clock())
    try:
        yield app
    finally:
        db.dispose()
        services.drop_postgres_database(url)


def test_kms_signed_records_verify_offline_from_the_exported_key(kms_app: App) -> None:
    first, second = complete_request(kms_app), complete_request(kms_app, export_bundle=True)
    with kms_app.db.session() as session:
        bundles = [make_bundle(session, kms_app, rid) for rid in (first, second)]
    published = signing.export_public(kms_app.settings)
    assert "(active, ECDSA P-256 SHA-256)" in published
    trusted = keys.load_public_pem(published)
    for bundle in bundles:
        result = verify_bundle(bundle, public_keys=trusted)
        assert result.ok, result.to_dict()
        detail = next(c.detail for c in result.checks if c.name == "signature")
        assert detail.startswith(P256)
    assert not kms_app.settings.data_dir.exists()  # nothing needed or written on local disk
    tampered = dict(bundles[0], request_id=second)
    assert not verify_bundle(tampered, public_keys=trusted).ok


def test_a_kms_record_fails_under_a_stranger_key(kms_app: App, kms: Any) -> None:
    bundle_id = complete_request(kms_app)
    with kms_app.db.session() as session:
        bundle = make_bundle(session, kms_app, bundle_id)
    other = dataclasses.replace(kms_app.settings, signing_kms_key_id=_kms_key(kms))
    stranger = keys.load_public_pem(signing.export_public(other))
    failed = verify_bundle(bundle, public_keys=stranger).failed()
    assert {"signature", "checkpoint-signature"} <= set(failed)


def test_checkpoints_signed_by_kms_verify(kms: Any, tmp_path: Path) -> None:
    settings = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path),
                                  "DSAR_SIGNING_KMS_KEY_ID": _kms_key(kms)})
    signer = signing.load_signer(settings)
    note = sign_checkpoint("example.org/log", 7, bytes(range(32)), signer)
    assert parse_and_verify_checkpoint(note, "example.org/log", signer.public_key) == (
        7, bytes(range(32)))


def test_kms_keys_that_cannot_sign_are_refused_in_one_line(kms: Any, tmp_path: Path) -> None:
    for key_id, problem in ((_kms_key(kms, "RSA_2048"), "not an ECC_NIST_P256"),
                            ("alias/does-not-exist", "refused")):
        settings = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path),
                                      "DSAR_SIGNING_KMS_KEY_ID": key_id})
        with pytest.raises(DsarError, match=problem) as err:
            signing.load_signer(settings)
        assert "\n" not in str(err.value.problem)


def test_mounted_key_files_sign_and_are_checked(tmp_path: Path) -> None:
    for key in (Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())):
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path = _secret(tmp_path / f"signing-{type(key).__name__}.pem", pem)
        settings = Settings.from_env({"DSAR_DATA_DIR": str(tmp_path / "none"),
                                      "DSAR_SIGNING_KEY_FILE": str(path)})
        signer = signing.load_signer(settings)
        ring = keys.load_public_pem(signing.export_public(settings))
        assert list(ring) == [signer.keyid]
        note = sign_checkpoint("example.org/log", 1, bytes(32), signer)
        parse_and_verify_checkpoint(note, "example.org/log", ring[signer.keyid])
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="can be read by other users"):
        signing.load_signer(Settings.from_env({"DSAR_SIGNING_KEY_FILE": str(path)}))
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    bad = _secret(tmp_path / "p384.pem", p384)
    with pytest.raises(InvalidInput, match="not P-256"):
        signing.load_signer(Settings.from_env({"DSAR_SIGNING_KEY_FILE": str(bad)}))
    with pytest.raises(InvalidInput, match="both DSAR_SIGNING_KEY_FILE and"):
        Settings.from_env({"DSAR_SIGNING_KEY_FILE": str(bad), "DSAR_SIGNING_KMS_KEY_ID": "k"})


def test_master_key_file_is_read_and_checked(tmp_path: Path) -> None:
    path = _secret(tmp_path / "master", MASTER.encode() + b"\n")
    assert Keys.load(None, tmp_path / "unused", path) == Keys.load(MASTER, tmp_path)
    assert not (tmp_path / "unused").exists()
    path.chmod(0o644)
    with pytest.raises(InvalidInput, match="can be read by other users"):
        Keys.load(None, tmp_path, path)
    with pytest.raises(InvalidInput, match="does not exist"):
        Keys.load(None, tmp_path, tmp_path / "missing")


def test_dsar_keys_export_public_and_verify_with_a_key_file(tmp_path: Path) -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    env = {**os.environ, "DSAR_DATA_DIR": str(tmp_path / "data"),
           "DSAR_SIGNING_KEY_FILE": str(_secret(tmp_path / "k.pem", pem))}
    out = subprocess.run([sys.executable, "-m", "cli", "keys", "export-public"], env=env,
                         capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3])
    assert "ECDSA P-256" in out.stdout and "BEGIN PUBLIC KEY" in out.stdout
