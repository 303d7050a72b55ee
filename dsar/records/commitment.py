"""Subject commitments: how a record names a data subject without containing personal data.

A commitment is ``"sha256:" + hex(SHA-256(canonical_json({"identities": [...], "salt": salt})))``
where ``salt`` is 32 random bytes in unpadded base64url and ``identities`` is the normalized
list of the subject's identities. The salt is handed to the requester in their receipt and not
kept by dsar, so only someone holding both the salt and the identities can show a record is
about them, and nobody (dsar's operators included) can test guesses of an identity against a
record.

Normalization, applied to each identity: Unicode NFKC, surrounding whitespace stripped,
case folded; then duplicates removed and the list sorted. Type-specific forms (E.164 phone
numbers, lower-cased e-mail domains, ...) are the caller's job before committing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable

from dsar.errors import InvalidInput
from dsar.records.canonical import canonical_json

__all__ = ["PREFIX", "SALT_BYTES", "commit", "matches", "new_salt", "normalize_identities"]

PREFIX = "sha256:"
"""Every commitment starts with this algorithm tag."""

SALT_BYTES = 32
"""Length of a salt before encoding."""

_COMMITMENT = re.compile(r"sha256:[0-9a-f]{64}")
_SALT_FIX = "use a salt made by new_salt(): 32 random bytes, unpadded base64url"


def new_salt() -> str:
    """A fresh random salt: 32 bytes from :mod:`secrets`, unpadded base64url (43 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(SALT_BYTES)).rstrip(b"=").decode("ascii")


def _check_salt(salt: str) -> None:
    if not isinstance(salt, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", salt):
        raise InvalidInput("commitment salt is malformed", _SALT_FIX)
    try:
        raw = base64.urlsafe_b64decode(salt + "=")
    except (binascii.Error, ValueError) as err:
        raise InvalidInput("commitment salt is malformed", _SALT_FIX) from err
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != salt:
        raise InvalidInput("commitment salt is not canonical base64url", _SALT_FIX)


def normalize_identities(identities: Iterable[str]) -> list[str]:
    """Normalize, de-duplicate and sort identities as described in the module docstring.

    Raises :class:`~dsar.errors.InvalidInput` if ``identities`` is a bare string, contains a
    non-string or an identity that is empty after normalization, or is empty.
    """
    if isinstance(identities, str | bytes):
        raise InvalidInput(
            "identities must be a list of strings, not one string",
            "pass a list such as ['alice@example.com']",
        )
    normalized: set[str] = set()
    for identity in identities:
        if not isinstance(identity, str):
            raise InvalidInput(
                f"identity of type {type(identity).__name__} is not a string",
                "pass each identity as text",
            )
        value = unicodedata.normalize("NFKC", identity).strip().casefold()
        if not value:
            raise InvalidInput("an identity is empty", "remove empty identities")
        normalized.add(value)
    if not normalized:
        raise InvalidInput("no identities to commit to", "pass at least one identity")
    return sorted(normalized)


def commit(identities: Iterable[str], salt: str) -> str:
    """The commitment ``"sha256:<hex>"`` to ``identities`` under ``salt``.

    Order, duplicates, case and surrounding whitespace of identities do not change it.
    Raises :class:`~dsar.errors.InvalidInput` for a malformed salt or identities.
    """
    _check_salt(salt)
    document = {"identities": normalize_identities(identities), "salt": salt}
    return PREFIX + hashlib.sha256(canonical_json(document)).hexdigest()


def matches(commitment: str, identities: Iterable[str], salt: str) -> bool:
    """Whether ``commitment`` was made from ``identities`` and ``salt`` (constant-time compare).

    False for a malformed commitment; raises :class:`~dsar.errors.InvalidInput` for a
    malformed salt or identities, since those come from our own records.
    """
    if not isinstance(commitment, str) or not _COMMITMENT.fullmatch(commitment):
        return False
    return hmac.compare_digest(commit(identities, salt), commitment)
