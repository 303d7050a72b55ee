"""Verifying a web request by email: a link, or a six-digit code as the alternative.

The link's token and the code are HMACs of a random nonce under a key derived from the master
key, so the state database holds neither (nor a hash that a guess could be tested against
without the key). A code allows :data:`MAX_ATTEMPTS` wrong tries; both stop working after
``DSAR_VERIFY_HOURS``, when :func:`expire_unverified` closes the request with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.db.models import Request, Verification
from dsar.errors import DsarError, InvalidInput
from dsar.lifecycle import State

MAX_ATTEMPTS = 5
METHOD = "email address confirmed ({how})"


@dataclass(frozen=True)
class Confirmed:
    """A verified request, and its receipt code when this is the first time it is shown."""

    request: Request
    receipt: str | None


def _mac(app: App, purpose: str, nonce: str) -> bytes:
    return hmac.new(app.keys.link_key, f"dsar-verify/1\n{purpose}\n{nonce}".encode(),
                    hashlib.sha256).digest()


def token_for(app: App, row: Verification) -> str:
    return _mac(app, "link", row.nonce).hex()[:40]


def code_for(app: App, row: Verification) -> str:
    return f"{int.from_bytes(_mac(app, 'code', row.nonce)[:8], 'big') % 1_000_000:06d}"


def start(session: sa.orm.Session, app: App, request: Request, receipt: str) -> Verification:
    """The verification of a new web request, holding its receipt code sealed until shown."""
    now = app.now()
    row = Verification(
        request_id=request.id, nonce=secrets.token_hex(16), created_at=now,
        expires_at=now + timedelta(hours=app.settings.verify_hours), failed_attempts=0,
        used_at=None,
        sealed_receipt=app.keys.identity_cipher.seal(receipt.encode(), b"receipt:" +
                                                     request.id.encode()))
    session.add(row)
    return row


_WRONG = InvalidInput("this confirmation link or code is not valid, or has expired",
                      "use the newest message we sent you, or make the request again")


def confirm(app: App, request_id: str, *, token: str | None = None,
            code: str | None = None) -> Confirmed:
    """Check the link's token or the code; the first success verifies the request (its work
    starts) and hands back the receipt code once; later ones find it verified."""
    now = app.now()
    with app.db.session() as session:
        row = session.get(Verification, request_id, with_for_update=True)
        if row is None:
            raise _WRONG
        if row.used_at is None and (now >= row.expires_at or row.failed_attempts >= MAX_ATTEMPTS):
            raise _WRONG
        given = token if token is not None else (code or "").replace(" ", "")
        expected = token_for(app, row) if token is not None else code_for(app, row)
        right = hmac.compare_digest(given.encode(), expected.encode())
        receipt, first = None, False
        if not right:
            row.failed_attempts += 1  # committed with the block; the error is raised after
        else:
            if row.sealed_receipt is not None:
                receipt = app.keys.identity_cipher.open(
                    row.sealed_receipt, b"receipt:" + request_id.encode()).decode()
                row.sealed_receipt = None
            first = row.used_at is None
            row.used_at = row.used_at or now
    if not right:
        raise _WRONG
    if first:
        how = "link" if token is not None else "code"
        with contextlib.suppress(DsarError):  # closed or confirmed meanwhile: status says
            requests.confirm_identity(app, request_id, METHOD.format(how=how), "data subject")
    return Confirmed(requests.load(app, request_id), receipt)


def expire_unverified(app: App) -> list[str]:
    """Close every web request whose verification expired unused; returns their ids."""
    now = app.now()
    with app.db.session() as session:
        ids = list(session.scalars(
            sa.select(Verification.request_id)
            .join(Request, Request.id == Verification.request_id)
            .where(Verification.used_at.is_(None), Verification.expires_at <= now,
                   Request.state == State.AWAITING_IDENTITY.value)))
    closed = []
    for request_id in ids:
        try:
            requests.cancel(app, request_id,
                            f"the email address was not confirmed within "
                            f"{app.settings.verify_hours} hours", "portal")
        except DsarError:
            continue
        with app.db.session() as session:
            row = session.get(Verification, request_id)
            if row is not None:
                row.sealed_receipt = None
        closed.append(request_id)
    return closed
