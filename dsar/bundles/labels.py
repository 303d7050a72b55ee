"""Readable labels for data category codes (Fides taxonomy style, ``user.contact.email``).

Codes may be written with or without the leading ``user.``. Unknown codes fall back to a
prettified form of the code (``user.gaming.high_score`` -> "Gaming: High score"), so a new
category never shows up as a raw code.
"""

from __future__ import annotations

LABELS: dict[str, str] = {
    "contact": "Contact details",
    "contact.email": "Email address",
    "contact.phone_number": "Phone number",
    "contact.address": "Postal address",
    "contact.address.street": "Street address",
    "contact.address.city": "City",
    "contact.address.postal_code": "Postal code",
    "contact.address.state": "State or region",
    "contact.address.country": "Country",
    "contact.url": "Web address",
    "name": "Name",
    "name.first": "First name",
    "name.last": "Last name",
    "unique_id": "Identifier",
    "unique_id.pseudonymous": "Pseudonymous identifier",
    "account": "Account details",
    "account.username": "Username",
    "authorization.credentials": "Login credentials",
    "authorization.credentials.password": "Password (stored hashed)",
    "financial": "Financial information",
    "financial.bank_account": "Bank account",
    "financial.credit_card": "Payment card",
    "financial.account_number": "Account number",
    "payment": "Payment details",
    "payment.card": "Payment card",
    "demographic": "Demographic information",
    "demographic.date_of_birth": "Date of birth",
    "demographic.gender": "Gender",
    "demographic.language": "Language",
    "demographic.profile": "Profile",
    "location": "Location",
    "location.imprecise": "Approximate location",
    "location.precise": "Precise location",
    "device": "Device information",
    "device.ip_address": "IP address",
    "device.cookie_id": "Cookie identifier",
    "device.device_id": "Device identifier",
    "behavior": "Behaviour and usage",
    "behavior.purchase_history": "Purchase history",
    "behavior.browsing_history": "Browsing history",
    "behavior.media_consumption": "Media you used",
    "content": "Content you provided",
    "content.public": "Public content",
    "content.private": "Private content",
    "content.media": "Photos and media",
    "government_id": "Government identifier",
    "government_id.national_identification_number": "National ID number",
    "government_id.passport_number": "Passport number",
    "health_and_medical": "Health information",
    "job_title": "Job title",
    "workplace": "Workplace",
    "biometric": "Biometric data",
    "social": "Social relationships",
    "user_provided": "Information you provided",
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
        return "Other data"
    return ": ".join(p[:1].upper() + p[1:] for p in parts[-2:])


def category_label(code: str | None) -> str:
    """A readable label for a category code; the nearest known parent gives context."""
    if not code:
        return "Other data"
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
