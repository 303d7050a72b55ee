"""What an erasure pass has already checked, so that its recount reads only what changed.

The recount after an erasure shows that no version under the prefix still holds a matching
record. It need not read a version again whose content this pass has already checked:

- a version the pass read and found nothing in;
- a version the pass wrote, after counting the matching records in exactly the bytes it
  uploaded (:func:`count_written`, which must find none; S3 checks the upload against the
  checksum botocore sends with it).

A version is known by ``(key, version id, ETag)``: a version id never changes content, and
in a bucket without versioning a new write of the object gets a new ETag (an ETag is the MD5
of the content, of its parts, or with SSE-KMS a value of its own per write). A listing entry
with any other identity, a writer's newer object say, is read again as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from connectors.s3_client import Bucket, Version
from connectors.s3_records import Matcher
from connectors.s3_records import decoded_chunks as _decoded
from connectors.s3_scan import record_segments
from dsar.datamap.schema import S3SharedSpec


class Verified:
    """Versions this pass has checked hold no record of its subjects."""

    def __init__(self) -> None:
        self._ids: set[tuple[str, str, str]] = set()
        self.reused = 0  # versions the recount did not read again

    def add(self, key: str, response: Mapping[str, Any]) -> None:
        """Remember the version a GET, HEAD or PUT ``response`` names (if it names one)."""
        if response.get("ETag"):
            self._ids.add((key, response.get("VersionId") or "null", response["ETag"]))

    def holds(self, v: Version) -> bool:
        """True if ``v`` is a version this pass checked (and counts it as reused)."""
        known = bool(v.etag) and (v.key, v.version_id, v.etag) in self._ids
        self.reused += known
        return known


def count_written(b: Bucket, spec: S3SharedSpec, key: str, spool: IO[bytes],
                  matcher: Matcher) -> int:
    """Records ``matcher`` accepts in ``spool``: the bytes about to replace object ``key``,
    read back from the start, as a reader of the object would read them."""
    spool.seek(0)
    if spec.format == "parquet":
        from connectors.s3_parquet import ParquetScan

        scan = ParquetScan(spool, key, matcher)
        try:
            return scan.count()
        finally:
            scan.close()
            spool.seek(0)
    s = b.settings
    chunks = iter(lambda: spool.read(s.chunk_size), b"")
    try:
        _gzip, plain = _decoded(chunks, spec.compression, s.chunk_size)
        segments = record_segments(plain, spec.format, matcher, s.prefilter)
        return sum(1 for seg in segments if seg[3] is not None and matcher(seg[3]))
    finally:
        spool.seek(0)
