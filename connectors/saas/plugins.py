"""SaaS vendors from other packages, through the ``dsar.saas_vendors`` entry-point group.

An entry point's name is the vendor's name (``vendor:`` in the data map); it loads to the
path of a vendor definition file (a ``str`` or ``Path``, e.g. ``importlib.resources`` of the
package's own YAML) or to its text. The definition is read by the one runtime like a shipped
vendor (docs/saas.md, "The vendor format"); a plug-in may not shadow a shipped vendor.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from connectors.saas.definition import VendorDefinition
from connectors.saas.loading import known_vendors, parse_definition, vendor_definition
from dsar.errors import DataMapError

VENDOR_GROUP = "dsar.saas_vendors"


def plugin_vendors() -> dict[str, EntryPoint]:
    """Installed vendor plug-ins by name (shipped names excluded)."""
    shipped = set(known_vendors())
    return {ep.name: ep for ep in entry_points(group=VENDOR_GROUP) if ep.name not in shipped}


def all_vendors() -> list[str]:
    """Every vendor a data map may name: shipped and plug-ins."""
    return sorted({*known_vendors(), *plugin_vendors()})


@cache
def _plugin_definition(name: str, value: str) -> VendorDefinition:
    ep = plugin_vendors()[name]
    try:
        loaded = ep.load()
        text = Path(loaded).read_text(encoding="utf-8") if isinstance(loaded, Path) or (
            isinstance(loaded, str) and "\n" not in loaded) else str(loaded)
    except Exception as exc:
        raise DataMapError(f"SaaS vendor plug-in {name!r} ({value}) failed to load: {exc}",
                           "fix or uninstall the package that provides it") from None
    definition = parse_definition(text, f"{ep.value} ({name})")
    if definition.name != name:
        raise DataMapError(f"SaaS vendor plug-in {name!r} defines vendor {definition.name!r}",
                           f"its definition must say 'name: {name}'")
    return definition


def definition_for(name: str) -> VendorDefinition:
    """The definition of vendor ``name``: shipped, else a plug-in; DataMapError listing every
    known vendor otherwise."""
    if name in known_vendors():
        return vendor_definition(name)
    plugins = plugin_vendors()
    if name in plugins:
        return _plugin_definition(name, plugins[name].value)
    raise DataMapError(f"unknown SaaS vendor {name!r}", f"use one of: {', '.join(all_vendors())}")
