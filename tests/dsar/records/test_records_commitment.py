"""Salted subject commitments."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsar.errors import InvalidInput
from dsar.records import commitment
from dsar.records.canonical import canonical_json

SALT = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def test_new_salt_is_32_random_bytes_base64url() -> None:
    salts = {commitment.new_salt() for _ in range(50)}
    assert len(salts) == 50
    for salt in salts:
        assert len(salt) == 43
        assert len(base64.urlsafe_b64decode(salt + "=")) == 32


def test_commit_definition() -> None:
    expected_doc = {"identities": ["+4915112345678", "alice@example.com"], "salt": SALT}
    expected = "sha256:" + hashlib.sha256(canonical_json(expected_doc)).hexdigest()
    got = commitment.commit(["Alice@Example.com ", "+4915112345678"], SALT)
    assert got == expected


def test_normalization_is_order_case_and_duplicate_insensitive() -> None:
    a = commitment.commit(["bob@example.com", "ALICE@example.com"], SALT)
    b = commitment.commit(["alice@example.com", "Bob@Example.COM", " alice@example.com"], SALT)
    assert a == b
    # NFKC: a full-width letter equals its ASCII form.
    assert commitment.commit(["\uff41"], SALT) == commitment.commit(["a"], SALT)


def test_different_salt_or_identity_differs() -> None:
    other_salt = commitment.new_salt()
    assert commitment.commit(["a@x"], SALT) != commitment.commit(["a@x"], other_salt)
    assert commitment.commit(["a@x"], SALT) != commitment.commit(["b@x"], SALT)
    assert commitment.commit(["a@x"], SALT) != commitment.commit(["a@x", "b@x"], SALT)


def test_matches() -> None:
    salt = commitment.new_salt()
    c = commitment.commit(["alice@example.com"], salt)
    assert commitment.matches(c, ["ALICE@example.com"], salt)
    assert not commitment.matches(c, ["bob@example.com"], salt)
    assert not commitment.matches(c, ["alice@example.com"], commitment.new_salt())
    assert not commitment.matches("sha256:xyz", ["alice@example.com"], salt)
    assert not commitment.matches(c.upper(), ["alice@example.com"], salt)


@pytest.mark.parametrize(
    "salt", ["", "short", SALT + "A", SALT[:-1] + "B", SALT[:-1] + "=", "+" * 43, 5]
)
def test_rejects_bad_salts(salt: str) -> None:
    with pytest.raises(InvalidInput):
        commitment.commit(["a"], salt)


@pytest.mark.parametrize("identities", [[], [""], ["  "], "alice@example.com", [1]])
def test_rejects_bad_identities(identities: list[str]) -> None:
    with pytest.raises(InvalidInput):
        commitment.commit(identities, SALT)


@given(st.lists(st.text(min_size=1).filter(lambda s: s.strip()), min_size=1, max_size=5))
def test_commit_is_stable_under_permutation(identities: list[str]) -> None:
    try:
        forward = commitment.commit(identities, SALT)
    except InvalidInput:
        return  # an identity that normalizes to nothing
    assert forward == commitment.commit(list(reversed(identities)), SALT)
    assert forward.startswith("sha256:") and len(forward) == 7 + 64
    assert commitment.matches(forward, identities, SALT)
