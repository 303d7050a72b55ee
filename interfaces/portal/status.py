"""The status of a request for the person who made it: found by request id and receipt code.

The receipt code is the salt of the request's subject commitment, so it is checked by
recomputing the commitment from the request's identities; an unknown id and a wrong code get
the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dsar import requests
from dsar.app import App
from dsar.bundles import download_links
from dsar.bundles.errors import format_when
from dsar.db.models import Bundle, Request
from dsar.errors import DsarError, InvalidInput
from dsar.locale import N_, long_date, translations
from dsar.records.commitment import commit

NEXT = {
    "received": (N_("We have received it."), N_("We will check it and write to you.")),
    "awaiting_identity": (N_("We are waiting for you to confirm your email address."),
                          N_("Open the link in the message we sent you, or enter its code.")),
    "awaiting_clarification": (N_("We have asked you a question."),
                               N_("Please answer our message; the deadline waits meanwhile.")),
    "verified": (N_("Your email address is confirmed."), N_("Work on your request starts now.")),
    "awaiting_approval": (N_("Your request is with our privacy team."),
                          N_("They approve it before we act; no need to do anything.")),
    "in_progress": (N_("We are working on it."), N_("We will email you when it is done.")),
    "needs_attention": (N_("We are working on it; one of our systems needs a person's "
                           "attention."),
                        N_("No need to do anything; we will still answer by the due date.")),
    "completed": (N_("It is done."), N_("See below.")),
    "rejected": (N_("We could not act on it."),
                 N_("The reasons are in our message to you. You may complain to a data "
                    "protection authority.")),
    "cancelled": (N_("It was closed."), N_("Make a new request if you still want us to act.")),
}
WRONG = InvalidInput("we could not find a request with this number and receipt code",
                     "check both against your receipt; the code is 43 letters and digits")
WRONG_WORDS = N_("We could not find a request with this number and receipt code. Check both "
                 "against your receipt; the code is 43 letters and digits.")


@dataclass(frozen=True)
class Status:
    request: Request
    state_words: str
    next_step: str
    due: str
    download_url: str | None
    download_until: str | None
    record_url: str | None = None


def look_up(app: App, request_id: str, receipt: str, lang: str = "en") -> Status:
    """The request's status (dates in ``lang``), or :data:`WRONG` (whatever was wrong)."""
    try:
        request = requests.load(app, request_id.strip())
        identities = requests.identities_of(app, request)
        made = commit([f"{i.name}:{i.value}" for i in identities], receipt.strip())
    except DsarError:
        raise WRONG from None
    if made != request.subject_commitment:
        raise WRONG
    words, next_step = NEXT.get(request.state, (request.state, ""))
    url = until = None
    if request.state == "completed" and request.kind in ("access", "export"):
        url, until = _download(app, request)
    tz = ZoneInfo(request.timezone)
    _ = translations(lang).gettext
    due = _("{date}, end of day, {zone} time").format(
        date=long_date(request.effective_due, lang), zone=request.timezone)
    if request.completed_at is not None:
        due += " " + _("(answered {when})").format(
            when=format_when(request.completed_at.astimezone(tz)))
    record = f"/records/{request.id}.json" if request.state in {"completed", "rejected"} else None
    return Status(request, words, next_step, due, url, until, record)


def _download(app: App, request: Request) -> tuple[str | None, str | None]:
    with app.db.session() as session:
        try:
            bundle: Bundle = download_links.bundle_of(session, request.id)
            link = download_links.issue(session, app, bundle, "status page")
        except DsarError:
            return None, None
    return link.url, format_when(link.expires_at.astimezone(ZoneInfo(request.timezone)))
