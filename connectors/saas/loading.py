"""Reading vendor definitions: a YAML file or text validated into a
:class:`~connectors.saas.definition.VendorDefinition`, and the vendors dsar ships.

Contract: every function returns a valid definition or raises
:class:`~dsar.errors.DataMapError` whose message starts with ``file:line`` of the offending
entry and says what to write instead.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from connectors.saas.definition import VendorDefinition
from dsar.errors import DataMapError

PathT = tuple[str | int, ...]
FORMAT_DOC = "see docs/saas.md"


def _lines(node: yaml.Node, path: PathT, out: dict[PathT, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            out[(*path, name)] = key.start_mark.line + 1
            _lines(value, (*path, name), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _lines(value, (*path, i), out)


def parse_definition(text: str, source: str) -> VendorDefinition:
    """Validate vendor YAML ``text``; ``source`` names it in messages (``source:line``)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"{source}:{mark.line + 1}" if mark else source
        raise DataMapError(f"{at}: vendor file is not valid YAML: {exc.problem or exc.context}",
                           "fix the YAML syntax (indentation, ':' or quotes)") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise DataMapError(f"{source}: vendor file is not valid YAML: {exc}",
                           "fix the YAML syntax") from None
    if node is None or not isinstance(data, dict):
        raise DataMapError(f"{source}:1: vendor file is empty or not a mapping",
                           f"write a vendor definition; {FORMAT_DOC}")
    lines: dict[PathT, int] = {}
    _lines(node, (), lines)
    try:
        return VendorDefinition.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc: PathT = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        named = re.search(r"resource '([a-z0-9_]+)'", err["msg"])
        if not loc and named:  # a whole-file rule about one resource: point at it
            loc = ("resources", named.group(1))
        line = 1
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        where = ".".join(str(p) for p in loc) or "top level"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        message = err["msg"].removeprefix("Value error, ")
        raise DataMapError(f"{source}:{line}: {where}: {message}{more}",
                           f"correct the vendor file; {FORMAT_DOC}") from None


def load_definition(path: str | Path) -> VendorDefinition:
    """Read and validate the vendor file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataMapError(f"cannot read vendor file {path}: {exc}",
                           "give a readable UTF-8 YAML file") from None
    return parse_definition(text, str(path))


def known_vendors() -> list[str]:
    """Names of the vendors shipped with dsar (``connectors/saas/vendors/*.yaml``)."""
    folder = resources.files("connectors.saas") / "vendors"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


@cache
def vendor_definition(name: str) -> VendorDefinition:
    """The shipped definition of vendor ``name``; DataMapError listing the known ones."""
    known = known_vendors()
    if name not in known:
        raise DataMapError(f"unknown SaaS vendor {name!r}",
                           f"use one of: {', '.join(known)}")
    item = resources.files("connectors.saas") / "vendors" / f"{name}.yaml"
    source = f"connectors/saas/vendors/{name}.yaml"
    definition = parse_definition(item.read_text(encoding="utf-8"), source)
    if definition.name != name:
        raise DataMapError(f"{source}:1: name {definition.name!r} differs from the file name",
                           f"write 'name: {name}'")
    return definition
