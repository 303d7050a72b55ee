"""Filing a request from the form: checks, no duplicates, verification by email.

Whatever happens here, the person sees the same answer ("check your email"): a new request, an
open one of the same kind for the same verified address (a message points to it, nothing new
is filed) and an address over its rate limit (nothing is sent) look alike, so the form cannot
be used to learn whether an address is known.
"""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar import requests
from dsar.app import App
from dsar.db.models import IdentityRow, Request
from dsar.errors import DsarError
from dsar.identities import parse_identities
from dsar.lifecycle import TERMINAL
from dsar.mail import queue_message
from dsar.mail import verification as verify
from dsar.portal.forms import Form
from dsar.portal.guards import RateLimits
from dsar.settings import KINDS

KIND_ERROR = "Please choose what you would like us to do."
EMAIL_ERROR = "Please enter your email address, like name@example.org."


class Outcome(StrEnum):
    FILED = "filed"
    ALREADY_OPEN = "already_open"
    LIMITED = "limited"


def check(form: Form) -> None:
    """Field errors for the kind and the email, in words a person uses."""
    if form.get("kind") not in KINDS and "kind" not in form.errors:
        form.fail("kind", KIND_ERROR)
    if "email" not in form.errors:
        if not form.get("email"):
            form.fail("email", EMAIL_ERROR)
        else:
            try:
                parse_identities([form.get("email")])
            except DsarError:
                form.fail("email", "This does not look like an email address. " + EMAIL_ERROR)


def file(app: App, form: Form, limits: RateLimits) -> Outcome:
    """File the checked form's request, or point to the open one; see the module docstring."""
    [identity] = parse_identities([form.get("email")])
    lookup = app.keys.lookup_hash(identity.name, identity.value)
    if not limits.email_ok(lookup):
        return Outcome.LIMITED
    kind = form.get("kind")
    with app.db.session() as session:
        open_request = session.scalars(
            sa.select(Request).join(IdentityRow, IdentityRow.request_id == Request.id)
            .where(IdentityRow.lookup_hash == lookup, Request.kind == kind,
                   Request.identity_verified_at.is_not(None),
                   Request.state.not_in([s.value for s in TERMINAL]))
            .order_by(Request.received_at.desc())).first()
        if open_request is not None:
            queue_message(session, app, open_request, "already_open")
            return Outcome.ALREADY_OPEN
    def verify_by_email(session: Session, request: Request, salt: str) -> None:
        verify.start(session, app, request, salt)
        queue_message(session, app, request, "verification")

    # One transaction: the request, its verification and the email to the person.
    requests.submit(app, kind, [identity], channel="web", submitted_by="web portal",
                    then=verify_by_email)
    return Outcome.FILED


def after_verification(app: App, request_id: str) -> None:
    """The acknowledgement with the due date, once the address is confirmed."""
    with app.db.session() as session:
        request = session.get(Request, request_id)
        if request is not None and request.state not in TERMINAL:
            queue_message(session, app, request, "acknowledgement")
