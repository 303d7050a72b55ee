"""DRP request signing (its section 3.07): libsodium Ed25519 signed messages from agents.

An agent signs a JSON document in libsodium's combined mode (the 64-byte signature followed by
the message), base64-encodes the result and sends it as ``text/plain``. The PIP checks, in the
protocol's order: the body decodes from base64; the signature verifies with the verify key the
privacy team registered for the agent the bearer token names (``dsar agents key``); the
``agent-id`` claim is that agent; the ``business-id`` claim is this controller
(``DSAR_DRP_BUSINESS_ID``); now is after ``issued-at`` and before ``expires-at``.

Verify keys are 32 bytes, given in base64 (DRP 0.9.1 and later) or hex (DRP 0.9). Verification
uses ``cryptography``'s Ed25519, which checks the same signatures as libsodium's
``crypto_sign_open``. Every refusal is a :class:`SignatureRefused` with the HTTP status and a
one-line message for the DRP error body; no part of the body is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dsar.errors import InvalidInput

SIGNATURE_BYTES = 64
KEY_BYTES = 32
MAX_WINDOW = timedelta(hours=1)
_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


class SignatureRefused(Exception):
    """A signed request the PIP refuses: ``status`` for the response, ``message`` for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_verify_key(text: str) -> str:
    """The agent's verify key, checked, as standard base64 (how it is stored).

    Accepts 32 bytes in base64 (standard or URL-safe) or in hex; anything else raises
    :class:`InvalidInput` saying what a key looks like."""
    raw = text.strip()
    key: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", raw):
        key = bytes.fromhex(raw)
    elif _B64.match(raw):
        try:
            key = base64.b64decode(raw.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != KEY_BYTES:
        raise InvalidInput("the verify key is not a 32-byte Ed25519 public key",
                           "give the agent's libsodium verify key in base64 (44 characters) "
                           "or hex (64 characters)")
    return base64.b64encode(key).decode()


def open_signed(body: bytes, verify_key: str) -> bytes:
    """The message inside a base64 signed body, once its signature verifies with the key."""
    text = body.strip()
    try:
        signed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        try:
            signed = base64.urlsafe_b64decode(text)
        except (binascii.Error, ValueError):
            raise SignatureRefused(400, "The body is not base64: send base64(signature || "
                                        "JSON) as text/plain.") from None
    if len(signed) <= SIGNATURE_BYTES:
        raise SignatureRefused(400, "The body is too short to hold a signature and a message: "
                                    "send base64(signature || JSON).")
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(verify_key))
    try:
        key.verify(signed[:SIGNATURE_BYTES], signed[SIGNATURE_BYTES:])
    except InvalidSignature:
        raise SignatureRefused(403, "The signature does not verify with the key registered "
                                    "for this agent.") from None
    return signed[SIGNATURE_BYTES:]


def _instant(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    try:
        if not isinstance(value, str):
            raise ValueError
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureRefused(400, f"The {name} claim must be an ISO 8601 timestamp with a "
                                    "time zone.") from None
    if when.tzinfo is None:
        raise SignatureRefused(400, f"The {name} claim must name its time zone (Z or +00:00).")
    return when


def check_claims(message: bytes, agent: str, business_id: str, now: datetime,
                 required: bool = True) -> dict[str, Any]:
    """The signed JSON object, once its claims hold (section 3.07's order).

    ``required=False`` (the revoke body, whose schema is only ``reason``) checks the claims
    that are present and does not demand the others."""
    try:
        claims = json.loads(message)
    except ValueError:
        raise SignatureRefused(400, "The signed message is not JSON.") from None
    if not isinstance(claims, dict):
        raise SignatureRefused(400, "The signed message must be a JSON object.")
    if (required or "agent-id" in claims) and claims.get("agent-id") != agent:
        raise SignatureRefused(403, "The agent-id claim is not the agent of the bearer "
                                    "token.")
    if (required or "business-id" in claims) and claims.get("business-id") != business_id:
        raise SignatureRefused(403, "The business-id claim does not name this business.")
    if required or "issued-at" in claims or "expires-at" in claims:
        issued, expires = _instant(claims, "issued-at"), _instant(claims, "expires-at")
        if now < issued:
            raise SignatureRefused(400, "The request is issued in the future: check the "
                                        "agent's clock.")
        if now >= expires:
            raise SignatureRefused(400, "The request has expired: sign it again with a new "
                                        "expires-at.")
        if expires - issued > MAX_WINDOW:
            raise SignatureRefused(400, "The request is valid for more than an hour: keep "
                                        "expires-at within minutes of issued-at.")
    return claims
