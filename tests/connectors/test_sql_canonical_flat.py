"""The fast canonical encoder for rows gives exactly the RFC 8785 bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.sql_query import canonical_flat
from dsar.records.canonical import canonical_json

scalars = st.one_of(
    st.none(), st.booleans(), st.text(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=12)


@given(st.dictionaries(keys, scalars, max_size=12))
def test_rows_encode_as_rfc_8785(row: dict[str, object]) -> None:
    assert canonical_flat(row) == canonical_json(row)


@given(st.lists(scalars, max_size=6))
def test_key_tuples_encode_as_rfc_8785(values: list[object]) -> None:
    assert canonical_flat(values) == canonical_json(values)


def test_non_ascii_keys_and_text_take_the_general_path_correctly() -> None:
    row = {"näme": "Zoë", "z": "\u2028 \x7f \x01", "a": 2**53 - 1}
    assert canonical_flat(row) == canonical_json(row)
