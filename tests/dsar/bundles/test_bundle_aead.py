"""Streaming AES-256-GCM: round trips, and every kind of damage is detected."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.bundles.aead import HEADER, TAG, decrypt_stream, encrypt_stream
from dsar.bundles.errors import BundleCorrupted

KEY = bytes(range(32))
CHUNK = 64


def seal(data: bytes, key: bytes = KEY, pieces: int = 7) -> bytes:
    parts = [data[i : i + pieces] for i in range(0, len(data), pieces)] or [b""]
    return b"".join(encrypt_stream(parts, key, chunk_size=CHUNK))


def unseal(blob: bytes, key: bytes = KEY, pieces: int = 13) -> bytes:
    parts = [blob[i : i + pieces] for i in range(0, len(blob), pieces)]
    return b"".join(decrypt_stream(parts, key))


@given(data=st.binary(max_size=1000), pieces=st.integers(1, 300), read=st.integers(1, 300))
@settings(max_examples=150, deadline=None)
def test_bundle_aead_round_trip(data: bytes, pieces: int, read: int) -> None:
    assert unseal(seal(data, pieces=pieces), pieces=read) == data


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_bundle_aead_layout(size: int) -> None:
    blob = seal(os.urandom(size))
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER.size + size + chunks * TAG
    assert unseal(blob) != b"" or size == 0


def test_bundle_aead_random_nonces_and_salt() -> None:
    assert seal(b"same") != seal(b"same")


def _records(blob: bytes) -> tuple[bytes, list[bytes]]:
    head, body = blob[: HEADER.size], blob[HEADER.size :]
    size = CHUNK + TAG
    return head, [body[i : i + size] for i in range(0, len(body), size)]


DATA = bytes(range(256)) * 2  # with b"tail": 8 full chunks and a short final one


@pytest.mark.parametrize(
    "damage",
    [
        "flip_body", "flip_tag", "flip_header_salt", "flip_chunk_size", "truncate_mid",
        "truncate_boundary", "drop_last", "drop_middle", "swap", "append_copy", "append_byte",
        "empty", "header_only", "wrong_key",
    ],
)
def test_bundle_aead_damage_detected(damage: str) -> None:
    blob = seal(DATA + b"tail")
    head, recs = _records(blob)
    key = KEY
    match damage:
        case "flip_body":
            damaged = bytearray(blob)
            damaged[HEADER.size + 100] ^= 1
        case "flip_tag":
            damaged = bytearray(blob)
            damaged[-1] ^= 0x80
        case "flip_header_salt":
            damaged = bytearray(blob)
            damaged[14] ^= 1
        case "flip_chunk_size":
            damaged = bytearray(blob)
            damaged[11] = CHUNK // 2
        case "truncate_mid":
            damaged = blob[: len(blob) - 10]
        case "truncate_boundary":
            damaged = head + b"".join(recs[:3])
        case "drop_last":
            damaged = head + b"".join(recs[:-1])
        case "drop_middle":
            damaged = head + b"".join(recs[:2] + recs[3:])
        case "swap":
            damaged = head + b"".join([recs[1], recs[0], *recs[2:]])
        case "append_copy":
            damaged = blob + recs[-1]
        case "append_byte":
            damaged = blob + b"\x00"
        case "empty":
            damaged = b""
        case "header_only":
            damaged = head
        case "wrong_key":
            damaged, key = blob, os.urandom(32)
    with pytest.raises(BundleCorrupted, match="integrity check"):
        unseal(bytes(damaged), key)


def test_bundle_aead_splicing_streams_detected() -> None:
    one, two = seal(DATA), seal(DATA)
    head, recs = _records(one)
    _, other = _records(two)
    with pytest.raises(BundleCorrupted):
        unseal(head + recs[0] + other[1] + b"".join(recs[2:]))


def test_bundle_aead_rejects_bad_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"x", key=b"short")
