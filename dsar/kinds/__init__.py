"""System kinds as plug-ins: one :class:`SystemKind` per ``kind:`` of the data map.

A kind supplies everything dsar needs to know about a system of that kind, so that planning,
the loader, ``datamap check`` and the bundle description never branch on the kind themselves:

- ``model``: its data-map schema (a subclass of :class:`~dsar.datamap.schema.SystemBase` whose
  ``kind`` field is ``Literal["<name>"]``); the map's ``systems`` union is built from the
  registry (:func:`datamap_model`);
- planning hooks: :meth:`~SystemKind.lookups` (key names it looks subjects up by),
  :meth:`~SystemKind.provided` (key names it can provide), :meth:`~SystemKind.reach` (its
  collections reached from the available keys, with their matches and order);
- description: :meth:`~SystemKind.collections`, :meth:`~SystemKind.spec` (the entry with
  ``label``, ``info``, ``columns``, ``category`` for bundles and records) and
  :meth:`~SystemKind.erasure`;
- :meth:`~SystemKind.cross_reference` (map-only findings) and :meth:`~SystemKind.check`
  (findings against the live system);
- ``connector``: ``"module:Class"`` of its connector (:mod:`connectors.base`), imported only
  when a connector is opened, so the domain never imports connectors.

Every kind, built in or not, is an entry point in the group ``dsar.kinds`` (``name =
"package.module:KindClass"``, the entry point's name equal to the kind's ``name``). SQL, S3 and
SaaS are dsar's own (:mod:`connectors.kinds`, declared in its ``pyproject.toml``) and load
first, so a plug-in of the same name replaces one; this module imports none of them. A SaaS
vendor is a plug-in one level down, in ``dsar.saas_vendors`` (see
:mod:`connectors.saas.plugins`). A plug-in that fails to load is a
:class:`~dsar.errors.DataMapError` naming the entry point.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import Field, create_model

from dsar.datamap.schema import DataMap, ErasureSpec, SystemBase
from dsar.errors import DataMapError

if TYPE_CHECKING:
    from dsar.datamap.findings import Finding
    from dsar.planning import Match

KIND_GROUP = "dsar.kinds"
DISTRIBUTION = "dsar"  #: whose entry points are the built-in kinds


@dataclass(frozen=True)
class Reach:
    """What one system offers a request whose subject is known by some key names:
    ``matches`` per reached collection, the key names those collections ``provides``, and the
    order its collections run in for collection (``discovery``) and erasure (``erase_order``);
    both default to the order of ``matches``. ``notes`` explain choices (a broken cycle)."""

    matches: Mapping[str, tuple[Match, ...]]
    provides: frozenset[str] = frozenset()
    discovery: tuple[str, ...] | None = None
    erase_order: tuple[str, ...] | None = None
    notes: tuple[str, ...] = ()

    def order(self, erasure: bool) -> list[str]:
        chosen = self.erase_order if erasure else self.discovery
        return list(self.matches if chosen is None else chosen)


class SystemKind:
    """The interface of a system kind. Subclasses set ``name``, ``model`` and ``connector``
    and implement :meth:`collections`, :meth:`lookups` and :meth:`reach`; the rest has
    defaults that suit a kind whose collections are entries with a ``name``."""

    name: ClassVar[str]
    model: ClassVar[type[SystemBase]]
    connector: ClassVar[str]

    def collections(self, system: Any) -> list[str]:
        """Every collection of ``system``, in data-map order."""
        raise NotImplementedError

    def lookups(self, system: Any) -> Iterator[tuple[str, str | None, str]]:
        """``(key, collection or None, field)`` for every key name ``system`` looks subjects
        up by; ``field`` names where the map says so (``identities``, ``match`` …)."""
        raise NotImplementedError

    def provided(self, system: Any) -> set[str]:
        """Key names ``system`` can provide to other systems."""
        return set(getattr(system, "provides", ()) or ())

    def reach(self, system: Any, available: set[str]) -> Reach:
        """The collections reached when the key names ``available`` are known."""
        raise NotImplementedError

    def spec(self, system: Any, collection: str) -> object | None:
        """The map's entry for ``collection`` (``label``, ``info``, ``columns``, ``category``
        are read from it when present), or None."""
        return None

    def erasure(self, system: Any, collection: str) -> ErasureSpec:
        """What erasure does to ``collection``: its entry's ``erasure``, else the system's."""
        own = getattr(self.spec(system, collection), "erasure", None)
        return own if own is not None else system.erasure

    def cross_reference(self, system: Any, index: int, where: Any) -> list[Finding]:
        """Findings about names inside ``system`` that the schema alone cannot check;
        ``where`` turns a path (``("systems", index, …)``) into a place."""
        return []

    def check(self, system: Any, environ: Mapping[str, str], available: set[str],
              configured_only: bool) -> list[Finding]:
        """Findings against the live system (``datamap check``); reads, never changes."""
        return []

    def open_connector(self, system: Any, context: Any) -> Any:
        """A :class:`connectors.base.Connector` for ``system``."""
        module, _, attr = self.connector.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        return factory(system, context)


# The process's registry of system kinds, like SQLAlchemy's dialect registry: the installed
# entry points (loaded on first use, not at import) and kinds registered by a call.
_KINDS: dict[str, SystemKind] = {}
_LOCK = threading.Lock()
_LOADED = threading.Event()


def register_kind(kind: SystemKind | type[SystemKind]) -> SystemKind:
    """Add ``kind`` (a class or an instance) to the registry; a later one of the same name
    replaces an earlier one. Returns the instance."""
    instance = kind() if isinstance(kind, type) else kind
    _KINDS[instance.name] = instance
    datamap_model.cache_clear()
    return instance


def _load() -> None:
    if _LOADED.is_set():
        return
    with _LOCK:
        if _LOADED.is_set():
            return
        for ep in _kind_entry_points():
            try:
                loaded = ep.load()
                instance = loaded() if isinstance(loaded, type) else loaded
            except Exception as exc:
                raise DataMapError(
                    f"system kind plug-in {ep.name!r} ({ep.value}) failed to load: {exc}",
                    "fix or uninstall the package that provides it") from None
            if getattr(instance, "name", None) != ep.name or not isinstance(
                    instance, SystemKind):
                raise DataMapError(
                    f"system kind plug-in {ep.name!r} ({ep.value}) is not a SystemKind named "
                    f"{ep.name!r}", "fix or uninstall the package that provides it")
            register_kind(instance)
        _LOADED.set()


def _kind_entry_points() -> list[EntryPoint]:
    """The ``dsar.kinds`` entry points, dsar's own first; DataMapError when dsar's are missing
    (its package metadata predates them: reinstall)."""
    found = list(entry_points(group=KIND_GROUP))
    own = [ep for ep in found if ep.dist is not None and ep.dist.name == DISTRIBUTION]
    if not own:
        raise DataMapError("dsar's built-in system kinds (sql, s3, saas) are not registered: "
                           "its package metadata is missing or out of date",
                           "reinstall dsar (pip install -e . in a checkout)")
    return own + [ep for ep in found if ep not in own]


def kinds() -> dict[str, SystemKind]:
    """Every registered kind by name: the built-in ones, then plug-ins."""
    _load()
    return dict(_KINDS)


def kind_of(system: Any) -> SystemKind:
    """The kind of ``system`` (a data-map system, or a kind name)."""
    name = system if isinstance(system, str) else system.kind
    _load()
    try:
        return _KINDS[name]
    except KeyError:
        raise DataMapError(f"unknown system kind {name!r}",
                           f"use one of: {', '.join(sorted(_KINDS))}") from None


@cache
def datamap_model() -> type[DataMap]:
    """:class:`DataMap` whose ``systems`` accept every registered kind (built in and
    plug-ins), discriminated by ``kind``. Rebuilt when the registry changes."""
    _load()
    models = tuple(kind.model for kind in _KINDS.values())
    union: Any = Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007
    return create_model("DataMap", __base__=DataMap, __module__=DataMap.__module__,
                        systems=(list[union], Field(min_length=1)))


def systems_of(systems: Iterable[Any]) -> Iterator[tuple[Any, SystemKind]]:
    """``(system, kind)`` for every system."""
    for system in systems:
        yield system, kind_of(system)
