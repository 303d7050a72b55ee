"""Property tests of the loader: whatever the input, the answer is a DataMap or a
DataMapError — never another exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsar.datamap.loader import parse_datamap
from dsar.datamap.schema import DataMap
from dsar.errors import DataMapError
from tests.chinook import chinook_map

WORDS = st.sampled_from([
    "systems", "name", "kind", "sql", "s3", "saas", "tables", "url_env", "primary_key",
    "identities", "provides", "references", "columns", "table", "to", "direction", "inbound",
    "erasure", "action", "mask", "retain", "strategy", "value", "email", "id", "x", "",
    "SHOP_URL", "delete", "null", "fixed", "objects", "bucket", "prefix", "key", "category",
])
SCALARS = st.one_of(WORDS, st.integers(-3, 3), st.booleans(), st.none(), st.floats(),
                    st.text(max_size=5))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(WORDS, st.integers(0, 2)), inner,
                                            max_size=4)),
    max_leaves=25,
)
BASE = yaml.safe_load(chinook_map("postgresql"))


def outcome(text: str) -> None:
    try:
        assert isinstance(parse_datamap(text, "fuzz.yaml"), DataMap)
    except DataMapError as err:
        assert err.problem and err.fix


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_random_structures(value: Any) -> None:
    outcome(yaml.safe_dump({"systems": value}) if isinstance(value, list) else
            yaml.safe_dump(value))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    outcome(text)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*path, index))
    return out


PATHS = [p for p in _paths(BASE) if p]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(PATHS), VALUES, st.booleans())
def test_mutated_valid_map(path: tuple[Any, ...], junk: Any, delete: bool) -> None:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = junk
    outcome(yaml.safe_dump(doc))
