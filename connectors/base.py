"""The connector contract shared by SQL, S3, SaaS and plug-in connectors, on one screen.

Shape: a *system* is one data-map entry (database, bucket, SaaS account; its kind, from
:mod:`dsar.kinds`, names the :class:`Connector` class); a *collection* is a table, object set
or API resource in it. A connector is opened for one system (:func:`open_connector`), used for
one action, and closed (``with``; ``close`` is safe twice).

Input: :data:`SubjectKeys` maps a key name (``email``, ``customer_id`` …) to the subject's
values, strings normalised as :mod:`dsar.identities` does. Convert them to the compared type;
pass them as bound parameters or encoded request fields, never in statement text or logs.
Secrets come from ``context.environ`` through the map's ``*_env`` names, never the file.

Operations (each returns a :class:`ConnectorResult`):
- ``count(keys)``: what the subject has, changing and returning nothing;
- ``collect(keys, sink)``: stream every record into the :class:`CollectionSink` in bounded
  batches (``write_rows``) or byte chunks (``write_object``);
- ``erase(keys)``: apply the map's erasure (delete, mask, retain), then recount. Idempotent
  (a second run changes nothing and reports zero changes), and it ends with ``remaining == 0``
  for every collection it was asked to clear, or raises;
- ``erase_counted(keys, record_found)``: the evidence of what was there, handed over before
  anything changes, so a retry after a crash credits this attempt.

Evidence: one :class:`~dsar.evidence.CollectionEvidence` per collection touched (counts of
rows, objects or items; ``remaining`` after erasure; ``retained_ground`` for what is kept;
kind-specific ``counts``); per-item fingerprints only as :meth:`ConnectorContext.keyed_hash`,
never a value. Evidence and records hold no personal data.

Vendor jobs: an erasure the system finishes later (a SaaS vendor's deletion job) ends
``erase`` with ``result.jobs`` (:class:`PendingJob`: a job id and how often to ask, no
personal data) and ``remaining`` unknown for its collections; the fleet keeps them in the state
database, asks ``poll_job`` on a schedule, and once every job ended ``settle`` recounts and
returns the final evidence with the vendor's final status.

Discovered keys: ``result.discover(name, values)`` for each ``provides`` key met on the way
in ``collect`` and ``erase`` (``count`` may too), so the fleet feeds collections elsewhere.

Errors: raise :class:`~dsar.errors.ConnectorError` (problem, fix, ``system``, ``collection``,
``code``) for what a person must
fix (a refused credential names its variable; needs attention), with ``transient=True`` for
what a retry may cure (timeouts, 429, 5xx, lost connections) and ``retry_after`` seconds when
the system said how long to wait. :class:`~dsar.errors.DataMapError` when the map disagrees
with the system. Any other exception is an internal error.
"""

from __future__ import annotations

import hashlib
import hmac
import os
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
    #: False: SQL connectors send every statement through SQLAlchemy (``DSAR_SQL_FAST_PATH``)
    fast_path: bool = True

    def keyed_hash(self, value: bytes | str) -> str:
        """HMAC-SHA256 of ``value`` under the deployment's key, as hex."""
        data = value.encode() if isinstance(value, str) else value
        return hmac.new(self.hash_key, data, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PendingJob:
    """A job the system runs on after ``erase`` returned: which resource and collection it
    erases, the vendor's job id (never a key value of the subject), the reference that
    evidence may show (the id itself, or a keyed hash where the id is the person's record),
    the vendor's status when last asked, and the seconds between polls the vendor suggests."""

    resource: str
    collection: str
    job_id: str
    reference: str
    status: str
    every: float


@dataclass(frozen=True)
class JobStatus:
    """How a job stands: ``state`` is ``done``, ``failed`` or ``pending``; ``status`` is the
    vendor's own word for it (``FINISHED``, ``HTTP 404: gone``)."""

    state: str
    status: str


@dataclass
class ConnectorResult:
    """Evidence per collection, the keys discovered on the way, and the vendor jobs still
    running (an erasure is finished only when ``jobs`` is empty)."""

    evidence: list[CollectionEvidence] = field(default_factory=list)
    discovered: dict[str, set[str]] = field(default_factory=dict)
    jobs: list[PendingJob] = field(default_factory=list)

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

    def poll_job(self, resource: str, job_id: str) -> JobStatus:
        """How the vendor job ``job_id`` of ``resource`` stands. Only connectors whose
        ``erase`` returns :attr:`ConnectorResult.jobs` implement it."""
        raise NotImplementedError(f"{type(self).__name__} submits no vendor jobs")

    def settle(self, keys: SubjectKeys, evidence: list[CollectionEvidence],
               finished: list[tuple[PendingJob, JobStatus]]) -> ConnectorResult:
        """The final evidence of an erasure whose jobs all ended ``done``: ``evidence`` as
        ``erase`` returned it, completed by a recount and the jobs' final statuses."""
        raise NotImplementedError(f"{type(self).__name__} submits no vendor jobs")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Safe to call twice."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def register(kind: str) -> Callable[[type[Connector]], type[Connector]]:
    """Class decorator: mark a connector class as the one for systems of ``kind``. Which class
    :func:`open_connector` uses is the kind's choice (``SystemKind.connector`` in
    :mod:`dsar.kinds`); this only sets ``cls.kind``."""

    def decorate(cls: type[Connector]) -> type[Connector]:
        cls.kind = kind
        return cls

    return decorate


def open_connector(system: Any, context: ConnectorContext) -> Connector:
    """The connector for ``system`` (a data map system), from its kind (:mod:`dsar.kinds`:
    built in, or a ``dsar.kinds`` entry-point plug-in)."""
    from dsar.kinds import kind_of

    connector: Connector = kind_of(system).open_connector(system, context)
    return connector
