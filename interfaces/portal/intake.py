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
from dsar.identities import Identity, parse_identities, parse_named_id
from dsar.lifecycle import TERMINAL
from dsar.locale import N_
from dsar.mail import queue_message
from dsar.mail import verification as verify
from dsar.mail.send import NAME_KEY
from dsar.settings import KINDS, Settings
from interfaces.portal.forms import Form
from interfaces.portal.guards import RateLimits
from interfaces.portal.places import AGENT_REGIMES, regime_for

KIND_ERROR = N_("Please choose what you would like us to do.")
PLACE_ERROR = N_("Please choose where you live, or \"somewhere else\".")
MAX_NAME = 200
# NAME_KEY (full_name): the key of the name a person may give. Kept encrypted like any
# identity, used to greet them in messages, and a look-up key for maps that find people by name.
AGENT = "authorised agent (web portal)"
EMAIL_ERROR = N_("Please enter your email address, like name@example.org.")
NOT_EMAIL = N_("This does not look like an email address. Please enter your email address, "
               "like name@example.org.")


class Outcome(StrEnum):
    FILED = "filed"
    ALREADY_OPEN = "already_open"
    LIMITED = "limited"


def check(form: Form, settings: Settings) -> None:
    """Field errors for each field of the form, in words a person uses."""
    if form.get("kind") not in KINDS and "kind" not in form.errors:
        form.fail("kind", KIND_ERROR)
    if "email" not in form.errors:
        if not form.get("email"):
            form.fail("email", EMAIL_ERROR)
        else:
            try:
                parse_identities([form.get("email")])
            except DsarError:
                form.fail("email", NOT_EMAIL)
    if len(form.get("name")) > MAX_NAME:
        form.fail("name", N_("Please shorten your name to at most 200 characters."))
    if form.get("account"):
        try:
            parse_named_id(f"{settings.portal_account_key}={form.get('account')}")
        except DsarError:
            form.fail("account", N_("Please give your account number as it appears in your "
                                    "account, in at most 200 characters."))
    regime = regime_for(form.get("place"), settings)
    if regime is None:
        form.fail("place", PLACE_ERROR)
    elif form.get("agent") and regime not in AGENT_REGIMES:
        form.fail("agent", N_("An authorised agent can make a request for someone else here "
                              "only under California's law. Otherwise, please ask the person "
                              "to make it themselves."))


def identities_given(form: Form, settings: Settings) -> list[Identity]:
    """The identities a form gives, leaving out what does not parse (for the record check,
    where a mistyped detail simply does not match)."""
    found: list[Identity] = []
    for build in (lambda: parse_identities([form.get("email")]),
                  lambda: [parse_named_id(f"{settings.portal_account_key}={form.get('account')}")],
                  lambda: [Identity("id", NAME_KEY, form.get("name"))]):
        try:
            found += [i for i in build() if i.value]
        except DsarError:
            continue
    return found


def identities_of(form: Form, settings: Settings) -> list[Identity]:
    """The checked form's identities: the email, and the account id under the map's key."""
    found = parse_identities([form.get("email")])
    if form.get("account"):
        found.append(parse_named_id(f"{settings.portal_account_key}={form.get('account')}"))
    if form.get("name"):
        found.append(Identity("id", NAME_KEY, form.get("name")))
    return found


def file(app: App, form: Form, limits: RateLimits, lang: str = "en") -> Outcome:
    """File the checked form's request, or point to the open one; see the module docstring.
    Its messages are written in ``lang``, the language of the form."""
    identities = identities_of(form, app.settings)
    [identity] = [i for i in identities if i.kind == "email"]
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
            queue_message(session, app, open_request, "already_open", lang)
            return Outcome.ALREADY_OPEN
    def verify_by_email(session: Session, request: Request, salt: str) -> None:
        verify.start(session, app, request, salt)
        queue_message(session, app, request, "verification", lang)

    # One transaction: the request, its verification and the email to the person.
    agent = bool(form.get("agent"))
    requests.submit(app, kind, identities, channel="web", then=verify_by_email,
                    regime=regime_for(form.get("place"), app.settings),
                    submitted_by=AGENT if agent else "web portal")
    return Outcome.FILED


def after_verification(app: App, request_id: str) -> None:
    """The acknowledgement with the due date, once the address is confirmed."""
    with app.db.session() as session:
        request = session.get(Request, request_id)
        if request is not None and request.state not in TERMINAL:
            queue_message(session, app, request, "acknowledgement")
