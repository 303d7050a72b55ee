"""verify_bundle: trust anchors, key rotation, and the content checks on a re-signed record."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_records_record_setup import BACKENDS, complete_request, make_app

from dsar.app import App
from dsar.records import keys
from dsar.records.dsse import sign_statement
from dsar.records.ledger import export_ledger
from dsar.records.record import predicate_digest
from dsar.records.record_bundle import make_bundle
from dsar.records.verify import CHECKS, verify_bundle


@pytest.fixture(params=BACKENDS)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    yield from make_app(request.param, tmp_path)


def _bundle(app: App, request_id: str) -> dict[str, Any]:
    with app.db.session() as session:
        return make_bundle(session, app, request_id)


def _trusted(app: App) -> dict[str, Any]:
    return keys.load_public_pem(keys.export_public(app.settings.signing_keys_dir))


def test_a_fresh_bundle_passes_every_check_with_the_ledger(app: App, tmp_path: Path) -> None:
    request_id = complete_request(app, pause_first=True, extend=True, export_bundle=True)
    complete_request(app)
    bundle = _bundle(app, request_id)
    with app.db.session() as session:
        export_ledger(session, tmp_path / "ledger.json")
    exported = json.loads((tmp_path / "ledger.json").read_text())
    result = verify_bundle(bundle, public_keys=_trusted(app), ledger=exported)
    assert result.ok, result.to_dict()
    assert [c.name for c in result.checks] == list(CHECKS)


def test_records_signed_before_a_rotation_still_verify(app: App, tmp_path: Path) -> None:
    before = complete_request(app)
    old_keyid = keys.active_keyid(app.settings.signing_keys_dir)
    keys.rotate(app.settings.signing_keys_dir)
    after = complete_request(app)
    old_bundle, new_bundle = _bundle(app, before), _bundle(app, after)
    assert old_bundle["keyid"] == old_keyid != new_bundle["keyid"]
    with app.db.session() as session:
        export_ledger(session, tmp_path / "ledger.json")
    exported = json.loads((tmp_path / "ledger.json").read_text())
    for bundle in (old_bundle, new_bundle):
        result = verify_bundle(bundle, public_keys=_trusted(app), ledger=exported)
        assert result.ok, result.to_dict()


def test_the_bundle_key_proves_integrity_only_and_a_wrong_key_fails(app: App) -> None:
    bundle = _bundle(app, complete_request(app))
    own = verify_bundle(bundle)
    assert own.ok
    assert "integrity, not origin" in next(c.detail for c in own.checks if c.name == "public-key")
    stranger = keys.load_public_pem(keys.export_public(_stranger_ring(app)))
    failed = verify_bundle(bundle, public_keys=stranger).failed()
    assert {"signature", "checkpoint-signature"} <= set(failed)


def _stranger_ring(app: App) -> Path:
    ring = app.settings.data_dir / "stranger-keys"
    keys.generate(ring)
    return ring


def _resign(app: App, bundle: dict[str, Any], change: Any) -> dict[str, Any]:
    """The bundle with its predicate changed by ``change`` and signed again with the real key
    (an insider with the key, or a bug): the content checks must still catch it."""
    out = copy.deepcopy(bundle)
    statement = json.loads(base64.b64decode(out["envelope"]["payload"]))
    change(statement["predicate"])
    statement["subject"][0]["digest"]["sha256"] = predicate_digest(statement["predicate"])
    signer = keys.active_signer(app.settings.signing_keys_dir)
    out["envelope"] = sign_statement(statement, signer.private_key, signer.keyid)
    return out


@pytest.mark.parametrize("backend", ["sqlite"])
def test_content_checks_catch_a_re_signed_lie(backend: str, tmp_path: Path) -> None:
    for app in make_app(backend, tmp_path):
        bundle = _bundle(app, complete_request(app, days=60))
        trusted = _trusted(app)

        def flip_on_time(p: dict[str, Any]) -> None:
            p["deadline"]["on_time"] = True

        def move_due(p: dict[str, Any]) -> None:
            p["deadline"]["due"] = p["deadline"]["effective_due"] = "2025-12-31"
            p["deadline"]["on_time"] = True

        def pause_after_completion(p: dict[str, Any]) -> None:
            p["timeline"]["paused"] = [{"from": "2026-01-01T00:00:00Z",
                                        "to": "2026-01-02T00:00:00Z"}]

        def hide_a_system(p: dict[str, Any]) -> None:
            p["systems"] = p["systems"][:1]

        cases = [(flip_on_time, "timeline"), (move_due, "deadline-rule"),
                 (pause_after_completion, "timeline"), (hide_a_system, "evidence-summary")]
        for change, check in cases:
            failed = verify_bundle(_resign(app, bundle, change), public_keys=trusted).failed()
            assert check in failed, (change.__name__, failed)
            assert "signature" not in failed


def test_malformed_input_fails_the_format_check_without_raising() -> None:
    for junk in (None, [], {"format": "x"}, {"format": "dsar-record-bundle/v1"}):
        result = verify_bundle(junk)
        assert not result.ok and result.failed() == ["bundle-format"]
