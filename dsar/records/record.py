"""Completion records: the signed statement of what was done for one request, and when.

A record is an in-toto Statement v1 in a DSSE envelope signed with the active Ed25519 key:

* ``subject``: one entry named ``dsar-request:<request id>`` whose ``sha256`` digest is the
  SHA-256 of the canonical JSON (RFC 8785) of the predicate, so the subject pins the content;
* ``predicateType``: :data:`PREDICATE_TYPE`;
* ``predicate``: see :func:`build_predicate`. Times are UTC ISO 8601 with ``Z``, dates are the
  controller's local dates (``YYYY-MM-DD``), hashes are lowercase hex.

The evidence leaves are the canonical JSON of each evidence body, ordered by ``(system,
collection, action)`` compared as Unicode code points; ``evidence.merkle_root`` is their RFC 9162
root. A record holds no personal data: the subject is a salted commitment (the salt is only in
the requester's receipt) and evidence holds counts, digests and keyed hashes. Two free texts are
kept because they are the record's justification: the extension reason and the closing reason.
Staff must never type personal data into those.

The pure helpers (:func:`order_evidence`, :func:`evidence_root`, :func:`summarize_evidence`,
:func:`predicate_digest`) are shared with the offline verifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar import __version__, deadlines
from dsar.db.models import Bundle, CompletionRecord, EvidenceRow, Pause, Request, Task
from dsar.db.rows import fetch, insert_rows
from dsar.errors import DsarError, InvalidInput
from dsar.lifecycle import TaskState
from dsar.records import ledger, merkle
from dsar.records.canonical import canonical_json
from dsar.records.dsse import make_statement, sign_statement
from dsar.regimes import rule_for

if TYPE_CHECKING:
    from dsar.app import App

__all__ = [
    "PREDICATE_TYPE",
    "SUBJECT_PREFIX",
    "build_predicate",
    "build_record",
    "deadline_problems",
    "evidence_bodies",
    "evidence_leaves",
    "evidence_root",
    "iso",
    "order_evidence",
    "predicate_digest",
    "record_for",
    "summarize_evidence",
    "timeline_problems",
]

PREDICATE_TYPE = "https://dsar.dev/completion-record/v1"
"""The in-toto ``predicateType`` of a completion record."""

SUBJECT_PREFIX = "dsar-request:"
"""A record's subject name is this prefix followed by the request id."""

#: The fields of an evidence body that the per-system outcome repeats, in display order.
SUMMARY_FIELDS = (
    "collection", "action", "found", "collected", "deleted", "masked", "retained",
    "retained_ground", "retained_period", "remaining", "counts", "outcome", "error_code",
)


def iso(moment: datetime | None) -> str | None:
    """``moment`` as UTC ISO 8601 ending in ``Z`` (``None`` stays ``None``)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sort_key(body: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(body.get("system")), str(body.get("collection")), str(body.get("action")))


def order_evidence(bodies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Evidence bodies in leaf order: by ``(system, collection, action)``, code-point order."""
    return [dict(b) for b in sorted(bodies, key=_sort_key)]


def evidence_leaves(bodies: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """The Merkle leaves of ``bodies`` *as given* (callers order them first)."""
    return [canonical_json(dict(b)) for b in bodies]


def evidence_root(bodies: Sequence[Mapping[str, Any]]) -> str:
    """Hex RFC 9162 root over :func:`evidence_leaves` of ``bodies`` as given."""
    return merkle.root(evidence_leaves(bodies)).hex()


def predicate_digest(predicate: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``predicate``: the statement's subject digest."""
    return _sha256_hex(canonical_json(dict(predicate)))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _system_outcome(collections: Sequence[Mapping[str, Any]], failed_task: bool) -> str:
    outcomes = {c.get("outcome") for c in collections}
    if failed_task or "failed" in outcomes:
        return "failed"
    if any((c.get("remaining") or 0) > 0 for c in collections):
        return "incomplete"
    return "ok" if "ok" in outcomes else "skipped"


def summarize_evidence(
    bodies: Iterable[Mapping[str, Any]], tasks: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The outcome per system: its collections (the :data:`SUMMARY_FIELDS` of each evidence
    body, in leaf order), its tasks (``action``, ``state``, ``error_code``) and an overall
    ``outcome``: ``failed`` (a collection or task failed), ``incomplete`` (a recount found
    data left), ``ok``, or ``skipped`` (nothing was done). Systems are sorted by name."""
    systems: dict[str, dict[str, Any]] = {}
    for body in order_evidence(bodies):
        entry = systems.setdefault(str(body.get("system")), {"collections": [], "tasks": []})
        entry["collections"].append({k: body.get(k) for k in SUMMARY_FIELDS})
    for task in sorted(tasks, key=lambda t: (t["system"], t["action"])):
        entry = systems.setdefault(task["system"], {"collections": [], "tasks": []})
        entry["tasks"].append({"action": task["action"], "state": task["state"],
                               "error_code": task.get("error_code")})
    out = []
    for name in sorted(systems):
        entry = systems[name]
        failed = any(t["state"] == TaskState.FAILED or t["error_code"] for t in entry["tasks"])
        out.append({"system": name, "outcome": _system_outcome(entry["collections"], failed),
                    "collections": entry["collections"], "tasks": entry["tasks"]})
    return out


_BODIES = sa.select(EvidenceRow.body).where(EvidenceRow.request_id == sa.bindparam("request_id"))
_PAUSES = (sa.select(Pause.started_at, Pause.ended_at)
           .where(Pause.request_id == sa.bindparam("request_id"))
           .order_by(Pause.started_at, Pause.id))
_TASKS = (sa.select(Task.system, Task.action, Task.state, Task.error_code)
          .where(Task.request_id == sa.bindparam("request_id")))
_BUNDLE = (sa.select(Bundle.sha256, Bundle.size)
           .where(Bundle.request_id == sa.bindparam("request_id")))
_ENVELOPE = (sa.select(CompletionRecord.envelope)
             .where(CompletionRecord.request_id == sa.bindparam("request_id")))


def evidence_bodies(session: Session, request_id: str) -> list[dict[str, Any]]:
    """The request's evidence bodies in leaf order."""
    return order_evidence(session.connection().scalars(_BODIES, {"request_id": request_id}))


@dataclass(frozen=True)
class InHand:
    """What the transaction completing a request already holds, so that its record need not
    read it back: every task of the request as it now stands (``system``, ``action``,
    ``state``, ``error_code``) and, if given, every evidence body of the request."""

    tasks: list[dict[str, Any]]
    bodies: list[dict[str, Any]] | None = None


def build_predicate(session: Session, request: Request,
                    bundle: tuple[str, int] | None = None,
                    in_hand: InHand | None = None) -> dict[str, Any]:
    """The record's content for ``request`` (``completed_at`` must be set), from the request,
    its pauses, tasks, evidence and export bundle. Deterministic for the same rows.
    ``bundle`` (SHA-256 and size) is the export bundle's row when the caller has just written
    it, and ``in_hand`` the tasks and evidence it holds; what is not given is read."""
    if request.completed_at is None:
        raise InvalidInput(f"request {request.id} has no completion time",
                           "set request.completed_at before building its record")
    session.flush()  # the caller's pending rows (the bundle's, say) are read below
    conn, which = session.connection(), {"request_id": request.id}
    pauses = fetch(session, _PAUSES, which)
    if in_hand is not None:
        tasks = in_hand.tasks
    else:
        tasks = [{"system": system, "action": action, "state": state, "error_code": code}
                 for system, action, state, code in conn.execute(_TASKS, which)]
    if in_hand is not None and in_hand.bodies is not None:
        bodies = order_evidence(in_hand.bodies)
    else:
        bodies = evidence_bodies(session, request.id)
    if bundle is None:
        bundle = conn.execute(_BUNDLE, which).first()
    completed_local = deadlines.local_date(request.completed_at, request.timezone,
                                           what="completion time")
    effective_due = request.extended_due or request.due
    closed_as = request.state if request.state in ("rejected", "cancelled") else "completed"
    return {
        "request": {"id": request.id, "kind": request.kind, "regime": request.regime,
                    "channel": request.channel},
        "rule": {"id": request.rule_id, "version": request.rule_version,
                 "timezone": request.timezone, "holiday_calendar": request.holiday_calendar},
        "timeline": {
            "received": iso(request.received_at),
            "identity_verified": iso(request.identity_verified_at),
            "paused": [{"from": iso(start), "to": iso(end)} for start, end in pauses],
            "approved": iso(request.approved_at),
            "extended": iso(request.extended_at),
            "completed": iso(request.completed_at),
        },
        "deadline": {
            "due": _day(request.due),
            "extended_due": _day(request.extended_due),
            "extension_reason": request.extension_reason,
            "effective_due": _day(effective_due),
            "completed_local_date": _day(completed_local),
            "on_time": completed_local <= effective_due,
        },
        "result": {"state": closed_as, "closing_reason": request.closing_reason},
        "approved_by": request.approved_by,
        "datamap_digest": request.datamap_digest,
        "systems": summarize_evidence(bodies, tasks),
        "evidence": {"merkle_root": evidence_root(bodies), "leaves": len(bodies),
                     "leaf_order": ["system", "collection", "action"]},
        "export_bundle": (None if bundle is None
                          else {"sha256": bundle[0], "size": bundle[1]}),
        "subject_commitment": request.subject_commitment,
        "software": {"name": "dsar", "version": __version__},
    }


def record_for(session: Session, request_id: str) -> CompletionRecord | None:
    """The stored completion record of ``request_id``, or ``None``."""
    return session.get(CompletionRecord, request_id)


def build_record(session: Session, app: App, request: Request, *, new: bool = False,
                 bundle: tuple[str, int] | None = None,
                 in_hand: InHand | None = None) -> dict[str, Any]:
    """Build, sign, store and log the completion record of ``request``; return its envelope.

    Call inside the transaction that completes the request, holding the request row's lock
    (so a concurrent assembler of the same request waits, then finds the record), after
    setting ``request.completed_at`` (its state may still be ``in_progress``). The record is
    built and signed before the ledger lock is taken, so ledger writers wait only for each
    other's append. Writes one
    :class:`~dsar.db.models.CompletionRecord` and appends the canonical JSON of the envelope
    to the ledger, both in the caller's transaction. Idempotent: when the request already has
    a record, that envelope is returned unchanged and nothing is written (``new``: the caller
    knows there is none, e.g. it moves the request out of ``in_progress`` in this transaction,
    and it is not looked for). ``bundle`` and ``in_hand`` are passed on to
    :func:`build_predicate`. Signs with the active key (see
    :func:`dsar.records.ledger.load_signer`: generated on first use only in the embedded
    default, otherwise :class:`~dsar.errors.NotFound`).
    """
    if not new:
        existing = session.connection().scalar(_ENVELOPE, {"request_id": request.id})
        if existing is not None:
            return existing
    signer = ledger.load_signer(app.settings)
    predicate = build_predicate(session, request, bundle, in_hand)
    predicate_json = canonical_json(predicate)  # serialized once: digest and statement
    statement = make_statement(SUBJECT_PREFIX + request.id, _sha256_hex(predicate_json),
                               PREDICATE_TYPE, predicate)
    envelope = sign_statement(statement, signer, signer.keyid,
                              predicate_json=predicate_json)
    now = app.now()
    index = ledger.append(session, canonical_json(envelope), now)
    insert_rows(session, CompletionRecord.__table__, [{
        "request_id": request.id, "envelope": envelope, "ledger_index": index,
        "created_at": now}])
    return envelope


# -- consistency rules of a record's content, used by the offline verifier ---------------------


def _when(value: Any, what: str, problems: list[str]) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        problems.append(f"{what} {value!r} is not an ISO 8601 time")
        return None
    if moment.tzinfo is None:
        problems.append(f"{what} {value!r} has no time zone")
        return None
    return moment


def timeline_problems(predicate: Mapping[str, Any]) -> list[str]:
    """What is inconsistent in a predicate's timeline and deadlines (empty when nothing).

    Checked: received <= identity verified, approved, extended, every pause start <= its end
    <= completed; every pause is closed; the completed local date is the completion time's
    date in the rule's time zone; the effective due is the extended due or else the due; an
    extended due is later than the due and has a reason; the due is not before receipt;
    ``on_time`` is ``completed_local_date <= effective_due``; a rejection has a reason.
    """
    problems: list[str] = []
    tl, dl = predicate["timeline"], predicate["deadline"]
    received = _when(tl["received"], "received", problems)
    completed = _when(tl["completed"], "completed", problems)
    if received is None or completed is None:
        return problems or ["received and completed times are required"]
    if completed < received:
        problems.append("completed before it was received")
    for name in ("identity_verified", "approved", "extended"):
        moment = _when(tl.get(name), name, problems)
        if moment is not None and not received <= moment <= completed:
            problems.append(f"{name} is outside received..completed")
    for i, pause in enumerate(tl["paused"]):
        start = _when(pause["from"], f"pause {i} start", problems)
        end = _when(pause["to"], f"pause {i} end", problems)
        if pause["to"] is None:
            problems.append(f"pause {i} was never closed")
        elif start and end and not received <= start <= end <= completed:
            problems.append(f"pause {i} is outside received..completed or ends before it starts")
    tz = predicate["rule"]["timezone"]
    if dl["completed_local_date"] != deadlines.local_date(completed, tz).isoformat():
        problems.append(f"completed_local_date is not the completion date in {tz}")
    due, extended = date.fromisoformat(dl["due"]), dl["extended_due"]
    if dl["effective_due"] != (extended or dl["due"]):
        problems.append("effective_due is neither the extended due nor the due")
    if extended is not None and (date.fromisoformat(extended) <= due
                                 or not dl.get("extension_reason")):
        problems.append("extended_due must be after due and have a reason")
    if extended is None and dl.get("extension_reason"):
        problems.append("an extension reason without an extended due")
    if due < deadlines.local_date(received, tz):
        problems.append("due is before the request was received")
    on_time = date.fromisoformat(dl["completed_local_date"]) <= date.fromisoformat(
        dl["effective_due"])
    if dl["on_time"] is not on_time:
        problems.append(f"on_time is {dl['on_time']} but completion is "
                        f"{'within' if on_time else 'after'} the effective due date")
    result = predicate["result"]
    if result["state"] == "rejected" and not result.get("closing_reason"):
        problems.append("a rejection without its reason")
    return problems


def deadline_problems(predicate: Mapping[str, Any]) -> tuple[list[str], str]:
    """Re-run the named deadline rule on the recorded times: ``(problems, detail)``.

    When this installation does not know the rule at the recorded version, nothing is
    recomputed and the detail says so (no problem is reported for that alone).
    """
    rule, regime = predicate["rule"], predicate["request"]["regime"]
    try:
        current = rule_for(regime)
    except DsarError:
        return [], f"regime {regime!r} is unknown to this verifier; not recomputed"
    if (current.id, current.version) != (rule["id"], rule["version"]):
        return [], (f"rule {rule['id']}@{rule['version']} is not this verifier's "
                    f"{current.id}@{current.version}; not recomputed")
    problems: list[str] = []
    tl, dl = predicate["timeline"], predicate["deadline"]
    completed = _when(tl["completed"], "completed", problems)
    pauses = [(_when(p["from"], "pause", problems), _when(p["to"], "pause", problems))
              for p in tl["paused"]]
    got = deadlines.compute_deadlines(
        current, _when(tl["received"], "received", problems),  # type: ignore[arg-type]
        tz=rule["timezone"], calendar=rule["holiday_calendar"],
        pauses=[(a, b) for a, b in pauses if a is not None],
        identity_confirmed_at=_when(tl.get("identity_verified"), "identity", problems),
        now=completed,
    )
    if got.due.isoformat() != dl["due"]:
        problems.append(f"the rule gives due {got.due}, the record says {dl['due']}")
    if dl["extended_due"] is not None and (
            got.extended_due is None or got.extended_due.isoformat() != dl["extended_due"]):
        problems.append(f"the rule gives extended due {got.extended_due}, the record says "
                        f"{dl['extended_due']}")
    return problems, f"rule {current.id}@{current.version} re-run: due {got.due}"
