"""Readable labels for data category codes (Fides taxonomy style, ``user.contact.email``).

Codes may be written with or without the leading ``user.``. Unknown codes fall back to a
prettified form of the code (``user.gaming.high_score`` -> "Gaming: High score"), so a new
category never shows up as a raw code. The labels are English (data.json keeps them so);
:func:`localise` gives report.html's language.
"""

from __future__ import annotations

from collections.abc import Callable

from dsar.locale import N_

OTHER = N_("Other data")

LABELS: dict[str, str] = {
    "contact": N_("Contact details"),
    "contact.email": N_("Email address"),
    "contact.phone_number": N_("Phone number"),
    "contact.address": N_("Postal address"),
    "contact.address.street": N_("Street address"),
    "contact.address.city": N_("City"),
    "contact.address.postal_code": N_("Postal code"),
    "contact.address.state": N_("State or region"),
    "contact.address.country": N_("Country"),
    "contact.url": N_("Web address"),
    "name": N_("Name"),
    "name.first": N_("First name"),
    "name.last": N_("Last name"),
    "unique_id": N_("Identifier"),
    "unique_id.pseudonymous": N_("Pseudonymous identifier"),
    "account": N_("Account details"),
    "account.username": N_("Username"),
    "authorization.credentials": N_("Login credentials"),
    "authorization.credentials.password": N_("Password (stored hashed)"),
    "financial": N_("Financial information"),
    "financial.bank_account": N_("Bank account"),
    "financial.credit_card": N_("Payment card"),
    "financial.account_number": N_("Account number"),
    "payment": N_("Payment details"),
    "payment.card": N_("Payment card"),
    "demographic": N_("Demographic information"),
    "demographic.date_of_birth": N_("Date of birth"),
    "demographic.gender": N_("Gender"),
    "demographic.language": N_("Language"),
    "demographic.profile": N_("Profile"),
    "location": N_("Location"),
    "location.imprecise": N_("Approximate location"),
    "location.precise": N_("Precise location"),
    "device": N_("Device information"),
    "device.ip_address": N_("IP address"),
    "device.cookie_id": N_("Cookie identifier"),
    "device.device_id": N_("Device identifier"),
    "behavior": N_("Behaviour and usage"),
    "behavior.purchase_history": N_("Purchase history"),
    "behavior.browsing_history": N_("Browsing history"),
    "behavior.media_consumption": N_("Media you used"),
    "content": N_("Content you provided"),
    "content.public": N_("Public content"),
    "content.private": N_("Private content"),
    "content.media": N_("Photos and media"),
    "government_id": N_("Government identifier"),
    "government_id.national_identification_number": N_("National ID number"),
    "government_id.passport_number": N_("Passport number"),
    "health_and_medical": N_("Health information"),
    "job_title": N_("Job title"),
    "workplace": N_("Workplace"),
    "biometric": N_("Biometric data"),
    "social": N_("Social relationships"),
    "user_provided": N_("Information you provided"),
}


def _normal(code: str) -> str:
    code = code.strip().lower()
    for prefix in ("user.provided.identifiable.", "user.derived.identifiable.", "user."):
        if code.startswith(prefix):
            return code[len(prefix) :]
    return code


def prettify(code: str) -> str:
    """``gaming.high_score`` -> ``Gaming: High score``."""
    parts = [p.replace("_", " ").replace("-", " ").strip() for p in code.split(".") if p.strip()]
    if not parts:
        return OTHER
    return ": ".join(p[:1].upper() + p[1:] for p in parts[-2:])


def category_label(code: str | None) -> str:
    """A readable label for a category code; the nearest known parent gives context."""
    if not code:
        return OTHER
    normal = _normal(code)
    if normal in LABELS:
        return LABELS[normal]
    parent = normal
    while "." in parent:
        parent = parent.rsplit(".", 1)[0]
        if parent in LABELS:
            leaf = normal.rsplit(".", 1)[1].replace("_", " ")
            return f"{LABELS[parent]}: {leaf[:1].upper() + leaf[1:]}"
    return prettify(normal)


def name_label(name: str) -> str:
    """A system, collection or column name made readable: ``order_items`` -> ``Order items``."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else name


_KNOWN = frozenset([OTHER, *LABELS.values()])


def localise(label: str, gettext: Callable[[str], str]) -> str:
    """``label`` in the page's language when :func:`category_label` made it: a known label, or
    a known parent with a leaf (``Contact details: Fax`` -> ``Kontaktdaten: Fax``). Any other
    label (the data map's own words) is shown as written."""
    if label in _KNOWN:
        return gettext(label)
    parent, sep, leaf = label.partition(": ")
    if sep and parent in _KNOWN:
        return f"{gettext(parent)}: {leaf}"
    return label
