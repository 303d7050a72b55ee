"""Parquet shared files: find the subject's rows without reading what cannot match, rewrite.

A Parquet object is read through :class:`RangeFile`, a seekable file whose reads are ranged
GETs pinned to one version (``VersionId``, or ``IfMatch`` = the ETag first seen), so pyarrow
fetches only the footer and the column chunks it needs:

1. **row-group statistics**: a row group whose min/max of a key column exclude every value of
   the subject is skipped without reading it (exact-match columns: strings and integers; for
   ``email``, compared case-insensitively, a group is skipped only when its maximum sorts
   before the upper-case spelling, which sorts before every other spelling);
2. **column projection and push-down**: of the other row groups only the key columns are read,
   and Arrow compute picks the candidate rows (``is_in`` on the values; for ``email`` on
   ASCII-lower-cased values, plus every non-ASCII value, which Python then casefolds);
3. the :class:`~connectors.s3_records.Matcher` confirms each candidate on its values, as for
   every other format, so a hit is exact.

Hive-style partitions: a ``column=value`` segment of the object key is a column of every row
in the file (pyarrow's convention); a key column found there matches or excludes the whole
file without reading it.

How the bytes are fetched is a cost decision made from the footer (read with one suffix-range
GET): ranged reads of the key columns of the row groups that may match, or one streamed GET of
the whole object into a local temporary file, whichever moves fewer bytes when each request
is counted as ``range_size`` bytes of transfer (a GET's latency is worth megabytes of
throughput on S3). A file that has to be rewritten is always fetched whole, once.

Erasure writes a new file with the same Arrow schema and key-value metadata, the codec of the
original column chunks, Bloom filters on the columns that had them, and one row group per
original row group (minus the removed rows), so readers see the same layout. Each row group is
read once for the rewrite; the removed rows are taken from that same read. A row group without
a hit is still decoded and encoded again: pyarrow cannot copy a column chunk's pages as they
are.

Bloom filters: pyarrow writes them but cannot probe them, so :mod:`connectors.s3_bloom` reads
them (all of a file's key-column filters in one request, often inside the footer's bytes) and
a row group whose filters hold none of the subject's values is skipped like one excluded by
statistics. Only for exact-match keys: ``email`` compares case-insensitively and a filter
holds exact bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from connectors.s3_bloom import PROBED_TYPES, might_contain, parse, plain_encoding
from connectors.s3_parquet_file import NotParquet, RangeFile, read_footer
from connectors.s3_records import Matcher, Segment

BLOOM_SPAN = 8 << 20  # most bytes one request may read to get every key column's Bloom filter


def partitions(key: str) -> dict[str, str]:
    """Hive-style ``column=value`` segments of an object key (values URL-decoded)."""
    found = {}
    for part in key.split("/")[:-1]:
        name, sep, value = part.partition("=")
        if sep and name:
            found[urllib.parse.unquote(name)] = urllib.parse.unquote(value)
    return found


def _column(table: pa.Table, path: tuple[str, ...]) -> Any:
    if path[0] not in table.column_names:
        return None
    array = table.column(path[0])
    for part in path[1:]:
        if not pa.types.is_struct(array.type) or array.type.get_field_index(part) < 0:
            return None
        array = pc.struct_field(array, part)
    return array


def _candidates(table: pa.Table, matcher: Matcher) -> Any:
    """A boolean mask: rows that may hold a subject's value (a superset of the matches)."""
    mask = None
    for path, name, values in matcher.rules:
        array = _column(table, path)
        if array is None:
            continue
        kind = array.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if name == "email":
                lowered = pa.array(sorted({v.lower() for v in values if v.isascii()}), kind)
                hit = pc.or_(pc.is_in(pc.utf8_lower(array), value_set=lowered),
                             pc.invert(pc.string_is_ascii(array)))
            else:
                hit = pc.is_in(array, value_set=pa.array(sorted(values), kind))
        elif pa.types.is_integer(kind):
            ints = sorted({int(v) for v in values if v.lstrip("-").isdigit()})
            hit = pc.is_in(array, value_set=pa.array(ints, pa.int64()).cast(kind, safe=False))
        elif pa.types.is_nested(kind) or pa.types.is_dictionary(kind):
            hit = pc.is_valid(array)  # lists, maps, dictionaries: confirm every row
        else:
            continue  # floats, booleans, dates never match (as in JSON)
        hit = pc.fill_null(hit, False)
        mask = hit if mask is None else pc.or_(mask, hit)
    return mask


def _may_match(stats: Any, name: str, values: frozenset[str]) -> bool:
    """False only if the row group's min/max prove no value of ``values`` is in it."""
    if stats is None or not stats.has_min_max:
        return True
    low, high = stats.min, stats.max
    if isinstance(low, bytes) or isinstance(high, bytes):
        return True
    if isinstance(low, str) and isinstance(high, str):
        if name == "email":
            return any(not v.isascii() or high >= v.upper() for v in values)
        return any(low <= v <= high for v in values)
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return any(v.lstrip("-").isdigit() and low <= int(v) <= high for v in values)
    return True


class ParquetScan:
    """The subject's rows in one Parquet object: ``matches()`` yields ``(row, record)``."""

    def __init__(
        self, source: IO[bytes] | Any, key: str, matcher: Matcher, metadata: Any = None,
        tail: tuple[int, bytes] = (0, b""),
    ) -> None:
        self.source = source
        self._tail = tail if tail[1] else (1 << 62, b"")  # (offset, bytes) of the object's end
        self._bloom_cache: dict[int, bytes | None] | None = None
        self.file = pq.ParquetFile(source, metadata=metadata, pre_buffer=True)
        self.meta = self.file.metadata
        self.matcher = matcher
        self.fixed = partitions(key)
        self.groups_skipped = 0
        self._rows: dict[int, list[int]] = {}
        self._local: Any = None

    def _key_columns(self) -> list[str]:
        names = self.file.schema_arrow.names
        return sorted({p[0] for p, _n, _v in self.matcher.rules if p[0] in names})

    def ranged_cost(self, request_bytes: int) -> int:
        """Bytes a ranged scan of the key columns would move, each GET counted as
        ``request_bytes`` more (0 when the footer alone decides)."""
        if self._whole_file() is not None:
            return 0
        tops = set(self._key_columns())
        cost = 0
        for index in range(self.meta.num_row_groups):
            if not self._group_may_match(index):
                continue
            group = self.meta.row_group(index)
            cost += request_bytes + sum(
                group.column(i).total_compressed_size for i in range(group.num_columns)
                if group.column(i).path_in_schema.split(".")[0] in tops)
        return cost

    def localise(self, chunk_size: int = 1 << 20) -> None:
        """Fetch the whole object into a temporary file with one GET and read from there."""
        if self._local is not None or not isinstance(self.source, RangeFile):
            return
        self._local = tempfile.NamedTemporaryFile(prefix="dsar-parquet-")  # noqa: SIM115
        self.source.download(self._local, chunk_size)
        self.file = pq.ParquetFile(pa.OSFile(self._local.name), metadata=self.meta)

    def close(self) -> None:
        """Remove the local copy, if any."""
        if self._local is not None:
            self._local.close()
            self._local = None

    def _group_may_match(self, index: int) -> bool:
        """False only if statistics or Bloom filters prove no rule can match in the group."""
        group = self.meta.row_group(index)
        paths = {self.meta.schema.column(i).path: i for i in range(self.meta.num_columns)}
        for path, name, values in self.matcher.rules:
            dotted = ".".join(path)
            column = paths.get(dotted)
            if column is None:
                if any(p.startswith(dotted + ".") for p in paths):
                    return True  # a list, map or struct: no statistics to decide by
                continue
            if not _may_match(group.column(column).statistics, name, values):
                continue
            if name != "email" and not self._bloom_may_match(group.column(column), values):
                continue  # a filter holds exact bytes; email compares case-insensitively
            return True
        return False

    def _bloom_may_match(self, chunk: Any, values: frozenset[str]) -> bool:
        """False only if the chunk's Bloom filter holds none of ``values``."""
        offset = getattr(chunk, "bloom_filter_offset", None)
        length = getattr(chunk, "bloom_filter_length", None)
        if not offset or offset < 0 or not length or chunk.physical_type not in PROBED_TYPES:
            return True
        bitset = self._blooms().get(offset)
        if bitset is None:
            return True
        return any(
            encoded is not None and might_contain(bitset, encoded)
            for encoded in (plain_encoding(v, chunk.physical_type) for v in values))

    def _blooms(self) -> dict[int, bytes | None]:
        """Every Bloom filter of the key columns, by offset, read at most once with one
        request (Parquet writers put them together before the footer); empty when they are
        spread over more than :data:`BLOOM_SPAN` bytes outside what is already here."""
        if self._bloom_cache is not None:
            return self._bloom_cache
        wanted = {(c.bloom_filter_offset, c.bloom_filter_length)
                  for c in self._key_chunks()
                  if getattr(c, "bloom_filter_offset", None) and c.bloom_filter_offset > 0
                  and c.bloom_filter_length}
        self._bloom_cache = {}
        if not wanted:
            return self._bloom_cache
        start = min(o for o, _n in wanted)
        end = max(o + n for o, n in wanted)
        tail_at, tail = self._tail
        if start >= tail_at:
            span = tail[start - tail_at : end - tail_at]
        elif self._local is not None or end - start <= BLOOM_SPAN:
            span = self._read_at(start, end - start)
        else:
            return self._bloom_cache
        for offset, n in wanted:
            self._bloom_cache[offset] = parse(span[offset - start : offset - start + n])
        return self._bloom_cache

    def _key_chunks(self) -> Iterator[Any]:
        tops = set(self._key_columns())
        for index in range(self.meta.num_row_groups):
            group = self.meta.row_group(index)
            for i in range(group.num_columns):
                if group.column(i).path_in_schema.split(".")[0] in tops:
                    yield group.column(i)

    def _read_at(self, offset: int, length: int) -> bytes:
        if self._local is not None:
            with open(self._local.name, "rb") as f:
                f.seek(offset)
                return f.read(length)
        self.source.seek(offset)
        data: bytes = self.source.read(length)
        return data

    def _whole_file(self) -> bool | None:
        """True/False when a partition column alone decides; None when rows must be read."""
        if not self.fixed:
            return None
        if self.matcher(dict(self.fixed)):
            return True
        in_file = set(self.file.schema_arrow.names)
        return False if all(p[0] in self.fixed and p[0] not in in_file
                            for p, _n, _v in self.matcher.rules) else None

    def matching_rows(self, index: int) -> list[int]:
        """Row numbers (within row group ``index``) of the subject's rows (computed once)."""
        if index not in self._rows:
            self._rows[index] = self._matching_rows(index)
        return self._rows[index]

    def _matching_rows(self, index: int) -> list[int]:
        whole = self._whole_file()
        if whole is not None:
            return list(range(self.meta.row_group(index).num_rows)) if whole else []
        if not self._group_may_match(index):
            self.groups_skipped += 1
            return []
        keys = self.file.read_row_group(index, columns=self._key_columns())
        mask = _candidates(keys, self.matcher)
        if mask is None:
            return []
        rows = pc.indices_nonzero(mask).to_pylist()
        if not rows:
            return []
        picked = keys.take(pa.array(rows)).to_pylist()
        return [row for row, record in zip(rows, picked, strict=True) if self.matcher(record)]

    def matches(self) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """``(row group, row number in the file, record)`` of each subject's row; partition
        columns of the key are in the record, as pyarrow's dataset reader shows them."""
        offset = 0
        for index in range(self.meta.num_row_groups):
            rows = self.matching_rows(index)
            if rows:
                table = self.file.read_row_group(index).take(pa.array(rows))
                for row, record in zip(rows, table.to_pylist(), strict=True):
                    yield index, offset + row, {**self.fixed, **record}
            offset += self.meta.row_group(index).num_rows

    def count(self) -> int:
        return sum(len(self.matching_rows(i)) for i in range(self.meta.num_row_groups))

    def rewrite(
        self, out: IO[bytes], records: list[tuple[int, dict[str, Any]]] | None = None
    ) -> list[int]:
        """Write the file without the subject's rows to ``out``; the removed row numbers.
        With ``records``, each removed ``(row, record)`` is appended to it (from the same
        read of its row group)."""
        self.localise()
        schema = self.file.schema_arrow
        metadata = dict(self.meta.metadata or {})
        metadata.pop(b"ARROW:schema", None)
        removed: list[int] = []
        offset = 0
        version = self.meta.format_version
        blooms = self._bloom_filters()
        writer = pq.ParquetWriter(
            out, schema.with_metadata(metadata), compression=self._codecs(),
            version=version if version in ("1.0", "2.4", "2.6") else "2.6",
            **({"bloom_filter_options": blooms} if blooms else {}),
        )
        try:
            for index in range(self.meta.num_row_groups):
                rows = self.matching_rows(index)
                table = self.file.read_row_group(index)
                if rows:
                    removed.extend(offset + r for r in rows)
                    if records is not None:
                        picked = table.take(pa.array(rows)).to_pylist()
                        records.extend((offset + r, {**self.fixed, **record})
                                       for r, record in zip(rows, picked, strict=True))
                    table = table.filter(pc.invert(_mask(table.num_rows, rows)))
                offset += self.meta.row_group(index).num_rows
                if table.num_rows:
                    writer.write_table(table, row_group_size=max(table.num_rows, 1))
        finally:
            writer.close()
        return removed

    def _codecs(self) -> Any:
        """Each column's codec, as the first row group has it."""
        codecs = {}
        if self.meta.num_row_groups:
            first = self.meta.row_group(0)
            for i in range(first.num_columns):
                column = first.column(i)
                codec = column.compression.lower()
                codecs[column.path_in_schema] = "none" if codec == "uncompressed" else codec
        return codecs or "snappy"

    def _bloom_filters(self) -> dict[str, dict[str, int]]:
        """Bloom filter options for the columns whose chunks had one (sized for the rows)."""
        paths: dict[str, int] = {}
        for index in range(self.meta.num_row_groups):
            group = self.meta.row_group(index)
            for i in range(group.num_columns):
                column = group.column(i)
                offset = getattr(column, "bloom_filter_offset", None)  # pyarrow < 22: none
                if offset is not None and offset >= 0:
                    paths[column.path_in_schema] = max(paths.get(column.path_in_schema, 0),
                                                       group.num_rows)
        return {path: {"ndv": max(rows, 1)} for path, rows in paths.items()}


def _mask(length: int, rows: list[int]) -> pa.Array:
    flags = [False] * length
    for row in rows:
        flags[row] = True
    return pa.array(flags, pa.bool_())


def open_parquet(
    client: Any, bucket: str, key: str, version_id: str | None, matcher: Matcher, *,
    request_bytes: int = 8 << 20,
) -> tuple[dict[str, Any], ParquetScan] | None:
    """``(head of the version, scan)``, or None if the object has gone. The scan reads ranges
    of the key columns, or the whole object once when that moves fewer bytes (each request
    counted as ``request_bytes``); the caller closes it."""
    try:
        source = RangeFile(client, bucket, key, version_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
    try:
        metadata, tail = read_footer(source)
        scan = ParquetScan(source, key, matcher, metadata=metadata, tail=tail)
    except (pa.ArrowInvalid, OSError) as exc:
        raise NotParquet(str(exc)) from None
    if scan.ranged_cost(request_bytes) > source.size:
        scan.localise()
    return source.head, scan


def parquet_segments(scan: ParquetScan) -> Iterator[Segment]:
    """The subject's rows as segments: ``raw`` is the row as canonical JSON, ``line`` its
    1-based row number in the file."""
    try:
        for _group, row, record in scan.matches():
            plain = jsonable(record)
            raw = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            yield b"", raw.encode() + b"\n", row + 1, plain
    finally:
        scan.close()


def jsonable(value: Any) -> Any:
    """A Parquet value as JSON: dates and times in ISO 8601, decimals as text, bytes base64."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value
