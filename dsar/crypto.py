"""Keys and the two primitives that protect personal data at rest.

One master key (``DSAR_MASTER_KEY``, a mounted file named by ``DSAR_MASTER_KEY_FILE``, or a file
generated on first use in the data directory in the embedded default)
derives, through HKDF, a separate key per purpose, so a leaked lookup key reveals nothing
about the encryption key. :class:`FieldCipher` seals values with AES-256-GCM (random 96-bit
nonce, the purpose and an optional context bound as associated data); :meth:`Keys.lookup_hash`
is the HMAC-SHA256 stored beside an encrypted value so it can be found without decrypting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dsar.errors import DsarError, InvalidInput

_VERSION = b"\x01"


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"dsar-v1", info=purpose.encode()
    ).derive(master)


class FieldCipher:
    """AES-256-GCM for short values. Output: version byte, nonce, ciphertext with tag."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        """Decrypt; raises DsarError when the value was altered or the key is wrong."""
        if len(sealed) < 1 + 12 + 16 or sealed[:1] != _VERSION:  # version, nonce, tag
            raise DsarError("an encrypted value has an unknown format", "check DSAR_MASTER_KEY")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context)
        except InvalidTag:
            raise DsarError(
                "an encrypted value could not be decrypted (wrong key or altered data)",
                "make sure DSAR_MASTER_KEY is the key the data was written with",
            ) from None


@dataclass(frozen=True)
class Keys:
    """All keys derived from the master key."""

    master: bytes

    @classmethod
    def load(cls, master_key: str | None, data_dir: Path, key_file: Path | None = None) -> Keys:
        """From the setting, else from ``key_file`` (a mounted secret; never created), else
        from ``data_dir/master.key``, generating that file (mode 0600) if absent. A key file
        that other users can read is refused, as signing keys are."""
        if master_key:
            return cls(_decode_master(master_key, "DSAR_MASTER_KEY"))
        if key_file is not None:
            try:
                mode = key_file.stat().st_mode
                text = key_file.read_text().strip()
            except OSError:
                raise InvalidInput(f"DSAR_MASTER_KEY_FILE {key_file} does not exist or cannot "
                                   "be read", "mount the master key secret there, or correct "
                                   "the path") from None
            _refuse_shared(key_file, mode, " (Kubernetes: defaultMode: 0400)")
            return cls(_decode_master(text, str(key_file)))
        path = data_dir / "master.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        _refuse_shared(path, path.stat().st_mode)
        return cls(_decode_master(path.read_text().strip(), str(path)))

    @cached_property
    def identity_cipher(self) -> FieldCipher:
        return FieldCipher(_derive(self.master, "identity-encryption"))

    @cached_property
    def staging_cipher(self) -> FieldCipher:
        return FieldCipher(_derive(self.master, "staging-encryption"))

    @cached_property
    def bundle_key(self) -> bytes:
        return _derive(self.master, "bundle-encryption")

    @cached_property
    def link_key(self) -> bytes:
        return _derive(self.master, "download-links")

    @cached_property
    def evidence_key(self) -> bytes:
        """Keys the per-item hashes in evidence and the ``hash`` mask strategy."""
        return _derive(self.master, "evidence-hash")

    @cached_property
    def _lookup_key(self) -> bytes:
        return _derive(self.master, "identity-lookup")

    def lookup_hash(self, kind: str, value: str) -> str:
        """HMAC-SHA256 of a normalised identity, scoped by its kind, as hex."""
        msg = f"{kind}\x00{value}".encode()
        return hmac.new(self._lookup_key, msg, hashlib.sha256).hexdigest()


def _refuse_shared(path: Path, mode: int, hint: str = "") -> None:
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise InvalidInput(f"master key {path} can be read by other users",
                           f"run `chmod 600 {path}`{hint}")


def _decode_master(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(
            f"the master key in {where} is not base64 of 32 bytes",
            "generate one with: python -c \"import base64,os;print(base64.b64encode(os.urandom(32))"
            ".decode())\"",
        )
    return raw
