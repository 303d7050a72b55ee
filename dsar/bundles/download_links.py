"""The ledger of download links: every link issued and every download is on the request's record.

A link is a signed token (:mod:`dsar.bundles.links`); this module keeps the token's SHA-256 in
``download_links`` when it is issued, so a link can be revoked, and writes an audit event for
each link issued, revoked or used. Events name the bundle and how the link was given, never the
token or anything about the person.

A bundle is opened where its row says it was stored, not wherever ``DSAR_EXPORT_URL`` points
today, and lives until its row's ``delete_after``; a new link can be issued until then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from dsar import requests
from dsar.app import App
from dsar.bundles.errors import BundleMissing, LinkInvalid, format_when
from dsar.bundles.links import issue_link
from dsar.bundles.store import BundleStore, open_store
from dsar.db.models import Bundle, DownloadLink, Request
from dsar.errors import DsarError, InvalidInput, NotFound


class LinkRevoked(DsarError):
    """A genuine link that the privacy team withdrew."""


@dataclass(frozen=True)
class IssuedLink:
    token: str
    url: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def bundle_of(session: Session, request_id: str) -> Bundle:
    """The request's bundle row; NotFound says which requests have one."""
    row = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)).first()
    if row is None:
        raise NotFound(f"request {request_id!r} has no bundle",
                       "bundles are made for completed access and export requests; "
                       f"see `dsar show {request_id}`")
    return row


def issue(session: Session, app: App, bundle: Bundle, via: str) -> IssuedLink:
    """A new link to ``bundle``, valid for the link lifetime but never past the bundle's
    deletion, recorded and audited in ``session``'s transaction."""
    now = app.now()
    if bundle.deleted_at is not None or now >= bundle.delete_after:
        raise InvalidInput(
            f"the bundle of {bundle.request_id} was deleted after its retention period",
            "submit a new access or export request for the person")
    expires = min(now + timedelta(days=app.settings.link_ttl_days),
                  bundle.delete_after).replace(microsecond=0)
    token = issue_link(bundle.id, expires, app.keys.link_key)
    while session.get(DownloadLink, token_hash(token)) is not None:
        # a token names its bundle and expiry (to the second); a second link issued in the
        # same second (say, after --revoke) expires a second earlier, so it is a new token
        expires -= timedelta(seconds=1)
        token = issue_link(bundle.id, expires, app.keys.link_key)
    session.add(DownloadLink(token_hash=token_hash(token), bundle_id=bundle.id,
                             request_id=bundle.request_id, issued_at=now, expires_at=expires,
                             issued_via=via, revoked_at=None))
    _event(session, app, bundle.request_id, "link_issued", via,
           f"bundle {bundle.id}, valid until {format_when(expires)}")
    return IssuedLink(token, f"{app.settings.public_url}/download/{token}", expires)


def revoke(session: Session, app: App, bundle: Bundle, actor: str) -> int:
    """Withdraw every link to ``bundle`` issued so far; returns how many were still valid."""
    now = app.now()
    result = session.execute(
        sa.update(DownloadLink)
        .where(DownloadLink.bundle_id == bundle.id, DownloadLink.revoked_at.is_(None))
        .values(revoked_at=now))
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    _event(session, app, bundle.request_id, "links_revoked", actor,
           f"bundle {bundle.id}: {count} link(s) withdrawn")
    return count


def granted(session: Session, bundle_id: str, token: str) -> Bundle:
    """The bundle row of a link we issued and did not revoke (the signature was checked)."""
    link = session.get(DownloadLink, token_hash(token))
    if link is None or link.bundle_id != bundle_id:
        raise LinkInvalid("this download link is not valid: it was not issued by us",
                          "copy the whole link from the message you received, or ask for a new one")
    if link.revoked_at is not None:
        raise LinkRevoked("this download link was withdrawn by the privacy team",
                          "ask us for a new link; your request does not need to be made again")
    bundle = session.scalars(sa.select(Bundle).where(Bundle.id == bundle_id)).first()
    if bundle is None or bundle.deleted_at is not None:
        raise BundleMissing("this copy of your data was deleted after its retention period",
                            "make a new request if you still want a copy")
    return bundle


def record_download(app: App, bundle: Bundle, what: str) -> None:
    """An audit event: the person fetched (``what``) the bundle, at this moment."""
    with app.db.session() as session:
        _event(session, app, bundle.request_id, what, "data subject", f"bundle {bundle.id}")


def store_of(app: App, bundle: Bundle) -> BundleStore:
    """The store the bundle was written to, from its row's location (a blob URL)."""
    parent = bundle.location.rsplit("/", 1)[0]
    if parent.startswith("s3://"):
        return open_store(parent, endpoint_url=app.settings.export_endpoint_url,
                          sse=app.settings.export_sse)
    return open_store(parent)


def _event(session: Session, app: App, request_id: str, event: str, actor: str,
           reason: str) -> None:
    request = session.get(Request, request_id)
    if request is None:
        raise NotFound(f"no request with id {request_id!r}", "see `dsar list` for the ids")
    requests.add_event(session, request, app.now(), actor, event, None, None, reason)
