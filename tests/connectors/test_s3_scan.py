"""The candidate search never misses a line the full parse would match, however it is written."""

from __future__ import annotations

import json
import sys
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.s3_records import Matcher, jsonl_segments
from connectors.s3_scan import ASCII_FOLDS, Needles, case_variants, fragment, jsonl_candidates
from tests.s3server import open_s3, s3_system

pytest_plugins = ["tests.s3server"]

MATCH = {"email": "user.email", "customer_id": "customer_id", "name": "tags"}


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def matched(segments: Any, matcher: Matcher) -> list[tuple[int, bytes]]:
    return [(line, raw) for _l, raw, line, rec in segments if rec is not None and matcher(rec)]


def test_ascii_folds_is_every_non_ascii_character_that_folds_to_ascii() -> None:
    computed = {
        chr(cp): chr(cp).casefold()
        for cp in range(0x80, sys.maxunicode + 1)
        if not (0xD800 <= cp <= 0xDFFF) and chr(cp).casefold().isascii()
    }
    assert computed == ASCII_FOLDS


def spellings(value: str) -> st.SearchStrategy[str]:
    """Strings that match ``value`` as an email (casefold), written in odd ways."""
    swaps = {f: c for c, f in ASCII_FOLDS.items() if len(f) == 1}

    def variant(flags: list[int]) -> str:
        out = []
        for ch, flag in zip(value, flags, strict=False):
            if flag == 1:
                ch = ch.upper()
            elif flag == 2 and ch in swaps:
                ch = swaps[ch]  # e.g. KELVIN SIGN for k
            out.append(ch)
        return "".join(out)

    return st.lists(st.integers(0, 2), min_size=len(value), max_size=len(value)).map(variant)


def encode(record: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return json.dumps(record).encode()
    if style == 1:
        return json.dumps(record, ensure_ascii=False).encode()
    if style == 2:  # Go's HTML-safe escaping and PHP's escaped slashes
        text = json.dumps(record, ensure_ascii=False)
        return (text.replace("<", "\\u003c").replace("&", "\\u0026").replace("/", "\\/")
                .encode())
    return json.dumps(record, separators=(",", ":")).encode()


emails = st.from_regex(r"[a-z0-9.&/_+-]{1,20}@(ex|ß|kk|ﬁ|ü)[a-z]{0,3}\.(de|com)", fullmatch=True)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=emails, data=st.data(), style=st.integers(0, 3), chunk=st.integers(3, 64),
    others=st.lists(emails, max_size=6), cid=st.integers(0, 99), many=st.booleans(),
    batch=st.integers(0, 3),
)
def test_candidates_find_every_match_of_the_full_parse(
    value: str, data: st.DataObject, style: int, chunk: int, others: list[str], cid: int,
    many: bool, batch: int,
) -> None:
    spelled = data.draw(spellings(value))
    lines = [encode({"user": {"email": spelled}, "customer_id": cid + 1000}, style % 3)]
    lines += [encode({"user": {"email": o}, "customer_id": cid, "tags": ["x"]}, style)
              for o in others]
    lines += [encode({"user": [{"email": "n@x.de"}, {"email": spelled}]}, style), b"", b" "]
    order = data.draw(st.permutations(lines))
    blob = b"\n".join(order) + data.draw(st.sampled_from([b"", b"\n"]))
    # ``batch`` of the other people are looked for too, as in a batched erasure
    keys = {"email": frozenset({value, *others[:batch]}), "customer_id": frozenset({str(cid)})}
    if many:  # enough needles for the Aho-Corasick path
        keys["name"] = frozenset(f"n{i}" for i in range(8))
    matcher = Matcher(MATCH, keys, dotted=True)
    full = list(jsonl_segments(pieces(blob, chunk)))
    fast = list(jsonl_candidates(pieces(blob, chunk), Needles(matcher)))
    assert b"".join(seg[1] for seg in fast) == blob
    assert matched(fast, matcher) == matched(full, matcher)
    assert len(matched(full, matcher)) >= 2


@given(form=st.from_regex(rb"[a-z0-9@._+-]{0,30}", fullmatch=True), letters=st.integers(1, 6))
def test_the_fragment_is_the_longest_part_with_few_letters(form: bytes, letters: int) -> None:
    part = fragment(form, letters)
    assert part in form
    assert sum(c.isalpha() for c in part.decode()) <= letters
    longer = [form[i : i + len(part) + 1] for i in range(len(form) - len(part))]
    assert all(sum(c.isalpha() for c in w.decode()) > letters for w in longer)
    variants = case_variants(part)
    assert len(set(variants)) == 2 ** sum(c.isalpha() for c in part.decode())
    assert {v.lower() for v in variants} == {part}


def test_a_fragment_hit_alone_is_not_a_candidate() -> None:
    matcher = Matcher(MATCH, {"email": frozenset({"annabelle.smith@x.de"})}, dotted=True)
    blob = (b'{"user": {"email": "Bob.Smith@x.de"}}\n'  # shares the fragment, not the value
            b'{"user": {"email": "ANNABELLE.SMITH@X.DE"}}\n')
    assert fragment(b"annabelle.smith@x.de") in b"bob.smith@x.de"
    fast = list(jsonl_candidates([blob], Needles(matcher)))
    assert [(line, rec is not None) for _l, _r, line, rec in fast] == [(1, False), (2, True)]


def test_an_exact_value_hidden_by_a_fragment_hit_is_still_found() -> None:
    # The fragment "ab.cd@x." matches first and the search does not report overlapping
    # matches, so the exact tag "@X.fr" starting inside it is found by the line's check.
    matcher = Matcher(MATCH, {"email": frozenset({"ab.cd@x.de"}), "name": frozenset({"@X.fr"})},
                      dotted=True)
    assert fragment(b"ab.cd@x.de") == b"ab.cd@x."
    blob = b'{"tags": ["AB.CD@X.fr"]}\n{"tags": ["ab.cd@x.fr"]}\n'
    fast = list(jsonl_candidates([blob], Needles(matcher)))
    assert [(line, rec is not None) for _l, _r, line, rec in fast] == [(1, True), (2, False)]
    assert matched(fast, matcher) == matched(jsonl_segments([blob]), matcher)


def test_escaped_and_exotic_spellings_are_found() -> None:
    matcher = Matcher(MATCH, {"email": frozenset({"kate@x.de"}),
                              "customer_id": frozenset({"a/b"})}, dotted=True)
    blob = (b'{"user": {"email": "\\u212aATE@X.DE"}}\n'   # KELVIN SIGN, escaped
            b'{"user": {"email": "\xe2\x84\xaaate@x.de"}}\n'  # KELVIN SIGN, raw UTF-8
            b'{"user": {"email": "k\\u0061te@x.de"}}\n'
            b'{"customer_id": "a\\/b"}\n'
            b'{"user": {"email": "other@x.de"}, "n": "k\xc3\xa4te"}\n')
    fast = list(jsonl_candidates([blob], Needles(matcher)))
    assert [line for line, _ in matched(fast, matcher)] == [1, 2, 3, 4]
    assert [seg[2] for seg in fast if seg[3] is None] == [5]  # the last line was not parsed


def test_large_objects_are_read_as_parallel_ranges(
    moto_endpoint: str, s3: Any, make_bucket: Any
) -> None:
    bucket = make_bucket(versioned=True)
    rows = [json.dumps({"user": {"email": f"u{i}@x.de"}, "i": i}) for i in range(20_000)]
    rows[123] = rows[19_000] = json.dumps({"user": {"email": "Ann@x.de"}})
    body = ("\n".join(rows) + "\n").encode()
    s3.put_object(Bucket=bucket, Key="events/big.jsonl", Body=body)
    spec = {"name": "events", "prefix": "events/", "format": "jsonl",
            "match": {"email": "user.email"}}
    connector = open_s3(moto_endpoint, s3_system(bucket, shared=[spec]),
                        range_size=64 * 1024, range_workers=3, chunk_size=10_000)
    subject = {"email": frozenset({"ann@x.de"})}
    assert connector.count(subject).evidence[0].found == 2
    ahead = open_s3(moto_endpoint, s3_system(bucket, shared=[spec]), read_ahead=2)
    assert ahead.count(subject).evidence[0].found == 2
    ev = connector.erase(subject).evidence[0]
    assert ev.deleted == 2 and ev.remaining == 0
    kept = s3.get_object(Bucket=bucket, Key="events/big.jsonl")["Body"].read()
    gone = (123, 19_000)
    assert kept == b"".join(r.encode() + b"\n" for i, r in enumerate(rows) if i not in gone)
