"""The identities a request names, validated and normalised.

A subject is named by at least one of: an email address, a phone number, or a named identifier
such as ``customer_id=42``. Normalisation makes the same person match however they typed it:

- email: checked by ``email-validator`` (syntax only, no DNS), the Unicode domain in IDNA form,
  then lower-cased whole. Local parts are case-sensitive in theory but not in the systems that
  hold them; matching case-sensitively would miss data, which the law does not forgive.
- phone: parsed by ``phonenumbers`` and written in E.164 (``+4930123456``); an international
  prefix is required because a number without one is ambiguous.
- named identifiers: ``name=value``; the name is a data-map key name, the value is kept as given
  less surrounding white space.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from dsar.errors import InvalidInput

KEY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
RESERVED = {"email", "phone"}
MAX_VALUE = 256


@dataclass(frozen=True, order=True)
class Identity:
    """One normalised identity: ``kind`` is ``email``, ``phone`` or ``id``; ``name`` is the key
    name it is matched under (``email``, ``phone`` or the identifier's own name)."""

    kind: str
    name: str
    value: str

    def masked(self) -> str:
        """For display: enough to recognise, not enough to read (``j***@example.com``)."""
        if self.kind == "email":
            local, _, domain = self.value.partition("@")
            return f"{local[:1]}***@{domain}"
        if self.kind == "phone":
            return f"{self.value[:3]}***{self.value[-2:]}"
        return f"{self.name}={self.value[:1]}***" if len(self.value) > 1 else f"{self.name}=*"


def normalise_email(raw: str) -> str:
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            f"{raw!r} is not a valid email address ({exc})",
            "give the address as name@example.com",
        ) from None
    return info.ascii_email.lower() if info.ascii_email else info.normalized.lower()


def normalise_phone(raw: str) -> str:
    text = raw.strip()
    if not text.startswith("+") and not text.startswith("00"):
        raise InvalidInput(
            f"phone number {raw!r} has no country code",
            "write it in international form, e.g. +4930123456",
        )
    try:
        number = phonenumbers.parse("+" + text[2:] if text.startswith("00") else text, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"{raw!r} is not a valid phone number",
            "write it in international form with its country code, e.g. +4930123456",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_named_id(raw: str) -> Identity:
    name, sep, value = raw.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value:
        raise InvalidInput(f"identifier {raw!r} has no value", "write it as name=value, e.g. "
                           "customer_id=42")
    if not KEY_NAME.match(name) or name in RESERVED:
        raise InvalidInput(
            f"identifier name {name!r} is not usable",
            "use lower-case letters, digits and _ (e.g. customer_id); "
            "give emails with --email and phones with --phone",
        )
    # Cc: control characters (C0, DEL, C1); Cs: lone surrogates, which cannot be stored as
    # text (an undecodable byte on the command line arrives as one).
    if len(value) > MAX_VALUE or any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise InvalidInput(
            f"the value of identifier {name!r} is too long or holds control characters",
            f"give a value of at most {MAX_VALUE} printable characters",
        )
    return Identity("id", name, value)


def parse_identities(
    emails: Iterable[str] = (), phones: Iterable[str] = (), ids: Iterable[str] = ()
) -> list[Identity]:
    """Validate and normalise; at least one identity is required. Duplicates are dropped."""
    found = {Identity("email", "email", normalise_email(e)) for e in emails}
    found |= {Identity("phone", "phone", normalise_phone(p)) for p in phones}
    found |= {parse_named_id(i) for i in ids}
    if not found:
        raise InvalidInput(
            "a request needs at least one identity",
            "give --email, --phone or --id name=value",
        )
    return sorted(found)


def subject_keys(identities: Iterable[Identity]) -> Mapping[str, frozenset[str]]:
    """Identities as the connectors' key map: key name -> values."""
    keys: dict[str, set[str]] = {}
    for identity in identities:
        keys.setdefault(identity.name, set()).add(identity.value)
    return {name: frozenset(values) for name, values in keys.items()}
