"""Intake checks that need the data map: a new request must give a key the map looks people up by.

A request whose keys reach no collection would search nothing, and an erasure would "complete"
having erased nothing; so it is refused before anything is written (CLI and portal alike),
naming the keys the map knows. The map's lookup keys are read once per App and version of the
file (one ``stat`` per submission otherwise). Without a readable map nothing is checked here: the
planner then puts the request in needs attention, naming the map's problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dsar.app import App
from dsar.errors import DsarError, InvalidInput
from dsar.identities import Identity

__all__ = ["KeysReachNothing", "check_keys_reach"]


class KeysReachNothing(InvalidInput):
    """A new request's keys are looked up by no collection of the data map: it is refused at
    intake, since carrying it out would search nothing (and an erasure would erase nothing).
    ``given`` and ``known`` are key names, never values."""

    def __init__(self, given: Sequence[str], known: Sequence[str]) -> None:
        self.given, self.known = tuple(sorted(given)), tuple(sorted(known))
        super().__init__(
            f"the data map looks nobody up by {', '.join(self.given)}, so this request "
            f"would search nothing; nothing was recorded",
            f"give one of the keys the map knows: {', '.join(self.known) or 'none'} "
            f"(--email, --phone, --id NAME=VALUE), or add the key to the data map")


class LookupKeys(dict[Path, tuple[tuple[int, int], frozenset[str] | None]]):
    """The lookup keys of each data map file an App read, with the file's version
    (``app.local(LookupKeys)``)."""


def _map_lookup_keys(app: App, path: Path) -> frozenset[str] | None:
    """The key names the data map at ``path`` looks subjects up by; None when there is no
    readable, valid map (then planning reports the problem). Read again when the file
    changes (size or modification time), else from memory: one stat per submission."""
    try:
        stat = path.stat()
    except OSError:
        return None
    version = (stat.st_mtime_ns, stat.st_size)
    seen = app.local(LookupKeys)
    cached = seen.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    from dsar.datamap.loader import load_datamap
    from dsar.planning import lookup_keys

    try:
        known: frozenset[str] | None = lookup_keys(load_datamap(path))
    except DsarError:
        known = None
    seen[path] = (version, known)  # one assignment: concurrent submissions store alike
    return known


def check_keys_reach(app: App, identities: Sequence[Identity]) -> None:
    """Refuse (:class:`KeysReachNothing`) identities none of whose key names the data map
    looks subjects up by. Without a readable map nothing is checked here: the planner then
    puts the request in needs attention, naming the map's problem."""
    known = _map_lookup_keys(app, Path(app.settings.datamap_path))
    given = {identity.name for identity in identities}
    if known is not None and given and not given & known:
        raise KeysReachNothing(sorted(given), sorted(known))
