"""Streaming authenticated encryption: AES-256-GCM in fixed-size chunks.

Layout (all integers big-endian)::

    header   = b"DSARAE01" | chunk_size:u32 | salt:16 | nonce_prefix:8        (36 bytes)
    chunk_i  = AES-256-GCM(subkey, nonce = nonce_prefix | i:u32,
                           aad = header | final:u8, plaintext_i) -> ciphertext_i | tag:16

``subkey = HKDF-SHA256(key, salt, info=b"dsar bundle stream v1")`` so every stream has its own
key even under one caller key. Every chunk but the last holds exactly ``chunk_size`` plaintext
bytes and has ``final = 0``; the last holds 0..chunk_size bytes and ``final = 1``. Reordering
breaks the counter in the nonce, truncation at a chunk boundary leaves a last chunk sealed with
``final = 0``, appending leaves a chunk after the final one, and a changed header breaks every
chunk's AAD: each raises :class:`~dsar.bundles.errors.BundleCorrupted`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dsar.bundles.errors import BundleCorrupted

MAGIC = b"DSARAE01"
HEADER = struct.Struct(">8sI16s8s")
TAG = 16
DEFAULT_CHUNK = 256 * 1024
MAX_CHUNK = 16 * 1024 * 1024
INFO = b"dsar bundle stream v1"


def _subkey(key: bytes, salt: bytes) -> AESGCM:
    if len(key) != 32:
        raise ValueError("the bundle key must be 32 bytes (AES-256)")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO)
    return AESGCM(hkdf.derive(key))


def _nonce(prefix: bytes, counter: int) -> bytes:
    if counter >= 2**32:
        raise OverflowError("stream too long for its chunk size")
    return prefix + counter.to_bytes(4, "big")


class StreamEncryptor:
    """Feed plaintext with :meth:`update`, end with :meth:`finalize`; both return ciphertext."""

    def __init__(self, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> None:
        if not 0 < chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be in 1..{MAX_CHUNK}")
        salt, prefix = os.urandom(16), os.urandom(8)
        self.chunk_size = chunk_size
        self.header = HEADER.pack(MAGIC, chunk_size, salt, prefix)
        self._aead = _subkey(key, salt)
        self._prefix = prefix
        self._counter = 0
        self._buffer = bytearray()
        self._started = False

    def _seal(self, plaintext: bytes, final: bool) -> bytes:
        aad = self.header + (b"\x01" if final else b"\x00")
        out = self._aead.encrypt(_nonce(self._prefix, self._counter), plaintext, aad)
        self._counter += 1
        return out

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.header

    def update(self, data: bytes) -> bytes:
        out = [self._start()]
        self._buffer += data
        size = self.chunk_size
        if len(self._buffer) > size:
            view = memoryview(self._buffer)
            offset = 0
            while len(self._buffer) - offset > size:
                out.append(self._seal(bytes(view[offset : offset + size]), final=False))
                offset += size
            view.release()
            del self._buffer[:offset]
        return b"".join(out)

    def finalize(self) -> bytes:
        head = self._start()
        last = self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        return head + last


class StreamDecryptor:
    """Inverse of :class:`StreamEncryptor`. :meth:`finalize` must be called: it checks the end."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._buffer = bytearray()
        self._aead: AESGCM | None = None
        self._header = b""
        self._prefix = b""
        self._record = 0
        self._counter = 0

    def _corrupt(self, what: str) -> BundleCorrupted:
        return BundleCorrupted(
            f"the encrypted bundle failed its integrity check ({what}): it was changed, "
            "truncated, or the key is not the one it was made with",
            "do not use this copy; build the bundle again or restore it from a trusted copy",
        )

    def _read_header(self) -> bool:
        if len(self._buffer) < HEADER.size:
            return False
        magic, chunk_size, salt, prefix = HEADER.unpack_from(self._buffer)
        if magic != MAGIC or not 0 < chunk_size <= MAX_CHUNK:
            raise self._corrupt("unknown header")
        self._header = bytes(self._buffer[: HEADER.size])
        self._aead, self._prefix = _subkey(self._key, salt), prefix
        self._record = chunk_size + TAG
        del self._buffer[: HEADER.size]
        return True

    def _open(self, sealed: bytes, final: bool) -> bytes:
        assert self._aead is not None
        aad = self._header + (b"\x01" if final else b"\x00")
        try:
            out = self._aead.decrypt(_nonce(self._prefix, self._counter), sealed, aad)
        except InvalidTag:
            raise self._corrupt(f"chunk {self._counter}") from None
        self._counter += 1
        return out

    def update(self, data: bytes) -> bytes:
        self._buffer += data
        if self._aead is None and not self._read_header():
            return b""
        out = []
        offset, record = 0, self._record
        while len(self._buffer) - offset > record:  # keep the possibly-final record
            out.append(self._open(bytes(self._buffer[offset : offset + record]), final=False))
            offset += record
        del self._buffer[:offset]
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._aead is None:
            raise self._corrupt("no header: empty or truncated")
        if len(self._buffer) < TAG:
            raise self._corrupt("truncated: final chunk missing")
        out = self._open(bytes(self._buffer), final=True)
        self._buffer.clear()
        return out


def encrypt_stream(
    chunks: Iterable[bytes], key: bytes, chunk_size: int = DEFAULT_CHUNK
) -> Iterator[bytes]:
    """Ciphertext of the concatenated ``chunks``, lazily."""
    enc = StreamEncryptor(key, chunk_size)
    for chunk in chunks:
        out = enc.update(chunk)
        if out:
            yield out
    yield enc.finalize()


def decrypt_stream(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    """Plaintext of an :func:`encrypt_stream` output; raises BundleCorrupted on any change.

    Plaintext is released chunk by chunk as it authenticates, so a consumer may already have
    seen earlier chunks when a later one fails: treat the error as "discard everything".
    """
    dec = StreamDecryptor(key)
    for chunk in chunks:
        out = dec.update(chunk)
        if out:
            yield out
    last = dec.finalize()
    if last:
        yield last


class EncryptedFileWriter:
    """A write-only binary file whose bytes land encrypted on disk (for temporary spools)."""

    def __init__(self, path: Path, key: bytes, chunk_size: int = DEFAULT_CHUNK) -> None:
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._enc = StreamEncryptor(key, chunk_size)
        self.plain_size = 0

    def write(self, data: bytes) -> None:
        self.plain_size += len(data)
        self._file.write(self._enc.update(data))

    def close(self) -> None:
        if not self._file.closed:
            self._file.write(self._enc.finalize())
            self._file.close()

