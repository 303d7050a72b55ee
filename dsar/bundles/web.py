"""A minimal WSGI app that serves ``GET /download/<token>`` (stdlib only).

- 200 with the zip (``Content-Length`` known, ``Cache-Control: no-store``), as often as asked
  until the link expires;
- 410 Gone with a readable page once it has expired, or once the bundle was deleted;
- 403 Forbidden for a token we did not issue; 404 for any other path; 405 for other methods.

Mount it behind the web form's server or run it on its own (``wsgiref`` is enough).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dsar.bundles.download import Download
from dsar.bundles.errors import BundleCorrupted, BundleMissing, LinkExpired, LinkInvalid
from dsar.errors import DsarError

log = logging.getLogger(__name__)
ROUTE = re.compile(r"^/download/([A-Za-z0-9_.=-]{1,1024})/?$")
SECURITY = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]
StartResponse = Callable[..., Any]
Resolver = Callable[[str], Download]


def _page(title: str, err: DsarError | None, text: str = "") -> bytes:
    problem = html.escape(err.problem + "." if err else text)
    fix = html.escape(err.fix[:1].upper() + err.fix[1:] + "." if err and err.fix else "")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>body{{font:17px/1.5 system-ui,sans-serif;"
        "max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1><p>{problem}</p>"
        + (f"<p>{fix}</p>" if fix else "")
        + "</main></body></html>"
    ).encode()


def _respond(start: StartResponse, status: str, body: bytes,
             extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    headers = [("Content-Type", "text/html; charset=utf-8"),
               ("Content-Length", str(len(body))), *SECURITY, *extra]
    start(status, headers)
    return [body]


class _Body:
    """The response iterable; WSGI servers call ``close`` even when the client goes away."""

    def __init__(self, download: Download) -> None:
        self._download = download

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._download.chunks
        except BundleCorrupted:
            log.error("bundle %s failed authentication mid-download", self._download.bundle_id)
            raise

    def close(self) -> None:
        self._download.close()


def make_app(resolver: Resolver) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app; ``resolver`` turns a token into a :class:`Download` or raises."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = ROUTE.match(environ.get("PATH_INFO", ""))
        if match is None:
            return _respond(start_response, "404 Not Found",
                            _page("Page not found", None, "There is nothing at this address."))
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in {"GET", "HEAD"}:
            return _respond(start_response, "405 Method Not Allowed",
                            _page("Not allowed", None, "Use GET to download."),
                            [("Allow", "GET, HEAD")])
        try:
            download = resolver(match.group(1))
        except LinkExpired as err:
            return _respond(start_response, "410 Gone", _page("This link has expired", err))
        except BundleMissing as err:
            return _respond(start_response, "410 Gone", _page("Download not available", err))
        except LinkInvalid as err:
            return _respond(start_response, "403 Forbidden", _page("Link not valid", err))
        except BundleCorrupted as err:
            log.error("bundle failed authentication: %s", err.problem)
            return _respond(start_response, "500 Internal Server Error",
                            _page("We could not open your download", None,
                                  "Your data is safe, but this copy could not be verified. "
                                  "Please ask us for a new one."))
        filename = re.sub(r'[^A-Za-z0-9._-]', "_", download.filename)
        headers = [("Content-Type", "application/zip"),
                   ("Content-Disposition", f'attachment; filename="{filename}"'), *SECURITY]
        if download.size is not None:
            headers.append(("Content-Length", str(download.size)))
        start_response("200 OK", headers)
        if method == "HEAD":
            download.close()
            return []
        return _Body(download)

    return app
