"""Harnesses for the vendors of issue #20's second slice (Zendesk, Intercom, Salesforce,
Segment, Braze): each a :class:`~tests.connectors.saas.harness.Harness` that knows how to seed its
emulator and what that emulator still holds, so the contract suite runs unchanged on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.connectors.saas.braze_emulator import BrazeEmulator
from tests.connectors.saas.harness import Harness
from tests.connectors.saas.intercom_emulator import IntercomEmulator
from tests.connectors.saas.salesforce_emulator import SalesforceEmulator
from tests.connectors.saas.segment_emulator import SegmentEmulator
from tests.connectors.saas.zendesk_emulator import ZendeskEmulator


class ZendeskHarness(Harness):
    emulator: ZendeskEmulator
    storm_calls = 1

    def system(self, **overrides: Any) -> Any:
        return super().system(**{"region": "example", **overrides})

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        n = 250 if many else 2
        self.emulator.add_user(email, tickets=n)
        return {"users": 1, "tickets": n}

    def holds(self, email: str) -> int:
        em = self.emulator
        ids = {u["id"] for u in em.users.values() if u["email"].lower() == email.lower()}
        return len(ids) + sum(1 for t in em.tickets.values() if t["requester_id"] in ids)


def _zendesk() -> Harness:
    em = ZendeskEmulator("zd-oauth-contract")
    return ZendeskHarness("zendesk", em, em.start(), "ZENDESK_TOKEN", em.token,
                          ["users", "tickets"], ["users", "tickets"], [], "zendesk_user_id")


class SalesforceHarness(Harness):
    emulator: SalesforceEmulator

    def system(self, **overrides: Any) -> Any:
        return super().system(**{"region": "example", "client_id_env": "SALESFORCE_CLIENT_ID",
                                 **overrides})

    def environ(self, **more: str) -> dict[str, str]:
        return super().environ(SALESFORCE_CLIENT_ID=self.emulator.client_id, **more)

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        n = 450 if many else 2
        self.emulator.add_contact(email, cases=n)
        return {"contacts": 1, "leads": 1, "cases": n}

    def holds(self, email: str) -> int:
        em = self.emulator
        live = {k: [r for r in v.values() if r["Id"] not in em.deleted]
                for k, v in em.records.items()}
        ids = {r["Id"] for r in live["Contact"] if r["Email"].lower() == email.lower()}
        leads = sum(1 for r in live["Lead"] if r["Email"].lower() == email.lower())
        return len(ids) + leads + sum(1 for r in live["Case"] if r["ContactId"] in ids)


def _salesforce() -> Harness:
    em = SalesforceEmulator(secret="sf-contract-secret")
    return SalesforceHarness("salesforce", em, em.start(), "SALESFORCE_CLIENT_SECRET",
                             em.secret, ["contacts", "leads", "cases"],
                             ["contacts", "leads", "cases"], [], "salesforce_contact_id")


class BrazeHarness(Harness):
    emulator: BrazeEmulator
    storm_calls = 1  # one export call finds everything
    read_paths = ("/users/export/ids",)

    def system(self, **overrides: Any) -> Any:
        return super().system(**{"region": "iad-01", **overrides})

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        n = 60 if many else 2  # Braze lets several profiles share an address
        for _ in range(n):
            self.emulator.add_user(email)
        return {"users": n}

    def holds(self, email: str) -> int:
        return sum(1 for u in self.emulator.users.values()
                   if u["email"].lower() == email.lower())


def _braze() -> Harness:
    em = BrazeEmulator("braze-contract")
    return BrazeHarness("braze", em, em.start(), "BRAZE_API_KEY", em.api_key, ["users"],
                        ["users"], [], "braze_id")


class IntercomHarness(Harness):
    emulator: IntercomEmulator
    storm_calls = 1  # a contact search and a conversation search
    read_paths = ("/contacts/search", "/conversations/search")

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        n = 320 if many else 2  # 150 a page: three pages
        self.emulator.add_contact(email, conversations=n)
        return {"contacts": 1, "conversations": n}

    def holds(self, email: str) -> int:
        em = self.emulator
        ids = {c["id"] for c in em.contacts.values() if c["email"].lower() == email.lower()}
        return len(ids) + sum(1 for v in em.conversations.values()
                              if v["contacts"]["contacts"][0]["id"] in ids)


def _intercom() -> Harness:
    em = IntercomEmulator("dG9rOmNvbnRyYWN0")
    return IntercomHarness("intercom", em, em.start(), "INTERCOM_TOKEN", em.token,
                           ["contacts", "conversations"], ["contacts", "conversations"], [],
                           "intercom_contact_id")


class SegmentHarness(Harness):
    """Segment has no read API: the subject's key is its ``userId`` (here the address), and
    a regulation's final status is the only proof of erasure."""

    emulator: SegmentEmulator

    def system(self, **overrides: Any) -> Any:
        return super().system(**{"identities": {"email": "user_id"}, **overrides})

    def seed(self, email: str, many: bool = False) -> dict[str, int]:
        self.emulator.add_user(email)
        return {"users": 1}

    def holds(self, email: str) -> int:
        return int(email in self.emulator.users)


def _segment() -> Harness:
    em = SegmentEmulator("sgp_contract")
    return SegmentHarness("segment", em, em.start(), "SEGMENT_TOKEN", em.token, ["users"],
                          ["users"], [], "segment_user_id")


HARNESSES: dict[str, Callable[[], Harness]] = {"zendesk": _zendesk, "salesforce": _salesforce,
                                               "braze": _braze, "intercom": _intercom}


def _hubspot() -> Harness:
    from tests.connectors.saas.harness import make_harness

    return make_harness("hubspot")


#: The vendors whose erasure is a job the vendor finishes later (docs/saas.md, "Vendor jobs").
JOB_HARNESSES: dict[str, Callable[[], Harness]] = {"segment": _segment, "zendesk": _zendesk,
                                                   "hubspot": _hubspot}


def delay_jobs(harness: Harness, seconds: float) -> None:
    """Make the vendor finish erasure jobs ``seconds`` after they are submitted (on the
    emulator's clock, which a test moves with ``emulator.advance``)."""
    em: Any = harness.emulator
    for knob in ("finish_after", "delete_after", "purge_after"):
        if hasattr(em, knob):
            setattr(em, knob, seconds)
