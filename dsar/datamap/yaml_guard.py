"""A guard for every reader of YAML the user gives: alias expansion is bounded.

A few hundred bytes of nested YAML aliases (a "billion laughs") expand to billions of nodes;
anything that walks or builds the expanded tree then takes minutes and gigabytes. Composing is
linear (an alias is a reference to its anchor's node), so readers compose first, call
:func:`check_alias_expansion`, and only then walk or construct the document. Used by the data
map loader; the Fides importer can call it on the node it composes.
"""

from __future__ import annotations

import yaml

from dsar.errors import DataMapError

__all__ = ["ALIAS_EXPANSION_LIMIT", "check_alias_expansion"]


ALIAS_EXPANSION_LIMIT = 100_000
"""Nodes that YAML aliases may add when expanded: far beyond any map that reuses an anchor
for its erasure rules or column lists, far below an alias bomb (a few hundred bytes that
expand to billions of nodes)."""


def check_alias_expansion(node: yaml.Node, source: str,
                          limit: int = ALIAS_EXPANSION_LIMIT) -> None:
    """Refuse, with a one-line :class:`DataMapError`, a composed YAML document whose aliases
    would expand to more than ``limit`` nodes beyond those written, or that refers to itself.

    Composing YAML is linear in its size (an alias is a reference to its anchor's node); what
    grows exponentially is everything that walks or builds the expanded tree. This counts the
    expanded size from the node graph, each node once, in time and memory linear in the text,
    so it is safe to call first on any input. Every reader of YAML the user gives (data maps,
    fideslang datasets) calls it before walking the document."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(current: yaml.Node) -> int:
        key = id(current)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in active:
            raise DataMapError(
                f"{source}:{current.start_mark.line + 1}: a YAML alias refers to itself",
                "write the value out instead of using a recursive anchor")
        active.add(key)
        total = 1
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                total += size(key_node) + size(value_node)
        elif isinstance(current, yaml.SequenceNode):
            for item in current.value:
                total += size(item)
        active.discard(key)
        sizes[key] = total
        return total

    expanded = size(node)
    if expanded - len(sizes) > limit:
        raise DataMapError(
            f"{source}: YAML aliases would expand this file to {_rough(expanded)} nodes "
            f"(at most {limit:,} more than are written are allowed)",
            "write the values out, or use fewer nested aliases")


def _rough(count: int) -> str:
    """A node count for a message: exact when small, else its order of magnitude."""
    return f"{count:,}" if count < 10**12 else f"about 10^{len(str(count)) - 1}"
