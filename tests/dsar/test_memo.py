"""dsar.memo.DerivedFrom: values derived from live objects go with the objects."""

from __future__ import annotations

import gc

from hypothesis import given
from hypothesis import strategies as st

from dsar.memo import DerivedFrom


class Version:
    """Stands for a loaded data map's system or walk."""


def test_a_value_is_built_once_per_object_and_extra() -> None:
    memo: DerivedFrom[int] = DerivedFrom(limit=10)
    a, b = Version(), Version()
    built: list[str] = []

    def make(tag: str) -> int:
        built.append(tag)
        return len(built)

    assert memo.get((a,), "x", lambda: make("a-x")) == 1
    assert memo.get((a,), "x", lambda: make("again")) == 1
    assert memo.get((a,), "y", lambda: make("a-y")) == 2
    assert memo.get((b,), "x", lambda: make("b-x")) == 3  # an equal-looking object: its own
    assert built == ["a-x", "a-y", "b-x"]


def test_an_entry_goes_when_its_object_is_collected() -> None:
    memo: DerivedFrom[str] = DerivedFrom(limit=10)
    old, other = Version(), Version()
    memo.get((old, other), None, lambda: "old's")
    assert len(memo) == 1
    del old
    gc.collect()
    assert len(memo) == 0
    new = Version()  # may well get old's id(): it must not find old's value
    assert memo.get((new, other), None, lambda: "new's") == "new's"


def test_a_value_refused_by_keep_is_built_again() -> None:
    memo: DerivedFrom[list[str]] = DerivedFrom(limit=10)
    obj = Version()
    assert memo.get((obj,), None, lambda: ["error"], keep=lambda v: v != ["error"]) == ["error"]
    assert memo.get((obj,), None, lambda: [], keep=lambda v: v != ["error"]) == []
    assert memo.get((obj,), None, lambda: ["not built"]) == []


@given(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=30))
def test_live_objects_hold_at_most_limit_entries_oldest_out_first(limit: int, count: int
                                                                  ) -> None:
    memo: DerivedFrom[int] = DerivedFrom(limit=limit)
    objects = [Version() for _ in range(count)]
    for i, obj in enumerate(objects):
        memo.get((obj,), None, lambda i=i: i)
    assert len(memo) == min(limit, count)
    for i in range(max(0, count - limit), count):  # the newest are there (hits add nothing)
        assert memo.get((objects[i],), None, lambda: -1) == i
    if count > limit:  # the oldest went
        assert memo.get((objects[0],), None, lambda: -1) == -1
