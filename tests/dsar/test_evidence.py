"""Evidence bodies: to_dict is the dataclass's fields, independent of the object it came from."""

from __future__ import annotations

from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from dsar.evidence import CollectionEvidence

evidence = st.builds(
    CollectionEvidence,
    system=st.text(max_size=8), collection=st.text(max_size=8),
    action=st.sampled_from(["collect", "delete", "mask", "retain"]),
    found=st.integers(0, 10**9), deleted=st.integers(0, 10**9),
    retained_ground=st.none() | st.text(max_size=20), remaining=st.none() | st.integers(0, 9),
    digest=st.none() | st.text(max_size=70),
    item_hashes=st.lists(st.text(max_size=64), max_size=5),
    counts=st.dictionaries(st.text(max_size=8), st.integers(0, 99), max_size=3),
    outcome=st.sampled_from(["ok", "failed", "skipped"]),
)


@given(evidence)
def test_to_dict_is_asdict_and_round_trips(item: CollectionEvidence) -> None:
    body = item.to_dict()
    assert body == asdict(item)
    assert CollectionEvidence.from_dict(body) == item
    body["item_hashes"].append("changed")
    body["counts"]["changed"] = 1
    assert item.to_dict() == asdict(item)  # the body is a copy: the evidence did not change
