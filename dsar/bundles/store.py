"""Where bundles are kept: the :class:`BundleStore` contract, the local folder store, and
:func:`open_store` which picks a store from a URL.

A store holds opaque blobs under flat names (``<bundle id>.zip.dsar`` and its sidecar
``<bundle id>.json``). Writes are all-or-nothing: a reader never sees half a blob under its
final name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

from dsar.bundles.errors import BundleMissing
from dsar.errors import InvalidInput

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_name(name: str) -> str:
    """Blob names are flat and plain: letters, digits, ``.``, ``_``, ``-``; no leading dot."""
    if not name or name.startswith(".") or not set(name) <= NAME_CHARS or len(name) > 200:
        raise InvalidInput(f"{name!r} is not a valid bundle blob name",
                           "use letters, digits, '.', '_' and '-' only")
    return name


@runtime_checkable
class BundleStore(Protocol):
    """What the bundle builder, downloads and retention need from a place to keep bundles."""

    location: str
    server_side_encrypted: bool
    """True when the store itself encrypts what it keeps (S3 with SSE)."""

    def write_stream(self, name: str, chunks: Iterable[bytes], *, durable: bool = True) -> int:
        """Store the concatenated chunks under ``name`` atomically; return the byte count.
        ``durable=False``: the blob need not survive a crash of the machine (a marker whose
        loss is harmless), so the store may skip forcing it to disk."""

    def open_stream(self, name: str) -> Iterator[bytes]:
        """The blob's bytes in pieces; raises :class:`BundleMissing` if there is none."""

    def delete(self, name: str) -> None:
        """Remove ``name``; no error if it is already gone."""

    def exists(self, name: str) -> bool: ...

    def names(self, suffix: str = "") -> Iterator[str]:
        """Every blob name ending in ``suffix``."""

    def url_for(self, name: str) -> str:
        """Where the blob is, as a URL, for the evidence."""


class LocalBundleStore:
    """Bundles in a local folder (created with mode 0700; files are 0600)."""

    def __init__(self, root: str | os.PathLike[str], block: int = 1024 * 1024) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.location = self.root.as_uri()
        self.server_side_encrypted = False
        self._block = block

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def write_stream(self, name: str, chunks: Iterable[bytes], *, durable: bool = True) -> int:
        final = self._path(name)
        part = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        size = 0
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return size

    def open_stream(self, name: str) -> Iterator[bytes]:
        path = self._path(name)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise BundleMissing(f"bundle file {name} is not in {self.location}",
                                "it was deleted after expiry; ask for a new bundle") from None
        return _read_all(handle, self._block)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def names(self, suffix: str = "") -> Iterator[str]:
        for path in sorted(self.root.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name.endswith(suffix):
                yield path.name

    def url_for(self, name: str) -> str:
        return self._path(name).as_uri()


def _read_all(handle: Any, block: int) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(block):
            yield chunk


def open_store(url: str, **opts: Any) -> BundleStore:
    """A store from a URL: ``file:///path``, a plain path, or ``s3://bucket/prefix``.

    S3 options: ``endpoint_url``, ``region_name``, ``sse`` (``"AES256"``, the default, or
    ``"aws:kms"``), ``kms_key_id``, ``client`` (a ready boto3 client).
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from dsar.bundles.s3store import S3BundleStore

        if not parsed.netloc:
            raise InvalidInput(f"{url!r} names no bucket", "write s3://bucket/prefix")
        return S3BundleStore(parsed.netloc, parsed.path.lstrip("/"), **opts)
    if parsed.scheme == "file":
        if parsed.netloc not in {"", "localhost"}:
            raise InvalidInput(f"{url!r} names a remote host", "write file:///absolute/path")
        return LocalBundleStore(unquote(parsed.path), **opts)
    if not parsed.scheme:
        return LocalBundleStore(url, **opts)
    raise InvalidInput(f"bundle destination {url!r} has an unsupported scheme",
                       "use a folder path, file:///path or s3://bucket/prefix")
