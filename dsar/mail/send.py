"""Sending a queued message: claim it, render it from the request, hand it to SMTP, stamp it.

:func:`send_message` is what the ``send_message`` actor runs. A message already stamped
``sent_at`` is never sent again. A worker claims the row for :data:`CLAIM` before it talks to
the mail server, so two deliveries of the same broker message do not both send; a failure
releases the claim and raises, and the broker retries with back-off. The one window left is a
crash after the server accepted the message and before the stamp: then it is sent again, with
the same ``Message-ID`` so the receiving system can recognise the copy.

Each message sent is an audit event naming its kind, never its content or address.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dsar import requests
from dsar.app import App
from dsar.bundles import download_links
from dsar.bundles.errors import format_when
from dsar.datamap.current import controller_name
from dsar.db.models import EvidenceRow, MessageRow, Request, Verification
from dsar.errors import DsarError, NotFound
from dsar.locale import long_date
from dsar.mail import smtp
from dsar.mail.render import KIND_WORDS, render
from dsar.mail.verification import code_for, token_for

CLAIM = timedelta(minutes=5)
NAME_KEY = "full_name"  # the key of the name a person gives on the portal's form


class MessageBusy(Exception):
    """Another worker holds the message's claim; the broker retries this delivery later."""


def send_message(app: App, message_id: int) -> bool:
    """Send the message unless it was sent; True when this call sent it."""
    now = app.now()
    with app.db.session() as session:
        row = session.get(MessageRow, message_id, with_for_update=True)
        if row is None or row.sent_at is not None:
            return False
        if row.claimed_until is not None and row.claimed_until > now:
            raise MessageBusy(f"message {message_id} is being sent by another worker")
        row.claimed_until, row.attempts = now + CLAIM, row.attempts + 1
        request_id, kind, lang = row.request_id, row.kind, row.language
    try:
        request = requests.load(app, request_id)
        recipient = recipient_of(app, request)
        rendered = render(kind, context_for(app, request, kind, lang), lang)
        domain = app.settings.mail_from.rpartition("@")[2] or "localhost"
        smtp.send(app.settings, rendered.email(app.settings.mail_from, recipient,
                                               f"<{request_id}.{kind}@{domain}>"))
    except BaseException:
        with app.db.session() as session:
            session.execute(sa.update(MessageRow).where(MessageRow.id == message_id)
                            .values(claimed_until=None))
        raise
    with app.db.session() as session:
        row = session.get(MessageRow, message_id, with_for_update=True)
        assert row is not None
        row.sent_at, row.claimed_until = app.now(), None
        stored = session.get(Request, request_id)
        assert stored is not None
        requests.add_event(session, stored, app.now(), "mailer", "message_sent", None, None,
                           f"{kind} message sent by email")
    return True


def recipient_of(app: App, request: Request) -> str:
    """The request's email address (decrypted only to send)."""
    for identity in requests.identities_of(app, request):
        if identity.kind == "email":
            return identity.value
    raise NotFound(f"request {request.id} has no email address to write to",
                   "tell the person by another channel")


def context_for(app: App, request: Request, kind: str, lang: str = "en") -> dict[str, Any]:
    """What the templates of ``kind`` need, from the request's rows (dates in ``lang``)."""
    tz = ZoneInfo(request.timezone)
    base = app.settings.public_url
    context: dict[str, Any] = {
        "request_id": request.id, "controller": controller_name(app),
        "kind_words": KIND_WORDS.get(request.kind, request.kind),
        "status_url": f"{base}/status?request={request.id}",
        "due": f"{long_date(request.effective_due, lang)} ({request.timezone})",
        "name": _name_of(app, request),
    }
    with app.db.session() as session:
        if kind == "verification":
            row = session.get(Verification, request.id)
            if row is None:
                raise NotFound(f"request {request.id} has no emailed verification",
                               "only requests made on the portal are verified by email")
            context.update(verify_url=f"{base}/verify/{request.id}/{token_for(app, row)}",
                           code=code_for(app, row),
                           verify_until=format_when(row.expires_at.astimezone(tz)))
        elif kind == "extension":
            context["extension_reason"] = request.extension_reason or "(no reason recorded)"
        elif kind == "refusal":
            context["closing_reason"] = request.closing_reason or "(no reason recorded)"
        elif kind == "erasure_confirmation":
            context["kept"] = _kept(session, request.id)
        elif kind == "completion":
            bundle = download_links.bundle_of(session, request.id)
            link = download_links.issue(session, app, bundle, "completion email")
            context.update(download_url=link.url,
                           link_until=format_when(link.expires_at.astimezone(tz)))
    return context


def _name_of(app: App, request: Request) -> str | None:
    """The name the person gave on the form, to greet them by (None if they gave none)."""
    for identity in requests.identities_of(app, request):
        if identity.name == NAME_KEY:
            return identity.value
    return None


def _kept(session: sa.orm.Session, request_id: str) -> list[dict[str, str | None]]:
    rows = session.scalars(sa.select(EvidenceRow).where(EvidenceRow.request_id == request_id))
    kept = []
    for row in rows:
        body = row.body or {}
        if body.get("retained"):
            kept.append({"what": f"{row.collection} in {row.system}",
                         "ground": body.get("retained_ground") or "a legal obligation",
                         "period": body.get("retained_period")})
    return kept


def check_sendable(app: App, request: Request, kind: str) -> None:
    """Refuse a message that does not fit the request (for ``dsar notify``)."""
    needs = {"completion": ("completed", ("access", "export")),
             "erasure_confirmation": ("completed", ("erasure",)),
             "refusal": ("rejected", None)}
    if kind in needs:
        state, kinds = needs[kind]
        if request.state != state or (kinds and request.kind not in kinds):
            raise DsarError(f"a {kind} message does not fit request {request.id} "
                            f"({request.kind}, {request.state})",
                            f"it is for {'/'.join(kinds or ('any',))} requests that are {state}")
    if kind == "extension" and request.extended_due is None:
        raise DsarError(f"request {request.id} has not been extended",
                        f"extend it first: dsar extend {request.id} --reason …")
    recipient_of(app, request)
