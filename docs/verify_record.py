#!/usr/bin/env python3
"""Verify a dsar completion record bundle with nothing but Python and `cryptography`.

    python3 verify_record.py record.json key.pem

Keys may be Ed25519 or ECDSA P-256 (AWS KMS, or a P-256 key file), or a mix (a PEM bundle of
several keys, after a rotation).

Checks: the DSSE signature (Ed25519, or ECDSA P-256 SHA-256 with a DER signature, over the
PAE), that the statement's subject digest is the
SHA-256 of the predicate, the RFC 9162 Merkle root over the bundle's evidence, the checkpoint's
signature and the record's inclusion proof. Exits 1 if any check fails.

Not checked here: that the payload is RFC 8785 canonical JSON. The digests are recomputed with
`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, which writes the same
bytes as RFC 8785 for dsar records (ASCII keys, integers only, no floats). `dsar verify` checks
canonical form, the timeline and the exported ledger too.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)


def is_p256(key):
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def verify_with(key, sig, data):
    """Raise InvalidSignature unless ``sig`` over ``data`` verifies under ``key``."""
    if is_p256(key):
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    else:
        key.verify(sig, data)


def note_key_id(origin, key):
    """Signed-note key hash: type 0x01 over the raw Ed25519 key, 0x02 over a P-256 key's DER
    SubjectPublicKeyInfo."""
    if is_p256(key):
        tagged = b"\x02" + key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    else:
        tagged = b"\x01" + key.public_bytes_raw()
    return hashlib.sha256(origin.encode() + b"\n" + tagged).digest()[:4]


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(hashes):
    """RFC 9162 tree hash: pair neighbours, carry an odd last node up unchanged."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    while len(hashes) > 1:
        paired = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        hashes = paired + ([hashes[-1]] if len(hashes) % 2 else [])
    return hashes[0]


def root_from_proof(index, size, leaf, proof):
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (None if it cannot fit)."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def verify_checkpoint(note, origin, key):
    """Signed-note rules: find our key's signature line, verify it, return (size, root)."""
    body, _, signatures = note.rpartition("\n\n")
    body += "\n"
    key_id = note_key_id(origin, key)
    for line in signatures.strip("\n").split("\n"):
        name, blob = line.split(" ")[1:3]
        sig = base64.b64decode(blob)
        if name == origin and sig[:4] == key_id:
            verify_with(key, sig[4:], body.encode())  # raises InvalidSignature
            got_origin, size, root = body.rstrip("\n").split("\n")
            assert got_origin == origin, "checkpoint is for another log"
            return int(size), base64.b64decode(root)
    raise ValueError("no signature by this key on the checkpoint")


def main(bundle_path, key_path):
    with open(bundle_path, encoding="utf-8") as f:
        bundle = json.load(f)
    with open(key_path, encoding="ascii") as f:  # one key, or a bundle of several (rotation)
        blocks = f.read().split("-----BEGIN PUBLIC KEY-----")[1:]
    keys = [load_pem_public_key(("-----BEGIN PUBLIC KEY-----" + b).encode()) for b in blocks]
    if not keys or not all(isinstance(k, Ed25519PublicKey) or is_p256(k) for k in keys):
        print(f"{key_path}: need Ed25519 or ECDSA P-256 public keys (PEM), as `dsar keys "
              "export-public` writes them")
        return 2
    env, ledger, ok = bundle["envelope"], bundle["ledger"], True

    def check(name, run):
        nonlocal ok
        try:
            run()
            print(f"pass  {name}")
        except Exception as err:  # any failure is a failed check
            ok = False
            print(f"FAIL  {name}: {type(err).__name__} {err}")

    payload = base64.b64decode(env["payload"])
    ptype = env["payloadType"].encode()
    pae = b"DSSEv1 %d %b %d %b" % (len(ptype), ptype, len(payload), payload)

    def signature():
        sig = base64.b64decode(env["signatures"][0]["sig"])
        assert any_key(lambda key: verify_with(key, sig, pae)), "no key's signature verifies"

    def any_key(run):
        for key in keys:
            try:
                return run(key) or True
            except Exception:  # try the next key
                continue
        return False

    check("signature", signature)
    statement = json.loads(payload)
    predicate = statement["predicate"]

    def subject():
        want = hashlib.sha256(canonical(predicate)).hexdigest()
        assert statement["subject"][0]["digest"]["sha256"] == want, "digest differs"
        assert statement["subject"][0]["name"] == "dsar-request:" + bundle["request_id"]

    def evidence():
        root = merkle_root([leaf_hash(canonical(e)) for e in bundle["evidence"]])
        assert root.hex() == predicate["evidence"]["merkle_root"], "evidence root differs"

    checkpoint = {}

    def signed_checkpoint():
        def one(key):
            size, root = verify_checkpoint(ledger["checkpoint"], ledger["origin"], key)
            checkpoint.update(size=size, root=root)

        assert any_key(one), "no key's checkpoint signature verifies"

    def inclusion():
        leaf = leaf_hash(canonical(env))
        proof = [bytes.fromhex(h) for h in ledger["inclusion_proof"]]
        got = root_from_proof(ledger["index"], checkpoint["size"], leaf, proof)
        assert got == checkpoint["root"], "the record is not in the checkpoint's tree"

    check("subject-digest", subject)
    check("evidence-root", evidence)
    check("checkpoint-signature", signed_checkpoint)
    check("inclusion", inclusion)
    print("record verified" if ok else "verification FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: verify_record.py RECORD.json KEY.pem")
    sys.exit(main(sys.argv[1], sys.argv[2]))
