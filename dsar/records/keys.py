"""The keyring: Ed25519 signing keys kept as files in one directory, and PEM key parsing.

Layout of a keyring directory (created ``0700``)::

    <keyid>.key   PKCS#8 PEM private key, unencrypted, mode 0600
    <keyid>.pub   SubjectPublicKeyInfo PEM public key
    active        the keyid of the key that signs new records, one line

``keyid`` is :func:`dsar.records.dsse.keyid_of`: hex SHA-256 of the raw 32-byte public key.
Exactly one key is active. :func:`rotate` makes a new key active and keeps the old ones as
*retired*: they never sign again but stay in :func:`public_keys`, so old records verify.

Loading refuses private key files that other users can read, and files whose name does not
match the key inside, with an error that names the fix.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from dsar.errors import InvalidInput, NotFound
from dsar.records.algorithms import LocalSigner, PublicKey, algorithm_of, is_supported, keyid_of

__all__ = [
    "Signer",
    "active_keyid",
    "active_signer",
    "export_public",
    "generate",
    "load_private_pem",
    "load_public_key_file",
    "load_public_pem",
    "public_keys",
    "rotate",
]

_ACTIVE = "active"
_KEYID = re.compile(r"[0-9a-f]{64}")
_PEM_BLOCK = re.compile(r"-----BEGIN PUBLIC KEY-----\r?\n.*?-----END PUBLIC KEY-----", re.DOTALL)


Signer = LocalSigner
"""The active signing key of a keyring: its keyid and both halves."""


def _public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never widened by umask beyond it) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_active(directory: Path, keyid: str) -> None:
    tmp = directory / f".{_ACTIVE}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    _write_new(tmp, f"{keyid}\n".encode("ascii"), 0o644)
    os.replace(tmp, directory / _ACTIVE)


def _new_key(directory: Path) -> str:
    key = Ed25519PrivateKey.generate()
    keyid = keyid_of(key.public_key())
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    _write_new(directory / f"{keyid}.key", private, 0o600)
    _write_new(directory / f"{keyid}.pub", _public_pem(key.public_key()), 0o644)
    return keyid


def _read_active(directory: Path) -> str | None:
    path = directory / _ACTIVE
    if not path.exists():
        return None
    keyid = path.read_text(encoding="ascii").strip()
    if not _KEYID.fullmatch(keyid):
        raise InvalidInput(
            f"{path} does not hold a key id",
            f"restore it from backup, or run `dsar keys rotate` to start a new key in {directory}",
        )
    return keyid


def generate(directory: Path | str) -> str:
    """Create the keyring in ``directory`` with one new active key; return its keyid.

    Raises :class:`~dsar.errors.InvalidInput` if the directory already has an active key.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _read_active(directory) is not None:
        raise InvalidInput(
            f"a signing key already exists in {directory}",
            "run `dsar keys rotate` to replace it; old keys are kept for verification",
        )
    keyid = _new_key(directory)
    _set_active(directory, keyid)
    return keyid


def rotate(directory: Path | str) -> str:
    """Make a new key active in ``directory``; the previous keys are retired, not deleted.

    Returns the new keyid. Raises :class:`~dsar.errors.NotFound` if there is no keyring yet.
    """
    directory = Path(directory)
    active_signer(directory)  # the current keyring must be sound before we add to it
    keyid = _new_key(directory)
    _set_active(directory, keyid)
    return keyid


def active_keyid(directory: Path | str) -> str:
    """The keyid of the active key in ``directory``; :class:`~dsar.errors.NotFound` if none."""
    directory = Path(directory)
    keyid = _read_active(directory) if directory.is_dir() else None
    if keyid is None:
        raise NotFound(f"no signing key in {directory}", "run `dsar keys generate`")
    return keyid


def active_signer(directory: Path | str) -> Signer:
    """Load the active signing key from ``directory``.

    Raises :class:`~dsar.errors.NotFound` if there is none, and
    :class:`~dsar.errors.InvalidInput` if its file is readable by others, unreadable, not an
    Ed25519 key, or not the key its name says.
    """
    directory = Path(directory)
    keyid = active_keyid(directory)
    path = directory / f"{keyid}.key"
    try:
        seen = path.stat()
    except FileNotFoundError:
        raise NotFound(
            f"the active signing key {path} is missing",
            f"restore it from backup, or run `dsar keys rotate` to start a new key in {directory}",
        ) from None
    if os.name == "posix" and stat.S_IMODE(seen.st_mode) & 0o077:
        raise InvalidInput(
            f"signing key {path} can be read by other users", f"run `chmod 600 {path}`"
        )
    version = (str(path), seen.st_ino, seen.st_mtime_ns, seen.st_size)
    cached = _SIGNERS.get(version)
    if cached is not None:  # the same file, unchanged, already checked
        return cached
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as err:
        raise InvalidInput(
            f"{path} is not a readable unencrypted PEM private key",
            "restore it from backup, or run `dsar keys rotate`",
        ) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 key", "run `dsar keys rotate`")
    if keyid_of(key.public_key()) != keyid:
        raise InvalidInput(
            f"{path} holds a different key than its name says",
            "restore the keyring from backup; do not rename key files",
        )
    signer = _SIGNERS[version] = LocalSigner.of(key)
    return signer


_SIGNERS: dict[tuple[str, int, int, int], Signer] = {}
# Signers already loaded, by key file and its inode, modification time and size: a worker signs
# every completion record with the active key, and parsing PEM each time is a waste. A rotated
# or replaced key file has another name or version, so it is loaded and checked afresh.


def public_keys(directory: Path | str) -> dict[str, PublicKey]:
    """Every key in the keyring, active and retired, by keyid.

    Raises :class:`~dsar.errors.NotFound` if there are none, and
    :class:`~dsar.errors.InvalidInput` if a ``.pub`` file is unreadable or misnamed.
    """
    directory = Path(directory)
    keys: dict[str, PublicKey] = {}
    paths = sorted(directory.glob("*.pub")) if directory.is_dir() else []
    for path in paths:
        loaded = load_public_key_file(path)
        if set(loaded) != {path.stem}:
            raise InvalidInput(
                f"{path} does not hold exactly the key its name says",
                "restore the keyring from backup; do not rename or merge key files",
            )
        keys.update(loaded)
    if not keys:
        raise NotFound(f"no signing key in {directory}", "run `dsar keys generate`")
    return keys


def export_public(directory: Path | str) -> str:
    """All public keys of the keyring as one PEM bundle, for offline verifiers.

    Each block is preceded by a comment line ``# keyid <hex> (active|retired)``; the
    comment is informational (RFC 7468 allows text between PEM blocks) and ignored by
    :func:`load_public_pem`, which recomputes keyids from the keys.
    """
    directory = Path(directory)
    return format_public(public_keys(directory), _read_active(directory))


def format_public(keys: dict[str, PublicKey], active: str | None) -> str:
    """``keys`` as one PEM bundle, each block after ``# keyid <hex> (active|retired)`` and,
    for a key that is not Ed25519, its algorithm (``, ECDSA P-256 SHA-256``)."""
    parts = []
    for keyid, key in sorted(keys.items()):
        status = "active" if keyid == active else "retired"
        if algorithm_of(key) != "Ed25519":
            status += f", {algorithm_of(key)}"
        parts.append(f"# keyid {keyid} ({status})\n{_public_pem(key).decode('ascii')}")
    return "".join(parts)


def load_public_pem(
    data: str | bytes, source: str = "the public key file"
) -> dict[str, PublicKey]:
    """Parse every ``PUBLIC KEY`` PEM block in ``data``; return the keys by keyid.

    Raises :class:`~dsar.errors.InvalidInput` if there are no blocks, a block is not
    valid, or a key is neither Ed25519 nor ECDSA P-256 (see :mod:`dsar.records.algorithms`).
    ``source`` names the input in error messages.
    """
    text = data.decode("ascii", errors="replace") if isinstance(data, bytes) else data
    blocks = _PEM_BLOCK.findall(text)
    fix = "export the keys with `dsar keys export-public` on the signing host"
    if not blocks:
        raise InvalidInput(f"{source} contains no PEM public key", fix)
    keys: dict[str, PublicKey] = {}
    for block in blocks:
        try:
            key = load_pem_public_key(block.encode("ascii"))
        except (ValueError, TypeError) as err:
            raise InvalidInput(f"{source} contains a malformed PEM public key", fix) from err
        if not is_supported(key):
            raise InvalidInput(f"{source} contains a key that is neither Ed25519 nor ECDSA "
                               "P-256", fix)
        keys[keyid_of(key)] = key  # type: ignore[arg-type]
    return keys


def load_public_key_file(path: Path | str) -> dict[str, PublicKey]:
    """Load a PEM public key file or bundle (as written by :func:`export_public`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise NotFound(f"public key file {path} does not exist", "check the path") from err
    return load_public_pem(data, source=str(path))


def load_private_pem(data: bytes, source: str) -> LocalSigner:
    """A signer from an unencrypted PEM private key (PKCS#8 or traditional): Ed25519 or
    ECDSA P-256. ``source`` names where it came from (a file, ``DSAR_SIGNING_KEY``) in the
    one-line error for anything else."""
    fix = (f"put an unencrypted Ed25519 PEM private key in {source} (e.g. the .key file "
           "`dsar keys generate` writes)")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{source} is not a readable unencrypted PEM private key",
                           fix) from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput(f"{source} is an EC key on {key.curve.name}, not P-256", fix)
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{source} is neither an Ed25519 nor an ECDSA P-256 key", fix)
    return LocalSigner.of(key)
