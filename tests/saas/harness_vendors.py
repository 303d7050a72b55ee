"""Harnesses for the vendors of issue #20's second slice (Zendesk, Intercom, Salesforce,
Segment, Braze): each a :class:`~tests.saas.harness.Harness` that knows how to seed its
emulator and what that emulator still holds, so the contract suite runs unchanged on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.saas.harness import Harness
from tests.saas.zendesk_emulator import ZendeskEmulator


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


HARNESSES: dict[str, Callable[[], Harness]] = {"zendesk": _zendesk}
