"""Values derived from live objects, kept as long as those objects live.

Much is derived from one version of the data map: a system's walk for a set of key names, the
statements of a walk over reflected tables, the row layouts of an erasure, a collection's
labels. Those depend on the objects only (a loaded map, its systems and walks never change), so
they are worth keeping between tasks, and they must go with the map version they came from.

:class:`DerivedFrom` keys them by the identity of the objects they came from (no hashing of a
whole system on every look-up) and holds those objects weakly: an entry goes when any of them is
collected (a reloaded map replaces the old version's objects), and an ``id()`` reused by a new
object never finds an old entry. ``limit`` bounds the entries live objects may hold; past it
the oldest goes first.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class DerivedFrom(Generic[V]):
    """``memo.get(objects, extra, make)``: the value ``make()`` built for these objects (by
    identity) and ``extra`` (by value), built once while they live; with ``keep``, a value
    for which ``keep(value)`` is false is returned but not kept."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: dict[Hashable, tuple[tuple[weakref.ref[Any], ...], V]] = {}
        self._lock = threading.Lock()

    def get(self, objects: tuple[object, ...], extra: Hashable, make: Callable[[], V],
            keep: Callable[[V], bool] | None = None) -> V:
        key = (*[id(obj) for obj in objects], extra)
        hit = self._entries.get(key)
        if hit is not None:
            for ref, obj in zip(hit[0], objects):  # noqa: B905 - one ref per object
                if ref() is not obj:
                    break
            else:
                return hit[1]
        value = make()
        if keep is not None and not keep(value):
            return value

        def drop(_ref: weakref.ref[Any], key: Hashable = key) -> None:
            self._entries.pop(key, None)  # no lock: a collection may run inside one

        refs = tuple(weakref.ref(obj, drop) for obj in objects)
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self.limit:
                self._entries.pop(next(iter(self._entries)), None)
            self._entries[key] = (refs, value)
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
