"""One harness per vendor, so the contract suite runs the same tests against every emulator.

A :class:`Harness` owns a running emulator, the data map system pointing at it, the
environment holding its credential, and knows how to seed a subject (and a bystander whose
data must never be touched) and what the vendor should hold afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import ConnectorContext
from connectors.saas.connector import SaaSConnector
from dsar.datamap.schema import SaaSSystem
from interfaces.demo.emulators.mailchimp import MailchimpEmulator, subscriber_hash
from interfaces.demo.emulators.server import Emulator
from interfaces.demo.emulators.stripe import StripeEmulator
from tests.connectors.saas.hubspot_emulator import HubSpotEmulator

HASH_KEY = b"k" * 32
FAST = {"calls": 100_000, "seconds": 1}


class RecordingSink:
    """Keeps what a connector collected, per (system, collection)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.batches = 0

    def write_rows(self, system: str, collection: str,
                   rows: Iterable[Mapping[str, Any]]) -> None:
        self.batches += 1
        self.rows.setdefault((system, collection), []).extend(dict(r) for r in rows)

    def write_object(self, system: str, collection: str, name: str,
                     metadata: Mapping[str, str], chunks: Iterator[bytes]) -> None:
        raise AssertionError("SaaS connectors write rows, not objects")


@dataclass
class Harness:
    vendor: str
    emulator: Emulator
    url: str
    token_env: str
    token: str
    resources: list[str]
    erased: list[str]          # resources that must be gone after erasure
    retained: list[str]        # resources the vendor keeps
    provides: str
    extra: dict[str, Any] = field(default_factory=dict)

    def system(self, **overrides: Any) -> SaaSSystem:
        data: dict[str, Any] = {
            "name": self.vendor, "kind": "saas", "vendor": self.vendor,
            "token_env": self.token_env, "base_url_env": "SAAS_TEST_URL",
            "resources": self.resources, "rate_limit": FAST}
        data.update(overrides)
        return SaaSSystem.model_validate(data)

    def environ(self, **more: str) -> dict[str, str]:
        return {self.token_env: self.token, "SAAS_TEST_URL": self.url,
                "DSAR_RATE_LIMIT_URL": "memory://", **more}

    def connector(self, system: SaaSSystem | None = None, environ: dict[str, str] | None = None,
                  **kw: Any) -> SaaSConnector:
        context = ConnectorContext(hash_key=HASH_KEY, environ=environ or self.environ())
        return SaaSConnector(system or self.system(), context, **kw)

    # -- seeding and inspection, per vendor ---------------------------------------------------

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        """Give ``email`` data; returns the expected item count per resource."""
        if isinstance(self.emulator, StripeEmulator):
            n = 250 if many else 2
            self.emulator.add_customer(email, charges=n)
            return {"customers": 1, "payment_methods": 1, "subscriptions": 1, "charges": n,
                    "invoices": 1}
        if isinstance(self.emulator, HubSpotEmulator):
            n = 1200 if many else 2
            self.emulator.add_contact(email, deals=n)
            return {"contacts": 1, "deals": n, "tickets": 1, "notes": 3}
        assert isinstance(self.emulator, MailchimpEmulator)
        lists = self.extra.setdefault("lists", [])
        while len(lists) < (1005 if many else 3):
            lists.append(self.emulator.add_list(f"Audience {len(lists)}"))
        chosen = lists[::2] if not many else [lists[0], lists[1003]]
        for list_id in chosen:
            self.emulator.add_member(list_id, email)
        return {"members": len(chosen), "activity": 3 * len(chosen)}

    def holds(self, email: str) -> int:
        """How many erasable items the vendor still holds for ``email`` (emulator state)."""
        em = self.emulator
        if isinstance(em, StripeEmulator):
            ids = {c["id"] for c in em.customers.values()
                   if c["email"] == email and c["id"] not in em.deleted}
            return len(ids) + sum(1 for p in em.objects["payment_methods"]
                                  if p["customer"] in ids)
        if isinstance(em, HubSpotEmulator):
            ids = [c["id"] for c in em.contacts.values()
                   if c["properties"]["email"] == email.lower()]
            return len(ids) + sum(len(v) for k, v in em.associations.items() if k[0] in ids)
        assert isinstance(em, MailchimpEmulator)
        h = subscriber_hash(email)
        return sum(1 for members in em.members.values() if h in members)


def make_harness(vendor: str) -> Harness:
    if vendor == "stripe":
        stripe = StripeEmulator("sk_test_contract")
        return Harness("stripe", stripe, stripe.start(), "STRIPE_API_KEY", stripe.api_key,
                       ["customers", "payment_methods", "subscriptions", "charges",
                        "invoices"], ["customers", "payment_methods"],
                       ["subscriptions", "charges", "invoices"], "stripe_customer_id")
    if vendor == "hubspot":
        hubspot = HubSpotEmulator("pat-eu1-contract")
        return Harness("hubspot", hubspot, hubspot.start(), "HUBSPOT_TOKEN", hubspot.token,
                       ["contacts", "deals", "tickets", "notes"],
                       ["contacts", "deals", "tickets", "notes"], [], "hubspot_contact_id")
    mailchimp = MailchimpEmulator("00112233445566778899aabbccddeeff-us6")
    return Harness("mailchimp", mailchimp, mailchimp.start(), "MAILCHIMP_API_KEY",
                   mailchimp.api_key, ["members", "activity"], ["members", "activity"], [],
                   "mailchimp_unique_email_id")
