"""A batch's owner index attributes each record to exactly the members whose matcher accepts it."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.s3_owners import Owners
from connectors.s3_records import Matcher

MATCH = {"email": "user.email", "customer_id": "customer_id", "name": "tags"}
EMAILS = ["ann@x.de", "bob@x.de", "Cy@X.de", "dee@y.org"]
IDS = ["1", "2", "30"]


def spelled(email: str) -> st.SearchStrategy[str]:
    return st.sampled_from([email, email.upper(), email.title(), email.lower()])


values = st.one_of(
    st.sampled_from(EMAILS).flatmap(spelled), st.sampled_from([1, 2, 30, 31, True]),
    st.sampled_from([*IDS, "x", "30 "]), st.none(),
)
users = st.one_of(
    st.fixed_dictionaries({"email": values}),
    st.lists(st.fixed_dictionaries({"email": values}), max_size=3),
    values,
)
records = st.fixed_dictionaries({}, optional={
    "user": users, "customer_id": values, "tags": st.lists(values, max_size=3) | values})
member_keys = st.fixed_dictionaries({}, optional={
    "email": st.frozensets(st.sampled_from(EMAILS), min_size=1, max_size=2),
    "customer_id": st.frozensets(st.sampled_from(IDS), min_size=1, max_size=2),
    "name": st.frozensets(st.sampled_from(["x", "1"]), min_size=1, max_size=1),
})


@settings(max_examples=300, deadline=None)
@given(keys=st.dictionaries(st.sampled_from("abcdef"), member_keys, min_size=1, max_size=5),
       record=records)
def test_owners_are_the_members_whose_matcher_accepts_the_record(
        keys: dict[str, dict[str, frozenset[str]]], record: dict[str, Any]) -> None:
    members = {m: Matcher(MATCH, k, dotted=True) for m, k in keys.items()}
    merged: dict[str, set[str]] = {}
    for k in keys.values():
        for name, vals in k.items():
            merged.setdefault(name, set()).update(vals)
    union = Matcher(MATCH, {n: frozenset(v) for n, v in merged.items()}, dotted=True)
    expected = {m for m, matcher in members.items() if matcher(record)}
    assert set(Owners(members, union).of(record)) == expected
    assert bool(expected) == union(record)
