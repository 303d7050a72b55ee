"""RFC 8785 canonical JSON."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import example, given
from hypothesis import strategies as st

from dsar.errors import InvalidInput
from dsar.records.canonical import canonical_json, is_canonical

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def test_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'


def test_rfc8785_number_and_string_forms() -> None:
    # Examples from RFC 8785 §3.2.2 / appendix B.
    assert canonical_json([1e30, 4.5, 0.002, 1e-27, -0.0]) == b"[1e+30,4.5,0.002,1e-27,0]"
    assert canonical_json('\u20ac$\u000f\nA\'B"\\\\"/') == (
        '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()
    )
    # Keys sort by UTF-16 code units: U+1F600 (surrogates D83D..) sorts before U+FB33.
    assert canonical_json({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**53, {1: "x"}, {"a": object()}])
def test_rejects_values_outside_the_domain(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_json(bad)
    assert err.value.fix


@given(json_values)
def test_output_is_canonical_and_round_trips(value: object) -> None:
    data = canonical_json(value)
    assert is_canonical(data)
    assert canonical_json(json.loads(data, parse_int=float)) == data


keyed_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@given(keyed_values)
@example({"\ufb33": 1, "\U0001f600": 2, "\ue000": [3]})
@example({"a": "\ud800"})
@example({"\udfff": 1})
@example([2**53 - 1, -(2**53) + 1, 2**53])
@example(("\x7f\u2028\x00\x1f", True, None))
def test_matches_the_reference_implementation(value: object) -> None:
    """The fast path (plain ``json`` when it is exact) gives the reference library's bytes,
    and refuses what the library refuses: keys in every Unicode range, lone surrogates,
    integers beyond ±(2**53 - 1)."""
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        with pytest.raises(InvalidInput):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    "data",
    [
        b'{"b":1,"a":2}',
        b'{"a": 1}',
        b'{"a":1,"a":1}',
        b"1.0",
        b"1E2",
        b'"\\u0041"',
        b"NaN",
        b"[1,]",
        b"\xff",
        b"",
        b"9007199254740993",
        b' {"a":1}',
        b"1" + b"0" * 400,
    ],
)
def test_is_canonical_rejects(data: bytes) -> None:
    assert not is_canonical(data)


@given(st.binary(max_size=40))
def test_is_canonical_never_raises(data: bytes) -> None:
    is_canonical(data)
