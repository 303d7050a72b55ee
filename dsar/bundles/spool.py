"""One pass over the staged items into encrypted temporary storage, one per collection and object.

The bundle needs the data several times (a CSV per collection, all of it again in data.json,
previews and counts for the report) and the staged items may interleave collections. Rather
than asking staging to be read many times, the builder reads it once into this spool and reads
the spool as often as it needs. Rows stay in this process's memory while all collections
together hold at most :data:`MEMORY_ROWS` bytes of them; past that every collection's rows go
to temporary files, so memory does not grow with the subject's data. Whatever goes to disk
(spilled rows, objects) is encrypted under a random key that exists only in this process's
memory, so a crash leaves nothing readable behind; :meth:`Spool.close` removes it.

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
from dsar.bundles.values import column_types, dumps, encode, kind_of, merge_kind

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
    lines: list[bytes] = field(default_factory=list)  # rows in memory, until the spool spills
    rows_file: IO[bytes] | None = None  # encrypted segments, once it has
    row_count: int = 0
    row_bytes: int = 0
    columns: dict[str, None] = field(default_factory=dict)
    kinds: dict[str, str | None] = field(default_factory=dict)
    preview: list[dict[str, Any]] = field(default_factory=list)
    objects: list[SpooledObject] = field(default_factory=list)

    @property
    def types(self) -> dict[str, str]:
        return column_types(self.kinds)


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
            coll.lines = []
            if coll.rows_file is not None:
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

    def add_searched(self, searched: Iterable[tuple[str, str]]) -> None:
        """List each ``(system, collection)`` that was searched, with no rows if none came."""
        for system, collection in searched:
            self._collection(system, collection)

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
        coll = self.collections.get(key)
        if coll is None:
            coll = self.collections[key] = SpooledCollection(system, collection)
        return coll

    def _spill(self) -> None:
        """Move every collection's rows from memory to encrypted temporary files; rows added
        from now on go straight to files."""
        self._spilled = True
        for coll in self.collections.values():
            if coll.lines:
                segment = self._segment(coll)
                for line in coll.lines:
                    segment.write(line)
                segment.close()
                coll.lines = []

    def _segment(self, coll: SpooledCollection) -> _SegmentWriter:
        if coll.rows_file is None:
            coll.rows_file = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
                prefix="dsar-spool-", dir=self._parent)
        return _SegmentWriter(coll.rows_file, self._key)

    def _add_rows(self, coll: SpooledCollection, rows: Iterable[Mapping[str, Any]]) -> None:
        segment = None
        columns, kinds, preview = coll.columns, coll.kinds, coll.preview
        for row in rows:
            encoded = {}
            for column, value in row.items():
                name = str(column)
                encoded[name] = encode(value)
                if name not in columns:
                    columns[name] = None
                kind = kind_of(value)
                if kind is not None or name not in kinds:
                    kinds[name] = merge_kind(kinds.get(name), kind)
            if len(preview) < self._preview_rows:
                preview.append(encoded)
            line = (dumps(encoded) + "\n").encode()
            coll.row_count += 1
            coll.row_bytes += len(line)
            if not self._spilled:
                coll.lines.append(line)
                self._in_memory += len(line)
                if self._in_memory > MEMORY_ROWS:
                    self._spill()
            else:
                if segment is None:
                    segment = self._segment(coll)
                segment.write(line)
        if segment is not None:
            segment.close()

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
        if coll.rows_file is None:
            yield from coll.lines
            return
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


class _SegmentWriter:
    """Appends one segment to a spool file: ``length:u64 | encrypted JSON lines``."""

    def __init__(self, handle: IO[bytes], key: bytes) -> None:
        handle.seek(0, os.SEEK_END)
        self._handle, self._start = handle, handle.tell()
        handle.write(SEGMENT.pack(0))
        self._enc = StreamEncryptor(key)
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        self._size += len(line)
        if self._size >= WRITE_BLOCK:
            self._handle.write(self._enc.update(b"".join(self._pending)))
            self._pending, self._size = [], 0

    def close(self) -> None:
        handle = self._handle
        handle.write(self._enc.update(b"".join(self._pending)) + self._enc.finalize())
        end = handle.tell()
        handle.seek(self._start)
        handle.write(SEGMENT.pack(end - self._start - SEGMENT.size))
        handle.seek(end)
