"""Which key signs completion records and checkpoints, from the settings; and its public keys.

Three sources, the first that is set wins:

1. ``DSAR_SIGNING_KMS_KEY_ID``: an AWS KMS key of spec ``ECC_NIST_P256`` signs (ECDSA P-256
   SHA-256); the private key never leaves KMS. Credentials, region and
   endpoint come from boto3's usual sources (``AWS_*`` variables, ``AWS_ENDPOINT_URL_KMS``); a
   region missing there is taken from the key's ARN.
2. ``DSAR_SIGNING_KEY_FILE``: a mounted PEM private key (Ed25519 or P-256), not readable by
   other users.
3. The keyring in ``DSAR_SIGNING_KEYS_DIR`` (:mod:`dsar.records.keys`), generated on first use
   only in the embedded default.

Nothing here needs the worker's data folder when 1 or 2 is set. Records stay verifiable
offline: ``dsar keys export-public`` writes the public key of whichever source signs (plus the
keyring's and ``DSAR_SIGNING_PUBLIC_KEYS_FILE``'s retired keys), and :mod:`dsar.records.verify`
checks either algorithm from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.serialization import load_der_public_key

from dsar.errors import DsarError, InvalidInput, NotFound
from dsar.records import keys
from dsar.records.algorithms import PublicKey, Signer, is_supported, keyid_of

if TYPE_CHECKING:
    from dsar.settings import Settings

__all__ = ["KmsSigner", "export_public", "load_signer", "public_ring"]

_KMS_ALGORITHM = "ECDSA_SHA_256"
_KMS_RAW_LIMIT = 4096


@dataclass(frozen=True)
class KmsSigner:
    """Signs through AWS KMS; holds only the key's id, its public half and a client."""

    key_id: str
    keyid: str
    public_key: PublicKey
    client: Any

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 SHA-256 over ``data``, DER, as KMS returns it. Up to KMS's 4096-byte
        limit the message itself is sent (``RAW``: checkpoints, most records); above it, its
        SHA-256 (``DIGEST``), which KMS signs identically. A KMS or network error is raised as
        boto3 raises it: the step is retried like any other transient failure."""
        if len(data) <= _KMS_RAW_LIMIT:
            message, kind = data, "RAW"
        else:
            message, kind = hashlib.sha256(data).digest(), "DIGEST"
        reply = self.client.sign(KeyId=self.key_id, Message=message, MessageType=kind,
                                 SigningAlgorithm=_KMS_ALGORITHM)
        return bytes(reply["Signature"])


_CACHE: dict[tuple[Any, ...], Signer] = {}
_LOCK = threading.Lock()
# Signers by source (and process: a boto3 client is not shared across fork): KMS's public key
# is fetched once per worker process, a key file parsed once per version of the file.


def load_signer(settings: Settings) -> Signer:
    """The signer the settings name (see the module docstring).

    Raises :class:`~dsar.errors.DsarError` (one line with the fix) when the source is
    unusable: a KMS key that cannot be reached or is not ``ECC_NIST_P256``, a key file that is
    missing, readable by others or not a supported key, or no keyring outside the embedded
    default.
    """
    if settings.signing_kms_key_id:
        return _kms_signer(settings.signing_kms_key_id)
    if settings.signing_key_file:
        return _file_signer(settings.signing_key_file)
    return _keyring_signer(settings)


def public_ring(settings: Settings) -> dict[str, PublicKey]:
    """Every public key that may have signed this controller's records, by keyid: the
    keyring's (if there is one), ``DSAR_SIGNING_PUBLIC_KEYS_FILE``'s and the signing source's.

    Raises :class:`~dsar.errors.NotFound` when there are none."""
    ring: dict[str, PublicKey] = {}
    with contextlib.suppress(NotFound):
        ring.update(keys.public_keys(settings.signing_keys_dir))
    if settings.signing_public_keys_file:
        ring.update(keys.load_public_key_file(settings.signing_public_keys_file))
    if settings.signing_kms_key_id or settings.signing_key_file:
        signer = load_signer(settings)
        ring[signer.keyid] = signer.public_key
    if not ring:
        raise NotFound(f"no signing key in {settings.signing_keys_dir}",
                       "run `dsar keys generate`, or set DSAR_SIGNING_KEY_FILE or "
                       "DSAR_SIGNING_KMS_KEY_ID")
    return ring


def export_public(settings: Settings) -> str:
    """The PEM bundle of :func:`public_ring`, the signing key marked active."""
    if settings.signing_kms_key_id or settings.signing_key_file:
        active: str | None = load_signer(settings).keyid
    else:
        active = keys.active_keyid(settings.signing_keys_dir)
    return keys.format_public(public_ring(settings), active)


def _keyring_signer(settings: Settings) -> Signer:
    directory = settings.signing_keys_dir
    try:
        return keys.active_signer(directory)
    except NotFound:
        if not settings.database_url.startswith("sqlite") or (directory / "active").exists():
            raise NotFound(
                f"no signing key in {directory} to sign completion records",
                "run `dsar keys generate` on this host, or give the workers a key: "
                "DSAR_SIGNING_KEYS_DIR, DSAR_SIGNING_KEY_FILE or DSAR_SIGNING_KMS_KEY_ID",
            ) from None
    with contextlib.suppress(InvalidInput):  # another process may have generated it first
        keys.generate(directory)
    return keys.active_signer(directory)


def _file_signer(path: Path) -> Signer:
    try:
        seen = path.stat()
    except OSError:
        raise NotFound(f"DSAR_SIGNING_KEY_FILE {path} does not exist or cannot be read",
                       "mount the signing key secret there, or correct the path") from None
    if os.name == "posix" and stat.S_IMODE(seen.st_mode) & 0o077:
        raise InvalidInput(f"signing key {path} can be read by other users",
                           f"run `chmod 600 {path}` (Kubernetes: defaultMode: 0400)")
    version = ("file", str(path), seen.st_ino, seen.st_mtime_ns, seen.st_size)
    with _LOCK:
        cached = _CACHE.get(version)
        if cached is None:
            try:
                data = path.read_bytes()
            except OSError:
                raise InvalidInput(f"signing key {path} cannot be read",
                                   "give the worker's user read access to it") from None
            cached = _CACHE[version] = keys.load_private_pem(data, str(path))
        return cached


def _kms_signer(key_id: str) -> KmsSigner:
    version = ("kms", key_id, os.getpid())
    with _LOCK:
        cached = _CACHE.get(version)
        if cached is None:
            cached = _CACHE[version] = _fetch_kms(key_id)
    assert isinstance(cached, KmsSigner)
    return cached


def _fetch_kms(key_id: str) -> KmsSigner:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = None
    if key_id.startswith("arn:") and not (os.environ.get("AWS_REGION")
                                          or os.environ.get("AWS_DEFAULT_REGION")):
        region = key_id.split(":")[3] or None
    try:
        client = boto3.client("kms", region_name=region)
        reply = client.get_public_key(KeyId=key_id)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "error")
        raise DsarError(f"AWS KMS refused to give the public key of {key_id} ({code})",
                        "check DSAR_SIGNING_KMS_KEY_ID and that the worker's role may call "
                        "kms:GetPublicKey and kms:Sign on it") from None
    except BotoCoreError as err:
        raise DsarError(f"AWS KMS cannot be reached for {key_id}: {err}",
                        "check AWS credentials, region and AWS_ENDPOINT_URL_KMS") from None
    spec = reply.get("KeySpec") or reply.get("CustomerMasterKeySpec")
    if spec != "ECC_NIST_P256" or _KMS_ALGORITHM not in reply.get("SigningAlgorithms", []):
        raise InvalidInput(f"AWS KMS key {key_id} is {spec}, not an ECC_NIST_P256 signing key",
                           "create it with --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY")
    public = load_der_public_key(bytes(reply["PublicKey"]))
    if not is_supported(public):
        raise InvalidInput(f"AWS KMS key {key_id} has a public key dsar cannot verify",
                           "use a key of spec ECC_NIST_P256")
    return KmsSigner(key_id=key_id, keyid=keyid_of(public),  # type: ignore[arg-type]
                     public_key=public, client=client)  # type: ignore[arg-type]

