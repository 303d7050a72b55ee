"""Signed, expiring download tokens.

``token = base64url(payload) "." base64url(HMAC-SHA256(secret, "dsar-bundle-link/1\\n" payload))``
with ``payload = "<expiry unix seconds>:<bundle id>"`` (no padding). The token names a bundle and
an expiry, nothing about the person. It is valid any number of times until the expiry.
Verification checks the signature first (constant-time), so a forged token is refused as forged
whatever expiry it claims, and only a genuine one can be "expired".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime, tzinfo

from dsar.bundles.errors import LinkExpired, LinkInvalid
from dsar.bundles.items import BUNDLE_ID

DOMAIN = b"dsar-bundle-link/1\n"
MIN_SECRET = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    if len(secret) < MIN_SECRET:
        raise ValueError(f"the link secret must be at least {MIN_SECRET} bytes")
    return hmac.new(secret, DOMAIN + payload, hashlib.sha256).digest()


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return moment


def issue_link(bundle_id: str, expires_at: datetime, secret: bytes) -> str:
    """A token for ``bundle_id`` that :func:`verify_link` accepts until ``expires_at``."""
    if not BUNDLE_ID.match(bundle_id):
        raise ValueError(f"bundle id {bundle_id!r} must match {BUNDLE_ID.pattern}")
    expiry = int(_aware(expires_at, "expires_at").timestamp())
    payload = f"{expiry}:{bundle_id}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify_link(
    token: str, secret: bytes, now: datetime, display_tz: tzinfo | None = None
) -> str:
    """The bundle id of a genuine, unexpired token.

    Raises :class:`LinkInvalid` for anything we did not sign and :class:`LinkExpired` (saying
    when, in ``display_tz`` or else ``now``'s zone) for a genuine token past its expiry.
    """
    _aware(now, "now")
    forged = LinkInvalid(
        "this download link is not valid: it is incomplete or was not issued by us",
        "copy the whole link from the message you received, or ask for a new one",
    )
    try:
        head, _, sig = token.partition(".")
        payload, mac = _unb64(head), _unb64(sig)
    except (binascii.Error, ValueError):
        raise forged from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise forged
    try:
        expiry_text, bundle_id = payload.decode("ascii").split(":", 1)
        expiry = datetime.fromtimestamp(int(expiry_text), UTC)
    except (UnicodeDecodeError, ValueError, OverflowError):
        raise forged from None
    if not BUNDLE_ID.match(bundle_id):
        raise forged
    if now >= expiry:
        expired = LinkExpired(expiry.astimezone(display_tz or now.tzinfo))
        expired.bundle_id = bundle_id
        raise expired
    return bundle_id
