"""Every kind of tampering is caught by `dsar verify`, which names the check that failed."""

from __future__ import annotations

import base64
import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_records_record_setup import complete_request, make_app

from dsar.records import keys, ledger, merkle
from dsar.records.canonical import canonical_json
from dsar.records.checkpoint import sign_checkpoint
from dsar.records.record_bundle import make_bundle
from interfaces.commands.records import verify


@dataclass
class Made:
    """A ledger of three records with a bundle for the middle one, and the same for a second,
    independent ledger signed with the same key."""

    dir: Path
    bundle: dict[str, Any]
    ledger_file: Path
    key_file: Path
    other_bundle: dict[str, Any]
    leaves: list[bytes]
    origin: str
    signing_dir: Path


def _ledger_with_records(app: Any, out: Path) -> dict[str, Any]:
    ids = [complete_request(app) for _ in range(3)]
    with app.db.session() as session:
        bundle = make_bundle(session, app, ids[1])
        ledger.export_ledger(session, out)
    return bundle


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    base = tmp_path_factory.mktemp("tamper")
    for app in make_app("sqlite", base / "a"):
        bundle = _ledger_with_records(app, base / "ledger.json")
        key_file = base / "key.pem"
        key_file.write_text(keys.export_public(app.settings.signing_keys_dir))
        for other in make_app("sqlite", base / "b", generate_key=False):
            shutil.copytree(app.settings.signing_keys_dir, other.settings.signing_keys_dir)
            other_bundle = _ledger_with_records(other, base / "other-ledger.json")
        data = json.loads((base / "ledger.json").read_text())
        yield Made(base, bundle, base / "ledger.json", key_file, other_bundle,
                   ledger.parse_export(data).leaves, app.settings.ledger_origin,
                   app.settings.signing_keys_dir)


def run_verify(made: Made, bundle: dict[str, Any], *, with_ledger: bool = True,
               ledger_file: Path | None = None) -> tuple[int, str]:
    path = made.dir / "candidate.json"
    path.write_text(json.dumps(bundle))
    args = [str(path), "--public-key", str(made.key_file)]
    if with_ledger:
        args += ["--ledger", str(ledger_file or made.ledger_file)]
    result = CliRunner().invoke(verify, args)
    return result.exit_code, result.output


def assert_fails(made: Made, bundle: dict[str, Any], *names: str, **kwargs: Any) -> str:
    code, output = run_verify(made, bundle, **kwargs)
    assert code == 1, output
    for name in names:
        assert f"FAIL  {name}" in output, output
    return output


def test_the_untouched_bundle_verifies(made: Made) -> None:
    code, output = run_verify(made, made.bundle)
    assert code == 0, output
    assert "FAIL" not in output and "record verified" in output


def _flip(b64: str, position: int) -> str:
    data = bytearray(base64.b64decode(b64))
    data[position % len(data)] ^= 0x01
    return base64.b64encode(bytes(data)).decode()


@pytest.mark.parametrize("position", [0, 1, 37, 500, -2, -1])
def test_changing_a_byte_of_the_payload_fails_the_signature(made: Made, position: int) -> None:
    bundle = copy.deepcopy(made.bundle)
    bundle["envelope"]["payload"] = _flip(bundle["envelope"]["payload"], position)
    assert_fails(made, bundle, "signature", "inclusion", "ledger-entry")


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_changing_a_byte_of_the_signature_fails_it(made: Made, position: int) -> None:
    bundle = copy.deepcopy(made.bundle)
    sig = bundle["envelope"]["signatures"][0]
    sig["sig"] = _flip(sig["sig"], position)
    assert_fails(made, bundle, "signature")


def _variants(value: Any) -> list[Any]:
    """Every way to change one scalar inside ``value`` (keys and values)."""
    out: list[Any] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            renamed = {(k + "x" if k == key else k): v for k, v in value.items()}
            out.append(renamed)
            out += [{**value, key: changed} for changed in _variants(inner)]
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += [[*value[:i], changed, *value[i + 1:]] for changed in _variants(inner)]
    elif isinstance(value, bool) or value is None:
        out.append(not value if isinstance(value, bool) else 0)
    elif isinstance(value, int):
        out.append(value + 1)
    else:
        out.append(value[:-1] + ("0" if value[-1:] != "0" else "1"))
    return out


def test_changing_any_field_of_any_evidence_body_fails_the_evidence_root(made: Made) -> None:
    from dsar.records.verify import verify_bundle

    trusted = keys.load_public_key_file(made.key_file)
    tried = 0
    for i, body in enumerate(made.bundle["evidence"]):
        for changed in _variants(body):
            bundle = copy.deepcopy(made.bundle)
            bundle["evidence"][i] = changed
            failed = verify_bundle(bundle, public_keys=trusted).failed()
            assert "evidence-root" in failed, (i, changed)
            tried += 1
    assert tried > 30
    bundle = copy.deepcopy(made.bundle)
    bundle["evidence"][0]["deleted"] += 1
    assert_fails(made, bundle, "evidence-root")


def test_dropping_an_evidence_leaf_fails_the_evidence_root(made: Made) -> None:
    bundle = copy.deepcopy(made.bundle)
    del bundle["evidence"][1]
    assert_fails(made, bundle, "evidence-root")


def test_reordering_evidence_leaves_fails_the_evidence_root(made: Made) -> None:
    bundle = copy.deepcopy(made.bundle)
    bundle["evidence"].reverse()
    assert_fails(made, bundle, "evidence-root")


def test_a_record_from_another_ledger_is_not_included(made: Made) -> None:
    bundle = copy.deepcopy(made.bundle)
    bundle["envelope"] = made.other_bundle["envelope"]
    bundle["evidence"] = made.other_bundle["evidence"]
    bundle["request_id"] = made.other_bundle["request_id"]
    assert_fails(made, bundle, "inclusion", "ledger-entry", with_ledger=True)
    # the other ledger's whole, self-consistent bundle against this ledger
    assert_fails(made, made.other_bundle, "ledger-entry", "ledger-consistency")


def _forked(made: Made) -> tuple[str, list[bytes]]:
    """A checkpoint of size 4, signed with the real key, over a ledger that shares the first
    three entries with the real one and then diverges."""
    leaves = [*made.leaves[:3], b'{"forged":true}']
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    signer = keys.active_signer(made.signing_dir)
    note = sign_checkpoint(made.origin, 4, merkle.root_from_hashes(hashes), signer.private_key)
    return note, hashes


def _real_ledger_with_a_fourth_entry(made: Made) -> Path:
    """The real ledger grown by one honest entry, checkpointed at size 4."""
    data = json.loads(made.ledger_file.read_text())
    data["entries"].append({"index": 3, "leaf": base64.b64encode(b'{"honest":1}').decode(),
                            "appended_at": "2025-03-20T09:00:00Z"})
    data["size"] = 4
    hashes = [merkle.leaf_hash(leaf) for leaf in [*made.leaves, b'{"honest":1}']]
    signer = keys.active_signer(made.signing_dir)
    data["checkpoints"].append({"size": 4, "issued_at": "2025-03-20T09:00:00Z", "note":
                                sign_checkpoint(made.origin, 4, merkle.root_from_hashes(hashes),
                                                signer.private_key)})
    path = made.dir / "grown-ledger.json"
    path.write_text(json.dumps(data))
    return path


def test_a_checkpoint_from_a_forked_ledger_is_detected(made: Made) -> None:
    note, fork_hashes = _forked(made)
    index = made.bundle["ledger"]["index"]
    # swapped in alone: the record's proof does not lead to the forked root
    swapped = copy.deepcopy(made.bundle)
    swapped["ledger"].update(checkpoint=note, tree_size=4)
    assert_fails(made, swapped, "inclusion", with_ledger=False)
    # a self-consistent bundle from the fork: only the real ledger exposes it
    forked = copy.deepcopy(swapped)
    forked["ledger"]["inclusion_proof"] = [
        h.hex() for h in merkle.inclusion_proof_from_hashes(index, fork_hashes)]
    code, output = run_verify(made, forked, with_ledger=False)
    assert code == 0, output
    grown = _real_ledger_with_a_fourth_entry(made)
    assert run_verify(made, made.bundle, ledger_file=grown)[0] == 0
    assert_fails(made, forked, "ledger-consistency", ledger_file=grown)
    # and a forked checkpoint inside the ledger file itself
    data = json.loads(grown.read_text())
    data["checkpoints"][-1]["note"] = note
    grown.write_text(json.dumps(data))
    assert_fails(made, made.bundle, "ledger-checkpoints", ledger_file=grown)


def test_a_ledger_entry_changed_in_the_export_is_detected(made: Made) -> None:
    data = json.loads(made.ledger_file.read_text())
    index = made.bundle["ledger"]["index"]
    leaf = json.loads(base64.b64decode(data["entries"][index]["leaf"]))
    leaf["signatures"][0]["keyid"] = "0" * 64
    data["entries"][index]["leaf"] = base64.b64encode(canonical_json(leaf)).decode()
    path = made.dir / "edited-ledger.json"
    path.write_text(json.dumps(data))
    assert_fails(made, made.bundle, "ledger-checkpoints", "ledger-consistency", "ledger-entry",
                 ledger_file=path)
