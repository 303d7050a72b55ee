"""Checking a completion record against the person's receipt code: "this record is about you,
and it verifies".

The person pastes the record bundle (``dsar record ID``, or the JSON the status page offers)
and gives their receipt code and the details they made the request with. :func:`check` runs
the offline verification (:func:`dsar.records.verify.verify_bundle`) with the controller's
public keys as the trust anchor, then recomputes the record's subject commitment from those
details and the receipt code. Nothing is stored and nothing is logged but the outcome.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dsar.app import App
from dsar.db.models import CompletionRecord, Request
from dsar.errors import DsarError, NotFound
from dsar.identities import Identity
from dsar.lifecycle import TERMINAL
from dsar.locale import N_
from dsar.records.commitment import matches
from dsar.records.record_bundle import make_bundle
from dsar.records.signing import public_ring
from dsar.records.verify import verify_bundle

MAX_RECORD = 1024 * 1024
NOT_A_RECORD = N_("This is not a record from us: paste the whole record, as you received it.")


@dataclass(frozen=True)
class Outcome:
    """What the check found: ``verifies`` (signature, evidence, ledger proof) and ``about_you``
    (the commitment matches the receipt code and details given)."""

    request_id: str
    verifies: bool
    about_you: bool
    failed: list[str] = field(default_factory=list)


def check(app: App, record_text: str, receipt: str, identities: list[Identity]) -> Outcome:
    """Verify the pasted record; raises :class:`~dsar.errors.InvalidInput`-like
    :class:`DsarError` with :data:`NOT_A_RECORD` when it cannot be read as one."""
    try:
        bundle = json.loads(record_text)
        request_id = str(bundle["request_id"])
    except (ValueError, TypeError, KeyError):
        raise DsarError(NOT_A_RECORD) from None
    try:
        trusted = public_ring(app.settings)
    except DsarError:
        trusted = {}  # no keyring here: nothing can verify
    result = verify_bundle(bundle, public_keys=trusted) if trusted else None
    verifies = bool(result and result.ok)
    commitment = _commitment(bundle)
    try:
        about_you = commitment is not None and matches(
            commitment, [f"{i.name}:{i.value}" for i in identities], receipt.strip())
    except DsarError:  # a malformed receipt code: not theirs
        about_you = False
    return Outcome(request_id, verifies, about_you,
                   result.failed() if result else ["public-key"])


def _commitment(bundle: dict) -> str | None:
    """The subject commitment the (possibly unverified) statement names."""
    import base64

    try:
        statement = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
        value = statement["predicate"]["subject_commitment"]
    except (ValueError, TypeError, KeyError):
        return None
    return value if isinstance(value, str) else None


def record_json(app: App, request_id: str) -> str:
    """The record bundle of a closed request, as JSON; :class:`NotFound` otherwise."""
    with app.db.session() as session:
        request = session.get(Request, request_id)
        if (request is None or request.state not in TERMINAL
                or session.get(CompletionRecord, request_id) is None):
            raise NotFound(f"no completion record for {request_id!r}", "")
        return json.dumps(make_bundle(session, app, request_id), indent=2)
