"""Downloads on the portal: a landing page first, then the file; each fetch on the record.

A link works when its signature is ours, it has not expired, it is in the ledger of issued
links and not revoked (:mod:`dsar.bundles.download_links`), and its bundle is still kept. The
bundle is read from where its row says it was stored. An expired link's page says what the
privacy team can do: issue a new link while the bundle is kept (``dsar bundle ID --new-link``),
or nothing once it was deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dsar.app import App
from dsar.bundles import download_links
from dsar.bundles.download import BundleNotReady, Download, open_download
from dsar.bundles.errors import (
    BundleCorrupted,
    BundleMissing,
    LinkExpired,
    LinkInvalid,
    format_when,
)
from dsar.bundles.links import verify_link
from dsar.bundles.sidecar import read_sidecar
from dsar.db.models import Bundle, DownloadLink
from dsar.errors import DsarError
from dsar.locale import N_, format_size, translations
from interfaces.portal.pages import language, page, problem

log = logging.getLogger("dsar.portal")


@dataclass(frozen=True)
class Found:
    bundle: Bundle
    filename: str
    size: int
    link_until: datetime


class Resolver:
    """Token -> the bundle it may fetch, with the checks of the module docstring."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.tz = ZoneInfo(app.settings.timezone)

    def find(self, token: str) -> Found:
        now = self.app.now()
        bundle_id = verify_link(token, self.app.keys.link_key, now, self.tz)
        with self.app.db.session() as session:
            bundle = download_links.granted(session, bundle_id, token)
            link = session.get(DownloadLink, download_links.token_hash(token))
            assert link is not None
        if now >= bundle.delete_after:
            raise BundleMissing("this copy of your data was deleted after its retention period",
                                "make a new request if you still want a copy")
        record = read_sidecar(download_links.store_of(self.app, bundle), bundle.id)
        return Found(bundle, record.filename, bundle.size, link.expires_at)

    def open(self, token: str) -> tuple[Found, Download]:
        found = self.find(token)
        download = open_download(
            token, store=download_links.store_of(self.app, found.bundle),
            key=self.app.keys.bundle_key,
            secret=self.app.keys.link_key, now=self.app.now(), display_tz=self.tz,
            available_until=found.bundle.delete_after)
        return found, download

    def expired_fix(self, err: LinkExpired, lang: str = "en") -> str:
        """What the expired page tells the person, agreeing with ``dsar bundle --new-link``."""
        gettext = translations(lang).gettext
        with self.app.db.session() as session:
            bundle = session.scalars(sa.select(Bundle).where(Bundle.id == err.bundle_id)).first()
        if bundle is None or bundle.deleted_at is not None or \
                self.app.now() >= bundle.delete_after:
            return gettext(DELETED) + " " + gettext(ASK_AGAIN)
        until = format_when(bundle.delete_after.astimezone(self.tz))
        return gettext(N_("We keep this copy of your data until %(until)s. Ask us for a new link "
                          "before then; your request does not need to be made again.")) % {
            "until": until}


# The problem pages show these, in the page's language, rather than the errors' own (English)
# words: one text per kind of error, whatever the detail (which the log has).
DELETED = N_("This copy of your data has since been deleted.")
ASK_AGAIN = N_("Make a new request if you still want a copy.")
REFUSALS: dict[type[DsarError], tuple[int, str, str, str]] = {
    LinkExpired: (410, N_("This link has expired"),
                  N_("Download links work for a limited time, and this one's has run out."), ""),
    download_links.LinkRevoked: (410, N_("This link was withdrawn"),
                        N_("We withdrew this download link."),
                        N_("Ask us for a new link; your request does not need to be made "
                           "again.")),
    BundleMissing: (410, N_("Download not available"), DELETED, ASK_AGAIN),
    LinkInvalid: (403, N_("Link not valid"),
                  N_("This download link is not one we issued, or it is incomplete."),
                  N_("Copy the whole link from the message you received, or ask us for a new "
                     "one.")),
}
PREPARING = (N_("Your copy is still being prepared."), N_("Please try again in a few minutes."))


def _refusal(request: Request, err: DsarError) -> Response:
    resolver: Resolver = request.app.state.downloads
    if isinstance(err, BundleCorrupted):
        log.error("bundle failed authentication: %s", err.problem)
        return problem(request, 500, N_("We could not open your download"),
                       N_("Your data is safe, but this copy could not be verified."),
                       N_("Please ask us for a new one."))
    kind = next((k for k in REFUSALS if isinstance(err, k)), None)
    if kind is None:
        raise err
    status, title, text, fix = REFUSALS[kind]
    if isinstance(err, BundleNotReady):  # not gone: it will be there in a few minutes
        return problem(request, 503, title, *PREPARING, headers={"Retry-After": "300"})
    if isinstance(err, LinkExpired):
        fix = resolver.expired_fix(err, language(request))
    return problem(request, status, title, text, fix)


async def landing(request: Request) -> Response:
    token = request.path_params["token"]
    resolver: Resolver = request.app.state.downloads
    try:
        found = await asyncio.to_thread(resolver.find, token)
    except DsarError as err:
        return _refusal(request, err)
    await asyncio.to_thread(download_links.record_download, resolver.app, found.bundle,
                            "download_page_viewed")
    return page(request, "download", token=token, filename=found.filename,
                size=format_size(found.size, language(request)), request_id=found.bundle.request_id,
                until=format_when(found.link_until.astimezone(resolver.tz)),
                kept_until=format_when(found.bundle.delete_after.astimezone(resolver.tz)))


async def file(request: Request) -> Response:
    token = request.path_params["token"]
    resolver: Resolver = request.app.state.downloads
    try:
        found, download = await asyncio.to_thread(resolver.open, token)
    except DsarError as err:
        return _refusal(request, err)
    headers = {"Content-Disposition": f'attachment; filename="{_safe(found.filename)}"',
               "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}
    if download.size is not None:
        headers["Content-Length"] = str(download.size)
    if request.method == "HEAD":
        download.close()
        return Response(b"", headers=headers, media_type="application/zip")
    await asyncio.to_thread(download_links.record_download, resolver.app, found.bundle,
                            "downloaded")
    return StreamingResponse(_stream(download), headers=headers, media_type="application/zip")


def _stream(download: Download) -> Iterator[bytes]:
    try:
        yield from download.chunks
    except BundleCorrupted:
        log.error("bundle %s failed authentication mid-download", download.bundle_id)
        raise
    finally:
        download.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
