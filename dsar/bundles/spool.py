"""One pass over the staged items into encrypted temporary storage, one per collection and object.

The bundle needs the data several times (a CSV per collection, all of it again in data.json,
previews and counts for the report) and the staged items may interleave collections. Rather
than asking staging to be read many times, the builder reads it once into this spool and reads
the spool as often as it needs. Everything spooled is encrypted under a random key that exists
only in this process's memory, so a crash leaves nothing readable behind; :meth:`Spool.close`
removes it. Rows stay in memory while all collections together hold at most
:data:`MEMORY_ROWS` bytes; past that every collection's rows go to temporary files, so memory
does not grow with the subject's data. Objects always go to files (in a directory made on
first use).

Rows are stored as JSON lines already in their data.json form (:func:`dsar.bundles.values.encode`)
while the spool records each collection's columns (first-seen order), column types, row count
and first rows. Objects are stored whole, with their size, SHA-256 and CRC-32 (so the zip can
store them without compressing or buffering).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dsar.bundles.aead import EncryptedFileWriter, StreamEncryptor, decrypt_stream
from dsar.bundles.items import CollectedItem, RowsBatch, StagedObject
from dsar.bundles.names import UniqueNames, entry
from dsar.bundles.values import dumps, encode, kind_of, merge_kind

SEGMENT = struct.Struct(">Q")
WRITE_BLOCK = 256 * 1024
MEMORY_ROWS = 1024 * 1024
"""Bytes of spooled rows (all collections together) kept in memory before spilling to disk."""


@dataclass
class SpooledObject:
    name: str
    entry: str
    size: int
    sha256: str
    crc32: int
    metadata: dict[str, str]
    path: Path


@dataclass
class SpooledCollection:
    """What the spool knows about one ``(system, collection)``."""

    system: str
    collection: str
    rows_file: IO[bytes]
    row_count: int = 0
    row_bytes: int = 0
    columns: dict[str, None] = field(default_factory=dict)
    kinds: dict[str, str | None] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)
    objects: list[SpooledObject] = field(default_factory=list)

    @property
    def types(self) -> dict[str, str]:
        return {c: k for c, k in self.kinds.items() if k is not None}


class Spool:
    """Reads items once; then :meth:`rows` and :meth:`object_chunks` replay them at will."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, preview_rows: int = 20):
        self._parent = directory
        self._dir: Path | None = None
        self._key = os.urandom(32)
        self._preview_rows = preview_rows
        self._names = UniqueNames()
        self.collections: dict[tuple[str, str], SpooledCollection] = {}
        self._objects = 0
        self._in_memory = 0
        self._spilled = False

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop every spooled collection and delete every spool file. Safe to call twice."""
        for coll in self.collections.values():
            coll.rows_file.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _directory(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="dsar-spool-", dir=self._parent))
        return self._dir

    def add_all(self, items: Iterable[CollectedItem]) -> None:
        for item in items:
            self.add(item)

    def add(self, item: CollectedItem) -> None:
        coll = self._collection(item.system, item.collection)
        if isinstance(item, RowsBatch):
            self._add_rows(coll, item.rows)
        elif isinstance(item, StagedObject):
            self._add_object(coll, item)
        else:
            raise TypeError(f"expected RowsBatch or StagedObject, got {type(item).__name__}")

    def _collection(self, system: str, collection: str) -> SpooledCollection:
        key = (system, collection)
        if key not in self.collections:
            rows: IO[bytes]
            if self._spilled:
                rows = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                    prefix="dsar-spool-", dir=self._parent)
            else:
                rows = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close()
                    max_size=MEMORY_ROWS + 1, prefix="dsar-spool-", dir=self._parent)
            self.collections[key] = SpooledCollection(system, collection, rows)
        return self.collections[key]

    def _spill_if_over(self, added: int) -> None:
        """Move every collection's rows to disk once those in memory exceed the budget."""
        if self._spilled:
            return
        self._in_memory += added
        if self._in_memory > MEMORY_ROWS:
            for coll in self.collections.values():
                if isinstance(coll.rows_file, tempfile.SpooledTemporaryFile):
                    coll.rows_file.rollover()
            self._spilled = True

    def _add_rows(self, coll: SpooledCollection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append one segment: ``length:u64 | encrypted JSON lines``."""
        handle = coll.rows_file
        handle.seek(0, os.SEEK_END)
        start = handle.tell()
        handle.write(SEGMENT.pack(0))
        enc, pending, size = StreamEncryptor(self._key), [], 0
        for row in rows:
            encoded = {str(k): encode(v) for k, v in row.items()}
            for column, value in row.items():
                name = str(column)
                coll.columns.setdefault(name, None)
                coll.kinds[name] = merge_kind(coll.kinds.get(name), kind_of(value))
            if len(coll.preview) < self._preview_rows:
                coll.preview.append(encoded)
            line = (dumps(encoded) + "\n").encode()
            coll.row_count += 1
            coll.row_bytes += len(line)
            pending.append(line)
            size += len(line)
            if size >= WRITE_BLOCK:
                handle.write(enc.update(b"".join(pending)))
                pending, size = [], 0
        handle.write(enc.update(b"".join(pending)) + enc.finalize())
        end = handle.tell()
        handle.seek(start)
        handle.write(SEGMENT.pack(end - start - SEGMENT.size))
        self._spill_if_over(end - start)

    def _add_object(self, coll: SpooledCollection, item: StagedObject) -> None:
        path = self._directory() / f"object-{self._objects}.bin"
        self._objects += 1
        writer = EncryptedFileWriter(path, self._key)
        sha, crc = hashlib.sha256(), 0
        try:
            for chunk in item.chunks:
                sha.update(chunk)
                crc = zlib.crc32(chunk, crc)
                writer.write(chunk)
        finally:
            writer.close()
        name = self._names.claim(entry("files", coll.system, coll.collection, item.name))
        coll.objects.append(
            SpooledObject(
                name=item.name,
                entry=name,
                size=writer.plain_size,
                sha256=sha.hexdigest(),
                crc32=crc,
                metadata={str(k): str(v) for k, v in item.metadata.items()},
                path=path,
            )
        )

    def row_lines(self, coll: SpooledCollection) -> Iterator[bytes]:
        """The collection's rows as data.json lines (UTF-8 JSON objects ending in ``\\n``).

        Each reader keeps its own position, so several may be open on one collection."""
        handle, pos = coll.rows_file, 0
        while True:
            handle.seek(pos)
            header = handle.read(SEGMENT.size)
            if not header:
                return
            (length,) = SEGMENT.unpack(header)
            pos += SEGMENT.size
            tail = b""
            for block in decrypt_stream(_read_at(handle, pos, length), self._key):
                *lines, tail = (tail + block).split(b"\n")
                for line in lines:
                    yield line + b"\n"
            if tail:
                raise ValueError("spool segment ended inside a row")
            pos += length

    def object_chunks(self, obj: SpooledObject, block: int = 1024 * 1024) -> Iterator[bytes]:
        with open(obj.path, "rb") as handle:
            yield from decrypt_stream(iter(lambda: handle.read(block), b""), self._key)


def _read_at(handle: IO[bytes], pos: int, length: int,
             block: int = 1024 * 1024) -> Iterator[bytes]:
    """``length`` bytes of ``handle`` from ``pos``, seeking before every read."""
    while length > 0:
        handle.seek(pos)
        data = handle.read(min(block, length))
        if not data:
            raise ValueError("spool file is shorter than its segment header says")
        pos += len(data)
        length -= len(data)
        yield data
