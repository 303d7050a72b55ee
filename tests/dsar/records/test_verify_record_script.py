"""docs/verify_record.py, the standalone checker, on records signed with an ECDSA P-256 key
(as AWS KMS or a mounted P-256 key file signs them), alone and beside an Ed25519 key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from test_records_record_setup import Clock, complete_request

from dsar.app import App
from dsar.crypto import Keys
from dsar.db.engine import StateDB
from dsar.records import signing
from dsar.records.record_bundle import make_bundle
from dsar.settings import Settings

SCRIPT = Path(__file__).resolve().parents[3] / "docs" / "verify_record.py"


def _run(*args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, cwd=args[0].parent)


def test_a_p256_signed_record_verifies_and_tampering_fails(tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key_file.chmod(0o600)
    env = {"DSAR_DATA_DIR": str(tmp_path / "data"),
           "DSAR_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
           "DSAR_LEDGER_ORIGIN": "test.dsar.local/ledger", "DSAR_SIGNING_KEY_FILE": str(key_file)}
    settings = Settings.from_env(env)
    app = App(settings=settings, keys=Keys.load(None, tmp_path / "data"),
              db=StateDB(env["DSAR_DATABASE_URL"]), clock=Clock())
    app.db.upgrade()
    try:
        request_id = complete_request(app)
        record = tmp_path / "record.json"
        with app.db.session() as session:
            record.write_text(json.dumps(make_bundle(session, app, request_id)))
    finally:
        app.db.dispose()
    p256 = tmp_path / "p256.pem"
    p256.write_text(signing.export_public(settings))
    assert "BEGIN PUBLIC KEY" in p256.read_text()

    done = _run(record, p256)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "record verified" in done.stdout and "FAIL" not in done.stdout

    # beside an Ed25519 key (a rotation from one to the other): still verified
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    both = tmp_path / "both.pem"
    both.write_text(other + p256.read_text())
    assert _run(record, both).returncode == 0

    # the Ed25519 key alone does not verify it
    alone = tmp_path / "ed25519.pem"
    alone.write_text(other)
    done = _run(record, alone)
    assert done.returncode == 1 and "FAIL  signature" in done.stdout
    assert "FAIL  checkpoint-signature" in done.stdout

    # a tampered payload fails
    bundle = json.loads(record.read_text())
    payload = bundle["envelope"]["payload"]
    bundle["envelope"]["payload"] = ("B" if payload[0] != "B" else "C") + payload[1:]
    record.write_text(json.dumps(bundle))
    done = _run(record, p256)
    assert done.returncode == 1 and "FAIL  signature" in done.stdout


def test_a_key_of_another_curve_is_refused_in_one_line(tmp_path: Path) -> None:
    key = tmp_path / "p384.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    record = tmp_path / "record.json"
    record.write_text("{}")
    done = _run(record, key)
    assert done.returncode == 2 and "need Ed25519 or ECDSA P-256" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
