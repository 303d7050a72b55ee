"""Planning: from the subject's key names and the data map to an ordered plan and a task graph.

The planner never sees data, only key *names*. It answers three questions:

1. Inside one SQL system, which tables can the subject's rows be found in, and how?
   :func:`walk_sql_system` starts at tables that look subjects up by an available key
   (``identities``) and follows references only in their declared direction (``inbound``: the
   referencing table is reached from the referenced one; ``outbound``: the other way; ``none``:
   never) and keys that one table ``provides`` to another. Every table is visited once; a table
   reached by several paths keeps every path (as :class:`Match` entries) unless a path would close
   a cycle, which is how cycles terminate. ``discovery`` orders tables so that every match's
   source comes first; ``erase_order`` puts children first (references in any direction,
   foreign keys the database declares, and ``erase_after``).
2. In what order across systems? One :class:`Task` per (system, action); a task ``needs`` the key
   names it waits for that other systems provide and ``depends_on`` their tasks. Systems are
   levelled from the request's keys outwards, so the graph has no cycles.
3. What does each collection do? :class:`Step` with ``collect`` (access, export) or the map's
   erasure action ``delete`` / ``mask`` / ``retain``.

:meth:`Plan.to_dict` is JSON-able and holds names only — never a key's value.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from dsar.datamap.schema import DataMap, ErasureSpec, SqlSystem
from dsar.errors import DataMapError, InvalidInput
from dsar.kinds import Reach, kind_of, systems_of

RequestAction = Literal["access", "export", "erasure"]
StepAction = Literal["collect", "delete", "mask", "retain", "none"]
ACTIONS: tuple[str, ...] = ("access", "export", "erasure")


@dataclass(frozen=True)
class Match:
    """One way rows of a collection are found.

    ``via="key"``: ``columns`` equal a value of key ``key`` — from the request or another system
    when ``source`` is None, else the values ``source`` provides from its ``source_columns``.
    ``via="reference"``: ``columns`` equal ``source_columns`` of the subject's rows in ``source``.
    ``path`` starts with the key name, then the tables walked, ending with this one.
    """

    via: Literal["key", "reference"]
    columns: tuple[str, ...]
    key: str | None = None
    source: str | None = None
    source_columns: tuple[str, ...] = ()
    path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    """A child -> parent relation used for ordering (``child`` rows point at ``parent`` rows)."""

    child: str
    parent: str
    columns: tuple[str, ...] = ()
    parent_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SystemWalk:
    """How one SQL system is walked for the keys available to it."""

    system: str
    matches: dict[str, tuple[Match, ...]]
    discovery: tuple[str, ...]
    erase_order: tuple[str, ...]
    unreachable: tuple[str, ...]
    external_keys: frozenset[str]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    system: str
    collection: str
    action: StepAction
    order: int
    matches: tuple[Match, ...] = ()
    retain_ground: str | None = None
    retain_period: str | None = None


@dataclass(frozen=True)
class Task:
    """Work for one worker: one system, one action (``collect`` or ``erase``)."""

    id: str
    system: str
    action: Literal["collect", "erase"]
    needs: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    action: RequestAction
    keys: tuple[str, ...]
    steps: tuple[Step, ...]
    tasks: tuple[Task, ...]
    unreachable: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; key names only, never values."""
        data = asdict(self)
        data["unreachable"] = [{"system": s, "collection": c} for s, c in self.unreachable]
        return data

    def steps_for(self, system: str) -> list[Step]:
        return [s for s in self.steps if s.system == system]

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)


def _erasure_action(spec: ErasureSpec) -> StepAction:
    return spec.action


def walk_sql_system(
    system: SqlSystem, available: Iterable[str], db_links: Iterable[Link] = ()
) -> SystemWalk:
    """Walk ``system`` from the key names in ``available``; ``db_links`` adds database FKs
    (for ordering only — the walk follows the map's declared directions alone)."""
    keys = set(available)
    tables = {t.name: t for t in system.tables}
    edges: dict[str, list[tuple[str, Match]]] = {name: [] for name in tables}
    notes: list[str] = []
    for table in system.tables:
        for ref in table.references:
            if ref.table not in tables or ref.direction == "none":
                continue
            if ref.table == table.name:
                notes.append(f"{system.name}.{table.name}: self-reference not followed")
                continue
            if ref.direction == "inbound":
                edges[ref.table].append((table.name, Match(
                    "reference", tuple(ref.columns), None, ref.table, tuple(ref.to))))
            else:
                edges[table.name].append((ref.table, Match(
                    "reference", tuple(ref.to), None, table.name, tuple(ref.columns))))
        for key, column in table.provides.items():
            for other in system.tables:
                if other.name != table.name:
                    edges[table.name].extend((other.name, Match(
                        "key", (held,), key, table.name, (column,)))
                        for held in other.identity_columns(key))
    matches: dict[str, list[Match]] = {}
    dag: dict[str, set[str]] = {name: set() for name in tables}
    queue: list[str] = []
    used: set[str] = set()
    for table in system.tables:
        for key, column in table.identity_items():  # one match per column: ORed
            if key in keys:
                used.add(key)
                matches.setdefault(table.name, []).append(
                    Match("key", (column,), key, None, (), (key, table.name)))
        if table.name in matches:
            queue.append(table.name)
    index = 0
    while index < len(queue):
        source = queue[index]
        index += 1
        for target, match in edges[source]:
            if target in matches and _reaches(dag, target, source):
                notes.append(f"{system.name}: {source} -> {target} not followed (would cycle)")
                continue
            path = (*matches[source][0].path, target)
            matches.setdefault(target, []).append(
                Match(match.via, match.columns, match.key, source, match.source_columns, path))
            dag[source].add(target)
            if target not in queue:
                queue.append(target)
    rank = {name: i for i, name in enumerate(queue)}
    discovery = _toposort(queue, {n: dag[n] for n in queue}, rank)
    order_edges: dict[str, set[str]] = {name: set() for name in queue}
    links = [Link(t.name, r.table, tuple(r.columns), tuple(r.to))
             for t in system.tables for r in t.references]
    for link in [*links, *db_links]:
        if link.child in rank and link.parent in rank and link.child != link.parent:
            order_edges[link.child].add(link.parent)
    for table in system.tables:
        for after in table.erase_after:
            if after in rank and table.name in rank and after != table.name:
                order_edges[after].add(table.name)
    reverse = {name: len(queue) - i for i, name in enumerate(discovery)}
    erase_order = _toposort(queue, order_edges, reverse, notes, system.name)
    unreachable = tuple(t.name for t in system.tables if t.name not in matches)
    return SystemWalk(
        system.name, {k: tuple(v) for k, v in matches.items()}, tuple(discovery),
        tuple(erase_order), unreachable, frozenset(used), tuple(dict.fromkeys(notes)))


def _reaches(dag: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in dag[node] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return False


def _toposort(
    nodes: list[str], before: dict[str, set[str]], rank: dict[str, int],
    notes: list[str] | None = None, system: str = "",
) -> list[str]:
    """Nodes such that ``a`` precedes every ``b`` in ``before[a]``; ties by ``rank``. A cycle
    is broken at the lowest-ranked node of what is left, and noted."""
    indegree = {n: 0 for n in nodes}
    for a in nodes:
        for b in before[a]:
            indegree[b] += 1
    heap = [(rank[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(heap)
    out: list[str] = []
    done: set[str] = set()
    while len(out) < len(nodes):
        if not heap:
            stuck = min((n for n in nodes if n not in done), key=lambda n: rank[n])
            if notes is not None:
                notes.append(f"{system}: ordering cycle through {stuck}; broken there")
            indegree[stuck] = 0
            heap.append((rank[stuck], stuck))
        _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        out.append(node)
        for nxt in before[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0 and nxt not in done:
                heapq.heappush(heap, (rank[nxt], nxt))
    return out


def _system_dependencies(
    reach: Mapping[str, Mapping[str, tuple[Match, ...]]],
    provided_at: Mapping[str, list[tuple[int, str]]], given: set[str],
    rank: Mapping[str, tuple[int, int]], notes: list[str],
) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Which systems wait for which: a system depends on every other system that provides a
    key it looks subjects up by (and that the request did not give). Edges that would close a
    cycle are left out, in the order systems were first reached, with a note."""
    depends_on: dict[str, set[str]] = {name: set() for name in rank}
    needs_of: dict[str, list[str]] = {name: [] for name in rank}
    wanted: list[tuple[str, str, str]] = []  # (system, key, provider)
    for name in rank:
        found = reach[name]
        used = {m.key for ms in found.values() for m in ms if m.key and m.source is None}
        for key in sorted(used - given):
            wanted += [(name, key, p) for _, p in provided_at.get(key, []) if p != name]
    # Edges towards systems reached earlier first, so that in a cycle the system nearer the
    # request's own keys runs first and the later one waits.
    wanted.sort(key=lambda w: (rank[w[2]] >= rank[w[0]], rank[w[0]], w[1], rank[w[2]]))
    for name, key, provider in wanted:
        if _reaches(depends_on, provider, name):
            continue
        depends_on[name].add(provider)
        if key not in needs_of[name]:
            needs_of[name].append(key)
    for name, key, _provider in wanted:
        if key not in needs_of[name]:
            notes.append(f"{name} uses {key!r} from a system that waits for it; "
                         "it runs without those values")
    return depends_on, needs_of


def _in_dependency_order(datamap: DataMap, depends_on: Mapping[str, set[str]],
                         rank: Mapping[str, tuple[int, int]]) -> list[Any]:
    """Systems with every system they depend on first; ties in the order they were reached."""
    by_name = {s.name: s for s in datamap.systems}
    waiting = {name: set(deps) for name, deps in depends_on.items()}
    ready = [(rank[n], n) for n, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out = []
    while ready:
        _, name = heapq.heappop(ready)
        out.append(by_name[name])
        for other, deps in waiting.items():
            if name in deps:
                deps.discard(name)
                if not deps:
                    heapq.heappush(ready, (rank[other], other))
    return out


def lookup_keys(datamap: DataMap) -> frozenset[str]:
    """The key names the data map looks subjects up by (each kind's
    :meth:`~dsar.kinds.SystemKind.lookups`: SQL tables' ``identities``, the keys in S3 object
    templates and shared-file ``match``, SaaS ``identities`` …). A request needs at least one
    of them to reach anything."""
    return frozenset(key for system, kind in systems_of(datamap.systems)
                     for key, _, _ in kind.lookups(system))


class NothingReached(DataMapError):
    """The request's keys reach no collection of the data map: planning it would do nothing,
    and an erasure would "complete" having erased nothing."""

    def __init__(self, given: Iterable[str], known: Iterable[str]) -> None:
        self.given, self.known = tuple(sorted(given)), tuple(sorted(known))
        super().__init__(
            f"no collection of the data map is looked up by "
            f"{', '.join(self.given) or 'any key given'}",
            f"the map looks subjects up by {', '.join(self.known) or 'no key at all'}: give one "
            f"of those (--email, --phone, --id NAME=VALUE), or add the key to a collection's "
            f"identities in the data map")


def plan_request(
    datamap: DataMap, keys: Mapping[str, Iterable[str]] | Iterable[str], action: str
) -> Plan:
    """The plan for a request of ``action`` whose subject is known by ``keys`` (a SubjectKeys
    mapping — only names with at least one value count — or the key names themselves).

    Raises :class:`NothingReached` when the keys reach no collection at all: such a request
    is never planned as if it had been carried out (the worker puts it in needs attention)."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}", f"use one of {', '.join(ACTIONS)}")
    if isinstance(keys, Mapping):
        given = {name for name, values in keys.items() if any(True for _ in values)}
    else:
        given = set(keys)
    level: dict[str, int] = {}
    provided_at: dict[str, list[tuple[int, str]]] = {}
    reach: dict[str, Mapping[str, tuple[Match, ...]]] = {}
    reaches: dict[str, Reach] = {}
    available = set(given)
    round_no = 0
    while True:
        new_keys: set[str] = set()
        for system, kind in systems_of(datamap.systems):
            reaches[system.name] = kind.reach(system, available)
            found, provides = reaches[system.name].matches, reaches[system.name].provides
            reach[system.name] = found
            if found and system.name not in level:
                level[system.name] = round_no
            for key in provides:
                if system.name in level and (level[system.name], system.name) not in \
                        provided_at.get(key, []):
                    provided_at.setdefault(key, []).append((level[system.name], system.name))
                if key not in available:
                    new_keys.add(key)
        if not new_keys:
            break
        available |= new_keys
        round_no += 1
    task_action: Literal["collect", "erase"] = "erase" if action == "erasure" else "collect"
    tasks: list[Task] = []
    steps: list[Step] = []
    notes: list[str] = []
    unreachable: list[tuple[str, str]] = []
    rank = {s.name: (level[s.name], i) for i, s in enumerate(datamap.systems) if s.name in level}
    depends_on, needs_of = _system_dependencies(reach, provided_at, given, rank, notes)
    for system in _in_dependency_order(datamap, depends_on, rank):
        found = reach[system.name]
        needs = needs_of[system.name]
        depends = [f"{name}:{task_action}" for name in sorted(depends_on[system.name],
                                                               key=rank.__getitem__)]
        kind = kind_of(system)
        names = reaches[system.name].order(erasure=action == "erasure")
        notes += reaches[system.name].notes
        for name in names:
            spec = kind.erasure(system, name)
            step_action: StepAction = "collect" if action != "erasure" else _erasure_action(spec)
            retain = spec.retain if step_action == "retain" else None
            steps.append(Step(system.name, name, step_action, len(steps), found[name],
                              retain.ground if retain else None, retain.period if retain else None))
        tasks.append(Task(f"{system.name}:{task_action}", system.name, task_action,
                          tuple(needs), tuple(dict.fromkeys(depends)), tuple(names)))
    if not steps:
        raise NothingReached(given, lookup_keys(datamap))
    for system, kind in systems_of(datamap.systems):
        for name in kind.collections(system):
            if name not in reach.get(system.name, {}):
                unreachable.append((system.name, name))
    return Plan(action, tuple(sorted(given)), tuple(steps), tuple(tasks), tuple(unreachable),  # type: ignore[arg-type]
                tuple(dict.fromkeys(notes)))
