"""Fideslang YAML in and the imported data map out, for :mod:`dsar.datamap.fides`.

:func:`load_with_lines` reads a file into plain dicts and lists and records, by ``id``, the line
each mapping and list starts on, so that the importer's errors can name ``file:line``; alias
expansion is bounded (a few hundred bytes of nested aliases must not take minutes and
gigabytes). :func:`dump_compact` writes a map in block style with mappings and lists of plain
values on one line (``erasure: {action: none}``), as the docs write them.
"""

from __future__ import annotations

from typing import Any

import yaml

from dsar.errors import DataMapError

MAX_NODES = 100_000
"""Nodes read at most: far beyond any real dataset file, far below an alias bomb."""


def load_with_lines(text: str, source: str) -> tuple[Any, dict[int, int]]:
    """The YAML document and the line of every mapping and list in it (by ``id``)."""
    loader = yaml.SafeLoader(text)
    loader.name = source
    try:
        node = loader.get_single_node()
        if node is None:
            raise DataMapError(f"{source}: the file is empty", "give a fideslang dataset file")
        lines: dict[int, int] = {}
        return _build(loader, node, lines, [0], set()), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{source}:{mark.line + 1}" if mark else source
        raise DataMapError(f"{at}: not valid YAML: {exc.problem or exc.context}",
                           "fix the YAML syntax (indentation, a missing ':' or an unclosed "
                           "quote)") from None
    except yaml.YAMLError as exc:
        raise DataMapError(f"{source}: not valid YAML ({exc})", "fix the YAML syntax") from None
    except RecursionError:
        raise DataMapError(f"{source}: the YAML nests too deeply", "flatten it") from None
    finally:
        loader.dispose()


def _build(loader: yaml.SafeLoader, node: yaml.Node, lines: dict[int, int], count: list[int],
           stack: set[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES or id(node) in stack:
        raise DataMapError(f"{loader.name}:{node.start_mark.line + 1}: YAML aliases expand "
                           "beyond any real dataset file", "write the values out")
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node)
    stack.add(id(node))
    out: Any
    if isinstance(node, yaml.SequenceNode):
        out = [_build(loader, item, lines, count, stack) for item in node.value]
    else:
        loader.flatten_mapping(node)
        out = {}
        for key, value in node.value:
            name = _build(loader, key, lines, count, stack)
            out[name if isinstance(name, str | int | float | bool) else str(name)] = \
                _build(loader, value, lines, count, stack)
    stack.discard(id(node))
    lines[id(out)] = node.start_mark.line + 1
    return out


class CompactDumper(yaml.SafeDumper):
    """Block style, but a mapping or list of plain values on one line (``{action: none}``)."""

    def represent_mapping(self, tag: str, mapping: Any, flow_style: Any = None) -> Any:
        flat = all(not isinstance(v, dict | list) for v in dict(mapping).values())
        return super().represent_mapping(tag, mapping, flow_style=flat or None)

    def represent_sequence(self, tag: str, sequence: Any, flow_style: Any = None) -> Any:
        flat = all(not isinstance(v, dict | list) for v in sequence)
        return super().represent_sequence(tag, sequence, flow_style=flat or None)


def dump_compact(data: Any) -> str:
    """``data`` as YAML, keys in their order, block style with flat values on one line."""
    return yaml.dump(data, Dumper=CompactDumper, sort_keys=False, width=100)
