"""The two signature algorithms records and checkpoints may carry, chosen by the key.

* **Ed25519** (the default: the on-disk keyring and a mounted key file), signature 64 bytes.
* **ECDSA P-256 with SHA-256** (what AWS KMS signs with: key spec ``ECC_NIST_P256``, algorithm
  ``ECDSA_SHA_256``; a mounted P-256 PEM key works too), signature ASN.1 DER.

A record does not name its algorithm beside the signature: the DSSE signature names its key
(``keyid``) and the public key's type decides how it is checked, as in every DSSE verifier. A
key id is the hex SHA-256 of the raw 32-byte key for Ed25519, and of the DER
SubjectPublicKeyInfo for P-256, so the two can never collide. Other key types (RSA, other
curves) are refused wherever a key is loaded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "ED25519",
    "P256",
    "LocalSigner",
    "PublicKey",
    "Signer",
    "algorithm_of",
    "is_supported",
    "keyid_of",
    "verify",
]

PublicKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
"""A verification key: Ed25519, or ECDSA on NIST P-256 (see :func:`is_supported`)."""

ED25519 = "Ed25519"
P256 = "ECDSA P-256 SHA-256"


def is_supported(key: object) -> bool:
    """True for an Ed25519 public key or an EC public key on P-256."""
    if isinstance(key, Ed25519PublicKey):
        return True
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def algorithm_of(key: PublicKey) -> str:
    """:data:`ED25519` or :data:`P256`, the name written in reports and exported key files."""
    return ED25519 if isinstance(key, Ed25519PublicKey) else P256


def keyid_of(key: PublicKey) -> str:
    """Hex SHA-256 of the raw Ed25519 key, or of the DER SubjectPublicKeyInfo of a P-256 key."""
    if isinstance(key, Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    else:
        raw = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(raw).hexdigest()


def verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` over ``message`` verifies under ``key`` (never raises for a bad
    signature: a malformed DER ECDSA signature is simply not valid)."""
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


class Signer(Protocol):
    """Anything that signs records: a local key, or a key that never leaves AWS KMS."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, data: bytes) -> bytes:
        """The signature over ``data`` (the algorithm is the public key's)."""
        ...


@dataclass(frozen=True)
class LocalSigner:
    """A private key held in this process (the keyring, a mounted file or an env variable)."""

    keyid: str
    private_key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    public_key: PublicKey

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> LocalSigner:
        public = private_key.public_key()
        return cls(keyid=keyid_of(public), private_key=private_key, public_key=public)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private_key, Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
