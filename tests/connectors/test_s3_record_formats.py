"""Record formats without a server: segments give back the input byte for byte."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.s3_records import (
    FORMATS,
    MalformedRecord,
    Matcher,
    Rewriter,
    decoded_chunks,
)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


record = st.fixed_dictionaries(
    {"id": st.integers(0, 9), "s": st.text(max_size=6)},
    optional={"nested": st.fixed_dictionaries({"email": st.sampled_from(["A@x", "b@x"])})},
)


@given(st.lists(record, max_size=6), st.integers(1, 9), st.sampled_from([None, 1, 2]),
       st.sampled_from(["\n", "\r\n"]))
def test_jsonl_and_json_round_trip_and_drop(
    records: list[dict], size: int, indent: int | None, newline: str
) -> None:
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + newline for r in records).encode()
    array = json.dumps(records, indent=indent, ensure_ascii=False).encode()
    for fmt, data in (("jsonl", jsonl), ("json", array)):
        segments = list(FORMATS[fmt](pieces(data, size)))
        assert b"".join(lead + raw for lead, raw, _, _ in segments) == data
        assert [s[3] for s in segments if s[3] is not None] == records
        out = io.BytesIO()
        writer = Rewriter(out, gzip=False)
        matcher = Matcher({"id": "id"}, {"id": frozenset({"3"})}, dotted=True)
        for seg in segments:
            if seg[3] is None or not matcher(seg[3]):
                writer.keep(seg)
        writer.finish()
        kept = [r for r in records if r["id"] != 3]
        if fmt == "json":
            assert json.loads(out.getvalue()) == kept
        else:
            assert [json.loads(line) for line in out.getvalue().splitlines()] == kept


def test_gzip_multi_member_and_bounded_output() -> None:
    plain = b"x" * 100_000 + b"\n"
    data = gzip.compress(plain) + gzip.compress(b"tail\n")
    is_gzip, chunks = decoded_chunks(pieces(data, 7), "auto", 4096)
    out = list(chunks)
    assert is_gzip and b"".join(out) == plain + b"tail\n"
    assert max(len(c) for c in out) <= 4096
    assert decoded_chunks([b"{}\n"], "auto", 10)[0] is False
    with pytest.raises(MalformedRecord):
        decoded_chunks([b"{}\n"], "gzip", 10)


@pytest.mark.parametrize(
    ("fmt", "data", "line"),
    [
        ("jsonl", b'{"a": 1}\n\n{"a": \n', 3),
        ("jsonl", b'{"a": 1}\n[1, 2]\n', 2),
        ("csv", b"a,b\n1,2\n3\n", 3),
        ("csv", b'a,b\n1,"open\n2,3\n', 2),
        ("json", b'[\n {"a": 1},\n {"a": 2}\n {"a": 3}\n]', 4),
        ("json", b'{"a": 1}', 1),
        ("json", b'[{"a": 1}] trailing', 1),
        ("json", b'[\n  {"a": 1},\n  3\n]', 3),
    ],
)
def test_malformed_reports_line(fmt: str, data: bytes, line: int) -> None:
    with pytest.raises(MalformedRecord) as err:
        list(FORMATS[fmt](pieces(data, 3)))
    assert err.value.line == line


def test_matcher_paths_lists_and_email_case() -> None:
    match = Matcher({"email": "contacts.email", "customer_id": "cid"},
                    {"email": frozenset({"Ann@X.org"}), "customer_id": frozenset({"7"})},
                    dotted=True)
    assert match({"contacts": [{"email": "z"}, {"email": "ANN@x.org"}]})
    assert match({"cid": 7}) and match({"cid": "7"})
    assert not match({"cid": True}) and not match({"cid": 7.0}) and not match({"cid": "77"})
    assert Matcher({"email": "e"}, {"phone": frozenset({"1"})}, dotted=True).empty
