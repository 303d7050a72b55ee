"""What keeps abuse out of the portal: CSRF tokens, rate limits, the honeypot, safe log lines.

- CSRF: a double-submit token. Every page with a form sets a random ``dsar_csrf`` cookie
  (``SameSite=Strict``, ``HttpOnly``) and puts the same value in a hidden field; a post is
  accepted only when the two match, and never when the browser says it is cross-site.
- Rate limits (the ``limits`` library): per client address and per email address (keyed by
  the identity's HMAC, never the address itself), counted in ``DSAR_RATE_LIMIT_STORAGE``:
  Redis when several portal processes must share the counts, memory otherwise.
- :class:`RedactTokens`: a logging filter for uvicorn's access log that replaces download and
  verification tokens in request lines by ``…``.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

from dsar.settings import Settings

CSRF_COOKIE = "dsar_csrf"
CSRF_FIELD = "csrf"
HONEYPOT_FIELD = "website"  # hidden from people; bots fill it in
SECRET_PATH = re.compile(r"(/(?:download|verify)/)[^\s?\"/]+(/[^\s?\"]*)?")


def csrf_token(request: Request) -> str:
    """The browser's token, or a new one (set by :func:`set_csrf` on the response)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if re.fullmatch(r"[A-Za-z0-9_-]{43}", current):
        return current
    return secrets.token_urlsafe(32)


def set_csrf(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure,
                        path="/")


def csrf_ok(request: Request, submitted: str) -> bool:
    """True when the post carries the cookie's token and does not come from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") == "cross-site":
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), submitted.encode())


class RateLimits:
    """Per-address and per-email limits in storage shared by every portal process."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage))
        self._address = parse(settings.rate_limit_address)
        self._email = parse(settings.rate_limit_email)

    def address_ok(self, address: str) -> bool:
        return self._limiter.hit(self._address, "dsar-portal", "address", address)

    def email_ok(self, lookup_hash: str) -> bool:
        return self._limiter.hit(self._email, "dsar-portal", "email", lookup_hash)

    def reset(self) -> None:
        self._limiter.storage.reset()


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class RedactTokens(logging.Filter):
    """Replace the secret part of ``/download/<token>`` and ``/verify/<id>/<token>`` paths in
    a log record's arguments (uvicorn's access log passes the path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact(text: str) -> str:
    """``/download/abc.def`` -> ``/download/…``; the same for verification links."""
    return SECRET_PATH.sub(lambda m: m.group(1) + "…", text)
