"""One S3 object version as a seekable, read-only file, and its Parquet footer.

:class:`RangeFile` turns every read into a ranged GET pinned to one version (``VersionId``, or
``IfMatch`` = the ETag first seen), so pyarrow fetches only the bytes it asks for, and a writer
replacing the object midway makes the read fail (412) instead of mixing two versions.
:func:`read_footer` gets a Parquet file's metadata with one suffix-range GET.
"""

from __future__ import annotations

import io
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

FOOTER_GUESS = 1 << 20  # bytes of the object's end read for its footer in one request


class RangeFile(io.RawIOBase):
    """A read-only, seekable view of one S3 object version; every read is one ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str, version_id: str | None) -> None:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id and version_id != "null":
            params["VersionId"] = version_id
        self.head = client.head_object(**params)
        if "VersionId" not in params:
            params["IfMatch"] = self.head["ETag"]
        self.client, self.params = client, params
        self.size = int(self.head["ContentLength"])
        self.pos = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        body = self.client.get_object(**self.params, Range=f"bytes={self.pos}-{end - 1}")["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        self.pos += len(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def download(self, out: IO[bytes], chunk_size: int = 1 << 20) -> None:
        """The whole version, streamed into ``out`` with one GET (pinned like every read)."""
        body = self.client.get_object(**self.params)["Body"]
        try:
            for chunk in body.iter_chunks(chunk_size):
                out.write(chunk)
                self.bytes_read += len(chunk)
        finally:
            body.close()
        out.flush()


def read_footer(source: RangeFile) -> tuple[Any, tuple[int, bytes]]:
    """The file's metadata from one suffix-range GET (two when the footer is over 1 MiB),
    and the bytes read from the end with their offset (Bloom filters are often there)."""
    if source.size < 12:
        raise NotParquet("too short for a Parquet file")
    source.seek(-min(source.size, FOOTER_GUESS), io.SEEK_END)
    tail = source.read()
    if tail[-4:] != b"PAR1":
        raise NotParquet("no Parquet footer (the file does not end with PAR1)")
    length = int.from_bytes(tail[-8:-4], "little") + 8
    if length > source.size - 4:
        raise NotParquet("the footer's length is larger than the file")
    if length > len(tail):
        source.seek(-length, io.SEEK_END)
        tail = source.read()
    try:
        return pq.read_metadata(pa.BufferReader(tail[-length:])), (source.size - len(tail), tail)
    except (pa.ArrowInvalid, OSError) as exc:
        raise NotParquet(str(exc)) from None


class NotParquet(ValueError):
    """The object is not a readable Parquet file."""
