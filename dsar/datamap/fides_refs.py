"""The state of one Fides import, its small readers, and references, for
:mod:`dsar.datamap.fides`.

:class:`FidesImport` holds what an import has read so far (the source and its lines, the
erasure policy's target categories, the notes, the tables by ``(dataset, collection)``).
:func:`link_references` turns each field's ``references`` into the map's references (same
dataset) or a shared key (another dataset); :func:`orient` gives references without a
direction the way Fides' traversal takes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dsar.errors import DataMapError

COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class FidesImport:
    """One import's state: the source, line numbers of its nodes, targets and notes."""

    source: str
    lines: dict[int, int]
    targets: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    tables: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    undirected: list[tuple[str, str, dict[str, Any], str]] = field(default_factory=list)

    def fail(self, node: Any, problem: str, fix: str) -> DataMapError:
        line = self.lines.get(id(node))
        return DataMapError(f"{self.source}:{line}: {problem}" if line
                            else f"{self.source}: {problem}", fix)

    def targeted(self, categories: Iterable[str]) -> bool:
        return any(c == t or c.startswith(t + ".") for c in categories for t in self.targets)


def fides_meta(ctx: FidesImport, node: dict[str, Any]) -> dict[str, Any]:
    meta = node.get("fides_meta") or node.get("fidesops_meta") or {}
    if not isinstance(meta, dict):
        raise ctx.fail(node, f"fides_meta of {node.get('name')!r} is not a mapping",
                       "write fides_meta as 'key: value' lines")
    return meta


def listed(ctx: FidesImport, node: dict[str, Any], key: str, what: str) -> list[Any]:
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.fail(node, f"{key} of {what} is not a list", f"write {key} as a list")
    return value


def key_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", text.lower()).strip("_") or "key"
    return name if name[:1].isalpha() else f"k_{name}"


def link_references(ctx: FidesImport, dataset: str, coll: dict[str, Any]) -> None:
    """Add the references of collection ``coll`` of ``dataset`` (its fields were read)."""
    here = ctx.tables[(dataset, coll["name"])]
    for fld in coll.get("fields") or []:
        if not COLUMN.match(fld["name"]):
            continue
        where = f"{dataset}.{here['name']}.{fld['name']}"
        meta = fides_meta(ctx, fld)
        for ref in listed(ctx, meta, "references", where):
            one_reference(ctx, dataset, here, fld["name"], where, ref)


def one_reference(ctx: FidesImport, dataset: str, here: dict[str, Any], column: str,
                  where: str, ref: Any) -> None:
    """One Fides reference of ``here``'s ``column``: a reference, a shared key, or a note."""
    if not isinstance(ref, dict) or not isinstance(ref.get("field"), str):
        raise ctx.fail(ref if isinstance(ref, dict) else here, f"a reference of {where} has "
                       "no field", "write field: <collection>.<field>")
    if ref.get("direction") not in (None, "from", "to"):
        raise ctx.fail(ref, f"reference direction {ref.get('direction')!r} of {where}",
                       "write direction: from or direction: to, or leave it out")
    target_ds = str(ref.get("dataset") or dataset)
    target_coll, _, target_field = ref["field"].partition(".")
    target = ctx.tables.get((target_ds, target_coll))
    if target is None or not COLUMN.match(target_field):
        ctx.notes.append(f"{where}: reference to {target_ds}.{ref['field']} dropped (not an "
                         "imported collection's column)")
        return
    direction = {"from": "inbound", "to": "outbound"}.get(ref.get("direction"), "none")
    if target_ds == dataset:
        here["references"].append({"columns": [column], "table": target_coll,
                                   "to": [target_field], "direction": direction})
        if direction == "none":
            ctx.undirected.append((dataset, here["name"], here["references"][-1], where))
        if target_field not in target["primary_key"] and target_field not in target["columns"]:
            target["columns"][target_field] = {"category": "system.operations"}
        return
    key = key_name(target_field if target_field.endswith("_id")
                    else f"{target_coll}_{target_field}")
    if direction == "inbound":
        target["provides"][key] = target_field
        here["identities"].setdefault(key, []).append(column)
    elif direction == "outbound":
        here["provides"][key] = column
        target["identities"].setdefault(key, []).append(target_field)
    else:
        ctx.notes.append(f"{where}: reference to {target_ds} without direction dropped; give "
                         "it direction from or to to share the key across systems")


def orient(ctx: FidesImport) -> None:
    """Give references without a direction the one Fides' traversal takes: away from the end
    the identities reach first. Where both ends are reached anyway (each has identities of its
    own, say), the way Fides goes depends on the request: ``none``, noted for a choice."""
    reached = {k for k, e in ctx.tables.items() if e["identities"]}
    pending = list(ctx.undirected)
    while True:
        grown = True
        while grown:  # everything the directed references reach
            grown = False
            for (ds, name), entry in ctx.tables.items():
                for ref in entry["references"]:
                    here, there = (ds, name), (ds, ref["table"])
                    src, dst = {"inbound": (there, here), "outbound": (here, there)}.get(
                        ref["direction"], (None, None))
                    if src in reached and dst not in reached:
                        reached.add(dst)
                        grown = True
        chosen = [(ds, name, ref, where) for ds, name, ref, where in pending
                  if ((ds, name) in reached) != ((ds, ref["table"]) in reached)]
        if not chosen:
            break
        for ds, name, ref, where in chosen:
            ref["direction"] = "outbound" if (ds, name) in reached else "inbound"
            first = name if ref["direction"] == "outbound" else ref["table"]
            ctx.notes.append(f"{where}: reference without direction imported as "
                             f"{ref['direction']!r}, the way Fides traverses it (from {first}, "
                             "which the identities reach first); review")
            pending.remove((ds, name, ref, where))
    for _ds, _name, _ref, where in pending:
        ctx.notes.append(f"{where}: reference without direction imported as 'none' (Fides "
                         "follows it from whichever end a request reaches first); choose "
                         "inbound or outbound")
