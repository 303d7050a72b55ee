"""The connector contract shared by SQL, S3 and SaaS connectors.

A *system* is one entry of the data map (a database, a bucket, a SaaS account); a *collection*
is a table, an object set or an API resource inside it. A connector is opened for one system,
used for one action, and closed.

Keys: :data:`SubjectKeys` maps a key name (``email``, ``phone``, ``customer_id`` …) to the set of
values known for the subject. Values are strings, normalised as :mod:`dsar.identities` does;
connectors convert them to the column or field type they compare with, and always pass them
as bound parameters, never in statement text.

Both ``collect`` and ``erase`` return the keys they discovered (the ``provides`` of the data map)
so the fleet can feed them to collections in other systems. ``erase`` must be idempotent: run a
second time it reports zero changes; and it must end with a recount whose ``remaining`` is 0 for
every collection it was asked to clear, or raise.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from dsar.evidence import CollectionEvidence

SubjectKeys = Mapping[str, frozenset[str]]


class CollectionSink(Protocol):
    """Where collected data goes (an encrypted staging area, a bundle, or nowhere in a benchmark).

    ``write_rows`` is called once per batch, so a sink sees the data in bounded pieces;
    ``write_object`` streams one object's bytes.
    """

    def write_rows(
        self, system: str, collection: str, rows: Iterable[Mapping[str, Any]]
    ) -> None: ...

    def write_object(
        self,
        system: str,
        collection: str,
        name: str,
        metadata: Mapping[str, str],
        chunks: Iterator[bytes],
    ) -> None: ...


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector needs from its surroundings.

    ``environ`` resolves the ``*_env`` references of the data map (secrets never live in the
    file); ``hash_key`` keys the HMAC used for per-item evidence and the ``hash`` mask strategy.
    """

    hash_key: bytes
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def keyed_hash(self, value: bytes | str) -> str:
        """HMAC-SHA256 of ``value`` under the deployment's key, as hex."""
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self.hash_key, data, hashlib.sha256).hexdigest()


@dataclass
class ConnectorResult:
    """Evidence per collection, and the keys discovered on the way."""

    evidence: list[CollectionEvidence] = field(default_factory=list)
    discovered: dict[str, set[str]] = field(default_factory=dict)

    def discover(self, name: str, values: Iterable[Any]) -> None:
        self.discovered.setdefault(name, set()).update(str(v) for v in values if v is not None)


class Connector(ABC):
    """One system's adapter. Subclasses set ``kind`` and implement the three operations."""

    kind: ClassVar[str]

    def __init__(self, system: Any, context: ConnectorContext) -> None:
        self.system = system
        self.context = context

    @abstractmethod
    def collect(self, keys: SubjectKeys, sink: CollectionSink) -> ConnectorResult:
        """Stream every record of the subject into ``sink``; report what was collected."""

    @abstractmethod
    def erase(self, keys: SubjectKeys) -> ConnectorResult:
        """Apply the data map's erasure to the subject's records, then recount."""

    @abstractmethod
    def count(self, keys: SubjectKeys) -> ConnectorResult:
        """Count the subject's records without changing or returning them."""

    def erase_counted(self, keys: SubjectKeys,
                      record_found: Callable[[list[CollectionEvidence]], None]
                      ) -> ConnectorResult:
        """:meth:`erase`, first handing ``record_found`` evidence of what the subject's records
        were before anything changed (``found`` per collection), so that a retry after a crash
        can credit what this attempt erased. ``record_found`` is called once; if it raises,
        nothing is erased. This default counts (:meth:`count`), then erases; a connector whose
        erasure is one transaction can instead record from inside it, before it commits."""
        record_found(self.count(keys).evidence)
        return self.erase(keys)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Safe to call twice."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_FACTORIES: dict[str, Callable[[Any, ConnectorContext], Connector]] = {}


def register(kind: str) -> Callable[[type[Connector]], type[Connector]]:
    """Class decorator: make ``open_connector`` use this class for systems of ``kind``."""

    def decorate(cls: type[Connector]) -> type[Connector]:
        cls.kind = kind
        _FACTORIES[kind] = cls
        return cls

    return decorate


_BUILTIN_LOADED = threading.Event()
_BUILTIN_LOCK = threading.Lock()


def _load_builtin_connectors() -> None:
    """Import the built-in connectors once; threads wait until all of them are registered."""
    if _BUILTIN_LOADED.is_set():
        return
    with _BUILTIN_LOCK:
        if not _BUILTIN_LOADED.is_set():
            import connectors.s3
            import connectors.saas
            import connectors.sql  # noqa: F401

            _BUILTIN_LOADED.set()


def open_connector(system: Any, context: ConnectorContext) -> Connector:
    """The connector for ``system`` (a data map system), by its ``kind``."""
    _load_builtin_connectors()
    try:
        factory = _FACTORIES[system.kind]
    except KeyError:
        raise ValueError(f"no connector for systems of kind {system.kind!r}") from None
    return factory(system, context)
