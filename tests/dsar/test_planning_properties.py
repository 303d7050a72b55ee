"""Property tests of the planner: on random table graphs (with cycles, self-references and
keys provided between tables) the walk terminates, visits exactly the reachable tables once,
lists every source before the tables it feeds, and orders erasure as a permutation."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dsar.datamap.schema import SqlSystem
from dsar.planning import NothingReached, plan_request, walk_sql_system

DIRECTIONS = ["inbound", "outbound", "none"]


@st.composite
def systems(draw: Any) -> SqlSystem:
    count = draw(st.integers(1, 8))
    names = [f"t{i}" for i in range(count)]
    tables = []
    for name in names:
        refs = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(DIRECTIONS)),
                             max_size=3))
        identities = {"email": "email"} if draw(st.booleans()) and draw(st.booleans()) else {}
        if draw(st.booleans()):
            identities[draw(st.sampled_from(["k1", "k2"]))] = "k"
        provides = {draw(st.sampled_from(["k1", "k2"])): "id"} if draw(st.booleans()) else {}
        tables.append({
            "name": name, "primary_key": ["id"], "identities": identities,
            "provides": provides,
            "references": [{"columns": [f"{t}_{i}"], "table": t, "to": ["id"],
                            "direction": d} for i, (t, d) in enumerate(refs)],
        })
    return SqlSystem.model_validate({"name": "db", "kind": "sql", "url_env": "DB",
                                     "tables": tables})


def closure(system: SqlSystem, keys: set[str]) -> set[str]:
    edges: dict[str, set[str]] = {t.name: set() for t in system.tables}
    for t in system.tables:
        for r in t.references:
            if r.table == t.name or r.direction == "none":
                continue
            if r.direction == "inbound":
                edges[r.table].add(t.name)
            else:
                edges[t.name].add(r.table)
        for key in t.provides:
            edges[t.name] |= {o.name for o in system.tables if key in o.identities}
    seen = {t.name for t in system.tables if set(t.identities) & keys}
    stack = list(seen)
    while stack:
        for nxt in edges[stack.pop()] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return seen


@settings(max_examples=200, deadline=None)
@given(systems(), st.sets(st.sampled_from(["email", "k1", "k2"])))
def test_walk_visits_each_reachable_table_once(system: SqlSystem, keys: set[str]) -> None:
    walk = walk_sql_system(system, keys)
    assert len(walk.discovery) == len(set(walk.discovery))
    assert set(walk.discovery) == closure(system, keys) == set(walk.matches)
    assert sorted(walk.erase_order) == sorted(walk.discovery)
    position = {name: i for i, name in enumerate(walk.discovery)}
    for name, matches in walk.matches.items():
        assert matches
        for match in matches:
            if match.source is not None:
                assert position[match.source] < position[name]
                assert match.path[-1] == name
    assert set(walk.unreachable) == {t.name for t in system.tables} - set(walk.discovery)


@settings(max_examples=60, deadline=None)
@given(st.lists(systems(), min_size=1, max_size=3))
def test_task_graph_is_acyclic(parts: list[SqlSystem]) -> None:
    from dsar.datamap.schema import DataMap

    systems_ = [p.model_copy(update={"name": f"s{i}"}) for i, p in enumerate(parts)]
    try:
        plan = plan_request(DataMap(systems=systems_), {"email"}, "erasure")
    except NothingReached:  # refused exactly when no table is looked up by email
        assert not any(t.identity_columns("email") for s in systems_ for t in s.tables)
        return
    done: set[str] = set()
    for task in plan.tasks:  # tasks are listed in an order where dependencies come first
        assert set(task.depends_on) <= done
        done.add(task.id)
    assert len({(s.system, s.collection) for s in plan.steps}) == len(plan.steps)
