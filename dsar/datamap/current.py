"""The data map in force: the file ``DSAR_DATAMAP`` names, parsed once per version per App.

:func:`load_map` is how the fleet, the portal and the mail read the map: the file is read and
hashed on every call, and parsed and validated only when its digest changed. The parsed map
lives on the App (``app.local(LoadedMaps)``), with the plans the fleet made from it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from dsar.app import App
from dsar.datamap.loader import load_datamap, parse_datamap
from dsar.datamap.schema import DataMap
from dsar.errors import DataMapError, DsarError
from dsar.planning import Plan


@dataclass
class LoadedMap:
    """One version of the data map file, parsed and validated, with the plans made from it
    (a plan depends on the map and the subject's key names only, never on their values)."""

    digest: str
    datamap: DataMap
    plans: dict[tuple[frozenset[str], str], tuple[Plan, str]] = field(default_factory=dict)


class LoadedMaps(dict[Path, LoadedMap]):
    """The current version of each data map file an App read (``app.local(LoadedMaps)``);
    a new version replaces the old one, and its plans with it."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


def load_map(app: App) -> tuple[DataMap, str]:
    """The data map and the SHA-256 of its file, or DataMapError naming the fix."""
    loaded = loaded_map(app)
    return loaded.datamap, loaded.digest


def loaded_map(app: App) -> LoadedMap:
    """The current version of the App's data map file, parsed (see the module docstring);
    DataMapError naming the fix when there is none or it does not validate."""
    path = Path(app.settings.datamap_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataMapError(f"no data map at {path}",
                           "write one (`dsar datamap discover URL -o FILE`) and set DSAR_DATAMAP"
                           ) from None
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    maps = app.local(LoadedMaps)
    cached = maps.get(path)
    if cached is not None and cached.digest == digest:
        return cached
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        load_datamap(path)  # raises the loader's DataMapError
        raise
    loaded = LoadedMap(digest, parse_datamap(text, str(path)))
    with maps.lock:
        maps[path] = loaded
    return loaded


def controller_name(app: App) -> str:
    """The controller's name from the data map (in the portal's pages and the emails), or
    "us" when the map has none or cannot be read."""
    try:
        datamap, _ = load_map(app)
    except DsarError:
        return "us"
    return datamap.controller.name if datamap.controller is not None else "us"
