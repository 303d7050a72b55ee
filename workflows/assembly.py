"""The completion step: a request whose tasks are all done gets its bundle (access, export:
encrypted, stored, with an expiring link), its signed completion record appended to the ledger,
and becomes completed, all in one transaction (:func:`complete_request`, where every completion
ends); its staged data and discovered keys are purged with it.

A request's tasks reach the step one way: the transaction that records the last of them hands
the request to :func:`after_last_task`, under the request row's lock (the fan-in, see
:mod:`workflows.fanout`). There the request is either completed at once, in that transaction,
when the task's worker holds everything the request collected (one system collected, or none,
and all of it is still in memory: less than one staging flush) and serves the control queue;
or the step's message is enqueued, and :func:`assemble` runs it wherever it is delivered: the
bundle from the staged data, then the completion. A plan with no tasks and a retried or
replanned request enqueue the same message.

Idempotent: running the step again finds the request completed and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar import requests
from dsar.app import App
from dsar.bundles.build import build_bundle
from dsar.bundles.items import BundleInfo, BundleMeta, ItemsFactory
from dsar.bundles.store import BundleStore, open_store
from dsar.datamap.current import load_map
from dsar.db.models import (
    Bundle,
    EvidenceRow,
    MessageRow,
    Request,
    StagedItem,
    SubjectKey,
    Task,
)
from dsar.db.rows import insert_rows, send
from dsar.errors import DsarError
from dsar.lifecycle import State, TaskState
from dsar.mail.queue import ON_COMPLETION, tell_subject
from dsar.records.record import InHand, build_record
from workflows import fanout, tracing
from workflows.staging import Collected, read_staged

log = logging.getLogger("dsar.assembly")


def bundle_store(app: App) -> BundleStore:
    """Where bundles are kept (DSAR_EXPORT_URL)."""
    url = app.settings.export_url
    if url.startswith("s3://"):
        return open_store(url, endpoint_url=app.settings.export_endpoint_url,
                          sse=app.settings.export_sse)
    return open_store(url)


_EVIDENCE_OF = (sa.select(EvidenceRow.body)
                .where(EvidenceRow.request_id == sa.bindparam("request_id"),
                       EvidenceRow.action == "collect")
                .order_by(EvidenceRow.id))


def searched_collections(bodies: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The ``(system, collection)`` pairs the evidence ``bodies`` show were searched (collected
    from, even if nothing was found), in order, each once."""
    return tuple(dict.fromkeys(
        (b["system"], b["collection"]) for b in bodies
        if b.get("action") == "collect" and b.get("outcome", "ok") == "ok"))


def request_language(conn: sa.Connection, request_id: str, channel: str | None = None) -> str:
    """The language the person used: that of the request's first message (the portal's form
    writes it), English for a request filed without one (the CLI: a ``channel`` other than
    web or api is not looked up)."""
    if channel is not None and channel not in ("web", "api"):
        return "en"
    language = conn.scalar(sa.select(MessageRow.language)
                           .where(MessageRow.request_id == request_id)
                           .order_by(MessageRow.id).limit(1))
    return language or "en"


def _make_bundle(app: App, request: Request, items: ItemsFactory | None = None,
                 bodies: list[dict[str, Any]] | None = None,
                 language: str | None = None) -> BundleInfo:
    """Build and store the bundle from ``items`` (by default the staged data), under the same
    id each time, so a re-run replaces it. ``bodies``: the request's evidence (read if not
    given), which names the collections searched, listed in the bundle even when empty;
    ``language``: report.html's, the person's (:func:`request_language`, read if not given)."""
    datamap, _digest = load_map(app)
    if bodies is None or language is None:
        with app.db.engine.connect() as conn:
            if bodies is None:
                bodies = list(conn.scalars(_EVIDENCE_OF, {"request_id": request.id}))
            language = language or request_language(conn, request.id, request.channel)
    meta = BundleMeta(request_id=request.id, kind=request.kind,  # type: ignore[arg-type]
                      bundle_id=f"b_{request.id}", timezone=request.timezone,
                      link_ttl=timedelta(days=app.settings.link_ttl_days),
                      searched=searched_collections(bodies),
                      language=language)
    return build_bundle(meta, datamap, items or (lambda: read_staged(app, request.id)),
                        bundle_store(app), app.keys.bundle_key, app.now())


def assemble(app: App, request_id: str) -> None:
    """The completion step from its message: if the request is in progress, build its bundle
    from the staged data (outside any transaction), then complete it (:func:`complete_request`)
    in one transaction that finds it, under its lock, still in progress with every task done. A
    bundle that cannot be built or a record that cannot be signed puts the request in
    ``needs_attention``."""
    with tracing.span("dsar.assemble", {"dsar.request_id": request_id}):
        with app.db.session() as session:
            request = session.get(Request, request_id)
        if request is None or request.state != State.IN_PROGRESS:
            return
        try:
            info = _make_bundle(app, request) if request.kind in ("access", "export") else None
            completed = _complete(app, request_id, info)
        except DsarError as err:
            if fanout.flag_attention(app, request_id, f"assembly failed: {err.one_line()}",
                                     event="assembly_failed"):
                log.warning("request %s needs attention: its assembly failed (`dsar show` "
                            "says why)", request_id, extra={"request_id": request_id})
            return
    if completed:
        log.info("request %s completed", request_id, extra={"request_id": request_id})


_TASK_STATES = sa.select(Task.state).where(Task.request_id == sa.bindparam("request_id"))
_PURGE_STAGED = sa.delete(StagedItem).where(StagedItem.request_id == sa.bindparam("request_id"))
_PURGE_KEYS = sa.delete(SubjectKey).where(SubjectKey.request_id == sa.bindparam("request_id"))


def _complete(app: App, request_id: str, bundle: BundleInfo | None) -> bool:
    """:func:`complete_request` in a transaction of its own, under the request row's lock, if
    the request is still in progress; whether it was."""
    with app.db.session() as session:
        request = fanout.lock_request(session, request_id)
        if request.state != State.IN_PROGRESS:
            return False
        states = set(session.connection().scalars(_TASK_STATES, {"request_id": request_id}))
        if states - {TaskState.DONE}:
            raise DsarError(f"request {request_id} still has unfinished tasks",
                            f"see `dsar show {request_id}`")
        complete_request(session, app, request, bundle)
        return True


def complete_request(session: Session, app: App, request: Request, bundle: BundleInfo | None,
                     *, purge_staged: bool = True, purge_keys: bool = True,
                     in_hand: InHand | None = None) -> None:
    """Complete ``request`` in the caller's transaction, which holds its row's lock and has
    found it in progress with every task done: the bundle's row, the signed record and its
    ledger entry, the state change, and the purge of staged data and discovered keys (each
    can be skipped by a caller that knows there is none). ``in_hand``: the tasks and evidence
    the caller holds, which the record then does not read back.

    The bundle row and the record are written only here, in the transaction that moves the
    request out of ``in_progress``; so a request still in progress has neither, and a
    concurrent or repeated assembly finds the request completed and does nothing."""
    now = app.now()
    if bundle is not None:
        insert_rows(session, Bundle.__table__, [{
            "id": bundle.bundle_id, "request_id": request.id, "location": bundle.location,
            "sha256": bundle.sha256, "size": bundle.size, "created_at": bundle.created_at,
            "link_expires_at": bundle.expires_at, "deleted_at": None, "delete_after":
            bundle.created_at + timedelta(days=app.settings.bundle_retention_days)}])
    requests.move(session, request, now, "worker", State.COMPLETED, None, event="completed",
                  completed_at=now)
    tell_subject(session, app, request, ON_COMPLETION.get(request.kind))  # if it has an email
    # staged items and keys: never loaded as objects
    if purge_staged:
        send(session, _PURGE_STAGED, {"request_id": request.id})
    if purge_keys:
        send(session, _PURGE_KEYS, {"request_id": request.id})
    # Last: the ledger's exclusive lock, taken for the record's entry, is held until the
    # commit, and every completion in the fleet waits for it. In progress until now, under
    # its lock: the request has no record yet (see above).
    build_record(session, app, request, new=True, in_hand=in_hand,
                 bundle=None if bundle is None else (bundle.sha256, bundle.size))


@dataclass(frozen=True)
class Held:
    """Everything a request collected, still in the memory of the worker whose task was its
    last (``items`` None: it collected nothing, an erasure say), never staged."""

    items: Collected | None


def after_last_task(session: Session, app: App, request: Request, tasks: Sequence[Task],
                    bodies: list[dict[str, Any]] | None, held: Held | None) -> str:
    """The completion step's entry, in the transaction that records ``request``'s last task,
    under the request row's lock: with ``held`` (the caller serves the control queue and holds
    all the request collected; the request is in progress), complete it now, from the items in
    hand, and return ``"completed"``; otherwise enqueue the step's message for
    :func:`assemble` and return ``"done"``. ``tasks``: the request's tasks, all done now;
    ``bodies``: every evidence body of the request, if the caller holds them (else read).

    Raises :class:`workflows.fanout.NotCompletedHere` if completing here fails: the caller's
    transaction must then roll back."""
    if held is None:
        fanout.enqueue_assembly(session, request, app.now())
        return "done"
    in_hand = InHand([{"system": t.system, "action": t.action, "state": t.state,
                       "error_code": t.error_code} for t in tasks], bodies)
    try:
        with tracing.span("dsar.complete", {"dsar.request_id": request.id}):
            info = None
            if request.kind in ("access", "export"):
                if bodies is None:  # others' evidence is only in the database (this one's too)
                    bodies = list(session.connection().scalars(_EVIDENCE_OF,
                                                               {"request_id": request.id}))
                language = request_language(session.connection(), request.id, request.channel)
                items = held.items
                info = _make_bundle(app, request,
                                    lambda: items.items() if items else iter(()),
                                    bodies, language)
            complete_request(session, app, request, info, purge_staged=False,
                             purge_keys=any(t.depends_on for t in tasks), in_hand=in_hand)
    except Exception as exc:
        raise fanout.NotCompletedHere(type(exc).__name__) from exc  # its text may quote data
    return "completed"
