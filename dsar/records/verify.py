"""Offline verification of a record bundle, optionally against an exported ledger.

:func:`verify_bundle` needs nothing but the bundle, a public key and, for the chain, the ledger
file: no database, no settings, no network. It runs every check it can and reports each one by
name (see :data:`CHECKS`), so a reviewer sees exactly what failed. Content checks run even when
the signature fails (on the unverified payload) to help diagnosis, but then the result as a whole
is a failure: nothing in an unsigned payload is to be trusted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dsar.errors import DsarError
from dsar.records import merkle
from dsar.records.algorithms import PublicKey, algorithm_of
from dsar.records.canonical import canonical_json, is_canonical
from dsar.records.checkpoint import parse_and_verify_checkpoint
from dsar.records.dsse import INTOTO_PAYLOAD_TYPE, verify_statement
from dsar.records.keys import load_public_pem
from dsar.records.ledger import ExportedLedger, parse_export
from dsar.records.record import (
    PREDICATE_TYPE,
    SUBJECT_PREFIX,
    deadline_problems,
    evidence_root,
    order_evidence,
    predicate_digest,
    summarize_evidence,
    timeline_problems,
)
from dsar.records.record_bundle import BUNDLE_FORMAT

__all__ = ["CHECKS", "Check", "Verification", "verify_bundle"]

#: Every check by name, in the order they are reported, with what it proves.
CHECKS: dict[str, str] = {
    "bundle-format": "the file is a dsar record bundle with every field present",
    "public-key": "which key is trusted: --public-key, or (integrity only) the bundle's own",
    "signature": "the DSSE envelope's signature (Ed25519, or ECDSA P-256 for a KMS key) "
                 "verifies under a trusted key",
    "canonical-form": "the signed payload is RFC 8785 canonical JSON",
    "subject-digest": "the statement names this request and its digest pins the predicate",
    "evidence-root": "the Merkle root over the bundle's evidence equals the signed root",
    "evidence-summary": "the per-system outcome in the record matches the evidence",
    "timeline": "received <= pauses <= completed; due dates consistent with on_time",
    "deadline-rule": "the named deadline rule, re-run, gives the recorded due dates",
    "checkpoint-signature": "the checkpoint is signed by a trusted key for the ledger origin",
    "inclusion": "the record is leaf <index> of the tree the checkpoint commits to",
    "ledger-entries": "the ledger file is well formed, indexes 0..n-1 without gaps",
    "ledger-checkpoints": "the ledger's checkpoints verify, match its entries and are consistent",
    "ledger-consistency": "the bundle's checkpoint is a prefix of the exported ledger",
    "ledger-entry": "the ledger holds this record at its index",
}


@dataclass(frozen=True)
class Check:
    """One named check: passed or not, and one line saying why."""

    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    """All checks run on one bundle; :attr:`ok` only when every one passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[str]:
        """Names of the checks that failed."""
        return [c.name for c in self.checks if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.__dict__ for c in self.checks]}

    def add(self, name: str, run: Callable[[], str]) -> bool:
        """Run ``run``; it returns the detail on success and raises to fail."""
        try:
            self.checks.append(Check(name, True, run()))
        except (_Fail, DsarError) as err:
            self.checks.append(Check(name, False, str(err)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            self.checks.append(Check(name, False, f"malformed: {type(err).__name__}: {err}"))
        return self.checks[-1].ok


class _Fail(Exception):
    """A check failed; the message says how."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise _Fail(message)


def _hex(value: Any) -> bytes:
    _require(isinstance(value, str) and len(value) == 64, f"{value!r} is not a hex hash")
    return bytes.fromhex(value)


def _bundle_format(bundle: Any) -> str:
    _require(isinstance(bundle, dict), "the bundle is not a JSON object")
    _require(bundle.get("format") == BUNDLE_FORMAT,
             f"format is {bundle.get('format')!r}, expected {BUNDLE_FORMAT!r}")
    _require(isinstance(bundle.get("request_id"), str), "request_id is missing")
    _require(isinstance(bundle.get("envelope"), dict), "envelope is missing")
    _require(isinstance(bundle.get("evidence"), list)
             and all(isinstance(e, dict) for e in bundle["evidence"]), "evidence is not a list")
    led = bundle.get("ledger")
    _require(isinstance(led, dict), "ledger is missing")
    for name in ("index", "tree_size"):
        _require(type(led.get(name)) is int and led[name] >= 0, f"ledger.{name} is not a count")
    _require(isinstance(led.get("origin"), str) and isinstance(led.get("checkpoint"), str),
             "ledger.origin or ledger.checkpoint is missing")
    _require(isinstance(led.get("inclusion_proof"), list), "ledger.inclusion_proof is missing")
    [_hex(h) for h in led["inclusion_proof"]]
    return f"record bundle for {bundle['request_id']}"


def _unverified_statement(envelope: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    payload = base64.b64decode(envelope.get("payload", ""), validate=True)
    statement = json.loads(payload)
    _require(isinstance(statement, dict), "payload is not a JSON object")
    return payload, statement


def _note_claim(note: str) -> tuple[int, bytes]:
    """Size and root as the note's text claims them, before (or without) its signature."""
    lines = note.split("\n")
    _require(len(lines) >= 3, "checkpoint note is too short")
    return int(lines[1]), base64.b64decode(lines[2], validate=True)


def _open_checkpoint(note: str, origin: str, keys: Mapping[str, PublicKey]
                     ) -> tuple[int, bytes, str]:
    """``(size, root, keyid)`` of a checkpoint signed by any of ``keys``; _Fail otherwise."""
    errors = []
    for keyid, key in keys.items():
        try:
            size, root = parse_and_verify_checkpoint(note, origin, key)
        except DsarError as err:
            errors.append(err.problem)
            continue
        return size, root, keyid
    raise _Fail(errors[-1] if errors else "no key to verify the checkpoint with")


class _Verifier:
    def __init__(self, bundle: dict[str, Any], keys: Mapping[str, PublicKey],
                 result: Verification) -> None:
        self.bundle, self.keys, self.result = bundle, keys, result
        self.led: dict[str, Any] = bundle["ledger"]
        self.payload = b""
        self.statement: dict[str, Any] = {}
        self.predicate: dict[str, Any] = {}

    def signature(self) -> str:
        with contextlib.suppress(binascii.Error, ValueError, _Fail):  # reported below
            self.payload, self.statement = _unverified_statement(self.bundle["envelope"])
        statement = verify_statement(self.bundle["envelope"], self.keys)
        self.statement = statement
        keyid = self.bundle["envelope"]["signatures"][0].get("keyid", "?")
        algorithm = algorithm_of(self.keys[keyid]) if keyid in self.keys else "the"
        return f"{algorithm} signature by key {keyid[:16]}… verifies ({INTOTO_PAYLOAD_TYPE})"

    def canonical(self) -> str:
        _require(is_canonical(self.payload), "the payload is not RFC 8785 canonical JSON")
        return f"{len(self.payload)} bytes, canonical"

    def subject(self) -> str:
        st = self.statement
        predicate = st.get("predicate")
        _require(isinstance(predicate, dict), "the statement has no predicate object")
        self.predicate = predicate
        _require(st.get("predicateType") == PREDICATE_TYPE,
                 f"predicateType is {st.get('predicateType')!r}")
        subjects = st.get("subject")
        _require(isinstance(subjects, list) and len(subjects) == 1, "expected one subject")
        name = SUBJECT_PREFIX + self.bundle["request_id"]
        _require(subjects[0].get("name") == name,
                 f"subject is {subjects[0].get('name')!r}, the bundle is for {name!r}")
        _require(predicate.get("request", {}).get("id") == self.bundle["request_id"],
                 "the predicate is about another request")
        digest = predicate_digest(predicate)
        _require(subjects[0].get("digest", {}).get("sha256") == digest,
                 "the subject digest does not match the predicate")
        return f"{name}, sha256 {digest[:16]}…"

    def evidence_root(self) -> str:
        evidence = self.bundle["evidence"]
        signed = self.predicate.get("evidence", {})
        _require(evidence == order_evidence(evidence),
                 "evidence is not in leaf order (system, collection, action)")
        _require(len(evidence) == signed.get("leaves"),
                 f"the bundle has {len(evidence)} evidence leaves, the record signed "
                 f"{signed.get('leaves')}")
        got = evidence_root(evidence)
        _require(got == signed.get("merkle_root"),
                 f"root over the evidence is {got[:16]}…, the record signed "
                 f"{str(signed.get('merkle_root'))[:16]}…")
        return f"{len(evidence)} leaves, root {got[:16]}…"

    def evidence_summary(self) -> str:
        derived = {s["system"]: s["collections"] for s in summarize_evidence(
            self.bundle["evidence"])}
        signed = {s["system"]: s["collections"] for s in self.predicate.get("systems", [])
                  if s.get("collections")}
        _require(derived == signed, "the record's per-system outcomes differ from the evidence")
        return f"{len(signed)} system(s) match the evidence"

    def timeline(self) -> str:
        problems = timeline_problems(self.predicate)
        _require(not problems, "; ".join(problems))
        on_time = self.predicate["deadline"]["on_time"]
        return f"consistent; answered {'on time' if on_time else 'LATE'}"

    def deadline_rule(self) -> str:
        problems, detail = deadline_problems(self.predicate)
        _require(not problems, "; ".join(problems))
        return detail

    def checkpoint(self) -> str:
        size, _root, keyid = _open_checkpoint(self.led["checkpoint"], self.led["origin"],
                                               self.keys)
        _require(size == self.led["tree_size"],
                 f"checkpoint is for size {size}, the proof for {self.led['tree_size']}")
        return f"{self.led['origin']} size {size}, signed by key {keyid[:16]}…"

    def inclusion(self) -> str:
        size, root = _note_claim(self.led["checkpoint"])
        leaf = merkle.leaf_hash(canonical_json(self.bundle["envelope"]))
        proof = [_hex(h) for h in self.led["inclusion_proof"]]
        _require(size == self.led["tree_size"], "proof and checkpoint sizes differ")
        _require(merkle.verify_inclusion(self.led["index"], size, leaf, proof, root),
                 f"leaf {self.led['index']} is not in the checkpoint's tree of size {size}")
        return f"leaf {self.led['index']} of {size}"


def _trusted_keys(bundle: dict[str, Any], public_keys: Mapping[str, PublicKey] | None
                  ) -> tuple[dict[str, PublicKey], str]:
    if public_keys:
        return dict(public_keys), f"{len(public_keys)} key(s) given with --public-key"
    keys = load_public_pem(str(bundle.get("public_key_pem", "")), "the bundle's public_key_pem")
    return keys, ("the bundle's own key: proves integrity, not origin; pass --public-key "
                  "with the controller's published key to prove who signed")


def verify_bundle(bundle: Any, *, public_keys: Mapping[str, PublicKey] | None = None,
                  ledger: Any | None = None) -> Verification:
    """Run every check on ``bundle`` (parsed JSON); never raises for bad input.

    ``public_keys`` (keyid to key) is the trust anchor; without it the key embedded in the
    bundle is used, which proves integrity but not origin. ``ledger`` is a parsed ledger
    export (``dsar ledger export``); when given, the ledger checks run too.
    """
    result = Verification()
    if not result.add("bundle-format", lambda: _bundle_format(bundle)):
        return result
    keys: dict[str, PublicKey] = {}

    def anchor() -> str:
        nonlocal keys
        keys, detail = _trusted_keys(bundle, public_keys)
        return detail

    result.add("public-key", anchor)
    v = _Verifier(bundle, keys, result)
    result.add("signature", v.signature)
    if v.statement:
        result.add("canonical-form", v.canonical)
        if result.add("subject-digest", v.subject) or v.predicate:
            result.add("evidence-root", v.evidence_root)
            result.add("evidence-summary", v.evidence_summary)
            result.add("timeline", v.timeline)
            result.add("deadline-rule", v.deadline_rule)
    result.add("checkpoint-signature", v.checkpoint)
    result.add("inclusion", v.inclusion)
    if ledger is not None:
        _ledger_checks(result, bundle, ledger, keys)
    return result



def _ledger_checks(result: Verification, bundle: dict[str, Any], data: Any,
                   keys: Mapping[str, PublicKey]) -> None:
    """The chain checks against an exported ledger (``dsar ledger export``)."""
    origin = bundle["ledger"]["origin"]
    exported = ExportedLedger([], [], [])

    def entries() -> str:
        nonlocal exported
        exported = parse_export(data)
        return f"{len(exported.leaves)} entries, {len(exported.checkpoints)} checkpoint(s)"

    if not result.add("ledger-entries", entries):
        return
    hashes, latest = exported.hashes, (0, merkle.EMPTY_ROOT)

    def checkpoints() -> str:
        nonlocal latest
        previous: tuple[int, bytes] | None = None
        for claimed, note in exported.checkpoints:
            size, root, _keyid = _open_checkpoint(note, origin, keys)
            _require(size == claimed and size <= len(hashes),
                     f"checkpoint of size {size} does not fit a ledger of {len(hashes)}")
            _require(root == merkle.root_from_hashes(hashes[:size]),
                     f"checkpoint {size} does not match the ledger's entries (forked?)")
            if previous is not None:
                proof = merkle.consistency_proof_from_hashes(previous[0], hashes[:size])
                _require(merkle.verify_consistency(previous[0], size, previous[1], root, proof),
                         f"checkpoints {previous[0]} and {size} are not consistent")
            previous = latest = (size, root)
        return f"{len(exported.checkpoints)} checkpoint(s) verify and are consistent"

    def consistency() -> str:
        size, root = _note_claim(bundle["ledger"]["checkpoint"])
        _require(size <= len(hashes), f"the bundle's checkpoint (size {size}) is newer than "
                 f"the ledger file ({len(hashes)} entries); export the ledger again")
        _require(merkle.root_from_hashes(hashes[:size]) == root,
                 f"the bundle's checkpoint of size {size} is not this ledger's tree at that "
                 "size: it comes from another or a forked ledger")
        if latest[0] > size:
            proof = merkle.consistency_proof_from_hashes(size, hashes[:latest[0]])
            _require(merkle.verify_consistency(size, latest[0], root, latest[1], proof),
                     f"no consistency from size {size} to the ledger's checkpoint {latest[0]}")
        return f"size {size} is a prefix of the ledger (checkpoint {latest[0]})"

    def entry() -> str:
        index = bundle["ledger"]["index"]
        _require(index < len(exported.leaves), f"the ledger has no entry {index}")
        _require(exported.leaves[index] == canonical_json(bundle["envelope"]),
                 f"ledger entry {index} is a different record")
        return f"entry {index} is this record"

    result.add("ledger-checkpoints", checkpoints)
    result.add("ledger-consistency", consistency)
    result.add("ledger-entry", entry)
