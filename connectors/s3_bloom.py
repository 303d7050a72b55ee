"""Parquet Bloom filters: prove that a column chunk holds none of a subject's values.

pyarrow writes Bloom filters (``bloom_filter_options``) and reports where each column chunk's
filter is (``bloom_filter_offset``/``bloom_filter_length``), but has no API to probe one, so
this module reads them as the Parquet format specifies (``BloomFilter.md``): a Thrift
compact-protocol ``BloomFilterHeader`` followed by a split-block Bloom filter (SBBF) of
32-byte blocks, probed with the 64-bit xxHash (seed 0) of the value's plain encoding (a
string's UTF-8 bytes without a length prefix, an INT32/INT64 as 4/8 little-endian bytes).

A filter answers "maybe" or "certainly not"; only "certainly not" for *every* value lets a
caller skip a row group, so a filter that cannot be read or uses an algorithm, hash or
compression this module does not know answers "maybe" (``None`` from :func:`parse`).
"""

from __future__ import annotations

import xxhash

SALT = (0x47B6137B, 0x44974D91, 0x8824AD5B, 0xA2B7289D, 0x705495C7, 0x2DF1424B, 0x9EFC4947,
        0x5C6BFB31)
BLOCK = 32  # bytes: eight 32-bit words


def parse(data: bytes) -> bytes | None:
    """The bitset of one serialized filter (header + bitset), or None if it is not a plain
    split-block, xxHash, uncompressed filter of the length its header says."""
    try:
        fields, pos = _struct(data, 0)
    except (IndexError, ValueError):
        return None
    size = fields.get(1)
    # Unions: field 1 of each is the only kind the format defines so far.
    if not isinstance(size, int) or any(fields.get(f) != {1: {}} for f in (2, 3, 4)):
        return None
    bitset = data[pos : pos + size]
    if size <= 0 or size % BLOCK or len(bitset) != size:
        return None
    return bitset


def might_contain(bitset: bytes, value: bytes) -> bool:
    """False only if ``value`` (its plain encoding) was certainly never added."""
    h = xxhash.xxh64_intdigest(value, seed=0)
    base = ((h >> 32) * (len(bitset) // BLOCK) >> 32) * BLOCK
    key = h & 0xFFFFFFFF
    for i, salt in enumerate(SALT):
        word = int.from_bytes(bitset[base + 4 * i : base + 4 * i + 4], "little")
        if not word >> (((key * salt) & 0xFFFFFFFF) >> 27) & 1:
            return False
    return True


PROBED_TYPES = frozenset({"BYTE_ARRAY", "INT32", "INT64"})


def plain_encoding(value: str, physical_type: str) -> bytes | None:
    """How a key value is hashed in a column of ``physical_type`` (one of
    :data:`PROBED_TYPES`); None if it cannot be stored there (a non-integer, or an integer
    too wide, in an integer column). Integers outside the signed range but inside the
    unsigned one are encoded as their unsigned bits (``UINT_32``/``UINT_64`` columns)."""
    if physical_type == "BYTE_ARRAY":
        return value.encode("utf-8")
    bits = 32 if physical_type == "INT32" else 64
    text = value[1:] if value.startswith("-") else value
    if not text.isdigit() or not text.isascii():
        return None
    number = int(value)
    if not -(1 << (bits - 1)) <= number < (1 << bits):
        return None
    return (number & ((1 << bits) - 1)).to_bytes(bits // 8, "little")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _struct(data: bytes, pos: int) -> tuple[dict[int, object], int]:
    """One compact-protocol struct: ``{field id: value}`` for i32 and struct fields (other
    field types are skipped), and the position after its stop byte."""
    fields: dict[int, object] = {}
    last = 0
    while True:
        head = data[pos]
        pos += 1
        if head == 0:
            return fields, pos
        kind, delta = head & 0x0F, head >> 4
        if delta:
            field = last + delta
        else:
            zigzag, pos = _varint(data, pos)
            field = (zigzag >> 1) ^ -(zigzag & 1)
        last = field
        if kind in (1, 2):  # booleans carry their value in the type
            continue
        if kind in (3,):
            pos += 1
        elif kind in (4, 5, 6):
            zigzag, pos = _varint(data, pos)
            if kind == 5:
                fields[field] = (zigzag >> 1) ^ -(zigzag & 1)
        elif kind == 7:
            pos += 8
        elif kind == 8:
            length, pos = _varint(data, pos)
            pos += length
        elif kind == 12:
            fields[field], pos = _struct(data, pos)
        else:
            raise ValueError(f"compact type {kind} not expected in a Bloom filter header")
